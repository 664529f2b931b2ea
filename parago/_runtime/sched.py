"""One P: its hub loop, the scheduler, starting and parking goroutines.

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
its next goroutine.  No preemption: a goroutine keeps the P until it
blocks or calls pg.gosched (Go before 1.14).
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import inspect
import os
import sys
import threading
import time
from typing import Any, Callable

import greenlet

from .._errors import (
    DecodeError,
    OutOfSharedMemory,
    ParagoError,
    Shutdown,
    not_in_runtime,
)
from .._shim import BIG, CONST, NOMEM, GKind, Gstatus, Pstate, blocking, fast, lib, views
from . import codec, dump, park, preempt, profile, race, state, trace
from .g import WR, GreenletG, GState, TaskG, ThreadG
from .procs_util import usable_cpus
from .refs import Refs
from .spawn import Spawner

_DONE = object()
_FIRST = object()  # switch() into a new worker greenlet: no arguments
SPIN_NS = 50_000
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
    """A reusable goroutine greenlet (parent: the hub)."""

    gs: Any = None


def _worker_main() -> None:
    # The first goroutine comes through rt.handoff, not as an argument: the
    # arguments of a greenlet's first switch stay referenced until its run()
    # returns -- and a pooled worker's never does.
    rt = state.rt
    me = greenlet.getcurrent()
    task = rt.handoff
    rt.handoff = None
    while task is not None:
        me.gs = task[0]
        rt.run_goroutine(task[0], task[1], task[2], task[3])  # no *-call: see _call
        me.gs = task = None  # hold nothing of a finished goroutine while pooled
        task = rt.hub.switch(_DONE)


class Runtime:
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
        self.task_gs: dict[Any, TaskG] = {}
        self.pool: list[_Worker] = []
        self.tick = 1
        self.scheduled = False
        self.current: GState | None = None
        self.handoff: tuple | None = None  # a new worker greenlet's first goroutine
        self.switches = 0  # bumped per goroutine switch: sysmon's progress signal
        self.hub_tid = threading.get_ident()
        self.tls = threading.local()
        self.executor: Any = None
        self.spin_ns = SPIN_NS if 1 < nprocs <= usable_cpus() else 0
        self.main_gs: GState | None = None
        self.main_off = 0
        self.sup: Any = None  # P0's Supervisor (supervisor.py); None on the other Ps
        self.dump_seen = 0
        # preemption: rt.attn is the one attribute the fast paths check
        # (a closed runtime, or a pending preemption request)
        self.attn = False
        self.preempt_pending = False
        self.sliced = False  # a goroutine was preempted in this round
        self.multi = nprocs > 1  # other Ps could start this P's unstarted goroutines
        self.last_find = 0.0  # when the hub last asked findRunnable while it had yielded Gs
        self.async_preempt = preempt.async_enabled()
        # indices into the arena's word views (shm/layout.h via _shim/views.py)
        pi = views.p_index
        self.i_state = pi(p, "state")
        self.i_pid = pi(p, "pid")
        self.i_runqhead = pi(p, "runqhead")
        self.i_runqtail = pi(p, "runqtail")
        self.i_dumpreq = pi(p, "dumpreq")
        self.i_nlive = pi(p, "nlive")
        self.i_nlocal = pi(p, "nlocal")
        self.i_npreempt = pi(p, "npreempt")
        self.i_nexternal = pi(p, "nexternal")
        self.i_schedtick = pi(p, "schedtick")
        self.i_syscalltick = pi(p, "syscalltick")
        self.i_ack = pi(p, "ack")
        self.i_shutdown = views.hdr_index("shutdown")
        self.i_panicking = views.hdr_index("panicking")
        self.sampler = profile.sampler_for(settings, p, self._running)
        arena.u32[self.i_pid] = os.getpid() & 0x7FFFFFFF
        self.n_external = 0
        self.loop = self._new_loop()
        self.hub = greenlet.getcurrent()

    def _running(self) -> bool:
        """The P is awake (the CPU profile skips samples of a sleeping P)."""
        return self.arena.u32[self.i_state] == Pstate.RUNNING and not self._closed

    @property
    def closed(self) -> bool:
        """The run is over: handles of it refuse to work (NotInRuntime)."""
        return self._closed

    @closed.setter
    def closed(self, v: bool) -> None:
        self._closed = v
        if v:
            self.attn = True  # the fast paths' one check sees it

    # ------------------------------------------------------------------
    # the loop

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        import uvloop

        loop = uvloop.new_event_loop()
        loop.set_exception_handler(self._loop_exception)
        loop.add_reader(self.evfd, self._on_wake)
        return loop

    def _loop_exception(self, loop: Any, context: dict) -> None:
        """An exception escaped a loop callback: not a goroutine's (those are
        caught where they run) but the hub's own, or one raised by a signal
        handler (pytest-timeout's, a user's).  It must end the program, not
        be printed and forgotten."""
        exc = context.get("exception")
        if isinstance(exc, (Shutdown, asyncio.CancelledError)) or self.shutting_down:
            return
        if exc is None:
            sys.stderr.write(f"parago: P{self.p} hub: {context.get('message', '')}\n")
            return
        self.hub_failed(exc)

    def hub_failed(self, exc: BaseException) -> None:
        if self.sup is not None:
            self.sup.hub_failed(exc)
            return
        from .failure import record_failure

        record_failure(self, 0, exc)

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

    def flags(self) -> bool:
        u32 = self.arena.u32
        return bool(
            u32[self.i_shutdown]
            or (self.sup is not None and u32[self.i_panicking] == 2)
            or u32[self.i_dumpreq] != self.dump_seen
        )

    def on_flags(self) -> None:
        """Act on the arena's flags: shutdown, a recorded panic (P0), dumps."""
        u32 = self.arena.u32
        if u32[self.i_dumpreq] != self.dump_seen:
            self.answer_dump()
        if u32[self.i_shutdown] and not self.shutting_down:
            self.begin_shutdown()
        if self.sup is not None:
            self.sup.on_flags()

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
                                self.switches += 1
                                if self.tracer is None:
                                    if gs.gr.switch(None) is _DONE:
                                        self.retire_worker(gs)
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

    # ---- preemption (preempt.py) ----
    def yield_preempted(self, gs: GState) -> None:
        """The running goroutine gives up the P for a time slice."""
        self.preempt_pending = False
        self.attn = self._closed
        self.sliced = True
        self.arena.q[self.i_npreempt] += 1
        if self.tracer is not None:
            self.tracer.preempt(gs.goid)
        self.push_yielded(gs)
        park.park(gs)

    def preempt_signal(self, frame: Any) -> None:
        preempt.on_signal(self, frame)

    def attention(self) -> None:
        """The fast paths' one check (``rt.attn``) found something: a closed
        runtime (the caller raises) or a preemption request (yield now: a
        parago operation is a safe point)."""
        if self._closed:
            return
        if self.preempt_pending:
            gs = getattr(greenlet.getcurrent(), "gs", None)
            if gs is not None and gs is self.current and gs.__class__ is GreenletG:
                self.yield_preempted(gs)
            else:
                self.preempt_pending = False
                self.attn = False

    def went_idle(self) -> None:
        """The hub is going to sleep: P0's supervisor checks for deadlock."""
        if self.sup is not None:
            self.sup.went_idle()

    # ---- sysmon (see sysmon.py: its SIGUSR2, in the hub thread) ----
    def on_sysmon(self, bits: int, frame: Any) -> None:
        """sysmon's reasons (SYS_* bits): for SYS_SHUTDOWN / SYS_FAILURE, raise
        what the program's state calls for in the running goroutine (never
        into hub code); SYS_PREEMPT goes to ``preempt_signal`` (the time slice)."""
        pre = getattr(self, "preempt_signal", None) if bits & CONST["SYS_PREEMPT"] else None
        if bits & (CONST["SYS_SHUTDOWN"] | CONST["SYS_FAILURE"]) or (bits & CONST["SYS_PREEMPT"] and pre is None):
            gs = self.current
            if gs is not None and getattr(greenlet.getcurrent(), "gs", None) is gs:
                exc = self.sysmon_exception(gs)  # type: ignore[arg-type]
                if exc is not None:
                    raise exc
        if pre is not None:
            pre(frame)

    def ack(self, bit: int) -> None:
        """The hub acted on a flag (ACK_*): sysmon stops signalling for it."""
        self.arena.u32[self.i_ack] |= bit

    def sysmon_exception(self, gs: GState) -> BaseException | None:
        if self.sup is not None:
            return self.sup.sysmon_exception(gs)
        return Shutdown() if self.arena.u32[self.i_shutdown] else None

    def release_arena(self) -> None:
        """This P leaves the run (its loop has stopped): give back what it
        holds in the arena -- the G to retire, its handles' references, the
        start cache's, its created-by texts."""
        if self._closed:
            return
        self.flush_exited()
        cached = [r for entry in self.start_cache.d.values() for r in entry[2]]
        self.start_cache.d.clear()
        self.refs.release(cached)
        self.spawner.release()

    def close(self) -> None:
        """The run is over (P0's teardown, after the other Ps are gone):
        every component lets go of what it holds of this run -- goroutines'
        greenlets and tasks, a pg.Buffer's mapping, the loop -- so nothing
        of it outlives pg.run (DESIGN rule 4)."""
        if self.sup is not None:
            self.sup.close()
        self.closed = True
        for gs in list(self.gtable.values()):
            gr = getattr(gs, "gr", None)
            if gr is not None and not gr.dead:
                try:
                    gr.throw(greenlet.GreenletExit)
                except BaseException:
                    pass
        # the goroutine table
        self.gtable.clear()
        self.pool.clear()
        self.local_fns.clear()
        self.start_cache.d.clear()
        self.local_ready.clear()
        self.yielded.clear()
        self.task_gs.clear()
        self.spawner.close()
        self.refs.close()
        netpoller = self.__dict__.get("netpoller")
        if netpoller is not None:
            netpoller.close()  # pg.net's sockets and moves of this run (netpoll.py)
        # the hub's loop
        try:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.run_until_complete(asyncio.sleep(0))
        except BaseException:
            pass
        try:
            self.loop.remove_reader(self.evfd)
            self.loop.close()
        except BaseException:
            pass
        if self.executor is not None:
            self.executor.shutdown()

    def write_diagnostics(self) -> None:
        """At exit: this P's trace and profile parts (P0 merges them)."""
        if self.tracer is not None:
            self.tracer.write()
        if self.sampler is not None:
            self.sampler.write()

    def flush_exited(self) -> None:
        if self.exited is not None and not self._closed:
            fast.pg_gexit(self.cbase, self.exited)
            self.exited = None

    def publish_idle(self) -> None:
        self.flush_exited()
        self.flush_decrefs()
        # external waiters: pg.blocking calls, await_, user threads
        threads = threading.active_count() - 1 - self.runtime_threads()
        ext = self.n_external + max(0, threads)
        self.arena.q[self.i_nexternal] = ext

    def runtime_threads(self) -> int:
        n = 0
        for t in threading.enumerate():
            if getattr(t, "_parago_runtime", False):
                n += 1
        return n

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
                self.start_g(off, 2, out[1], out[0])
            else:
                self.start_g(off, 1, n, 0)

    def start_g(self, off: int, how: int, n: int, block: int) -> None:
        """Start a new G (pg_gstart was done): its encoded (fn, args) is in
        obuf[:n] (how == 1) or in the payload block (how == 2)."""
        local = self.local_fns.pop(off, None)
        if self.shutting_down:
            # main has returned: like Go, goroutines not yet started never run
            if how == 2:
                lib.pg_mfree(self.base, block)
            lib.pg_gexit(self.base, off)
            return
        if local is not None:
            fn, args, kw = local
        else:
            try:
                if how == 2:
                    data = self.arena.read(block, n)
                    lib.pg_mfree(self.base, block)
                else:
                    data = bytes(self.obuf_mv[:n])
                hit = self.start_cache.get(data)
                if hit is not None:
                    fn, args, refs = hit
                    kw = {}
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
        self.switches += 1
        tr = self.tracer
        args = () if value is _FIRST else (value,)
        if tr is None:
            r = gs.gr.switch(*args)
        else:
            t0 = time.monotonic_ns()
            r = gs.gr.switch(*args)
            tr.slice(gs.goid, t0, time.monotonic_ns())
        self.current = None
        if r is _DONE:
            self.retire_worker(gs)

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

    def goroutine_site(self, gs: GState) -> str:
        return self.site_text(gs.off)

    def site_text(self, g: int) -> str:
        return views.g_site(self.arena, g)

    def main_finished(self, result: Any, exc: BaseException | None) -> None:
        if self.sup is not None:
            self.sup.main_finished(result, exc)

    def start_task(self, off: int, fn: Callable, args: tuple, kw: dict) -> None:
        gs = TaskG(self, off)
        gs.fut = None
        gs.system = False
        self.gtable[off] = gs
        if off == self.main_off:
            self.main_gs = gs
        task = self.loop.create_task(self._run_task(gs, fn, args, kw))
        gs.task = task
        self.task_gs[task] = gs

    async def _run_task(self, gs: TaskG, fn: Callable, args: tuple, kw: dict) -> None:
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

    def goroutine_failed(self, gs: GState, e: BaseException) -> None:
        """An uncaught exception: the whole program ends (Go's panic)."""
        if self._closed or (self.shutting_down and isinstance(e, (Shutdown, asyncio.CancelledError))):
            return
        from .failure import record_failure

        record_failure(self, gs.goid, e)

    # ------------------------------------------------------------------
    # who is running?

    def slow_current(self, op: str) -> GState:
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

    def new_thread_g(self) -> ThreadG:
        site = self.intern_site(f"thread {threading.current_thread().name}")
        off = lib.pg_gnew_running(self.base, -1, GKind.THREAD, site)
        if off == NOMEM:
            raise OutOfSharedMemory.for_size(400, self.arena.size)
        tg = ThreadG(self, off)
        self.tls.g = tg
        self.tls.slot = _ThreadSlot(self, off)
        return tg

    def drop_thread_g(self) -> None:
        """A pg.blocking job ended: free the G its thread made for parago calls,
        before the goroutine that waits for the job resumes.  A pooled thread
        outlives the job (and the run: it ends after pg.run measured the
        arena, on P1.. not at all); its next job's parago call makes a new G."""
        slot = getattr(self.tls, "slot", None)
        if slot is not None:
            self.tls.g = self.tls.slot = None
            slot.free()

    def task_g(self) -> TaskG:
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

    # ------------------------------------------------------------------
    # local waits: timers, pg.blocking, await_ (no arena waiter)

    def park_local(self, gs: GState, reason: str) -> None:
        lib.pg_park_plain(self.base, gs.off, WR[reason], 0)
        park.park(gs)

    def park_on_future(self, gs: GState, fut: Any, reason: str, threadsafe: bool) -> None:
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

    def _future_done(self, gs: GState, fut: Any) -> None:
        if gs.local_wait is fut:
            self.wake_local(gs)

    def count_syscall(self) -> None:
        """schedtrace's syscalltick: one more pg.blocking call."""
        self.arena.q[self.i_syscalltick] += 1

    def wake_local(self, gs: GState) -> None:
        if gs.local_wait is None:
            return
        gs.local_wait = None
        lib.pg_unpark_local(self.base, gs.off, 0)
        self.push_local(gs)

    def interrupt(self, gs: GState, exc: BaseException) -> bool:
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

    # ------------------------------------------------------------------
    # teardown (each P)

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        self.ack(CONST["ACK_SHUTDOWN"])
        for gs in list(self.gtable.values()):
            if gs is self.current:
                continue
            self.interrupt(gs, Shutdown())
        self.arm()

    def shutdown_progress(self) -> None:
        """Called when a shutdown round found nothing more to run."""
        if self.p != 0:
            pending = [t for t in self.task_gs if not t.done()]
            if pending and time.monotonic() - self.shutdown_started() < 0.5:
                self.loop.call_later(0.005, self.arm)
                return
            self.loop.stop()

    _sd_start = 0.0

    def shutdown_started(self) -> float:
        if not self._sd_start:
            self._sd_start = time.monotonic()
        return self._sd_start

    # ------------------------------------------------------------------
    # goroutine dumps (dump.py)

    def dump_text(self) -> str:
        return dump.dump_text(self)

    def answer_dump(self) -> None:
        dump.answer_dump(self)


class _ThreadSlot:
    """Frees a thread's G when the thread ends (its thread-local dies) or
    when a pg.blocking job of a pooled thread ends (Runtime.drop_thread_g)."""

    def __init__(self, rt: Runtime, off: int) -> None:
        self.rt = rt
        self.off = off

    def free(self) -> None:
        off, self.off = self.off, 0
        if off and not self.rt.closed:
            lib.pg_gexit(self.rt.base, off)

    def __del__(self) -> None:
        self.free()


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
