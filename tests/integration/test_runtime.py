"""pg.run, pg.go and the calls about the running goroutine (DESIGN §1 "Running",
"Copies", "Errors"), at procs=1 and procs=2.

Goroutine functions live at module level (spawned and forkserver Ps import
this module to find them); results come back through shared objects
(channels, atomics, WaitGroups), because goroutines get copies.
"""

from __future__ import annotations

import asyncio
import multiprocessing.forkserver
import os
import re
import threading
import time

import pytest

import parago as pg
from parago._runtime import state

pytestmark = pytest.mark.integration


# ----------------------------------------------------------------------
# goroutine bodies (module level: importable by spawned Ps)


def _busy(seconds: float) -> None:
    """Hold the P (no preemption) so that an idle P steals queued goroutines."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _add_one(counter, wg) -> None:
    counter.add(1)
    wg.done()


def _report_pid(i, ch) -> None:
    _busy(0.005)
    ch.send((i, os.getpid()))


def _spawn_reporters(n, ch) -> None:
    for i in range(n):
        pg.go(_report_pid, i, ch)


def _tree(path, depth, fanout, ch) -> None:
    if depth == 0:
        ch.send((path, pg.goid()))
        return
    for i in range(fanout):
        pg.go(_tree, path + (i,), depth - 1, fanout, ch)


def _double(ch, x) -> None:
    ch.send(x * 2)


def _kw_worker(ch, a, *, b="default", c=None) -> None:
    ch.send((a, b, c))


async def _async_worker(ch, x) -> None:
    await pg.sleep_async(0.01)
    await ch.send_async((x + 1, pg.goid()))


def _spawn_async(ch, x) -> None:
    pg.go(_async_worker, ch, x)


def _noop(*args, **kw) -> None:
    pass


def _send_goid(ch) -> None:
    ch.send(pg.goid())


def _block_then_ack(gate, acks) -> None:
    gate.recv()
    acks.send(pg.goid())


def _stepper(name, n, ch, wg) -> None:
    for i in range(n):
        ch.send((name, i))
        pg.gosched()
    wg.done()


def _sleeper(seconds, wg) -> None:
    pg.sleep(seconds)
    wg.done()


def _slow_add(a, b):
    time.sleep(1.0)
    return a + b


def _slow_raise():
    time.sleep(0.05)
    raise ValueError("slow boom")


def _blocking_worker(ch) -> None:
    ch.send(pg.blocking(_slow_add, 40, 2))


def _await_worker(ch) -> None:
    ch.send(pg.await_(asyncio.sleep(0.05, result=("awaited", os.getpid()))))


def _mutate(lst, d, ch) -> None:
    lst.append(99)
    d["k"] = "changed"
    ch.send((lst, d))


_GLOBAL_COUNTER = 0


def _assign_global(ch) -> None:
    global _GLOBAL_COUNTER
    _GLOBAL_COUNTER = 1
    ch.send("assigned")


class _MainError(Exception):
    pass


# ----------------------------------------------------------------------
# scale and placement


@pytest.mark.timeout(120)
def test_hundred_thousand_goroutines_each_add_one(run):
    n = 100_000

    def main():
        counter = pg.atomic.Int64()
        wg = pg.WaitGroup()
        wg.add(n)
        for _ in range(n):
            pg.go(_add_one, counter, wg)
        wg.wait()
        return counter.load(), pg.numgoroutine()

    total, live = run(main)
    assert total == n
    # every goroutine retired (only main is left, give or take exits in flight)
    assert live <= 1 + 2


@pytest.mark.timeout(60)
def test_goroutines_spawned_by_one_goroutine_run_on_every_p():
    n = 60

    def main():
        ch = pg.Chan(n)
        pg.go(_spawn_reporters, n, ch)
        got = [ch.recv() for _ in range(n)]
        return got, os.getpid()

    got, main_pid = pg.run(main, procs=2)
    assert sorted(i for i, _ in got) == list(range(n))  # each exactly once
    pids = {pid for _, pid in got}
    assert len(pids) == 2, f"all {n} goroutines ran in {pids}: the idle P did not steal"
    assert main_pid in pids


@pytest.mark.timeout(60)
def test_nested_spawns_depth_three_conserve_every_leaf(run):
    fanout = 4

    def main():
        ch = pg.Chan(fanout**3)
        pg.go(_tree, (), 3, fanout, ch)
        leaves = [ch.recv() for _ in range(fanout**3)]
        # nothing more arrives: every leaf sent exactly once
        extra = pg.select(pg.Recv(ch), pg.Recv(pg.after(0.2)))
        return leaves, extra[0]

    leaves, extra_index = run(main)
    expected = sorted((a, b, c) for a in range(fanout) for b in range(fanout) for c in range(fanout))
    assert sorted(path for path, _ in leaves) == expected
    goids = [g for _, g in leaves]
    assert len(set(goids)) == len(goids) and min(goids) > 1
    assert extra_index == 1, "a leaf value arrived twice"


# ----------------------------------------------------------------------
# what a goroutine function may be


@pytest.mark.timeout(30)
def test_lambda_as_goroutine(run):
    def main():
        ch = pg.Chan(1)
        pg.go(lambda c, x: c.send(x * 3), ch, 14)
        return ch.recv()

    assert run(main) == 42


@pytest.mark.timeout(30)
def test_closure_as_goroutine_sees_copies_of_captured_values(run):
    def main():
        ch = pg.Chan(3)
        base = 100
        table = {"a": 1}

        def worker(x):
            ch.send(base + x + table["a"])

        for x in (1, 2, 3):
            pg.go(worker, x)
        return sorted(ch.recv() for _ in range(3))

    assert run(main) == [102, 103, 104]


@pytest.mark.timeout(30)
def test_keyword_arguments_reach_the_goroutine(run):
    def main():
        ch = pg.Chan(2)
        pg.go(_kw_worker, ch, 1, b="bee", c=[3])
        pg.go(_kw_worker, ch, a=2)
        return sorted(ch.recv() for _ in range(2))

    assert run(main) == [(1, "bee", [3]), (2, "default", None)]


@pytest.mark.timeout(30)
def test_goroutine_can_start_an_async_def_goroutine(run):
    def main():
        ch = pg.Chan(1)
        pg.go(_spawn_async, ch, 41)
        return ch.recv()

    value, goid = run(main)
    assert value == 42
    assert goid > 1


@pytest.mark.timeout(30)
def test_async_def_main(run):
    async def amain(x):
        ch = pg.Chan(1)
        pg.go(_double, ch, x)
        v = await ch.recv_async()
        await pg.sleep_async(0.01)
        return v, pg.goid()

    assert run(amain, 21) == (42, 1)


async def _recv_in_child_task_main(x):
    ch = pg.Chan(1)
    pg.go(_double, ch, x)
    # the recv runs in a task that is not the goroutine's own (asyncio.wait_for
    # wraps it in one): any asyncio composition must work in async goroutines
    return await asyncio.wait_for(ch.recv_async(), 10)


@pytest.mark.timeout(60)
def test_async_main_may_await_channel_ops_in_child_tasks(run):
    results = [run(_recv_in_child_task_main, i) for i in range(100)]
    assert results == [2 * i for i in range(100)]


@pytest.mark.timeout(30)
def test_async_def_main_without_spawning(run):
    async def amain(x):
        await pg.sleep_async(0.01)
        return x + 1, pg.goid(), pg.gomaxprocs()

    value, goid, _ = run(amain, 41)
    assert (value, goid) == (42, 1)


# ----------------------------------------------------------------------
# bad input


@pytest.mark.timeout(30)
def test_unpicklable_argument_raises_encode_error_and_runtime_keeps_working(run):
    def main():
        errors = []
        for call in (lambda: pg.go(_noop, 1, threading.Lock()), lambda: pg.go(_noop, lock=threading.Lock())):
            try:
                call()
            except pg.EncodeError as e:
                errors.append(e)
        live_after_failures = pg.numgoroutine()
        ch = pg.Chan(1)
        pg.go(_double, ch, 5)
        return errors, live_after_failures, ch.recv()

    errors, live, later = run(main)
    assert len(errors) == 2
    positional, keyword = errors
    assert isinstance(positional, TypeError) and isinstance(keyword, TypeError)
    assert re.match(r"^pg\.go: cannot copy argument 1 \(<unlocked _thread\.lock", str(positional)), positional
    assert re.match(r"^pg\.go: cannot copy keyword argument 'lock' \(<unlocked _thread\.lock", str(keyword)), keyword
    assert live == 1, "a failed pg.go left a goroutine behind"
    assert later == 10


@pytest.mark.timeout(30)
def test_non_callable_goroutine_raises_type_error(run):
    def main():
        with pytest.raises(TypeError, match=r"^pg\.go: fn must be callable, got int$"):
            pg.go(42)
        return pg.numgoroutine()

    assert run(main) == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "procs, exc, pattern",
    [
        (0, ValueError, r"^procs must be >= 1, got 0$"),
        (-3, ValueError, r"^procs must be >= 1, got -3$"),
        ("2", TypeError, r"^procs must be an int, got str$"),
        (True, TypeError, r"^procs must be an int, got bool$"),
        (2.0, TypeError, r"^procs must be an int, got float$"),
    ],
)
def test_bad_procs_is_rejected_before_anything_starts(procs, exc, pattern):
    ran = []
    with pytest.raises(exc, match=pattern):
        pg.run(lambda: ran.append(1), procs=procs)
    assert ran == []


@pytest.mark.timeout(30)
def test_unknown_start_method_is_rejected():
    with pytest.raises(ValueError, match=r"^start_method must be one of fork, forkserver, spawn, got 'threads'$"):
        pg.run(lambda: None, procs=2, start_method="threads")


@pytest.mark.timeout(30)
def test_non_callable_main_is_rejected():
    with pytest.raises(TypeError, match=r"main must be callable"):
        pg.run(42)


@pytest.mark.timeout(30)
def test_nested_run_raises_parago_error(run):
    def main():
        with pytest.raises(pg.ParagoError, match=r"nested"):
            pg.run(lambda: None, procs=1)
        # the outer program is intact
        ch = pg.Chan(1)
        pg.go(_double, ch, 8)
        return ch.recv()

    assert run(main) == 16


# ----------------------------------------------------------------------
# goid, gomaxprocs, numgoroutine


@pytest.mark.timeout(30)
def test_goid_of_main_is_one_and_goroutines_get_distinct_ids(run, procs):
    n = 10

    def main():
        ch = pg.Chan(n)
        for _ in range(n):
            pg.go(_send_goid, ch)
        return pg.goid(), pg.gomaxprocs(), [ch.recv() for _ in range(n)]

    main_goid, maxprocs, goids = run(main)
    assert main_goid == 1
    assert maxprocs == procs
    assert len(set(goids)) == n
    assert all(g > 1 for g in goids)


@pytest.mark.timeout(30)
def test_numgoroutine_counts_live_goroutines(run):
    k = 6

    def main():
        alone = pg.numgoroutine()
        gate = pg.Chan()
        acks = pg.Chan(k)
        for _ in range(k):
            pg.go(_block_then_ack, gate, acks)
        pg.sleep(0.05)
        while_blocked = pg.numgoroutine()
        for _ in range(k):
            gate.send(None)
        acked = sorted(acks.recv() for _ in range(k))
        deadline = time.monotonic() + 5
        while pg.numgoroutine() != 1 and time.monotonic() < deadline:
            pg.sleep(0.005)
        return alone, while_blocked, acked, pg.numgoroutine()

    alone, while_blocked, acked, after = run(main)
    assert alone == 1
    assert while_blocked >= 1 + k
    assert len(set(acked)) == k
    assert after == 1


# ----------------------------------------------------------------------
# yielding, sleeping, blocking calls, awaitables


@pytest.mark.timeout(30)
def test_gosched_lets_the_other_goroutine_run():
    n = 20

    def main():
        ch = pg.Chan(2 * n)
        wg = pg.WaitGroup()
        wg.add(2)
        pg.go(_stepper, "a", n, ch, wg)
        pg.go(_stepper, "b", n, ch, wg)
        wg.wait()
        return [ch.recv() for _ in range(2 * n)]

    steps = pg.run(main, procs=1)
    assert sorted(steps) == sorted([(x, i) for x in "ab" for i in range(n)])
    names = [name for name, _ in steps]
    switches = sum(1 for x, y in zip(names, names[1:], strict=False) if x != y)
    # without gosched one goroutine would run all its steps first (1 switch)
    assert switches >= n, names


@pytest.mark.timeout(30)
def test_sleep_parks_only_the_goroutine():
    def main():
        wg = pg.WaitGroup()
        wg.add(3)
        t0 = time.monotonic()
        for _ in range(3):
            pg.go(_sleeper, 0.3, wg)
        wg.wait()
        return time.monotonic() - t0

    elapsed = pg.run(main, procs=1)
    assert 0.29 <= elapsed < 0.75, elapsed  # serial sleeps would take 0.9 s


@pytest.mark.timeout(30)
def test_blocking_call_does_not_block_the_other_goroutines_of_the_p():
    def main():
        ch = pg.Chan(1)
        t0 = time.monotonic()
        pg.go(_blocking_worker, ch)
        ticks = 0
        for _ in range(5):
            pg.sleep(0.01)
            ticks += 1
        main_progress = time.monotonic() - t0
        finished_early = len(ch)
        return main_progress, finished_early, ticks, ch.recv()

    main_progress, finished_early, ticks, result = pg.run(main, procs=1)
    assert ticks == 5
    # pg.blocking sleeps 1 s off the hub: main's five short sleeps end first
    assert main_progress < 0.8, main_progress
    assert finished_early == 0
    assert result == 42


@pytest.mark.timeout(30)
def test_blocking_raises_the_functions_exception(run):
    def main():
        with pytest.raises(ValueError, match=r"^slow boom$"):
            pg.blocking(_slow_raise)
        return pg.blocking(sorted, [3, 1, 2])

    assert run(main) == [1, 2, 3]


def _recv_in_thread(ch):
    return ch.recv()  # a parago wait in a thread that is no goroutine: the thread gets a G


def _blocking_recv(ch, out) -> None:
    out.send(pg.blocking(_recv_in_thread, ch))


@pytest.mark.timeout(60)
def test_a_blocking_threads_parago_wait_leaves_nothing_in_the_arena(run):
    """The pg.blocking pool's threads outlive the job and the run: the G a
    job's thread made for its channel wait is freed when the job ends, so the
    run ends with every arena block freed (the leak check's figure is 0)."""
    n = 8

    def main():
        ch, out = pg.Chan(n), pg.Chan(n)
        for i in range(n):
            ch.send(i)
            pg.go(_blocking_recv, ch, out)  # on every P: each P's own pool
        got = sorted(out.recv() for _ in range(n))
        got.append(pg.blocking(_recv_in_thread, _one(99)))  # main's too (P0)
        return got

    assert run(main) == list(range(n)) + [99]
    assert state.last_inuse == 0, f"{state.last_inuse} bytes left in the arena"


def _one(v):
    ch = pg.Chan(1)
    ch.send(v)
    return ch


@pytest.mark.timeout(30)
def test_await_runs_an_awaitable_on_the_p_loop(run):
    def main():
        ch = pg.Chan(1)
        pg.go(_await_worker, ch)
        mine = pg.await_(asyncio.sleep(0.05, result=7))
        return mine, ch.recv()

    mine, (tag, _pid) = run(main)
    assert mine == 7
    assert tag == "awaited"


# ----------------------------------------------------------------------
# copies and isolation


@pytest.mark.timeout(30)
def test_goroutine_mutating_its_argument_does_not_change_the_callers(run):
    def main():
        data = [1, 2]
        d = {"k": "orig"}
        ch = pg.Chan(1)
        pg.go(_mutate, data, d, ch)
        seen = ch.recv()
        return data, d, seen

    data, d, (lst, dd) = run(main)
    assert data == [1, 2] and d == {"k": "orig"}
    assert lst == [1, 2, 99] and dd == {"k": "changed"}


@pytest.mark.timeout(30)
def test_assigning_to_a_global_or_captured_variable_warns_at_spawn(run, procs):
    def main():
        ch = pg.Chan(2)
        hits = 0

        def bump():
            nonlocal hits
            hits += 1
            ch.send(hits)

        # one call site per parametrization: the warning is once per call site
        if procs == 1:
            with pytest.warns(RuntimeWarning, match=r"^goroutine _assign_global assigns to global _GLOBAL_COUNTER\b"):
                pg.go(_assign_global, ch)
            with pytest.warns(RuntimeWarning, match=r"assigns to captured variable hits\b"):
                pg.go(bump)
        else:
            with pytest.warns(RuntimeWarning, match=r"^goroutine _assign_global assigns to global _GLOBAL_COUNTER\b"):
                pg.go(_assign_global, ch)
            with pytest.warns(RuntimeWarning, match=r"assigns to captured variable hits\b"):
                pg.go(bump)
        got = sorted(map(str, (ch.recv(), ch.recv())))
        return got, hits

    got, hits = run(main)
    assert got == ["1", "assigned"]
    assert hits == 0  # the goroutine's write went to its copy


@pytest.mark.timeout(30)
def test_warning_names_the_user_call_site():
    def main():
        ch = pg.Chan(1)
        with pytest.warns(RuntimeWarning) as rec:
            pg.go(_assign_global, ch)  # the line the warning must point at
        ch.recv()
        return [(w.filename, w.lineno) for w in rec]

    where = pg.run(main, procs=2)
    assert where, "no warning"
    assert all(os.path.samefile(f, __file__) for f, _ in where), where


# ----------------------------------------------------------------------
# main's result and exceptions


@pytest.mark.timeout(30)
def test_main_return_value_is_returned_uncopied(run):
    token = threading.Lock()  # not picklable: proves it was not copied

    def main(x):
        ch = pg.Chan(1)
        pg.go(_double, ch, x)
        return ch.recv(), token

    value, same = run(main, 4)
    assert value == 8
    assert same is token


@pytest.mark.timeout(30)
def test_exception_escaping_main_propagates_unchanged(run):
    raised = []

    def main():
        ch = pg.Chan(1)
        pg.go(_double, ch, 1)
        ch.recv()
        e = _MainError("from main", 7)
        raised.append(e)
        raise e

    with pytest.raises(_MainError) as ei:
        run(main)
    assert type(ei.value) is _MainError
    assert ei.value is raised[0]
    assert ei.value.args == ("from main", 7)


@pytest.mark.timeout(30)
def test_base_exception_from_main_propagates(run):
    def main():
        raise GeneratorExit("not an Exception")

    with pytest.raises(GeneratorExit, match=r"^not an Exception$"):
        run(main)


# ----------------------------------------------------------------------
# repeated runs and start methods


@pytest.mark.timeout(120)
def test_twenty_consecutive_runs_in_one_process():
    n = 8
    results = []
    for r in range(20):

        def main(r=r):
            ch = pg.Chan(n)
            for i in range(n):
                pg.go(_double, ch, r * 100 + i)
            return sorted(ch.recv() for _ in range(n)), pg.gomaxprocs()

        results.append(pg.run(main, procs=2))
    for r, (values, maxprocs) in enumerate(results):
        assert values == [2 * (r * 100 + i) for i in range(n)]
        assert maxprocs == 2


@pytest.mark.timeout(60)
def test_handle_from_an_earlier_run_is_rejected_in_a_later_one():
    def first():
        return pg.Chan(1)

    old = pg.run(first, procs=2)

    def second():
        with pytest.raises(pg.NotInRuntime):
            old.send(1)
        ch = pg.Chan(1)
        pg.go(_double, ch, 3)
        return ch.recv()

    assert pg.run(second, procs=2) == 6


def _probe_pid(ch, i) -> None:
    _busy(0.005)
    ch.send((i, os.getpid()))


def _start_method_main():
    """Spawn batches of short CPU-bound goroutines until one lands on P1."""
    me = os.getpid()
    ch = pg.Chan(16)
    seen = []
    deadline = time.monotonic() + 40  # spawned Ps take a while to import
    i = 0
    while time.monotonic() < deadline:
        for _ in range(8):
            pg.go(_probe_pid, ch, i)
            i += 1
        batch = [ch.recv() for _ in range(8)]
        seen.extend(batch)
        if any(pid != me for _, pid in batch):
            break
        pg.sleep(0.05)
    return me, i, seen


@pytest.fixture(scope="module")
def forkserver_running():
    """multiprocessing's forkserver is a process-wide helper that keeps its own
    pipes open for reuse; start it before the leak check takes its fd baseline
    (module scope sets up before the function-scoped leak check)."""
    multiprocessing.forkserver.ensure_running()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_every_start_method_runs_goroutines_on_the_other_p(method, forkserver_running):
    me, spawned, seen = pg.run(_start_method_main, procs=2, start_method=method)
    assert sorted(i for i, _ in seen) == list(range(spawned))  # each exactly once
    pids = {pid for _, pid in seen}
    assert len(pids - {me}) == 1, f"no goroutine ran on P1 with start_method={method}: {pids}"


def _pool_worker(ready, jobs, wg) -> None:
    ready.send(os.getpid())
    for _ in jobs:  # parked until main closes jobs
        pass
    wg.done()


def _pool_at_start_main(n):
    """A worker pool started the moment main starts: n workers that park."""
    ready, jobs, wg = pg.Chan(n), pg.Chan(), pg.WaitGroup()
    wg.add(n)
    for _ in range(n):
        pg.go(_pool_worker, ready, jobs, wg)
    pids = [ready.recv() for _ in range(n)]
    jobs.close()
    wg.wait()
    return os.getpid(), pids


@pytest.mark.timeout(240)
@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_pool_spawned_at_the_start_of_main_spreads_over_every_p(method, forkserver_running):
    """Placement puts half the pool in the other P's inbox while that P is
    still starting (or was just woken from its sleep); an idle P0 must not
    take it all back by stealing from a P that only looks stuck (shm/sched.c
    "Placement": a P's age counts from its first findRunnable or its wake-up)."""
    n, runs = 24, 20
    counts = []
    for _ in range(runs):
        me, pids = pg.run(_pool_at_start_main, n, procs=2, start_method=method)
        assert len(pids) == n  # every worker reported exactly once
        counts.append((pids.count(me), n - pids.count(me)))
    lopsided = [c for c in counts if min(c) == 0]
    assert not lopsided, f"start_method={method}: (P0, P1) workers per run {counts}"
