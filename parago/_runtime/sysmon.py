"""sysmon: start and stop each P's C sysmon thread (shm/sysmon.c), and its signal.

The thread is C -- no Python, no GIL, all signals blocked -- so nothing a
goroutine does can keep it from its work: it fires the P's timers on time
and watches the P's hub (Go's sysmon/retake).  It reaches Python in one
way only: SIGUSR2 to the hub thread, with the reasons in ``pg_p.sysreq``.
The handler runs in the hub thread between two bytecodes of whatever
holds the P, takes the reasons and hands them to ``rt.on_sysmon``:

    SYS_PREEMPT   a goroutine ran for a time slice while another of its P
                  is runnable (``rt.preempt_signal(frame)`` yields it at a
                  safe point, where the runtime has one)
    SYS_SHUTDOWN  teardown, and the hub did not act on it (or is held by a
                  goroutine): Shutdown in the running goroutine
    SYS_FAILURE   P0: a recorded failure (Panic, WorkerLost, ...) that the
                  hub did not deliver to main: raised there (see
                  ``P0Runtime.sysmon_exception``)

The handler never raises into hub code: only into a running goroutine.
The handler is installed before the thread starts and removed after it
is joined (an unhandled SIGUSR2 would kill the process).
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any, Callable

from .._errors import ParagoError
from .._shim import OK, blocking, lib
from . import state

SIG = signal.SIGUSR2
JOIN_STEP_NS = 50_000_000  # a teardown's join returns to Python this often (signal handlers run)
STOP_LIMIT = 10.0  # s: a sysmon that has not stopped by then is left running (its arena stays mapped)


def _handler(signum: int, frame: Any) -> None:
    rt = state.rt
    if rt is None or rt.closed:
        return
    bits = lib.pg_sysreq_take(rt.base, rt.p)
    if bits:
        rt.on_sysmon(bits, frame)


class Sysmon:
    """This process's sysmon for ``rt``'s P; ``stop()`` before the arena goes."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.old = signal.signal(SIG, _handler)
        r = lib.pg_sysmon_start(rt.base, rt.p)
        if r != OK:
            signal.signal(SIG, self.old if self.old is not None else signal.SIG_DFL)
            raise ParagoError(f"sysmon: cannot start the sysmon thread of P{rt.p} (status {r})")
        self.running = True
        self.abandoned = False  # stop() was interrupted before the thread ended

    def stop(self, give_up: Callable[[], bool] | None = None) -> None:
        """This P leaves the run: join the thread, then give back its timer
        heap (every entry's reference; stopping what is still armed).

        The join waits in bounded steps (JOIN_STEP_NS, the GIL released),
        coming back here between them, so signal handlers run; it ends when
        ``give_up()`` says so (P0: a SIGTERM / SIGINT came, whatever holds
        the thread) or after STOP_LIMIT.  A thread not joined then is
        ``abandoned``: the arena must stay mapped (it may still read it)
        and its heap is left as it is."""
        if not self.running:
            return
        self.running = False
        self.abandoned = True
        deadline = time.monotonic() + STOP_LIMIT
        while blocking.pg_sysmon_join(JOIN_STEP_NS) != OK:
            # not yet (pending signal handlers run here): its lock waits give
            # up once asked and no timer fires in teardown, so only a thread
            # held outside the runtime gets here; never wait for ever on it
            if give_up is not None and give_up():
                return
            if time.monotonic() > deadline:
                sys.stderr.write(
                    f"parago: P{self.rt.p}'s sysmon did not stop within {STOP_LIMIT:.0f} s; left running\n"
                )
                return
        self.abandoned = False
        lib.pg_timers_release(self.rt.base, self.rt.p)
        try:
            signal.signal(SIG, self.old if self.old is not None else signal.SIG_DFL)
        except (ValueError, TypeError):
            pass
