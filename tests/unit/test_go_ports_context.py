"""Go's context/x_test.go cause and AfterFunc tests, ported (DESIGN §1
"context and higher-level patterns": with_cancel_cause, cause,
with_deadline_cause, with_timeout_cause, without_cancel, after_func), at
procs=1 and procs=2, plus causes crossing Ps.

Go compares errors by identity (``got != want``); so do these tests in the
P that made the cause (that P keeps the exception object itself).  On
another P, cause(ctx) is a copy: compared by type and message.
"""

from __future__ import annotations

import time

import pytest

import parago as pg

C = pg.context
FOREVER = 1e6
SHORT = 0.02
VERY_LONG = 30.0


def _canceled(e):
    return isinstance(e, C.Canceled)


def _deadline(e):
    return isinstance(e, C.DeadlineExceeded)


# ---------------------------------------------------------------------------
# TestCause: the table


parent_cause = ValueError("parentCause")
child_cause = ValueError("childCause")
too_slow = ValueError("tooSlow")
finished_early = ValueError("finishedEarly")


def _case_with_cancel():
    ctx, cancel = C.with_cancel(C.background())
    cancel()
    return ctx


def _case_with_cancel_cause():
    ctx, cancel = C.with_cancel_cause(C.background())
    cancel(parent_cause)
    return ctx


def _case_with_cancel_cause_nil():
    ctx, cancel = C.with_cancel_cause(C.background())
    cancel(None)
    return ctx


def _case_parent_cause_before_child():
    ctx, cancel_parent = C.with_cancel_cause(C.background())
    ctx, cancel_child = C.with_cancel_cause(ctx)
    cancel_parent(parent_cause)
    cancel_child(child_cause)
    return ctx


def _case_parent_cause_after_child():
    ctx, cancel_parent = C.with_cancel_cause(C.background())
    ctx, cancel_child = C.with_cancel_cause(ctx)
    cancel_child(child_cause)
    cancel_parent(parent_cause)
    return ctx


def _case_parent_cause_before_nil():
    ctx, cancel_parent = C.with_cancel_cause(C.background())
    ctx, cancel_child = C.with_cancel(ctx)
    cancel_parent(parent_cause)
    cancel_child()
    return ctx


def _case_parent_cause_after_nil():
    ctx, cancel_parent = C.with_cancel_cause(C.background())
    ctx, cancel_child = C.with_cancel(ctx)
    cancel_child()
    cancel_parent(parent_cause)
    return ctx


def _case_child_cause_after_nil():
    ctx, cancel_parent = C.with_cancel(C.background())
    ctx, cancel_child = C.with_cancel_cause(ctx)
    cancel_parent()
    cancel_child(child_cause)
    return ctx


def _case_child_cause_before_nil():
    ctx, cancel_parent = C.with_cancel(C.background())
    ctx, cancel_child = C.with_cancel_cause(ctx)
    cancel_child(child_cause)
    cancel_parent()
    return ctx


def _case_with_timeout():
    ctx, cancel = C.with_timeout(C.background(), 0)
    cancel()
    return ctx


def _case_with_timeout_canceled():
    ctx, cancel = C.with_timeout(C.background(), FOREVER)
    cancel()
    return ctx


def _case_with_timeout_cause():
    ctx, cancel = C.with_timeout_cause(C.background(), 0, too_slow)
    cancel()
    return ctx


def _case_with_timeout_cause_canceled():
    ctx, cancel = C.with_timeout_cause(C.background(), FOREVER, too_slow)
    cancel()
    return ctx


def _case_with_timeout_cause_stacked():
    ctx, cancel = C.with_cancel_cause(C.background())
    ctx, _ = C.with_timeout_cause(ctx, 0, too_slow)
    cancel(finished_early)
    return ctx


def _case_with_timeout_cause_stacked_canceled():
    ctx, cancel = C.with_cancel_cause(C.background())
    ctx, _ = C.with_timeout_cause(ctx, FOREVER, too_slow)
    cancel(finished_early)
    return ctx


def _case_without_cancel():
    return C.without_cancel(C.background())


def _case_without_cancel_canceled():
    ctx, cancel = C.with_cancel_cause(C.background())
    ctx = C.without_cancel(ctx)
    cancel(finished_early)
    return ctx


def _case_without_cancel_timeout():
    ctx, cancel = C.with_timeout_cause(C.background(), 0, too_slow)
    ctx = C.without_cancel(ctx)
    cancel()
    return ctx


CANCELED, DEADLINE = "Canceled", "DeadlineExceeded"
CAUSE_TABLE = [
    ("Background", C.background, None, None),
    ("TODO", C.todo, None, None),
    ("WithCancel", _case_with_cancel, CANCELED, CANCELED),
    ("WithCancelCause", _case_with_cancel_cause, CANCELED, parent_cause),
    ("WithCancelCause nil", _case_with_cancel_cause_nil, CANCELED, CANCELED),
    ("parent cause before child", _case_parent_cause_before_child, CANCELED, parent_cause),
    ("parent cause after child", _case_parent_cause_after_child, CANCELED, child_cause),
    ("parent cause before nil", _case_parent_cause_before_nil, CANCELED, parent_cause),
    ("parent cause after nil", _case_parent_cause_after_nil, CANCELED, CANCELED),
    ("child cause after nil", _case_child_cause_after_nil, CANCELED, CANCELED),
    ("child cause before nil", _case_child_cause_before_nil, CANCELED, child_cause),
    ("WithTimeout", _case_with_timeout, DEADLINE, DEADLINE),
    ("WithTimeout canceled", _case_with_timeout_canceled, CANCELED, CANCELED),
    ("WithTimeoutCause", _case_with_timeout_cause, DEADLINE, too_slow),
    ("WithTimeoutCause canceled", _case_with_timeout_cause_canceled, CANCELED, CANCELED),
    ("WithTimeoutCause stacked", _case_with_timeout_cause_stacked, DEADLINE, too_slow),
    ("WithTimeoutCause stacked canceled", _case_with_timeout_cause_stacked_canceled, CANCELED, finished_early),
    ("WithoutCancel", _case_without_cancel, None, None),
    ("WithoutCancel canceled", _case_without_cancel_canceled, None, None),
    ("WithoutCancel timeout", _case_without_cancel_timeout, None, None),
]


def _matches(got, want, err):
    if want is None:
        return got is None
    if want == CANCELED:
        return _canceled(got) and got is err
    if want == DEADLINE:
        return _deadline(got) and got is err
    return got is want


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,make,err,want", CAUSE_TABLE, ids=[t[0] for t in CAUSE_TABLE])
def test_cause(run, name, make, err, want):
    def main():
        ctx = make()
        e = ctx.err()
        if err is None:
            assert e is None, (name, e)
        elif err == CANCELED:
            assert _canceled(e), (name, e)
        else:
            assert _deadline(e), (name, e)
        got = C.cause(ctx)
        assert _matches(got, want, e), (name, got, want)
        return True

    assert run(main) is True


def _poll_cause(ctx, out):
    # TestCauseRace: poll Cause rather than waiting for Done
    while True:
        c = C.cause(ctx)
        if c is not None:
            out.send((type(c).__name__, str(c)))
            return
        pg.gosched()


@pytest.mark.timeout(60)
def test_cause_race(run):
    def main():
        ctx, cancel = C.with_cancel_cause(C.background())
        out = pg.Chan(2)
        pg.go(_poll_cause, ctx, out)
        cause = KeyError("TestCauseRace")
        pg.go(cancel, cause)
        assert out.recv() == ("KeyError", "'TestCauseRace'")
        while C.cause(ctx) is None:
            pg.gosched()
        assert str(C.cause(ctx)) == "'TestCauseRace'"
        return True

    assert run(main) is True


@pytest.mark.timeout(60)
def test_with_cancel_simultaneously_canceled_parent(run):
    def main():
        for _ in range(50):
            parent, pcancel = C.with_cancel_cause(C.background())
            cause = RuntimeError("Because!")
            pg.go(pcancel, cause)
            c, _ = C.with_cancel(parent)
            c.done().recv_ok()
            assert _canceled(c.err())
            got = C.cause(c)
            assert type(got) is RuntimeError and str(got) == "Because!", got
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_without_cancel(run):
    def main():
        ctx = C.without_cancel(C.with_value(C.background(), "key", "value"))
        assert ctx.deadline() == (None, False)
        i, _, _ = pg.select(pg.Recv(ctx.done()), default=True)
        assert i == -1  # never done
        assert ctx.err() is None
        assert ctx.value("key") == "value"
        return True

    assert run(main) is True


class _CustomCauseContext(C.Context):
    """Go's customCauseContext: a Context of the user's own."""

    def __init__(self):
        self._done = pg.Chan(0)
        self._err = None
        self.cancel_child = None

    def done(self):
        return self._done

    def err(self):
        return self._err

    def cancel(self):
        self._err = C.Canceled()
        self._done.close()
        if self.cancel_child is not None:
            self.cancel_child()


@pytest.mark.timeout(30)
def test_custom_context_cause(run):
    def main():
        ccc = _CustomCauseContext()
        ccc.cancel()
        assert _canceled(ccc.err()) and C.cause(ccc) is ccc.err()

        ccc = _CustomCauseContext()
        ctx, cause_func = C.with_cancel_cause(ccc)
        cause = LookupError("TestCustomContextCause")
        cause_func(cause)
        assert _canceled(ctx.err()) and C.cause(ctx) is cause
        assert ccc.err() is None and C.cause(ccc) is None
        ccc.cancel()
        assert _canceled(ctx.err()) and C.cause(ctx) is cause
        assert _canceled(ccc.err()) and C.cause(ccc) is ccc.err()

        ccc = _CustomCauseContext()
        ctx, cancel_func = C.with_cancel(ccc)
        ccc.cancel_child = cancel_func
        ccc.cancel()
        assert _canceled(ctx.err()) and _canceled(C.cause(ctx))
        assert _canceled(ccc.err()) and _canceled(C.cause(ccc))
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# AfterFunc


def _within(ch, seconds):
    i, v, _ = pg.select(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    return i == 0


@pytest.mark.timeout(60)
def test_after_func_called_after_cancel(run):
    def main():
        ctx, cancel = C.with_cancel(C.background())
        donec = pg.Chan(0)
        stop = C.after_func(ctx, donec.close)
        assert not _within(donec, SHORT), "AfterFunc called before context is done"
        cancel()
        assert _within(donec, VERY_LONG), "AfterFunc not called after context is canceled"
        assert stop() is False
        return True

    assert run(main) is True


@pytest.mark.timeout(60)
def test_after_func_called_after_timeout(run):
    def main():
        ctx, cancel = C.with_timeout(C.background(), SHORT)
        donec = pg.Chan(0)
        C.after_func(ctx, donec.close)
        assert _within(donec, VERY_LONG)
        cancel()
        return True

    assert run(main) is True


@pytest.mark.timeout(60)
def test_after_func_called_immediately(run):
    def main():
        ctx, cancel = C.with_cancel(C.background())
        cancel()
        donec = pg.Chan(0)
        stop = C.after_func(ctx, donec.close)
        assert stop() is False  # Go: f is already on its way
        assert _within(donec, VERY_LONG)
        return True

    assert run(main) is True


@pytest.mark.timeout(60)
def test_after_func_not_called_after_stop(run):
    def main():
        ctx, cancel = C.with_cancel(C.background())
        donec = pg.Chan(0)
        stop = C.after_func(ctx, donec.close)
        assert stop() is True
        cancel()
        assert not _within(donec, SHORT), "AfterFunc called for already-canceled context"
        assert stop() is False
        return True

    assert run(main) is True


@pytest.mark.timeout(60)
def test_after_func_called_asynchronously(run):
    def main():
        ctx, cancel = C.with_cancel(C.background())
        donec = pg.Chan(0)
        stop = C.after_func(ctx, lambda: donec.send(None))  # blocks until received
        cancel()  # returns without waiting for fn
        assert _within(donec, VERY_LONG)
        stop()
        return True

    assert run(main) is True


def _stop_elsewhere(stop, out):
    out.send(stop())


@pytest.mark.timeout(60)
def test_after_func_stop_from_another_goroutine_on_any_p(run):
    def main():
        ctx, cancel = C.with_cancel(C.background())
        donec = pg.Chan(1)
        stop = C.after_func(ctx, lambda: donec.send("ran"))
        out = pg.Chan(2)
        pg.go(_stop_elsewhere, stop, out)
        pg.go(_stop_elsewhere, stop, out)
        got = sorted([out.recv(), out.recv()])
        assert got == [False, True]  # exactly one stop prevented it
        cancel()
        assert not _within(donec, SHORT)
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# causes across Ps, and bad input


def _cancel_with(cancel, exc):
    cancel(exc)


def _report_cause(ctx, out):
    ctx.done().recv_ok()
    c = C.cause(ctx)
    out.send((type(c).__name__, str(c), type(ctx.err()).__name__))


@pytest.mark.timeout(60)
def test_cause_set_on_one_p_is_seen_by_every_descendant_on_every_p(run):
    def main():
        root, cancel = C.with_cancel_cause(C.background())
        mid, _ = C.with_cancel(C.with_value(root, "k", 1))
        leaf, _ = C.with_timeout(mid, FOREVER)
        out = pg.Chan(8)
        for ctx in (root, mid, leaf, leaf):
            pg.go(_report_cause, ctx, out)
        pg.go(_cancel_with, cancel, OSError(5, "disk gone"))
        got = [out.recv() for _ in range(4)]
        assert got == [("OSError", "[Errno 5] disk gone", "Canceled")] * 4
        assert str(C.cause(leaf)) == "[Errno 5] disk gone"
        return True

    assert run(main) is True


@pytest.mark.timeout(60)
def test_deadline_cause_fires_from_the_timer(run):
    def main():
        t0 = time.monotonic()
        ctx, cancel = C.with_deadline_cause(C.background(), time.time() + 0.05, TimeoutError("too slow"))
        out = pg.Chan(1)
        pg.go(_report_cause, ctx, out)
        assert out.recv() == ("TimeoutError", "too slow", "DeadlineExceeded")
        assert time.monotonic() - t0 >= 0.04
        cancel()
        c = C.cause(ctx)
        assert isinstance(c, TimeoutError) and str(c) == "too slow"
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_bad_causes_and_callables_are_type_errors(run):
    def main():
        ctx, cancel = C.with_cancel_cause(C.background())
        for bad in ("boom", 3, ValueError):
            with pytest.raises(TypeError, match=r"^cancel: cause must be an exception or None"):
                cancel(bad)
        assert ctx.err() is None  # nothing half-done
        with pytest.raises(TypeError, match=r"cause must be an exception"):
            C.with_timeout_cause(C.background(), 1, "slow")
        with pytest.raises(TypeError, match=r"cause must be an exception"):
            C.with_deadline_cause(C.background(), time.time() + 1, 42)
        with pytest.raises(TypeError, match=r"^after_func: fn must be callable"):
            C.after_func(ctx, None)
        with pytest.raises(TypeError):
            C.without_cancel(None)
        with pytest.raises(TypeError):
            C.cause("not a context")
        return True

    assert run(main) is True


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


def _cause_text(ctx, out):
    c = C.cause(ctx)
    out.send((type(c).__name__, str(c)))


@pytest.mark.timeout(30)
def test_a_cause_that_cannot_be_copied_arrives_as_its_type_and_message(run):
    def main():
        ctx, cancel = C.with_cancel_cause(C.background())
        e = _Unpicklable("secret")
        cancel(e)
        assert C.cause(ctx) is e  # this P keeps the object
        out = pg.Chan(1)
        pg.go(_cause_text, ctx, out)
        name, text = out.recv()
        assert name == "_Unpicklable" and text == "secret" or "_Unpicklable: secret" in text
        return True

    assert run(main) is True


class _ErrWithChan(Exception):
    def __init__(self, ch):
        super().__init__("with a channel")
        self.ch = ch


def _reply_through_cause(ctx, out):
    ctx.done().recv_ok()
    C.cause(ctx).ch.send("via the cause's channel")
    out.send(True)


@pytest.mark.timeout(30)
def test_a_cause_holding_a_handle_refers_to_the_same_object_and_is_freed_with_its_context(run):
    def main():
        ctx, cancel = C.with_cancel_cause(C.background())
        reply, out = pg.Chan(1), pg.Chan(1)
        pg.go(_reply_through_cause, ctx, out)
        cancel(_ErrWithChan(reply))
        assert out.recv() is True
        assert reply.recv() == "via the cause's channel"
        return True

    assert run(main) is True  # and the leak check: the cause's reference is dropped
