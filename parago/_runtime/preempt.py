"""Time slices and preemption (the seed's §1.1: Go 1.14's preemptive scheduler).

A goroutine that has run for 10 ms while another goroutine of its P is
runnable is asked to yield.  The asking is C: the P's sysmon thread
(shm/sysmon.c) sees the P's schedtick stuck for a slice while work is
runnable, bumps ``pg_p.preempt`` and sends SIGUSR2 to the hub thread.
The Python handler runs in that thread between two bytecodes of the
running goroutine, and then either

  * yields right there (*asynchronous* preemption), when the interrupted
    code is at a safe point -- only user code on the goroutine's stack,
    none of it parago's runtime, the stdlib (threading, logging, import
    machinery, queue, ... hold locks in Python code), a ``__del__`` /
    ``__enter__`` / ``__exit__``, or a frame that references a
    ``threading`` lock it holds; or
  * marks the P (``rt.attn``/``rt.preempt_pending``) so the goroutine
    yields at its next parago operation (*synchronous* preemption: every
    channel, select, sync, atomic, timer and sleep call checks one
    attribute on its fast path, the check it already made for a closed
    runtime).  sysmon signals again while the P stays stuck.

    sysmon (C thread)             hub thread (Python)
    -----------------             ------------------------------------
    schedtick stuck 10 ms,        handler(frame): safe point?
    runnable work on the P          yes: yielded.append(g); hub.switch()
    -> preempt++, SIGUSR2           no:  attn = True -> yield at the next
                                         parago operation

A yielded goroutine goes to the back of the P's ``yielded`` queue (Go puts
preempted goroutines on the global run queue; a started goroutine cannot
leave its P), so CPU-bound goroutines of one P share it round robin.

What it cannot interrupt: a long C call (a C extension, ``time.sleep``,
a regex match) -- the handler runs when it returns, as a cgo call in Go;
an ``async def`` goroutine (a task cannot be suspended from outside an
``await``).  ``PARAGO_DEBUG=asyncpreemptoff=1`` (Go's name) turns the
asynchronous form off: goroutines then yield only at parago operations.
"""

from __future__ import annotations

import os
import sysconfig
import threading
from typing import Any

import greenlet

from .schedtrace import parse_debug

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STDLIB = tuple(
    {os.path.abspath(p) + os.sep for p in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])}
)
_SITE = tuple({os.path.abspath(p) + os.sep for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])})
_DUNDER = frozenset({"__del__", "__enter__", "__exit__", "__aenter__", "__aexit__", "__init_subclass__"})

_LOCK_TYPES = (type(threading.Lock()),)
_RLOCK_TYPES = (type(threading.RLock()),)

# filename -> unsafe?  (a code object's file never changes)
_file_unsafe: dict[str, bool] = {}


def async_enabled() -> bool:
    return not parse_debug(os.environ.get("PARAGO_DEBUG")).get("asyncpreemptoff", 0)


def _unsafe_file(name: str) -> bool:
    r = _file_unsafe.get(name)
    if r is None:
        path = os.path.abspath(name) if not name.startswith("<") else name
        if name.startswith("<"):
            # <frozen importlib._bootstrap>, <string> from exec: the import
            # machinery (and anything we cannot see) is not a safe point
            r = name.startswith("<frozen")
        elif path.startswith(_PKG):
            r = True
        elif path.startswith(_STDLIB) and not path.startswith(_SITE):
            r = True
        else:
            r = False
        _file_unsafe[name] = r
    return r


def _held(v: Any) -> bool:
    """v is a threading lock (or a Condition/Semaphore around one) that is
    held.  Only exact known types are looked into: an arbitrary object's
    attributes are never touched (a ``__getattr__`` could run code)."""
    t = type(v)
    try:
        if t in _LOCK_TYPES:
            return v.locked()
        if t in _RLOCK_TYPES:
            return v._is_owned()
        if t is threading.Condition:
            return _held(v._lock)
        if t is threading.Semaphore or t is threading.BoundedSemaphore:
            return _held(v._cond._lock)
    except Exception:
        return True  # cannot tell: not a safe point
    return False


def _frame_holds_lock(f: Any) -> bool:
    """A lock this frame can reach -- its locals, the attributes of its
    ``self``, its module's globals -- is held: a ``with lock:`` or
    ``lock.acquire()`` around the interrupted code.  Conservative: a lock
    held by another thread also makes the frame unsafe (then the goroutine
    yields at its next parago operation, or at a later signal)."""
    try:
        loc = f.f_locals
        vals = list(loc.values())
        me = loc.get("self")
        d = getattr(me, "__dict__", None) if me is not None else None
        if isinstance(d, dict):
            vals.extend(d.values())
        vals.extend(f.f_globals.values())
    except Exception:
        return True
    return any(_held(v) for v in vals)


# code objects that call a goroutine's user function: the runtime's entry
# (sched._call) and API wrappers such as pg.future's and ErrGroup's runners
# (registered by their modules).  A safe-point walk stops at the first one.
ENTRY_CODES: set = set()


def goroutine_entry(fn: Any) -> Any:
    """Register fn's code as an entry into user code (a decorator)."""
    ENTRY_CODES.add(fn.__code__)
    return fn


def safe_point(frame: Any) -> bool:
    """True if the goroutine interrupted at ``frame`` may be switched out.

    Walks from the interrupted frame to the goroutine's entry (ENTRY_CODES);
    if the walk never reaches one, this is not a goroutine's own code."""
    f = frame
    while f is not None:
        code = f.f_code
        if code in ENTRY_CODES:
            return True
        if _unsafe_file(code.co_filename) or code.co_name in _DUNDER or _frame_holds_lock(f):
            return False
        f = f.f_back
    return False


def on_signal(rt: Any, frame: Any) -> None:
    """SIGUSR2 with SYS_PREEMPT: yield now at a safe point, else at the next
    parago operation.  Runs in the hub thread (Python signal handlers run in
    the main thread), between two bytecodes of whatever is running."""
    gs = rt.current
    if gs is None or rt.closed or rt.shutting_down:
        return  # the hub itself is running: it is about to schedule anyway
    gr = greenlet.getcurrent()
    if getattr(gr, "gs", None) is not gs or gs.__class__.__name__ != "GreenletG":
        return  # a task (cannot be suspended from outside) or not a goroutine
    if rt.async_preempt and safe_point(frame):
        rt.yield_preempted(gs)
    else:
        rt.preempt_pending = True
        rt.attn = True
