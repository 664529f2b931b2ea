"""Fault injection: SIGKILL (and SIGSTOP, then SIGKILL while it holds an
arena lock word) of one P amid heavy channel, select, Mutex and WaitGroup
traffic (tests/stress/faults.py).  Every fault must end in pg.WorkerLost
from pg.run within 1 s -- never a hang (each run is supervised in a worker
process with a time limit) -- and leave no process, fd or memfd behind.

Default: DEFAULT_FAULTS faults (half inside a lock).  ``--stress`` /
PARAGO_STRESS=1: 200, with the WorkerLost latency p50/p99 in the summary.
``--stress-seed N`` replays fault N (``-k replay``).
"""

from __future__ import annotations

import random
import statistics
import time

import pytest

from tests.stress import conftest, faults, supervise

DEFAULT_FAULTS = 24
STRESS_FAULTS = 200
WORKERLOST_WITHIN = 1.0  # s from the SIGKILL to pg.run raising
LIMIT = 10.0  # s a fault run may take before it is called a hang

pytestmark = pytest.mark.faults


def _inject():
    def on_ready(w: supervise.Worker, ev: dict) -> dict:
        fault = faults.fault_of(ev["seed"])
        inj = faults.Injector(w.pid, ev)
        try:
            t_kill, held, tries = inj.kill(fault, random.Random(ev["seed"]))
        finally:
            inj.close()
        return {"t_kill": t_kill, "held": held, "tries": tries}

    return on_ready


def _judge(results: list[dict]) -> tuple[list[str], list[float]]:
    failures, latencies = [], []
    for r in results:
        f = faults.fault_of(r["seed"])
        where = f"fault {f}: replay: {f.replay_command()}"
        if r["outcome"] != "WorkerLost":
            failures.append(
                f"{r['outcome']} instead of WorkerLost ({r.get('msg', '')[:1500]}) held={r.get('held')}"
                f" {r.get('stderr', '')[-1500:]}\n{where}"
            )
            continue
        lat = r["t"] - r["t_kill"]
        latencies.append(lat)
        if lat > WORKERLOST_WITHIN:
            failures.append(
                f"WorkerLost after {lat * 1000:.0f} ms (> {WORKERLOST_WITHIN * 1000:.0f}) held={r['held']}\n{where}"
            )
        if f"P{f.victim}" not in r["msg"]:
            failures.append(f"WorkerLost does not name P{f.victim}: {r['msg'][:300]}\n{where}")
        if r["leaks"]:
            failures.append(f"left behind: {r['leaks'][:5]}\n{where}")
    return failures, latencies


def _run(seeds: list[int], label: str) -> tuple[list[dict], list[str]]:
    t = time.monotonic()
    results = list(supervise.supervise("faults", seeds, limit=LIMIT, on_ready=_inject()))
    failures, lat = _judge(results)
    in_lock = [r for r in results if r.get("held")]
    asked = sum(faults.fault_of(r["seed"]).in_lock for r in results)
    line = (
        f"{label}: {len(results)} faults in {time.monotonic() - t:.1f} s, {len(in_lock)} caught inside a lock "
        f"(of {asked} asked: {dict(_count(r.get('held') for r in in_lock))}), {len(failures)} failures"
    )
    if lat:
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
        line += (
            f"; WorkerLost latency p50 {statistics.median(lat) * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
            f"max {max(lat) * 1000:.1f} ms"
        )
    conftest.SUMMARY.append(line)
    return results, failures


def _count(xs) -> dict:
    out: dict = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


@pytest.mark.timeout(DEFAULT_FAULTS * (LIMIT + 5) + 60)
def test_random_sigkills_of_a_p_end_in_workerlost_within_a_second(replay):
    if replay is not None:
        pytest.skip("replaying one fault (test_replay_one_fault)")
    seeds = list(range(DEFAULT_FAULTS))
    results, failures = _run(seeds, "faults (default)")
    assert len(results) == len(seeds)
    assert not failures, f"{len(failures)} of {len(seeds)} faults:\n\n" + "\n\n".join(failures)
    # half of them were asked to land inside a lock; most must have
    caught = sum(1 for r in results if r.get("held"))
    assert caught >= DEFAULT_FAULTS // 4, f"only {caught} faults caught a P inside a lock"


@pytest.mark.stress
@pytest.mark.timeout(STRESS_FAULTS * (LIMIT + 5) + 60)
def test_200_random_sigkills_half_inside_a_lock(stress, replay):
    if not stress or replay is not None:
        pytest.skip("opt-in: --stress or PARAGO_STRESS=1")
    seeds = list(range(1_000_000, 1_000_000 + STRESS_FAULTS))
    results, failures = _run(seeds, "faults (--stress)")
    assert not failures, f"{len(failures)} of {len(seeds)} faults:\n\n" + "\n\n".join(failures[:20])


@pytest.mark.timeout(LIMIT + 60)
def test_replay_one_fault(replay, capsys):
    if replay is None:
        pytest.skip("set PARAGO_STRESS_SEED=N or --stress-seed N to replay a fault")
    results, failures = _run([replay], f"fault {replay}")
    with capsys.disabled():
        print(f"\n{faults.fault_of(replay)}\n{results}")
    assert not failures, "\n".join(failures)
