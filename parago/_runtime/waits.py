"""Waits the hub wakes itself, and the Gs that are not pooled greenlets.

A *local* wait has no arena waiter: a timer of this P, a pg.blocking job, an
awaited asyncio future (pg.await_), a cluster answer.  The G parks
(park_local: pg_park_plain + the protocol's park), the event calls
wake_local, which readies it on this P without an arena round trip
(push_local).  While a G waits on another thread's future it counts as an
*external waiter* (``n_external``): the deadlock check (deadlock.py) waits
for those, and for user threads (publish_idle writes the count).

``interrupt`` raises an exception in a G at its current or next wait
(teardown, signals): a local wait is cancelled here, an arena wait through
pg_park_cancel.

Gs that are not pooled greenlets: a thread that calls parago gets a
ThreadG (its own arena G, freed with its thread-local or when a
pg.blocking job ends); a task awaiting the *_async forms gets a TaskG
(task_g: adopted if it is not an async goroutine).  slow_current says
which, or why the caller cannot block.  Owns ``n_external`` and ``tls``.
A mixin of sched.Runtime (RuntimeLike).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import greenlet

from .._errors import OutOfSharedMemory, ParagoError, Shutdown
from .._shim import NOMEM, GKind, fast, lib
from . import park
from .g import WR, GState, TaskG, ThreadG
from .types import RuntimeLike

GIL_HANDOFF = 50e-6  # s: long enough for a woken waiter to take the GIL (with the timer slack: ~100 us)

# the running threads by ident (CPython's own table; read, never written):
# publish_idle counts the user's threads again only when it changed
_ACTIVE: dict | None = getattr(threading, "_active", None)


class LocalWaits:
    """Local waits, external waiters, interrupts, thread and task Gs (module doc)."""

    main_gs: GState | None  # sched.Runtime's (an async main is a task G)

    def _init_waits(self: RuntimeLike) -> None:
        self.tls = threading.local()
        self.n_external = 0

    def park_local(self: RuntimeLike, gs: GState, reason: str) -> None:
        fast.pg_park_plain(self.cbase, gs.c, WR[reason], 0)  # no argtypes: every local wait takes it
        park.park(gs)

    def hand_off_gil(self: RuntimeLike) -> None:
        """At the end of a busy hub round: if a thread may be waiting for the
        GIL (a pg.blocking job running, a user's thread, a profile's sampling
        thread), sleep briefly with the GIL released so that it can take it.  Without this CPython starves
        it: uvloop releases and re-takes the GIL on every poll, so the
        waiter's 5 ms timed wait always sees a switch, never asks the holder
        to drop it, and loses each race for it to the hub -- a 10 ms
        pg.blocking(time.sleep) beside a hand-off loop took 0.4 to 13 s."""
        ex = self.executor
        if self.sampler is not None or (ex is not None and ex.threads > ex.idle) or self.count_user_threads():
            time.sleep(GIL_HANDOFF)

    def park_on_future(self: RuntimeLike, gs: GState, fut: Any, reason: str, threadsafe: bool) -> None:
        """Park gs until fut is done: a concurrent.futures future completed by
        another thread (threadsafe: pg.blocking) or an asyncio future of this
        P's loop (pg.await_).  Meanwhile gs counts as an external waiter (the
        deadlock check waits for it)."""
        self.n_external += 1

        def done(_f: Any) -> None:
            if threadsafe:
                if not self._closed:
                    self.loop.call_soon_threadsafe(self._future_done, gs, fut)
            else:
                self._future_done(gs, fut)

        gs.local_wait = fut
        fut.add_done_callback(done)
        try:
            self.park_local(gs, reason)
        finally:
            self.n_external -= 1

    def _future_done(self: RuntimeLike, gs: GState, fut: Any) -> None:
        if gs.local_wait is fut:
            self.wake_local(gs)

    def wake_local(self: RuntimeLike, gs: GState) -> None:
        if gs.local_wait is None:
            return
        gs.local_wait = None
        fast.pg_unpark_local(self.cbase, gs.c, 0)
        self.push_local(gs)

    def interrupt(self: RuntimeLike, gs: GState, exc: BaseException) -> bool:
        """Raise exc in a G at its current or next wait (teardown, signals).
        False when it was parked with its wake-up claimed by a waker whose
        ready has not arrived yet (it sees exc when it does; a caller that
        must not wait for that waker tries again)."""
        gs.pending = exc
        if isinstance(gs, TaskG):
            if gs.task is not None and not gs.task.done():
                gs.task.cancel()
            return True
        woke = True
        if gs.local_wait is not None:
            lw = gs.local_wait
            gs.local_wait = None
            try:
                lw.cancel()
            except Exception:
                pass
            lib.pg_unpark_local(self.base, gs.off, 0)
            self.push_local(gs)
        elif gs is not self.current or getattr(greenlet.getcurrent(), "gs", None) is not gs:
            # parked -- or the G this hub runs, seen from the hub (a signal
            # handler between the G's switch back and `current = None`: it may
            # have just parked, and would sleep on with exc pending)
            if lib.pg_park_cancel(self.base, gs.off):
                self.push_local(gs)
            else:
                woke = False  # not parked where a cancel reaches it (claimed, about to park, or being resumed)
        self.arm()
        return woke

    def count_syscall(self: RuntimeLike) -> None:
        """schedtrace's syscalltick: one more pg.blocking call."""
        self.arena.q[self.i_syscalltick] += 1

    def publish_idle(self: RuntimeLike) -> None:
        self.flush_exited()
        self.flush_decrefs()
        # external waiters: pg.blocking calls, await_, user threads
        self.arena.q[self.i_nexternal] = self.n_external + self.count_user_threads()

    def count_user_threads(self: RuntimeLike) -> int:
        """The user's threads alive, counted again only when the set of threads
        changed (this runs each time the P goes idle and at each busy round's
        end, and threading.enumerate() was a tenth of an echo's CPU)."""
        active = _ACTIVE.keys() if _ACTIVE is not None else None
        if active is None or active != self.thread_set:
            self.thread_set = set(active) if active is not None else None
            self.user_threads = max(0, threading.active_count() - 1 - self.runtime_threads())
        return self.user_threads

    thread_set: set | None = None  # the thread idents user_threads was counted for
    user_threads = 0

    def runtime_threads(self: RuntimeLike) -> int:
        n = 0
        for t in threading.enumerate():
            if getattr(t, "_parago_runtime", False):
                n += 1
        return n

    def slow_current(self: RuntimeLike, op: str) -> GState:
        if threading.get_ident() != self.hub_tid:
            tg = getattr(self.tls, "g", None)
            if tg is None:
                tg = self.new_thread_g()
            return tg
        try:
            task = asyncio.current_task(self.loop)
        except RuntimeError:
            task = None
        if task is not None:
            alt = op.replace("(", "_async(", 1) if "(" in op else op + "_async"
            raise ParagoError(
                f"{op} blocks, and this is an async goroutine: use `await {alt}` "
                f"(a blocking call would stall every goroutine of this P)"
            )
        raise ParagoError(f"{op} blocks: call it from a goroutine, not from the P's event loop")

    def new_thread_g(self: RuntimeLike) -> ThreadG:
        site = self.intern_site(f"thread {threading.current_thread().name}")
        off = lib.pg_gnew_running(self.base, -1, GKind.THREAD, site)
        if off == NOMEM:
            raise OutOfSharedMemory.for_size(400, self.arena.size)
        tg = ThreadG(self, off)
        self.tls.g = tg
        self.tls.slot = _ThreadSlot(self, off)
        return tg

    def drop_thread_g(self: RuntimeLike) -> None:
        """A pg.blocking job ended: free the G its thread made for parago calls,
        before the goroutine that waits for the job resumes.  A pooled thread
        outlives the job (and the run: it ends after pg.run measured the
        arena, on P1.. not at all); its next job's parago call makes a new G."""
        slot = getattr(self.tls, "slot", None)
        if slot is not None:
            self.tls.g = self.tls.slot = None
            slot.free()

    def task_g(self: RuntimeLike) -> TaskG:
        """The G of the running task (an async goroutine or an adopted task)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is None or threading.get_ident() != self.hub_tid:
            raise ParagoError("the *_async forms must be awaited in a task on a parago P's loop")
        gs = self.task_gs.get(task)
        if gs is None:
            off = lib.pg_gnew_running(self.base, self.p, GKind.TASK | GKind.SYSTEM, self.intern_site("adopted task"))
            if off == NOMEM:
                raise OutOfSharedMemory.for_size(400, self.arena.size)
            gs = TaskG(self, off)
            gs.fut = None
            gs.task = task
            gs.system = True
            self.gtable[off] = gs
            self.task_gs[task] = gs

            def _done(t: Any, gs: TaskG = gs) -> None:
                self.task_gs.pop(t, None)
                self.gexit(gs)

            task.add_done_callback(_done)
        return gs

    def start_task(self: RuntimeLike, off: int, fn: Callable, args: tuple, kw: dict) -> None:
        gs = TaskG(self, off)
        gs.fut = None
        gs.system = False
        self.gtable[off] = gs
        if off == self.main_off:
            self.main_gs = gs
        task = self.loop.create_task(self._run_task(gs, fn, args, kw))
        gs.task = task
        self.task_gs[task] = gs

    async def _run_task(self: RuntimeLike, gs: TaskG, fn: Callable, args: tuple, kw: dict) -> None:
        result = None
        try:
            result = await fn(*args, **kw)
        except (Shutdown, asyncio.CancelledError):
            if gs is self.main_gs and not self.shutting_down:
                self.main_finished(None, KeyboardInterrupt())
        except BaseException as e:
            if gs is self.main_gs:
                self.main_finished(None, e)
            else:
                self.goroutine_failed(gs, e)
        else:
            if gs is self.main_gs:
                self.main_finished(result, None)
        finally:
            self.task_gs.pop(asyncio.current_task(), None)
            self.gexit(gs)


class _ThreadSlot:
    """Frees a thread's G when the thread ends (its thread-local dies) or
    when a pg.blocking job of a pooled thread ends (LocalWaits.drop_thread_g)."""

    def __init__(self, rt: RuntimeLike, off: int) -> None:
        self.rt = rt
        self.off = off

    def free(self) -> None:
        off, self.off = self.off, 0
        if off and not self.rt.closed:
            lib.pg_gexit(self.rt.base, off)

    def __del__(self) -> None:
        self.free()
