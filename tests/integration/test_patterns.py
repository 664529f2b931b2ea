"""The program shapes Go users write get every P: placement, time slices, preemption (issue 8).

Each pattern runs CPU-bound jobs that record the P they ran on
(``state.rt.p``).  At procs=2 the jobs must spread: every P runs some and
no P more than 75 % of them (a started goroutine never moves, so only
placement and time slices can spread a fixed pool of workers).  Nothing
here asserts a speed; the timer test asserts a bound on lateness (250 ms,
twelve times the target) that only a goroutine holding its P can break.

The preemption tests run several spinning goroutines on one P and record,
per process, which goroutine ran when (``_SEGMENTS``: a new entry each
time the running goroutine changes).  A goroutine switched out inside a
``threading.Lock`` or a logging handler shows up there, or as a lock found
held (the goroutines of a P share one thread, so only a switched-out holder
can hold it when another one looks) or a re-entered handler.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid

import pytest

import parago as pg
from parago._runtime import state
from tests.helpers import go_on, recv_within

pytestmark = pytest.mark.integration

NJOBS = 48
JOB_S = 0.005
WORKERS = 4


# ----------------------------------------------------------------------
# jobs (module level: importable by spawned Ps)


def _spin(seconds: float) -> None:
    """Pure Python for ``seconds``: no parago call, so no cooperative preemption point."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _job(n: int, w: int) -> tuple[int, int, int]:
    """One job: (job number, the P it ran on, the worker that ran it or -1)."""
    _spin(JOB_S)
    return (n, state.rt.p, w)


def _work_loop(w: int, jobs: pg.Chan, results: pg.Chan, wg: pg.WaitGroup | None) -> None:
    for n in jobs:
        results.send(_job(n, w))
    if wg is not None:
        wg.done()


def _job_to(results: pg.Chan, n: int) -> None:
    results.send(_job(n, -1))


def _feed(jobs: pg.Chan, n: int) -> None:
    for i in range(n):
        jobs.send(i)
    jobs.close()


def _close_after(wg: pg.WaitGroup, ch: pg.Chan) -> None:
    wg.wait()
    ch.close()


# ----------------------------------------------------------------------
# the shapes, run by main; each returns every job's record


def _worker_pool(jobs_cap: int) -> list:
    """Go by Example "Worker Pools": workers spawned first, main feeds the jobs."""
    jobs, results = pg.Chan(jobs_cap), pg.Chan(NJOBS)
    for w in range(WORKERS):
        pg.go(_work_loop, w, jobs, results, None)
    for n in range(NJOBS):
        jobs.send(n)
    jobs.close()
    return [recv_within(results, 30) for _ in range(NJOBS)]


def _seed_pipeline() -> list:
    """The seed's §2.3: producer -> workers -> a closer; main collects."""
    raw, processed = pg.Chan(100), pg.Chan(50)
    wg = pg.WaitGroup()
    wg.add(WORKERS)
    pg.go(_feed, raw, NJOBS)
    for w in range(WORKERS):
        pg.go(_work_loop, w, raw, processed, wg)
    pg.go(_close_after, wg, processed)
    return list(processed)


def _errgroup_limited() -> list:
    results = pg.Chan(NJOBS)
    g = pg.ErrGroup()
    g.set_limit(WORKERS)
    for n in range(NJOBS):
        g.go(_job_to, results, n)
    g.wait()
    results.close()
    return list(results)


def _future_per_job() -> list:
    futures = [pg.future(_job, n, -1) for n in range(NJOBS)]
    return [f.result() for f in futures]


def _goroutine_per_job() -> list:
    results = pg.Chan(NJOBS)
    for n in range(NJOBS):
        pg.go(_job_to, results, n)
    return [recv_within(results, 30) for _ in range(NJOBS)]


SHAPES = {
    "worker_pool_buffered": lambda: _worker_pool(NJOBS),
    "worker_pool_unbuffered": lambda: _worker_pool(0),
    "seed_pipeline": _seed_pipeline,
    "errgroup_limit_4": _errgroup_limited,
    "future_per_job": _future_per_job,
    "goroutine_per_job": _goroutine_per_job,
}


def _report_p(ch: pg.Chan) -> None:
    ch.send(state.rt.p)


def _every_p_has_this_module() -> None:
    """Run a goroutine of this module on every P and wait for them.

    Under spawn/forkserver a P imports this module (and pytest with it) when
    it first runs one of its functions: up to seconds on a loaded machine,
    while the other P rightly takes every job.  The tests are about
    placement and time slices, so each P pays that first (under fork this
    costs two tiny goroutines)."""
    n = pg.gomaxprocs()
    ch = pg.Chan(n)
    for p in range(n):
        go_on(p, _report_p, ch)
    got = sorted(recv_within(ch, 60) for _ in range(n))
    assert got == list(range(n)), f"the warm-up goroutines ran on Ps {got}"


def _jobs_per_p(records: list, procs: int) -> list[int]:
    per = collections.Counter(p for _, p, _ in records)
    return [per.get(p, 0) for p in range(procs)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("warm", [False, True], ids=["at_start", "after_warmup"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_pattern_runs_each_job_once_and_spreads_the_jobs_over_every_p(run, procs, shape, warm):
    def main():
        _every_p_has_this_module()
        if warm:
            pg.sleep(0.05)  # every P idle (asleep); at_start spawns while they have just run
        return SHAPES[shape]()

    records = run(main)
    assert sorted(n for n, _, _ in records) == list(range(NJOBS)), "a job was lost or done twice"
    per_p = _jobs_per_p(records, procs)
    assert sum(per_p) == NJOBS, f"jobs ran on Ps outside 0..{procs - 1}: {records}"
    # for the failure message: which P each worker ran on (a worker never moves)
    placed = sorted({(w, p) for _, p, w in records if w >= 0})
    if procs > 1:
        assert min(per_p) > 0, f"jobs per P {per_p}: a P ran none of them (worker, P): {placed}"
        assert max(per_p) <= 0.75 * NJOBS, f"jobs per P {per_p}: one P ran more than 75 % (worker, P): {placed}"
    if records[0][2] >= 0:  # a fixed set of workers: none may keep its P while a sibling starves
        per_worker = collections.Counter(w for _, _, w in records)
        shares = [per_worker.get(w, 0) for w in range(WORKERS)]
        assert min(shares) > 0, f"jobs per worker {shares} (per P {per_p}): a worker never got its P"


# ----------------------------------------------------------------------
# time slices


@pytest.mark.timeout(60)
def test_time_slices_share_one_p_between_workers_whose_channel_never_runs_dry():
    njobs, job_s = 80, 0.002

    def main():
        # every job is buffered (and the channel closed) before a worker
        # starts: no worker ever blocks, so only a time slice switches them
        jobs, results = pg.Chan(njobs), pg.Chan(njobs)
        for n in range(njobs):
            jobs.send(n)
        jobs.close()
        wg = pg.WaitGroup()
        wg.add(WORKERS)
        for w in range(WORKERS):
            pg.go(_timed_worker, w, job_s, jobs, results, wg)
        wg.wait()
        results.close()
        return list(results)

    done = pg.run(main, procs=1)
    assert sorted(n for n, _ in done) == list(range(njobs)), "a job was lost or done twice"
    per_worker = collections.Counter(w for _, w in done)
    shares = [per_worker.get(w, 0) for w in range(WORKERS)]
    assert max(shares) <= njobs // 2, f"jobs per worker {shares}: a worker kept the P past its time slices"


def _timed_worker(w: int, job_s: float, jobs: pg.Chan, results: pg.Chan, wg: pg.WaitGroup) -> None:
    for n in jobs:
        _spin(job_s)
        results.send((n, w))
    wg.done()


def _hog(seconds: float, started: pg.atomic.Int64, finished: pg.atomic.Int64) -> None:
    started.add(1)
    _spin(seconds)
    finished.add(1)


@pytest.mark.timeout(60)
def test_pure_python_hogs_do_not_delay_mains_50ms_timer_past_250ms(run, procs):
    nhogs, hog_s = procs, 1.5

    def main():
        _every_p_has_this_module()
        started, finished = pg.atomic.Int64(), pg.atomic.Int64()
        for _ in range(nhogs):
            pg.go(_hog, hog_s, started, finished)
        took = []
        for _ in range(3):
            t0 = time.perf_counter()
            pg.sleep(0.05)
            took.append(time.perf_counter() - t0)
        return took, started.load(), finished.load()

    took, started, finished = run(main)
    assert max(took) < 0.25, f"pg.sleep(0.05) took {[round(t, 3) for t in took]} s beside {nhogs} hog(s)"
    # the scenario happened: every hog ran (on some P) during the sleeps, none had finished
    assert (started, finished) == (nhogs, 0), f"{started} of {nhogs} hogs started, {finished} finished"


# ----------------------------------------------------------------------
# preemption and critical sections

_LOCK = threading.Lock()
_SEGMENTS: list[int] = []  # this process's goroutines in the order they ran: one entry per switch


def _ran(me: int) -> None:
    if not _SEGMENTS or _SEGMENTS[-1] != me:
        _SEGMENTS.append(me)


def _spin_marking(seconds: float, me: int) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        _ran(me)


def _critical(me: int, seconds: float, what: str) -> list[str]:
    """Spin inside a critical section; a complaint if another goroutine of this P ran meanwhile."""
    _ran(me)
    seen = len(_SEGMENTS)
    _spin_marking(seconds, me)
    if len(_SEGMENTS) != seen:
        return [f"goroutine {me}: others ran while it was inside {what}: {_SEGMENTS[seen - 1 :]}"]
    return []


def _lock_holder(me: int, rounds: int, report: pg.Chan) -> None:
    problems: list[str] = []
    for _ in range(rounds):
        _ran(me)
        if _LOCK.locked():
            # acquiring would block this P's thread for ever (the holder cannot run)
            problems.append(f"goroutine {me} found the lock held by a switched-out goroutine")
            _spin_marking(0.02, me)
            continue
        with _LOCK:
            problems += _critical(me, 0.03, "the threading.Lock")
        _spin_marking(0.02, me)  # outside: preemptible
    report.send((me, state.rt.p, problems, _SEGMENTS.count(me)))


def _assert_safe_and_preempted(reports: list, n: int) -> None:
    assert sorted(me for me, _, _, _ in reports) == list(range(n))
    problems = [p for _, _, ps, _ in reports for p in ps]
    assert not problems, "\n".join(problems)
    runs = {me: segments for me, _, _, segments in reports}
    # a goroutine that ran in more than one segment was switched out outside its critical sections
    assert max(runs.values()) > 1, f"no goroutine was ever preempted (run segments {runs}): nothing was tested"


@pytest.mark.timeout(60)
def test_preemption_never_switches_out_a_goroutine_holding_a_threading_lock(run, procs):
    n, rounds = 4, 3

    def main():
        _every_p_has_this_module()
        report = pg.Chan(n)
        for me in range(n):
            pg.go(_lock_holder, me, rounds, report)
        return [recv_within(report, 30) for _ in range(n)]

    _SEGMENTS.clear()  # before pg.run: forked Ps start with it empty too
    _assert_safe_and_preempted(run(main), n)


class _ReentryCheckingHandler(logging.Handler):
    """Spins inside emit (the handler's lock is held around it) and records any re-entry."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.problems: list[str] = []
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.depth += 1
        try:
            if self.depth > 1:
                self.problems.append(f"handler re-entered by {record.getMessage()!r}")
            self.problems += _critical(record.g, 0.03, "a logging handler")  # type: ignore[attr-defined]
            self.messages.append(record.getMessage())
        finally:
            self.depth -= 1


_HANDLERS: dict[str, _ReentryCheckingHandler] = {}  # run token -> this process's handler


def _handler_for(token: str) -> _ReentryCheckingHandler:
    h = _HANDLERS.get(token)
    if h is None:
        h = _HANDLERS[token] = _ReentryCheckingHandler()
        log = logging.getLogger(f"parago.tests.preempt.{token}")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(h)
    return h


def _logger_goroutine(me: int, rounds: int, token: str, report: pg.Chan) -> None:
    h = _handler_for(token)
    log = logging.getLogger(f"parago.tests.preempt.{token}")
    for r in range(rounds):
        _ran(me)
        log.info("g%d r%d", me, r, extra={"g": me})
        _spin_marking(0.02, me)  # outside: preemptible
    mine = [m for m in h.messages if m.startswith(f"g{me} ")]
    report.send(
        (me, state.rt.p, h.problems + ([] if len(mine) == rounds else [f"g{me} logged {mine}"]), _SEGMENTS.count(me))
    )


@pytest.mark.timeout(60)
def test_preemption_never_reenters_a_logging_handler(run, procs):
    n, rounds = 4, 3
    token = uuid.uuid4().hex

    def main():
        _every_p_has_this_module()
        report = pg.Chan(n)
        for me in range(n):
            pg.go(_logger_goroutine, me, rounds, token, report)
        return [recv_within(report, 30) for _ in range(n)]

    _SEGMENTS.clear()
    try:
        _assert_safe_and_preempted(run(main), n)
    finally:
        h = _HANDLERS.pop(token, None)
        if h is not None:
            logging.getLogger(f"parago.tests.preempt.{token}").removeHandler(h)


# ----------------------------------------------------------------------
# go_local


def _local_job(i: int, box: list, wg: pg.WaitGroup) -> None:
    _spin(0.01)
    box.append((i, state.rt.p))
    wg.done()


def _spawn_locals(n: int, gate: pg.Chan, report: pg.Chan) -> None:
    gate.recv_ok()  # wait until every P is loaded
    box: list = []  # not copied: go_local goroutines append to this very list
    wg = pg.WaitGroup()
    wg.add(n)
    for i in range(n):
        pg.go_local(_local_job, i, box, wg)
    wg.wait()
    report.send((state.rt.p, sorted(i for i, _ in box), sorted({p for _, p in box})))


@pytest.mark.timeout(60)
def test_go_local_goroutines_stay_on_their_p_whatever_the_load():
    n = 12

    def main():
        gate, report = pg.Chan(), pg.Chan(2)
        go_on(1, _spawn_locals, n, gate, report)
        started, finished = pg.atomic.Int64(), pg.atomic.Int64()
        for _ in range(4):  # both Ps loaded: a load-aware placement would move work away from P0
            pg.go(_hog, 0.2, started, finished)
        gate.close()
        _spawn_locals(n, gate, report)
        return [recv_within(report, 30) for _ in range(2)]

    reports = sorted(pg.run(main, procs=2))
    assert [p for p, _, _ in reports] == [0, 1], reports
    for p, jobs, ran_on in reports:
        assert jobs == list(range(n)), f"P{p}: go_local goroutines lost or copied their list: {jobs}"
        assert ran_on == [p], f"go_local goroutines spawned on P{p} ran on {ran_on}"
