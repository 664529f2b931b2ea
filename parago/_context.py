"""context: cancellation, deadlines and request values, across every P.

A cancelable context holds two shared objects -- a ``done`` channel that
is closed on cancellation and an atomic error code -- so copies of it on
any P observe the same cancellation.  A child learns of its parent's
cancellation through a small system goroutine (Go's propagateCancel
goroutine) parked in a select on both ``done`` channels; a deadline is a
timer on the creating P's timer thread, which fires even while that P's
hub is busy.  Values are copied with the context (capture small things).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ._atomic import Int64
from ._chan import Chan, Recv, select
from ._errors import ParagoError
from ._runtime import codec
from ._runtime.sched import need_rt
from ._runtime.timers import timers

_NONE, _CANCELED, _DEADLINE = 0, 1, 2


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


class _CancelCtx(Context):
    def __init__(self, parent: Context) -> None:
        if not isinstance(parent, Context):
            raise TypeError(f"parent must be a pg.context Context, got {type(parent).__name__}")
        self._parent = parent
        self._done = Chan(0)
        self._code = Int64(_NONE)
        pd = parent.done()
        if pd is not getattr(need_rt("context"), "never_chan", None):
            perr = parent.err()
            if perr is not None:
                self._cancel(_code_of(perr))
            else:
                need_rt("context").spawn(_propagate, (pd, parent, self), {}, local=True, system=True)

    def done(self) -> Chan:
        return self._done

    def err(self) -> BaseException | None:
        return _ERRORS.get(self._code.load())

    def value(self, key: Any) -> Any:
        return self._parent.value(key)

    def deadline(self) -> tuple[float | None, bool]:
        return self._parent.deadline()

    def _cancel(self, code: int) -> None:
        if self._code.compare_and_swap(_NONE, code):
            self._done.close()

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
    def __init__(self, parent: Context, when: float) -> None:
        pdl, ok = parent.deadline()
        self._when = min(when, pdl) if ok and pdl is not None else when
        super().__init__(parent)
        if self._code.load() == _NONE:
            delay = self._when - time.time()
            if delay <= 0:
                self._cancel(_DEADLINE)
            else:
                timers(need_rt("context")).add(delay, _Expire(self._done, self._code))

    def deadline(self) -> tuple[float | None, bool]:
        return self._when, True

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithDeadline({self._when})"


class _Expire:
    __slots__ = ("done", "code")

    def __init__(self, done: Chan, code: Int64) -> None:
        self.done, self.code = done, code

    def alive(self) -> bool:
        return self.code.load() == _NONE

    def __call__(self) -> None:
        if self.code.compare_and_swap(_NONE, _DEADLINE):
            self.done.close()


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


def with_deadline(parent: Context, t: float) -> tuple[Context, Callable[[], None]]:
    """Canceled with DeadlineExceeded at ``t`` (a ``time.time()`` value)."""
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"with_deadline: t must be a time.time() number, got {type(t).__name__}")
    ctx = _TimerCtx(parent, float(t))
    return ctx, CancelFunc(ctx)


def with_timeout(parent: Context, seconds: float) -> tuple[Context, Callable[[], None]]:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"with_timeout: seconds must be a number, got {type(seconds).__name__}")
    return with_deadline(parent, time.time() + seconds)


def with_value(parent: Context, key: Any, val: Any) -> Context:
    return _ValueCtx(parent, key, val)
