"""P0's extra duties: watching the other Ps, signals, delivering failures
to main, main's result, the deadlock check (Go's checkdead).

P0 is the P that called pg.run: it runs main (goroutine 1) and is the
only one that turns what happened anywhere into what pg.run returns or
raises.
"""

from __future__ import annotations

import signal
import socket
from typing import Any

from .._errors import GOEXIT_DEADLOCK, Deadlock, Shutdown
from .._shim import CONST, views
from . import dump, failure
from .deadlock import DeadlockCheck
from .types import RuntimeLike

INTERRUPT_AGAIN = 0.005  # s: main's interrupt found its wake-up claimed; look again


class Supervisor:
    """P0's duties, as a component of P0's Runtime (``rt.sup``; None on the
    other Ps): the other Ps' sentinels, the signal wake-up socket, failures
    reaching main, main's result, the deadlock check, goroutine dumps."""

    def __init__(self, rt: RuntimeLike, procs: list) -> None:
        self.rt = rt
        rt.sup = self
        self.procs = procs
        self.main_result: Any = None
        self.main_exc: BaseException | None = None
        self.main_done = False
        self.failure_seen = False
        self.hub_error: BaseException | None = None
        self.tearing_down = False  # teardown began: a SIGINT / SIGTERM is deferred to its end
        self.teardown_signal: BaseException | None = None  # ... and kept here
        self.deadlock = DeadlockCheck(rt, self._deadlocked)
        loop = rt.loop
        for i, proc in enumerate(procs, start=1):
            loop.add_reader(proc.sentinel, self._p_exited, i, proc)
        self.sig_r, self.sig_w = socket.socketpair()
        self.sig_r.setblocking(False)
        self.sig_w.setblocking(False)
        self.old_wakeup_fd = signal.set_wakeup_fd(self.sig_w.fileno(), warn_on_full_buffer=False)
        loop.add_reader(self.sig_r.fileno(), self._drain_signals)

    def close(self) -> None:
        """Teardown: stop the deadlock check, give the signal wake-up fd back."""
        self.deadlock.close()
        try:
            signal.set_wakeup_fd(self.old_wakeup_fd)
        except (ValueError, OSError):
            pass
        try:
            self.rt.loop.remove_reader(self.sig_r.fileno())
        except Exception:
            pass
        self.sig_r.close()
        self.sig_w.close()

    def hub_failed(self, exc: BaseException) -> None:
        """In P0 the exception is raised from pg.run as it is (e.g. a test
        timeout raised by a SIGALRM handler while main was parked)."""
        if self.hub_error is None:
            self.hub_error = exc
        self.rt.loop.stop()

    def _drain_signals(self) -> None:
        # running this callback is what lets Python run its signal handlers
        # while P0 waits in epoll (the C handler wrote to our wakeup socket)
        try:
            while self.sig_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass

    def main_finished(self, result: Any, exc: BaseException | None) -> None:
        if self.main_done:
            return
        self.main_done = True
        self.main_result = result
        self.main_exc = exc
        # Go's program is over; the loop stops once the hub gets control
        # back, but it goes on in whatever goroutine it resumes next, and
        # one that never parks (nothing else is runnable to preempt it for)
        # would keep it for ever: P0's sysmon now preempts, then unwinds,
        # any goroutine that keeps the hub (shm/sysmon.c, sysmon_exception)
        views.p_set(self.rt.arena, 0, "exiting", 1)
        self.rt.loop.stop()

    # ---- sysmon (SYS_FAILURE): failures reaching a busy P0 ----
    def sysmon_exception(self, gs: Any) -> BaseException | None:
        rt = self.rt
        if self.main_done:
            # main has finished and a goroutine still keeps the hub, even
            # past a preemption (shm/sysmon.c: pg_p.exiting): unwind it, as
            # teardown would, so the program can end
            return None if gs is rt.main_gs else Shutdown()
        if not self.failure_seen and rt.arena.u32[rt.i_panicking] == 2:
            if gs is rt.main_gs:
                self.failure_seen = True
                rt.ack(CONST["ACK_FAILURE"])
                return failure.recorded(rt)
            return Shutdown()  # free the hub so it interrupts main
        main = rt.main_gs
        if main is not None and main.pending is not None and gs is not main:
            return Shutdown()  # the program is being interrupted: let main hear it
        return None

    # ---- failures reaching main ----
    def on_flags(self) -> None:
        rt = self.rt
        if not self.failure_seen and rt.arena.u32[rt.i_panicking] == 2:
            self.failure_seen = True
            rt.ack(CONST["ACK_FAILURE"])
            exc = failure.recorded(rt)
            if exc is not None:
                self.interrupt_main(exc)

    def interrupt_main(self, exc: BaseException) -> None:
        rt = self.rt
        gs = rt.main_gs
        if gs is None or self.main_done:
            return
        if not rt.interrupt(gs, exc):
            # main's wake-up is claimed by a waker whose ready has not come:
            # a P that died between its claim and its ready, before the C
            # watch marked it gone (then the cancel succeeds), or a live
            # waker (its ready delivers exc): look again, never wait for it
            rt.loop.call_later(INTERRUPT_AGAIN, self._interrupt_again, gs, exc)

    def _interrupt_again(self, gs: Any, exc: BaseException) -> None:
        if not self.main_done and gs.pending is exc and not self.rt._closed:
            self.interrupt_main(exc)

    def _p_exited(self, i: int, proc: Any) -> None:
        rt = self.rt
        try:
            rt.loop.remove_reader(proc.sentinel)
        except Exception:
            pass
        if rt.shutting_down or self.main_done:
            return
        # it is dead (its sentinel is readable): say so in the arena before
        # the failure is seen, as the C watch would (it may not have yet):
        # a wait claimed by it is then cancellable (pg_park_cancel)
        views.p_set(rt.arena, i, "gone", 1)
        proc.join(0.5)
        how = dump.exit_how(proc.exitcode)
        n = views.p_get(rt.arena, i, "nlive")
        held = f"{n} started goroutine{'s' if n != 1 else ''} (their state died with the process)"
        failure.record(rt, {"kind": "lost", "p": i, "how": how, "goroutines": held, "pid": proc.pid})
        rt.arm()

    # ---- deadlock ----
    def went_idle(self) -> None:
        if not self.main_done:
            self.deadlock.arm()

    def _deadlocked(self) -> None:
        text = self.collect_dump()
        info = {"kind": "deadlock", "dump": text}
        if getattr(self.rt, "main_goexit", False) and views.hdr(self.rt.arena, "ngoroutines") <= 1:
            info["head"] = GOEXIT_DEADLOCK  # Go's checkdead: main left by pg.goexit(), nothing else
        if failure.record(self.rt, info):
            self.failure_seen = True
            self.interrupt_main(Deadlock(text, info.get("head")))

    # ---- dumps ----
    def collect_dump(self, timeout: float = 1.0) -> str:
        return dump.collect_dump(self.rt, timeout)
