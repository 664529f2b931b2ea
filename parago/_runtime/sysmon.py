"""sysmon: one runtime thread per P that interrupts a P which cannot listen.

There is no preemption, so a goroutine in a CPU loop (or in time.sleep)
keeps its P's hub from noticing that the program must end.  sysmon polls
the arena's flags every few milliseconds; when the hub has not acted on
them in time it sends SIGUSR2 to its own process, and the handler -- which
runs in the main thread, between two bytecodes of the busy goroutine --
raises there:

    P0: a recorded failure (Panic, WorkerLost, ...) -> raised in main if main
        is the goroutine running, else Shutdown in the running goroutine so
        the hub gets back to interrupting main;
    Pn: teardown -> Shutdown in the running goroutine, so it unwinds (its
        finally blocks run) instead of being killed after the grace period.

The handler never raises into hub code: only into a running goroutine.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import greenlet

from . import state

SIG = signal.SIGUSR2
PERIOD = 0.01
PATIENCE = 0.1  # how long the hub may take to notice by itself


def _handler(signum: int, frame: Any) -> None:
    rt = state.rt
    if rt is None or rt.closed:
        return
    gs = rt.current
    if gs is None or getattr(greenlet.getcurrent(), "gs", None) is not gs:
        return  # the hub is running: it acts on the flags itself
    exc = rt.sysmon_exception(gs)
    if exc is not None:
        raise exc


class Sysmon:
    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.stop_ev = threading.Event()
        self.old = signal.signal(SIG, _handler)
        self.thread = threading.Thread(target=self._run, name=f"parago-P{rt.p}-sysmon", daemon=True)
        self.thread._parago_runtime = True  # type: ignore[attr-defined]
        self.thread.start()

    def _run(self) -> None:
        rt = self.rt
        pending_since = 0.0
        last_tick = -1
        pid = os.getpid()
        while not self.stop_ev.wait(PERIOD):
            if rt.closed:
                return
            try:
                need = rt.sysmon_needed()
            except Exception:
                return
            if not need:
                pending_since = 0.0
                continue
            now = time.monotonic()
            tick = rt.switches
            if not pending_since or tick != last_tick:
                pending_since, last_tick = now, tick
                continue
            if now - pending_since >= PATIENCE:
                pending_since = now
                try:
                    signal.pthread_kill(rt.hub_tid, SIG)
                except (OSError, ValueError):
                    os.kill(pid, SIG)

    def stop(self) -> None:
        self.stop_ev.set()
        if self.thread is not threading.current_thread():
            self.thread.join(1.0)
        try:
            signal.signal(SIG, self.old if self.old is not None else signal.SIG_DFL)
        except (ValueError, TypeError):
            pass
