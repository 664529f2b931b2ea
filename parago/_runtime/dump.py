"""Goroutine dumps: every goroutine of every P, as Go prints them.

Each P formats its own goroutines (their stacks live in its memory) with
report.py; P0 asks the others through a per-P ``dumpreq`` word in the arena
and reads the text each P stores back (``dump_off``/``dump_len``,
``dumpack``), then merges the parts in goroutine-id order:

    P0 collect_dump                          Pn hub (on_flags)
    ---------------------------------        ---------------------------
    dumpreq[n] += 1, wake Pn      ------->   dump_text(), pg_store_bytes,
    poll dumpack[n] (timeout)     <-------   dump_off/len, dumpack = req
    read + free, merge by goid

A P that does not answer in time is reported as unresponsive; a P whose
process has exited is reported as gone (never waited for).  The same
formatting serves Deadlock, a Panic's other goroutines, WorkerLost,
SIGQUIT, SIGUSR1 and pg.debug.dump().
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
from types import FrameType
from typing import Any

import greenlet

from .._shim import GKind, lib, views
from . import netpoll, report
from .g import WAIT_REASONS, GreenletG, TaskG

# G offset -> the wait reason a dump shows instead of its park's own (a
# goroutine on a node's other P whose remote operation P0 performs for it
# waits on a reply channel: it shows the operation's reason)
shown_as: dict[int, str] = {}

GS_WAITING = 4

# A request's kind rides in the top bits of ``dumpreq`` (the sequence number
# is the low bits): 0 is the text dump; leaks.py registers the others (the
# facts pg.debug.leaks and goroutine_profile need from every P), each an
# answer function rt -> text.
KIND_SHIFT = 30
SEQ_MASK = (1 << KIND_SHIFT) - 1
answers: dict[int, Any] = {}

site = report.site  # sched.site_of: the created-by text of a pg.go call
exit_how = report.exit_how  # supervisor: how a P process ended


def _state(rt: Any, gs: Any, off: int, now: int) -> str:
    if _running(rt, gs):
        return "running"
    a = rt.arena
    if views.g_get(a, off, "status") != GS_WAITING:
        return "runnable"
    since = views.g_get(a, off, "waitsince")
    reason = shown_as.get(off) or WAIT_REASONS.get(views.g_get(a, off, "waitreason"), "waiting")
    return report.wait_state(reason, (now - since) / 1e9 if since else 0.0)


def _running(rt: Any, gs: Any) -> bool:
    if isinstance(gs, TaskG):
        try:
            return gs.task is not None and asyncio.current_task(rt.loop) is gs.task
        except RuntimeError:
            return False
    return gs is rt.current


def _frames(rt: Any, gs: Any) -> list[tuple[FrameType, int]]:
    if _running(rt, gs):
        # the dumping code runs on this goroutine's stack (pg.debug.dump(), a
        # signal handler): its own frames are runtime frames, hidden below
        if isinstance(gs, TaskG):
            # a running task's outermost coroutine frame continues into the
            # hub's frames (the loop that steps it): stop there
            frames = report.chain_frames(sys._getframe(1))
            top = getattr(gs.task.get_coro(), "cr_frame", None)
            ends = [i for i, (f, _) in enumerate(frames) if f is top]
            return frames[: ends[0] + 1] if ends else frames
        if greenlet.getcurrent() is getattr(gs, "gr", None):
            return report.chain_frames(sys._getframe(1))
        return []
    if isinstance(gs, GreenletG):
        return report.chain_frames(gs.gr.gr_frame) if gs.gr is not None else []
    if isinstance(gs, TaskG) and gs.task is not None:
        return report.coro_frames(gs.task.get_coro())
    return []


def _where(rt: Any) -> str:
    return f"p={rt.p} pid={os.getpid()}"


def section(rt: Any, gs: Any, state: str, frames: list[tuple[FrameType, int]], system: bool) -> str:
    """One goroutine of this P in Go's shape (report.goroutine)."""
    parent = views.g_get(rt.arena, gs.off, "parent")
    text = report.goroutine(gs.goid, state, frames, views.g_site(rt.arena, gs.off), parent, _where(rt), system)
    io = netpoll.describe(rt, gs.off)
    if io:  # a network wait: which fd and peer (under the header, as a frame line is indented)
        head, _, rest = text.partition("\n")
        text = f"{head}\n\t[{io}]" + (f"\n{rest}" if rest else "")
    return text


def dump_text(rt: Any) -> str:
    """This P's goroutines, by id; system goroutines only with PARAGO_TRACEBACK=system."""
    system = report.level() == "system"
    now = time.monotonic_ns()
    out = []
    for off, gs in sorted(rt.gtable.items(), key=lambda kv: kv[1].goid):
        if not system and views.g_get(rt.arena, off, "kind") & GKind.SYSTEM:
            continue
        out.append(section(rt, gs, _state(rt, gs, off, now), _frames(rt, gs), system))
    return "\n\n".join(out)


def failing_section(rt: Any, goid: int, e: BaseException, tb_text: str) -> str:
    """The ``goroutine N [running]:`` section of a goroutine that raised e,
    written in its own P while the traceback is at hand.  The hub's own
    failure (goid 0, Go's g0) always shows every frame: it is parago's bug."""
    system = report.level() == "system" or goid == 0
    frames = report.tb_frames(e.__traceback__)
    gs = next((g for g in rt.gtable.values() if g.goid == goid), None) if goid else None
    if gs is not None:
        text = section(rt, gs, "running", frames, system)
    else:
        text = report.goroutine(goid, "running", frames, "", 0, _where(rt), system)
    if system and tb_text:
        text += "\n\nPython traceback (P%d):\n%s" % (rt.p, tb_text.rstrip())
    return text


def answer_dump(rt: Any) -> None:
    req = rt.arena.u32[rt.i_dumpreq]
    rt.dump_seen = req
    a = rt.arena
    stale = views.p_get(a, rt.p, "dump_off")
    if stale:
        # an answer P0 gave up waiting for (it clears dump_off of those it
        # read); it asks again only after it stopped reading the last one
        lib.pg_mfree(rt.base, stale)
    kind = req >> KIND_SHIFT
    text = (answers[kind](rt) if kind in answers else rt.dump_text()).encode()
    off = lib.pg_store_bytes(rt.base, text, len(text)) if text else 0
    views.p_set(a, rt.p, "dump_off", max(off, 0))
    views.p_set(a, rt.p, "dump_len", len(text) if off > 0 else 0)
    views.p_set(a, rt.p, "dumpack", req)  # last: P0 reads dump_off/len once it sees the ack


def _gone(rt: Any, p: int) -> str:
    """How P p's process ended ('' while it runs): the death watch's mark in
    the arena, the exit status from the process object (P0 has its children)."""
    procs = getattr(getattr(rt, "sup", None), "procs", None) or ()  # P0's Supervisor has them
    code = None
    if p - 1 < len(procs):
        try:
            code = procs[p - 1].exitcode
        except ValueError:  # closed
            return "exited"
    if code is not None:
        return report.exit_how(code)
    return "exited" if views.p_get(rt.arena, p, "gone") else ""


def collect_dump(rt: Any, timeout: float = 1.0, skip_goid: int | None = None) -> str:
    """Every goroutine of every P (P0 only), ordered by id, without skip_goid."""
    own = rt.dump_text()
    parts, notes = collect_parts(rt, 0, timeout)
    return report.merge([own, *parts] + [notes[p] for p in sorted(notes)], skip_goid)


def collect_parts(rt: Any, kind: int, timeout: float = 1.0) -> tuple[list[str], dict[int, str]]:
    """Ask every other P for its answer of ``kind`` (P0 only): the answers,
    and a note per P that is gone or did not answer within ``timeout``."""
    parts: list[str] = []
    a = rt.arena
    waiting = {}
    notes = {}
    for p in range(1, rt.nprocs):
        how = _gone(rt, p)
        if how:
            notes[p] = f"P{p}: gone ({how}); its goroutines died with it"
            continue
        v = (((views.p_get(a, p, "dumpreq") & SEQ_MASK) + 1) & SEQ_MASK) | (kind << KIND_SHIFT)
        views.p_set(a, p, "dumpreq", v)
        waiting[p] = v
        lib.pg_wakep_of(rt.base, p)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for p, v in list(waiting.items()):
            if views.p_get(a, p, "dumpack") == v:
                off = views.p_get(a, p, "dump_off")
                n = views.p_get(a, p, "dump_len")
                parts.append(a.read(off, n).decode(errors="replace") if off else "")
                if off:
                    views.p_set(a, p, "dump_off", 0)
                    lib.pg_mfree(rt.base, off)
                del waiting[p]
        if waiting:
            time.sleep(0.002)
    for p in waiting:
        notes[p] = f"P{p}: unresponsive after {timeout:g} s (busy in a goroutine or in C code); its goroutines are not shown"
    return parts, notes


def format_tb(e: BaseException) -> str:
    """The Python traceback text of e, every frame and the chain (Panic.remote_traceback)."""
    return "".join(traceback.format_exception(type(e), e, e.__traceback__))
