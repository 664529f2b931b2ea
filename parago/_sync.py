"""sync: WaitGroup, Mutex, RWMutex, Once, Cond, Semaphore, Pool.

All are shared across Ps (arena objects, shm/sync.c) and park the waiting
*goroutine*, never the process, through the one park protocol
(parago/_runtime/park.py: begin = the C operation, park, finish).  Each
blocking method has an ``_async`` form for ``async def`` goroutines that
shares its body.  Misuse raises ``pg.SyncError`` with Go's words, in the
calling goroutine, and leaves the object usable.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ._errors import SyncError
from ._runtime import codec, ops, park
from ._runtime.handles import Handle
from ._runtime.ops import BIG, INVAL, OK, PARKED, RUNFN, SyncKind, Wake, check, views

_ZERO = ops.c_zero
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_MX_TRY, _MX_RETRY = ops.MX_TRY, ops.MX_RETRY


class _SyncObject(Handle):
    __slots__ = ()
    _skind = 0

    def __new__(cls, *args: Any, **kw: Any) -> Any:
        rt = park.runtime(f"pg.{cls.__name__}()")
        off = check(ops.sync_new(rt.base, cls._skind, cls._initial(*args, **kw)), f"pg.{cls.__name__}", 128)
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
        if delta < _INT64_MIN:  # the counter (>= 0, an int64) would certainly go below zero
            raise SyncError("sync: negative WaitGroup counter")
        if delta > _INT64_MAX:
            raise ValueError(f"WaitGroup.add: delta must be an int64 (<= 2**63-1), got {delta}")
        if -0x7FFFFFFF < delta < 0x7FFFFFFF:
            r = ops.wg_add_fast(rt.cbase, self._c, delta)
        else:
            r = ops.wg_add(rt.base, self._off, delta)
        if r == INVAL:
            raise ValueError(f"sync: WaitGroup counter overflow (adding {delta} passes 2**63-1)")
        if r < 0:
            check(r, "wg.add")

    def done(self) -> None:
        """add(-1)."""
        self.add(-1)

    def wait(self) -> None:
        """Block until the counter is zero."""
        rt = self._live_rt()
        gs = park.current(rt, "wg.wait()")
        if check(ops.wg_wait_fast(rt.cbase, self._c, gs.c), "wg.wait") == PARKED:
            gs.park()

    async def wait_async(self) -> None:
        """``await wg.wait_async()``: wait() for async goroutines."""
        rt = self._live_rt()
        gs = rt.task_g()
        if check(ops.wg_wait(rt.base, self._off, gs.off), "wg.wait") == PARKED:
            await park.park_async(gs)

    def value(self) -> int:
        """The counter (a racy snapshot)."""
        return views.sync_word(self._live_rt().arena, self._off, "pg_wg", "count")


class _Locker:
    """``with l:`` / ``async with l:`` for a lock with lock/unlock/lock_async."""

    __slots__ = ()

    def __enter__(self) -> Any:
        self.lock()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unlock()  # type: ignore[attr-defined]

    async def __aenter__(self) -> Any:
        await self.lock_async()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.unlock()  # type: ignore[attr-defined]


class Mutex(_Locker, _SyncObject):
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
        """Block until the lock is ours."""
        rt = self._live_rt()
        gs = park.current(rt, "mu.lock()")
        r = ops.mutex_lock_fast(rt.cbase, self._c, gs.c, 0, _ZERO)
        if r != OK:
            park.run(gs, self._contended(rt, gs, r))

    async def lock_async(self) -> None:
        """``await mu.lock_async()`` / ``async with mu``: lock() for async goroutines."""
        rt = self._live_rt()
        gs = rt.task_g()
        r = ops.mutex_lock(rt.base, self._off, gs.off, 0, 0)
        if r != OK:
            await park.run_async(gs, self._contended(rt, gs, r))

    def _contended(self, rt: Any, gs: Any, r: int) -> park.Steps:
        """The slow path, parked: handed the lock (starvation mode), or woken
        to compete again at the front of the queue (normal mode)."""
        since = time.monotonic_ns()
        while check(r, "mu.lock") == PARKED:
            yield
            if park.wake_res(gs) == Wake.HANDOFF:
                return
            r = ops.mutex_lock(rt.base, self._off, gs.off, _MX_RETRY, since)

    def try_lock(self) -> bool:
        """Lock if free, without blocking; True if it was taken."""
        rt = self._live_rt()
        return check(ops.mutex_lock(rt.base, self._off, 0, _MX_TRY, 0), "mu.lock") == OK

    def unlock(self) -> None:
        """Raises SyncError("sync: unlock of unlocked mutex") if not locked."""
        rt = self._live_rt()
        r = ops.mutex_unlock_fast(rt.cbase, self._c)
        if r != OK:
            check(r, "mutex.unlock")

    def locked(self) -> bool:
        """Whether it is held (a racy snapshot)."""
        return views.sync_word(self._live_rt().arena, self._off, "pg_mutex", "locked") != 0



class RWMutex(_Locker, _SyncObject):
    """Go's sync.RWMutex: many readers or one writer; a waiting writer
    blocks new readers (writer preference), and readers queued behind a
    writer go first when it unlocks."""

    __slots__ = ()
    _kind = "RWMutex"
    _skind = SyncKind.RWMUTEX

    def _begin(self, rt: Any, gs: Any, write: bool) -> Any:
        """park protocol: begin; returns on_abort when parked, else None.
        A cancelled waiting writer must stop counting as waiting."""
        fn = ops.rw_lock if write else ops.rw_rlock
        if check(fn(rt.base, self._off, gs.off, 0), "rw.lock") != PARKED:
            return None
        return (lambda: ops.rw_writer_gone(rt.base, self._off)) if write else _nothing

    def lock(self) -> None:
        rt = self._live_rt()
        gs = park.current(rt, "rw.lock()")
        if abort := self._begin(rt, gs, True):
            park.park(gs, abort)

    def rlock(self) -> None:
        rt = self._live_rt()
        gs = park.current(rt, "rw.rlock()")
        if abort := self._begin(rt, gs, False):
            park.park(gs, abort)

    async def lock_async(self) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        if abort := self._begin(rt, gs, True):
            await park.park_async(gs, abort)

    async def rlock_async(self) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        if abort := self._begin(rt, gs, False):
            await park.park_async(gs, abort)

    def try_lock(self) -> bool:
        rt = self._live_rt()
        return check(ops.rw_lock(rt.base, self._off, 0, 1), "rw.lock") == OK

    def try_rlock(self) -> bool:
        rt = self._live_rt()
        return check(ops.rw_rlock(rt.base, self._off, 0, 1), "rw.lock") == OK

    def unlock(self) -> None:
        rt = self._live_rt()
        check(ops.rw_unlock(rt.base, self._off), "rw.unlock")

    def runlock(self) -> None:
        rt = self._live_rt()
        check(ops.rw_runlock(rt.base, self._off), "rw.runlock")

    def rlocker(self) -> "_RLocker":
        """A Locker whose lock/unlock are rlock/runlock (for pg.Cond)."""
        return _RLocker(self)



def _nothing() -> None:
    pass


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

    def _steps(self, rt: Any, gs: Any) -> park.Steps:
        """Until fn has run: RUNFN (this caller runs it: returns _RUN), or
        park while another caller runs it, then look again."""
        while True:
            r = check(ops.once_begin(rt.base, self._off, gs.off, gs.obuf, rt.OBUF, gs.out), "once.do")
            if r == RUNFN:
                return _RUN
            if r != PARKED:
                return self._result(rt, gs, r)
            yield

    def do(self, fn: Callable[[], Any]) -> Any:
        rt = self._live_rt()
        gs = park.current(rt, "once.do()")
        res = park.run(gs, self._steps(rt, gs))
        if res is not _RUN:
            return res
        try:
            res = fn()
        except BaseException:
            self._finish(rt, None)
            raise
        self._finish(rt, res)
        return res

    async def do_async(self, fn: Callable[[], Any]) -> Any:
        """``await once.do_async(fn)``: fn may be a coroutine function."""
        rt = self._live_rt()
        gs = rt.task_g()
        res = await park.run_async(gs, self._steps(rt, gs))
        if res is not _RUN:
            return res
        try:
            res = fn()
            if hasattr(res, "__await__"):
                res = await res
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
        check(ops.once_done(rt.base, self._off, data, len(data)), "once.do", len(data))

    def _result(self, rt: Any, gs: Any, r: int) -> Any:
        if r == 0:
            return None
        data = rt.arena.read(gs.out[0], gs.out[1]) if r == BIG else bytes(gs.obuf_mv[:r])
        # the stored result keeps its references: each decode takes (and so
        # must give back) the reference of every handle inside it
        refs: list[int] = []
        v = codec.loads_collecting(data, refs)
        if refs:
            ops.incref_many(rt, refs)
        return v


_RUN = object()  # Once: this caller runs fn


class Cond(Handle):
    """Go's sync.Cond: wait() atomically unlocks L, parks, and relocks L."""

    __slots__ = ("_L",)
    _kind = "Cond"
    _L: Any

    def __new__(cls, L: Any) -> "Cond":
        if not (hasattr(L, "lock") and hasattr(L, "unlock")):
            raise TypeError(f"pg.Cond: L must be a Locker (lock/unlock), got {type(L).__name__}")
        rt = park.runtime("pg.Cond()")
        off = check(ops.sync_new(rt.base, SyncKind.COND, 0), "pg.Cond", 128)
        c = cls._new(rt, off)
        c._L = L
        return c

    @property
    def L(self) -> Any:
        return self._L

    def __reduce__(self) -> tuple:
        return (_cond_rebuild, (Handle.__reduce__(self), self._L))

    def _begin(self, rt: Any, gs: Any) -> None:
        """Queue as a waiter, then unlock L (Go's order: a signal between the
        two is not lost)."""
        check(ops.cond_enqueue(rt.base, self._off, gs.off), "cond.wait")
        try:
            self._L.unlock()
        except BaseException:
            ops.park_cancel(rt.base, gs.off)
            raise

    def wait(self) -> None:
        rt = self._live_rt()
        gs = park.current(rt, "cond.wait()")
        self._begin(rt, gs)
        try:
            gs.park()
        finally:
            self._L.lock()

    async def wait_async(self) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        self._begin(rt, gs)
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
        check(ops.cond_signal(rt.base, self._off, 0), "cond.signal")

    def broadcast(self) -> None:
        """Wake every waiter."""
        rt = self._live_rt()
        check(ops.cond_signal(rt.base, self._off, 1), "cond.signal")


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
        if n > _INT64_MAX:
            raise ValueError(f"Semaphore: n must be <= 2**63-1 (an int64, Go's NewWeighted), got {n}")
        return n

    def _check(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"Semaphore: k must be an int, got {type(k).__name__}")
        if k < 0:
            raise ValueError(f"Semaphore: k must be >= 0, got {k}")
        if k > _INT64_MAX:
            raise ValueError(f"Semaphore: k must be <= 2**63-1, got {k}")
        return k

    def _begin(self, rt: Any, gs: Any, k: int) -> bool:
        """park protocol: begin; True when parked."""
        r = ops.sema_acquire(rt.base, self._off, gs.off, k, 0)
        if r == INVAL:
            raise ValueError(f"semaphore: acquire of {k} exceeds the size {self.size}")
        return check(r, "sem.acquire") == PARKED

    def _kick(self) -> None:
        # a cancelled waiter may have been the head that blocked the others
        ops.sema_kick(self._rt.base, self._off)

    def acquire(self, k: int = 1) -> None:
        """Block until k units are free (FIFO).  ValueError if k > the size."""
        rt = self._live_rt()
        k = self._check(k)
        gs = park.current(rt, "sem.acquire()")
        if self._begin(rt, gs, k):
            park.park(gs, self._kick)

    async def acquire_async(self, k: int = 1) -> None:
        rt = self._live_rt()
        k = self._check(k)
        gs = rt.task_g()
        if self._begin(rt, gs, k):
            await park.park_async(gs, self._kick)

    def try_acquire(self, k: int = 1) -> bool:
        """Take k units if they are free now, without blocking; True if taken
        (False also when k exceeds the size, as Go's TryAcquire)."""
        rt = self._live_rt()
        k = self._check(k)
        r = ops.sema_acquire(rt.base, self._off, 0, k, 1)
        return r != INVAL and check(r, "sem.acquire") == OK

    def release(self, k: int = 1) -> None:
        """Raises SyncError("semaphore: released more than held")."""
        rt = self._live_rt()
        k = self._check(k)
        check(ops.sema_release(rt.base, self._off, k), "sema.release")

    @property
    def size(self) -> int:
        return views.sync_word(self._live_rt().arena, self._off, "pg_sema", "size")

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
