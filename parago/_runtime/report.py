"""What a user reads when a program fails or is dumped: Go's crash report
shape, and the program's own output, in the order it was printed.

A crash report reads as Go's (DESIGN §1 "Diagnostics"):

    panic: ValueError: bad item 3             fatal error: all goroutines are asleep - deadlock!

    goroutine 5 [running]:                    goroutine 1 [chan receive, 3 s]:
    __main__.work(...)                        __main__.main(...)
            /src/prog.py:5                            /src/prog.py:12
                raise ValueError(...)                     ch.recv()
    created by __main__.main in goroutine 1
            /src/prog.py:11

Frames are innermost first (Go's order, so a goroutine's `created by`
follows its outermost frame) and only the user's: parago's own frames
(the whole ``parago`` package: runtime, channels, sync, the CLI), greenlet's
and runpy's are hidden, as Go hides ``runtime.*``.  System goroutines
(context propagation, adopted asyncio tasks) are hidden as Go hides its
own.  ``PARAGO_TRACEBACK`` is Go's ``GOTRACEBACK``:

    single   a panic shows the failing goroutine only
    all      (default) every goroutine, the failing one first
    system   also parago's frames and system goroutines, each goroutine's
             P and pid (``goroutine 7 p=1 pid=4242 [chan receive]:``, as Go
             adds ``m=``) and a panic's Python traceback with its chain

Each P formats its own goroutines (their frames live in its memory); P0
merges the parts (dump.collect_dump), ordered by goroutine id.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import re
import runpy
import signal
import sys
import traceback
from types import FrameType, TracebackType
from typing import Any, Iterator

import greenlet

from .._shim import CONST

LEVELS = ("single", "all", "system")
MAX_FRAMES = 100  # Go prints at most 100 frames of a goroutine, then "...additional frames elided..."

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_HIDDEN = (_PKG, os.path.dirname(os.path.abspath(greenlet.__file__)) + os.sep)
_RUNPY = ("<frozen runpy>", os.path.abspath(runpy.__file__))
_SECTION = re.compile(r"\n\n(?=goroutine \d+ )")
_GOID = re.compile(r"goroutine (\d+) ")
_SITE = re.compile(r"^(\S+) (.+:\d+)$")


def level() -> str:
    """PARAGO_TRACEBACK, read at each report (every P inherits it); unknown -> all."""
    v = os.environ.get("PARAGO_TRACEBACK", "all").strip().lower()
    return v if v in LEVELS else "all"


def is_runtime_file(filename: str) -> bool:
    """Is this a frame of parago itself (or greenlet/runpy), hidden from reports?"""
    return filename.startswith(_HIDDEN) or filename in _RUNPY


def func_name(frame: FrameType) -> str:
    """``module.qualname`` (Go's ``main.work``); a spawned P's ``__mp_main__`` is ``__main__``."""
    mod = frame.f_globals.get("__name__") or "?"
    if mod == "__mp_main__":
        mod = "__main__"
    code = frame.f_code
    return f"{mod}.{getattr(code, 'co_qualname', code.co_name)}"


def site(frame: FrameType) -> str:
    """A goroutine's created-by text, ``creator file:line``, made to fit the
    arena's PG_SITE bytes by shortening the path's head (the creator's name
    and the file's own name are what a reader needs)."""
    return fit_site(func_name(frame) + " ", f"{frame.f_code.co_filename}:{frame.f_lineno}")


def fit_site(head: str, tail: str) -> str:
    """head + tail in the arena's PG_SITE bytes: tail's start gives way."""
    room = CONST["PG_SITE"] - 1 - len(head.encode())
    if len(tail.encode()) > room:
        tail = "..." + tail.encode()[-max(room - 3, 8) :].decode(errors="ignore")
    return head + tail


def wait_state(reason: str, waited_s: float) -> str:
    """``chan receive`` / ``chan receive, 3 s`` (Go shows a wait of a minute or more)."""
    if waited_s < 1:
        return reason
    return f"{reason}, {int(waited_s)} seconds" if waited_s >= 60 else f"{reason}, {waited_s:.0f} s"


# ----------------------------------------------------------------------
# stacks: (frame, line) pairs, innermost first


def tb_frames(tb: TracebackType | None) -> list[tuple[FrameType, int]]:
    """The frames of an exception's traceback, innermost first."""
    out = []
    while tb is not None:
        out.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    out.reverse()
    return out


def chain_frames(frame: FrameType | None) -> list[tuple[FrameType, int]]:
    """A live (or parked greenlet's) frame and its callers, innermost first."""
    out = []
    while frame is not None:
        out.append((frame, frame.f_lineno))
        frame = frame.f_back
    return out


def coro_frames(coro: Any) -> list[tuple[FrameType, int]]:
    """A suspended coroutine's await chain (outer coroutine ... the one that
    awaits a future), innermost first: its frames' f_back is None, so the
    chain is followed through cr_await / gi_yieldfrom."""
    out = []
    while coro is not None:
        f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if f is not None:
            out.append((f, f.f_lineno))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    out.reverse()
    return out


def format_frames(frames: list[tuple[FrameType, int]], system: bool) -> list[str]:
    lines: list[str] = []
    shown = [fl for fl in frames if system or not is_runtime_file(fl[0].f_code.co_filename)]
    if len(shown) > MAX_FRAMES:
        half = MAX_FRAMES // 2
        n = len(shown) - MAX_FRAMES
        shown = [*shown[:half], None, *shown[-half:]]  # type: ignore[list-item]
    for fl in shown:
        if fl is None:
            lines.append(f"...{n} frames elided...")
            continue
        f, lineno = fl
        filename = f.f_code.co_filename
        lines.append(f"{func_name(f)}(...)")
        lines.append(f"\t{filename}:{lineno}")
        src = linecache.getline(filename, lineno, f.f_globals).strip()
        if src:
            lines.append(f"\t    {src}")
    return lines


def created_by(site_text: str, parent: int) -> list[str]:
    """Go's ``created by main.main in goroutine 1`` + the indented ``file:line``;
    nothing for main (created by pg.run, as Go prints nothing for goroutine 1)."""
    if not site_text or (site_text == "pg.run" and not parent):
        return []
    in_g = f" in goroutine {parent}" if parent else ""
    m = _SITE.match(site_text)
    if m is None:
        return [f"created by {site_text}{in_g}"]
    creator, at, node = m.group(1).partition("@node")
    if at:  # started here by another node of a cluster run (placement spread)
        return [f"created by {creator} on node {node}", f"\t{m.group(2)}"]
    return [f"created by {creator}{in_g}", f"\t{m.group(2)}"]


def goroutine(
    goid: int,
    state: str,
    frames: list[tuple[FrameType, int]],
    site_text: str,
    parent: int,
    where: str = "",
    system: bool = False,
) -> str:
    """One goroutine's section: ``goroutine 7 [chan receive, 3 s]:``, its
    frames, ``created by``.  ``where`` ("p=1 pid=4242") is shown in system mode."""
    head = f"goroutine {goid} {where} [{state}]:" if system and where else f"goroutine {goid} [{state}]:"
    return "\n".join([head, *format_frames(frames, system), *created_by(site_text, parent)])


def merge(parts: list[str], skip_goid: int | None = None) -> str:
    """Every P's dump as one, ordered by goroutine id (Go lists goroutine 1
    first); lines that are no goroutine (an unresponsive P) come last."""
    gs: list[tuple[int, str]] = []
    rest: list[str] = []
    for part in parts:
        for sec in _SECTION.split(part.strip("\n")):
            if not sec:
                continue
            m = _GOID.match(sec)
            if m is None:
                rest.append(sec)
            elif int(m.group(1)) != skip_goid:
                gs.append((int(m.group(1)), sec))
    gs.sort(key=lambda t: t[0])
    return "\n\n".join([s for _, s in gs] + rest)


def exit_how(code: int | None) -> str:
    """How a process ended, in the words of Go's os/exec: ``exit status 1``,
    ``killed by signal SIGKILL``."""
    if code is None:
        return "exit status unknown"
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"killed by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


# ----------------------------------------------------------------------
# an ordinary exception (escaping main, or the script) for `parago run`


def format_exception(e: BaseException, system: bool | None = None) -> str:
    """Python's traceback text of ``e`` and its chain, without parago's,
    greenlet's and runpy's frames (all of them with PARAGO_TRACEBACK=system)."""
    te = traceback.TracebackException(type(e), e, e.__traceback__)
    if not (level() == "system" if system is None else system):
        seen: set[int] = set()
        todo = [te]
        while todo:
            t = todo.pop()
            if id(t) in seen:
                continue
            seen.add(id(t))
            t.stack = traceback.StackSummary.from_list([fs for fs in t.stack if not is_runtime_file(fs.filename)])
            todo.extend(x for x in (t.__cause__, t.__context__, *(getattr(t, "exceptions", None) or ())) if x)
    return "".join(te.format())


# ----------------------------------------------------------------------
# output order


@contextlib.contextmanager
def line_buffered() -> Iterator[None]:
    """stdout and stderr write each line when it is complete (also into a
    pipe or a file), so lines printed by goroutines on different Ps reach
    the pipe in the order they were printed, as Go's unbuffered os.Stdout
    does; the previous buffering is restored (and flushed) afterwards."""
    old: list[tuple[Any, bool]] = []
    for s in (sys.stdout, sys.stderr):
        reconf = getattr(s, "reconfigure", None)
        if reconf is None:
            continue  # replaced by something that is no TextIOWrapper: leave it alone
        try:
            was = bool(s.line_buffering)
            reconf(line_buffering=True)
        except (ValueError, OSError, AttributeError):
            continue
        old.append((reconf, was))
    try:
        yield
    finally:
        for reconf, was in old:
            try:
                reconf(line_buffering=was)
            except (ValueError, OSError):
                pass
