"""pg.synctest and pg.now (DESIGN §1 "Testing concurrent programs"): virtual
time for a whole program, at procs=1 and procs=2.

Ported from Go's src/internal/synctest/synctest_test.go and the examples of
testing/synctest where parago has the same pieces; the event-order test
runs one program in real time (scaled down) and in virtual time (scaled
up 12,000x) and wants the same events at the same scaled times.
"""

from __future__ import annotations

import time

import pytest

import parago as pg
from parago import synctest

EPOCH = 946684800.0  # 2000-01-01 00:00:00 UTC: where Go's bubble clock starts
ctxmod = pg.context


# ---------------------------------------------------------------------------
# the clock


@pytest.mark.timeout(60)
def test_now_starts_at_2000_and_moves_only_by_sleeps(procs):
    # Go: TestNow
    def child(out):
        out.send(pg.now())

    def main():
        assert pg.now() == EPOCH
        out = pg.Chan(1)
        pg.go(child, out)
        assert out.recv() == EPOCH  # another goroutine (maybe another P) sees the same clock
        time.sleep(0.05)  # real time passing does not move it
        assert pg.now() == EPOCH
        pg.sleep(1)
        assert pg.now() == EPOCH + 1
        pg.sleep(0.25)
        return pg.now() - EPOCH

    assert synctest.run(main, procs=procs) == 1.25


@pytest.mark.timeout(60)
def test_now_is_time_time_outside_synctest(run):
    t = time.time()
    assert abs(pg.now() - t) < 1.0  # outside any run
    def main():
        return pg.now(), time.time()

    n, t = run(main)
    assert abs(n - t) < 0.5


@pytest.mark.timeout(60)
def test_time_time_is_not_virtual(procs):
    def main():
        t0 = time.time()
        pg.sleep(7200)
        return time.time() - t0, pg.now() - EPOCH

    real, virtual = synctest.run(main, procs=procs)
    assert virtual == 7200
    assert 0 <= real < 5


@pytest.mark.timeout(60)
def test_goroutines_sleeping_hours_finish_fast_in_deadline_order(procs):
    def sleeper(hours, out):
        pg.sleep(3600 * hours)
        out.send((hours, pg.now() - EPOCH))

    def main():
        out = pg.Chan(16)
        order = [5, 3, 8, 1, 7, 2, 6, 4]
        for h in order:
            pg.go(sleeper, h, out)
        got = [out.recv() for _ in order]
        return got, pg.numgoroutine()

    t0 = time.monotonic()
    got, _ = synctest.run(main, procs=procs)
    elapsed = time.monotonic() - t0
    assert got == [(h, 3600.0 * h) for h in range(1, 9)]  # each at exactly its deadline
    assert elapsed < 5  # eight hours of sleeps (typically ~20 ms)


# ---------------------------------------------------------------------------
# the same program in real and in virtual time


def _program(unit):
    """Ten goroutines on timers; returns [(event, time in units)] in the
    order main received them.  Every event is at least one unit from any
    other, so a real-time run (unit 0.25 s) orders them without ties."""

    def log(out, name, t0):
        out.send((name, round((pg.now() - t0) / unit)))

    def sleeper(out, t0):
        pg.sleep(3 * unit)
        log(out, "sleep 3", t0)
        pg.sleep(4 * unit)
        log(out, "sleep 7", t0)

    def ticker(out, t0):
        tk = pg.Ticker(2 * unit)
        for i in range(3):
            tk.c.recv()
            log(out, f"tick {i + 1}", t0)
        tk.stop()

    def with_timeout(out, t0):
        ctx, cancel = ctxmod.with_timeout(ctxmod.background(), 5 * unit)
        ctx.done().recv_ok()
        assert isinstance(ctx.err(), ctxmod.DeadlineExceeded)
        log(out, "ctx 5", t0)
        cancel()

    def canceled_early(out, t0):
        ctx, cancel = ctxmod.with_timeout(ctxmod.background(), 100 * unit)
        pg.sleep(9 * unit)
        cancel()
        ctx.done().recv_ok()
        assert isinstance(ctx.err(), ctxmod.Canceled)
        log(out, "cancel 9", t0)

    def after(out, t0):
        i, _, _ = pg.select(pg.Recv(pg.after(8 * unit)), pg.Recv(pg.Chan()))
        assert i == 0
        log(out, "after 8", t0)

    def timer_reset(out, t0):
        tm = pg.Timer(1 * unit)
        tm.reset(11 * unit)  # the first arming never fires
        tm.c.recv()
        log(out, "timer 11", t0)

    def stopped(out, t0):
        tm = pg.Timer(6 * unit)
        tm.stop()
        i, _, _ = pg.select(pg.Recv(tm.c), pg.Recv(pg.after(10 * unit)))
        log(out, f"stopped {i}", t0)

    def pinger(ping, pong):
        for v in ping:
            pong.send(v + 1)

    def relay(out, t0):
        ping, pong = pg.Chan(), pg.Chan()
        pg.go(pinger, ping, pong)
        pg.sleep(12 * unit)
        ping.send(1)
        log(out, f"relay {pong.recv()}", t0)
        ping.close()

    def main():
        t0 = pg.now()
        out = pg.Chan(32)
        fns = [sleeper, ticker, with_timeout, canceled_early, after, timer_reset, stopped, relay]
        for fn in fns:
            pg.go(fn, out, t0)
        n = 11  # events the goroutines above log
        if hasattr(pg, "after_func"):
            n += 1
            pg.after_func(1 * unit, log, out, "after_func 1", t0)
        return [out.recv() for _ in range(n)]

    return main


EXPECTED = [
    ("tick 1", 2), ("sleep 3", 3), ("tick 2", 4), ("ctx 5", 5), ("tick 3", 6), ("sleep 7", 7),
    ("after 8", 8), ("cancel 9", 9), ("stopped 1", 10), ("timer 11", 11), ("relay 2", 12),
]


@pytest.mark.timeout(120)
def test_event_order_matches_a_real_time_run(procs):
    t0 = time.monotonic()
    virtual = synctest.run(_program(1200.0), procs=procs)  # 20 minutes a unit
    elapsed = time.monotonic() - t0
    expected = ([("after_func 1", 1)] if hasattr(pg, "after_func") else []) + EXPECTED
    assert virtual == expected  # every event exactly at its deadline
    assert elapsed < 1.0  # four hours of virtual time
    # the same program in real time, a quarter second a unit: the same
    # events in the same order, each within the unit it is due in
    real = pg.run(_program(0.25), procs=procs)
    assert [e for e, _ in real] == [e for e, _ in virtual]
    assert all(abs(tr - tv) <= 1 for (_, tr), (_, tv) in zip(real, virtual, strict=True)), real


# ---------------------------------------------------------------------------
# synctest.wait (Go: TestSimpleWait, TestGoroutineWait, TestWait, ...)


@pytest.mark.timeout(60)
def test_run_empty_and_simple_wait(procs):
    assert synctest.run(lambda: 7, procs=procs) == 7

    def main():
        synctest.wait()
        pg.go(lambda: None)
        synctest.wait()
        return pg.numgoroutine()

    assert synctest.run(main, procs=procs) == 1


@pytest.mark.timeout(60)
def test_wait_returns_once_a_chain_of_goroutines_is_done(procs):
    # Go: TestWait -- each goroutine starts the next and hands it the count
    def f(ch, done):
        count = ch.recv()
        if count == 0:
            done.store(1)
        else:
            pg.go(f, ch, done)
            ch.send(count - 1)

    def main():
        done = pg.atomic.Int64()
        ch = pg.Chan()
        pg.go(f, ch, done)
        ch.send(100)
        synctest.wait()
        return done.load(), pg.numgoroutine(), pg.now() - EPOCH

    assert synctest.run(main, procs=procs) == (1, 1, 0.0)


@pytest.mark.timeout(60)
def test_wait_does_not_return_while_a_goroutine_runs(procs):
    def busy(flag):
        end = time.monotonic() + 0.3  # real work, no parking
        while time.monotonic() < end:
            pass
        flag.store(1)

    def main():
        flag = pg.atomic.Int64()
        pg.go(busy, flag)
        synctest.wait()
        return flag.load()

    assert synctest.run(main, procs=procs) == 1


@pytest.mark.timeout(60)
def test_wait_returns_before_time_moves(procs):
    # Go: when every goroutine is blocked, Wait returns first
    def main():
        fired = pg.atomic.Int64()

        def later():
            pg.sleep(10)
            fired.store(1)

        pg.go(later)
        synctest.wait()
        before = (fired.load(), pg.now() - EPOCH)
        pg.sleep(10)  # the sleeper's timer and ours are due together
        synctest.wait()
        return before, (fired.load(), pg.now() - EPOCH)

    assert synctest.run(main, procs=procs) == ((0, 0.0), (1, 10.0))


@pytest.mark.timeout(60)
def test_wait_async_from_an_async_goroutine(procs):
    async def amain():
        with pytest.raises(pg.ParagoError, match=r"wait_async"):
            synctest.wait()  # a blocking call from async code names the async form
        flag = pg.atomic.Int64()

        def child():
            pg.sleep(5)
            flag.store(1)

        pg.go(child)
        await synctest.wait_async()
        before = flag.load()
        await pg.sleep_async(5)
        await synctest.wait_async()
        return before, flag.load(), pg.now() - EPOCH

    assert synctest.run(amain, procs=procs) == (0, 1, 5.0)


@pytest.mark.timeout(60)
def test_processes_started_by_spawn_share_the_clock(monkeypatch):
    monkeypatch.setenv("PARAGO_START_METHOD", "spawn")

    def main():
        out = pg.Chan(8)
        for i in range(4):
            pg.go(_sleep_and_report, i, out)
        return sorted(out.recv() for _ in range(4))

    assert synctest.run(main, procs=2) == [(i, 600.0 * i) for i in range(4)]


def _sleep_and_report(i, out):
    pg.sleep(600 * i)
    out.send((i, pg.now() - EPOCH))


@pytest.mark.timeout(60)
def test_timer_read_before_and_after_deadline(procs):
    # Go: TestTimerReadBeforeDeadline, TestTimerReadAfterDeadline
    def main():
        start = pg.now()
        tm = pg.Timer(5)
        v1 = tm.c.recv()
        a = pg.now() - start
        tm2 = pg.Timer(1)
        pg.sleep(2)
        v2 = tm2.c.recv()  # the time it fired, not the time it was read
        return a, v1 - start, v2 - start, pg.now() - start

    assert synctest.run(main, procs=procs) == (5.0, 5.0, 6.0, 7.0)


@pytest.mark.timeout(60)
def test_timer_reset(procs):
    # Go: TestTimerReset
    def main():
        start = pg.now()
        tm = pg.Timer(1)
        got = [tm.c.recv() - start]
        tm.reset(2)
        got.append(tm.c.recv() - start)
        tm.reset(3)
        pg.sleep(1)
        tm.reset(3)
        got.append(tm.c.recv() - start)
        return got

    assert synctest.run(main, procs=procs) == [1.0, 3.0, 7.0]


@pytest.mark.timeout(60)
def test_after_func_goroutines_join_the_clock(procs):
    # Go: TestTimeAfter
    if not hasattr(pg, "after_func"):
        pytest.skip("pg.after_func is not in this build")

    def second(n):
        pg.sleep(1)
        n.add(1)

    def first(n):
        n.add(1)
        pg.go(second, n)

    def main():
        n = pg.atomic.Int64()
        pg.after_func(1, first, n)
        pg.sleep(3)
        synctest.wait()
        return n.load()

    assert synctest.run(main, procs=procs) == 2


@pytest.mark.timeout(60)
def test_context_with_timeout_example(procs):
    # testing/synctest's ContextWithTimeout example
    def main():
        ctx, cancel = ctxmod.with_timeout(ctxmod.background(), 5)
        assert ctx.deadline() == (EPOCH + 5, True)
        pg.sleep(4.999)
        synctest.wait()
        before = ctx.err()
        pg.sleep(0.001)
        synctest.wait()
        after = ctx.err()
        cancel()
        return before, type(after).__name__

    assert synctest.run(main, procs=procs) == (None, "DeadlineExceeded")


@pytest.mark.timeout(60)
def test_context_after_func_example(procs):
    # testing/synctest's ContextAfterFunc example
    if not hasattr(ctxmod, "after_func"):
        pytest.skip("pg.context.after_func is not in this build")

    def main():
        ctx, cancel = ctxmod.with_cancel(ctxmod.background())
        called = pg.atomic.Int64()
        ctxmod.after_func(ctx, lambda: called.store(1))
        synctest.wait()
        before = called.load()  # not canceled yet: not called
        cancel()
        synctest.wait()  # the AfterFunc goroutine has run
        return before, called.load(), pg.now() - EPOCH

    assert synctest.run(main, procs=procs) == (0, 1, 0.0)


@pytest.mark.timeout(60)
def test_cond_and_waitgroup_wait_in_virtual_time(procs):
    # Go: TestCond, TestWaitGroupInBubble
    def signaller(mu, cond):
        pg.sleep(0.001)
        with mu:
            cond.signal()
        pg.sleep(0.001)
        with mu:
            cond.broadcast()

    def waiter(mu, cond, done):
        with mu:
            cond.wait()
        done.store(1)

    def worker(wg):
        pg.sleep(1)
        wg.done()

    def main():
        mu = pg.Mutex()
        cond = pg.Cond(mu)
        start = pg.now()
        pg.go(signaller, mu, cond)
        with mu:
            cond.wait()
        t1 = pg.now() - start
        done = pg.atomic.Int64()
        pg.go(waiter, mu, cond, done)
        with mu:
            cond.wait()
        synctest.wait()
        t2 = pg.now() - start
        wg = pg.WaitGroup()
        wg.add(1)
        pg.go(worker, wg)
        s = pg.now()
        wg.wait()
        return t1, t2, done.load(), pg.now() - s

    # pg.now() is a float like time.time(): ~0.1 us apart near 2000-01-01
    t1, t2, done, waited = synctest.run(main, procs=procs)
    assert (t1, t2) == (pytest.approx(0.001, abs=1e-6), pytest.approx(0.002, abs=1e-6))
    assert (done, waited) == (1, 1.0)


@pytest.mark.timeout(60)
def test_ticker_ticks_at_exact_periods(procs):
    def main():
        start = pg.now()
        tk = pg.Ticker(0.5)
        got = [tk.c.recv() - start for _ in range(4)]
        tk.stop()
        return got

    assert synctest.run(main, procs=procs) == [0.5, 1.0, 1.5, 2.0]


@pytest.mark.timeout(60)
def test_goroutines_sleeping_to_the_same_instant_wake_in_no_fixed_order(procs):
    # Go: TestSleepNondeterminism
    def sleeper(first, v):
        pg.sleep(1e-9)
        first.compare_and_swap(0, v)

    def main():
        seen = set()
        for _ in range(300):
            first = pg.atomic.Int64()
            pg.go(sleeper, first, 1)
            pg.go(sleeper, first, 2)
            pg.sleep(1e-9)
            synctest.wait()
            assert first.load() in (1, 2)
            seen.add(first.load())
            if len(seen) == 2:
                return seen
        return seen

    assert synctest.run(main, procs=procs) == {1, 2}


@pytest.mark.timeout(60)
def test_timers_due_at_the_same_instant_fire_in_no_fixed_order(procs):
    # Go: TestTimerNondeterminism
    def main():
        seen = set()
        for _ in range(300):
            tm1, tm2 = pg.Timer(1e-9), pg.Timer(1e-9)
            i, _, _ = pg.select(pg.Recv(tm1.c), pg.Recv(tm2.c))
            seen.add(i)
            if len(seen) == 2:
                return seen
            synctest.wait()
        return seen

    assert synctest.run(main, procs=procs) == {0, 1}


# ---------------------------------------------------------------------------
# what holds the clock: running goroutines and real waits


@pytest.mark.timeout(60)
def test_blocking_io_keeps_real_time_and_holds_the_clock(procs):
    def sleeper(out):
        pg.sleep(10)
        out.send(pg.now() - EPOCH)

    def main():
        out = pg.Chan(1)
        pg.go(sleeper, out)
        t0 = time.monotonic()
        pg.blocking(time.sleep, 0.2)  # real: the clock may not move meanwhile
        real = time.monotonic() - t0
        held = pg.now() - EPOCH
        early = len(out)
        woke = out.recv()
        return real, held, early, woke

    real, held, early, woke = synctest.run(main, procs=procs)
    assert real >= 0.2
    assert (held, early, woke) == (0.0, 0, 10.0)


@pytest.mark.timeout(60)
def test_a_running_goroutine_holds_the_clock(procs):
    def busy(out):
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            pass
        out.send(("busy", pg.now() - EPOCH))

    def main():
        out = pg.Chan(2)
        pg.go(busy, out)
        pg.sleep(1)
        out.send(("main", pg.now() - EPOCH))
        return [out.recv(), out.recv()]

    assert synctest.run(main, procs=procs) == [("busy", 0.0), ("main", 1.0)]


# ---------------------------------------------------------------------------
# deadlock


@pytest.mark.timeout(60)
def test_all_blocked_with_no_timer_is_deadlock(procs):
    # Go: TestDeadlockRoot
    def main():
        pg.Chan().recv()

    t0 = time.monotonic()
    with pytest.raises(pg.Deadlock, match=r"all goroutines are asleep - deadlock!"):
        synctest.run(main, procs=procs)
    assert time.monotonic() - t0 < 10


@pytest.mark.timeout(60)
def test_deadlock_after_the_last_timer_fired(procs):
    def stuck(ch):
        ch.recv()

    def main():
        ch = pg.Chan()
        pg.go(stuck, ch)
        pg.sleep(3600)  # not a deadlock: the clock moves to it
        assert pg.now() == EPOCH + 3600
        ch2 = pg.Chan()
        ch2.recv()  # now nothing can ever move

    with pytest.raises(pg.Deadlock) as ei:
        synctest.run(main, procs=procs)
    assert "chan receive" in str(ei.value)


# ---------------------------------------------------------------------------
# bad input


@pytest.mark.timeout(60)
def test_wait_outside_synctest_is_an_error(run):
    with pytest.raises(pg.NotInRuntime):
        synctest.wait()

    def main():
        try:
            synctest.wait()
        except pg.ParagoError as e:
            return str(e)

    assert run(main).startswith("pg.synctest.wait: goroutine is not in a bubble")


def _waiter(out):
    try:
        synctest.wait()
    except pg.ParagoError as e:
        out.send(str(e))
    else:
        out.send("returned")


@pytest.mark.timeout(60)
def test_wait_from_two_goroutines_at_once_is_an_error(procs):
    # Go panics "wait already in progress": the first waiter cannot return
    # while the other goroutine runs, so their waits always overlap
    def main():
        out = pg.Chan(2)
        pg.go(_waiter, out)
        pg.go(_waiter, out)
        return sorted([out.recv(), out.recv()])

    err, ok = synctest.run(main, procs=procs)
    assert ok == "returned"
    assert err == "pg.synctest.wait: wait already in progress (another goroutine is in synctest.wait)"


@pytest.mark.timeout(60)
def test_nested_synctest_is_an_error(procs):
    def inner():
        try:
            synctest.run(lambda: None)
        except pg.ParagoError as e:
            return str(e)

    def main():
        out = pg.Chan(1)
        pg.go(lambda: out.send(inner()))
        return inner(), out.recv()

    assert synctest.run(main, procs=procs) == ("synctest.run called from within a synctest bubble",) * 2


@pytest.mark.timeout(60)
def test_synctest_inside_pg_run_and_with_cluster_are_errors(run):
    def main():
        with pytest.raises(pg.ParagoError, match=r"^pg.synctest.run cannot be nested"):
            synctest.run(lambda: None)
        return True

    assert run(main)
    with pytest.raises(ValueError, match=r"^pg.synctest.run: cluster='ray' is not supported") as ei:
        synctest.run(lambda: None, cluster="ray")
    assert isinstance(ei.value, pg.ParagoError)


@pytest.mark.timeout(60)
def test_synctest_run_is_reusable_and_leaves_real_time_behind(procs):
    def main():
        pg.sleep(60)
        return pg.now()

    assert synctest.run(main, procs=procs) == EPOCH + 60
    assert synctest.run(main, procs=procs) == EPOCH + 60  # a fresh clock each run

    def real():
        t0 = time.monotonic()
        pg.sleep(0.05)
        return time.monotonic() - t0, abs(pg.now() - time.time())

    dt, skew = pg.run(real, procs=procs)
    assert dt >= 0.05 and skew < 0.5
