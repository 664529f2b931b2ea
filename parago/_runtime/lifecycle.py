"""A P's life: its failures, its teardown, what it gives back.

Owns the P's end states -- ``shutting_down`` (main returned or the run is
failing: goroutines not yet started never run, parked ones get Shutdown),
``closed`` (the run is over: handles refuse to work) -- and the order in
which a P lets go of what it holds:

    begin_shutdown   flag seen (signals.py): ack it, interrupt every G
    shutdown_progress  a round found nothing to run: P1.. stop their loop
                       once their tasks are done (or after 0.5 s)
    release_arena    the loop stopped: the G to retire, handles' references,
                     the start cache's, the created-by texts (arena blocks)
    close            P0's teardown, the other Ps gone: greenlets, tasks, the
                     loop, the blocking pool -- nothing outlives pg.run

An uncaught exception (a goroutine's, or the hub's own) is reported once,
through P0's Supervisor (supervisor.py) or failure.record_failure.  A mixin
of sched.Runtime (its methods see the whole P through RuntimeLike).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import greenlet

from .._errors import Shutdown
from .._shim import CONST, Pstate
from .g import GState
from .types import RuntimeLike


class Lifecycle:
    """Failures and teardown of one P (module doc)."""

    _sd_start = 0.0  # when this P's shutdown began (shutdown_started)

    _closed: bool  # set once (closed = True): read by every handle's fast path through attn
    attn: bool
    arena: Any
    i_state: int

    def _running(self) -> bool:
        """The P is awake (the CPU profile skips samples of a sleeping P)."""
        return self.arena.u32[self.i_state] == Pstate.RUNNING and not self._closed  # type: ignore[no-any-return]

    @property
    def closed(self) -> bool:
        """The run is over: handles of it refuse to work (NotInRuntime)."""
        return self._closed

    @closed.setter
    def closed(self, v: bool) -> None:
        self._closed = v
        if v:
            self.attn = True  # the fast paths' one check sees it

    def _loop_exception(self: RuntimeLike, loop: Any, context: dict) -> None:
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

    def hub_failed(self: RuntimeLike, exc: BaseException) -> None:
        if self.sup is not None:
            self.sup.hub_failed(exc)
            return
        from .failure import record_failure

        record_failure(self, 0, exc)

    def main_finished(self: RuntimeLike, result: Any, exc: BaseException | None) -> None:
        if self.sup is not None:
            self.sup.main_finished(result, exc)

    def goroutine_failed(self: RuntimeLike, gs: GState, e: BaseException) -> None:
        """An uncaught exception: the whole program ends (Go's panic)."""
        if self._closed or (self.shutting_down and isinstance(e, (Shutdown, asyncio.CancelledError))):
            return
        from .failure import record_failure

        record_failure(self, gs.goid, e)

    def went_idle(self: RuntimeLike) -> None:
        """The hub is going to sleep: P0's supervisor checks for deadlock."""
        if self.sup is not None:
            self.sup.went_idle()

    def begin_shutdown(self: RuntimeLike) -> None:
        self.shutting_down = True
        self.ack(CONST["ACK_SHUTDOWN"])
        for gs in list(self.gtable.values()):
            if gs is self.current:
                continue
            self.interrupt(gs, Shutdown())
        self.arm()

    def shutdown_progress(self: RuntimeLike) -> None:
        """Called when a shutdown round found nothing more to run."""
        if self.p != 0:
            pending = [t for t in self.task_gs if not t.done()]
            if pending and time.monotonic() - self.shutdown_started() < 0.5:
                self.loop.call_later(0.005, self.arm)
                return
            self.loop.stop()

    def shutdown_started(self: RuntimeLike) -> float:
        if not self._sd_start:
            self._sd_start = time.monotonic()
        return self._sd_start

    def release_arena(self: RuntimeLike) -> None:
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

    def close(self: RuntimeLike) -> None:
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

    def write_diagnostics(self: RuntimeLike) -> None:
        """At exit: this P's trace and profile parts (P0 merges them)."""
        if self.tracer is not None:
            self.tracer.write()
        if self.sampler is not None:
            self.sampler.write()
