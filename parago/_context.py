"""context: cancellation, deadlines and request values, across every P.

A cancelable context is an arena object (shm/timer.c): a ``done`` channel
closed on cancellation, an atomic error code, and its links in the tree of
contexts (parent, children) under one arena lock.  ``cancel()`` cancels
the whole subtree in C before it returns -- every descendant's ``err()``
is set and its ``done()`` closed, on every P -- and a deadline is a timer
fired by the sysmon thread of the P that set it, whatever that P's
goroutines are doing.  There is no goroutine per context (Go starts one
only for a parent that is not one of its own contexts, and so do we).
Contexts and CancelFuncs are picklable: every copy is the same context.
Values are copied with the context (capture small things).

    cancel() (any P)                       the arena
    ---------------------------------      ---------------------------------
    pg_ctx_cancel(ctx, CANCELED)    --->   ctx_lock: unlink from the parent,
                                           err = code on ctx and every
                                           descendant, detach the subtree
                                           then: close each done, stop each
    returns                         <---   deadline timer
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ._chan import Chan, Recv, select
from ._errors import ParagoError
from ._runtime import codec, timers, vclock
from ._runtime.sched import need_rt

_NONE, _CANCELED, _DEADLINE = timers.CTX_NONE, timers.CTX_CANCELED, timers.CTX_DEADLINE


class Canceled(ParagoError):
    """context canceled"""

    def __init__(self, msg: str = "context canceled") -> None:
        super().__init__(msg)


class DeadlineExceeded(ParagoError, TimeoutError):
    """context deadline exceeded (also a TimeoutError)"""

    def __init__(self, msg: str = "context deadline exceeded") -> None:
        super().__init__(msg)


_ERRORS = {_CANCELED: Canceled(), _DEADLINE: DeadlineExceeded()}


def _never(rt: Any) -> Chan:
    """This run's channel that is never closed: done() of contexts that
    cannot be canceled (Go returns a nil channel; receiving blocks forever)."""
    ch = getattr(rt, "never_chan", None)
    if ch is None:
        ch = rt.never_chan = Chan(0)
    return ch


class Context:
    """The interface: ``done()``, ``err()``, ``value(key)``, ``deadline()``."""

    def done(self) -> Chan:
        """A channel closed when the context is canceled; for a context that
        can never be canceled, a channel that is never closed (Go's nil
        channel: as a select case, never ready)."""
        return _never(need_rt("ctx.done()"))

    def err(self) -> BaseException | None:
        """None, or Canceled / DeadlineExceeded once done() is closed."""
        return None

    def value(self, key: Any) -> Any:
        return None

    def deadline(self) -> tuple[float | None, bool]:
        """(time.time() deadline, True), or (None, False)."""
        return None, False


class _Background(Context):
    def __repr__(self) -> str:
        return "context.Background"

    def __reduce__(self) -> str:
        return "_BACKGROUND"


_BACKGROUND = _Background()


def background() -> Context:
    """The root context: never canceled, no values, no deadline."""
    return _BACKGROUND


def todo() -> Context:
    return _BACKGROUND


def _cancelable(ctx: Context) -> Any:
    """Go's parentCancelCtx: the nearest context that can be canceled
    (through value contexts), or the Context itself if it is not ours."""
    while isinstance(ctx, _ValueCtx):
        ctx = ctx._parent
    return ctx


class _CancelCtx(Context):
    def __init__(self, parent: Context, delay_ns: int = -1) -> None:
        if not isinstance(parent, Context):
            raise TypeError(f"parent must be a pg.context Context, got {type(parent).__name__}")
        rt = need_rt("context")
        self._parent = parent
        self._done = Chan(0)
        anc = _cancelable(parent)
        pctx: timers.CtxHandle | None = anc._ctx if isinstance(anc, _CancelCtx) else None
        self._ctx: timers.CtxHandle = timers.new_ctx(rt, self._done, pctx, delay_ns)
        if pctx is None and not isinstance(anc, _Background):
            # a Context of the user's own: watch it as Go does, with a goroutine
            perr = parent.err()
            if perr is not None:
                self._cancel(_code_of(perr))
            elif parent.done() is not _never(rt):
                rt.spawn(_propagate, (parent.done(), parent, self), {}, local=True, system=True)

    def done(self) -> Chan:
        return self._done

    def err(self) -> BaseException | None:
        return _ERRORS.get(self._ctx.code())

    def value(self, key: Any) -> Any:
        return self._parent.value(key)

    def deadline(self) -> tuple[float | None, bool]:
        return self._parent.deadline()

    def _cancel(self, code: int) -> None:
        self._ctx.cancel(code)

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithCancel"


def _code_of(err: BaseException) -> int:
    return _DEADLINE if isinstance(err, DeadlineExceeded) else _CANCELED


def _propagate(pd: Chan, parent: Context, child: _CancelCtx) -> None:
    i, _, _ = select(Recv(pd), Recv(child._done))
    if i == 0:
        err = parent.err()
        child._cancel(_code_of(err) if err is not None else _CANCELED)


class _TimerCtx(_CancelCtx):
    def __init__(self, parent: Context, when: float, delay_ns: int) -> None:
        pdl, ok = parent.deadline()
        if ok and pdl is not None and pdl <= when:
            # Go: the parent's earlier deadline cancels this one too
            self._when = pdl
            super().__init__(parent)
        else:
            self._when = when
            super().__init__(parent, delay_ns)

    def deadline(self) -> tuple[float | None, bool]:
        return self._when, True

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithDeadline({self._when})"


class _ValueCtx(Context):
    def __init__(self, parent: Context, key: Any, val: Any) -> None:
        if not isinstance(parent, Context):
            raise TypeError(f"parent must be a pg.context Context, got {type(parent).__name__}")
        codec.dumps(val, f"context value for key {key!r}", [])  # a clear error now, not at pg.go (no references taken)
        self._parent, self._key, self._val = parent, key, val

    def done(self) -> Chan:
        return self._parent.done()

    def err(self) -> BaseException | None:
        return self._parent.err()

    def value(self, key: Any) -> Any:
        if key == self._key:
            return self._val
        return self._parent.value(key)

    def deadline(self) -> tuple[float | None, bool]:
        return self._parent.deadline()

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithValue({self._key!r})"


class CancelFunc:
    """Cancels its context (idempotent); picklable, so it can be passed around."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: _CancelCtx) -> None:
        self._ctx = ctx

    def __call__(self) -> None:
        self._ctx._cancel(_CANCELED)

    def __reduce__(self) -> tuple:
        return (CancelFunc, (self._ctx,))


def with_cancel(parent: Context) -> tuple[Context, Callable[[], None]]:
    ctx = _CancelCtx(parent)
    return ctx, CancelFunc(ctx)


def _number(x: Any, what: str, name: str) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{what}: {name} must be a number, got {type(x).__name__}")


def with_deadline(parent: Context, t: float) -> tuple[Context, Callable[[], None]]:
    """Canceled with DeadlineExceeded at ``t`` (a ``time.time()`` value), or
    when ``parent`` is, whichever comes first.  A ``t`` in the past: done at
    once.  Raises TypeError (not a number), ValueError (NaN, infinite, or
    2**64 ns from now and beyond)."""
    _number(t, "with_deadline", "t (a time.time() value)")
    try:
        when = float(t)
    except OverflowError:
        when = math.nan
    if not math.isfinite(when):
        raise ValueError(f"with_deadline: t must be a finite time.time() value, got {t!r}")
    ns = timers.delay_ns(when - vclock.now(), "with_deadline")  # pg.now(): virtual in synctest
    ctx = _TimerCtx(parent, when, ns)
    return ctx, CancelFunc(ctx)


def with_timeout(parent: Context, seconds: float) -> tuple[Context, Callable[[], None]]:
    """with_deadline(parent, time.time() + seconds): zero or negative, done
    at once; the same TypeError / ValueError for a bad ``seconds``."""
    _number(seconds, "with_timeout", "seconds")
    ns = timers.delay_ns(seconds, "with_timeout")
    ctx = _TimerCtx(parent, vclock.now() + float(max(seconds, -(1 << 62))), ns)
    return ctx, CancelFunc(ctx)


def with_value(parent: Context, key: Any, val: Any) -> Context:
    return _ValueCtx(parent, key, val)
