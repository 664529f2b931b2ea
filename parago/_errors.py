"""parago's exceptions (DESIGN §1 "Errors").

Every error is a :class:`ParagoError` except :class:`Shutdown`, a
``BaseException`` raised in goroutines being unwound at teardown so that
``except Exception`` does not swallow it.  Messages use Go's words where Go
has them (STYLE 14).
"""

from __future__ import annotations

import pickle


class ParagoError(Exception):
    """Base class of parago's errors."""


class Panic(ParagoError):
    """An uncaught exception in a goroutine ended the program.

    Attributes: ``goid``, ``exc_type`` (the original type's name),
    ``message``, ``remote_traceback`` (the Python traceback text, every
    frame), ``stack`` (the goroutine's ``goroutine N [running]:`` section)
    and ``dump`` (every other goroutine).  ``__cause__`` is the original
    exception when it could be rebuilt in this process.  Its text is Go's
    report: ``panic: ValueError: bad item 3``, a blank line, the goroutine
    that raised, then the others.
    """

    def __init__(
        self,
        goid: int = 0,
        exc_type: str = "",
        message: str = "",
        remote_traceback: str = "",
        stack: str = "",
        dump: str = "",
    ) -> None:
        self.goid = goid
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback
        self.stack = stack
        self.dump = dump
        super().__init__(goid, exc_type, message, remote_traceback, stack, dump)

    def __str__(self) -> str:
        head = f"panic: {self.exc_type}: {self.message}" if self.message else f"panic: {self.exc_type}"
        body = self.stack
        if not body and self.remote_traceback:
            body = f"goroutine {self.goid} [running]:\n{self.remote_traceback.rstrip()}"
        return _report(head, body, self.dump)


# Go's checkdead when main called runtime.Goexit and every other goroutine is done
GOEXIT_DEADLOCK = "no goroutines (main called runtime.Goexit) - deadlock!"


class Deadlock(ParagoError):
    """fatal error: all goroutines are asleep - deadlock! (``dump``: every
    goroutine; ``head``: the line after "fatal error: ", Go's other wording
    when main called pg.goexit() and nothing else is left)."""

    def __init__(self, dump: str = "", head: str | None = None) -> None:
        self.dump = dump
        self.head = head or "all goroutines are asleep - deadlock!"
        if head is None:
            super().__init__(dump)
        else:
            super().__init__(dump, head)

    def __str__(self) -> str:
        return _report(f"fatal error: {self.head}", self.dump)


def _report(head: str, *sections: str) -> str:
    """Go's crash report: the first line, then each section after a blank line."""
    return "\n\n".join([head, *(s.strip("\n") for s in sections if s and s.strip())])


class GoroutineLeak(ParagoError):
    """Goroutines were still alive when main returned (``pg.run(main,
    leaks="error")``, ``PARAGO_DEBUG=leakcheck=1``; Uber's goleak for Go).

    ``goroutines``: one record per leaked goroutine (``goid``,
    ``wait_reason``, ``stack``, ``created_by``); ``dump``: their sections in
    Go's shape.  Its text::

        found unexpected goroutines: 1 still alive after main returned

        goroutine 7 [chan receive]:
        __main__.worker(...)
        ...
    """

    def __init__(self, goroutines: list | None = None, dump: str = "", alive: int = 0) -> None:
        self.goroutines = list(goroutines or ())
        self.dump = dump
        # goroutines alive program-wide (some may not be listed: not yet
        # started, or on a P that did not answer)
        self.alive = max(alive, len(self.goroutines))
        super().__init__(self.goroutines, dump, alive)

    def __str__(self) -> str:
        head = f"found unexpected goroutines: {self.alive} still alive after main returned"
        return _report(head, self.dump)


class ClosedChannelError(ParagoError):
    """send on closed channel / close of closed channel."""


class EndOfChannel(ParagoError):
    """recv on a closed, drained channel."""


class ChanTypeError(ParagoError, TypeError):
    """A value of the wrong type was sent on a typed channel."""


class DecodeError(ParagoError):
    """A received value could not be decoded in this P."""


class EncodeError(ParagoError, TypeError, pickle.PicklingError):
    """A value (or a goroutine's function/arguments) cannot be copied to another P."""


class SyncError(ParagoError):
    """Misuse of a sync primitive (Go's fatal "sync: ..." errors)."""


class OutOfSharedMemory(ParagoError, MemoryError):
    """The shared arena is full."""

    @classmethod
    def for_size(cls, n: int, limit: int) -> "OutOfSharedMemory":
        return cls(
            f"the shared arena cannot hold {n} more bytes (limit {limit} bytes); "
            f"raise it with PARAGO_ARENA_SIZE (e.g. PARAGO_ARENA_SIZE=8G)"
        )


class NotInRuntime(ParagoError):
    """parago was used outside pg.run, or with a handle from an earlier run."""


class WorkerLost(ParagoError):
    """A P process died: ``p``, ``how`` (its exit status or signal),
    ``goroutines`` (what it held), ``pid``, and ``dump`` (the goroutines of
    the Ps that survive).  Its text reads as a Go fatal error::

        fatal error: P1 died (killed by signal SIGKILL)
        [P1 (pid 4242) held 3 started goroutines (their state died with the process)]

        goroutine 1 [chan receive]:
        ...
    """

    def __init__(self, p: int = -1, how: str = "", goroutines: str = "", dump: str = "", pid: int = 0) -> None:
        self.p = p
        self.how = how
        self.goroutines = goroutines
        self.dump = dump
        self.pid = pid
        super().__init__(p, how, goroutines, dump, pid)

    def __str__(self) -> str:
        s = f"fatal error: P{self.p} died ({self.how})"
        if self.goroutines and self.goroutines != "none":
            who = f"P{self.p} (pid {self.pid})" if self.pid else f"P{self.p}"
            s += f"\n[{who} held {self.goroutines}]"
        return _report(s, self.dump)


class ClosedConnError(ParagoError, OSError):
    """pg.net: an operation on a closed (or moved) Conn or Listener -- Go's
    net.ErrClosed, "use of closed network connection"."""

    def __init__(self, msg: str = "use of closed network connection") -> None:
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "use of closed network connection"


class NetDeadlineExceeded(ParagoError, TimeoutError):
    """pg.net.DeadlineExceeded: a network wait outlived its deadline (Go's
    os.ErrDeadlineExceeded, "i/o timeout")."""

    def __init__(self, msg: str = "i/o timeout") -> None:
        super().__init__(msg)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "i/o timeout"


# the pg.net errors are public as parago.net.X (that is how they print and pickle)
ClosedConnError.__module__ = NetDeadlineExceeded.__module__ = "parago.net"
NetDeadlineExceeded.__name__ = NetDeadlineExceeded.__qualname__ = "DeadlineExceeded"


class Shutdown(BaseException):
    """Raised in a goroutine's blocking operation when the program ends."""


def not_in_runtime(what: str) -> NotInRuntime:
    return NotInRuntime(
        f"{what} needs the parago runtime: wrap the program in pg.run(main) "
        f"(e.g. `pg.run(main)` under `if __name__ == '__main__':`)"
    )


def portable(e: BaseException) -> BaseException:
    """e, if it pickles (so it may cross to another P or node); else a
    ParagoError that says what it was."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return ParagoError(f"{type(e).__name__}: {e}")


def stale_handle(kind: str) -> NotInRuntime:
    return NotInRuntime(
        f"this {kind} belongs to an earlier pg.run (or was freed): objects from one pg.run cannot be used in another"
    )
