"""The isolation checker (``parago run --race``, PARAGO_RACE=1).

Goroutines run on copies: a goroutine that mutates what it captured or
received (a closure cell, a mutable argument, a module global) makes a
write nobody else will ever see.  With the checker on, each goroutine's
captured state and arguments are encoded before it runs and compared when
it ends; a difference is reported on stderr with the variable's name and
the ``pg.go`` call site, and the program exits with status 66 (as
``go run -race``).  Assignments to globals and captured variables are also
found statically, at spawn (codec.captured_writes).

Through calls: the writes may be made by any function a goroutine calls,
not only by its own.  With the checker on, each P watches its hub thread:
a function's first call decides, from its code object once, whether it
can write a module global or a captured variable (STORE_GLOBAL,
STORE_DEREF of a free variable) and is the user's own (not parago's, the
standard library's or an installed package's); only such code gets
instruction events, and only those store instructions are looked at.
3.12+ uses sys.monitoring (PY_START, then INSTRUCTION on that code; every
other instruction is disabled after its first event): there, opcode
tracing asked for in settrace's call event starts only with a later call
(3.13-3.15) or never (3.12).  3.10-3.11 use ``sys.settrace`` opcode
events on the hub thread.  A global written by a goroutine other than
main is reported; a captured variable only when its cell came with the
goroutine's copies (a closure in what ``pg.go`` copied, found by walking
the function and its arguments), not one the goroutine made itself.  The
cost is one Python call per function call on the P's thread (Go's -race
costs 2-20x).
"""

from __future__ import annotations

import dis
import os
import pickle
import sys
import sysconfig
import threading
import types
from typing import Any, Callable

import greenlet

from .._shim import lib, views

_COUNT = views.hdr_offset("nraces")
_reported_last_run = 0


def _snapshot(fn: Callable, args: tuple, kw: dict) -> dict[str, bytes]:
    snap: dict[str, bytes] = {}

    def put(name: str, v: Any) -> None:
        try:
            snap[name] = pickle.dumps(v, 5)
        except Exception:
            pass

    for i, a in enumerate(args):
        put(f"argument {i}", a)
    for k, v in kw.items():
        put(f"keyword argument {k!r}", v)
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None) or ()
    if code is not None:
        for name, cell in zip(code.co_freevars, cells, strict=False):
            try:
                put(f"captured variable {name!r}", cell.cell_contents)
            except ValueError:
                pass
    self_ = getattr(fn, "__self__", None)
    if self_ is not None:
        put("bound self", self_)
    return snap


def before(fn: Callable, args: tuple, kw: dict) -> dict[str, bytes]:
    gs = getattr(greenlet.getcurrent(), "gs", None)  # run in the goroutine's own greenlet
    if gs is not None:
        started(gs, fn, args, kw)
    return _snapshot(fn, args, kw)


def after(rt: Any, gs: Any, fn: Callable, args: tuple, kw: dict, snap: dict[str, bytes]) -> None:
    _copied.pop(gs.off, None)
    now = _snapshot(fn, args, kw)
    changed = [k for k, v in snap.items() if now.get(k) != v]
    static = []
    code = getattr(fn, "__code__", None)
    if code is not None:
        from .codec import captured_writes

        static = list(captured_writes(code))
    if not changed and not static:
        return
    site = views.g_site(rt.arena, gs.off)
    # one name per variable, as the snapshot spells it ("captured variable 'x'")
    names = list(dict.fromkeys(changed + [_quoted(n) for n in static]))
    what = ", ".join(names)
    key = (site, what)
    if key in _seen:
        return  # Go reports a race once: the first goroutine of a site says it for all
    _seen.add(key)
    sys.stderr.write(
        "==================\n"
        f"WARNING: ISOLATION VIOLATION\n"
        f"goroutine {gs.goid} ({getattr(fn, '__qualname__', fn)}) wrote to {what}\n"
        f"  created by {site}\n"
        "  goroutines run on copies: that write is never seen by any other goroutine.\n"
        "  Use a channel, pg.atomic or a pg.Buffer to share it.\n"
        "==================\n"
    )
    sys.stderr.flush()
    if not rt.closed:
        lib.pg_word_add(rt.base, _COUNT, 1)


# (created-by site, variables) already reported by this P in this run
_seen: set[tuple] = set()


def _quoted(name: str) -> str:
    """captured_writes' "captured variable x" / "global x" as the snapshot's
    "captured variable 'x'" / "global 'x'"."""
    kind, _, var = name.rpartition(" ")
    return f"{kind} {var!r}" if kind else name


def reset() -> None:
    """A run with the checker starts in this process (its Runtime is being
    made, before any goroutine): reports start afresh, the hub thread is
    traced (writes through calls, below)."""
    global _prev_trace, _hub
    _seen.clear()
    _copied.clear()
    _hub = threading.get_ident()
    if _monitor():
        return
    _prev_trace = sys.gettrace()  # a coverage tool's or a debugger's: given back by uninstall
    sys.settrace(_on_call)


def count(rt: Any) -> int:
    return views.hdr(rt.arena, "nraces")


def remember(n: int) -> None:
    global _reported_last_run
    _reported_last_run += n


def reported() -> int:
    return _reported_last_run


# ----------------------------------------------------------------------
# through calls: tracing the hub thread

_STORES = {"STORE_GLOBAL": "global", "DELETE_GLOBAL": "global"}
_DEREFS = ("STORE_DEREF", "DELETE_DEREF")
_NOT_USER = tuple(
    sorted(
        {
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,  # parago
            os.path.dirname(os.path.abspath(greenlet.__file__)) + os.sep,
            *(
                os.path.abspath(p) + os.sep
                for k in ("stdlib", "platstdlib", "purelib", "platlib")
                if (p := sysconfig.get_paths().get(k))
            ),
        }
    )
)
# code -> {instruction offset: (kind, name)} of its writes ({} = none: not traced)
_code_writes: dict[types.CodeType, dict[int, tuple[str, str]]] = {}
# goroutine offset -> (its function's code, the (code, free variable) pairs
# whose cells came with its copies)
_copied: dict[int, tuple[Any, frozenset]] = {}
_prev_trace: Any = None
_hub = 0  # the thread reset ran on: the P's hub, the only one watched
# 3.12+: sys.monitoring and the tool id the checker holds while a run is on
_MON: Any = getattr(sys, "monitoring", None)
_TOOLS = (4, 3)  # the ids no standard tool names (debugger 0, coverage 1, profiler 2, optimizer 5)
_tool: int | None = None


def _writes(code: types.CodeType) -> dict[int, tuple[str, str]]:
    w = _code_writes.get(code)
    if w is None:
        w = {}
        name = code.co_filename
        if not (name.startswith(_NOT_USER) or name.startswith("<frozen")):
            free = set(code.co_freevars)
            for ins in dis.get_instructions(code):
                if ins.opname in _STORES:
                    w[ins.offset] = ("global", str(ins.argval))
                elif ins.opname in _DEREFS and ins.argval in free:
                    w[ins.offset] = ("captured variable", str(ins.argval))
        _code_writes[code] = w
    return w


def _on_call(frame: Any, event: str, arg: Any) -> Any:
    code = frame.f_code
    w = _code_writes.get(code)
    if w is None:
        w = _writes(code)
    if not w:
        return None
    frame.f_trace_lines = False
    frame.f_trace_opcodes = True
    return _on_opcode


def _on_opcode(frame: Any, event: str, arg: Any) -> Any:
    if event == "opcode":
        hit = _code_writes[frame.f_code].get(frame.f_lasti)
        if hit is not None:
            _wrote(frame, hit)
    return _on_opcode


def _monitor() -> bool:
    """Watch the hub thread with sys.monitoring (3.12+); False: not
    available (3.10-3.11) or every free tool id is taken -- settrace then."""
    global _tool
    if _MON is None:
        return False
    if _tool is None:
        for t in _TOOLS:
            if _MON.get_tool(t) is None:
                _MON.use_tool_id(t, "parago race")
                _tool = t
                break
        else:
            return False
    ev = _MON.events
    _MON.register_callback(_tool, ev.PY_START, _on_start)
    _MON.register_callback(_tool, ev.INSTRUCTION, _on_instruction)
    _MON.set_events(_tool, ev.PY_START)
    for code, w in _code_writes.items():  # judged in an earlier run: PY_START is not asked again
        if w:
            _MON.set_local_events(_tool, code, ev.INSTRUCTION)
    return True


def _on_start(code: types.CodeType, offset: int) -> Any:
    w = _code_writes.get(code)
    if w is None:
        w = _writes(code)
    if w and _tool is not None:
        _MON.set_local_events(_tool, code, _MON.events.INSTRUCTION)
    return _MON.DISABLE  # judged once: its writes (if any) are watched from now on


def _on_instruction(code: types.CodeType, offset: int) -> Any:
    hit = _code_writes[code].get(offset)
    if hit is None:
        return _MON.DISABLE  # not a store: never asked again
    if threading.get_ident() == _hub:
        _wrote(sys._getframe(1), hit)
    return None


def _current(rt: Any) -> Any:
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if gs is None and rt.task_gs:
        import asyncio

        try:
            gs = rt.task_gs.get(asyncio.current_task(rt.loop))
        except RuntimeError:
            gs = None
    return gs


def _wrote(frame: Any, hit: tuple[str, str]) -> None:
    from . import state

    rt = state.rt
    if rt is None or rt.closed or not rt.race:
        return
    gs = _current(rt)
    if gs is None or gs is rt.main_gs:
        return  # main runs in the caller's process: its writes are seen by main
    kind, name = hit
    code = frame.f_code
    own, copied = _copied.get(gs.off, (None, frozenset()))
    if code is own:
        return  # the goroutine's own function: reported from its code when it ends (after)
    if kind == "captured variable" and (code, name) not in copied:
        return  # a cell the goroutine made itself (a closure of its own)
    from .report import func_name

    fn = func_name(frame)
    if not hasattr(code, "co_qualname"):  # 3.10: the qualified name is the function's
        fn = fn[: len(fn) - len(code.co_name)] + _qualname(code)
    site = views.g_site(rt.arena, gs.off)
    what = f"{kind} {name!r}"
    key = (site, fn, what)
    if key in _seen:
        return
    _seen.add(key)
    sys.stderr.write(
        "==================\n"
        "WARNING: ISOLATION VIOLATION\n"
        f"goroutine {gs.goid} wrote to {what} in {fn}\n"
        f"      {code.co_filename}:{frame.f_lineno}\n"
        f"  created by {site}\n"
        "  goroutines run on copies: that write is never seen by any other goroutine.\n"
        "  Use a channel, pg.atomic or a pg.Buffer to share it.\n"
        "==================\n"
    )
    sys.stderr.flush()
    lib.pg_word_add(rt.base, _COUNT, 1)


def _qualname(code: types.CodeType) -> str:
    """The __qualname__ of a function running code (3.10 has no
    co_qualname): found once per report, among code's referrers."""
    import gc

    for r in gc.get_referrers(code):
        if isinstance(r, types.FunctionType) and r.__code__ is code:
            return str(r.__qualname__)
    return code.co_name


def started(gs: Any, fn: Callable, args: tuple, kw: dict) -> None:
    """A goroutine starts (checker on): remember which captured cells came
    with its copies -- its function's closure and, through the functions
    in it and in its arguments, theirs."""
    pairs = set()
    todo = [fn, *args, *kw.values()]
    seen: set[int] = set()
    while todo and len(seen) < 1000:
        f = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        f = getattr(f, "__func__", f)  # a bound method's function
        code = getattr(f, "__code__", None)
        cells = getattr(f, "__closure__", None)
        if code is None or not cells:
            continue
        for var, cell in zip(code.co_freevars, cells, strict=False):
            pairs.add((code, var))
            try:
                v = cell.cell_contents
            except ValueError:
                continue
            if callable(v):
                todo.append(v)
    _copied[gs.off] = (getattr(fn, "__code__", None), frozenset(pairs))


def uninstall() -> None:
    """P0, when pg.run ends: code after it runs as it did before."""
    global _prev_trace, _tool
    if _tool is not None:
        _MON.set_events(_tool, 0)
        for code, w in _code_writes.items():
            if w:
                _MON.set_local_events(_tool, code, 0)
        _MON.register_callback(_tool, _MON.events.PY_START, None)
        _MON.register_callback(_tool, _MON.events.INSTRUCTION, None)
        _MON.free_tool_id(_tool)
        _tool = None
    else:
        sys.settrace(_prev_trace)
    _prev_trace = None
    _copied.clear()
