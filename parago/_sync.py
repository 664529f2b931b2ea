"""sync: WaitGroup, Mutex, RWMutex, Once, Cond, Semaphore, Pool.

All are shared across Ps (arena objects, shm/sync.c) and park the waiting
*goroutine*, never the process.  Each blocking method has an ``_async``
form for ``async def`` goroutines.  Misuse raises ``pg.SyncError`` with
Go's words, in the calling goroutine, and leaves the object usable.
"""

from __future__ import annotations

import array
import ctypes
import time
from typing import Any, Callable

import greenlet

from ._errors import OutOfSharedMemory, SyncError
from ._runtime import codec, handles
from ._runtime.handles import Handle
from ._runtime.sched import need_rt
from ._shim import BIG, INVAL, NEGATIVE, NOMEM, OK, PARKED, RUNFN, UNLOCKED, SyncKind, Wake, fast, lib

_ZERO = ctypes.c_uint64(0)


def _g(rt: Any, op: str) -> Any:
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if gs is None:
        gs = rt.slow_current(op)
    return gs


class _SyncObject(Handle):
    __slots__ = ()
    _skind = 0

    def __new__(cls, *args: Any, **kw: Any) -> Any:
        rt = need_rt(f"pg.{cls.__name__}()")
        off = lib.pg_sync_new(rt.base, cls._skind, cls._initial(*args, **kw))
        if off == NOMEM:
            raise OutOfSharedMemory.for_size(128, rt.arena.size)
        return cls._new(rt, off)

    def __init__(self, *args: Any, **kw: Any) -> None:
        pass

    @classmethod
    def _initial(cls) -> int:
        return 0

    def __repr__(self) -> str:
        return f"<pg.{type(self).__name__} at {self._off:#x}>"


class WaitGroup(_SyncObject):
    """Go's sync.WaitGroup: wait until a counter drops to zero."""

    __slots__ = ()
    _kind = "WaitGroup"
    _skind = SyncKind.WAITGROUP

    def add(self, delta: int = 1) -> None:
        """Add delta (may be negative).  Raises SyncError("sync: negative
        WaitGroup counter") and leaves the counter unchanged if it would go
        below zero.  Reaching zero releases every waiter."""
        rt = self._live_rt()
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise TypeError(f"WaitGroup.add: delta must be an int, got {type(delta).__name__}")
        if (
            fast.pg_wg_add(rt.cbase, self._c, delta)
            if -0x7FFFFFFF < delta < 0x7FFFFFFF
            else lib.pg_wg_add(rt.base, self._off, delta)
        ) == NEGATIVE:
            raise SyncError("sync: negative WaitGroup counter")

    def done(self) -> None:
        """add(-1)."""
        self.add(-1)

    def wait(self) -> None:
        """Block until the counter is zero."""
        rt = self._live_rt()
        gs = _g(rt, "wg.wait()")
        if fast.pg_wg_wait(rt.cbase, self._c, gs.c) == PARKED:
            gs.park()

    async def wait_async(self) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        if lib.pg_wg_wait(rt.base, self._off, gs.off) == PARKED:
            await gs.park_async()

    def value(self) -> int:
        """The counter (a racy snapshot)."""
        from ._shim import offset

        rt = self._live_rt()
        return rt.arena.i[(self._off + offset("pg_sync", "a")) // 8]


class Mutex(_SyncObject):
    """Go's sync.Mutex, shared by every P.

    Not reentrant; belongs to no goroutine (any goroutine may unlock it).
    Normal mode lets a running locker overtake woken waiters (throughput);
    a waiter that waited over 1 ms switches it to starvation mode, where
    unlock hands the lock straight to the oldest waiter (Go's fairness).
    """

    __slots__ = ()
    _kind = "Mutex"
    _skind = SyncKind.MUTEX

    def lock(self) -> None:
        rt = self._live_rt()
        gs = _g(rt, "mu.lock()")
        if fast.pg_mutex_lock(rt.cbase, self._c, gs.c, 0, _ZERO) == OK:
            return
        base, off = rt.base, self._off
        since = time.monotonic_ns()
        while True:
            gs.park()
            if gs.wake_res() == Wake.HANDOFF:
                return
            if lib.pg_mutex_lock(base, off, gs.off, 2, since) == OK:
                return

    async def lock_async(self) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        base, off = rt.base, self._off
        if lib.pg_mutex_lock(base, off, gs.off, 0, 0) == OK:
            return
        since = time.monotonic_ns()
        while True:
            await gs.park_async()
            if gs.wake_res() == Wake.HANDOFF:
                return
            if lib.pg_mutex_lock(base, off, gs.off, 2, since) == OK:
                return

    def try_lock(self) -> bool:
        """Lock if free, without blocking; True if it was taken."""
        rt = self._live_rt()
        return lib.pg_mutex_lock(rt.base, self._off, 0, 1, 0) == OK

    def unlock(self) -> None:
        """Raises SyncError("sync: unlock of unlocked mutex") if not locked."""
        rt = self._live_rt()
        if fast.pg_mutex_unlock(rt.cbase, self._c) == UNLOCKED:
            raise SyncError("sync: unlock of unlocked mutex")

    def locked(self) -> bool:
        """Whether it is held (a racy snapshot)."""
        from ._shim import offset

        rt = self._live_rt()
        return rt.arena.i[(self._off + offset("pg_sync", "a")) // 8] != 0

    def __enter__(self) -> "Mutex":
        self.lock()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    async def __aenter__(self) -> "Mutex":
        await self.lock_async()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.unlock()


class RWMutex(_SyncObject):
    """Go's sync.RWMutex: many readers or one writer; a waiting writer
    blocks new readers (writer preference), and readers queued behind a
    writer go first when it unlocks."""

    __slots__ = ()
    _kind = "RWMutex"
    _skind = SyncKind.RWMUTEX

    def _acquire(self, fn: Any, op: str) -> None:
        rt = self._live_rt()
        gs = _g(rt, op)
        if fn(rt.base, self._off, gs.off, 0) == PARKED:
            try:
                gs.park()
            except BaseException:
                if fn is lib.pg_rw_lock:
                    lib.pg_rw_writer_gone(rt.base, self._off)
                raise

    async def _acquire_async(self, fn: Any) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        if fn(rt.base, self._off, gs.off, 0) == PARKED:
            try:
                await gs.park_async()
            except BaseException:
                if fn is lib.pg_rw_lock:
                    lib.pg_rw_writer_gone(rt.base, self._off)
                raise

    def lock(self) -> None:
        self._acquire(lib.pg_rw_lock, "rw.lock()")

    def rlock(self) -> None:
        self._acquire(lib.pg_rw_rlock, "rw.rlock()")

    async def lock_async(self) -> None:
        await self._acquire_async(lib.pg_rw_lock)

    async def rlock_async(self) -> None:
        await self._acquire_async(lib.pg_rw_rlock)

    def try_lock(self) -> bool:
        rt = self._live_rt()
        return lib.pg_rw_lock(rt.base, self._off, 0, 1) == OK

    def try_rlock(self) -> bool:
        rt = self._live_rt()
        return lib.pg_rw_rlock(rt.base, self._off, 0, 1) == OK

    def unlock(self) -> None:
        rt = self._live_rt()
        if lib.pg_rw_unlock(rt.base, self._off) == UNLOCKED:
            raise SyncError("sync: Unlock of unlocked RWMutex")

    def runlock(self) -> None:
        rt = self._live_rt()
        if lib.pg_rw_runlock(rt.base, self._off) == UNLOCKED:
            raise SyncError("sync: RUnlock of unlocked RWMutex")

    def rlocker(self) -> "_RLocker":
        """A Locker whose lock/unlock are rlock/runlock (for pg.Cond)."""
        return _RLocker(self)

    def __enter__(self) -> "RWMutex":
        self.lock()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    async def __aenter__(self) -> "RWMutex":
        await self.lock_async()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.unlock()


class _RLocker:
    __slots__ = ("rw",)

    def __init__(self, rw: RWMutex) -> None:
        self.rw = rw

    def lock(self) -> None:
        self.rw.rlock()

    def unlock(self) -> None:
        self.rw.runlock()

    async def lock_async(self) -> None:
        await self.rw.rlock_async()

    def __enter__(self) -> "_RLocker":
        self.lock()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    def __reduce__(self) -> tuple:
        return (_RLocker, (self.rw,))


class Once(_SyncObject):
    """Go's sync.Once, program-wide: fn runs exactly once, and every caller
    (on any P) returns only after it finished, with a copy of its result.

    fn's side effects exist only in the P that ran it: use Once for shared
    objects or results, not to initialise a module global.  If fn raises,
    the Once is done and the exception is raised in that caller (others
    get None)."""

    __slots__ = ()
    _kind = "Once"
    _skind = SyncKind.ONCE

    def do(self, fn: Callable[[], Any]) -> Any:
        rt = self._live_rt()
        gs = _g(rt, "once.do()")
        while True:
            r = lib.pg_once_begin(rt.base, self._off, gs.off, gs.obuf, rt.OBUF, gs.out)
            if r == RUNFN:
                return self._run(rt, fn)
            if r == PARKED:
                gs.park()
                continue
            return self._result(rt, gs, r)

    async def do_async(self, fn: Callable[[], Any]) -> Any:
        rt = self._live_rt()
        gs = rt.task_g()
        while True:
            r = lib.pg_once_begin(rt.base, self._off, gs.off, gs.obuf, rt.OBUF, gs.out)
            if r == RUNFN:
                try:
                    res = fn()
                    if hasattr(res, "__await__"):
                        res = await res
                except BaseException:
                    self._finish(rt, None)
                    raise
                self._finish(rt, res)
                return res
            if r == PARKED:
                await gs.park_async()
                continue
            return self._result(rt, gs, r)

    def _run(self, rt: Any, fn: Callable[[], Any]) -> Any:
        try:
            res = fn()
        except BaseException:
            self._finish(rt, None)
            raise
        self._finish(rt, res)
        return res

    def _finish(self, rt: Any, res: Any) -> None:
        try:
            data = codec.dumps(res, "Once result") if res is not None else b""
        except Exception:
            data = b""
        lib.pg_once_done(rt.base, self._off, data, len(data))

    def _result(self, rt: Any, gs: Any, r: int) -> Any:
        if r == 0:
            return None
        data = rt.arena.read(gs.out[0], gs.out[1]) if r == BIG else bytes(gs.obuf_mv[:r])
        # the stored result keeps its references: each decode takes (and so
        # must give back) the reference of every handle inside it
        refs: list[int] = []
        handles.dec_refs = refs
        try:
            v = codec.loads(data)
        finally:
            handles.dec_refs = None
        if refs:
            arr = array.array("Q", refs)
            addr, n = arr.buffer_info()
            lib.pg_obj_incref_many(rt.base, addr, n)
        return v


class Cond(Handle):
    """Go's sync.Cond: wait() atomically unlocks L, parks, and relocks L."""

    __slots__ = ("_L",)
    _kind = "Cond"
    _L: Any

    def __new__(cls, L: Any) -> "Cond":
        if not (hasattr(L, "lock") and hasattr(L, "unlock")):
            raise TypeError(f"pg.Cond: L must be a Locker (lock/unlock), got {type(L).__name__}")
        rt = need_rt("pg.Cond()")
        off = lib.pg_sync_new(rt.base, SyncKind.COND, 0)
        if off == NOMEM:
            raise OutOfSharedMemory.for_size(128, rt.arena.size)
        c = cls._new(rt, off)
        c._L = L
        return c

    @property
    def L(self) -> Any:
        return self._L

    def __reduce__(self) -> tuple:
        return (_cond_rebuild, (Handle.__reduce__(self), self._L))

    def wait(self) -> None:
        rt = self._live_rt()
        gs = _g(rt, "cond.wait()")
        lib.pg_cond_enqueue(rt.base, self._off, gs.off)
        try:
            self._L.unlock()
        except BaseException:
            lib.pg_park_cancel(rt.base, gs.off)
            raise
        try:
            gs.park()
        finally:
            self._L.lock()

    async def wait_async(self) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        lib.pg_cond_enqueue(rt.base, self._off, gs.off)
        try:
            self._L.unlock()
        except BaseException:
            lib.pg_park_cancel(rt.base, gs.off)
            raise
        try:
            await gs.park_async()
        finally:
            lock_async = getattr(self._L, "lock_async", None)
            if lock_async is not None:
                await lock_async()
            else:
                self._L.lock()

    def signal(self) -> None:
        """Wake one waiter, if any."""
        rt = self._live_rt()
        lib.pg_cond_signal(rt.base, self._off, 0)

    def broadcast(self) -> None:
        """Wake every waiter."""
        rt = self._live_rt()
        lib.pg_cond_signal(rt.base, self._off, 1)


def _cond_rebuild(h: tuple, L: Any) -> Cond:
    fn, args = h
    c = fn(*args)
    c._L = L
    return c


class Semaphore(_SyncObject):
    """A weighted semaphore (golang.org/x/sync/semaphore): FIFO, so a large
    request is not starved by a stream of small ones."""

    __slots__ = ()
    _kind = "Semaphore"
    _skind = SyncKind.SEMA

    @classmethod
    def _initial(cls, n: int = 1) -> int:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"Semaphore: n must be an int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"Semaphore: n must be >= 0, got {n}")
        return n

    def _check(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"Semaphore: k must be an int, got {type(k).__name__}")
        if k < 0:
            raise ValueError(f"Semaphore: k must be >= 0, got {k}")
        return k

    def acquire(self, k: int = 1) -> None:
        """Block until k units are free (FIFO).  ValueError if k > the size."""
        rt = self._live_rt()
        k = self._check(k)
        gs = _g(rt, "sem.acquire()")
        r = lib.pg_sema_acquire(rt.base, self._off, gs.off, k, 0)
        if r == INVAL:
            raise ValueError(f"semaphore: acquire of {k} exceeds the size {self.size}")
        if r == PARKED:
            try:
                gs.park()
            except BaseException:
                lib.pg_sema_kick(rt.base, self._off)
                raise

    async def acquire_async(self, k: int = 1) -> None:
        rt = self._live_rt()
        k = self._check(k)
        gs = rt.task_g()
        r = lib.pg_sema_acquire(rt.base, self._off, gs.off, k, 0)
        if r == INVAL:
            raise ValueError(f"semaphore: acquire of {k} exceeds the size {self.size}")
        if r == PARKED:
            try:
                await gs.park_async()
            except BaseException:
                lib.pg_sema_kick(rt.base, self._off)
                raise

    def try_acquire(self, k: int = 1) -> bool:
        rt = self._live_rt()
        k = self._check(k)
        return lib.pg_sema_acquire(rt.base, self._off, 0, k, 1) == OK

    def release(self, k: int = 1) -> None:
        """Raises SyncError("semaphore: released more than held")."""
        rt = self._live_rt()
        k = self._check(k)
        if lib.pg_sema_release(rt.base, self._off, k) == NEGATIVE:
            raise SyncError("semaphore: released more than held")

    @property
    def size(self) -> int:
        from ._shim import offset

        rt = self._live_rt()
        return rt.arena.i[(self._off + offset("pg_sync", "a")) // 8]

    def __enter__(self) -> "Semaphore":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Pool:
    """A free list of shared objects (pg.Buffer, channels...) reused across Ps.

    ``get()`` returns a pooled object, or ``new()`` when the pool is empty
    (``new`` runs in the caller's P); ``put(x)`` keeps x for reuse (dropped
    when the pool is full).  Only handles can be pooled: other values are
    copies, and reusing a copy saves nothing.
    """

    def __init__(self, new: Callable[[], Any] | None = None, size: int = 1024) -> None:
        from ._chan import Chan

        self.new = new
        self._c = Chan(size)

    def __reduce__(self) -> tuple:
        return (_pool_rebuild, (self.new, self._c))

    def get(self) -> Any:
        v, ok = self._c._try_recv()
        if ok:
            return v
        return self.new() if self.new is not None else None

    def put(self, x: Any) -> None:
        from ._runtime.handles import HandleMixin

        if x is None:
            return
        if not isinstance(x, HandleMixin):
            raise TypeError(f"pg.Pool holds shared objects only (pg.Buffer, pg.Chan, ...), got {type(x).__name__}")
        self._c._try_send(x)


def _pool_rebuild(new: Any, c: Any) -> Pool:
    p = Pool.__new__(Pool)
    p.new = new
    p._c = c
    return p
