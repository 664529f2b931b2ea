"""pg.ErrGroup / pg.errgroup.with_context and pg.future (DESIGN §1 "context
and higher-level patterns", "Failure"), at procs=1 and procs=2.

Errors of ErrGroup and future goroutines are not uncaught: they surface
through wait()/result() and never end the program with Panic.
"""

from __future__ import annotations

import threading
import time

import pytest

import parago as pg
from parago._runtime import state
from tests.helpers import go_on, recv_within

# ---------------------------------------------------------------------------
# ErrGroup


def _member_ok(n: pg.atomic.Int64) -> None:
    pg.sleep(0.005)
    n.add(1)


def test_errgroup_wait_without_errors_returns_none(run):
    def main():
        g = pg.ErrGroup()
        n = pg.atomic.Int64()
        for _ in range(6):
            g.go(_member_ok, n)
        assert g.wait() is None
        assert g.wait() is None  # again: still nothing
        return n.load()

    assert run(main) == 6


def _fail_after(delay: float, exc: BaseException, ran: pg.atomic.Int64) -> None:
    pg.sleep(delay)
    ran.add(1)
    raise exc


def test_errgroup_wait_raises_the_first_error_and_the_program_goes_on(run):
    def main():
        g = pg.ErrGroup()
        ran = pg.atomic.Int64()
        g.go(_fail_after, 0.0, ValueError("first"), ran)
        g.go(_fail_after, 0.2, KeyError("second"), ran)
        g.go(_member_ok, ran)
        with pytest.raises(ValueError, match=r"^first$"):
            g.wait()
        # every member ran to its end before wait returned
        assert ran.load() == 3
        with pytest.raises(ValueError, match=r"^first$"):
            g.wait()  # the first error is kept
        return "main went on"

    assert run(main) == "main went on"


def _track(cur: pg.atomic.Int64, peak: pg.atomic.Int64, total: pg.atomic.Int64) -> None:
    now = cur.add(1)
    while True:
        m = peak.load()
        if now <= m or peak.compare_and_swap(m, now):
            break
    pg.sleep(0.01)
    cur.add(-1)
    total.add(1)


@pytest.mark.timeout(60)
def test_errgroup_set_limit_bounds_concurrent_members(run):
    def main():
        g = pg.ErrGroup()
        g.set_limit(2)
        cur, peak, total = pg.atomic.Int64(), pg.atomic.Int64(), pg.atomic.Int64()
        for _ in range(10):
            g.go(_track, cur, peak, total)  # blocks while 2 are running
        g.wait()
        return peak.load(), cur.load(), total.load()

    peak, cur, total = run(main)
    assert 1 <= peak <= 2
    assert (cur, total) == (0, 10)


def _hold(release: pg.Chan) -> None:
    release.recv_ok()


def test_errgroup_try_go_and_set_limit_while_active(run):
    def main():
        g = pg.ErrGroup()
        g.set_limit(1)
        release = pg.Chan()
        assert g.try_go(_hold, release) is True
        assert g.try_go(_hold, release) is False  # limit reached
        with pytest.raises(
            pg.ParagoError, match=r"^errgroup: modify limit while goroutines in the group are still active$"
        ):
            g.set_limit(3)
        release.close()
        g.wait()
        assert g.try_go(_hold, release) is True
        g.wait()
        g.set_limit(-1)  # no limit
        for _ in range(3):
            assert g.try_go(_hold, release) is True
        g.wait()
        return True

    assert run(main) is True


def _await_cancel(ctx, out: pg.Chan) -> None:
    out.send("ready")
    i, _, _ = pg.select(pg.Recv(ctx.done()), pg.Recv(pg.after(10)))
    out.send((i, type(ctx.err()).__name__))


def _fail_when_told(go_ahead: pg.Chan) -> None:
    go_ahead.recv()
    raise RuntimeError("member failed")


def test_errgroup_with_context_cancels_on_the_first_error(run):
    def main():
        g, ctx = pg.errgroup.with_context(pg.context.background())
        out = pg.Chan(4)
        go_ahead = pg.Chan(1)
        g.go(_await_cancel, ctx, out)
        g.go(_fail_when_told, go_ahead)
        assert recv_within(out) == "ready"
        assert ctx.err() is None
        go_ahead.send(True)
        with pytest.raises(RuntimeError, match=r"^member failed$"):
            g.wait()
        return recv_within(out), type(ctx.err()).__name__

    assert run(main) == ((0, "Canceled"), "Canceled")


def test_errgroup_with_context_is_canceled_when_wait_returns(run):
    def main():
        g, ctx = pg.errgroup.with_context(pg.context.background())
        n = pg.atomic.Int64()
        g.go(_member_ok, n)
        g.wait()
        i, _, ok = pg.select(pg.Recv(ctx.done()), default=True)
        return i, ok, type(ctx.err()).__name__

    assert run(main) == (0, False, "Canceled")


def _spawn_in_group(g: pg.ErrGroup, n: pg.atomic.Int64, started: pg.WaitGroup) -> None:
    g.go(_member_ok, n)
    g.go(_fail_after, 0.01, LookupError("from afar"), n)
    started.done()


def test_errgroup_shared_with_a_goroutine_on_another_p(run):
    def main():
        g = pg.ErrGroup()
        n = pg.atomic.Int64()
        started = pg.WaitGroup()
        started.add(1)
        g.go(started.wait)  # keeps the group open until the other P added its members
        go_on(1, _spawn_in_group, g, n, started)
        with pytest.raises(LookupError, match=r"from afar"):
            g.wait()
        return n.load()

    assert run(main) == 2


def test_errgroup_wait_async(run):
    async def main():
        g = pg.ErrGroup()
        ran = pg.atomic.Int64()
        g.go(_fail_after, 0.01, ValueError("async"), ran)
        with pytest.raises(ValueError, match=r"^async$"):
            await g.wait_async()
        return ran.load()

    assert run(main) == 1


# ---------------------------------------------------------------------------
# future


def _add(a: int, b: int) -> int:
    return a + b


def _slow_value(release: pg.Chan, v):
    release.recv()
    return v


def test_future_result_and_done(run):
    def main():
        f = pg.future(_add, 2, 3)
        assert isinstance(f, pg.Future)
        assert f.result() == 5
        assert f.done() is True  # as concurrent.futures: done once result() returned
        assert f.result() == 5  # any number of times
        release = pg.Chan(1)
        g = pg.future(_slow_value, release, [1, 2])
        pg.sleep(0.02)
        assert g.done() is False
        release.send(True)
        assert g.result() == [1, 2]
        assert g.done() is True
        return True

    assert run(main) is True


def _add_later(a: int, b: int):
    pg.sleep(0.001)
    return a + b


@pytest.mark.timeout(60)
def test_future_done_is_true_as_soon_as_result_returned(run):
    # result() returning means fn finished: done() must agree at once, also
    # when fn ran on the other P (concurrent.futures semantics)
    def main():
        late = 0
        for _ in range(400):
            f = pg.future(_add_later, 1, 2)
            time.sleep(0.0005)  # hold this P: the other one picks the goroutine up
            assert f.result() == 3
            late += not f.done()
        return late

    assert run(main) == 0


def test_future_done_becomes_true_without_result(run):
    def main():
        f = pg.future(_add, 1, 1)
        deadline = time.monotonic() + 10
        while not f.done():
            assert time.monotonic() < deadline, "done() never became True"
            pg.sleep(0.002)
        return f.result()

    assert run(main) == 2


def _boom(msg: str):
    pg.sleep(0.005)
    raise ValueError(msg)


def test_future_exception_is_raised_by_result_not_a_panic(run):
    def main():
        f = pg.future(_boom, "bad input")
        with pytest.raises(ValueError, match=r"^bad input$"):
            f.result()
        with pytest.raises(ValueError, match=r"^bad input$"):
            f.result()
        assert f.done() is True
        pg.sleep(0.05)  # the program is not ending behind our back
        return "still running"

    assert run(main) == "still running"


def test_future_c_delivers_the_outcome_once_and_result_still_works(run):
    def main():
        f = pg.future(_add, 20, 22)
        i, v, ok = pg.select(pg.Recv(f.c), pg.Recv(pg.after(10)))
        assert (i, v, ok) == (0, 42, True)
        # delivered once: nothing more on .c
        assert pg.select(pg.Recv(f.c), default=True) == (-1, None, False)
        assert f.result() == 42
        assert f.done() is True
        return True

    assert run(main) is True


def test_future_c_delivers_the_exception_instance(run):
    def main():
        f = pg.future(_boom, "via c")
        i, v, ok = pg.select(pg.Recv(f.c), pg.Recv(pg.after(10)))
        assert i == 0 and ok
        assert isinstance(v, ValueError) and str(v) == "via c"
        with pytest.raises(ValueError, match=r"^via c$"):
            f.result()
        return True

    assert run(main) is True


def test_future_c_in_a_select_with_other_channels(run):
    def main():
        release = pg.Chan(1)
        f = pg.future(_slow_value, release, "late")
        other = pg.Chan(1)
        other.send("other first")
        i, v, _ = pg.select(pg.Recv(f.c), pg.Recv(other))
        assert (i, v) == (1, "other first")
        release.send(True)
        i, v, _ = pg.select(pg.Recv(f.c), pg.Recv(other), pg.Recv(pg.after(10)))
        assert (i, v) == (0, "late")
        return f.result()

    assert run(main) == "late"


def _result_elsewhere(f: pg.Future, out: pg.Chan) -> None:
    try:
        out.send(("ok", f.result(), state.rt.p))
    except Exception as e:  # noqa: BLE001 - reported back to main
        out.send(("err", f"{type(e).__name__}: {e}", state.rt.p))


def test_future_result_from_goroutines_on_every_p(run, procs):
    def main():
        f = pg.future(_add, 40, 2)
        e = pg.future(_boom, "shared failure")
        out = pg.Chan(8)
        for i in range(4):
            go_on(i, _result_elsewhere, f if i % 2 == 0 else e, out)
        got = sorted(recv_within(out) for _ in range(4))
        assert f.result() == 42
        return got

    assert run(main) == sorted(
        [("ok", 42, i % procs) for i in (0, 2)] + [("err", "ValueError: shared failure", i % procs) for i in (1, 3)]
    )


def _make_lock():
    return threading.Lock()


def test_future_result_that_cannot_be_copied_raises_encodeerror(run):
    def main():
        f = pg.future(_make_lock)
        with pytest.raises(pg.EncodeError):
            f.result()
        return True

    assert run(main) is True


async def _async_add(a: int, b: int) -> int:
    await pg.sleep_async(0.005)
    return a + b


def test_future_result_async_from_an_async_goroutine(run):
    async def main():
        f = pg.future(_add, 1, 2)
        assert await f.result_async() == 3
        e = pg.future(_boom, "async caller")
        with pytest.raises(ValueError, match=r"^async caller$"):
            await e.result_async()
        return f.done()

    assert run(main) is True


def test_future_of_an_async_function(run):
    def main():
        f = pg.future(_async_add, 1, 2)
        return f.result(), f.done()

    assert run(main) == (3, True)


async def _async_boom(msg: str):
    await pg.sleep_async(0.005)
    raise ValueError(msg)


def test_future_of_an_async_function_that_raises(run):
    def main():
        f = pg.future(_async_boom, "async failure")
        with pytest.raises(ValueError, match=r"^async failure$"):
            f.result()
        return "no panic"

    assert run(main) == "no panic"
