"""Goroutine state on the Python side of one P (the G record lives in the arena).

A G is one of three kinds, which differ only in how it waits.  Every wait
goes through the park protocol (park.py: its entries and the abort
contract), which does a greenlet's wait itself and calls a thread's
``park`` or a task's ``park_async`` -- nothing else calls them:

  GreenletG  a plain function on a greenlet whose parent is the hub:
             waiting = switch to the hub; the hub switches back when the G
             comes off this P's ready list (or a local event fires).
             Written in park.park itself: the hot path.
  TaskG      an ``async def`` goroutine (or any task on the P's loop that
             uses the ``*_async`` forms): waiting = await a loop future
             that the hub resolves.
  ThreadG    a thread that is no goroutine (pg.blocking workers, user
             threads): waiting = the futex in its G record.

After a wait, the outcome is in the arena G record (wake_res, wake_case,
wake_*), written by whoever claimed the wait.  ``pending`` is an exception
the hub wants raised in the G when it resumes (Shutdown, a Panic or
KeyboardInterrupt for main); ``stale`` counts ready-list entries to ignore
(a claimed wake-up that arrives after its wait was abandoned).
"""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any

from .._errors import Shutdown
from .._shim import OK, WAIT_REASONS, blocking, lib, views

# per-G field indices: g // size + k (views.g_indexer)
_GOID_K = views.g_indexer("goid")[1]
_WAKE_K = views.g_indexer("wake_res")[1]
_STATUS_K = views.g_indexer("status")[1]
assert views.g_indexer("goid")[0] == 8 and views.g_indexer("wake_res")[0] == 4 and views.g_indexer("status")[0] == 4

WR = {v: k for k, v in WAIT_REASONS.items()}  # Go's text -> wait reason

__all__ = ["WAIT_REASONS", "WR", "GState", "GreenletG", "TaskG", "ThreadG"]


class GState:
    __slots__ = (
        "off",
        "c",
        "goid",
        "rt",
        "pending",
        "stale",
        "local_wait",
        "obuf",
        "obuf_mv",
        "out",
    )

    def park(self) -> None:  # pragma: no cover - a thread's G defines it
        raise RuntimeError(f"{type(self).__name__}.park: a G waits through park.park / park.park_async")

    def __init__(self, rt: Any, off: int) -> None:
        self.rt = rt
        self.off = off
        self.c = ctypes.c_uint64(off)  # prebuilt for the no-argtypes fast calls
        self.goid = rt.arena.q[off // 8 + _GOID_K]
        self.pending: BaseException | None = None
        self.stale = 0
        self.local_wait: Any = None
        self.obuf = rt.obuf
        self.obuf_mv = rt.obuf_mv
        self.out = rt.out

    def wake_res(self) -> int:
        """What the waker wrote in the G record (WAKE_*): the finish step's read."""
        return self.rt.arena.u32[self.off // 4 + _WAKE_K]

    @property
    def i_status(self) -> int:
        """Index of the G record's status in the arena's u32 view (computed,
        not stored: every slot and int of a G is paid per parked goroutine)."""
        return self.off // 4 + _STATUS_K

    def raise_pending(self) -> None:
        exc = self.pending
        if exc is not None:
            self.pending = None
            raise exc


class GreenletG(GState):
    """Its wait -- a switch to the hub -- is park.park's own body (the
    unbuffered hot path: no second call)."""

    __slots__ = ("gr",)
    gr: Any


class TaskG(GState):
    __slots__ = ("fut", "task", "system")
    fut: Any
    task: Any
    system: bool

    async def park_async(self) -> None:
        rt = self.rt
        fut = rt.loop.create_future()
        self.fut = fut
        try:
            await fut
        except asyncio.CancelledError:
            if not (fut.done() and not fut.cancelled()):
                if not lib.pg_park_cancel(rt.base, self.off):
                    self.stale += 1  # claimed: its ready is on the way; ignore it
            if rt.shutting_down:
                raise Shutdown from None
            raise
        finally:
            self.fut = None
        if self.pending is not None:
            self.raise_pending()

    def park(self) -> None:  # pragma: no cover - guarded by cur()
        raise RuntimeError("TaskG.park: a task waits with park.park_async")


class ThreadG(GState):
    __slots__ = ()

    def __init__(self, rt: Any, off: int) -> None:
        super().__init__(rt, off)
        self.obuf = ctypes.create_string_buffer(rt.OBUF)
        self.obuf_mv = memoryview(self.obuf).cast("B")
        self.out = (ctypes.c_uint64 * 8)()

    def park(self) -> None:
        rt = self.rt
        while True:
            if blocking.pg_thread_park(rt.base, self.off, 50_000_000) == OK:
                return
            if rt.closed or rt.shutting_down:
                if lib.pg_park_cancel(rt.base, self.off):
                    raise Shutdown
