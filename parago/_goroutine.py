"""Goroutines: pg.go, pg.go_local and the calls about the running goroutine."""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any, Awaitable, Callable, NoReturn, TypeVar

import greenlet

from ._errors import ParagoError
from ._runtime import park
from ._runtime.blocking import BlockingPool
from ._runtime.cluster import hooks as cluster_hooks
from ._runtime.g import GreenletG, TaskG, ThreadG
from ._runtime.procs import run as _run
from ._runtime.sched import cur, need_rt

T = TypeVar("T")


def run(
    main: Callable[..., Any],
    *args: Any,
    procs: int | None = None,
    start_method: str | None = None,
    cluster: str | None = None,
    cooperative_io: bool = False,
    leaks: str | None = None,
) -> Any:
    """Run ``main(*args)`` as goroutine 1 with ``procs`` Ps and return its result.

    Starts P1..Pn-1 as processes (this process is P0), runs main on P0's
    hub, and when main returns unwinds every goroutine (``pg.Shutdown``),
    stops every P and releases the arena.  An uncaught exception in any
    goroutine ends the program: pg.run raises ``pg.Panic``.  Callable again
    afterwards.  Main thread only; not nested; not inside a running loop.

    Raises: ``Panic``, ``Deadlock``, ``WorkerLost``, ``SystemExit`` (a
    goroutine's), whatever main raised, ``KeyboardInterrupt``;
    ``TypeError``/``ValueError`` for bad ``procs``/``start_method``.

    ``cluster="ray"`` (or ``"ray://host:port"``, a bare ``"host:port"``, or ``$PARAGO_CLUSTER``) runs
    the program across the nodes of a Ray cluster, ``procs`` Ps per node
    (docs/cluster.md); unset, Ray is never imported.

    ``leaks="error"`` (or ``PARAGO_DEBUG=leakcheck=1``): goroutines still
    alive a short grace after main returned are a ``pg.GoroutineLeak``
    listing each (wait reason, stack, created by); ``leaks="warn"`` prints
    that list on stderr and returns normally; None: no check.

    ``cooperative_io=True`` (or ``$PARAGO_COOPERATIVE_IO=1``): in every P,
    the standard library's blocking calls (socket, ssl, name resolution,
    time.sleep, select/selectors, subprocess waits) made by a plain
    goroutine park that goroutine instead of holding its P; threads and
    code outside goroutines keep real blocking calls; undone when pg.run
    returns (docs/guide.md "Blocking I/O in plain goroutines").
    """
    if cluster is None:
        cluster = os.environ.get("PARAGO_CLUSTER") or None
    if cluster:  # across the nodes of a Ray cluster; Ray is imported only here
        if leaks is not None:
            raise ValueError("pg.run: leaks= checks the Ps of one machine; it cannot be used with cluster=")
        launch = cluster_hooks.launch  # parago._cluster registers it (import parago imports it)
        if launch is None:
            raise ParagoError("pg.run(cluster=...): parago._cluster is not loaded (import parago)")
        return launch(main, args, procs=procs, start_method=start_method, cluster=cluster, cooperative_io=cooperative_io)
    if callable(main) and not _is_async(main):
        main = functools.partial(_main_body, main)  # pg.goexit() in main: Go's ending
    return _run(main, *args, procs=procs, start_method=start_method, cooperative_io=cooperative_io, leaks=leaks)


def _is_async(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    return bool(code.co_flags & 0x80) if code is not None else asyncio.iscoroutinefunction(fn)


class _Goexit(greenlet.GreenletExit):
    """pg.goexit's unwinding: a GreenletExit, so the scheduler ends the
    goroutine as if it had returned, after its ``finally`` blocks ran."""


def goexit() -> NoReturn:
    """Go's runtime.Goexit: end the calling (plain) goroutine, running its
    ``finally`` and ``with`` exits first; nothing is returned to anyone.

    In main, the program goes on without it: it ends when the other
    goroutines are done with ``pg.Deadlock`` ("no goroutines (main called
    runtime.Goexit) - deadlock!"), or as they make it end (a panic,
    SystemExit).  Do not catch the BaseException it raises.  Raises
    ParagoError from an async goroutine or a thread that is no goroutine.
    """
    need_rt("pg.goexit()")
    if not isinstance(getattr(greenlet.getcurrent(), "gs", None), GreenletG):
        raise ParagoError(
            "pg.goexit() ends a plain goroutine: from an async goroutine return instead, "
            "and a thread that is no goroutine cannot be ended so"
        )
    raise _Goexit()


def _main_body(main: Callable[..., Any], *args: Any) -> Any:
    """Goroutine 1: main, and what Go does when main calls Goexit -- the
    program runs on without main and deadlocks once nothing else is left."""
    try:
        return main(*args)
    except _Goexit:
        pass
    rt = need_rt("pg.goexit()")
    rt.main_goexit = True  # type: ignore[attr-defined]  # the deadlock report names it (supervisor)
    from ._chan import select

    select()  # Go's select {}: until the deadlock check (or a failure) interrupts it
    return None


def go(fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """Start a goroutine running ``fn(*args, **kw)`` on copies of fn and its arguments.

    Non-blocking.  The goroutine may run on any P.  ``fn`` may be a
    module-level function, a lambda or a closure, or an ``async def``
    function (it then runs as a task on its P's loop).  Raises
    ``pg.EncodeError`` (a ``TypeError``) naming what cannot be copied, and
    ``OutOfSharedMemory`` when the arena cannot hold it.
    """
    need_rt("pg.go").spawn(fn, args, kw)


def go_local(fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """Start a goroutine on the current P that is never stolen; nothing is copied.

    For what cannot cross processes: sockets, connections, P-local caches.
    """
    need_rt("pg.go_local").spawn(fn, args, kw, local=True)


def gomaxprocs() -> int:
    """The number of Ps."""
    return need_rt("pg.gomaxprocs").nprocs


def numgoroutine() -> int:
    """Live user goroutines, program-wide (a racy snapshot, as Go's)."""
    from ._runtime.ops import views

    return views.hdr(need_rt("pg.numgoroutine").arena, "ngoroutines")


def goid() -> int:
    """The current goroutine's id (goroutine 1 is main)."""
    rt = need_rt("pg.goid")
    import greenlet

    gs = getattr(greenlet.getcurrent(), "gs", None)
    if gs is not None:
        return gs.goid
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    if task is not None and task in rt.task_gs:
        return rt.task_gs[task].goid
    return rt.slow_current("pg.goid()").goid


def gosched() -> None:
    """Yield the P: other runnable goroutines run before this one continues."""
    rt, gs = cur("pg.gosched()")
    if isinstance(gs, ThreadG):
        import os

        os.sched_yield()
        return
    park.gosched(gs)


def blocking(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run a blocking call off the hub thread; park the goroutine until it returns.

    Go's syscall hand-off: other goroutines of this P keep running.  Returns
    fn's result or raises its exception.  From a thread that is no
    goroutine, fn simply runs in that thread.
    """
    rt, gs = cur("pg.blocking()")
    if not isinstance(gs, GreenletG):
        return fn(*args, **kw)
    if rt.executor is None:
        rt.executor = BlockingPool(f"parago-P{rt.p}-blocking")
    fut = rt.executor.submit(fn, *args, **kw)
    rt.count_syscall()
    rt.park_on_future(gs, fut, "syscall", threadsafe=True)
    return fut.result()


def await_(awaitable: Awaitable[T]) -> T:
    """From a plain goroutine: run an awaitable on this P's loop and park until done."""
    rt, gs = cur("pg.await_()")
    if not isinstance(gs, GreenletG):
        if isinstance(gs, ThreadG):
            return asyncio.run_coroutine_threadsafe(_as_coro(awaitable), rt.loop).result()
        raise ParagoError("pg.await_ is for plain goroutines; in async code just await it")
    fut = asyncio.ensure_future(awaitable, loop=rt.loop)
    if not fut.done():
        rt.park_on_future(gs, fut, "IO wait", threadsafe=False)
    return fut.result()


async def _as_coro(aw: Awaitable[T]) -> T:
    return await aw


__all__ = [
    "run",
    "go",
    "go_local",
    "gomaxprocs",
    "numgoroutine",
    "goid",
    "gosched",
    "blocking",
    "await_",
    "goexit",
    "TaskG",
]
