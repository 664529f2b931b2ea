"""PARAGO_DEBUG=schedtrace=MS[,scheddetail=1]: Go's GODEBUG scheduler trace.

A P0 thread prints, every MS milliseconds, to stderr:

    SCHED 1004ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 needspinning=0 idlethreads=0 runqueue=0 [3 0]

and with scheddetail=1 a line per P (plus its pid, CPU % and RSS) and per
goroutine of P0's dump header.  Read from the arena only: it never stops a P.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from .._shim import Pstate, views


def parse_debug(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            try:
                out[k.strip()] = int(v)
            except ValueError:
                pass
    return out


def lines(rt: Any, start: float, detail: bool, procs: dict[int, Any]) -> list[str]:
    a = rt.arena
    n = rt.nprocs
    pg = views.p_get
    states = [pg(a, p, "state") for p in range(n)]
    runq = []
    for p in range(n):
        h, t = pg(a, p, "runqhead"), pg(a, p, "runqtail")
        # Go's runqsize: every runnable G of the P -- unstarted (ring, runnext,
        # inbox) and started ones readied (ready list) or yielded (the hub's own)
        runq.append(
            ((t - h) & 0xFFFFFFFF)
            + (1 if pg(a, p, "runnext") else 0)
            + pg(a, p, "inbox_n")
            + pg(a, p, "nready")
            + pg(a, p, "nlocal")
        )
    idle = sum(1 for s in states if s == Pstate.SLEEPING)
    spinning = sum(1 for s in states if s == Pstate.SPINNING)
    threads = 0
    for p in range(n):
        pr = procs.get(p)
        if pr is not None:
            try:
                threads += pr.num_threads()
            except Exception:
                pass
    ms = int((time.monotonic() - start) * 1000)
    gq = views.hdr(a, "gq_size")
    out = [
        f"SCHED {ms}ms: gomaxprocs={n} idleprocs={idle} threads={threads} spinningthreads={spinning} "
        f"needspinning=0 idlethreads={idle} runqueue={gq} [{' '.join(map(str, runq))}]"
    ]
    if detail:
        ng = views.hdr(a, "ngoroutines")
        npk = views.hdr(a, "nparked")
        for p in range(n):
            status = 0 if states[p] == Pstate.SLEEPING else 1
            pr = procs.get(p)
            cpu = rss = 0.0
            if pr is not None:
                try:
                    cpu = pr.cpu_percent(None)
                    rss = pr.memory_info().rss / 2**20
                except Exception:
                    pass
            out.append(
                f"  P{p}: status={status} schedtick={pg(a, p, 'schedtick')} "
                f"syscalltick={pg(a, p, 'syscalltick')} m={p} runqsize={runq[p]} gfreecnt=0 "
                f"timerslen={pg(a, p, 'tn')} pid={pg(a, p, 'pid')} "
                f"cpu={cpu:.0f}% rss={rss:.1f}MB "
                f"preempted={pg(a, p, 'npreempt')} placed={pg(a, p, 'nplaced')} stolen={pg(a, p, 'nstolen')} "
                f"load={pg(a, p, 'nlive') + pg(a, p, 'inbox_n') + ((pg(a, p, 'runqtail') - pg(a, p, 'runqhead')) & 0xFFFFFFFF)} "
                f"netpoll={pg(a, p, 'nnetpoll')}"  # goroutines parked on the network (netpoll.py)
            )
        out.append(f"  goroutines={ng} parked={npk}")
        out.extend(g_lines(rt))
    return out


def g_lines(rt: Any) -> list[str]:
    """Go's per-G lines, for the goroutines started on this P (P0: the
    others' records live in their own processes' memory)."""
    from .g import WAIT_REASONS

    a = rt.arena

    out = []
    for off, gs in list(rt.gtable.items())[:64]:
        st = views.g_get(a, off, "status")
        why = f"({WAIT_REASONS.get(views.g_get(a, off, 'waitreason'), '')})" if st == 4 else "()"
        out.append(f"  G{gs.goid}: status={st}{why} m={rt.p if gs is rt.current else -1} lockedm=-1 p={rt.p}")
    return out


def start(rt: Any, period_ms: int, detail: bool) -> threading.Event:
    stop = threading.Event()
    t0 = time.monotonic()

    def loop() -> None:
        import psutil

        procs: dict[int, Any] = {}
        while not stop.wait(period_ms / 1000):
            if rt.closed:
                return
            for p in range(rt.nprocs):
                pid = views.p_get(rt.arena, p, "pid")
                if pid and (p not in procs or procs[p].pid != pid):
                    try:
                        procs[p] = psutil.Process(pid)
                        procs[p].cpu_percent(None)
                    except Exception:
                        pass
            try:
                text = "\n".join(lines(rt, t0, detail, procs))
            except Exception:
                return
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    th = threading.Thread(target=loop, name="parago-schedtrace", daemon=True)
    th._parago_runtime = True  # type: ignore[attr-defined]
    th.start()
    return stop


def from_env() -> tuple[int, bool]:
    d = parse_debug(os.environ.get("PARAGO_DEBUG"))
    return d.get("schedtrace", 0), bool(d.get("scheddetail", 0))
