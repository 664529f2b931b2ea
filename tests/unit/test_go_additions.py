"""What Go 1.21-1.25 programs use beyond the ported Go tests (DESIGN §1
"sync and atomics", "context and higher-level patterns"): pg.goexit,
wg.go, sem.acquire(k, ctx), atomic Int32/Uint32/Value, and typed zero
values from a closed typed channel -- at procs=1 and procs=2, with bad
input raising clear errors and leaving objects unchanged."""

from __future__ import annotations

import msgspec
import pytest

import parago as pg

C = pg.context


# ---------------------------------------------------------------------------
# pg.goexit


def _exits(out):
    try:
        try:
            pg.goexit()
        finally:
            out.send("finally ran")
        out.send("not reached")
    except Exception:
        out.send("caught by except Exception")


@pytest.mark.timeout(30)
def test_goexit_runs_finally_blocks_and_ends_only_that_goroutine(run):
    def main():
        out = pg.Chan(4)
        pg.go(_exits, out)
        assert out.recv() == "finally ran"
        pg.sleep(0.05)
        assert len(out) == 0  # nothing after goexit, not an exception either
        return "main goes on"

    assert run(main) == "main goes on"


def _slow_worker(out):
    pg.sleep(0.1)
    out.send("worker done")


@pytest.mark.timeout(30)
def test_goexit_in_main_waits_for_the_others_then_deadlocks_as_go(run):
    out_box = []

    def main():
        out = pg.Chan(1)
        out_box.append(out)
        pg.go(_slow_worker, out)
        try:
            pg.goexit()
        finally:
            out_box.append("main finally")

    with pytest.raises(pg.Deadlock, match=r"^fatal error: no goroutines \(main called runtime.Goexit\) - deadlock!"):
        run(main)
    assert out_box[-1] == "main finally"


@pytest.mark.timeout(30)
def test_goexit_in_main_with_others_blocked_forever_is_the_usual_deadlock(run):
    def main():
        pg.go(lambda: pg.Chan().recv())
        pg.goexit()

    with pytest.raises(pg.Deadlock, match=r"^fatal error: all goroutines are asleep - deadlock!"):
        run(main)


def _fail_later():
    pg.sleep(0.05)
    raise ZeroDivisionError("late failure")


@pytest.mark.timeout(30)
def test_goexit_in_main_then_a_panic_elsewhere_ends_the_program_with_it(run):
    def main():
        pg.go(_fail_later)
        pg.goexit()

    with pytest.raises(pg.Panic, match=r"ZeroDivisionError"):
        run(main)


# ---------------------------------------------------------------------------
# wg.go


def _add_to(counter, n):
    counter.add(n)


def _raise_after_add(counter):
    counter.add(1)
    raise RuntimeError("worker failed")


@pytest.mark.timeout(30)
def test_wg_go_adds_runs_and_marks_done(run):
    def main():
        wg = pg.WaitGroup()
        total = pg.atomic.Int64()
        for i in range(1, 21):
            wg.go(_add_to, total, i)
        wg.wait()
        assert total.load() == 210  # every goroutine exactly once
        assert wg.value() == 0
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_wg_go_marks_done_also_when_fn_raises_and_the_program_panics(run):
    def main():
        wg = pg.WaitGroup()
        counter = pg.atomic.Int64()
        wg.go(_raise_after_add, counter)
        wg.wait()  # done() ran in the finally
        pg.sleep(5)

    with pytest.raises(pg.Panic, match=r"worker failed"):
        run(main)


@pytest.mark.timeout(30)
def test_wg_go_with_a_non_callable_adds_nothing(run):
    def main():
        wg = pg.WaitGroup()
        with pytest.raises(TypeError, match=r"^WaitGroup.go: fn must be callable"):
            wg.go(42)
        assert wg.value() == 0
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# sem.acquire(k, ctx)


def _release_later(sem, k, delay):
    pg.sleep(delay)
    sem.release(k)


@pytest.mark.timeout(30)
def test_sem_acquire_with_ctx_raises_ctx_err_and_holds_nothing(run):
    def main():
        sem = pg.Semaphore(2)
        sem.acquire(2)
        ctx, cancel = C.with_timeout(C.background(), 0.05)
        with pytest.raises(C.DeadlineExceeded):
            sem.acquire(1, ctx=ctx)
        cancel()
        sem.release(2)
        assert sem.try_acquire(2)  # the failed acquire holds nothing
        sem.release(2)
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_sem_acquire_with_a_done_ctx_fails_even_when_units_are_free(run):
    def main():
        sem = pg.Semaphore(1)
        ctx, cancel = C.with_cancel(C.background())
        cancel()
        with pytest.raises(C.Canceled):
            sem.acquire(1, ctx)
        assert sem.try_acquire(1)
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_sem_acquire_with_ctx_acquires_when_units_come_first(run):
    def main():
        sem = pg.Semaphore(1)
        sem.acquire()
        pg.go(_release_later, sem, 1, 0.05)
        ctx, cancel = C.with_timeout(C.background(), 30)
        sem.acquire(1, ctx)
        assert not sem.try_acquire(1)  # it is ours
        sem.release()
        cancel()
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_sem_acquire_canceled_head_does_not_block_the_waiters_behind_it(run):
    def main():
        sem = pg.Semaphore(3)
        sem.acquire(2)
        ctx, cancel = C.with_cancel(C.background())
        got = pg.Chan(1)

        def big():
            try:
                sem.acquire(3, ctx)  # the head: needs all 3
            except C.Canceled:
                got.send("big canceled")

        pg.go_local(big)
        pg.sleep(0.02)
        small = pg.Chan(1)
        pg.go_local(lambda: (sem.acquire(1), small.send("small acquired")))
        pg.sleep(0.02)
        assert len(small) == 0  # FIFO: queued behind the head
        cancel()
        assert got.recv() == "big canceled"
        assert small.recv() == "small acquired"
        sem.release(3)
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_sem_acquire_beyond_the_size_waits_for_the_context(run):
    def main():
        sem = pg.Semaphore(1)
        ctx, cancel = C.with_timeout(C.background(), 0.05)
        with pytest.raises(C.DeadlineExceeded):
            sem.acquire(5, ctx)
        with pytest.raises(TypeError, match=r"ctx must be a pg.context Context"):
            sem.acquire(1, ctx="soon")
        cancel()
        return True

    assert run(main) is True


def _acquire_ctx_count(sem, ctx, ok, failed, wg):
    try:
        for _ in range(20):
            try:
                sem.acquire(1, ctx)
            except C.Canceled:
                failed.add(1)
                continue
            ok.add(1)
            pg.sleep(0.001)
            sem.release(1)
    finally:
        wg.done()


@pytest.mark.timeout(60)
def test_sem_acquire_ctx_races_with_cancel_on_every_p_and_conserves_units(run):
    def main():
        sem = pg.Semaphore(2)
        ctx, cancel = C.with_cancel(C.background())
        ok, failed = pg.atomic.Int64(), pg.atomic.Int64()
        wg = pg.WaitGroup()
        for _ in range(6):
            wg.add(1)
            pg.go(_acquire_ctx_count, sem, ctx, ok, failed, wg)
        pg.sleep(0.03)
        cancel()
        wg.wait()
        assert ok.load() + failed.load() == 120
        assert sem.try_acquire(2)  # every unit came back
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# atomic Int32 / Uint32


@pytest.mark.timeout(30)
def test_int32_wraps_and_rejects_out_of_range(run):
    def main():
        a = pg.atomic.Int32(2**31 - 1)
        assert a.add(1) == -(2**31)  # Go's int32 wrap
        assert a.add(-1) == 2**31 - 1
        assert a.swap(-5) == 2**31 - 1
        assert a.compare_and_swap(-5, 7) and a.load() == 7
        for bad in (2**31, -(2**31) - 1):
            with pytest.raises(OverflowError, match=r"int32 range"):
                a.store(bad)
            with pytest.raises(OverflowError, match=r"int32 range"):
                a.add(bad)
        with pytest.raises(OverflowError, match=r"int32 range"):
            pg.atomic.Int32(2**40)
        with pytest.raises(TypeError):
            a.store(True)
        assert a.load() == 7
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_uint32_wraps_mod_2_32(run):
    def main():
        u = pg.atomic.Uint32()
        assert u.add(-1) == 2**32 - 1  # Go's Add(^uint32(0))
        assert u.add(2) == 1
        u.store(2**32 - 1)
        assert u.load() == 2**32 - 1
        with pytest.raises(OverflowError, match=r"uint32 range"):
            u.store(-1)
        with pytest.raises(OverflowError, match=r"uint32 range"):
            u.store(2**32)
        return True

    assert run(main) is True


def _add32(a, n, wg):
    try:
        for _ in range(n):
            a.add(3)
    finally:
        wg.done()


@pytest.mark.timeout(60)
def test_int32_adds_from_every_p_are_exact_mod_2_32(run):
    def main():
        a = pg.atomic.Int32(2**31 - 100)
        wg = pg.WaitGroup()
        for _ in range(4):
            wg.add(1)
            pg.go(_add32, a, 500, wg)
        wg.wait()
        expect = (2**31 - 100 + 4 * 500 * 3) % 2**32
        expect = expect - 2**32 if expect >= 2**31 else expect
        assert a.load() == expect
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# atomic.Value


class Point(msgspec.Struct):
    x: int
    y: int


@pytest.mark.timeout(30)
def test_value_load_store_swap_cas(run):
    def main():
        v = pg.atomic.Value()
        assert v.load() is None
        assert v.compare_and_swap(1, 2) is False  # empty: only old=None swaps
        v.store({"a": [1, 2]})
        got = v.load()
        assert got == {"a": [1, 2]}
        got["a"].append(3)
        assert v.load() == {"a": [1, 2]}  # loads are copies
        assert v.swap({"b": []}) == {"a": [1, 2]}
        assert v.compare_and_swap({"x": 0}, {"c": 1}) is False
        assert v.compare_and_swap({"b": []}, {"c": 1}) is True
        assert v.load() == {"c": 1}
        w = pg.atomic.Value()
        assert w.compare_and_swap(None, Point(1, 2)) is True
        assert w.load() == Point(1, 2)
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_value_store_of_another_type_or_none_raises_with_gos_words(run):
    def main():
        v = pg.atomic.Value()
        with pytest.raises(TypeError, match=r"^sync/atomic: store of nil value into Value"):
            v.store(None)
        v.store("first")
        with pytest.raises(TypeError, match=r"^sync/atomic: store of inconsistently typed value into Value"):
            v.store(1)
        with pytest.raises(TypeError, match=r"^sync/atomic: swap of inconsistently typed value into Value"):
            v.swap(b"x")
        with pytest.raises(TypeError, match=r"inconsistently typed"):
            v.compare_and_swap("first", 2)
        with pytest.raises(pg.EncodeError):
            v.store(_local_lock())
        assert v.load() == "first"  # unchanged by every failed call
        return True

    assert run(main) is True


def _local_lock():
    import threading

    return threading.Lock()


def _store_type(v, x, out):
    try:
        v.store(x)
        out.send(type(x).__name__)
    except TypeError:
        out.send("refused")


@pytest.mark.timeout(60)
def test_value_first_stores_of_two_types_on_two_ps_one_wins(run):
    def main():
        for _ in range(10):
            v = pg.atomic.Value()
            out = pg.Chan(2)
            pg.go(_store_type, v, 1, out)
            pg.go(_store_type, v, "s", out)
            got = sorted([out.recv(), out.recv()])
            assert got in (["int", "refused"], ["refused", "str"]), got
            assert type(v.load()).__name__ in got
        return True

    assert run(main) is True


def _cas_increment(v, n, wg):
    try:
        for _ in range(n):
            while True:
                cur = v.load()
                if v.compare_and_swap(cur, cur + 1):
                    break
    finally:
        wg.done()


@pytest.mark.timeout(60)
def test_value_compare_and_swap_loses_no_update_across_ps(run):
    def main():
        v = pg.atomic.Value()
        v.store(0)
        wg = pg.WaitGroup()
        for _ in range(4):
            wg.add(1)
            pg.go(_cas_increment, v, 50, wg)
        wg.wait()
        assert v.load() == 200
        return True

    assert run(main) is True


def _send_through_value(v, out):
    v.load()["ch"].send("through the stored handle")
    out.send(True)


@pytest.mark.timeout(30)
def test_value_holds_handles_that_refer_to_the_same_object(run):
    def main():
        ch = pg.Chan(1)
        v = pg.atomic.Value()
        v.store({"ch": ch})
        out = pg.Chan(1)
        pg.go(_send_through_value, v, out)
        assert out.recv() is True
        assert ch.recv() == "through the stored handle"
        v.store({"ch": pg.Chan(1)})  # the replaced value's handle is given back
        old = v.swap({"ch": ch})
        assert old["ch"].cap == 1
        return True

    assert run(main) is True  # and the leak check: every arena block freed


@pytest.mark.timeout(30)
def test_value_holds_a_large_value(run):
    def main():
        v = pg.atomic.Value()
        big = list(range(50_000))
        v.store(big)
        assert v.load() == big
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# typed zero values


ZEROS = [(int, 0), (str, ""), (float, 0.0), (bool, False), (bytes, b""), (Point, None), (list[int], None)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("T,zero", ZEROS, ids=[getattr(t, "__name__", repr(t)) for t, _ in ZEROS])
def test_recv_ok_on_a_closed_drained_typed_channel_gives_the_zero_value(run, T, zero):
    def main():
        ch = pg.Chan[T](1)
        ch.close()
        v, ok = ch.recv_ok()
        assert ok is False and v == zero and type(v) is type(zero)
        i, v, ok = pg.select(pg.Recv(ch))
        assert (i, ok) == (0, False) and v == zero and type(v) is type(zero)
        return True

    assert run(main) is True


def _close_later(ch):
    pg.sleep(0.02)
    ch.close()


@pytest.mark.timeout(30)
def test_a_parked_receiver_woken_by_close_gets_the_zero_value(run):
    def main():
        a, b = pg.Chan[int](), pg.Chan[str]()
        pg.go(_close_later, a)
        assert a.recv_ok() == (0, False)
        pg.go(_close_later, b)
        assert pg.select(pg.Recv(b), None) == (0, "", False)
        u = pg.Chan()
        u.close()
        assert u.recv_ok() == (None, False)  # untyped: None
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# the same from async goroutines and threads


async def _async_add(counter, n):
    await pg.sleep_async(0.001)
    counter.add(n)


@pytest.mark.timeout(30)
def test_wg_go_runs_an_async_function_as_an_async_goroutine(run):
    def main():
        wg = pg.WaitGroup()
        total = pg.atomic.Int64()
        for i in range(5):
            wg.go(_async_add, total, i)
        wg.wait()
        assert total.load() == 10
        return True

    assert run(main) is True


async def _async_goexit(out):
    try:
        pg.goexit()
    except pg.ParagoError as e:
        await out.send_async(str(e))


@pytest.mark.timeout(30)
def test_goexit_from_an_async_goroutine_is_a_clear_error(run):
    def main():
        out = pg.Chan(1)
        pg.go(_async_goexit, out)
        assert "plain goroutine" in out.recv()
        return True

    assert run(main) is True


def _thread_acquire(sem, ctx):
    try:
        sem.acquire(1, ctx)
    except C.DeadlineExceeded:
        return "deadline"
    sem.release(1)
    return "acquired"


@pytest.mark.timeout(30)
def test_sem_acquire_with_ctx_from_a_thread_that_is_no_goroutine(run):
    def main():
        sem = pg.Semaphore(1)
        sem.acquire()
        ctx, cancel = C.with_timeout(C.background(), 0.05)
        assert pg.blocking(_thread_acquire, sem, ctx) == "deadline"
        cancel()
        sem.release()
        ctx, cancel = C.with_timeout(C.background(), 30)
        assert pg.blocking(_thread_acquire, sem, ctx) == "acquired"
        cancel()
        assert sem.try_acquire(1)
        return True

    assert run(main) is True


async def _async_acquire(sem, ctx, out):
    try:
        await sem.acquire_async(1, ctx)
    except C.DeadlineExceeded:
        await out.send_async("deadline")
        return
    sem.release(1)
    await out.send_async("acquired")


@pytest.mark.timeout(30)
def test_sem_acquire_async_with_ctx(run):
    def main():
        sem = pg.Semaphore(1)
        sem.acquire()
        out = pg.Chan(1)
        ctx, cancel = C.with_timeout(C.background(), 0.05)
        pg.go(_async_acquire, sem, ctx, out)
        assert out.recv() == "deadline"
        cancel()
        ctx, cancel = C.with_timeout(C.background(), 30)
        pg.go(_async_acquire, sem, ctx, out)
        pg.sleep(0.02)
        sem.release()
        assert out.recv() == "acquired"
        cancel()
        assert sem.try_acquire(1)
        return True

    assert run(main) is True


def _goexit_member():
    pg.goexit()


@pytest.mark.timeout(30)
def test_goexit_in_an_errgroup_member_is_no_error_and_in_a_future_a_clear_one(run):
    def main():
        g = pg.ErrGroup()
        g.go(_goexit_member)
        g.go(lambda: None)
        g.wait()  # Go's errgroup: a Goexit is no error
        f = pg.future(_goexit_member)
        with pytest.raises(pg.ParagoError, match=r"pg.goexit\(\) before returning"):
            f.result()
        return "main goes on"

    assert run(main) == "main goes on"
