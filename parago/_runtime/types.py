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

from .._shim import CONST
from .._shim.arena import Arena

# where an unstarted G's encoded (fn, args, kw) is: pg_gstart's and
# pg_findrunnable's ``how`` (shm/layout.h PG_START_LIST; Runtime.payload reads it)
START_STARTED = CONST["START_STARTED"]  # none: a started G, readied
START_OBUF = CONST["START_OBUF"]  # obuf[:n]
START_BLOCK = CONST["START_BLOCK"]  # an arena block of n bytes (freed when read)


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
    thread_set: set | None
    user_threads: int
    i_panicking: int
    handles: dict[int, Any]
    # the roles of sched.Runtime use one another's state and calls through
    # this Protocol (their self type): what they share is named here
    OBUF: int
    obuf: Any
    fout: Any
    current: Any
    closed: bool
    attn: bool
    preempt_pending: bool
    sliced: bool
    dump_seen: int
    evfd: int
    executor: Any
    tls: Any
    pool: list
    task_gs: dict[Any, Any]
    start_cache: Any
    refs: Any
    spawner: Any
    _sd_start: float
    main_off: int
    i_ack: int
    i_dumpreq: int
    i_nexternal: int
    i_npreempt: int
    i_shutdown: int
    i_syscalltick: int

    def flush_decrefs(self) -> None: ...

    def intern_site(self, text: str) -> Any: ...


    def push_local(self, gs: Any) -> None: ...

    def push_yielded(self, gs: Any) -> None: ...

    def run_g(self, off: int) -> None: ...

    def start_g(self, off: int, how: int, n: int, block: int) -> None: ...

    def payload(self, how: int, n: int, block: int) -> bytes: ...

    def gexit(self, gs: Any) -> None: ...

    def flush_exited(self) -> None: ...

    def backlog(self) -> int: ...

    def new_thread_g(self) -> Any: ...

    def park_local(self, gs: Any, reason: str) -> None: ...

    def wake_local(self, gs: Any) -> None: ...

    def _future_done(self, gs: Any, fut: Any) -> None: ...

    def yield_preempted(self, gs: Any) -> None: ...

    def sysmon_exception(self, gs: Any) -> BaseException | None: ...

    def answer_dump(self) -> None: ...

    def begin_shutdown(self) -> None: ...

    def shutdown_started(self) -> float: ...

    def hub_failed(self, exc: BaseException) -> None: ...

    def main_finished(self, result: Any, exc: BaseException | None) -> None: ...

    def goroutine_failed(self, gs: Any, e: BaseException) -> None: ...

    async def _run_task(self, gs: Any, fn: Any, args: tuple, kw: dict) -> None: ...

    @property
    def _closed(self) -> bool: ...

    def arm(self) -> None: ...

    def decref_later(self, off: int) -> None: ...

    def ack(self, bit: int) -> None: ...

    def interrupt(self, gs: Any, exc: BaseException) -> bool: ...

    def runtime_threads(self) -> int: ...

    def count_user_threads(self) -> int: ...

    def slow_current(self, op: str) -> Any: ...
