"""P0's extra duties: watching the other Ps, signals, delivering failures
to main, main's result, the deadlock check (Go's checkdead).

P0 is the P that called pg.run: it runs main (goroutine 1) and is the
only one that turns what happened anywhere into what pg.run returns or
raises.
"""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

from .._errors import Deadlock, Shutdown
from .._shim import CONST, Pstate, offset
from . import dump, failure
from .sched import Runtime


class P0Runtime(Runtime):
    def __init__(self, *a: Any, procs: list, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.procs = procs
        self.main_result: Any = None
        self.main_exc: BaseException | None = None
        self.main_done = False
        self.dl_handle: Any = None
        self.failure_seen = False
        self.on_main_done = self._main_done
        self.hub_error: BaseException | None = None
        for i, proc in enumerate(procs, start=1):
            self.loop.add_reader(proc.sentinel, self._p_exited, i, proc)
        self.sig_r, self.sig_w = socket.socketpair()
        self.sig_r.setblocking(False)
        self.sig_w.setblocking(False)
        self.old_wakeup_fd = signal.set_wakeup_fd(self.sig_w.fileno(), warn_on_full_buffer=False)
        self.loop.add_reader(self.sig_r.fileno(), self._drain_signals)

    def close_signal_socket(self) -> None:
        try:
            signal.set_wakeup_fd(self.old_wakeup_fd)
        except (ValueError, OSError):
            pass
        try:
            self.loop.remove_reader(self.sig_r.fileno())
        except Exception:
            pass
        self.sig_r.close()
        self.sig_w.close()

    def hub_failed(self, exc: BaseException) -> None:
        """In P0 the exception is raised from pg.run as it is (e.g. a test
        timeout raised by a SIGALRM handler while main was parked)."""
        if self.hub_error is None:
            self.hub_error = exc
        self.loop.stop()

    def _drain_signals(self) -> None:
        # running this callback is what lets Python run its signal handlers
        # while P0 waits in epoll (the C handler wrote to our wakeup socket)
        try:
            while self.sig_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError, OSError):
            pass

    def _main_done(self, result: Any, exc: BaseException | None) -> None:
        if self.main_done:
            return
        self.main_done = True
        self.main_result = result
        self.main_exc = exc
        self.loop.stop()

    # ---- sysmon (SYS_FAILURE): failures reaching a busy P0 ----
    def sysmon_exception(self, gs: Any) -> BaseException | None:
        if not self.failure_seen and self.arena.u32[self.i_panicking] == 2:
            if gs is self.main_gs:
                self.failure_seen = True
                self.ack(CONST["ACK_FAILURE"])
                return failure.recorded(self)
            return Shutdown()  # free the hub so it interrupts main
        main = self.main_gs
        if main is not None and main.pending is not None and gs is not main:
            return Shutdown()  # the program is being interrupted: let main hear it
        return None

    # ---- failures reaching main ----
    def on_flags(self) -> None:
        super().on_flags()
        if not self.failure_seen and self.arena.u32[self.i_panicking] == 2:
            self.failure_seen = True
            self.ack(CONST["ACK_FAILURE"])
            exc = failure.recorded(self)
            if exc is not None:
                self.interrupt_main(exc)

    def interrupt_main(self, exc: BaseException) -> None:
        gs = self.main_gs
        if gs is None or self.main_done:
            return
        self.interrupt(gs, exc)

    def _p_exited(self, i: int, proc: Any) -> None:
        try:
            self.loop.remove_reader(proc.sentinel)
        except Exception:
            pass
        if self.shutting_down or self.main_done:
            return
        proc.join(0.5)
        code = proc.exitcode
        if code is None:
            how = "exit status unknown"
        elif code < 0:
            try:
                how = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit status {code}"
        n = self.arena.q[self.arena.p_field(i, "nlive") // 8]
        held = f"{n} started goroutine{'s' if n != 1 else ''} (their state died with the process)"
        failure.record(self, {"kind": "lost", "p": i, "how": how, "goroutines": held})
        self.arm()

    # ---- deadlock ----
    def went_idle(self) -> None:
        if self.dl_handle is None and not self.main_done:
            self.dl_handle = self.loop.call_later(0.01, self._check_deadlock, None)

    def _snapshot(self) -> Any:
        a = self.arena
        q, i64, u32 = a.q, a.i, a.u32
        o = lambda f: offset("pg_arena", f)  # noqa: E731
        live = i64[o("ngoroutines") // 8] + i64[o("nsystem") // 8]
        if live != i64[o("nparked") // 8] or u32[o("gq_size") // 4] or self.local_ready or self.yielded:
            return None
        if (
            i64[o("ntimers") // 8]  # armed timers, program-wide (shm/timer.c)
            or self.n_external
            or threading.active_count() - 1 - self.runtime_threads() > 0
        ):
            return None
        for p in range(self.nprocs):

            def f(name: str, p: int = p) -> int:
                return a.p_field(p, name)

            if p and u32[f("state") // 4] != Pstate.SLEEPING:
                return None
            if q[f("readyq") // 8] or q[f("privhead") // 8] or q[f("runnext") // 8]:
                return None
            if u32[f("runqhead") // 4] != u32[f("runqtail") // 4]:
                return None
            if p and (q[f("ntimers") // 8] or q[f("nexternal") // 8]):
                return None
        return q[o("epoch") // 8]

    def _check_deadlock(self, prev: Any) -> None:
        self.dl_handle = None
        if self.main_done or self.shutting_down or self.closed:
            return
        snap = self._snapshot()
        if snap is None:
            self.dl_handle = self.loop.call_later(0.02, self._check_deadlock, None)
            return
        if prev is None or snap != prev:
            self.dl_handle = self.loop.call_later(0.005, self._check_deadlock, snap)
            return
        dump = self.collect_dump()
        if failure.record(self, {"kind": "deadlock", "dump": dump}):
            self.failure_seen = True
            self.interrupt_main(Deadlock(dump))

    # ---- dumps ----
    def collect_dump(self, timeout: float = 1.0) -> str:
        return dump.collect_dump(self, timeout)
