"""sync: WaitGroup, Mutex, RWMutex, Once, Cond, Semaphore, Pool (DESIGN §1
"sync and atomics"), at procs=1 and procs=2.

Goroutines get copies of their arguments: every result comes back through a
shared object (a channel, an atomic, a pg.Buffer).  ``go_on(p, fn, ...)``
starts a goroutine on a chosen P so that the procs=2 runs really cross
processes.
"""

from __future__ import annotations

import gc
import struct
import time

import pytest

import parago as pg
from parago._runtime import state
from parago._shim import offset
from tests.helpers import go_on, recv_within

# ---------------------------------------------------------------------------
# helpers


def wait_within(wg: pg.WaitGroup, seconds: float = 10.0) -> None:
    done = pg.Chan(1)
    pg.go(lambda: (wg.wait(), done.send(True)))
    recv_within(done, seconds)


def nothing_within(ch: pg.Chan, seconds: float) -> bool:
    """True if nothing arrives on ch for ``seconds``."""
    i, _, _ = pg.select(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    return i == 1


def _where(ch: pg.Chan) -> None:
    ch.send(state.rt.p)


def test_go_on_places_goroutines_on_every_p(run, procs):
    def main():
        ch = pg.Chan(8)
        for i in range(8):
            go_on(i, _where, ch)
        return sorted(recv_within(ch) for _ in range(8))

    assert run(main) == sorted(i % procs for i in range(8))


# ---------------------------------------------------------------------------
# WaitGroup


def _count_and_done(wg: pg.WaitGroup, n: pg.atomic.Int64) -> None:
    pg.sleep(0.005)
    n.add(1)
    wg.done()


def test_waitgroup_wait_returns_after_every_done(run):
    def main():
        wg = pg.WaitGroup()
        n = pg.atomic.Int64()
        for i in range(8):
            wg.add(1)
            go_on(i, _count_and_done, wg, n)
        wg.wait()
        return n.load()

    assert run(main) == 8


def test_waitgroup_wait_with_zero_counter_returns_at_once(run):
    def main():
        wg = pg.WaitGroup()
        wg.wait()
        wg.add(3)
        wg.add(-3)
        wg.wait()
        return True

    assert run(main) is True


def _waiter(wg: pg.WaitGroup, out: pg.Chan) -> None:
    wg.wait()
    out.send(state.rt.p)


def test_waitgroup_releases_every_waiter(run):
    def main():
        wg = pg.WaitGroup()
        wg.add(1)
        out = pg.Chan(4)
        for i in range(4):
            go_on(i, _waiter, wg, out)
        assert nothing_within(out, 0.05), "a waiter returned while the counter was 1"
        wg.done()
        return len([recv_within(out) for _ in range(4)])

    assert run(main) == 4


def test_waitgroup_negative_counter_raises_and_leaves_counter_usable(run):
    def main():
        wg = pg.WaitGroup()
        with pytest.raises(pg.SyncError, match=r"^sync: negative WaitGroup counter$"):
            wg.done()
        wg.add(1)
        with pytest.raises(pg.SyncError, match=r"^sync: negative WaitGroup counter$"):
            wg.add(-2)
        # the counter is still 1: one done releases wait
        n = pg.atomic.Int64()
        go_on(1, _count_and_done, wg, n)
        wait_within(wg)
        assert n.load() == 1
        wg.wait()
        with pytest.raises(pg.SyncError, match=r"^sync: negative WaitGroup counter$"):
            wg.done()
        return True

    assert run(main) is True


def test_waitgroup_negative_counter_is_syncerror_in_a_goroutine_too(run):
    def probe(wg, out):
        try:
            wg.done()
        except pg.SyncError as e:
            out.send(str(e))
        else:
            out.send("no error")

    def main():
        wg = pg.WaitGroup()
        out = pg.Chan(1)
        go_on(1, probe, wg, out)
        return recv_within(out)

    assert run(main) == "sync: negative WaitGroup counter"


# ---------------------------------------------------------------------------
# Mutex


def test_mutex_lock_unlock_try_lock(run):
    def main():
        mu = pg.Mutex()
        assert mu.try_lock() is True
        assert mu.try_lock() is False
        mu.unlock()
        mu.lock()
        assert mu.try_lock() is False
        mu.unlock()
        assert mu.try_lock() is True
        mu.unlock()
        return True

    assert run(main) is True


def test_mutex_with_statement_releases_even_on_error(run):
    def main():
        mu = pg.Mutex()
        with mu:
            assert mu.try_lock() is False
        assert mu.try_lock() is True
        mu.unlock()
        with pytest.raises(KeyError):
            with mu:
                raise KeyError("x")
        assert mu.try_lock() is True
        mu.unlock()
        return True

    assert run(main) is True


def test_mutex_unlock_of_unlocked_raises_and_mutex_stays_usable(run):
    def main():
        mu = pg.Mutex()
        with pytest.raises(pg.SyncError, match=r"^sync: unlock of unlocked mutex$"):
            mu.unlock()
        mu.lock()
        mu.unlock()
        with pytest.raises(pg.SyncError, match=r"^sync: unlock of unlocked mutex$"):
            mu.unlock()
        assert mu.try_lock() is True
        mu.unlock()
        return True

    assert run(main) is True


def _unlock_for_other(mu: pg.Mutex, out: pg.Chan) -> None:
    mu.unlock()
    out.send(state.rt.p)


def test_mutex_may_be_unlocked_by_another_goroutine(run, procs):
    def main():
        mu = pg.Mutex()
        mu.lock()
        out = pg.Chan(1)
        go_on(1, _unlock_for_other, mu, out)
        p = recv_within(out)
        assert mu.try_lock() is True, "the mutex is still locked after another goroutine unlocked it"
        mu.unlock()
        return p

    assert run(main) == 1 % procs


def _unlock_later(mu: pg.Mutex) -> None:
    pg.sleep(0.02)
    mu.unlock()


def test_mutex_lock_parks_until_another_goroutine_unlocks(run):
    def main():
        mu = pg.Mutex()
        mu.lock()
        go_on(1, _unlock_later, mu)
        mu.lock()  # parks main until the goroutine unlocks
        mu.unlock()
        return True

    assert run(main) is True


_N_WORKERS = 8
_N_ITERS = 150


def _rmw_worker(mu: pg.Mutex, buf: pg.Buffer, wg: pg.WaitGroup, iters: int) -> None:
    view = memoryview(buf)
    try:
        for i in range(iters):
            with mu:
                (v,) = struct.unpack_from("<q", view, 0)
                if i % 8 == 0:
                    pg.gosched()  # let others of this P run (and try to lock) mid-update
                struct.pack_into("<q", view, 0, v + 1)
    finally:
        view.release()
        wg.done()


@pytest.mark.timeout(60)
def test_mutex_excludes_a_non_atomic_read_modify_write_across_ps(run):
    def main():
        mu = pg.Mutex()
        buf = pg.Buffer(8)
        wg = pg.WaitGroup()
        for i in range(_N_WORKERS):
            wg.add(1)
            go_on(i, _rmw_worker, mu, buf, wg, _N_ITERS)
        wait_within(wg, 50)
        return struct.unpack_from("<q", buf, 0)[0]

    assert run(main) == _N_WORKERS * _N_ITERS


# ---------------------------------------------------------------------------
# RWMutex


def _reader_holds(rw: pg.RWMutex, entered: pg.WaitGroup, release: pg.Chan, left: pg.WaitGroup) -> None:
    rw.rlock()
    entered.done()
    try:
        release.recv_ok()  # held until main closes release
    finally:
        rw.runlock()
        left.done()


def test_rwmutex_admits_many_readers_at_once_and_excludes_the_writer(run):
    def main():
        rw = pg.RWMutex()
        entered, left = pg.WaitGroup(), pg.WaitGroup()
        release = pg.Chan()
        for i in range(4):
            entered.add(1)
            left.add(1)
            go_on(i, _reader_holds, rw, entered, release, left)
        wait_within(entered)  # all four hold the read lock at the same time
        assert rw.try_lock() is False, "a writer got in while readers held the lock"
        assert rw.try_rlock() is True
        rw.runlock()
        release.close()
        wait_within(left)
        assert rw.try_lock() is True
        rw.unlock()
        return True

    assert run(main) is True


def _rlock_and_report(rw: pg.RWMutex, out: pg.Chan, tag: str) -> None:
    rw.rlock()
    out.send(tag)
    rw.runlock()


def _lock_and_report(rw: pg.RWMutex, out: pg.Chan, tag: str) -> None:
    rw.lock()
    out.send(tag)
    pg.sleep(0.02)
    rw.unlock()


def test_rwmutex_writer_excludes_readers_and_writers(run):
    def main():
        rw = pg.RWMutex()
        rw.lock()
        assert rw.try_rlock() is False
        assert rw.try_lock() is False
        out = pg.Chan(2)
        go_on(1, _rlock_and_report, rw, out, "reader")
        go_on(0, _lock_and_report, rw, out, "writer")
        assert nothing_within(out, 0.05), "got in while the writer held the lock"
        rw.unlock()
        got = {recv_within(out), recv_within(out)}
        _until(rw.try_lock)  # free again once the writer unlocked
        rw.unlock()
        return got

    assert run(main) == {"reader", "writer"}


def test_rwmutex_rlocker_locks_for_reading(run):
    def main():
        rw = pg.RWMutex()
        lk = rw.rlocker()
        lk.lock()
        assert rw.try_lock() is False
        assert rw.try_rlock() is True  # another reader is fine
        rw.runlock()
        lk.unlock()
        assert rw.try_lock() is True
        rw.unlock()
        with lk:
            assert rw.try_lock() is False
        assert rw.try_lock() is True
        rw.unlock()
        return True

    assert run(main) is True


def test_rwmutex_unlock_errors_use_go_words_and_leave_it_usable(run):
    def main():
        rw = pg.RWMutex()
        with pytest.raises(pg.SyncError, match=r"^sync: RUnlock of unlocked RWMutex$"):
            rw.runlock()
        with pytest.raises(pg.SyncError, match=r"^sync: Unlock of unlocked RWMutex$"):
            rw.unlock()
        rw.rlock()
        rw.runlock()
        with pytest.raises(pg.SyncError, match=r"^sync: RUnlock of unlocked RWMutex$"):
            rw.runlock()
        rw.lock()
        rw.unlock()
        with pytest.raises(pg.SyncError, match=r"^sync: Unlock of unlocked RWMutex$"):
            rw.unlock()
        with rw:
            assert rw.try_rlock() is False
        assert rw.try_lock() is True
        rw.unlock()
        return True

    assert run(main) is True


@pytest.mark.timeout(60)
def test_rwmutex_waiting_writer_blocks_new_readers(run):
    def main():
        rw = pg.RWMutex()
        out = pg.Chan(4)
        rw.rlock()
        go_on(1, _lock_and_report, rw, out, "writer")
        # wait until the writer is queued: from then on new readers are refused
        deadline = time.monotonic() + 10
        while rw.try_rlock():
            rw.runlock()
            assert time.monotonic() < deadline, "a waiting writer never blocked new readers"
            pg.sleep(0.002)
        go_on(0, _rlock_and_report, rw, out, "late reader")
        assert nothing_within(out, 0.05), "someone got in while a reader held the lock and a writer waited"
        rw.runlock()
        return [recv_within(out), recv_within(out)]

    assert run(main) == ["writer", "late reader"]


# ---------------------------------------------------------------------------
# Once


def _once_caller(once: pg.Once, runs: pg.atomic.Int64, finished: pg.atomic.Bool, out: pg.Chan) -> None:
    def init():
        runs.add(1)
        pg.sleep(0.02)  # others arrive while fn runs
        finished.store(True)
        return {"answer": 42, "by": state.rt.p}

    res = once.do(init)
    # do returns only after fn finished, whichever P ran it
    out.send((res, finished.load()))


@pytest.mark.timeout(60)
def test_once_runs_fn_exactly_once_program_wide(run):
    def main():
        once = pg.Once()
        runs = pg.atomic.Int64()
        finished = pg.atomic.Bool(False)
        out = pg.Chan(8)
        for i in range(8):
            go_on(i, _once_caller, once, runs, finished, out)
        results = [recv_within(out) for _ in range(8)]
        # a late caller does not run it again either
        _once_caller(once, runs, finished, out)
        results.append(recv_within(out))
        return runs.load(), results

    runs, results = run(main)
    assert runs == 1
    first = results[0][0]
    assert first["answer"] == 42
    assert all(r == (first, True) for r in results), results


def _once_late(once: pg.Once, runs: pg.atomic.Int64, out: pg.Chan) -> None:
    out.send(once.do(lambda: runs.add(1)))


def test_once_fn_that_raises_raises_in_that_caller_and_once_is_done(run):
    def main():
        once = pg.Once()
        runs = pg.atomic.Int64()

        def bad():
            runs.add(1)
            raise ValueError("init failed")

        with pytest.raises(ValueError, match=r"^init failed$"):
            once.do(bad)
        assert once.do(lambda: runs.add(100)) is None
        out = pg.Chan(1)
        go_on(1, _once_late, once, runs, out)
        assert recv_within(out) is None
        return runs.load()

    assert run(main) == 1


def test_once_result_is_a_copy_for_callers_on_other_ps(run):
    def main():
        once = pg.Once()
        assert once.do(lambda: [1, 2, 3]) == [1, 2, 3]
        out = pg.Chan(1)
        go_on(1, _once_late, once, pg.atomic.Int64(), out)
        return recv_within(out)

    assert run(main) == [1, 2, 3]


def _make_buffer() -> pg.Buffer:
    b = pg.Buffer(64)
    b[0] = 7
    return b


def _once_buffer_caller(once: pg.Once, out: pg.Chan) -> None:
    b = once.do(_make_buffer)
    out.send((b, b[0]))


def _read_first(ch: pg.Chan, out: pg.Chan) -> None:
    b = ch.recv()
    out.send(b[0])


@pytest.mark.timeout(60)
def test_once_result_can_be_a_shared_object(run):
    # DESIGN: "use Once for shared objects or results" -- every caller gets
    # a handle to the same Buffer, and it stays alive while anyone holds it
    def main():
        once = pg.Once()
        out = pg.Chan(8)
        for i in range(8):
            go_on(i, _once_buffer_caller, once, out)
        got = [recv_within(out) for _ in range(8)]
        mine = once.do(_make_buffer)
        assert all(b == mine and v == 7 for b, v in got), got
        del got
        gc.collect()
        pg.sleep(0.05)  # every caller has dropped its handle by now
        ch, back = pg.Chan(1), pg.Chan(1)
        go_on(1, _read_first, ch, back)
        ch.send(mine)  # still a live object: it can travel and be read
        return recv_within(back), mine[0]

    assert run(main) == (7, 7)


# ---------------------------------------------------------------------------
# Cond


def _consumer(
    mu: pg.Mutex, cond: pg.Cond, items: pg.atomic.Int64, got: pg.atomic.Int64, n: int, wg: pg.WaitGroup
) -> None:
    for _ in range(n):
        with mu:
            while items.load() == 0:
                cond.wait()
            items.add(-1)
            got.add(1)
    wg.done()


@pytest.mark.timeout(60)
def test_cond_producer_consumer_conserves_items(run):
    def main():
        mu = pg.Mutex()
        cond = pg.Cond(mu)
        items, got = pg.atomic.Int64(), pg.atomic.Int64()
        wg = pg.WaitGroup()
        for i in range(4):
            wg.add(1)
            go_on(i, _consumer, mu, cond, items, got, 25, wg)
        for k in range(100):
            with mu:
                items.add(1)
                cond.signal()
            if k % 10 == 0:
                pg.sleep(0.001)
        wait_within(wg, 50)
        return got.load(), items.load()

    assert run(main) == (100, 0)


def _cond_waiter(mu: pg.Mutex, cond: pg.Cond, waiting: pg.atomic.Int64, go_flag: pg.atomic.Bool, out: pg.Chan) -> None:
    with mu:
        waiting.add(1)
        while not go_flag.load():
            cond.wait()
        # wait() returns with the lock held again
        held = not mu.try_lock()
    out.send(held)


def _until(pred, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        assert time.monotonic() < deadline, "condition not reached in time"
        pg.sleep(0.002)


def test_cond_broadcast_wakes_every_waiter(run):
    def main():
        mu = pg.Mutex()
        cond = pg.Cond(mu)
        waiting = pg.atomic.Int64()
        flag = pg.atomic.Bool(False)
        out = pg.Chan(4)
        for i in range(4):
            go_on(i, _cond_waiter, mu, cond, waiting, flag, out)
        _until(lambda: waiting.load() == 4)
        with mu:  # every waiter is inside cond.wait now
            flag.store(True)
            cond.broadcast()
        return [recv_within(out) for _ in range(4)]

    assert run(main) == [True] * 4


def _signal_waiter(mu: pg.Mutex, cond: pg.Cond, waiting: pg.atomic.Int64, out: pg.Chan) -> None:
    with mu:
        waiting.add(1)
        cond.wait()
    out.send(1)


def test_cond_signal_wakes_one_waiter_at_a_time(run):
    def main():
        mu = pg.Mutex()
        cond = pg.Cond(mu)
        waiting = pg.atomic.Int64()
        out = pg.Chan(2)
        for i in range(2):
            go_on(i, _signal_waiter, mu, cond, waiting, out)
        _until(lambda: waiting.load() == 2)
        with mu:
            cond.signal()
        recv_within(out)
        assert nothing_within(out, 0.05), "one signal woke two waiters"
        with mu:
            cond.signal()
        recv_within(out)
        cond.signal()  # no waiter: a no-op
        cond.broadcast()
        return True

    assert run(main) is True


def test_cond_needs_a_locker(run):
    def main():
        with pytest.raises(TypeError):
            pg.Cond(42)
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# Semaphore


def test_semaphore_weighted_acquire_release_try_acquire(run):
    def main():
        sem = pg.Semaphore(5)
        sem.acquire(3)
        assert sem.try_acquire(3) is False
        assert sem.try_acquire(2) is True
        assert sem.try_acquire() is False
        sem.release(4)
        assert sem.try_acquire(4) is True
        sem.release(5)
        sem.acquire()
        sem.release()
        with sem:
            assert sem.try_acquire(5) is False
        assert sem.try_acquire(5) is True
        sem.release(5)
        return True

    assert run(main) is True


def test_semaphore_release_beyond_acquired_raises(run):
    def main():
        sem = pg.Semaphore(2)
        with pytest.raises(pg.SyncError, match=r"^semaphore: released more than held$"):
            sem.release()
        sem.acquire(2)
        with pytest.raises(pg.SyncError, match=r"^semaphore: released more than held$"):
            sem.release(3)
        sem.release(2)  # still usable, and still holding exactly 2
        assert sem.try_acquire(2) is True
        sem.release(2)
        return True

    assert run(main) is True


def test_semaphore_acquire_more_than_size_raises_valueerror(run):
    def main():
        sem = pg.Semaphore(3)
        with pytest.raises(ValueError):
            sem.acquire(4)
        with pytest.raises(ValueError):
            sem.acquire(-1)
        with pytest.raises(TypeError):
            sem.acquire(1.5)
        assert sem.try_acquire(3) is True
        sem.release(3)
        return True

    assert run(main) is True


def _sem_take(sem: pg.Semaphore, k: int, out: pg.Chan, tag: str, hold: float) -> None:
    sem.acquire(k)
    out.send(tag)
    pg.sleep(hold)
    sem.release(k)


def test_semaphore_is_fifo_so_a_big_request_is_not_starved(run):
    def main():
        sem = pg.Semaphore(4)
        out = pg.Chan(4)
        sem.acquire(3)
        go_on(1, _sem_take, sem, 4, out, "big", 0.05)
        # wait until the big request is queued: from then on small ones wait behind it
        deadline = time.monotonic() + 10
        while sem.try_acquire(1):
            sem.release(1)
            assert time.monotonic() < deadline, "a queued request did not stop try_acquire"
            pg.sleep(0.002)
        go_on(0, _sem_take, sem, 1, out, "small", 0)
        assert nothing_within(out, 0.05), "a request overtook the queued big one"
        sem.release(3)
        order = [recv_within(out), recv_within(out)]
        _until(lambda: sem.try_acquire(4))  # both released what they took
        sem.release(4)
        return order

    assert run(main) == ["big", "small"]


def _sem_worker(sem: pg.Semaphore, cur: pg.atomic.Int64, peak: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    sem.acquire()
    try:
        now = cur.add(1)
        while True:
            m = peak.load()
            if now <= m or peak.compare_and_swap(m, now):
                break
        pg.sleep(0.01)
        cur.add(-1)
    finally:
        sem.release()
        wg.done()


def test_semaphore_bounds_concurrency_across_ps(run):
    def main():
        sem = pg.Semaphore(2)
        cur, peak = pg.atomic.Int64(), pg.atomic.Int64()
        wg = pg.WaitGroup()
        for i in range(8):
            wg.add(1)
            go_on(i, _sem_worker, sem, cur, peak, wg)
        wait_within(wg)
        return peak.load(), cur.load()

    peak, cur = run(main)
    assert 1 <= peak <= 2
    assert cur == 0


# ---------------------------------------------------------------------------
# Pool


def _pool_get(pool: pg.Pool, out: pg.Chan) -> None:
    out.send(pool.get())


def test_pool_get_returns_new_when_empty_and_reuses_put_buffers(run):
    def main():
        pool = pg.Pool(lambda: pg.Buffer(64))
        a = pool.get()
        assert isinstance(a, pg.Buffer) and len(a) == 64
        b = pool.get()
        assert a != b  # two fresh buffers
        pool.put(a)
        assert pool.get() == a
        # a buffer put on one P is handed out on another
        pool.put(b)
        out = pg.Chan(1)
        go_on(1, _pool_get, pool, out)
        got = recv_within(out)
        assert got == b
        # empty again: new() runs in the caller
        c = pool.get()
        assert c != a and c != b
        return True

    assert run(main) is True


def test_pool_without_new_returns_none_when_empty(run):
    def main():
        pool = pg.Pool()
        assert pool.get() is None
        buf = pg.Buffer(8)
        pool.put(buf)
        assert pool.get() == buf
        assert pool.get() is None
        return True

    assert run(main) is True


def test_pool_put_into_a_full_pool_drops_the_buffer_without_leaking_it(run):
    # a dropped Buffer is freed when no P holds it any more
    def inuse():
        gc.collect()
        state.rt.flush_decrefs()
        return state.rt.arena.q[offset("pg_arena", "inuse") // 8]

    def main():
        pool = pg.Pool(size=1)
        kept = pg.Buffer(8)
        pool.put(kept)
        base = inuse()
        for _ in range(50):
            pool.put(pg.Buffer(64 * 1024))  # full: dropped
        grown = inuse() - base
        assert pool.get() == kept
        return grown

    assert run(main) < 64 * 1024


def test_pool_put_of_a_non_handle_raises_typeerror(run):
    def main():
        pool = pg.Pool(lambda: pg.Buffer(8))
        for bad in (b"bytes", 42, bytearray(8), [pg.Buffer(8)]):
            with pytest.raises(TypeError):
                pool.put(bad)
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# async forms


async def _async_worker(mu: pg.Mutex, buf: pg.Buffer, sem: pg.Semaphore, wg: pg.WaitGroup, n: int) -> None:
    for _ in range(n):
        await sem.acquire_async()
        try:
            async with mu:
                (v,) = struct.unpack_from("<q", buf, 0)
                await pg.sleep_async(0)
                struct.pack_into("<q", buf, 0, v + 1)
        finally:
            sem.release()
    wg.done()


@pytest.mark.one_machine("the workers share a pg.Buffer's memory: across nodes a Buffer is a copy")
def test_async_forms_wait_lock_acquire(run):
    async def main():
        mu = pg.Mutex()
        sem = pg.Semaphore(2)
        buf = pg.Buffer(8)
        wg = pg.WaitGroup()
        for _ in range(4):
            wg.add(1)
            pg.go(_async_worker, mu, buf, sem, wg, 20)
        await wg.wait_async()
        await mu.lock_async()
        mu.unlock()
        return struct.unpack_from("<q", buf, 0)[0]

    assert run(main) == 80


async def _async_cond_waiter(
    mu: pg.Mutex, cond: pg.Cond, flag: pg.atomic.Bool, waiting: pg.atomic.Int64, out: pg.Chan
) -> None:
    async with mu:
        waiting.add(1)
        while not flag.load():
            await cond.wait_async()
        held = not mu.try_lock()
    await out.send_async(held)


def test_async_cond_wait(run):
    async def main():
        mu = pg.Mutex()
        cond = pg.Cond(mu)
        flag = pg.atomic.Bool(False)
        waiting = pg.atomic.Int64()
        out = pg.Chan(3)
        for _ in range(3):
            pg.go(_async_cond_waiter, mu, cond, flag, waiting, out)
        deadline = time.monotonic() + 10
        while waiting.load() < 3:
            assert time.monotonic() < deadline
            await pg.sleep_async(0.002)
        async with mu:
            flag.store(True)
            cond.broadcast()
        return [await out.recv_async() for _ in range(3)]

    assert run(main) == [True] * 3


def test_blocking_sync_call_in_async_goroutine_names_the_async_form(run):
    async def main():
        wg = pg.WaitGroup()
        wg.add(1)
        with pytest.raises(pg.ParagoError, match=r"wait_async"):
            wg.wait()
        mu = pg.Mutex()
        with pytest.raises(pg.ParagoError, match=r"lock_async"):
            mu.lock()  # free: it would not wait, and is still the wrong call here
        assert not mu.locked()
        await mu.lock_async()
        with pytest.raises(pg.ParagoError, match=r"lock_async"):
            mu.lock()
        mu.unlock()
        wg.done()
        return True

    assert run(main) is True
