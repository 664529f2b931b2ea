"""Go's sync/oncefunc_test.go, x/sync/singleflight's tests and sync/atomic's
And/Or tests, ported (DESIGN §1 "sync and atomics"), at procs=1 and
procs=2, with the program-wide (every P) checks Go does not need."""

from __future__ import annotations

import pytest

import parago as pg

# ---------------------------------------------------------------------------
# sync/oncefunc_test.go


@pytest.mark.timeout(30)
def test_once_func(run):
    def main():
        calls = [0]

        def f():
            calls[0] += 1

        g = pg.once_func(f)
        for _ in range(10):
            assert g() is None
        assert calls[0] == 1
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_once_value(run):
    def main():
        calls = [0]

        def f():
            calls[0] += 1
            return calls[0]

        g = pg.once_value(f)
        for _ in range(10):
            g()
        assert g() == 1 and calls[0] == 1
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_once_values(run):
    def main():
        calls = [0]

        def f():
            calls[0] += 1
            return calls[0], calls[0] + 1

        g = pg.once_values(f)
        for _ in range(10):
            g()
        v1, v2 = g()
        assert (v1, v2) == (1, 2) and calls[0] == 1
        return True

    assert run(main) is True


def _panic_x_each_time(f, calls):
    # testOncePanicWith: each call raises the same value; fn ran once
    for _label in ("first time", "second time"):
        with pytest.raises(RuntimeError, match=r"^x$"):
            f()
    assert calls[0] == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["once_func", "once_value", "once_values"])
def test_once_x_panic(run, kind):
    def main():
        calls = [0]

        def f():
            calls[0] += 1
            raise RuntimeError("x")

        _panic_x_each_time(getattr(pg, kind)(f), calls)
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_once_func_reraises_the_same_exception_object_in_the_p_that_ran_it(run):
    def main():
        g = pg.once_func(_raise_x)
        seen = []
        for _ in range(2):
            try:
                g()
            except RuntimeError as e:
                seen.append(e)
        assert len(seen) == 2 and seen[0] is seen[1]
        # the first call's traceback reaches into fn (TestOnceFuncPanicTraceback)
        tb = seen[0].__traceback__
        names = []
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        assert "_raise_x" in names
        return True

    assert run(main) is True


def _raise_x():
    raise RuntimeError("x")


def _goexit_once(calls):
    calls.add(1)
    pg.goexit()


def _call_recovering(f, wg):
    try:
        f()
    except Exception:
        pass
    finally:
        wg.done()


@pytest.mark.timeout(30)
def test_once_func_goexit(run):
    # if f calls Goexit the results are unspecified, but f runs only once
    def main():
        calls = pg.atomic.Int64()
        f = pg.once_func(lambda: _goexit_once(calls))
        wg = pg.WaitGroup()
        for _ in range(2):
            wg.add(1)
            pg.go(_call_recovering, f, wg)
            wg.wait()
        assert calls.load() == 1
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_once_func_does_not_keep_fn_alive_after_the_call(run):
    # TestOnceXGC: the function passed in is not kept alive after the first call
    def main():
        import gc
        import weakref

        class Fn:
            def __call__(self):
                return 1

        fn = Fn()
        r = weakref.ref(fn)
        g = pg.once_value(fn)
        del fn
        gc.collect()
        assert r() is not None, "wrapped function collected too early"
        assert g() == 1
        gc.collect()
        assert r() is None, "wrapped function still alive after the call"
        assert g() == 1
        return True

    assert run(main) is True


def _count_and_return(calls):
    calls.add(1)
    pg.sleep(0.02)
    return {"answer": 42}


def _call_and_report(f, out):
    out.send(f())


@pytest.mark.timeout(60)
def test_once_value_runs_once_program_wide_and_every_caller_on_every_p_gets_the_result(run):
    def main():
        calls = pg.atomic.Int64()
        f = pg.once_value(lambda: _count_and_return(calls))
        out = pg.Chan(64)
        n = 40
        for _ in range(n):
            pg.go(_call_and_report, f, out)
        got = [out.recv() for _ in range(n)]
        assert got == [{"answer": 42}] * n
        assert calls.load() == 1
        return True

    assert run(main) is True


def _raise_value_error():
    raise ValueError("bad config")


def _call_and_report_error(f, out):
    try:
        f()
    except ValueError as e:
        out.send(("ValueError", str(e)))
    else:
        out.send(("no error", ""))


@pytest.mark.timeout(60)
def test_once_func_exception_reaches_every_caller_on_every_p(run):
    def main():
        f = pg.once_func(_raise_value_error)
        out = pg.Chan(16)
        for _ in range(8):
            pg.go(_call_and_report_error, f, out)
        assert [out.recv() for _ in range(8)] == [("ValueError", "bad config")] * 8
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_once_func_rejects_non_callables(run):
    def main():
        for make in (pg.once_func, pg.once_value, pg.once_values):
            with pytest.raises(TypeError, match=r"fn must be callable"):
                make(42)
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# x/sync/singleflight


@pytest.mark.timeout(30)
def test_singleflight_do(run):
    def main():
        g = pg.singleflight.Group()
        v, shared = g.do("key", lambda: "bar")
        assert (v, type(v), shared) == ("bar", str, False)
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_singleflight_do_err(run):
    def main():
        g = pg.singleflight.Group()
        some_err = LookupError("Some error")

        def fn():
            raise some_err

        with pytest.raises(LookupError) as ei:
            g.do("key", fn)
        assert ei.value is some_err
        return True

    assert run(main) is True


def _dup_fn(calls, wg1, c):
    if calls.add(1) == 1:
        wg1.done()  # first invocation
    v = c.recv()
    c.send(v)  # pump; make available for any future calls
    pg.sleep(0.01)  # let more goroutines enter do
    return v


def _dup_caller(g, calls, wg1, wg2, c, out):
    try:
        wg1.done()
        v, _ = g.do("key", _dup_fn, calls, wg1, c)
        out.send(v)
    finally:
        wg2.done()


@pytest.mark.timeout(60)
def test_singleflight_do_dup_suppress(run):
    def main():
        g = pg.singleflight.Group()
        wg1, wg2 = pg.WaitGroup(), pg.WaitGroup()
        c = pg.Chan(1)
        calls = pg.atomic.Int32()
        out = pg.Chan(32)
        n = 10
        wg1.add(1)
        for _ in range(n):
            wg1.add(1)
            wg2.add(1)
            pg.go(_dup_caller, g, calls, wg1, wg2, c, out)
        wg1.wait()
        c.send("bar")
        wg2.wait()
        assert [out.recv() for _ in range(n)] == ["bar"] * n
        got = calls.load()
        assert 0 < got < n, f"number of calls = {got}; want over 0 and less than {n}"
        return True

    assert run(main) is True


def _first(first_started, unblock_first, first_finished):
    first_started.close()
    unblock_first.recv_ok()
    first_finished.close()


def _do_into(g, key, fn, args, out):
    out.send(g.do(key, fn, *args))


def _second(second_started, unblock_second):
    second_started.close()
    unblock_second.recv_ok()
    return 2


def _third():
    return 3


@pytest.mark.timeout(60)
def test_singleflight_forget(run):
    # Go's TestForget (DoChan there: a goroutine per call here)
    def main():
        g = pg.singleflight.Group()
        first_started, unblock_first, first_finished = pg.Chan(0), pg.Chan(0), pg.Chan(0)
        r1 = pg.Chan(1)
        pg.go(_do_into, g, "key", _first, (first_started, unblock_first, first_finished), r1)
        first_started.recv_ok()
        g.forget("key")

        second_started, unblock_second = pg.Chan(0), pg.Chan(0)
        r2 = pg.Chan(1)
        pg.go(_do_into, g, "key", _second, (second_started, unblock_second), r2)
        second_started.recv_ok()  # the second call is in flight

        unblock_first.close()
        first_finished.recv_ok()
        r1.recv()

        r3 = pg.Chan(1)
        # on this P (never stolen): it joins the second call while main sleeps,
        # however late another P would have started it
        pg.go_local(_do_into, g, "key", _third, (), r3)
        pg.sleep(0.05)
        unblock_second.close()
        assert r2.recv()[0] == 2
        v, shared = r3.recv()
        assert v == 2, f"we should receive the result produced by the second call, got {v}"
        assert shared is True
        return True

    assert run(main) is True


def _panicky(started):
    started.close()
    pg.sleep(0.05)
    raise KeyError("boom")


def _do_report_error(g, started, out):
    try:
        g.do("k", _panicky, started)
    except KeyError as e:
        out.send(("KeyError", str(e)))


@pytest.mark.timeout(60)
def test_singleflight_exception_reaches_every_waiter(run):
    def main():
        g = pg.singleflight.Group()
        started = pg.Chan(0)
        out = pg.Chan(8)
        pg.go(_do_report_error, g, started, out)
        started.recv_ok()
        for _ in range(3):
            pg.go(_do_report_error, g, pg.Chan(0), out)
        assert [out.recv() for _ in range(4)] == [("KeyError", "'boom'")] * 4
        # the key is free again: the next call runs fn afresh
        assert g.do("k", lambda: 7) == (7, False)
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
def test_singleflight_bad_input(run):
    def main():
        g = pg.singleflight.Group()
        with pytest.raises(TypeError):
            g.do(["unhashable"], lambda: 1)
        with pytest.raises(TypeError, match=r"fn must be callable"):
            g.do("k", 3)
        assert g.do("k", lambda: 1) == (1, False)  # the group still works
        return True

    assert run(main) is True


# ---------------------------------------------------------------------------
# sync/atomic: And / Or (Go 1.23), on every integer atomic

MASKS = {
    "Int32": (-(1 << 31), (1 << 31) - 1),
    "Uint32": (0, (1 << 32) - 1),
    "Int64": (-(1 << 63), (1 << 63) - 1),
    "Uint64": (0, (1 << 64) - 1),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", sorted(MASKS))
def test_and_or_return_the_old_value(run, kind):
    # TestAnd*/TestOr*: set bits one at a time, then clear them
    def main():
        lo, hi = MASKS[kind]
        width = 32 if "32" in kind else 64
        signed = kind.startswith("Int")
        a = getattr(pg.atomic, kind)(0)

        def as_typed(u):
            u &= (1 << width) - 1
            return u - (1 << width) if signed and u >> (width - 1) else u

        # Or: x starts at 0 and gains one bit per call
        expected = 0
        for i in range(width):
            old = a.or_(as_typed(1 << i))
            assert old == as_typed(expected), (kind, i, old)
            expected |= 1 << i
            assert a.load() == as_typed(expected)
        # And: clear them again, one per call
        for i in range(width):
            old = a.and_(as_typed(~(1 << i)))
            assert old == as_typed(expected), (kind, i, old)
            expected &= ~(1 << i)
            assert a.load() == as_typed(expected)
        assert a.load() == 0
        return True

    assert run(main) is True


def _or_bits(a, bits, wg):
    try:
        for b in bits:
            a.or_(1 << b)
    finally:
        wg.done()


@pytest.mark.timeout(60)
def test_or_from_goroutines_on_every_p_loses_no_bit(run):
    def main():
        a = pg.atomic.Uint64(0)
        wg = pg.WaitGroup()
        for k in range(8):
            wg.add(1)
            pg.go(_or_bits, a, range(k, 64, 8), wg)
        wg.wait()
        assert a.load() == (1 << 64) - 1
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", sorted(MASKS))
def test_and_or_beyond_the_width_is_an_overflow_error(run, kind):
    def main():
        width = 32 if "32" in kind else 64
        a = getattr(pg.atomic, kind)(5)
        for bad in (1 << width, -(1 << (width - 1)) - 1):
            with pytest.raises(OverflowError, match=rf"out of range for {width} bits"):
                a.and_(bad)
            with pytest.raises(OverflowError):
                a.or_(bad)
        with pytest.raises(TypeError):
            a.or_(1.0)
        assert a.load() == 5  # unchanged
        return True

    assert run(main) is True


def _fast(calls):
    calls.add(1)
    return "v"


def _race_do(g, calls, out, key):
    out.send(g.do(key, _fast, calls)[0])


@pytest.mark.timeout(120)
def test_singleflight_duplicates_racing_the_leader_on_every_p_never_hang_or_run_twice_at_once(run):
    def main():
        g = pg.singleflight.Group()
        calls = pg.atomic.Int64()
        out = pg.Chan(16)
        for r in range(30):
            for _ in range(6):
                pg.go(_race_do, g, calls, out, r)
            assert [out.recv() for _ in range(6)] == ["v"] * 6
        assert 30 <= calls.load() <= 180
        return True

    assert run(main) is True


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", sorted(MASKS))
def test_and_or_take_any_mask_of_the_width_signed_or_unsigned(run, kind):
    # u.and_(~(1 << 3)) clears bit 3 (Go: x.And(^uint32(1 << 3))); 0xFFFF0000 on an Int32 is its bits
    def main():
        width = 32 if "32" in kind else 64
        signed = kind.startswith("Int")
        a = getattr(pg.atomic, kind)(0xFF)
        a.and_(~(1 << 3))
        assert a.load() == 0xF7
        a.or_((1 << width) - 1)  # every bit, written unsigned
        assert a.load() == (-1 if signed else (1 << width) - 1)
        a.and_(-(1 << (width - 1)))  # the top bit, written signed
        assert a.load() == (-(1 << (width - 1)) if signed else 1 << (width - 1))
        return True

    assert run(main) is True
