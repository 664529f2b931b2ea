"""What the runtime's components and layers may use of a P's Runtime.

A Protocol (not the class itself) so that each component is typed against
the narrow surface it needs, and mypy checks the names (``rt: Any`` checked
nothing).  ``sched.Runtime`` implements it.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
from typing import Any, Protocol

from .._shim.arena import Arena


class RuntimeLike(Protocol):
    arena: Arena
    base: int
    cbase: ctypes.c_void_p
    p: int
    nprocs: int
    nonce: int
    loop: asyncio.AbstractEventLoop
    hub_tid: int
    tracer: Any
    sampler: Any
    sup: Any
    scheduled: bool
    shutting_down: bool
    place_out: Any
    local_fns: dict[int, tuple]
    local_ready: collections.deque
    yielded: collections.deque
    gtable: dict[int, Any]
    main_gs: Any
    n_external: int
    i_panicking: int
    handles: dict[int, Any]

    @property
    def _closed(self) -> bool: ...

    def arm(self) -> None: ...

    def decref_later(self, off: int) -> None: ...

    def ack(self, bit: int) -> None: ...

    def interrupt(self, gs: Any, exc: BaseException) -> bool: ...

    def runtime_threads(self) -> int: ...

    def slow_current(self, op: str) -> Any: ...
