"""The death watch seen from Python: starting and stopping the C threads of
shm/watch.c, and what a lost P becomes (``WorkerLost`` in P0, ``Shutdown``
in every other P).

    P0                                          P1 .. Pn-1
    -----------------------------------------   ---------------------------------
    pidfd_open(proc.pid) per P (the process     pg_deathpipe_watch(death pipe r):
    sentinel where that fails) -> pg_watch_start  EOF -> p[0].gone, _exit(3)
      P i ends: p[i].gone, FAIL_LOST, eventfds
    PG_LOST / FAIL_LOST -> lost_error(rt)        PG_LOST -> Shutdown
    teardown: pg_watch_stop, then close the pidfds

Neither thread needs the GIL or a hub: a P0 whose main thread waits in a
lock held by a dead P learns of it from the arena (p[i].gone) within one
bounded futex wait.
"""

from __future__ import annotations

import ctypes
import multiprocessing.connection  # noqa: F401 -- Process.exitcode imports it lazily: never inside a signal handler
import os
import time
from typing import Any, Callable

from .._errors import ParagoError, Shutdown, WorkerLost
from .._shim import CONST, OK, blocking, lib, status, views
from . import report

FAIL_LOST = CONST["FAIL_LOST"]
_PIDFD, _SENTINEL = 0, 1


class P0Watch:
    """P0's C thread watching P1..Pn-1 (one pidfd each, or its sentinel)."""

    def __init__(self, rt: Any, procs: list) -> None:
        n = len(procs) + 1
        self.pidfds: list[int] = []
        fds = (ctypes.c_int * n)(*([-1] * n))
        kinds = (ctypes.c_int * n)(*([_PIDFD] * n))
        for i, proc in enumerate(procs, start=1):
            try:
                fd = os.pidfd_open(proc.pid)
            except (OSError, AttributeError):
                fds[i], kinds[i] = proc.sentinel, _SENTINEL  # readable once the P ended
            else:
                self.pidfds.append(fd)
                fds[i], kinds[i] = fd, _PIDFD
        self.running = lib.pg_watch_start(rt.base, fds, kinds, n) == OK
        if not self.running:
            self._close_fds()
            raise ParagoError("pg_watch_start: cannot start P0's death watch thread")

    def stop(self) -> None:
        """Join the thread, then close the pidfds (teardown, before the
        processes' sentinels are closed)."""
        if self.running:
            self.running = False
            blocking.pg_watch_stop()
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in self.pidfds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.pidfds.clear()


def watch_parent(arena: Any, fd: int) -> None:
    """In a P: exit (status 3) as soon as P0 is gone, whatever killed it."""
    if lib.pg_deathpipe_watch(arena.base, fd) != OK:
        raise ParagoError("pg_deathpipe_watch: cannot start the death-pipe watch thread")


def lost_p(arena: Any, nprocs: int) -> int:
    """The P the arena says died: the recorded FAIL_LOST, else the first P
    marked gone (the watch marks it gone before it records), else -1."""
    if arena.hdr_u32("panicking") == 2 and arena.hdr_u32("fail_kind") == FAIL_LOST:
        return ctypes.c_int32(arena.hdr_u32("lost_p")).value
    for p in range(nprocs):
        if views.p_get(arena, p, "gone"):
            return p
    return -1


def how_it_ended(proc: Any, wait_status: int) -> str:
    """"killed by signal SIGKILL" / "exit status 3" from the wait status the
    watch stored (P0's children), else the multiprocessing Process's exit
    code (a forkserver's child: it arrives through the sentinel, so wait up
    to 0.5 s for it).  Never blocks in a join: this runs inside a failing
    operation or sysmon's signal handler."""
    code = None
    if wait_status >= 0:
        code = os.waitstatus_to_exitcode(wait_status)
    elif proc is not None:
        deadline = time.monotonic() + 0.5
        while True:
            try:
                code = proc.exitcode  # a non-blocking poll
            except (ValueError, OSError):
                break
            if code is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.002)
    return report.exit_how(code)


def lost_info(rt: Any, p: int, proc: Any = None) -> dict:
    """What WorkerLost says about P p: how it ended, the goroutines it held."""
    a = rt.arena
    if proc is None:  # P0's multiprocessing Processes (rt.sup: its Supervisor)
        procs: list = getattr(getattr(rt, "sup", None), "procs", None) or getattr(rt, "procs", [])
        proc = procs[p - 1] if 1 <= p <= len(procs) else None
    how = how_it_ended(proc, ctypes.c_int32(views.p_get(a, p, "exit_status")).value if p >= 0 else -1)
    n = views.p_get(a, p, "nlive") if p >= 0 else 0
    held = f"{n} started goroutine{'s' if n != 1 else ''} (their state died with the process)"
    pid = proc.pid if proc is not None else (views.p_get(a, p, "pid") if p >= 0 else 0)
    return {"p": p, "how": how, "goroutines": held, "pid": pid}


def lost_error(rt: Any) -> WorkerLost:
    """The WorkerLost of the P the arena says died (FAIL_LOST, PG_LOST in P0)."""
    info = lost_info(rt, lost_p(rt.arena, rt.nprocs))
    e = WorkerLost(info["p"], info["how"], info["goroutines"])
    e.pid = info["pid"]
    return e


def install_lost_handler(rt: Any) -> None:
    """PG_LOST from any shim call becomes WorkerLost in P0, Shutdown elsewhere
    (status.check); uninstall with ``status.set_lost_handler(None)``."""
    fn: Callable[[], BaseException] = (lambda: lost_error(rt)) if rt.p == 0 else Shutdown
    status.set_lost_handler(fn, rt.arena.size)
