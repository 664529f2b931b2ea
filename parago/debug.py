"""pg.debug: goroutine dumps."""

from __future__ import annotations

import sys
from typing import IO

from ._runtime.sched import need_rt


def dump(file: IO[str] | None = None) -> str:
    """Return (and with ``file``, write) a dump of every goroutine on every P:
    ``goroutine 7 [chan receive, 3 s]:``, its Python stack and ``created by``.
    A P busy in a goroutine that does not yield is reported as unresponsive.
    """
    rt = need_rt("pg.debug.dump")
    text = rt.sup.collect_dump() if rt.sup is not None else rt.dump_text()
    if file is not None:
        file.write(text)
        file.flush()
    return text


def print_dump() -> None:
    dump(sys.stderr)


__all__ = ["dump", "print_dump"]
