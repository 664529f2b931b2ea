"""pg.context: cancellation, deadlines and values across every P (DESIGN §1
"context and higher-level patterns"), at procs=1 and procs=2."""

from __future__ import annotations

import gc
import threading
import time

import pytest

import parago as pg
from parago._runtime import state
from parago._shim import offset
from tests.helpers import go_on, recv_within

ctxmod = pg.context


def closed_within(ch: pg.Chan, seconds: float = 10.0) -> bool:
    """True if ch is closed (and drained) within ``seconds``."""
    i, _, ok = pg.select(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    return i == 0 and not ok


def is_closed(ch: pg.Chan) -> bool:
    i, _, ok = pg.select(pg.Recv(ch), default=True)
    return i == 0 and not ok


# ---------------------------------------------------------------------------
# background


def test_background_is_never_canceled_and_has_nothing(run):
    def main():
        bg = ctxmod.background()
        assert isinstance(bg.done(), pg.Chan)  # DESIGN: ctx.done() -> Chan
        assert bg.err() is None
        assert bg.value("anything") is None
        assert bg.deadline() == (None, False)
        assert ctxmod.todo().done() == bg.done()
        # like Go's nil done channel, it is never ready (never closed)
        i, _, _ = pg.select(pg.Recv(bg.done()), default=True)
        assert i == -1
        assert not bg.done().closed
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# with_cancel


def test_cancel_closes_done_and_sets_canceled(run):
    def main():
        ctx, cancel = ctxmod.with_cancel(ctxmod.background())
        d = ctx.done()
        assert isinstance(d, pg.Chan)
        assert ctx.err() is None
        assert not is_closed(d)
        cancel()
        assert is_closed(d)
        assert d.recv_ok() == (None, False)
        assert isinstance(ctx.err(), ctxmod.Canceled)
        assert isinstance(ctx.err(), pg.ParagoError)
        assert str(ctx.err()) == "context canceled"
        cancel()  # idempotent
        cancel()
        assert isinstance(ctx.err(), ctxmod.Canceled)
        assert ctx.done() == d
        return True

    assert run(main) is True


def test_with_cancel_needs_a_context(run):
    def main():
        with pytest.raises(TypeError):
            ctxmod.with_cancel(None)
        with pytest.raises(TypeError):
            ctxmod.with_value("nope", "k", 1)
        return True

    assert run(main) is True


def _call(fn) -> None:
    fn()


def test_cancel_func_can_be_called_in_another_goroutine(run):
    def main():
        ctx, cancel = ctxmod.with_cancel(ctxmod.background())
        go_on(1, _call, cancel)
        assert closed_within(ctx.done()), "cancel called in a goroutine did not close done()"
        return type(ctx.err()).__name__

    assert run(main) == "Canceled"


def test_cancel_func_sent_on_a_channel_cancels_the_original(run):
    def receiver(ch):
        fn = ch.recv()
        fn()

    def main():
        ctx, cancel = ctxmod.with_cancel(ctxmod.background())
        ch = pg.Chan(1)
        go_on(1, receiver, ch)
        ch.send(cancel)
        assert closed_within(ctx.done())
        return isinstance(ctx.err(), ctxmod.Canceled)

    assert run(main) is True


def test_parent_cancellation_reaches_children_not_the_other_way(run):
    def main():
        parent, pcancel = ctxmod.with_cancel(ctxmod.background())
        child, ccancel = ctxmod.with_cancel(parent)
        grandchild, gcancel = ctxmod.with_cancel(ctxmod.with_value(child, "k", 1))
        sibling, scancel = ctxmod.with_cancel(parent)
        scancel()
        assert closed_within(sibling.done())
        # a child's cancellation does not reach its parent
        assert not closed_within(parent.done(), 0.05)
        assert parent.err() is None and child.err() is None
        pcancel()
        assert closed_within(child.done()), "parent cancellation did not reach the child"
        assert closed_within(grandchild.done()), "parent cancellation did not reach the grandchild"
        assert isinstance(child.err(), ctxmod.Canceled)
        assert isinstance(grandchild.err(), ctxmod.Canceled)
        ccancel()
        gcancel()
        return True

    assert run(main) is True


def test_child_of_a_canceled_parent_is_canceled_at_once(run):
    def main():
        parent, pcancel = ctxmod.with_cancel(ctxmod.background())
        pcancel()
        child, _ = ctxmod.with_cancel(parent)
        assert is_closed(child.done())
        return isinstance(child.err(), ctxmod.Canceled)

    assert run(main) is True


def _park_on_done(ctx, other: pg.Chan, out: pg.Chan) -> None:
    out.send(("ready", state.rt.p))
    i, _, ok = pg.select(pg.Recv(ctx.done()), pg.Recv(other))
    out.send((i, ok, time.monotonic(), type(ctx.err()).__name__))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("via_parent", [False, True], ids=["direct", "via_parent"])
def test_cancel_wakes_a_select_parked_on_the_other_p_quickly(run, procs, via_parent):
    def main():
        root, cancel = ctxmod.with_cancel(ctxmod.background())
        ctx = ctxmod.with_cancel(root)[0] if via_parent else root
        other = pg.Chan()
        out = pg.Chan(2)
        go_on(1, _park_on_done, ctx, other, out)
        tag, p = recv_within(out)
        assert tag == "ready" and p == 1 % procs
        pg.sleep(0.05)  # let it park in select
        t0 = time.monotonic()
        cancel()
        i, ok, t_woke, err = recv_within(out)
        return i, ok, t_woke - t0, err

    i, ok, latency, err = run(main)
    assert (i, ok, err) == (0, False, "Canceled")
    assert latency < 0.5, f"cancellation took {latency:.3f} s to reach the other P"


# ---------------------------------------------------------------------------
# deadlines


def test_with_timeout_expires_with_deadline_exceeded(run):
    def main():
        t0 = time.time()
        ctx, cancel = ctxmod.with_timeout(ctxmod.background(), 0.05)
        when, ok = ctx.deadline()
        assert ok is True
        assert t0 + 0.04 <= when <= time.time() + 0.06
        assert ctx.err() is None
        assert closed_within(ctx.done())
        elapsed = time.time() - t0
        err = ctx.err()
        assert isinstance(err, ctxmod.DeadlineExceeded)
        assert isinstance(err, TimeoutError)
        assert isinstance(err, pg.ParagoError)
        assert str(err) == "context deadline exceeded"
        cancel()  # after expiry: no change
        assert isinstance(ctx.err(), ctxmod.DeadlineExceeded)
        return elapsed

    elapsed = run(main)
    assert 0.04 <= elapsed < 5


def test_with_deadline_expires_and_is_inherited_by_children(run):
    def main():
        t = time.time() + 0.05
        ctx, _ = ctxmod.with_deadline(ctxmod.background(), t)
        assert ctx.deadline() == (t, True)
        # a later deadline in a child is capped by the parent's
        child, _ = ctxmod.with_timeout(ctx, 30)
        assert child.deadline() == (t, True)
        # a plain child reports the parent's deadline
        assert ctxmod.with_cancel(ctx)[0].deadline() == (t, True)
        assert ctxmod.with_value(ctx, "k", 1).deadline() == (t, True)
        assert closed_within(child.done())
        assert closed_within(ctx.done())
        assert isinstance(ctx.err(), ctxmod.DeadlineExceeded)
        assert isinstance(child.err(), ctxmod.DeadlineExceeded)
        return True

    assert run(main) is True


def test_deadline_in_the_past_is_done_at_once(run):
    def main():
        ctx, _ = ctxmod.with_deadline(ctxmod.background(), time.time() - 1)
        assert is_closed(ctx.done())
        return isinstance(ctx.err(), ctxmod.DeadlineExceeded)

    assert run(main) is True


def test_cancel_before_the_deadline_gives_canceled(run):
    def main():
        ctx, cancel = ctxmod.with_timeout(ctxmod.background(), 0.05)
        cancel()
        assert is_closed(ctx.done())
        pg.sleep(0.1)  # the timer firing later changes nothing
        return type(ctx.err()).__name__

    assert run(main) == "Canceled"


def test_timeout_arguments_are_checked(run):
    def main():
        bg = ctxmod.background()
        with pytest.raises(TypeError):
            ctxmod.with_timeout(bg, "1")
        with pytest.raises(TypeError):
            ctxmod.with_deadline(bg, None)
        return True

    assert run(main) is True


def _wait_done(ctx, out: pg.Chan) -> None:
    out.send(("ready", state.rt.p))
    pg.select(pg.Recv(ctx.done()))
    out.send(time.monotonic())


@pytest.mark.timeout(60)
def test_deadline_fires_while_the_p_that_set_it_is_busy(run, procs):
    if procs < 2:
        pytest.skip("needs a second P to observe it")

    def main():
        ctx, _ = ctxmod.with_timeout(ctxmod.background(), 0.05)
        out = pg.Chan(2)
        go_on(1, _wait_done, ctx, out)
        assert recv_within(out) == ("ready", 1)
        t0 = time.monotonic()
        time.sleep(1.0)  # keep this P's hub busy: no goroutine of P0 runs
        t_busy_end = time.monotonic()
        t_fired = recv_within(out)
        return t_fired - t0, t_busy_end - t0

    fired, busy = run(main)
    assert fired < busy - 0.2, f"the deadline fired only after the busy P was free ({fired:.3f} s)"


# ---------------------------------------------------------------------------
# values


def test_with_value_lookup_through_the_chain(run):
    def main():
        bg = ctxmod.background()
        a = ctxmod.with_value(bg, "user", "ann")
        b, cancel = ctxmod.with_cancel(a)
        c = ctxmod.with_value(b, "req", {"id": 7})
        d = ctxmod.with_value(c, "user", "bob")  # shadows for d only
        assert c.value("user") == "ann"
        assert c.value("req") == {"id": 7}
        assert b.value("user") == "ann"
        assert b.value("req") is None
        assert c.value("missing") is None
        assert d.value("user") == "bob"
        assert d.value("req") == {"id": 7}
        # the value context follows its parent's cancellation
        cancel()
        assert closed_within(d.done())
        assert isinstance(d.err(), ctxmod.Canceled)
        return True

    assert run(main) is True


def test_with_value_that_cannot_be_copied_raises_at_once(run):
    def main():
        with pytest.raises(pg.EncodeError):
            ctxmod.with_value(ctxmod.background(), "lock", threading.Lock())
        return True

    assert run(main) is True


def test_with_value_holding_a_buffer_does_not_keep_it_alive(run):
    # a Buffer is freed when no P holds it (DESIGN "sync and atomics"):
    # a dropped value context must not pin it in the arena
    def inuse():
        gc.collect()
        state.rt.flush_decrefs()
        return state.rt.arena.q[offset("pg_arena", "inuse") // 8]

    def main():
        bg = ctxmod.background()
        base = inuse()
        for _ in range(50):
            ctx = ctxmod.with_value(bg, "buf", pg.Buffer(64 * 1024))
            assert len(ctx.value("buf")) == 64 * 1024
            del ctx
        pg.sleep(0.01)
        return inuse() - base

    assert run(main) < 64 * 1024


def _lookup(ctx, out: pg.Chan) -> None:
    out.send((ctx.value("user"), ctx.value("req"), ctx.value("nope")))


def test_values_are_seen_by_goroutines_on_other_ps(run):
    def main():
        ctx = ctxmod.with_value(ctxmod.background(), "user", "ann")
        ctx = ctxmod.with_value(ctxmod.with_cancel(ctx)[0], "req", [1, 2])
        out = pg.Chan(1)
        go_on(1, _lookup, ctx, out)
        return recv_within(out)

    assert run(main) == ("ann", [1, 2], None)


# ---------------------------------------------------------------------------
# contexts that travel


def _report_when_done(ctx, out: pg.Chan, tag: str) -> None:
    out.send(("ready", tag))
    pg.select(pg.Recv(ctx.done()))
    out.send((tag, type(ctx.err()).__name__))


def _recv_ctx_and_report(ch: pg.Chan, out: pg.Chan) -> None:
    ctx = ch.recv()
    _report_when_done(ctx, out, "by channel")


def test_contexts_passed_to_go_and_sent_on_channels_cancel_together(run):
    def main():
        parent, cancel = ctxmod.with_cancel(ctxmod.background())
        child = ctxmod.with_value(ctxmod.with_cancel(parent)[0], "k", "v")
        out = pg.Chan(8)
        ch = pg.Chan(1)
        go_on(1, _report_when_done, parent, out, "by go")
        go_on(0, _report_when_done, child, out, "child by go")
        go_on(1, _recv_ctx_and_report, ch, out)
        ch.send(child)
        ready = {recv_within(out) for _ in range(3)}
        assert ready == {("ready", "by go"), ("ready", "child by go"), ("ready", "by channel")}
        assert not closed_within(child.done(), 0.02)
        cancel()
        return sorted(recv_within(out) for _ in range(3))

    assert run(main) == [
        ("by channel", "Canceled"),
        ("by go", "Canceled"),
        ("child by go", "Canceled"),
    ]


def _cancel_from_afar(ch: pg.Chan) -> None:
    ctx, cancel = ch.recv()
    cancel()


def test_cancel_in_a_goroutine_reaches_the_creator_and_its_children(run):
    def main():
        ctx, cancel = ctxmod.with_cancel(ctxmod.background())
        child, _ = ctxmod.with_timeout(ctx, 30)
        ch = pg.Chan(1)
        go_on(1, _cancel_from_afar, ch)
        ch.send((ctx, cancel))
        assert closed_within(ctx.done())
        assert closed_within(child.done())
        return type(ctx.err()).__name__, type(child.err()).__name__

    assert run(main) == ("Canceled", "Canceled")


# ---------------------------------------------------------------------------
# Go's synchronous subtree cancellation, with no goroutine per context


def _tree(root):
    """root -> a (value) -> b (cancel) -> c (timeout) -> d (cancel); root -> e."""
    a = ctxmod.with_value(root, "k", 1)
    b, _ = ctxmod.with_cancel(a)
    c, _ = ctxmod.with_timeout(b, 30)
    d, _ = ctxmod.with_cancel(c)
    e, _ = ctxmod.with_cancel(root)
    return [a, b, c, d, e]


def _state(ctxs) -> list[tuple[str, bool]]:
    return [(type(c.err()).__name__, c.done().closed) for c in ctxs]


def test_cancel_sets_err_and_closes_done_of_the_whole_subtree_before_it_returns(run):
    def main():
        root, cancel = ctxmod.with_cancel(ctxmod.background())
        sibling, scancel = ctxmod.with_cancel(ctxmod.background())
        ctxs = _tree(root)
        assert _state(ctxs) == [("NoneType", False)] * 5
        cancel()
        now = _state(ctxs)  # no waiting: cancel() has done it all
        assert sibling.err() is None
        scancel()
        return now

    assert run(main) == [("Canceled", True)] * 5


def test_canceling_a_middle_context_leaves_its_ancestors_alone(run):
    def main():
        root, cancel = ctxmod.with_cancel(ctxmod.background())
        a, b, c, d, e = _tree(root)
        child_of_b, cancel_cb = ctxmod.with_cancel(b)
        cancel_cb()
        mid = _state([root, b, child_of_b])
        cancel()
        return mid, _state([root, a, b, c, d, e, child_of_b])

    mid, end = run(main)
    assert mid == [("NoneType", False), ("NoneType", False), ("Canceled", True)]
    assert end == [("Canceled", True)] * 7


def test_a_deadline_cancels_its_subtree_with_deadline_exceeded(run):
    def main():
        parent, _ = ctxmod.with_timeout(ctxmod.background(), 0.05)
        ctxs = _tree(parent)
        assert closed_within(parent.done())
        return _state(ctxs)

    assert run(main) == [("DeadlineExceeded", True)] * 5


def test_contexts_start_no_goroutine(run):
    def nsystem():
        return state.rt.arena.i[offset("pg_arena", "nsystem") // 8]

    def main():
        root, cancel = ctxmod.with_cancel(ctxmod.background())
        before = nsystem()
        kids = [ctxmod.with_timeout(ctxmod.with_cancel(root)[0], 30) for _ in range(100)]
        during = nsystem()
        cancel()
        return before, during, all(isinstance(k[0].err(), ctxmod.Canceled) for k in kids)

    before, during, all_canceled = run(main)
    assert during == before and all_canceled


class _MyCtx(ctxmod.Context):
    """A Context of the user's own: cancellation reaches its children through
    a goroutine watching done(), as Go's propagateCancel does."""

    def __init__(self) -> None:
        self.ch = pg.Chan(0)

    def done(self) -> pg.Chan:
        return self.ch

    def err(self):
        return ctxmod.Canceled() if self.ch.closed else None


def test_a_context_type_of_ones_own_still_cancels_its_children(run):
    def main():
        mine = _MyCtx()
        child, _ = ctxmod.with_cancel(mine)
        grand, _ = ctxmod.with_timeout(child, 30)
        assert child.err() is None
        mine.ch.close()
        assert closed_within(grand.done())
        return _state([child, grand])

    assert run(main) == [("Canceled", True)] * 2


def test_bad_deadline_arguments_raise_in_the_caller(run):
    def main():
        bg = ctxmod.background()
        for bad in (float("nan"), float("inf"), float("-inf"), 1e300):
            with pytest.raises(ValueError, match=r"^with_timeout: seconds must be"):
                ctxmod.with_timeout(bg, bad)
        for bad in (float("nan"), float("inf"), 10**400):
            with pytest.raises(ValueError, match=r"^with_deadline: t must be a finite time\.time\(\) value"):
                ctxmod.with_deadline(bg, bad)
        with pytest.raises(ValueError, match=r"^with_deadline: seconds must be < 2\*\*64 ns"):
            ctxmod.with_deadline(bg, 1e300)
        for bad in (True, None, "1", [1]):
            with pytest.raises(TypeError, match=r"^with_timeout: seconds must be a number"):
                ctxmod.with_timeout(bg, bad)
            with pytest.raises(TypeError, match=r"^with_deadline: t \(a time\.time\(\) value\) must be a number"):
                ctxmod.with_deadline(bg, bad)
        # zero, negative and past deadlines: done at once (Go)
        done = [
            ctxmod.with_timeout(bg, 0)[0],
            ctxmod.with_timeout(bg, -5)[0],
            ctxmod.with_timeout(bg, -(10**400))[0],
            ctxmod.with_deadline(bg, -1e300)[0],
        ]
        return _state(done)

    assert run(main) == [("DeadlineExceeded", True)] * 4


def test_children_of_a_live_parent_are_held_until_it_is_canceled_then_freed(run):
    # Go's rule: a child that is never canceled stays in its parent's tree
    # until the parent is canceled; then nothing of it is left in the arena
    def inuse():
        gc.collect()
        state.rt.flush_decrefs()
        return state.rt.arena.q[offset("pg_arena", "inuse") // 8]

    def main():
        parent, cancel = ctxmod.with_cancel(ctxmod.background())
        base = inuse()
        for _ in range(300):
            ctxmod.with_timeout(ctxmod.with_cancel(parent)[0], 30)
        held = inuse() - base
        cancel()
        pg.sleep(0.05)  # sysmon drops the stale heap entries of the stopped deadlines
        return held, inuse() - base

    held, left = run(main)
    assert held > 300 * 64
    assert left < 16 * 1024
