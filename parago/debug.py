"""pg.debug: goroutine dumps, leaked goroutines, the goroutine profile."""

from __future__ import annotations

import sys
from typing import IO

from ._runtime import leaks as _leaks
from ._runtime.cluster import hooks
from ._runtime.leaks import Leaked as Leaked
from ._runtime.sched import need_rt


def dump(file: IO[str] | None = None) -> str:
    """Return (and with ``file``, write) a dump of every goroutine on every P:
    ``goroutine 7 [chan receive, 3 s]:``, its Python stack and ``created by``.
    A P busy in a goroutine that does not yield is reported as unresponsive.
    In a cluster run (from a node's main P) every other node's goroutines
    follow, under ``--- node N ---`` (goroutine ids are per node).
    """
    rt = need_rt("pg.debug.dump")
    text = rt.sup.collect_dump() if rt.sup is not None else rt.dump_text()
    node = hooks.node
    if node is not None and rt.sup is not None:  # a cluster run: every node's goroutines
        text += node.dump_others()
    if file is not None:
        file.write(text)
        file.flush()
    return text


def print_dump() -> None:
    dump(sys.stderr)


def leaks() -> list[Leaked]:
    """The goroutines that can never wake (Go 1.26's goroutine leak
    profile): parked on channels or sync objects that no other goroutine
    holds a handle to -- from the arena's reference counts and each P's
    own references.  One record per goroutine (``goid``, ``wait_reason``,
    ``stack``, ``created_by``), by id.  A goroutine parked on an object
    another goroutine (or a module global, or a value in flight) still
    holds is not reported, nor one that sleeps or waits for I/O.  Blocks
    while every P answers (briefly).  Called from a goroutine on a P other
    than P0, only that P's goroutines can be judged.
    """
    return _leaks.find(need_rt("pg.debug.leaks"))


def goroutine_profile() -> str:
    """Every goroutine of every P grouped by stack, in Go's ``debug=1``
    text (``goroutine profile: total N``, then ``count @ pcs`` and a
    ``#\tpc\tfunc+offset\tfile:line`` line per frame, most common stack
    first; Python has no PCs: they are made up, stable per function and line)."""
    return _leaks.goroutine_profile(need_rt("pg.debug.goroutine_profile"))


__all__ = ["dump", "print_dump", "leaks", "goroutine_profile", "Leaked"]
