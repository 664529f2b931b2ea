"""pg.atomic: Int64, Uint64, Bool and the sharded Counter (DESIGN §1 "sync
and atomics"), at procs=1 and procs=2.  Multi-P tests assert exact totals."""

from __future__ import annotations

import pytest

import parago as pg
from tests.helpers import go_on


def wait_within(wg: pg.WaitGroup, seconds: float = 30.0) -> None:
    done = pg.Chan(1)
    pg.go(lambda: (wg.wait(), done.send(True)))
    i, _, _ = pg.select(pg.Recv(done), pg.Recv(pg.after(seconds)))
    assert i == 0, f"WaitGroup not done within {seconds} s"


# ---------------------------------------------------------------------------
# Int64


def test_int64_load_store_add_swap_cas(run):
    def main():
        a = pg.atomic.Int64()
        assert a.load() == 0
        b = pg.atomic.Int64(-7)
        assert b.load() == -7
        a.store(10)
        assert a.load() == 10
        assert a.add(5) == 15  # returns the new value
        assert a.add(-20) == -5
        assert a.swap(3) == -5  # returns the old value
        assert a.load() == 3
        assert a.compare_and_swap(4, 9) is False
        assert a.load() == 3
        assert a.compare_and_swap(3, 9) is True
        assert a.load() == 9
        return True

    assert run(main) is True


def test_int64_extremes_and_wrapping(run):
    def main():
        lo, hi = -(2**63), 2**63 - 1
        a = pg.atomic.Int64(hi)
        assert a.load() == hi
        assert a.add(1) == lo  # Go's two's complement wrap
        a.store(lo)
        assert a.load() == lo
        return True

    assert run(main) is True


def test_int64_rejects_out_of_range_and_non_ints(run):
    def main():
        a = pg.atomic.Int64(1)
        for bad in (2**63, -(2**63) - 1, 2**70):
            with pytest.raises(OverflowError):
                a.store(bad)
            with pytest.raises(OverflowError):
                a.swap(bad)
        with pytest.raises(OverflowError):
            pg.atomic.Int64(2**63)
        for bad in (1.5, "1", None, True):
            with pytest.raises(TypeError):
                a.store(bad)
            with pytest.raises(TypeError):
                a.add(bad)
        with pytest.raises(TypeError):
            pg.atomic.Int64("3")
        assert a.load() == 1  # unchanged by the failed calls
        return True

    assert run(main) is True


def _adder(a: pg.atomic.Int64, n: int, wg: pg.WaitGroup) -> None:
    for _ in range(n):
        a.add(1)
    wg.done()


@pytest.mark.timeout(60)
def test_int64_add_is_exact_across_ps(run):
    def main():
        a = pg.atomic.Int64()
        wg = pg.WaitGroup()
        for i in range(8):
            wg.add(1)
            go_on(i, _adder, a, 2000, wg)
        wait_within(wg)
        return a.load()

    assert run(main) == 8 * 2000


def _cas_incrementer(a: pg.atomic.Int64, n: int, retries: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    for i in range(n):
        while True:
            old = a.load()
            if a.compare_and_swap(old, old + 1):
                break
            retries.add(1)
        if i % 64 == 0:
            pg.gosched()
    wg.done()


@pytest.mark.timeout(60)
def test_compare_and_swap_loop_increment_is_exact_across_ps(run):
    def main():
        a = pg.atomic.Int64()
        retries = pg.atomic.Int64()
        wg = pg.WaitGroup()
        for i in range(8):
            wg.add(1)
            go_on(i, _cas_incrementer, a, 1000, retries, wg)
        wait_within(wg)
        return a.load()

    assert run(main) == 8 * 1000


def _swap_collector(a: pg.atomic.Int64, start: int, n: int, total: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    for v in range(start, start + n):
        total.add(a.swap(v))
    wg.done()


def test_swap_loses_no_value_across_ps(run):
    # every stored value is returned by exactly one later swap (or is the last one)
    def main():
        a = pg.atomic.Int64(0)
        total = pg.atomic.Int64()
        wg = pg.WaitGroup()
        for i in range(4):
            wg.add(1)
            go_on(i, _swap_collector, a, 1 + i * 1000, 1000, total, wg)
        wait_within(wg)
        return total.load() + a.load()

    assert run(main) == sum(range(1, 4001))


# ---------------------------------------------------------------------------
# Uint64


def test_uint64_wraps_modulo_2_64(run):
    def main():
        u = pg.atomic.Uint64()
        assert u.load() == 0
        assert u.add(-1) == 2**64 - 1  # Go's Add(^uint64(0)) idiom
        assert u.load() == 2**64 - 1
        assert u.add(1) == 0
        u.store(2**64 - 1)
        assert u.swap(5) == 2**64 - 1
        assert u.compare_and_swap(5, 2**63) is True
        assert u.load() == 2**63
        assert u.compare_and_swap(5, 6) is False
        return True

    assert run(main) is True


def test_uint64_rejects_negative_and_too_big(run):
    def main():
        u = pg.atomic.Uint64(3)
        for bad in (-1, 2**64):
            with pytest.raises(OverflowError):
                u.store(bad)
        with pytest.raises(OverflowError):
            pg.atomic.Uint64(-1)
        with pytest.raises(TypeError):
            u.store(2.0)
        with pytest.raises(TypeError):
            u.add("1")
        assert u.load() == 3
        return True

    assert run(main) is True


def _u_adder(u: pg.atomic.Uint64, wg: pg.WaitGroup) -> None:
    for _ in range(500):
        u.add(-1)
    wg.done()


def test_uint64_add_is_exact_across_ps(run):
    def main():
        u = pg.atomic.Uint64(1000)
        wg = pg.WaitGroup()
        for i in range(4):
            wg.add(1)
            go_on(i, _u_adder, u, wg)
        wait_within(wg)
        return u.load()

    assert run(main) == (1000 - 2000) % 2**64


# ---------------------------------------------------------------------------
# Bool


def _flip_first(b: pg.atomic.Bool, winners: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    if b.compare_and_swap(False, True):
        winners.add(1)
    wg.done()


def test_bool_load_store_swap_cas(run):
    def main():
        b = pg.atomic.Bool()
        assert b.load() is False
        b.store(True)
        assert b.load() is True
        assert b.swap(False) is True
        assert b.load() is False
        assert b.compare_and_swap(True, False) is False
        assert b.compare_and_swap(False, True) is True
        assert b.load() is True
        assert pg.atomic.Bool(True).load() is True
        return True

    assert run(main) is True


def test_bool_cas_has_exactly_one_winner_across_ps(run):
    def main():
        b = pg.atomic.Bool(False)
        winners = pg.atomic.Int64()
        wg = pg.WaitGroup()
        for i in range(8):
            wg.add(1)
            go_on(i, _flip_first, b, winners, wg)
        wait_within(wg)
        return winners.load(), b.load()

    assert run(main) == (1, True)


# ---------------------------------------------------------------------------
# Counter


def _count(c: pg.atomic.Counter, n: int, wg: pg.WaitGroup) -> None:
    for i in range(n):
        c.add(1)
        if i % 1000 == 0:
            pg.gosched()
    wg.done()


@pytest.mark.timeout(60)
def test_counter_value_is_exact_after_the_adders_are_done(run):
    def main():
        c = pg.atomic.Counter()
        assert c.value() == 0
        wg = pg.WaitGroup()
        for i in range(8):
            wg.add(1)
            go_on(i, _count, c, 5000, wg)
        wait_within(wg)
        return c.value()

    assert run(main) == 8 * 5000


def _count_from_thread(c: pg.atomic.Counter, wg: pg.WaitGroup) -> None:
    def work():
        for _ in range(1000):
            c.add(2)

    pg.blocking(work)  # off the hub thread: the other shard path
    wg.done()


def test_counter_add_with_deltas_and_from_threads(run):
    def main():
        c = pg.atomic.Counter()
        c.add()
        c.add(10)
        c.add(-4)
        assert c.value() == 7
        wg = pg.WaitGroup()
        for i in range(2):
            wg.add(1)
            go_on(i, _count_from_thread, c, wg)
        wait_within(wg)
        with pytest.raises(TypeError):
            c.add(1.0)
        return c.value()

    assert run(main) == 7 + 2 * 2000


# ---------------------------------------------------------------------------
# handles


def _report(a: pg.atomic.Int64, out: pg.Chan) -> None:
    a.add(1)
    out.send(a)


def test_atomic_handle_sent_back_is_the_same_object(run):
    def main():
        a = pg.atomic.Int64(41)
        out = pg.Chan(1)
        go_on(1, _report, a, out)
        b = out.recv()
        assert b == a and hash(b) == hash(a)
        return a.load(), b.load()

    assert run(main) == (42, 42)
