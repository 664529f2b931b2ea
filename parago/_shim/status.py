"""The one place where a shim status code becomes an exception (STYLE 11).

Every C entry point returns a ``PG_*`` status (or a value >= 0).  Control
statuses (``PG_PARKED``, ``PG_WOULDBLOCK``, ``PG_BIG``, ``PG_RUNFN``) are
the caller's to act on; an *error* status is turned into the exception
its operation raises in Go's words by :func:`check`, keyed by the status
and the operation's name:

    r = fast.pg_chan_close(base, ch)
    check(r, "close")              # PG_CLOSED -> ClosedChannelError("close of closed channel")

``PG_LOST`` (a lock's owner P died: the run is aborted, the object was not
touched) is turned into whatever the runtime says -- ``WorkerLost`` naming
the dead P in P0, ``Shutdown`` elsewhere -- through :func:`set_lost_handler`,
since only the runtime knows which P this is and which P died
(_runtime/deathwatch.py installs it when a P starts, pg.run removes it).
Outside a run the default handler's ParagoError says what happened.
"""

from __future__ import annotations

from typing import Callable

from .._errors import ClosedChannelError, OutOfSharedMemory, ParagoError, SyncError
from . import BIG, CLOSED, CONST, INVAL, NEGATIVE, NOMEM, OK, PARKED, RUNFN, UNLOCKED, WOULDBLOCK

LOST = CONST["PG_LOST"]

# (status, op) -> the exception's text; op "" matches any operation
_TEXT: dict[tuple[int, str], str] = {
    (CLOSED, "send"): "send on closed channel",
    (CLOSED, "close"): "close of closed channel",
    (NEGATIVE, "wg.add"): "sync: negative WaitGroup counter",
    (UNLOCKED, "mutex.unlock"): "sync: unlock of unlocked mutex",
    (UNLOCKED, "rw.unlock"): "sync: Unlock of unlocked RWMutex",
    (UNLOCKED, "rw.runlock"): "sync: RUnlock of unlocked RWMutex",
    (NEGATIVE, "sema.release"): "semaphore: released more than held",
}
_KIND = {CLOSED: ClosedChannelError, NEGATIVE: SyncError, UNLOCKED: SyncError}

_arena_limit = 0


def _default_lost() -> BaseException:
    return ParagoError("a P of this program died while holding a lock of the shared arena")


_lost: Callable[[], BaseException] = _default_lost


def set_lost_handler(fn: Callable[[], BaseException] | None, arena_limit: int = 0) -> None:
    """The runtime's say on PG_LOST (None: back to the default) and the
    arena's size limit (named by OutOfSharedMemory)."""
    global _lost, _arena_limit
    _lost = fn or _default_lost
    _arena_limit = arena_limit


def error(status: int, op: str, nbytes: int = 0) -> BaseException:
    """The exception for an error status of operation ``op``."""
    text = _TEXT.get((status, op))
    if text is not None:
        return _KIND[status](text)
    if status == NOMEM:
        return OutOfSharedMemory.for_size(nbytes, _arena_limit)
    if status == LOST:
        return _lost()
    if status == INVAL:
        return ValueError(f"{op}: invalid argument")
    return RuntimeError(f"{op}: unexpected status {status}")


def check(status: int, op: str, nbytes: int = 0) -> int:
    """Return ``status`` unless it is an error status of ``op``: then raise.

    Errors: PG_NOMEM, PG_LOST, PG_INVAL, PG_SYSERR, PG_BADLAYOUT, and
    PG_CLOSED / PG_NEGATIVE / PG_UNLOCKED where ``op`` makes them one.
    """
    if status >= OK or status == PARKED or status == WOULDBLOCK or status == BIG or status == RUNFN:
        return status
    if status == CLOSED and (CLOSED, op) not in _TEXT:
        return status
    raise error(status, op, nbytes)
