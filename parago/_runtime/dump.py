"""Goroutine dumps: every goroutine of every P, as Go prints them.

Each P formats its own goroutines (their stacks live in its memory); P0
asks the others through a per-P ``dumpreq`` word in the arena and reads
the text each P stores back (``dump_off``/``dump_len``, ``dumpack``).  A P
that does not answer in time is reported as unresponsive.
"""

from __future__ import annotations

import os
import time
import traceback
from typing import Any

from .._shim import lib, offset
from .g import WAIT_REASONS, GreenletG, TaskG

OFF_STATUS = offset("pg_g", "status")
OFF_WAITREASON = offset("pg_g", "waitreason")
OFF_WAITSINCE = offset("pg_g", "waitsince")
OFF_PARENT = offset("pg_g", "parent")


def dump_text(rt: Any) -> str:
    lines = []
    now = time.monotonic_ns()
    q, u32 = rt.arena.q, rt.arena.u32
    for off, gs in sorted(rt.gtable.items(), key=lambda kv: kv[1].goid):
        status = u32[(off + OFF_STATUS) // 4]
        reason = u32[(off + OFF_WAITREASON) // 4]
        since = q[(off + OFF_WAITSINCE) // 8]
        if gs is rt.current:
            what = "running"
        elif status == 4:
            what = WAIT_REASONS.get(reason, "waiting")
            secs = (now - since) / 1e9 if since else 0
            if secs >= 1:
                what += f", {int(secs)} seconds" if secs >= 60 else f", {secs:.0f} s"
        else:
            what = "runnable"
        lines.append(f"goroutine {gs.goid} [{what}] (P{rt.p}, pid {os.getpid()}):")
        frame = None
        if isinstance(gs, GreenletG) and gs.gr is not None:
            frame = gs.gr.gr_frame
        elif isinstance(gs, TaskG) and gs.task is not None:
            st = gs.task.get_stack()
            frame = st[-1] if st else None
        if frame is not None:
            for entry in traceback.format_stack(frame):
                lines.append("  " + entry.rstrip().replace("\n", "\n  "))
        site = rt.site_text(off)
        parent = q[(off + OFF_PARENT) // 8]
        if site:
            lines.append(f"created by {site}" + (f" in goroutine {parent}" if parent else ""))
        lines.append("")
    return "\n".join(lines)


def answer_dump(rt: Any) -> None:
    req = rt.arena.u32[rt.i_dumpreq]
    rt.dump_seen = req
    text = rt.dump_text().encode()
    off = lib.pg_store_bytes(rt.base, text, len(text)) if text else 0
    a = rt.arena
    if off > 0:
        a.q[a.p_field(rt.p, "dump_off") // 8] = off
        a.q[a.p_field(rt.p, "dump_len") // 8] = len(text)
    else:
        a.q[a.p_field(rt.p, "dump_off") // 8] = 0
        a.q[a.p_field(rt.p, "dump_len") // 8] = 0
    a.u32[a.p_field(rt.p, "dumpack") // 4] = req


def collect_dump(rt: Any, timeout: float = 1.0) -> str:
    parts = [rt.dump_text()]
    a = rt.arena
    waiting = {}
    for p in range(1, rt.nprocs):
        i = a.p_field(p, "dumpreq") // 4
        v = (a.u32[i] + 1) & 0xFFFFFFFF
        a.u32[i] = v
        waiting[p] = v
        lib.pg_wakep_of(rt.base, p)
    deadline = time.monotonic() + timeout
    got = {}
    while waiting and time.monotonic() < deadline:
        for p, v in list(waiting.items()):
            if a.u32[a.p_field(p, "dumpack") // 4] == v:
                off = a.q[a.p_field(p, "dump_off") // 8]
                n = a.q[a.p_field(p, "dump_len") // 8]
                got[p] = a.read(off, n).decode(errors="replace") if off else ""
                if off:
                    lib.pg_mfree(rt.base, off)
                del waiting[p]
        if waiting:
            time.sleep(0.002)
    for p in range(1, rt.nprocs):
        if p in got:
            parts.append(got[p])
        else:
            parts.append(f"P{p}: unresponsive after {timeout:.0f} s (busy in a goroutine or in C code)\n")
    return "\n".join(x for x in parts if x)
