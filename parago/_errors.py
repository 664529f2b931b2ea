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
    ``message``, ``remote_traceback`` (text).  ``__cause__`` is the original
    exception when it could be rebuilt in this process.
    """

    def __init__(self, goid: int = 0, exc_type: str = "", message: str = "", remote_traceback: str = "") -> None:
        self.goid = goid
        self.exc_type = exc_type
        self.message = message
        self.remote_traceback = remote_traceback
        super().__init__(goid, exc_type, message, remote_traceback)

    def __str__(self) -> str:
        head = f"panic in goroutine {self.goid}: {self.exc_type}: {self.message}"
        if self.remote_traceback:
            return f"{head}\n\n{self.remote_traceback.rstrip()}"
        return head


class Deadlock(ParagoError):
    """all goroutines are asleep - deadlock! (with a goroutine dump)."""

    def __init__(self, dump: str = "") -> None:
        self.dump = dump
        super().__init__(dump)

    def __str__(self) -> str:
        msg = "all goroutines are asleep - deadlock!"
        return f"{msg}\n\n{self.dump.rstrip()}" if self.dump else msg


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
    """A P process died: which P, its exit code or signal, its goroutines."""

    def __init__(self, p: int = -1, how: str = "", goroutines: str = "") -> None:
        self.p = p
        self.how = how
        self.goroutines = goroutines
        super().__init__(p, how, goroutines)

    def __str__(self) -> str:
        s = f"P{self.p} died ({self.how})"
        if self.goroutines:
            s += f"; goroutines on it: {self.goroutines}"
        return s


class Shutdown(BaseException):
    """Raised in a goroutine's blocking operation when the program ends."""


def not_in_runtime(what: str) -> NotInRuntime:
    return NotInRuntime(
        f"{what} needs the parago runtime: wrap the program in pg.run(main) "
        f"(e.g. `pg.run(main)` under `if __name__ == '__main__':`)"
    )


def stale_handle(kind: str) -> NotInRuntime:
    return NotInRuntime(
        f"this {kind} belongs to an earlier pg.run (or was freed): objects from one pg.run cannot be used in another"
    )
