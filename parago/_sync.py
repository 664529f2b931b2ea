"""sync: WaitGroup, Mutex, RWMutex, Once, Cond, Semaphore, Pool, and Go
1.21's once_func / once_value / once_values.

All are shared across Ps (arena objects, shm/sync.c) and park the waiting
*goroutine*, never the process, through the one park protocol
(parago/_runtime/park.py: begin = the C operation, park, finish).  Each
blocking method has an ``_async`` form for ``async def`` goroutines that
shares its body.  Misuse raises ``pg.SyncError`` with Go's words, in the
calling goroutine, and leaves the object usable.
"""

from __future__ import annotations

import inspect
import time
from typing import Any, Callable

from ._errors import SyncError
from ._runtime import codec, ops, park, profile
from ._runtime.g import GreenletG
from ._runtime.handles import Handle
from ._runtime.ops import BIG, INVAL, OK, PARKED, RUNFN, SyncKind, Wake, check, fast, lib, views
from ._runtime.stored import block_payload_at as _block_payload_at
from ._runtime.stored import drop_block_refs as _drop_block_refs
from ._runtime.stored import stored_block as _stored_block

_ZERO = ops.c_zero
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_MX_TRY, _MX_RETRY = ops.MX_TRY, ops.MX_RETRY


class _SyncObject(Handle):
    __slots__ = ()
    _skind = 0

    def __new__(cls, *args: Any, **kw: Any) -> Any:
        rt = park.runtime(f"pg.{cls.__name__}()")
        off = check(lib.pg_sync_new(rt.base, cls._skind, cls._initial(*args, **kw)), f"pg.{cls.__name__}", 128)
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
            r = fast.pg_wg_add(rt.cbase, self._c, delta)
        else:
            r = lib.pg_wg_add(rt.base, self._off, delta)
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
        if check(fast.pg_wg_wait(rt.cbase, self._c, gs.c), "wg.wait") == PARKED:
            park.park(gs)

    async def wait_async(self) -> None:
        """``await wg.wait_async()``: wait() for async goroutines."""
        rt = self._live_rt()
        gs = rt.task_g()
        if check(lib.pg_wg_wait(rt.base, self._off, gs.off), "wg.wait") == PARKED:
            await park.park_async(gs)

    def value(self) -> int:
        """The counter (a racy snapshot)."""
        return views.sync_word(self._live_rt().arena, self._off, "pg_wg", "count")

    def go(self, fn: Callable[..., Any], *args: Any) -> None:
        """Go 1.25's WaitGroup.Go: add(1), start ``fn(*args)`` in a goroutine
        (copies, as pg.go), done() when it returns -- also when it raises
        (the exception still ends the program, as a panic in Go)."""
        if not callable(fn):
            raise TypeError(f"WaitGroup.go: fn must be callable, got {type(fn).__name__}")
        rt = self._live_rt()
        self.add(1)
        try:
            if inspect.iscoroutinefunction(fn):
                rt.spawn(_wg_run_async, (self, fn, args), {})
            else:
                rt.spawn(_wg_run, (self, fn, args), {})
        except BaseException:
            self.add(-1)  # nothing started: nothing will call done()
            raise


def _wg_run(wg: WaitGroup, fn: Callable[..., Any], args: tuple) -> None:
    try:
        fn(*args)
    finally:
        wg.done()


async def _wg_run_async(wg: WaitGroup, fn: Callable[..., Any], args: tuple) -> None:
    try:
        await fn(*args)
    finally:
        wg.done()


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
        rt = self._rt
        if rt.attn:  # _live_rt(), inlined on this hot path
            rt = self._live_rt()
        # uncontended: one CAS, no G needed.  rt.current is None on the hub
        # itself (an async goroutine, a loop callback): park.current's
        # ParagoError is for every call from there, taken or not
        if rt.current is None or fast.pg_mutex_trylock(rt.cbase, self._c) != OK:
            gs = park.current(rt, "mu.lock()")
            r = lib.pg_mutex_lock(rt.base, self._off, gs.off, 0, 0)
            if r != OK:
                park.run(gs, self._contended(rt, gs, r))

    async def lock_async(self) -> None:
        """``await mu.lock_async()`` / ``async with mu``: lock() for async goroutines."""
        rt = self._live_rt()
        gs = rt.task_g()
        r = lib.pg_mutex_lock(rt.base, self._off, gs.off, 0, 0)
        if r != OK:
            await park.run_async(gs, self._contended(rt, gs, r))

    def _contended(self, rt: Any, gs: Any, r: int) -> park.Steps:
        """The slow path, parked: handed the lock (starvation mode), or woken
        to compete again at the front of the queue (normal mode)."""
        since = time.monotonic_ns()
        while check(r, "mu.lock") == PARKED:
            yield
            if gs.wake_res() == Wake.HANDOFF:
                return
            r = lib.pg_mutex_lock(rt.base, self._off, gs.off, _MX_RETRY, since)

    def try_lock(self) -> bool:
        """Lock if free, without blocking; True if it was taken."""
        rt = self._live_rt()
        return check(lib.pg_mutex_lock(rt.base, self._off, 0, _MX_TRY, 0), "mu.lock") == OK

    def unlock(self) -> None:
        """Raises SyncError("sync: unlock of unlocked mutex") if not locked."""
        rt = self._rt
        if rt.attn:
            rt = self._live_rt()
        r = fast.pg_mutex_unlock(rt.cbase, self._c)
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
        fn = lib.pg_rw_lock if write else lib.pg_rw_rlock
        if check(fn(rt.base, self._off, gs.off, 0), "rw.lock") != PARKED:
            return None
        return (lambda: lib.pg_rw_writer_gone(rt.base, self._off)) if write else _nothing

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
        return check(lib.pg_rw_lock(rt.base, self._off, 0, 1), "rw.lock") == OK

    def try_rlock(self) -> bool:
        rt = self._live_rt()
        return check(lib.pg_rw_rlock(rt.base, self._off, 0, 1), "rw.lock") == OK

    def unlock(self) -> None:
        rt = self._live_rt()
        check(lib.pg_rw_unlock(rt.base, self._off), "rw.unlock")

    def runlock(self) -> None:
        rt = self._live_rt()
        check(lib.pg_rw_runlock(rt.base, self._off), "rw.runlock")

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
            r = check(lib.pg_once_begin(rt.base, self._off, gs.off, gs.obuf, rt.OBUF, gs.out), "once.do")
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
            data = _stored_block(rt, res) if res is not None else b""
        except Exception:
            data = b""
        self._publish(rt, data)

    def _publish(self, rt: Any, data: bytes) -> None:
        r = lib.pg_once_done(rt.base, self._off, data, len(data))
        if r != OK:
            _drop_block_refs(rt, data)  # not stored: its references go back
        check(r, "once.do", len(data))

    def _result(self, rt: Any, gs: Any, r: int) -> Any:
        if r == 0:
            return None
        data = rt.arena.read(gs.out[0], gs.out[1]) if r == BIG else bytes(gs.obuf_mv[:r])
        # the stored result keeps its references: each decode takes (and so
        # must give back) the reference of every handle inside it
        refs: list[int] = []
        v = codec.loads_collecting(memoryview(data)[_block_payload_at(data) :], refs)
        if refs:
            ops.incref_many(rt, refs)
        return v


_RUN = object()  # Once: this caller runs fn


class Cond(Handle):
    """Go's sync.Cond: wait() atomically unlocks L, parks, and relocks L."""

    __slots__ = ("_L",)
    _kind = "Cond"
    _L: Any

    def __new__(cls, mu: Any) -> "Cond":
        # §1 spells it pg.Cond(mu); Go's field name L stays as the property.
        if not (hasattr(mu, "lock") and hasattr(mu, "unlock")):
            raise TypeError(f"pg.Cond: mu must be a Locker (lock/unlock), got {type(mu).__name__}")
        rt = park.runtime("pg.Cond()")
        off = check(lib.pg_sync_new(rt.base, SyncKind.COND, 0), "pg.Cond", 128)
        c = cls._new(rt, off)
        c._L = mu
        return c

    @property
    def L(self) -> Any:
        return self._L

    def __reduce__(self) -> tuple:
        return (_cond_rebuild, (Handle.__reduce__(self), self._L))

    def _begin(self, rt: Any, gs: Any) -> None:
        """Queue as a waiter, then unlock L (Go's order: a signal between the
        two is not lost)."""
        check(lib.pg_cond_enqueue(rt.base, self._off, gs.off), "cond.wait")
        try:
            self._L.unlock()
        except BaseException:
            lib.pg_park_cancel(rt.base, gs.off)
            raise

    def wait(self) -> None:
        rt = self._live_rt()
        gs = park.current(rt, "cond.wait()")
        self._begin(rt, gs)
        try:
            park.park(gs)
        finally:  # Go's Wait returns with L locked, whatever ended the wait
            self._L.lock()

    async def wait_async(self) -> None:
        rt = self._live_rt()
        gs = rt.task_g()
        self._begin(rt, gs)
        try:
            await park.park_async(gs)
        finally:
            lock_async = getattr(self._L, "lock_async", None)
            if lock_async is not None:
                await lock_async()
            else:
                self._L.lock()

    def signal(self) -> None:
        """Wake one waiter, if any."""
        rt = self._live_rt()
        check(lib.pg_cond_signal(rt.base, self._off, 0), "cond.signal")

    def broadcast(self) -> None:
        """Wake every waiter."""
        rt = self._live_rt()
        check(lib.pg_cond_signal(rt.base, self._off, 1), "cond.signal")


def _cond_rebuild(h: tuple, L: Any) -> Cond:
    fn, args = h
    c = fn(*args)
    c._L = L
    return c


def _weight(v: Any, name: str = "k", go: str = "") -> int:
    """A Semaphore's size n or a weight k: an int in [0, 2**63-1] (Go's
    int64).  A plain function, called in place of a method, so acquire and
    release pay no extra call for it."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"Semaphore: {name} must be an int, got {type(v).__name__}")
    if v < 0:
        raise ValueError(f"Semaphore: {name} must be >= 0, got {v}")
    if v > _INT64_MAX:
        raise ValueError(f"Semaphore: {name} must be <= 2**63-1{go}, got {v}")
    return v


class Semaphore(_SyncObject):
    """A weighted semaphore (golang.org/x/sync/semaphore): FIFO, so a large
    request is not starved by a stream of small ones."""

    __slots__ = ()
    _kind = "Semaphore"
    _skind = SyncKind.SEMA

    @classmethod
    def _initial(cls, n: int = 1) -> int:
        return _weight(n, "n", " (an int64, Go's NewWeighted)")

    def _begin(self, rt: Any, gs: Any, k: int) -> bool:
        """park protocol: begin; True when parked."""
        r = lib.pg_sema_acquire(rt.base, self._off, gs.off, k, 0)
        if r == INVAL:
            raise ValueError(f"semaphore: acquire of {k} exceeds the size {self.size}")
        return check(r, "sem.acquire") == PARKED

    def _kick(self) -> None:
        # a cancelled waiter may have been the head that blocked the others
        lib.pg_sema_kick(self._rt.base, self._off)

    def acquire(self, k: int = 1, ctx: Any = None) -> None:
        """Block until k units are free (FIFO).  ValueError if k > the size.

        With a context (x/sync's ``Acquire(ctx, n)``): raises ``ctx.err()``
        when the context is done first -- also when it already is, even if
        the units are free -- and then holds nothing; a k beyond the size
        waits for the context."""
        rt = self._live_rt()
        k = _weight(k)
        gs = park.current(rt, "sem.acquire()")
        if ctx is not None:
            self._acquire_ctx(rt, gs, k, ctx)
            return
        if self._begin(rt, gs, k):
            park.park(gs, self._kick)

    @staticmethod
    def _ctx_first(ctx: Any) -> None:
        from ._context import Context

        if not isinstance(ctx, Context):
            raise TypeError(f"sem.acquire: ctx must be a pg.context Context, got {type(ctx).__name__}")
        err = ctx.err()
        if err is not None:
            raise err  # done before the call: fail even if we could acquire (Go)

    def _watch(self, rt: Any, gs: Any, ctx: Any) -> tuple[_CtxWait, Any]:
        from ._chan import Chan

        box = _CtxWait(gs)
        stop = Chan(0)
        rt.spawn(_ctx_watch, (rt, ctx.done(), stop, box), {}, local=True, system=True)
        return box, stop

    def _ctx_last(self, box: _CtxWait, stop: Any, k: int, ctx: Any) -> None:
        """After the park: the watcher's cancel won (raise, nothing held), or
        the units are ours -- given back if the context is done by now (Go)."""
        if box.ctx_won:
            self._kick()  # the head that left may have blocked the others
            raise ctx.err()
        err = ctx.err()
        if err is not None:
            self.release(k)
            raise err

    def _acquire_ctx(self, rt: Any, gs: Any, k: int, ctx: Any) -> None:
        """Park on the semaphore while a watcher goroutine of this P waits on
        ctx.done(); the first to claim the G's park ticket wins: the
        semaphore's release (the units are ours) or the watcher's cancel
        of the park (nothing is: the waiter leaves the queue)."""
        self._ctx_first(ctx)
        if k > self.size:
            ctx.done().recv_ok()  # doomed: wait for the context, blocking no one (Go)
            raise ctx.err()
        if not self._begin(rt, gs, k):
            return
        if not isinstance(gs, GreenletG):
            self._acquire_ctx_thread(rt, gs, k, ctx)
            return
        box, stop = self._watch(rt, gs, ctx)
        try:
            park.park(gs, self._kick)
        finally:
            box.finished = True
            stop.close()
        self._ctx_last(box, stop, k, ctx)

    async def _acquire_ctx_async(self, rt: Any, gs: Any, k: int, ctx: Any) -> None:
        self._ctx_first(ctx)
        if k > self.size:
            await ctx.done().recv_ok_async()
            raise ctx.err()
        if not self._begin(rt, gs, k):
            return
        box, stop = self._watch(rt, gs, ctx)
        try:
            await park.park_async(gs, self._kick)
        finally:
            box.finished = True
            stop.close()
        self._ctx_last(box, stop, k, ctx)

    def _acquire_ctx_thread(self, rt: Any, gs: Any, k: int, ctx: Any) -> None:
        """A thread that is no goroutine has no hub to resume it: give up the
        queued wait and poll (rare: pg.blocking workers, user threads)."""
        if not lib.pg_park_cancel(rt.base, gs.off):
            park.park(gs)  # claimed meanwhile: the units are ours
            return
        self._kick()
        delay = 0.0005
        while True:
            err = ctx.err()
            if err is not None:
                raise err
            if self.try_acquire(k):
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    async def acquire_async(self, k: int = 1, ctx: Any = None) -> None:
        """``await sem.acquire_async(k, ctx)``: acquire() for async goroutines."""
        rt = self._live_rt()
        k = _weight(k)
        gs = rt.task_g()
        if ctx is not None:
            await self._acquire_ctx_async(rt, gs, k, ctx)
            return
        if self._begin(rt, gs, k):
            await park.park_async(gs, self._kick)

    def try_acquire(self, k: int = 1) -> bool:
        """Take k units if they are free now, without blocking; True if taken
        (False also when k exceeds the size, as Go's TryAcquire)."""
        rt = self._live_rt()
        k = _weight(k)
        r = lib.pg_sema_acquire(rt.base, self._off, 0, k, 1)
        return r != INVAL and check(r, "sem.acquire") == OK

    def release(self, k: int = 1) -> None:
        """Raises SyncError("semaphore: released more than held")."""
        rt = self._live_rt()
        k = _weight(k)
        check(lib.pg_sema_release(rt.base, self._off, k), "sema.release")

    @property
    def size(self) -> int:
        return views.sync_word(self._live_rt().arena, self._off, "pg_sema", "size")

    def __enter__(self) -> "Semaphore":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class _CtxWait:
    """A semaphore waiter and its context watcher (both on one P's hub,
    so the two flags need no lock)."""

    __slots__ = ("gs", "finished", "ctx_won")

    def __init__(self, gs: Any) -> None:
        self.gs = gs
        self.finished = False  # the waiter resumed: the watcher must not touch its park any more
        self.ctx_won = False  # the watcher cancelled the park: nothing was acquired


def _ctx_watch(rt: Any, done: Any, stop: Any, box: _CtxWait) -> None:
    from ._chan import Recv, select

    i, _, _ = select(Recv(done), Recv(stop))
    if i == 0 and not box.finished and lib.pg_park_cancel(rt.base, box.gs.off):
        # the ticket was still WAITING: no release claimed it, none will
        box.ctx_won = True
        rt.push_local(box.gs)


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


# ---------------------------------------------------------------------------
# Go 1.21's OnceFunc / OnceValue / OnceValues


class _OnceCall:
    """The callable of once_func / once_value / once_values: a handle (it
    pickles to the same program-wide Once, with a copy of fn), so it can
    be passed to goroutines on any P.

    The first call anywhere runs fn; its outcome -- (True, result) or
    (False, the exception) -- is stored encoded in the Once, so every
    caller on every P returns a copy of the result or raises (a copy of)
    the exception, as Go's re-panic on every call.  A P keeps the outcome
    it got first, so its later calls cost no foreign call (and the P that
    ran fn re-raises the very exception object fn raised).
    """

    __slots__ = ("_once", "_fn", "_value", "_out", "_claimed")

    def __init__(self, fn: Callable[[], Any] | None, value: bool, once: Once | None = None) -> None:
        self._once = once if once is not None else Once()
        self._fn = fn  # None once called (and in the copies made after)
        self._value = value  # once_value / once_values: return the result
        self._out: tuple[bool, Any] | None = None
        self._claimed = False  # this caller took the run already (_claim)

    def __reduce__(self) -> tuple:
        return (_OnceCall, (self._fn, self._value, self._once))

    def __call__(self) -> Any:
        out = self._out
        if out is None:
            out = self._out = self._outcome()
        ok, v = out
        if not ok:
            raise v
        return v if self._value else None

    def _claim(self) -> None:
        """Take the run of this (fresh) Once now, before anyone else can see
        it -- singleflight's leader, so that a duplicate never runs it."""
        once = self._once
        rt = once._live_rt()
        gs = park.current(rt, "once_func()")
        self._claimed = park.run(gs, once._steps(rt, gs)) is _RUN

    def _outcome(self) -> tuple[bool, Any]:
        once = self._once
        rt = once._live_rt()
        if self._claimed:
            self._claimed = False
            res: Any = _RUN
        else:
            gs = park.current(rt, "once_func()")
            res = park.run(gs, once._steps(rt, gs))
        if res is not _RUN:
            return res  # type: ignore[no-any-return]
        fn, self._fn = self._fn, None  # Go: do not keep fn alive after the call
        if fn is None:  # a copy made after the call began: the Once cannot be new
            raise SyncError("sync: once_func copied after its call began has nothing to run")
        try:
            out: tuple[bool, Any] = (True, fn())
        except Exception as e:
            out = (False, e)
        except BaseException:
            # Shutdown or goexit: fn never finished; the others get an error, not a hang
            self._publish(rt, (False, SyncError("sync: function passed to once_func did not return")))
            raise
        self._publish(rt, out)
        return out

    def _publish(self, rt: Any, out: tuple[bool, Any]) -> None:
        try:
            data = _stored_block(rt, out)
        except Exception as e:
            what = "result" if out[0] else f"exception {type(out[1]).__name__}"
            data = _stored_block(rt, (False, SyncError(f"sync: once_func's {what} cannot be copied to this P: {e}")))
        self._once._publish(rt, data)

    def __repr__(self) -> str:
        return f"<pg.once_{'value' if self._value else 'func'} of {self._fn!r}>"


def _callable(fn: Any, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what}: fn must be callable, got {type(fn).__name__}")


def once_func(fn: Callable[[], Any]) -> Callable[[], None]:
    """Go's sync.OnceFunc: a callable that runs fn once program-wide; every
    call, on every P, returns (None) only after fn finished, and raises
    (a copy of) fn's exception if it raised.  A handle: pass it to
    goroutines freely.  fn's side effects exist only in the P that ran it."""
    _callable(fn, "once_func")
    return _OnceCall(fn, False)


def once_value(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Go's sync.OnceValue: as once_func, and every call returns (a copy of)
    fn's result."""
    _callable(fn, "once_value")
    return _OnceCall(fn, True)


def once_values(fn: Callable[[], tuple]) -> Callable[[], tuple]:
    """Go's sync.OnceValues: as once_value for an fn that returns a pair
    ``(value, err)``; every call returns (a copy of) that pair."""
    _callable(fn, "once_values")
    return _OnceCall(fn, True)


# --mutexprofile: profile.py wraps these unlocks in a P while its run profiles (nothing otherwise)
profile.register_lockers(Mutex, RWMutex)
