"""The park protocol: the one way a goroutine of parago waits.

Owns the entries every wait goes through -- :func:`park` (a greenlet G or
a thread), :func:`park_async` (an async goroutine's task), :func:`gosched`
(a yield, no ticket), and :func:`run` / :func:`run_async` (a slow path that
parks more than once) -- and the abort contract below, written here once.
Go waits only through ``gopark``, trio only through
``wait_task_rescheduled(abort_fn)``; parago only through these.  How each
kind of G actually waits: a greenlet G switches to the hub, written in
:func:`park` itself (the unbuffered hot path: no second call); a thread
waits on the futex in its G record, a task awaits a loop future -- g.py's
``ThreadG.park`` and ``TaskG.park_async``, which nothing but this module
calls (tests/unit/test_park_protocol.py fails on any other call of a G's
park in parago/).  The runtime's own waits come here too: a preempted
yield (signals.py), a local wait on a timer, pg.blocking or await_
(waits.py ``park_local``/``park_on_future``).

Each blocking operation is three steps; only the first is on the fast path:

    begin    the C operation itself: one foreign call, a status.  PG_PARKED
             means a waiter (sudog) of the G is queued on the object and
             the G's park word is WAITING -- its ticket (shm/sched.c).  A
             local wait (a timer's, pg.blocking's, await_'s: no arena
             waiter) takes its ticket with pg_park_plain instead.
    park     wait until a waker claims the ticket and readies the G.
    finish   read what the waker left in the G record -- ``gs.wake_res()``
             (WAKE_*), the chosen case, the handed-over value (a C
             ``*_finish`` call).

    goroutine                 C (any P)                      waker (any P)
    ---------                 ---------                      -------------
    begin() ------------->    lock obj; nothing ready:
                              queue sudog, park=WAITING
    park(): to the hub  <--   PG_PARKED                      lock obj; dequeue sudog;
                                                             CAS park WAITING->CLAIMED;
                                                             hand value to g; ready(g)
    finish()  <-- hub resumes g (its P's ready list)

The abort contract.  A park returns normally only when a waker claimed the
ticket and its ready arrived: the operation took effect, finish reads how.
It raises when the G is interrupted -- teardown's Shutdown, a failure or
Ctrl-C for main, a cancelled task for an async G (waits.py ``interrupt``)
-- and then exactly one of two things happened:

  1. the wait was cancelled (``pg_park_cancel`` won the CAS WAITING ->
     CANCELLED): no waker will ever claim it.  The sudog is unlinked by
     whoever next walks the queue; what begin did besides queueing it is
     still done (a send's handle references held, a waiting writer
     counted, a semaphore queue's head blocking the waiters behind it).
  2. a waker had already claimed it: the operation took effect (a value
     was handed over, the lock is ours) and the interrupt is raised when
     the ready arrives (a greenlet G: ``pending``; a task: the claimed
     ready is counted ``stale`` and ignored).

``on_abort`` -- a callable of no arguments, called at most once per park,
only when the park raises, before the exception goes on -- undoes what
case 1 leaves behind and must be harmless in case 2 (the runtime is being
torn down or the G fails; nothing waits on the object's outcome).  It must
not park and should not raise: an exception from it replaces the
interrupt.  A finish that must run either way -- a select dequeuing its
other cases, a sleep stopping its timer, Cond.wait relocking L -- is a
``try``/``finally`` around the park instead, as Go's code after
``gopark`` runs on both paths.  Annotating the interrupt for the caller
(send_many's ``sent``) is the caller's own ``except``.

The sync and async forms of an operation share one body: the begin and
finish steps are the operation's own methods, and an operation whose slow
path loops (a Mutex woken in normal mode competes again, Once waits for
another runner) writes that path once as a generator that yields where it
must park, driven by :func:`run` or :func:`run_async`; an interrupt is
thrown in at the ``yield`` (the generator's own ``try`` is its on_abort).
"""

from __future__ import annotations

from typing import Any, Callable, Generator

import greenlet

from .._errors import Shutdown, not_in_runtime
from .._shim import fast, lib
from . import state
from .g import GreenletG

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


def park(gs: Any, on_abort: Callable[[], None] | None = None) -> None:
    """Wait for the G's ready: begin returned PG_PARKED (or a local wait
    took its ticket).  Raises on an interrupt, after ``on_abort`` (the
    contract above).

    A greenlet G switches to the hub, which switches back when the G comes
    off its P's ready list (or a local event or an interrupt pushes it
    there).  That wait is written here, not in a method of GreenletG: it is
    the unbuffered hot path, which so pays for no call beyond this one.  A
    thread waits on the futex in its G record (ThreadG.park); a task's G
    parks with park_async."""
    try:
        if type(gs) is GreenletG:
            rt = gs.rt
            if rt.shutting_down and gs.pending is None and lib.pg_park_cancel(rt.base, gs.off):
                raise Shutdown  # teardown: cancelled before anyone claimed it
            if rt.sampler is None:
                if not (rt.hops and _hop(rt)):
                    rt.hub.switch()  # no argument: a (None,) tuple would stay on its saved stack
            else:
                rt.sampler.blocked(gs, rt.hub.switch)  # the block profile times the wait
            if gs.pending is not None:
                gs.raise_pending()
        else:
            gs.park()
    except BaseException:
        if on_abort is not None:
            on_abort()
        raise


def _hop(rt: Any) -> bool:
    """Switch from the parking G straight to the next G readied on this P,
    not through the hub (Go's park_m runs schedule() on the same M): a
    same-P hand-off -- the unbuffered channel's, a pipeline's on one P --
    is then one switch instead of two and a hub round.  Only a plain parked
    greenlet, only while nothing local waits (the hub runs local and
    yielded Gs first), and ``rt.hops`` times per hub round (the hub resets
    it): the round's 2 ms deadline, flags and fairness stay the hub's.
    False: nothing to hop to -- the caller switches to the hub."""
    if not rt.arena.u32[rt.i_nready] or rt.local_ready or rt.yielded or rt.tracer is not None or rt.shutting_down:
        return False  # (nready: a racy hint -- a G readied just after is the hub's next find)
    g = fast.pg_findready(rt.cbase, rt.p, rt.exited)  # a readied started G; starts nothing
    rt.exited = None
    if not g:
        return False
    nxt = rt.gtable.get(g)
    if nxt is not None and nxt.__class__ is GreenletG and not nxt.stale and nxt.gr is not None:
        rt.hops -= 1
        rt.current = nxt  # what the hub retires if nxt finishes (its _DONE comes to the hub)
        nxt.gr.switch()
        return True
    # anything else (a task's G, a stale ready, a G that moved here) is the hub's
    rt.loop.call_soon(rt.run_g, g)
    return False


async def park_async(gs: Any, on_abort: Callable[[], None] | None = None) -> None:
    """park() for an async goroutine (the G is a task's: it awaits a loop
    future the hub resolves)."""
    try:
        await gs.park_async()
    except BaseException:
        if on_abort is not None:
            on_abort()
        raise


def gosched(gs: Any) -> None:
    """Yield the P (pg.gosched, time.sleep(0)): a wait with no ticket -- the
    G goes to the back of its P's ready list and parks until the hub comes
    round to it.  Nothing to undo: an interrupt just raises."""
    gs.rt.push_yielded(gs)
    park(gs)


def _advance(steps: Steps, exc: BaseException | None) -> None:
    """Resume an operation's slow path after a park: on with its next step,
    or the interrupt thrown in (its ``try``/``except`` undoes what it must)."""
    if exc is None:
        next(steps)
    else:
        steps.throw(exc)


def _parked(gs: Any) -> BaseException | None:
    try:
        park(gs)
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


__all__ = ["current", "gosched", "park", "park_async", "run", "run_async", "runtime"]
