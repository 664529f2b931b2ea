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
Values are copied with the context (capture small things).  A cancel's
cause (Go 1.20) is an arena object the C cancel hands to every context it
cancels, before their err is stored (see "causes" below); after_func is
a system goroutine of the calling P that waits on done().

    cancel() (any P)                       the arena
    ---------------------------------      ---------------------------------
    pg_ctx_cancel(ctx, CANCELED)    --->   ctx_lock: unlink from the parent,
                                           err = code on ctx and every
                                           descendant, detach the subtree
                                           then: close each done, stop each
    returns                         <---   deadline timer
"""

from __future__ import annotations

import ctypes
import math
from typing import Any, Callable

from ._chan import Chan, Recv, select
from ._errors import ParagoError
from ._runtime import codec, ops, timers, vclock
from ._runtime.ops import check, lib, views
from ._runtime.sched import need_rt
from ._runtime.stored import block_payload_at as _block_payload_at
from ._runtime.stored import drop_block_refs as _drop_block_refs
from ._runtime.stored import stored_block as _stored_block

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
    def __init__(self, parent: Context, delay_ns: int = -1, dcause: BaseException | None = None) -> None:
        if not isinstance(parent, Context):
            raise TypeError(f"parent must be a pg.context Context, got {type(parent).__name__}")
        rt = need_rt("context")
        self._parent = parent
        self._done = Chan(0)
        anc = _cancelable(parent)
        pctx: timers.CtxHandle | None = anc._ctx if isinstance(anc, _CancelCtx) else None
        if dcause is None:
            self._ctx: timers.CtxHandle = timers.new_ctx(rt, self._done, pctx, delay_ns)
        else:
            k = _new_cause(rt, dcause)
            try:
                off = check(
                    lib.pg_ctx_new_cause(
                        rt.base, rt.p, self._done._off, pctx._off if pctx is not None else 0, delay_ns, k
                    ),
                    "context",
                    256,
                )
            finally:
                lib.pg_obj_decref(rt.base, k)  # the context holds its own reference
            self._ctx = timers.CtxHandle._new(rt, off)
        if pctx is None and not isinstance(anc, (_Background, _WithoutCancel)):
            # a Context of the user's own: watch it as Go does, with a goroutine
            perr = parent.err()
            if perr is not None:
                self._cancel(_code_of(perr), cause(parent))
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

    def _cancel(self, code: int, why: BaseException | None = None) -> None:
        """Cancel with err ``code``; ``why``: the cause (None: err is the cause)."""
        if why is None or why is _ERRORS.get(code):
            self._ctx.cancel(code)
            return
        rt = self._ctx._live_rt()
        k = _new_cause(rt, why)
        try:
            check(ops.blocking.pg_ctx_cancel_cause(rt.base, self._ctx._off, code, k), "cancel")
        finally:
            lib.pg_obj_decref(rt.base, k)  # each context canceled took its own reference

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithCancel"


def _code_of(err: BaseException) -> int:
    return _DEADLINE if isinstance(err, DeadlineExceeded) else _CANCELED


def _propagate(pd: Chan, parent: Context, child: _CancelCtx) -> None:
    i, _, _ = select(Recv(pd), Recv(child._done))
    if i == 0:
        err = parent.err()
        child._cancel(_code_of(err) if err is not None else _CANCELED, cause(parent))


class _TimerCtx(_CancelCtx):
    def __init__(self, parent: Context, when: float, delay_ns: int, dcause: BaseException | None = None) -> None:
        pdl, ok = parent.deadline()
        if ok and pdl is not None and pdl <= when:
            # Go: the parent's earlier deadline cancels this one too (and its cause)
            self._when = pdl
            super().__init__(parent)
        else:
            self._when = when
            super().__init__(parent, delay_ns, dcause)

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
    return _with_deadline(parent, t, None, "with_deadline")


def _with_deadline(
    parent: Context, t: float, dcause: BaseException | None, what: str
) -> tuple[Context, Callable[[], None]]:
    _number(t, what, "t (a time.time() value)")
    try:
        when = float(t)
    except OverflowError:
        when = math.nan
    if not math.isfinite(when):
        raise ValueError(f"{what}: t must be a finite time.time() value, got {t!r}")
    ns = timers.delay_ns(when - vclock.now(), what)  # pg.now(): virtual in synctest
    ctx = _TimerCtx(parent, when, ns, dcause)
    return ctx, CancelFunc(ctx)


def with_timeout(parent: Context, seconds: float) -> tuple[Context, Callable[[], None]]:
    """with_deadline(parent, time.time() + seconds): zero or negative, done
    at once; the same TypeError / ValueError for a bad ``seconds``."""
    return _with_timeout(parent, seconds, None, "with_timeout")


def _with_timeout(
    parent: Context, seconds: float, dcause: BaseException | None, what: str
) -> tuple[Context, Callable[[], None]]:
    _number(seconds, what, "seconds")
    ns = timers.delay_ns(seconds, what)
    ctx = _TimerCtx(parent, vclock.now() + float(max(seconds, -(1 << 62))), ns, dcause)
    return ctx, CancelFunc(ctx)


def with_value(parent: Context, key: Any, val: Any) -> Context:
    return _ValueCtx(parent, key, val)


# ---------------------------------------------------------------------------
# Go 1.20/1.21: causes, WithoutCancel, AfterFunc
#
# A cause crosses Ps as its encoding in an arena object (shm/context.c):
# cancel(cause) hands it to the C cancel, which gives every context it
# cancels a reference before storing its err -- so Go's rule "children get
# the parent's err and cause" holds on every P.  The P that made a cause
# keeps the exception object itself (_local_causes), so cause(ctx) there
# returns the very object given to cancel (exceptions compare by identity);
# other Ps decode a copy.


def _local_causes(rt: Any) -> dict[tuple[int, int], BaseException]:
    """This run's (cause object, its gen) -> the exception made in this P.
    Kept on the runtime, not the module: offsets and gens repeat in the
    next pg.run (and a forked P inherits the module's globals)."""
    d = getattr(rt, "ctx_causes", None)
    if d is None:
        d = rt.ctx_causes = {}
    return d  # type: ignore[no-any-return]


def _check_cause(c: Any, what: str) -> None:
    if c is not None and not isinstance(c, BaseException):
        raise TypeError(f"{what}: cause must be an exception or None, got {type(c).__name__}")


def _new_cause(rt: Any, why: BaseException) -> int:
    """A cause object holding why's encoding (the caller holds one reference)."""
    try:
        data = _stored_block(rt, why, "context cause")
    except Exception as e:  # keep what can be kept: its type and message
        data = _stored_block(rt, ParagoError(f"{type(why).__name__}: {why} (the cause could not be copied: {e})"))
    r = lib.pg_cause_new(rt.base, data, len(data))
    if r < 0:
        _drop_block_refs(rt, data)
    k = check(r, "context cause", len(data))
    mine = _local_causes(rt)
    if len(mine) >= 1024:  # forget the exceptions of freed cause objects
        for key in [key for key in mine if views.obj_gen(rt.arena, key[0]) != key[1]]:
            del mine[key]
    mine[(k, views.obj_gen(rt.arena, k))] = why
    return k  # type: ignore[no-any-return]


def cause(ctx: Context) -> BaseException | None:
    """Go's context.Cause: why ctx was canceled -- the cause given to the
    first cancel that reached it (its own, or an ancestor's), or
    ``ctx.err()`` when that cancel gave none; None while ctx is not done."""
    if not isinstance(ctx, Context):
        raise TypeError(f"cause: ctx must be a pg.context Context, got {type(ctx).__name__}")
    c = _cancelable(ctx)
    if not isinstance(c, _CancelCtx):
        return ctx.err()  # no cancelCtx of ours above it: Go returns c.Err()
    err = c.err()
    if err is None:
        return None
    rt = c._ctx._live_rt()
    out = (ctypes.c_uint64 * 3)()
    if not lib.pg_ctx_cause(rt.base, c._ctx._off, out):
        return err
    k = out[2]
    mine = _local_causes(rt).get((k, views.obj_gen(rt.arena, k)))
    if mine is not None:
        return mine
    refs: list[int] = []
    data = rt.arena.read(out[0], out[1])
    v = codec.loads_collecting(memoryview(data)[_block_payload_at(data) :], refs)
    if refs:
        ops.incref_many(rt, refs)  # the stored encoding keeps its own
    return v  # type: ignore[no-any-return]


class CancelCauseFunc:
    """``cancel(cause=None)``: cancels its context (idempotent: only the
    first call's cause counts) with ``cause`` as the reason ``cause(ctx)``
    reports; None means Canceled.  Picklable."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: _CancelCtx) -> None:
        self._ctx = ctx

    def __call__(self, cause: BaseException | None = None) -> None:
        _check_cause(cause, "cancel")
        self._ctx._cancel(_CANCELED, cause)

    def __reduce__(self) -> tuple:
        return (CancelCauseFunc, (self._ctx,))


def with_cancel_cause(parent: Context) -> tuple[Context, Callable[[BaseException | None], None]]:
    """with_cancel whose cancel takes a cause: ``cancel(exc)``;
    ``cause(ctx)`` then returns exc (``ctx.err()`` stays Canceled)."""
    ctx = _CancelCtx(parent)
    return ctx, CancelCauseFunc(ctx)


def with_deadline_cause(parent: Context, t: float, cause: BaseException | None) -> tuple[Context, Callable[[], None]]:
    """with_deadline, and when the deadline passes ``cause(ctx)`` is
    ``cause`` (err() is DeadlineExceeded).  The returned cancel sets no cause."""
    _check_cause(cause, "with_deadline_cause")
    return _with_deadline(parent, t, cause, "with_deadline_cause")


def with_timeout_cause(
    parent: Context, seconds: float, cause: BaseException | None
) -> tuple[Context, Callable[[], None]]:
    """with_timeout, and when the timeout passes ``cause(ctx)`` is ``cause``."""
    _check_cause(cause, "with_timeout_cause")
    return _with_timeout(parent, seconds, cause, "with_timeout_cause")


class _WithoutCancel(Context):
    """Go's withoutCancelCtx: the parent's values, never done, no deadline."""

    def __init__(self, parent: Context) -> None:
        if not isinstance(parent, Context):
            raise TypeError(f"parent must be a pg.context Context, got {type(parent).__name__}")
        self._parent = parent

    def value(self, key: Any) -> Any:
        return self._parent.value(key)

    def __repr__(self) -> str:
        return f"{self._parent!r}.WithoutCancel"


def without_cancel(parent: Context) -> Context:
    """A context with parent's values that is never canceled: ``done()``
    never closes, ``err()`` and ``cause()`` are None, no deadline -- not
    even when parent is canceled."""
    return _WithoutCancel(parent)


class AfterFuncStop:
    """after_func's ``stop()``: True if it stopped fn from being started
    (the context was not done yet, or its goroutine had not started fn);
    False once fn started or was stopped already.  Picklable: any P may
    stop it."""

    __slots__ = ("_state", "_stop")

    def __init__(self, state: Any, stop: Chan) -> None:
        self._state = state  # pg.atomic.Int64: 0 armed, 1 stopped, 2 started
        self._stop = stop

    def __call__(self) -> bool:
        if self._state.compare_and_swap(0, 1):
            self._stop.close()  # the watcher goroutine ends
            return True
        return False

    def __reduce__(self) -> tuple:
        return (AfterFuncStop, (self._state, self._stop))


def after_func(ctx: Context, fn: Callable[[], Any]) -> Callable[[], bool]:
    """Go's context.AfterFunc: once ctx is done, run ``fn()`` in its own
    goroutine (on this P; fn is not copied); at once if ctx is done already.
    Returns ``stop``.  Raises TypeError if fn is not callable."""
    if not isinstance(ctx, Context):
        raise TypeError(f"after_func: ctx must be a pg.context Context, got {type(ctx).__name__}")
    if not callable(fn):
        raise TypeError(f"after_func: fn must be callable, got {type(fn).__name__}")
    from ._atomic import Int64

    rt = need_rt("context.after_func")
    stop = Chan(0)
    if ctx.err() is not None:
        state = Int64(2)  # Go calls f at once: stop() can no longer prevent it
        rt.spawn(fn, (), {}, local=True, site="context.AfterFunc")
    else:
        state = Int64(0)
        rt.spawn(_after_func_watch, (rt, ctx.done(), stop, state, fn), {}, local=True, system=True)
    return AfterFuncStop(state, stop)


def _after_func_watch(rt: Any, done: Chan, stop: Chan, state: Any, fn: Callable[[], Any]) -> None:
    i, _, _ = select(Recv(done), Recv(stop))
    if i == 0 and state.compare_and_swap(0, 2):
        rt.spawn(fn, (), {}, local=True, site="context.AfterFunc")
