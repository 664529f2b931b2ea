"""References: this P's intern table of handles and its batched decrefs.

DESIGN "Lifetime": a P holds one arena reference per shared object it has
a handle for (the intern table maps offset -> the P's one handle, weakly),
dropped when that handle dies; decrefs are batched (a late decref only
delays a free) and flushed when the P goes idle or the batch is full, in
one foreign call.
"""

from __future__ import annotations

import array
import weakref

from .._shim import lib
from .types import RuntimeLike

BATCH = 64


class Refs:
    def __init__(self, rt: RuntimeLike) -> None:
        self.rt = rt
        self.table: dict[int, weakref.ref] = {}  # offset -> weakref to this P's handle
        self.pending: list[int] = []
        self.released = False  # release() gave back every reference: a handle dying later drops nothing

    def decref_later(self, off: int) -> None:
        """Drop an arena reference, batched."""
        if self.released:
            return
        pend = self.pending
        pend.append(off)
        if len(pend) >= BATCH:
            self.flush()

    def flush(self) -> None:
        pend = self.pending
        if pend and not self.rt._closed:
            arr = array.array("Q", pend)
            pend.clear()
            addr, n = arr.buffer_info()
            lib.pg_obj_decref_many(self.rt.base, addr, n)

    def release(self, extra: list[int] | None = None) -> None:
        """This P is leaving the run: give back its reference to every object
        it has a handle for (and ``extra`` ones, e.g. the start cache's), so
        that what no P holds any more is freed -- the arena's ``inuse`` comes
        back to what the run really leaked (the conftest checks it)."""
        # released first: a handle dying from here on (a pg.blocking thread
        # dropping it, the collector) gives back nothing itself.  Each table
        # entry is taken with one popitem, so a handle is either taken here
        # (its reference given back below) or had already removed its own
        # entry and queued its decref in pending -- never both: a second
        # decref would steal the reference of whatever reuses the block.
        self.released = True
        table = self.table
        offs: list[int] = []
        while table:
            offs.append(table.popitem()[0])
        pend, self.pending = self.pending, []
        offs.extend(pend)
        if extra:
            offs.extend(extra)
        if offs and not self.rt._closed:
            arr = array.array("Q", offs)
            addr, n = arr.buffer_info()
            lib.pg_obj_decref_many(self.rt.base, addr, n)

    def close(self) -> None:
        """The run is over: nothing may touch the arena any more."""
        self.pending.clear()
        self.table.clear()
