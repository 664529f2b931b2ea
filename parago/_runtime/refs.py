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

    def give_back(self, off: int) -> None:
        """The reference of a table entry its dying handle took out: batched
        while the P runs; at once once release() began (it can no longer
        see that entry, and a later decref_later drops nothing)."""
        if not self.released:  # decref_later, inlined: every handle's death comes here
            pend = self.pending
            pend.append(off)
            if len(pend) >= BATCH:
                self.flush()
        elif not self.rt._closed:
            lib.pg_obj_decref(self.rt.base, off)

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
        # released first: from here on decref_later drops nothing.  Each
        # table entry is taken out exactly once, with one popitem here or by
        # its dying handle (give_back: at once, also during this loop -- a
        # collection can run a __del__ between two popitems), and whoever
        # takes it gives its reference back -- never both (a second decref
        # would steal the reference of whatever reuses the block), never
        # neither (a leak).
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
