"""errgroup: Go's golang.org/x/sync/errgroup, across every P.

``g.go(fn, *args)`` runs fn in a goroutine; ``g.wait()`` waits for all of
them and raises the first error (an exception in fn is not a panic).  With
``errgroup.with_context(ctx)`` the first error also cancels the derived
context.  ``set_limit(n)`` bounds the goroutines running at once.
"""

from __future__ import annotations

from typing import Any, Callable

import greenlet

from ._atomic import Bool
from ._chan import Chan
from ._context import Context, with_cancel
from ._errors import ParagoError, Shutdown, portable
from ._goroutine import go
from ._sync import Semaphore, WaitGroup


class ErrGroup:
    def __init__(self) -> None:
        self._wg = WaitGroup()
        self._err = Chan(1)
        self._failed = Bool(False)
        self._cancel: Callable[[], None] | None = None
        self._sem: Semaphore | None = None

    def set_limit(self, n: int) -> None:
        """At most n goroutines at once (n < 0: no limit)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"set_limit: n must be an int, got {type(n).__name__}")
        if self._wg.value() != 0:
            raise ParagoError("errgroup: modify limit while goroutines in the group are still active")
        self._sem = None if n < 0 else Semaphore(n)

    def go(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) in a goroutine (blocks while the limit is reached)."""
        if not callable(fn):
            raise TypeError(f"ErrGroup.go: fn must be callable, got {type(fn).__name__}")
        if self._sem is not None:
            self._sem.acquire()
        self._start(fn, args)

    def try_go(self, fn: Callable[..., Any], *args: Any) -> bool:
        """go, unless the limit is reached: then False."""
        if self._sem is not None and not self._sem.try_acquire():
            return False
        self._start(fn, args)
        return True

    def _start(self, fn: Callable[..., Any], args: tuple) -> None:
        self._wg.add(1)
        try:
            go(_member, self, fn, args)
        except BaseException:
            self._done()
            raise

    def _done(self) -> None:
        if self._sem is not None:
            self._sem.release()
        self._wg.done()

    def _fail(self, e: BaseException) -> None:
        if self._failed.compare_and_swap(False, True):
            self._err._try_send(portable(e))
            if self._cancel is not None:
                self._cancel()

    def wait(self) -> None:
        """Wait for every goroutine; raise the first error, if any."""
        self._wg.wait()
        self._finish()

    async def wait_async(self) -> None:
        await self._wg.wait_async()
        self._finish()

    def _finish(self) -> None:
        if self._cancel is not None:
            self._cancel()
        if self._failed.load():
            e, ok = self._err._try_recv()
            if ok:
                self._err._try_send(e)
                raise e

    def __reduce__(self) -> tuple:
        return (_rebuild, (self._wg, self._err, self._failed, self._cancel, self._sem))


def _rebuild(wg: Any, err: Any, failed: Any, cancel: Any, sem: Any) -> ErrGroup:
    g = ErrGroup.__new__(ErrGroup)
    g._wg, g._err, g._failed, g._cancel, g._sem = wg, err, failed, cancel, sem
    return g


def _member(g: ErrGroup, fn: Callable[..., Any], args: tuple) -> None:
    try:
        fn(*args)
    except (Shutdown, greenlet.GreenletExit):
        raise  # teardown, or pg.goexit(): not an error of fn (Go's errgroup sees none)
    except BaseException as e:
        g._fail(e)
    finally:
        g._done()


def with_context(ctx: Context) -> tuple[ErrGroup, Context]:
    """A group whose first error (or wait's return) cancels the returned context."""
    g = ErrGroup()
    c, cancel = with_cancel(ctx)
    g._cancel = cancel
    return g, c
