"""The isolation checker (``parago run --race``, PARAGO_RACE=1).

Goroutines run on copies: a goroutine that mutates what it captured or
received (a closure cell, a mutable argument, a module global) makes a
write nobody else will ever see.  With the checker on, each goroutine's
captured state and arguments are encoded before it runs and compared when
it ends; a difference is reported on stderr with the variable's name and
the ``pg.go`` call site, and the program exits with status 66 (as
``go run -race``).  Assignments to globals and captured variables are also
found statically, at spawn (codec.captured_writes).
"""

from __future__ import annotations

import pickle
import sys
from typing import Any, Callable

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
    return _snapshot(fn, args, kw)


def after(rt: Any, gs: Any, fn: Callable, args: tuple, kw: dict, snap: dict[str, bytes]) -> None:
    now = _snapshot(fn, args, kw)
    changed = [k for k, v in snap.items() if now.get(k) != v]
    static = []
    code = getattr(fn, "__code__", None)
    if code is not None:
        from .codec import captured_writes

        static = list(captured_writes(code))
    if not changed and not static:
        return
    site = rt.goroutine_site(gs)
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
_seen: set[tuple[str, str]] = set()


def _quoted(name: str) -> str:
    """captured_writes' "captured variable x" / "global x" as the snapshot's
    "captured variable 'x'" / "global 'x'"."""
    kind, _, var = name.rpartition(" ")
    return f"{kind} {var!r}" if kind else name


def reset() -> None:
    _seen.clear()


def count(rt: Any) -> int:
    return views.hdr(rt.arena, "nraces")


def remember(n: int) -> None:
    global _reported_last_run
    _reported_last_run += n


def reported() -> int:
    return _reported_last_run
