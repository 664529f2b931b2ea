"""select: every rule of DESIGN §1 "select", at procs=1 and procs=2.

Results travel back to main on channels; where a test needs a goroutine
to be parked it waits for its wait reason in ``pg.debug.dump()``.
"""

from __future__ import annotations

import threading

import pytest

import parago as pg
from tests.helpers import recv_within as _recv_timeout
from tests.helpers import wait_parked as _wait_parked

pytestmark = pytest.mark.timeout(60)


def _send_later(c: pg.Chan, v) -> None:
    pg.sleep(0.02)
    c.send(v)


def _recv_report(c: pg.Chan, out: pg.Chan) -> None:
    out.send(c.recv_ok())


def _select_report(out: pg.Chan, *cases) -> None:
    out.send(pg.select(*cases))


def _select_forever(started: pg.Chan, cases: tuple) -> None:
    started.send(True)
    pg.select(*cases)


def _select_same_chan_loop(c: pg.Chan, out: pg.Chan, n: int) -> None:
    for _ in range(n):
        i, v, ok = pg.select(pg.Recv(c), pg.Recv(c))
        out.send((i, v, ok))


async def _async_blocking_select(c: pg.Chan, out: pg.Chan) -> None:
    try:
        pg.select(pg.Recv(c))
    except pg.ParagoError as e:
        await out.send_async((type(e).__name__, str(e)))
    else:  # pragma: no cover - the bug case
        await out.send_async(("returned", ""))


async def _async_select_worker(c: pg.Chan, out: pg.Chan) -> None:
    r = await pg.select_async(pg.Recv(c), None)
    await out.send_async(r)


# ----------------------------------------------------------------------
# cases, index, value, ok


def test_recv_case_returns_index_value_ok(run):
    def main():
        a, b = pg.Chan(1), pg.Chan(1)
        b.send("hi")
        r = pg.select(pg.Recv(a), None, pg.Recv(b))
        assert type(r) is tuple
        assert r == (2, "hi", True)

    run(main)


def test_select_blocks_until_a_case_can_proceed(run):
    def main():
        a, b = pg.Chan(), pg.Chan()
        pg.go(_send_later, b, 5)
        assert pg.select(pg.Recv(a), pg.Recv(b)) == (1, 5, True)

    run(main)


def test_send_case_completes_with_parked_receiver(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_recv_report, c, out)
        _wait_parked("chan receive")
        r = pg.select(None, pg.Send(c, "v"))
        assert r == (1, None, True)
        assert _recv_timeout(out) == ("v", True)

    run(main)


def test_send_case_into_buffer(run):
    def main():
        c = pg.Chan(1)
        assert pg.select(pg.Send(c, 3), default=True) == (0, None, True)
        assert len(c) == 1 and c.recv() == 3

    run(main)


def test_parked_select_woken_by_sender_on_other_goroutine(run):
    def main():
        a, b, out = pg.Chan(), pg.Chan(), pg.Chan(1)
        pg.go(_select_report, out, pg.Recv(a), None, pg.Recv(b))
        _wait_parked("select")
        b.send({"k": [1, 2]})
        assert _recv_timeout(out) == (2, {"k": [1, 2]}, True)

    run(main)


def test_parked_select_send_case_taken_by_receiver(run):
    def main():
        a, b, out = pg.Chan(), pg.Chan(), pg.Chan(1)
        pg.go(_select_report, out, pg.Recv(a), pg.Send(b, "x"))
        _wait_parked("select")
        assert b.recv() == "x"
        assert _recv_timeout(out) == (1, None, True)
        assert pg.select(pg.Recv(a), default=True) == (-1, None, False)  # the losing case left nothing behind

    run(main)


def test_default_returns_minus_one_when_nothing_ready(run):
    def main():
        a, b = pg.Chan(), pg.Chan(1)
        b.send(1)
        full = b
        r = pg.select(pg.Recv(a), pg.Send(a, 1), pg.Send(full, 2), None, default=True)
        assert type(r) is tuple
        assert r == (-1, None, False)
        assert len(full) == 1 and len(a) == 0

    run(main)


def test_default_with_only_none_cases_or_no_cases(run):
    def main():
        assert pg.select(default=True) == (-1, None, False)
        assert pg.select(None, pg.Recv(None), pg.Send(None, 1), default=True) == (-1, None, False)

    run(main)


def test_default_not_taken_when_a_case_is_ready(run):
    def main():
        c = pg.Chan(1)
        c.send(9)
        assert pg.select(pg.Recv(c), default=True) == (0, 9, True)

    run(main)


def test_closed_channel_recv_case_is_ready_with_ok_false(run):
    def main():
        c, other = pg.Chan(2), pg.Chan()
        c.send("last")
        c.close()
        assert pg.select(pg.Recv(other), pg.Recv(c), default=True) == (1, "last", True)
        assert pg.select(pg.Recv(other), pg.Recv(c), default=True) == (1, None, False)
        assert pg.select(pg.Recv(other), pg.Recv(c)) == (1, None, False)

    run(main)


def test_close_wakes_parked_select_with_ok_false(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_select_report, out, None, pg.Recv(c))
        _wait_parked("select")
        c.close()
        assert _recv_timeout(out) == (1, None, False)

    run(main)


def test_send_case_on_closed_channel_raises_when_chosen(run):
    def main():
        c = pg.Chan(1)
        c.close()
        with pytest.raises(pg.ClosedChannelError, match=r"^send on closed channel$"):
            pg.select(pg.Send(c, 1))
        # always ready: default is not taken while it is present
        with pytest.raises(pg.ClosedChannelError, match=r"^send on closed channel$"):
            pg.select(pg.Send(c, 1), pg.Recv(pg.Chan()), default=True)

    run(main)


def test_send_case_on_closed_channel_competes_with_ready_case(run):
    def main():
        closed, ready = pg.Chan(), pg.Chan(1)
        closed.close()
        raised = won = 0
        for _ in range(200):
            if len(ready) == 0:
                ready.send(1)
            try:
                r = pg.select(pg.Send(closed, 0), pg.Recv(ready))
            except pg.ClosedChannelError:
                raised += 1
            else:
                assert r == (1, 1, True)
                won += 1
        assert raised > 0 and won > 0, (raised, won)

    run(main)


def test_parked_send_case_raises_when_channel_closed(run):
    def report(out, c):
        try:
            out.send(("ok", pg.select(pg.Send(c, 1))))
        except pg.ClosedChannelError as e:
            out.send(("ClosedChannelError", str(e)))

    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(report, out, c)
        _wait_parked("select")
        c.close()
        assert _recv_timeout(out) == ("ClosedChannelError", "send on closed channel")

    run(main)


# ----------------------------------------------------------------------
# blocking forever


@pytest.mark.parametrize(
    "cases",
    [(), (None,), (None, None), (pg.Recv(None), pg.Send(None, 1))],
    ids=["no_cases", "none", "two_nones", "nil_recv_send"],
)
def test_select_without_live_cases_blocks_forever_deadlock(run, cases):
    def main():
        pg.select(*cases)
        return "returned"

    with pytest.raises(pg.Deadlock, match=r"^fatal error: all goroutines are asleep - deadlock!\n"):
        run(main)


def test_select_forever_in_goroutine_is_unwound_at_teardown(run):
    def main():
        started = pg.Chan(2)
        pg.go(_select_forever, started, ())
        pg.go(_select_forever, started, (None, pg.Recv(None)))
        assert _recv_timeout(started) is True
        assert _recv_timeout(started) is True
        _wait_parked("select (no cases)", 2)
        return "main done"

    assert run(main) == "main done"


def test_nil_cases_never_chosen(run):
    def main():
        c = pg.Chan(1)
        for i in range(50):
            c.send(i)
            assert pg.select(None, pg.Recv(None), pg.Send(None, 0), pg.Recv(c)) == (3, i, True)

    run(main)


# ----------------------------------------------------------------------
# the same channel in several cases


def test_select_never_pairs_its_own_send_and_recv(run):
    def main():
        c = pg.Chan()
        assert pg.select(pg.Send(c, 1), pg.Recv(c), default=True) == (-1, None, False)
        assert pg.select(pg.Recv(c), pg.Send(c, 1), pg.Recv(c), pg.Send(c, 2), default=True) == (-1, None, False)

    run(main)


def test_select_with_send_and_recv_on_same_channel_pairs_with_peer(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_recv_report, c, out)
        assert pg.select(pg.Send(c, 7), pg.Recv(c)) == (0, None, True)
        assert _recv_timeout(out) == (7, True)
        pg.go(_send_later, c, 8)
        assert pg.select(pg.Send(c, 7), pg.Recv(c)) == (1, 8, True)

    run(main)


@pytest.mark.timeout(60)
def test_parked_select_on_same_channel_twice_picks_case_at_random(run):
    def main():
        n = 40
        c, out = pg.Chan(), pg.Chan(n)
        pg.go(_select_same_chan_loop, c, out, n)
        seen = []
        for v in range(n):
            _wait_parked("select")
            c.send(v)
            i, got, ok = _recv_timeout(out)
            assert (got, ok) == (v, True)
            seen.append(i)
        assert set(seen) == {0, 1}, seen

    run(main)


# ----------------------------------------------------------------------
# randomness


@pytest.mark.timeout(90)
def test_ready_cases_chosen_uniformly():
    def main():
        a, b = pg.Chan(), pg.Chan()
        a.close()
        b.close()  # both always ready, nothing to refill
        counts = [0, 0]
        for _ in range(20_000):
            i, _v, ok = pg.select(pg.Recv(a), pg.Recv(b))
            assert not ok
            counts[i] += 1
        return counts

    counts = pg.run(main, procs=1)
    assert sum(counts) == 20_000
    for c in counts:
        assert 0.48 <= c / 20_000 <= 0.52, counts


@pytest.mark.timeout(90)
def test_ready_value_cases_chosen_uniformly():
    def main():
        chans = [pg.Chan(1) for _ in range(3)]
        for c in chans:
            c.send(0)
        counts = [0, 0, 0]
        for _ in range(6000):
            i, v, ok = pg.select(*(pg.Recv(c) for c in chans))
            assert (v, ok) == (0, True)
            counts[i] += 1
            chans[i].send(0)
        return counts

    counts = pg.run(main, procs=1)
    for c in counts:
        assert 0.30 <= c / 6000 <= 0.367, counts


# ----------------------------------------------------------------------
# encoding, argument checking


def test_every_send_value_encoded_before_select_starts(run):
    def main():
        ready, c2 = pg.Chan(1), pg.Chan(1)
        ready.send("r")
        for _ in range(20):  # whichever case the random choice would favour
            with pytest.raises(pg.EncodeError):
                pg.select(pg.Recv(ready), pg.Send(c2, threading.Lock()))
        assert len(ready) == 1 and len(c2) == 0
        assert ready.recv() == "r"

    run(main)


def test_send_case_type_checked_before_select_starts(run):
    def main():
        ready, typed = pg.Chan(1), pg.Chan[int](1)
        ready.send("r")
        for _ in range(20):
            with pytest.raises(pg.ChanTypeError):
                pg.select(pg.Recv(ready), pg.Send(typed, "not an int"), default=True)
        assert len(ready) == 1 and len(typed) == 0

    run(main)


@pytest.mark.parametrize("bad", [5, "x", "chan", ("recv",)], ids=["int", "str", "chan", "tuple"])
def test_non_case_argument_raises_type_error(run, bad):
    def main():
        c = pg.Chan(1)
        c.send(1)
        arg = c if bad == "chan" else bad
        with pytest.raises(TypeError):
            pg.select(pg.Recv(c), arg)
        assert len(c) == 1

    run(main)


def test_case_constructors_reject_non_channels(run):
    def main():
        with pytest.raises(TypeError):
            pg.Recv(5)
        with pytest.raises(TypeError):
            pg.Send("x", 1)

    run(main)


# ----------------------------------------------------------------------
# async


def test_select_async(run):
    async def main():
        c = pg.Chan(1)
        assert await pg.select_async(pg.Recv(c), default=True) == (-1, None, False)
        assert await pg.select_async(pg.Send(c, 4)) == (0, None, True)
        r = await pg.select_async(None, pg.Recv(c))
        assert type(r) is tuple and r == (1, 4, True)
        c.close()
        assert await pg.select_async(pg.Recv(c)) == (0, None, False)
        with pytest.raises(pg.ClosedChannelError, match=r"^send on closed channel$"):
            await pg.select_async(pg.Send(c, 1), default=True)

    run(main)


def test_select_async_parks_until_sender(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_async_select_worker, c, out)
        _wait_parked("select")
        c.send("late")
        assert _recv_timeout(out) == (0, "late", True)

    run(main)


def test_blocking_select_in_async_goroutine_raises(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_async_blocking_select, c, out)
        name, msg = _recv_timeout(out)
        assert name == "ParagoError"
        assert "select_async" in msg

    run(main)
