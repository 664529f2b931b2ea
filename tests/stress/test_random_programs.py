"""Random programs against the model (tests/stress/progs.py).

Default run: DEFAULT_PROGRAMS small programs (procs 1-2, fork), each in a
supervised worker with a time limit, so a hang is a failure with its seed,
never a stuck session.  ``--stress`` / PARAGO_STRESS=1: PARAGO_STRESS_PROGRAMS
(2,000) larger programs across procs 1..4 and fork/forkserver/spawn, time
boxed by PARAGO_STRESS_BOX_SECONDS.  ``--stress-seed N`` / PARAGO_STRESS_SEED=N
replays program N in this process and prints it.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.stress import conftest, progs, supervise

DEFAULT_PROGRAMS = 60
DEFAULT_LIMIT = 4.0  # s per small program (they take < 0.6 s)
STRESS_LIMIT = 30.0
STRESS_PROGRAMS = int(os.environ.get("PARAGO_STRESS_PROGRAMS", "2000"))
STRESS_SECONDS = float(os.environ.get("PARAGO_STRESS_BOX_SECONDS", "2400"))


def _failures(results: list[dict]) -> list[str]:
    out = []
    for r in results:
        bad = r.get("problems") or r["leaks"] or r["outcome"] not in ("clean", "Deadlock")
        if bad:
            plan = progs.generate(r["seed"])
            out.append(
                f"seed {r['seed']}: {r['outcome']}; {r.get('problems')}; leaks {r['leaks'][:5]}\n"
                f"{plan.describe()}\nreplay: {plan.replay_command()}"
            )
    return out


def _run_many(seeds: list[int], limit: float, time_box: float | None = None) -> tuple[list[dict], float]:
    t = time.monotonic()
    results = list(supervise.supervise("programs", seeds, limit=limit, time_box=time_box))
    return results, time.monotonic() - t


def _summarise(label: str, results: list[dict], seconds: float) -> None:
    by = collections.Counter((r.get("procs"), r.get("start_method")) for r in results)
    values = sum(r.get("values", 0) for r in results)
    deadlocks = sum(r["outcome"] == "Deadlock" for r in results)
    conftest.SUMMARY.append(
        f"{label}: {len(results)} programs in {seconds:.1f} s, {values} values received, "
        f"{deadlocks} expected Deadlocks, {len(_failures(results))} failures; by (procs, start method): {dict(by)}"
    )


@pytest.mark.timeout(DEFAULT_PROGRAMS * DEFAULT_LIMIT + 120)
def test_random_programs_deliver_exactly_once_in_fifo_order_and_deadlock_only_by_construction(replay):
    if replay is not None:
        pytest.skip("replaying one seed (test_replay_one_program)")
    seeds = list(range(DEFAULT_PROGRAMS))
    results, seconds = _run_many(seeds, DEFAULT_LIMIT)
    _summarise("random programs (default)", results, seconds)
    assert len(results) == len(seeds)
    failures = _failures(results)
    assert not failures, f"{len(failures)} of {len(seeds)} programs differ from the model:\n\n" + "\n\n".join(failures)


@pytest.mark.stress
@pytest.mark.timeout(STRESS_SECONDS + 300)
def test_random_programs_stress_across_procs_and_start_methods(stress, replay):
    if not stress or replay is not None:
        pytest.skip("opt-in: --stress or PARAGO_STRESS=1")
    seeds = list(range(progs.LARGE_SEEDS, progs.LARGE_SEEDS + STRESS_PROGRAMS))
    results, seconds = _run_many(seeds, STRESS_LIMIT, time_box=STRESS_SECONDS)
    _summarise("random programs (--stress)", results, seconds)
    failures = _failures(results)
    assert not failures, f"{len(failures)} of {len(results)} programs differ from the model:\n\n" + "\n\n".join(
        failures[:20]
    )
    assert len(results) == len(seeds), f"only {len(results)} of {len(seeds)} programs ran within {STRESS_SECONDS} s"


@pytest.mark.timeout(120)
def test_replay_one_program(replay, capsys):
    """PARAGO_STRESS_SEED=N: run program N here, print it and its result."""
    if replay is None:
        pytest.skip("set PARAGO_STRESS_SEED=N or --stress-seed N to replay a program")
    plan = progs.generate(replay)
    with capsys.disabled():
        print("\n" + plan.describe())
    outcome, reports = progs.execute(plan)
    problems = progs.check(plan, outcome, reports)
    with capsys.disabled():
        print(f"outcome: {outcome}; problems: {problems or 'none'}")
    assert not problems, "\n".join(problems)


def test_the_default_programs_cover_every_feature_and_both_verdicts():
    """The default sample is worth running: every mode, ending and close
    kind appears, and both clean and deadlocking programs."""
    plans = [progs.generate(s) for s in range(DEFAULT_PROGRAMS)]
    modes = {x.mode for p in plans for x in p.producers + p.consumers}
    assert set(progs.PRODUCER_MODES_ONE) | set(progs.CONSUMER_MODES_ONE) <= modes
    assert {p.ending for p in plans} >= set(progs.ENDINGS) | {"clean"}
    assert {c for p in plans for c in p.close} == {"after", "random", "never"}
    assert sum(p.deadlocks for p in plans) >= 10 and sum(not p.deadlocks for p in plans) >= 20
    assert sum(p.rescued for p in plans) >= 5
    assert any(x.parent >= 0 for p in plans for x in p.producers + p.consumers), "no nested spawn"
    assert any(cap == 0 for p in plans for cap in p.caps) and any(cap > 0 for p in plans for cap in p.caps)
    # a seed is a program: generating it twice gives the same plan
    assert progs.generate(17) == progs.generate(17)


_SPINNER = textwrap.dedent(
    """
    import time, parago as pg

    def spinner(flag):
        while flag.load() == 0:
            pg.gosched()  # Go: runtime.Gosched() in a polling loop

    def main():
        flag = pg.atomic.Int64()
        pg.go(spinner, flag)
        t = time.monotonic()
        pg.sleep(0.01)
        flag.store(1)
        return time.monotonic() - t

    if __name__ == "__main__":
        print(pg.run(main, procs=1))
    """
)


@pytest.mark.timeout(60)
def test_a_gosched_polling_loop_lets_a_sleeping_goroutine_wake():
    """Found by the random programs (every select-with-default poller that
    hung): a goroutine that polls with pg.gosched() must not keep a
    pg.sleep on its P from returning (Go's checkTimers runs every round)."""
    env = dict(os.environ, PYTHONPATH=str(supervise.ROOT))
    try:
        r = subprocess.run(
            [sys.executable, "-c", _SPINNER], env=env, cwd=supervise.ROOT, capture_output=True, text=True, timeout=15
        )
    except subprocess.TimeoutExpired:
        pytest.fail("pg.sleep(0.01) beside a gosched loop did not return within 15 s")
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.strip()) < 1.0
