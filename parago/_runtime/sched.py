"""One P: its hub loop, the scheduler, and its goroutine table.

Each P process runs exactly one Runtime.  Its main thread (the M) runs a
uvloop loop -- the hub -- whose callback ``schedule`` is Go's schedule():

    schedule()  (a uvloop callback, re-armed with call_soon)
      1. local_ready: Gs readied by this P's own events (timers, pg.blocking,
         await_, interrupts) -- Python-only, no arena round trip
      2. pg_findrunnable: this P's ready list (started Gs readied by anyone),
         runnext/ring, global queue, stealing  -- one foreign call
      3. yielded: Gs that called pg.gosched (Go: the global queue)
      4. nothing: pg_p_idle spins briefly, then publishes SLEEPING; the loop
         blocks in epoll until the P's eventfd, a timer or I/O wakes it.

It runs up to 2 ms of goroutines, then re-arms itself so the loop polls I/O
(letting the loop iterate *is* the netpoll check: uvloop has no run-once).

Goroutine greenlets are children of the hub greenlet, and are reused
(Go reuses g's): a finished worker switches back with _DONE and waits for
its next goroutine.  A goroutine keeps the P until it blocks, calls
pg.gosched or is preempted at its next parago operation after a 10 ms
time slice (signals.py, preempt.py; DESIGN "Time slices").

Runtime is one P, by role (each role's module says what it owns):

    sched.py      Runtime: the hub loop, the run queues, the goroutine table
                  (gtable, the worker pool, starting / resuming / retiring Gs)
    signals.py    Signals: arena flags, sysmon's signal and acks, preemption
    waits.py      LocalWaits: local waits, external waiters, interrupts,
                  thread and task Gs
    lifecycle.py  Lifecycle: failures, shutdown, what the P gives back
    cluster.py    NodeWork: what a cluster node asks of its runtime
    refs.py, spawn.py, dump.py: components the Runtime holds or calls

An unstarted G's (fn, args, kw) arrives encoded where pg_gstart or
pg_findrunnable left it: ``how`` START_OBUF (obuf[:n]) or START_BLOCK (an
arena block of n bytes, freed when read); START_STARTED: a started G,
readied.  ``payload`` is the one reader of that encoding (the hub's start
path and a node giving goroutines away both use it).
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import inspect
import os
import threading
import time
from typing import Any, Callable

import greenlet

from .._errors import (
    DecodeError,
    Shutdown,
    not_in_runtime,
)
from .._shim import BIG, Gstatus, Pstate, blocking, fast, lib, views
from . import codec, preempt, profile, race, state, trace
from .cluster import NodeWork
from .g import GreenletG, GState, TaskG, ThreadG
from .lifecycle import Lifecycle
from .procs_util import usable_cpus
from .refs import Refs
from .signals import Signals
from .spawn import Spawner
from .types import START_BLOCK, START_OBUF
from .waits import LocalWaits

_DONE = object()
_FIRST = object()  # switch() into a new worker greenlet: no arguments
# the keywords of every goroutine started without any, shared (never
# mutated: _call and race only read them) -- an empty dict of its own would
# live as long as its goroutine
_NO_KW: dict = {}
SPIN_NS = 50_000
HOPS = 8  # G-to-G switches (park.py _hop) per hub round
SLICE_HOLD = 0.01  # how long a P's preempted goroutines go before its unstarted ones (one slice)


@preempt.goroutine_entry
def _call(fn: Callable, args: tuple, kw: dict) -> Any:
    """fn(*args, **kw), but with plain calls for the common shapes: a
    *-call recurses in C, and every C frame below a parked goroutine is
    copied into its greenlet's saved stack (bytes per parked goroutine)."""
    if not kw:
        n = len(args)
        if n == 0:
            return fn()
        if n == 1:
            return fn(args[0])
        if n == 2:
            return fn(args[0], args[1])
        if n == 3:
            return fn(args[0], args[1], args[2])
        if n == 4:
            return fn(args[0], args[1], args[2], args[3])
    return fn(*args, **kw)


class _Worker(greenlet.greenlet):
    """A reusable goroutine greenlet (parent: the hub).  ``gs`` is a slot,
    not an instance dict (a dict is ~100 bytes more per parked goroutine);
    unset until its first goroutine, so read it with getattr(..., None)."""

    __slots__ = ("gs",)


def _worker_main() -> None:
    # The first goroutine comes through rt.handoff, not as an argument: the
    # arguments of a greenlet's first switch stay referenced until its run()
    # returns -- and a pooled worker's never does.  The task tuple itself is
    # dropped once unpacked: this frame lives as long as the goroutine.
    rt = state.rt
    me = greenlet.getcurrent()
    task = rt.handoff
    rt.handoff = None
    while task is not None:
        gs, fn, args, kw = task
        me.gs = gs
        task = None
        rt.run_goroutine(gs, fn, args, kw)  # no *-call: see _call
        me.gs = gs = fn = args = kw = None  # hold nothing of a finished goroutine while pooled
        task = rt.hub.switch(_DONE)


class Runtime(Signals, LocalWaits, Lifecycle, NodeWork):
    """One P (module doc): the hub loop and the goroutine table here, the
    other roles in the mixins (each initialises the state it owns)."""

    OBUF = 1 << 16

    def __init__(self, arena: Any, p: int, nprocs: int, nonce: int, wakefds: list[int], settings: dict) -> None:
        self.arena = arena
        self.base = arena.base
        self.cbase = ctypes.c_void_p(arena.base)  # prebuilt for the fast calls
        self.c_ocap = ctypes.c_uint64(self.OBUF)
        self.p = p
        self.nprocs = nprocs
        self.nonce = nonce
        self.settings = settings
        self.race = bool(settings.get("race"))
        if self.race:
            race.reset()  # reports are once per site and run
        self.tracer = trace.tracer_for(settings, p)
        self._closed = False
        self.shutting_down = False
        self.failed = False
        self.wakefds = wakefds
        self.evfd = wakefds[p]
        for i, fd in enumerate(wakefds):
            lib.pg_set_wakefd(i, fd)
        lib.pg_seed(int.from_bytes(os.urandom(8), "little") ^ (p + 1))
        self.obuf = ctypes.create_string_buffer(self.OBUF)
        self.obuf_mv = memoryview(self.obuf).cast("B")
        self.out = (ctypes.c_uint64 * 8)()
        self.fout = (ctypes.c_uint64 * 4)()  # pg_findrunnable's own out (start_g reads it)
        self.place_out = (ctypes.c_uint64 * 3)()  # pg_go's placement decision (traced runs)
        # components, each with its own close() (refs.py, spawn.py); their
        # hot entry points are bound here once, so callers pay no indirection
        self.refs = Refs(self)
        self.handles = self.refs.table
        self.decref_later = self.refs.decref_later
        self.flush_decrefs = self.refs.flush
        self.spawner = Spawner(self)
        self.spawn = self.spawner.spawn
        self.site_of = self.spawner.site_of
        self.intern_site = self.spawner.intern_site
        self.start_cache = codec.StartCache()
        self.exited: Any = None  # c_uint64 of a G to retire in the next findrunnable
        self.gtable: dict[int, GState] = {}
        self.zombies: dict[int, GState] = {}  # exited Gs with a stale ready still queued
        self.local_fns: dict[int, tuple] = {}
        self.local_ready: collections.deque = collections.deque()
        self.yielded: collections.deque = collections.deque()
        self.task_gs: dict[Any, TaskG] = {}  # asyncio task -> its G (async goroutines, adopted tasks)
        self.pool: list[_Worker] = []
        self.tick = 1
        self.scheduled = False
        self.current: GState | None = None
        self.handoff: tuple | None = None  # a new worker greenlet's first goroutine
        self.hops = 0  # G-to-G switches left in this hub round (park.py _hop)
        self.hub_tid = threading.get_ident()
        self.executor: Any = None  # the P's pg.blocking pool (made on first use)
        self.spin_ns = SPIN_NS if 1 < nprocs <= usable_cpus() else 0
        self.main_gs: GState | None = None
        self.main_off = 0
        self.sup: Any = None  # P0's Supervisor (supervisor.py); None on the other Ps
        self.multi = nprocs > 1  # other Ps could start this P's unstarted goroutines
        self.last_find = 0.0  # when the hub last asked findRunnable while it had yielded Gs
        self._init_signals()
        self._init_waits()
        # indices into the arena's word views (shm/layout.h via _shim/views.py)
        pi = views.p_index
        self.i_state = pi(p, "state")
        self.i_pid = pi(p, "pid")
        self.i_runqhead = pi(p, "runqhead")
        self.i_runqtail = pi(p, "runqtail")
        self.i_dumpreq = pi(p, "dumpreq")
        self.i_nlive = pi(p, "nlive")
        self.i_nlocal = pi(p, "nlocal")
        self.i_nready = pi(p, "nready")  # park.py _hop: anything readied here?
        self.i_npreempt = pi(p, "npreempt")
        self.i_nexternal = pi(p, "nexternal")
        self.i_schedtick = pi(p, "schedtick")
        self.i_syscalltick = pi(p, "syscalltick")
        self.i_ack = pi(p, "ack")
        self.i_shutdown = views.hdr_index("shutdown")
        self.i_panicking = views.hdr_index("panicking")
        self.sampler = profile.sampler_for(settings, p, self._running)
        arena.u32[self.i_pid] = os.getpid() & 0x7FFFFFFF
        self.loop = self._new_loop()
        self.hub = greenlet.getcurrent()

    # ------------------------------------------------------------------
    # the loop

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop

        loop = uvloop.new_event_loop()
        loop.set_exception_handler(self._loop_exception)
        loop.add_reader(self.evfd, self._on_wake)
        return loop

    def _on_wake(self) -> None:
        try:
            os.read(self.evfd, 8)
        except (BlockingIOError, OSError):
            pass
        self.arm()

    def arm(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.schedule)

    def schedule(self) -> None:
        self.scheduled = False
        if self._closed:
            return
        arena = self.arena
        # the hub is awake: wakers may skip the eventfd, sysmon watches it
        # (findRunnable stores it too; the hub may first run local Gs)
        arena.u32[self.i_state] = Pstate.RUNNING
        if self.flags():
            self.on_flags()
            if self._closed:
                return
        base, p = self.cbase, self.p
        find = fast.pg_findrunnable
        gtable = self.gtable
        obuf, ocap, out = self.obuf, self.c_ocap, self.fout
        local = self.local_ready
        deadline = time.perf_counter() + 0.002
        n = 0
        while True:
            n += 1
            if local:
                self.resume_local(local)
            elif self.yielded and self.multi and time.perf_counter() - self.last_find < SLICE_HOLD:
                # preempted goroutines first, for up to two time slices: the
                # unstarted Gs queued here stay unstarted, so an idle P may
                # still take them (thieves see this P stuck: no findRunnable)
                g = fast.pg_findready(base, p, self.exited)
                self.exited = None
                if g:
                    self.run_g(g)
                else:
                    self.resume_local(self.yielded)
            else:
                self.last_find = time.perf_counter() if self.yielded else 0.0
                if self.tick % 61 == 0 and self.yielded:
                    self.tick += 1  # else every round after this one would take yielded first, for ever
                    self.resume_local(self.yielded)
                else:
                    g = find(base, p, self.exited, obuf, ocap, out)
                    self.exited = None
                    self.tick = (self.tick + 1) & 0x7FFFFFFF
                    if g:
                        if out[0]:
                            # (no `continue`: a chain of goroutines that each
                            # start the next must still end the round below)
                            self.start_g(g, out[0], out[1], out[2])
                        else:
                            gs = gtable.get(g)
                            if gs is not None and gs.__class__ is GreenletG and not gs.stale and gs.gr is not None:
                                # the common case, inlined: resume a parked greenlet
                                self.current = gs
                                if self.tracer is None:
                                    self.hops = HOPS  # park.py _hop: switches on to the next G itself
                                    if gs.gr.switch(None) is _DONE:
                                        self.retire_worker(self.current)  # gs, or a G it hopped to
                                else:
                                    self.switch(gs, None)
                                self.current = None
                            else:
                                self.run_g(g)
                    elif self.yielded:
                        self.resume_local(self.yielded)
                    else:
                        break
            if ((n & 15) == 0 or self.sliced) and (time.perf_counter() > deadline or self.flags()):
                # a round ends after 2 ms (checked every 16 goroutines, or at
                # once after a preemption: a slice alone was 10 ms), so the
                # loop polls I/O and runs its callbacks (Go's sysmon netpoll)
                self.sliced = False
                self.hand_off_gil()
                self.arm()
                return
            if self._closed:
                return
        if self.tracer is not None:
            self.tracer.runq((arena.u32[self.i_runqtail] - arena.u32[self.i_runqhead]) & 0xFFFFFFFF)
        if self.shutting_down:
            self.shutdown_progress()
            return
        self.publish_idle()
        g = blocking.pg_p_idle(self.base, p, self.spin_ns)
        if g:
            self.run_g(g)
            self.arm()
            return
        if self.flags():
            # SLEEPING is published (seq_cst): a flag raised before that by a
            # P that saw us RUNNING, and so skipped the eventfd, is seen here
            self.arm()
            return
        # SLEEPING: the eventfd, a timer or I/O wakes the loop
        if local or self.yielded:
            self.arm()
        self.went_idle()

    # ---- the hub's own run queues (Python-only: no arena round trip) ----
    def push_local(self, gs: GState) -> None:
        """Ready gs on this P without the arena (a local event readied it)."""
        self.local_ready.append(gs)
        # sysmon: another goroutine is runnable; schedtrace: how many
        self.arena.u32[self.i_nlocal] = len(self.local_ready) + len(self.yielded)
        self.arm()

    def push_yielded(self, gs: GState) -> None:
        """gs yields the P (gosched, preemption): it runs after the others."""
        self.yielded.append(gs)
        a = self.arena
        a.u32[self.i_nlocal] = len(self.local_ready) + len(self.yielded)
        a.u32[gs.i_status] = Gstatus.RUNNABLE  # Go's _Grunnable: in a run queue, not running
        self.arm()

    def resume_local(self, q: collections.deque) -> None:
        gs = q.popleft()
        a = self.arena
        a.u32[self.i_nlocal] = len(self.local_ready) + len(self.yielded)
        a.q[self.i_schedtick] += 1  # a scheduling decision (sysmon's progress signal)
        a.u32[gs.i_status] = Gstatus.RUNNING
        self.resume(gs)

    def flush_exited(self) -> None:
        if self.exited is not None and not self._closed:
            fast.pg_gexit(self.cbase, self.exited)
            self.exited = None

    # ------------------------------------------------------------------
    # starting and resuming goroutines

    def run_g(self, off: int) -> None:
        gs = self.gtable.get(off)
        if gs is not None:
            self.resume(gs)
        elif off in self.zombies:
            self.ready_landed(self.zombies[off])
        else:
            out = self.out
            n = fast.pg_gstart(self.cbase, self.p, ctypes.c_uint64(off), self.obuf, self.c_ocap, out)
            if n == BIG:
                self.start_g(off, START_BLOCK, out[1], out[0])
            else:
                self.start_g(off, START_OBUF, n, 0)

    def payload(self, how: int, n: int, block: int) -> bytes:
        """An unstarted G's encoded (fn, args, kw), taken from where pg_gstart
        / pg_findrunnable left it (module doc: START_OBUF / START_BLOCK; the
        block is freed).  The one reader of that encoding."""
        if how == START_BLOCK:
            data = self.arena.read(block, n)
            lib.pg_mfree(self.base, block)
            return data  # type: ignore[no-any-return]
        return bytes(self.obuf_mv[:n])

    def start_g(self, off: int, how: int, n: int, block: int) -> None:
        """Start a new G (pg_gstart was done): its payload (how, n, block)."""
        local = self.local_fns.pop(off, None)
        if self.shutting_down:
            # main has returned: like Go, goroutines not yet started never
            # run; the references its payload holds go back
            if local is None:
                held = views.payload_refs(self.payload(how, n, block))[1]
                if held:
                    lib.pg_obj_decref_many(self.base, held.buffer_info()[0], len(held))
            lib.pg_gexit(self.base, off)
            return
        if local is not None:
            fn, args, kw = local
        else:
            try:
                data = self.payload(how, n, block)
                hit = self.start_cache.get(data)
                if hit is not None:
                    fn, args, refs = hit
                    kw = _NO_KW
                    for r in refs:  # the payload's references: this P holds them already
                        self.decref_later(r)
                else:
                    refs = []
                    fn, args, kw = codec.loads_collecting(data, refs)
                    if codec.cacheable(fn, args, kw):
                        self.start_cache.put(data, fn, args, refs)
            except BaseException as e:
                gs = GreenletG(self, off)
                self.gtable[off] = gs
                err = DecodeError(
                    f"goroutine {gs.goid}: cannot decode its function and arguments in P{self.p}: {type(e).__name__}: {e}"
                )
                self.goroutine_failed(gs, err)
                self.gexit(gs)
                return
        kw = kw or _NO_KW  # decoded, or pg.go_local's own **kw: an empty dict per goroutine otherwise
        code = getattr(fn, "__code__", None)
        if (code.co_flags & 0x80) if code is not None else inspect.iscoroutinefunction(fn):  # CO_COROUTINE
            self.start_task(off, fn, args, kw)
            return
        gs = GreenletG(self, off)
        self.gtable[off] = gs
        if off == self.main_off:
            self.main_gs = gs
        if self.tracer is not None:
            self.tracer.start(gs.goid)
        gs.gr = self.pool.pop() if self.pool else None
        if gs.gr is None:
            gs.gr = _Worker(_worker_main, parent=self.hub)
            self.handoff = (gs, fn, args, kw)
            self.switch(gs, _FIRST)
        else:
            self.switch(gs, (gs, fn, args, kw))

    def switch(self, gs: GreenletG, value: Any) -> None:
        self.current = gs
        tr = self.tracer
        args = () if value is _FIRST else (value,)
        if tr is None:
            r = gs.gr.switch(*args)
        else:
            t0 = time.monotonic_ns()
            r = gs.gr.switch(*args)
            tr.slice(gs.goid, t0, time.monotonic_ns())
        if r is _DONE:
            self.retire_worker(self.current)  # gs, or a G it hopped to (park.py _hop)
        self.current = None

    def retire_worker(self, gs: GreenletG) -> None:
        if len(self.pool) < 128 and not self.shutting_down:
            self.pool.append(gs.gr)
        gs.gr = None

    def resume(self, gs: GState) -> None:
        if gs.stale:
            gs.stale -= 1
            return
        if isinstance(gs, GreenletG):
            if gs.gr is not None:
                self.switch(gs, None)
        elif isinstance(gs, TaskG):
            fut = gs.fut
            if fut is not None and not fut.done():
                fut.set_result(None)

    def run_goroutine(self, gs: GState, fn: Callable, args: tuple, kw: dict) -> None:
        """Body of a goroutine greenlet: run fn, then retire the G."""
        is_main = gs is self.main_gs
        snap = race.before(fn, args, kw) if self.race and not is_main else None
        try:
            result = _call(fn, args, kw)
        except (Shutdown, greenlet.GreenletExit) as e:
            if is_main:
                self.main_finished(None, e)
        except BaseException as e:
            if is_main:
                self.main_finished(None, e)
            elif not self._closed:
                self.goroutine_failed(gs, e)
        else:
            if is_main:
                self.main_finished(result, None)
        if snap is not None and not self._closed:
            race.after(self, gs, fn, args, kw, snap)
        self.gexit(gs)

    def gexit(self, gs: GState) -> None:
        if self._closed:
            return
        if self.gtable.pop(gs.off, None) is not None or isinstance(gs, (ThreadG,)):
            if gs.stale:
                # a wake-up claimed before the G gave up its wait (a task
                # cancelled after its ready was on the way) is still in
                # this P's ready list: its record must outlive that entry
                self.zombies[gs.off] = gs
                return
            self.retire(gs)

    def retire(self, gs: GState) -> None:
        if self.exited is not None:
            fast.pg_gexit(self.cbase, self.exited)
        # retired by the scheduler's next pg_findrunnable (one call fewer)
        self.exited = gs.c

    def ready_landed(self, gs: GState) -> None:
        """A stale ready of an exited G came off the ready list."""
        gs.stale -= 1
        if gs.stale <= 0:
            del self.zombies[gs.off]
            self.retire(gs)


def cur(op: str) -> tuple[Runtime, GState]:
    """The runtime and the calling goroutine (or thread), for a blocking op."""
    rt = state.rt
    if rt is None:
        raise not_in_runtime(op)
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if gs is None:
        gs = rt.slow_current(op)
    return rt, gs


def need_rt(what: str) -> Runtime:
    rt = state.rt
    if rt is None:
        raise not_in_runtime(what)
    return rt
