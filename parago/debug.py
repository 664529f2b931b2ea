"""pg.debug: goroutine dumps."""

from __future__ import annotations

import sys
from typing import IO

from ._runtime import dump as _dump
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
    if _dump.cluster_part is not None and rt.sup is not None:  # a cluster run: every node's goroutines
        text += _dump.cluster_part()
    if file is not None:
        file.write(text)
        file.flush()
    return text


def print_dump() -> None:
    dump(sys.stderr)


__all__ = ["dump", "print_dump"]
