"""time: pg.after, pg.tick, Timer, Ticker (DESIGN §1 "time").

Timing asserts keep generous margins: the machine is small and shared.
"""

from __future__ import annotations

import os
import time

import pytest

import parago as pg

pytestmark = pytest.mark.timeout(60)


def _recv_timeout(ch: pg.Chan, seconds: float = 10.0):
    i, v, ok = pg.select(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    assert i == 0, f"nothing arrived on {ch!r} within {seconds} s"
    return v


def _nothing_ready(ch: pg.Chan) -> bool:
    return pg.select(pg.Recv(ch), default=True)[0] == -1


def _make_timers(out: pg.Chan) -> None:
    t = pg.Timer(0.1)
    a = pg.after(0.1)
    out.send((os.getpid(), t, a))


def _wait_timer_chan(c: pg.Chan, out: pg.Chan) -> None:
    out.send((os.getpid(), c.recv()))


def _stop_timer(t: pg.Timer, out: pg.Chan) -> None:
    out.send((os.getpid(), t.stop()))


def _reset_timer(t: pg.Timer, out: pg.Chan) -> None:
    out.send((os.getpid(), t.reset(0.05)))


def _if_other_p(main_pid: int, fn, *args) -> None:
    out = args[-1]
    if os.getpid() == main_pid:
        out.send((main_pid,))  # landed on main's P: touch nothing, main retries
    else:
        fn(*args)


def _on_other_p(fn, *args) -> tuple:
    """Run fn(*args, out) as a goroutine on a P other than main's; return
    what it sent on out (fn sends (pid, ...)).

    Main blocks its own P (time.sleep, not pg.sleep) right after the spawn,
    so an idle P steals the goroutine; if P0 ends up running it instead,
    it does nothing and we try again.
    """
    me = os.getpid()
    for _ in range(5):
        out = pg.Chan(1)
        pg.go(_if_other_p, me, fn, *args, out)
        time.sleep(0.3)
        res = _recv_timeout(out)
        if res[0] != me:
            return res
    raise AssertionError("the goroutine never ran on another P")


# ----------------------------------------------------------------------
# after


def test_after_delivers_time_once(run):
    def main():
        t0, m0 = time.time(), time.monotonic()
        c = pg.after(0.05)
        v = _recv_timeout(c)
        assert time.monotonic() - m0 >= 0.045
        assert isinstance(v, float)
        assert t0 + 0.04 <= v <= time.time() + 0.01
        pg.sleep(0.15)
        assert _nothing_ready(c), "after() delivered twice"

    run(main)


def test_after_as_select_timeout(run):
    def main():
        c = pg.Chan()
        i, v, ok = pg.select(pg.Recv(c), pg.Recv(pg.after(0.05)))
        assert i == 1 and ok and isinstance(v, float)
        d = pg.Chan(1)
        d.send("fast")
        assert pg.select(pg.Recv(d), pg.Recv(pg.after(5))) == (0, "fast", True)

    run(main)


def test_after_zero_fires(run):
    def main():
        assert isinstance(_recv_timeout(pg.after(0)), float)

    run(main)


# ----------------------------------------------------------------------
# tick / Ticker


def test_tick_delivers_repeatedly(run):
    def main():
        c = pg.tick(0.02)
        vals = [_recv_timeout(c) for _ in range(4)]
        assert all(isinstance(v, float) for v in vals)
        assert vals == sorted(vals) and len(set(vals)) == 4

    run(main)


def test_tick_keeps_only_the_newest_unreceived_tick(run):
    def main():
        t0 = time.time()
        c = pg.tick(0.02)
        assert c.cap == 0
        pg.sleep(0.3)  # ~15 periods, nobody receiving
        assert len(c) == 0  # Go 1.23: the timer holds the tick, the channel never buffers
        held = c.recv()
        # the older ticks were dropped for newer ones: what is held is recent
        assert held - t0 > 0.2, (t0, held)
        fresh = _recv_timeout(c)
        # no backlog: the next tick is one period on
        assert 0 < fresh - held < 0.2, (held, fresh)

    run(main)


def test_ticker_stop_ends_ticks(run):
    def main():
        tk = pg.Ticker(0.02)
        assert isinstance(_recv_timeout(tk.c), float)
        tk.stop()
        # Go 1.23: no tick from before stop() is received after it
        assert _nothing_ready(tk.c)
        pg.sleep(0.2)
        assert _nothing_ready(tk.c), "a stopped Ticker kept ticking"

    run(main)


# ----------------------------------------------------------------------
# Timer


def test_timer_stop_before_firing(run):
    def main():
        t = pg.Timer(10)
        assert t.stop() is True
        assert t.stop() is False
        short = pg.Timer(0.05)
        assert short.stop() is True
        pg.sleep(0.2)
        assert _nothing_ready(t.c) and _nothing_ready(short.c), "a stopped Timer delivered"

    run(main)


def test_timer_fires_once_and_stop_after_fire_is_false(run):
    def main():
        t = pg.Timer(0.03)
        assert isinstance(_recv_timeout(t.c), float)
        assert t.stop() is False
        pg.sleep(0.1)
        assert _nothing_ready(t.c)

    run(main)


def test_timer_reset(run):
    def main():
        t = pg.Timer(10)
        m0 = time.monotonic()
        assert t.reset(0.05) is True  # it was pending
        assert isinstance(_recv_timeout(t.c), float)
        assert time.monotonic() - m0 < 5, "reset did not shorten the timer"
        assert t.reset(0.05) is False  # it had fired
        assert isinstance(_recv_timeout(t.c), float)
        assert t.stop() is False
        s = pg.Timer(10)
        assert s.stop() is True
        assert s.reset(0.03) is False  # it had been stopped
        assert isinstance(_recv_timeout(s.c), float)

    run(main)


def test_timer_reset_later_delays_firing(run):
    def main():
        t = pg.Timer(0.05)
        t.reset(0.5)
        pg.sleep(0.2)
        assert _nothing_ready(t.c), "the original deadline fired after reset"
        assert isinstance(_recv_timeout(t.c), float)
        pg.sleep(0.1)
        assert _nothing_ready(t.c)

    run(main)


# ----------------------------------------------------------------------
# across Ps


@pytest.mark.timeout(60)
def test_timers_created_on_other_p_are_waited_on_here():
    def main():
        pid, t, a = _on_other_p(_make_timers)
        assert isinstance(_recv_timeout(t.c), float)
        assert isinstance(_recv_timeout(a), float)

    pg.run(main, procs=2)


@pytest.mark.timeout(60)
def test_timer_created_here_is_waited_on_from_other_p():
    def main():
        t = pg.Timer(0.2)
        pid, v = _on_other_p(_wait_timer_chan, t.c)
        assert pid != os.getpid()
        assert isinstance(v, float)

    pg.run(main, procs=2)


@pytest.mark.timeout(60)
def test_timer_stop_and_reset_from_other_p():
    def main():
        m0 = time.monotonic()
        t = pg.Timer(2.0)
        pid, stopped = _on_other_p(_stop_timer, t)
        assert stopped is True
        pg.sleep(max(0.0, m0 + 2.3 - time.monotonic()))
        assert _nothing_ready(t.c), "a Timer stopped from another P fired"
        u = pg.Timer(10)
        pid, was_pending = _on_other_p(_reset_timer, u)
        assert was_pending is True
        assert isinstance(_recv_timeout(u.c, 5), float)

    pg.run(main, procs=2)


@pytest.mark.timeout(30)
def test_stopped_timers_do_not_hold_off_deadlock(procs):
    # Go drops a stopped timer: a program left with only stopped timers and
    # blocked goroutines is deadlocked now, not when the timers would have fired
    def main():
        t = pg.Timer(100)
        t.stop()
        tk = pg.Ticker(50)
        tk.stop()
        ctx, cancel = pg.context.with_timeout(pg.context.background(), 100)
        cancel()
        pg.Chan().recv()

    t0 = time.monotonic()
    with pytest.raises(pg.Deadlock, match=r"^(fatal error: )?all goroutines are asleep - deadlock!"):
        pg.run(main, procs=procs)
    assert time.monotonic() - t0 < 10


# ----------------------------------------------------------------------
# pg.sleep and pg.sleep_async: never early, Go's meaning for <= 0


def test_sleep_never_returns_before_its_delay(run):
    def main():
        short = []
        for d in [0.0001, 0.0003, 0.001, 0.002, 0.005, 0.012] * 6:
            t0 = time.monotonic()
            pg.sleep(d)
            took = time.monotonic() - t0
            if took < d:
                short.append((d, took))
        return short

    assert run(main) == []


def test_sleep_of_zero_or_a_negative_delay_returns_at_once(run):
    def main():
        t0 = time.monotonic()
        for d in (0, 0.0, -1, -0.5, -1e300, -(10**400)):
            pg.sleep(d)
        return time.monotonic() - t0

    assert run(main) < 1.0


def _sleeper(seconds: float, out: pg.Chan) -> None:
    pg.sleep(seconds)
    out.send(seconds)


def test_bad_sleep_arguments_raise_in_the_caller_and_nothing_else(run):
    def main():
        out = pg.Chan(2)
        pg.go(_sleeper, 0.05, out)
        for bad in ("1", None, True, [0.1], 1j):
            with pytest.raises(TypeError, match=r"^pg\.sleep: seconds must be a number"):
                pg.sleep(bad)
        for bad in (float("nan"), float("inf"), float("-inf")):
            with pytest.raises(ValueError, match=r"^pg\.sleep: seconds must be finite"):
                pg.sleep(bad)
        for bad in (1e300, 2**64 // 10**9 + 1, 10**400):
            with pytest.raises(ValueError, match=r"^pg\.sleep: seconds must be < 2\*\*64 ns"):
                pg.sleep(bad)
        pg.sleep(0.01)  # this goroutine is fine, and so is the other one
        return _recv_timeout(out)

    assert run(main) == 0.05


async def _async_sleeps(out: pg.Chan) -> None:
    short = []
    for d in (0.0002, 0.001, 0.004, 0.01):
        t0 = time.monotonic()
        await pg.sleep_async(d)
        took = time.monotonic() - t0
        if took < d:
            short.append((d, took))
    await pg.sleep_async(0)
    await pg.sleep_async(-3)
    errors = []
    for bad in ("x", float("nan"), 1e300):
        try:
            await pg.sleep_async(bad)
        except (TypeError, ValueError) as e:
            errors.append(type(e).__name__)
    await out.send_async((short, errors))


def test_sleep_async_never_returns_early_and_checks_its_argument(run):
    def main():
        out = pg.Chan(1)
        pg.go(_async_sleeps, out)
        return _recv_timeout(out)

    short, errors = run(main)
    assert short == []
    assert errors == ["TypeError", "ValueError", "ValueError"]


def _sleep_forever(started: pg.Chan) -> None:
    started.send(1)
    pg.sleep(1000)


def test_goroutines_in_long_sleeps_do_not_hold_up_the_end_of_the_program(run, procs):
    def main():
        started = pg.Chan(8)
        for _ in range(8):
            pg.go(_sleep_forever, started)
        for _ in range(8):
            _recv_timeout(started)
        pg.sleep(0.02)
        return True

    t0 = time.monotonic()
    assert run(main) is True
    assert time.monotonic() - t0 < 5


# ----------------------------------------------------------------------
# timers: bad input, Go's meaning for <= 0


def test_negative_and_zero_delays_fire_at_once(run):
    def main():
        chans = [pg.after(-1), pg.after(0), pg.Timer(-1e300).c, pg.after(-(10**400))]
        t = pg.Timer(60)
        t.reset(-2)
        chans.append(t.c)
        return [isinstance(_recv_timeout(c, 1.0), float) for c in chans]

    assert run(main) == [True] * 5


def test_timer_and_ticker_arguments_are_checked_in_the_caller(run):
    def main():
        for bad in ("1", None, True, b"1"):
            with pytest.raises(TypeError, match=r"^pg\.Timer: seconds must be a number"):
                pg.Timer(bad)
            with pytest.raises(TypeError):
                pg.after(bad)
            with pytest.raises(TypeError):
                pg.Ticker(bad)
        for bad in (float("nan"), float("inf"), 1e300):
            with pytest.raises(ValueError, match=r"^pg\.Timer: seconds must be"):
                pg.Timer(bad)
            with pytest.raises(ValueError, match=r"^pg\.Ticker: seconds must be"):
                pg.Ticker(bad)
        for bad in (0, -1, -0.5):
            with pytest.raises(ValueError, match=r"^non-positive interval for pg\.Ticker"):
                pg.Ticker(bad)
            with pytest.raises(ValueError):
                pg.tick(bad)
        t = pg.Timer(60)
        with pytest.raises(TypeError, match=r"^Timer\.reset: seconds must be a number"):
            t.reset("soon")
        with pytest.raises(ValueError, match=r"^Timer\.reset: seconds must be finite"):
            t.reset(float("nan"))
        tk = pg.Ticker(60)
        with pytest.raises(ValueError, match=r"^non-positive interval for Ticker\.reset"):
            tk.reset(0)
        # the objects that refused an argument still work
        assert t.reset(0.01) is True
        assert isinstance(_recv_timeout(t.c), float)
        tk.reset(0.01)
        assert isinstance(_recv_timeout(tk.c), float)
        tk.stop()
        return True

    assert run(main) is True


def test_ticker_reset_changes_its_period(run):
    def main():
        tk = pg.Ticker(60)
        m0 = time.monotonic()
        tk.reset(0.02)
        a = _recv_timeout(tk.c, 5)
        b = _recv_timeout(tk.c, 5)
        tk.stop()
        return time.monotonic() - m0, b - a

    elapsed, gap = run(main)
    assert elapsed < 5 and 0.015 <= gap < 2
