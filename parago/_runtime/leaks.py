"""Goroutine leaks: the check when main returns, pg.debug.leaks(), and the
goroutine profile (pg.debug.goroutine_profile).

At exit (``pg.run(main, leaks="error"|"warn")``, ``PARAGO_DEBUG=leakcheck=1``;
Uber's goleak for Go): once main has returned, the other goroutines get a
short grace to finish (goleak retries too), with every P still running;
those still alive then are collected with the goroutine dump (dump.py:
each P formats its own, before teardown unwinds them) and become one
``GoroutineLeak``.

While running (``pg.debug.leaks()``; Go 1.26's goroutine leak profile): a
goroutine parked on channels or sync objects that nothing but their own
waiters can reach can never wake.  Reachability comes from the arena's
reference counts (handles.py: an object's ``refcnt`` is one per P that has
a handle for it + one per payload that carries one) and, inside each P,
from Python's referrers of that P's handle:

    P0 (the caller)                              every other P (dump kind 1)
    -------------------------------------        ------------------------------
    ask each P  ------------------------->       flush batched decrefs; for
                                                 each object a parked G waits
                                                 on: "excl" = the P's handle is
                                                 reachable only from the frames
                                                 of the Gs parked on it
    own part too; then read refcnt  <-----       {obj: [excl, holds]}, the Gs
    an object is unreachable iff every P with waiters on it says excl and
    refcnt == the number of those Ps holding a handle (no other P, no
    payload in a buffer or an unstarted G's arguments holds it);
    a G is leaked iff every object it waits on is unreachable

The rule errs towards silence: a reference it cannot explain (a frame of
another goroutine, a module global, a chain of containers too long to
follow, a P that does not answer) counts as a holder.  From a goroutine on
a P other than P0 only that P's part is known (the others are not asked:
the dump protocol has one asker), so only its goroutines can be reported.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import threading
import time
import types
import zlib
from typing import Any, NamedTuple

from .._errors import GoroutineLeak
from .._shim import GKind, Gstatus, views
from . import dump, failure, report
from .g import GreenletG, TaskG

GRACE = 0.5  # s: how long goroutines get to exit after main returned (goleak retries ~the same)
MODES = ("error", "warn")
# the mode pg.run uses when its leaks= is None (the pytest plugin sets it per test)
default_mode: str | None = None

KIND_LEAKS = 1
KIND_STACKS = 2

_WAITING = int(Gstatus.WAITING)
_HEAD = re.compile(r"^goroutine (\d+)(?: [^\[]*)? \[(.*)\]:$")
_WAITED = re.compile(r", \d+ (?:s|seconds)$")

# the referrer search: how far it follows containers before calling the
# handle held (never report a goroutine that might wake)
MAX_DEPTH = 12
MAX_NODES = 20000
MAX_CACHED = 64  # handles of the argument caches judged per call


class Leaked(NamedTuple):
    """One leaked goroutine: its id, what it waits on (Go's wait reason:
    "chan receive", "sync.Mutex.Lock"; "running"/"runnable" for one that is
    not parked), its stack (the user's frames, innermost first, as a dump
    shows them) and its ``created by`` lines."""

    goid: int
    wait_reason: str
    stack: str
    created_by: str


def check_mode(leaks: Any) -> str | None:
    """pg.run's leaks= (None: PARAGO_DEBUG=leakcheck=1 or the plugin's default)."""
    if leaks is None:
        import os

        from .schedtrace import parse_debug

        if parse_debug(os.environ.get("PARAGO_DEBUG")).get("leakcheck"):
            return "error"
        return default_mode
    if leaks not in MODES:
        raise ValueError(f"leaks must be None, 'error' or 'warn', got {leaks!r}")
    return str(leaks)


def parse(text: str) -> list[Leaked]:
    """The goroutine sections of a dump as records (other lines are dropped)."""
    out = []
    for sec in re.split(r"\n\n(?=goroutine \d+ )", text.strip("\n")):
        lines = sec.split("\n")
        m = _HEAD.match(lines[0])
        if m is None:
            continue
        body = lines[1:]
        cut = next((i for i, ln in enumerate(body) if ln.startswith("created by ")), len(body))
        reason = _WAITED.sub("", m.group(2))
        out.append(Leaked(int(m.group(1)), reason, "\n".join(body[:cut]), "\n".join(body[cut:])))
    return out


# ----------------------------------------------------------------------
# at exit (P0, after main returned, before teardown)


def at_exit(rt: Any, grace: float = GRACE) -> GoroutineLeak | None:
    """The goroutines still alive ``grace`` seconds after main returned, as
    a GoroutineLeak (None: none, or the program failed meanwhile -- that
    failure is what pg.run reports)."""
    arena = rt.arena
    rt.flush_exited()  # main's own exit

    async def settle() -> None:
        deadline = time.monotonic() + grace
        delay = 0.0005
        while views.hdr(arena, "ngoroutines") > 0 and time.monotonic() < deadline:
            rt.arm()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            if failure.recorded(rt) is not None:
                return

    try:
        rt.loop.run_until_complete(settle())
    except BaseException as e:  # a signal handler's (Ctrl-C, a test timeout)
        rt.sup.hub_error = rt.sup.hub_error or e
        return None
    if failure.recorded(rt) is not None or views.hdr(arena, "ngoroutines") <= 0:
        return None
    text = rt.sup.collect_dump()
    gs = parse(text)
    alive = views.hdr(arena, "ngoroutines")
    if alive <= 0 and not gs:
        return None  # they finished while the dump was taken
    if alive > len(gs):
        n = alive - len(gs)
        text += f"\n\n({n} more not shown: not yet started, or on a P that did not answer)"
    return GoroutineLeak(gs, text, alive)


def warn(e: GoroutineLeak) -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    sys.stderr.write(f"parago: {e}\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------
# pg.debug.leaks(): each P's part


def _waits_on(arena: Any, off: int) -> list[int]:
    """The objects G off is parked on (its own sudog, or its select's)."""
    sd = views.g_sudog(off)
    if views.sudog_get(arena, sd, "queued") and views.sudog_get(arena, sd, "g") == off:
        return [views.sudog_get(arena, sd, "obj")]
    blk = views.g_get(arena, off, "sel")
    objs = []
    if blk:
        # the select's sudogs, one per case, contiguous; each still queued
        # while the G is parked (the count is not stored: stop at the first
        # that is not one of this G's)
        size = views.SUDOG_SIZE
        for k in range(4096):
            s = blk + k * size
            if s + size > arena.size:
                break
            if not (
                views.sudog_get(arena, s, "queued")
                and views.sudog_get(arena, s, "is_select")
                and views.sudog_get(arena, s, "g") == off
            ):
                break
            objs.append(views.sudog_get(arena, s, "obj"))
    return objs


def _live_frames(rt: Any) -> list[Any]:
    """Materialize every frame of every goroutine and thread of this P: a
    suspended greenlet's frames are visible to the referrer search only
    once they are frame objects."""
    keep: list[Any] = []
    for gs in list(rt.gtable.values()):
        if isinstance(gs, GreenletG) and gs.gr is not None:
            keep.extend(f for f, _ in report.chain_frames(gs.gr.gr_frame))
    me = threading.get_ident()
    for tid, f in sys._current_frames().items():
        # not this function's own frame: kept alive in the list after it
        # returned, it would own its locals (3.13+: a snapshot dict too)
        keep.extend(f2 for f2, _ in report.chain_frames(sys._getframe(1) if tid == me else f))
    return keep


def _own(rt: Any, gs: Any) -> set[int]:
    """ids of the frames (and coroutines) that are gs's own."""
    ids: set[int] = {id(gs)}
    if isinstance(gs, GreenletG) and gs.gr is not None:
        # the greenlet too: from 3.12 on it traverses its suspended frames'
        # stack itself, so the arguments it was started with refer from it
        ids.add(id(gs.gr))
        for fr, _ in report.chain_frames(gs.gr.gr_frame):
            ids.add(id(fr))
            _own_generators(fr, ids)
    elif isinstance(gs, TaskG) and gs.task is not None:
        coro = gs.task.get_coro()
        while coro is not None:
            ids.add(id(coro))
            f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if f is not None:
                ids.add(id(f))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        ids.add(id(gs.task))
    return ids


def _own_generators(f: Any, ids: set[int]) -> None:
    """The generators a goroutine's frame drives (park.run's steps) are its
    own too, with their frames: up to 3.10 a suspended generator's frame is
    a frame object of its own, which the referrer search meets."""
    try:
        vals = list(f.f_locals.values())
    except Exception:
        return
    for v in vals:
        while isinstance(v, (types.GeneratorType, types.CoroutineType)) and id(v) not in ids:
            ids.add(id(v))
            fr = getattr(v, "gi_frame", None) or getattr(v, "cr_frame", None)
            if fr is not None:
                ids.add(id(fr))
            v = getattr(v, "gi_yieldfrom", None) or getattr(v, "cr_await", None)


def _only_waiters(h: Any, ok: set[int], ignore: set[int], modules: set[int], frames: list[Any]) -> bool:
    """Is handle h reachable only from the objects in ``ok`` (the waiters'
    frames and coroutines)?  Python's referrers lead from h outwards
    through containers (cells, lists, instances, coroutines); a frame that
    is running or suspended in a greenlet is not one of them (its locals
    are no container the collector sees), so ``frames`` -- every other
    frame of this P -- are then searched for what was found."""
    seen = {id(h)}
    frontier = [h]
    ignore = set(ignore)
    searched: list[Any] = []
    for _ in range(MAX_DEPTH):
        ignore.add(id(frontier))
        # the argument tuple is this search's own (3.14+ keeps it alive
        # on the stack while the next level is searched)
        args = tuple(frontier)
        ignore.add(id(args))
        searched.append(args)  # alive till the end: its id is not reused
        refs = gc.get_referrers(*args)
        ignore.add(id(refs))
        nxt: list[Any] = []
        ignore.add(id(nxt))
        for r in refs:
            i = id(r)
            if i in seen or i in ignore or i in ok:
                continue
            seen.add(i)
            if isinstance(r, types.FrameType):
                return False  # a frame object that owns its locals: not a waiter's
            if i in modules or isinstance(r, (types.ModuleType, type)):
                return False  # a module global, a class attribute
            nxt.append(r)
        if not nxt:
            break
        if len(seen) > MAX_NODES:
            return False
        frontier = nxt
    else:
        return False  # too far to follow: call it held
    for f in frames:
        if id(f) in ok:
            continue
        try:
            vals = list(f.f_locals.values())
        except Exception:
            return False
        if any(id(v) in seen for v in vals):
            return False
    return True


def _local_facts(rt: Any) -> dict:
    """This P's part of pg.debug.leaks: its parked goroutines and, for each
    object they wait on, whether only they reach this P's handle."""
    rt.flush_decrefs()
    arena = rt.arena
    system = report.level() == "system"
    now = time.monotonic_ns()
    waiters: dict[int, list[Any]] = {}
    parked = []
    for off, gs in sorted(rt.gtable.items(), key=lambda kv: kv[1].goid):
        if views.g_get(arena, off, "kind") & GKind.SYSTEM:
            continue
        if views.g_get(arena, off, "status") != _WAITING or gs is rt.current:
            continue
        objs = _waits_on(arena, off)
        if not objs:
            continue  # a sleep, a timer, pg.blocking, I/O: they wake by themselves
        for o in objs:
            waiters.setdefault(o, []).append(gs)
        text = dump.section(rt, gs, dump._state(rt, gs, off, now), dump._frames(rt, gs), system)
        parked.append([gs.goid, objs, text])
    # handles this P keeps only in the runtime's caches of goroutine
    # arguments (a pg.go's encoded payload, a start's decoded one): the
    # P's reference is then no goroutine's -- judged like the waiters' own
    cached: dict[int, Any] = {}
    for d, k in ((rt.start_cache.d, 1), (rt.spawner.payloads.d, 3)):  # where each keeps args (codec.py)
        for entry in list(d.values()):
            for a in entry[k] if len(entry) > k and isinstance(entry[k], tuple) else ():
                co = getattr(a, "_off", None)
                if isinstance(co, int) and getattr(a, "_rt", None) is rt and len(cached) < MAX_CACHED:
                    cached[co] = a
    objs_facts: dict[str, list] = {}
    if waiters or cached:
        keep = _live_frames(rt)
        ignore = {id(keep), id(waiters), id(parked)}
        # this very search (the leaks module's frames and the runtime's that called it)
        f: Any = sys._getframe()
        while f is not None:
            if report.is_runtime_file(f.f_code.co_filename):
                ignore.add(id(f))
            f = f.f_back
        frames = [f for f in keep if id(f) not in ignore]
        # the runtime's own caches of goroutine arguments: they start no goroutine that could wake one
        for d in (rt.start_cache.d, rt.spawner.payloads.d):
            ignore.add(id(d))
        modules = {id(vars(m)) for m in list(sys.modules.values()) if m is not None and hasattr(m, "__dict__")}
        todo: dict[int, list] = dict(waiters)
        for o in cached:
            todo.setdefault(o, [])
        cached.clear()
        for o, gss in todo.items():
            ref = rt.handles.get(o)
            h = ref() if ref is not None else None
            if h is None:
                objs_facts[str(o)] = [True, 0]  # no handle here: this P holds no reference
                continue
            ok: set[int] = set()
            for gs in gss:
                ok |= _own(rt, gs)
            excl = _only_waiters(h, ok, ignore, modules, frames)
            del h
            objs_facts[str(o)] = [excl, 1]
        del keep, frames
    return {"parked": parked, "objs": objs_facts}


def _answer_leaks(rt: Any) -> str:
    return json.dumps(_local_facts(rt))


def _other_ps(rt: Any, kind: int) -> list:
    """Every other P's answer to a ``kind`` request (dump.collect_parts),
    decoded: on P0 of a multi-P run, else none; a part that is not JSON is
    passed over."""
    out: list = []
    if rt.sup is not None and rt.nprocs > 1:
        parts, _ = dump.collect_parts(rt, kind)
        for part in parts:
            try:
                out.append(json.loads(part))
            except ValueError:
                pass
    return out


def find(rt: Any) -> list[Leaked]:
    """pg.debug.leaks(): the goroutines that can never wake, by goroutine id."""
    facts = _other_ps(rt, KIND_LEAKS)
    facts.append(_local_facts(rt))
    per_obj: dict[int, list] = {}  # obj -> [every P said excl, handles held by those Ps]
    for part in facts:
        for o, (excl, holds) in part["objs"].items():
            t = per_obj.setdefault(int(o), [True, 0])
            t[0] = t[0] and excl
            t[1] += holds
    rt.flush_decrefs()
    arena = rt.arena
    dead = set()
    for o, (excl, holds) in per_obj.items():
        refcnt = views.obj_refcnt(arena, o)
        # refcnt counts every holder, also the Ps not asked: an unexplained one keeps it alive
        if excl and refcnt == holds:
            dead.add(o)
    out = []
    for part in facts:
        for _goid, objs, text in part["parked"]:
            if objs and all(o in dead for o in objs):
                out.extend(parse(text))
    out.sort(key=lambda r: r.goid)
    return out


# ----------------------------------------------------------------------
# the goroutine profile (Go's pprof "goroutine" at debug=1)


def _local_stacks(rt: Any) -> list[list]:
    system = report.level() == "system"
    out = []
    for off, gs in sorted(rt.gtable.items(), key=lambda kv: kv[1].goid):
        if not system and views.g_get(rt.arena, off, "kind") & GKind.SYSTEM:
            continue
        frames = [
            [report.func_name(f), f.f_code.co_filename, line]
            for f, line in dump._frames(rt, gs)
            if system or not report.is_runtime_file(f.f_code.co_filename)
        ]
        out.append(frames)
    return out


def _answer_stacks(rt: Any) -> str:
    return json.dumps(_local_stacks(rt))


def goroutine_profile(rt: Any) -> str:
    """Every goroutine of every P grouped by stack, most common first, in
    Go's ``debug=1`` text: ``goroutine profile: total N``, then per stack
    ``count @ pcs`` and a ``#\\tpc\\tfunc+offset\\tfile:line`` line per
    frame.  Python frames have no PCs: a function's entry is a stable hash
    of its name and file, a frame's PC that plus 4 per line."""
    stacks = _local_stacks(rt)
    for part in _other_ps(rt, KIND_STACKS):
        stacks.extend(part)
    counts: dict[tuple, int] = {}
    for st in stacks:
        key = tuple((fn, file, line) for fn, file, line in st)
        counts[key] = counts.get(key, 0) + 1
    lines = [f"goroutine profile: total {len(stacks)}"]
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        pcs = [_pc(*fr) for fr in key]
        lines.append(f"{n} @ " + " ".join(f"{pc:#x}" for pc in pcs))
        for pc, (fn, file, line) in zip(pcs, key, strict=True):
            lines.append(f"#\t{pc:#x}\t{fn}+{pc - _entry(fn, file):#x}\t{file}:{line}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _entry(fn: str, file: str) -> int:
    """A function's made-up entry address: stable across runs and Ps."""
    return 0x400000 + (zlib.crc32(f"{fn}\0{file}".encode()) & 0xFFF) * 0x10000


def _pc(fn: str, file: str, line: int) -> int:
    return _entry(fn, file) + 4 * min(line, 0x3FFF)


dump.answers[KIND_LEAKS] = _answer_leaks
dump.answers[KIND_STACKS] = _answer_stacks
