"""pg.future: the seed's §7 ``Async[T]`` -- run fn in a goroutine, get its outcome later.

The outcome (fn's result, or the exception it raised) is kept in a shared
one-slot channel, so ``result()`` works from any P, any number of times;
``c`` delivers the outcome once, for use in ``select``.  An exception in fn
is not a panic: it surfaces through ``result()``.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

import greenlet

from ._atomic import Bool
from ._chan import Chan
from ._errors import EncodeError, ParagoError, Shutdown, portable
from ._goroutine import go
from ._runtime import park

T = TypeVar("T")


class Future(Generic[T]):
    """The outcome of ``pg.future(fn, *args)``."""

    def __init__(self) -> None:
        self._res = Chan(1)
        self.c = Chan(1)
        self._done = Bool(False)

    def result(self) -> T:
        """Park until fn finished; return its result or raise its exception."""
        # an async goroutine is told the form it called (not the inner ch.recv)
        park.current(park.runtime("fut.result()"), "fut.result()")
        ok, v = self._res.recv()
        self._res.send((ok, v))
        if not ok:
            raise v
        return v

    async def result_async(self) -> T:
        ok, v = await self._res.recv_async()
        await self._res.send_async((ok, v))
        if not ok:
            raise v
        return v

    def done(self) -> bool:
        """Whether fn has finished (as concurrent.futures.Future.done)."""
        return self._done.load()

    def __reduce__(self) -> tuple:
        return (_rebuild, (self._res, self.c, self._done))

    def __repr__(self) -> str:
        return f"<pg.Future {'done' if self.done() else 'pending'}>"


def _rebuild(res: Chan, c: Chan, done: Bool) -> Future:
    f = Future.__new__(Future)
    f._res, f.c, f._done = res, c, done
    return f


def _settle(f: Future, ok: bool, v: Any) -> None:
    # done first: once result() returns, done() must already say True
    f._done.store(True)
    # _res holds one slot and only this goroutine fills it: never blocks
    # (so this works from plain and async goroutines alike)
    try:
        f._res._try_send((ok, v))
    except EncodeError as e:
        ok, v = False, e
        f._res._try_send((ok, v))
    f.c._try_send(v) if _sendable(f.c, v) else f.c._try_send(portable(v) if isinstance(v, BaseException) else None)


def _sendable(c: Chan, v: Any) -> bool:
    try:
        c._encode(v)  # references are only taken when sending
        return True
    except Exception:
        return False


def _failed(f: Future, e: BaseException) -> None:
    if isinstance(e, Shutdown):  # the program is ending: not fn's outcome
        raise e
    if isinstance(e, greenlet.GreenletExit):  # pg.goexit(): no result, and not the waiter's own exit
        _settle(f, False, ParagoError("future: fn ended its goroutine with pg.goexit() before returning"))
        raise e
    _settle(f, False, portable(e))


def _run(f: Future, fn: Callable, args: tuple, kw: dict) -> None:
    try:
        v = fn(*args, **kw)
    except BaseException as e:
        _failed(f, e)
        return
    _settle(f, True, v)


async def _run_async(f: Future, fn: Callable, args: tuple, kw: dict) -> None:
    try:
        v = await fn(*args, **kw)
    except BaseException as e:
        _failed(f, e)
        return
    _settle(f, True, v)


def future(fn: Callable[..., T], *args: Any, **kw: Any) -> Future[T]:
    """Start ``fn(*args)`` in a goroutine; returns its Future at once."""
    import inspect

    f: Future[T] = Future()
    go(_run_async if inspect.iscoroutinefunction(fn) else _run, f, fn, args, kw)
    return f
