"""Spawning: pg.go's side of a goroutine's life (Go's newproc).

Owns the interned created-by texts (one arena string per call site and P:
a G record holds only its offset) and the sender's payload cache (the same
function with the same shared objects is encoded once, codec.SpawnCache).
The G record is made and *placed* in C (pg_go: this P's runnext or another
P's inbox, by load -- shm/sched.c "Placement").
"""

from __future__ import annotations

import array
import ctypes
import sys
import threading
from typing import Any, Callable

import greenlet

from .._errors import ParagoError
from .._shim import CONST, GKind, fast, lib, views
from .._shim.status import check
from . import codec, dump
from .cluster import hooks
from .types import RuntimeLike

GF_LOCAL = CONST["GF_LOCAL"]

# A cluster run's placement hook is cluster.hooks.place (PARAGO_CLUSTER_PLACEMENT=
# spread): place(fn, args, kw, depth) -> True when it sent the new goroutine to
# another node.  None otherwise: the local path is one attribute's test.


class Spawner:
    def __init__(self, rt: RuntimeLike) -> None:
        self.rt = rt
        self.cache: dict[Any, ctypes.c_uint64] = {}  # call site / text -> interned created-by text
        self.payloads = codec.SpawnCache()
        self.refbuf = (ctypes.c_uint64 * 256)()
        self.last_parent = ctypes.c_uint64(0)

    def release(self) -> None:
        """Free the interned created-by texts (this P is leaving the run)."""
        for off in {c.value for c in self.cache.values() if c.value}:
            lib.pg_mfree(self.rt.base, off)
        self.cache.clear()

    def close(self) -> None:
        """Drop what the caches hold (objects of this run)."""
        self.payloads.d.clear()
        self.cache.clear()

    def parent_c(self, goid: int) -> ctypes.c_uint64:
        """The parent's goid as a prebuilt 64-bit word (kept for the next
        pg.go: a loop of them has one parent)."""
        c = self.last_parent
        if c.value != goid:
            c = self.last_parent = ctypes.c_uint64(goid)
        return c

    def site_of(self, depth: int) -> ctypes.c_uint64:
        """The pg.go call site ``depth`` frames up, as interned arena text."""
        f = sys._getframe(depth)
        key = (f.f_code, f.f_lineno)
        s = self.cache.get(key)
        if s is None:
            # "module.creator file:line" (Go's "created by main.main", then file:line),
            # shortened to fit the arena's PG_SITE bytes
            s = self.cache[key] = self.intern_site(dump.site(f))
        return s

    def intern_site(self, text: str) -> ctypes.c_uint64:
        """Store a created-by text in the arena once (per P and site): a G
        record holds only its offset, which keeps G records in the 256 B class."""
        s = self.cache.get(text)
        if s is None:
            b = text.encode()[-(CONST["PG_SITE"] - 1) :] + b"\0"
            off = lib.pg_store_bytes(self.rt.base, b, len(b))
            s = self.cache[text] = ctypes.c_uint64(max(off, 0))
        return s

    def spawn(
        self,
        fn: Callable,
        args: tuple,
        kw: dict,
        local: bool = False,
        system: bool = False,
        depth: int = 3,
        site: str | None = None,
    ) -> None:
        """pg.go's work: ``depth`` frames up is the call site its created-by
        line names (``site``: that text itself, for a goroutine that another
        node started)."""
        if not callable(fn):
            raise TypeError(f"pg.go: fn must be callable, got {type(fn).__name__}")
        rt = self.rt
        in_hub = threading.get_ident() == rt.hub_tid
        cur = getattr(greenlet.getcurrent(), "gs", None) if in_hub else None
        parent = cur.goid if cur is not None else 0
        kind = GKind.SYSTEM if system else 0
        if local:
            if not in_hub:
                raise ParagoError("pg.go_local: call it from a goroutine of this P, not from a thread")
            off = check(
                lib.pg_go(rt.base, rt.p, None, 0, GF_LOCAL, kind, self.site_of(depth), parent, None, 0, None),
                "pg.go",
                400,
            )
            rt.local_fns[off] = (fn, args, kw)
            rt.arm()
            return
        if not system:
            codec.warn_captured_writes(fn, depth)
            place = hooks.place
            if place is not None and place(fn, args, kw, depth):
                return
        hit = self.payloads.get(fn, args) if not kw else None
        if hit is not None:
            payload, refs = hit[0], hit[1]
        else:
            refs = []
            payload = codec.dumps_fn(fn, args, kw, refs)
            if codec.cacheable(fn, args, kw):
                self.payloads.put(fn, args, payload, refs)
        n = len(payload)
        nrefs = len(refs)
        where = self.site_of(depth) if site is None else self.intern_site(site)
        if n < 0x7FFFFFFF and nrefs <= 256 and parent < 0x7FFFFFFF:
            rb = self.refbuf
            if nrefs:
                rb[:nrefs] = refs
            off = fast.pg_go(
                rt.cbase,
                rt.p if in_hub else -1,
                payload,
                n,
                0,
                kind,
                where,
                self.parent_c(parent),  # a stack-passed plain int fills only 4 of its 8 bytes
                rb,
                nrefs,
                rt.place_out if rt.tracer is not None else None,
            )
        else:
            arr = array.array("Q", refs)
            raddr, nrefs = arr.buffer_info()
            off = lib.pg_go(
                rt.base, rt.p if in_hub else -1, payload, n, 0, kind, where, parent, raddr, nrefs, None
            )
        if off < 0:
            check(off, "pg.go", len(payload) + 400)
        if in_hub and not rt.scheduled:
            # spawned from a task (or a loop callback): the schedule loop may be
            # idle, and wakep only wakes *other* Ps
            rt.arm()
        if rt.tracer is not None:
            goid = rt.arena.q[views.g_index(off, "goid")]
            rt.tracer.spawn(goid)
            po = rt.place_out
            if po[0] != rt.p:
                rt.tracer.place(goid, po[0], po[1], po[2])
        if not in_hub:
            rt.loop.call_soon_threadsafe(rt.arm)
