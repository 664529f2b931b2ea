"""pg.trace: user annotations in the ``--trace`` timeline (Go's runtime/trace).

``pg.trace.region(name)`` is Go's ``trace.WithRegion`` / ``StartRegion``: a
context manager whose span shows as a slice on the goroutine's own row of
its P; ``pg.trace.log(category, message)`` is Go's ``trace.Log``: an instant
event there.  With tracing off (no ``--trace`` / ``PARAGO_TRACE``) both are
no-ops that cost one attribute check: ``region`` returns a shared, inert
context manager.
"""

from __future__ import annotations

import time
from typing import Any

from ._runtime import state

_now = time.monotonic_ns


class _NoRegion:
    """The region of an untraced program: does nothing, shared by every call."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NO_REGION = _NoRegion()


class _Region:
    __slots__ = ("tracer", "goid", "name", "t0")

    def __init__(self, tracer: Any, goid: int, name: str) -> None:
        self.tracer, self.goid, self.name = tracer, goid, name
        self.t0 = 0

    def __enter__(self) -> None:
        self.t0 = _now()

    def __exit__(self, *exc: Any) -> None:
        self.tracer.region(self.goid, self.name, self.t0, _now())


def _tracer() -> Any:
    rt = state.rt
    return None if rt is None else rt.tracer


def _goid() -> int:
    from ._goroutine import goid

    return goid()


def region(name: str) -> Any:
    """A context manager: the time spent inside it is a slice named ``name``
    on this goroutine's row of its P in the ``--trace`` timeline (regions
    nest).  Outside a traced run it does nothing.

    Raises: ``TypeError`` when name is not a str.
    """
    if name.__class__ is not str and not isinstance(name, str):
        raise TypeError(f"pg.trace.region: name must be a str, got {type(name).__name__}")
    tr = _tracer()
    if tr is None:
        return _NO_REGION
    return _Region(tr, _goid(), name)


def log(category: str, message: str) -> None:
    """An instant event ``category`` with ``message`` on this goroutine's row
    of its P in the ``--trace`` timeline (Go's ``trace.Log``); nothing when
    the run is not traced.

    Raises: ``TypeError`` when category or message is not a str.
    """
    if not isinstance(category, str):
        raise TypeError(f"pg.trace.log: category must be a str, got {type(category).__name__}")
    if not isinstance(message, str):
        raise TypeError(f"pg.trace.log: message must be a str, got {type(message).__name__}")
    tr = _tracer()
    if tr is not None:
        tr.log(_goid(), category, message)


def is_enabled() -> bool:
    """Whether this run is being traced (Go's ``trace.IsEnabled``)."""
    return _tracer() is not None


__all__ = ["region", "log", "is_enabled"]
