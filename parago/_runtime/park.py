"""The park protocol: how every blocking operation of parago waits.

Each blocking operation is three steps; only the first is on the fast path:

    begin    the C operation itself: one foreign call, a status.  PG_PARKED
             means a waiter (sudog) of the G is queued on the object and
             the G's park word is WAITING -- its ticket (shm/sched.c).
    park     wait until a waker claims the ticket and readies the G.  How
             depends on the G's kind (g.py): a greenlet switches to the
             hub, a task awaits a loop future, a thread waits on the futex
             in its G record.  An interrupt (teardown's Shutdown, a failure
             or Ctrl-C for main) raises here, after the park was cancelled;
             ``on_abort`` then undoes what begin did that cancelling does
             not (a parked send's handle references, a waiting writer's
             count, a semaphore queue's head).
    finish   read what the waker left in the G record -- ``wake_res``, the
             chosen case, the handed-over value (a C ``*_finish`` call).

    goroutine                 C (any P)                      waker (any P)
    ---------                 ---------                      -------------
    begin() ------------->    lock obj; nothing ready:
                              queue sudog, park=WAITING
    park(): to the hub  <--   PG_PARKED                      lock obj; dequeue sudog;
                                                             CAS park WAITING->CLAIMED;
                                                             hand value to g; ready(g)
    finish()  <-- hub resumes g (its P's ready list)

The sync and async forms of an operation share one body: the begin and
finish steps are the operation's own methods, and an operation whose slow
path loops (a Mutex woken in normal mode competes again, Once waits for
another runner) writes that path once as a generator that yields where it
must park, driven by :func:`run` or :func:`run_async`.
"""

from __future__ import annotations

from typing import Any, Callable, Generator

import greenlet

from .._errors import not_in_runtime
from .._shim import views
from . import state

Steps = Generator[None, None, Any]


def current(rt: Any, op: str) -> Any:
    """The calling goroutine's G state for a blocking ``op`` (a thread's
    own G for a thread that is no goroutine; an async goroutine gets
    ParagoError naming the ``_async`` form)."""
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if gs is None:
        gs = rt.slow_current(op)
    return gs


def runtime(op: str) -> Any:
    """This process's runtime, or NotInRuntime naming ``op``."""
    rt = state.rt
    if rt is None:
        raise not_in_runtime(op)
    return rt


def wake_res(gs: Any) -> int:
    """What the waker wrote in the G record (WAKE_*)."""
    return gs.rt.arena.u32[gs.i_wake_res]


def park(gs: Any, on_abort: Callable[[], None] | None = None) -> None:
    """Wait for the G's ready (begin returned PG_PARKED)."""
    try:
        gs.park()
    except BaseException:
        if on_abort is not None:
            on_abort()
        raise


async def park_async(gs: Any, on_abort: Callable[[], None] | None = None) -> None:
    """park() for an async goroutine (the G is a task's)."""
    try:
        await gs.park_async()
    except BaseException:
        if on_abort is not None:
            on_abort()
        raise


def _advance(steps: Steps, exc: BaseException | None) -> None:
    """Resume an operation's slow path after a park: on with its next step,
    or the interrupt thrown in (its ``try``/``except`` undoes what it must)."""
    if exc is None:
        next(steps)
    else:
        steps.throw(exc)


def _parked(gs: Any) -> BaseException | None:
    try:
        gs.park()
    except BaseException as e:
        return e
    return None


async def _parked_async(gs: Any) -> BaseException | None:
    try:
        await gs.park_async()
    except BaseException as e:
        return e
    return None


def run(gs: Any, steps: Steps) -> Any:
    """Drive an operation's slow path: park at each yield.  Returns the
    generator's return value."""
    try:
        next(steps)
        while True:
            _advance(steps, _parked(gs))
    except StopIteration as stop:
        return stop.value


async def run_async(gs: Any, steps: Steps) -> Any:
    """run() for an async goroutine."""
    try:
        next(steps)
        while True:
            _advance(steps, await _parked_async(gs))
    except StopIteration as stop:
        return stop.value


__all__ = ["current", "park", "park_async", "run", "run_async", "runtime", "views", "wake_res"]
