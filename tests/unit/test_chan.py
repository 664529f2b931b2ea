"""Channels: every rule of DESIGN §1 "Channels", at procs=1 and procs=2.

Goroutines get copies of their arguments, so every result travels back to
main on a channel; main asserts.  Where a test needs a goroutine to be
*parked* (not merely started) it waits for the wait reason to show up in
``pg.debug.dump()`` rather than sleeping a guessed amount.
"""

from __future__ import annotations

import re
import threading
import time

import msgspec
import pytest

import parago as pg
from tests.helpers import go_on
from tests.helpers import wait_parked as _wait_parked

pytestmark = pytest.mark.timeout(60)


# ----------------------------------------------------------------------
# helpers (module level: goroutine functions are pickled by reference)


def _nothing_ready(ch: pg.Chan) -> bool:
    return pg.select(pg.Recv(ch), default=True)[0] == -1


def _recv_timeout(ch: pg.Chan, seconds: float = 10.0):
    i, v, ok = pg.select(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    assert i == 0, f"nothing arrived on {ch!r} within {seconds} s"
    return v, ok


def _send_then_report(c: pg.Chan, v, done: pg.Chan) -> None:
    c.send(v)
    done.send("sent")


def _fill_then_report(c: pg.Chan, n: int, done: pg.Chan) -> None:
    for i in range(n):
        c.send(i)
    done.send("filled")
    c.send(n)
    done.send("extra")


def _send_range(c: pg.Chan, n: int) -> None:
    for i in range(n):
        c.send(i)


def _send_range_close(c: pg.Chan, n: int) -> None:
    for i in range(n):
        c.send(i)
    c.close()


def _recv_ok_report(c: pg.Chan, out: pg.Chan) -> None:
    out.send(c.recv_ok())


def _send_expect_closed(c: pg.Chan, v, out: pg.Chan) -> None:
    try:
        c.send(v)
    except pg.ClosedChannelError as e:
        out.send(("ClosedChannelError", str(e)))
    else:
        out.send(("sent", None))


def _echo_handle(carrier: pg.Chan, back: pg.Chan) -> None:
    ch = carrier.recv()
    ch.send("via-copy")
    back.send(ch)


def _typed_remote(c: pg.Chan, out: pg.Chan) -> None:
    try:
        c.send("x")
    except pg.ChanTypeError as e:
        out.send(("ChanTypeError", str(e), c.type is int))
    else:
        out.send(("sent", "", c.type is int))


def _recv_many_report(c: pg.Chan, n: int, out: pg.Chan) -> None:
    out.send(c.recv_many(n))


def _send_many_report(c: pg.Chan, values, out: pg.Chan) -> None:
    try:
        out.send(("ok", c.send_many(values)))
    except pg.ClosedChannelError as e:
        out.send((str(e), e.sent))


async def _async_producer(c: pg.Chan, n: int) -> None:
    for i in range(n):
        await c.send_async(i)
    c.close()


async def _async_consumer(c: pg.Chan, out: pg.Chan) -> None:
    got = [v async for v in c]
    await out.send_async(got)


async def _async_blocking_recv(c: pg.Chan, out: pg.Chan) -> None:
    try:
        c.recv()
    except pg.ParagoError as e:
        await out.send_async((type(e).__name__, str(e)))
    else:  # pragma: no cover - the bug case
        await out.send_async(("returned", ""))


async def _async_blocking_send(c: pg.Chan, out: pg.Chan) -> None:
    try:
        c.send(1)
    except pg.ParagoError as e:
        await out.send_async((type(e).__name__, str(e)))
    else:  # pragma: no cover - the bug case
        await out.send_async(("returned", ""))


def _reverse_all(c: pg.Chan, out: pg.Chan) -> None:
    for v in c:
        out.send(v[::-1])
    out.close()


def _swap_points(c: pg.Chan, out: pg.Chan) -> None:
    for p in c:
        out.send(Point(p.y, p.x))
    out.close()


class Point(msgspec.Struct):
    x: int
    y: int


def _raise_on_decode():
    raise ValueError("boom in decode")


class Bomb:
    """Pickles fine; unpickling it raises (a value the receiver cannot decode)."""

    def __reduce__(self):
        return (_raise_on_decode, ())


# ----------------------------------------------------------------------
# unbuffered and buffered send


def test_unbuffered_send_blocks_until_received(run):
    def main():
        c, done = pg.Chan(), pg.Chan(1)
        pg.go(_send_then_report, c, 42, done)
        _wait_parked("chan send")
        pg.sleep(0.05)
        assert _nothing_ready(done), "unbuffered send returned before any receiver"
        assert len(c) == 0
        assert c.recv() == 42
        assert _recv_timeout(done) == ("sent", True)

    run(main)


def test_unbuffered_recv_blocks_until_sent(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_recv_ok_report, c, out)
        _wait_parked("chan receive")
        assert _nothing_ready(out)
        c.send("hello")
        assert _recv_timeout(out) == (("hello", True), True)

    run(main)


def test_buffered_send_does_not_block_until_full(run):
    def main():
        c, done = pg.Chan(3), pg.Chan(2)
        pg.go(_fill_then_report, c, 3, done)
        assert _recv_timeout(done) == ("filled", True)
        _wait_parked("chan send")
        assert len(c) == 3
        assert _nothing_ready(done), "a send on a full channel returned"
        assert c.recv() == 0
        assert _recv_timeout(done) == ("extra", True)
        assert [c.recv(), c.recv(), c.recv()] == [1, 2, 3]

    run(main)


def test_buffered_send_in_main_fills_without_blocking(run):
    def main():
        c = pg.Chan(3)
        for i in range(3):
            c.send(i)  # would be a Deadlock if it blocked
        assert len(c) == 3
        assert pg.select(pg.Send(c, 99), default=True) == (-1, None, False)
        assert len(c) == 3

    run(main)


@pytest.mark.parametrize("cap", [0, 1, 7, 1000])
def test_fifo_per_channel(run, cap):
    def main():
        c = pg.Chan(cap)
        pg.go(_send_range, c, 300)
        assert [c.recv() for _ in range(300)] == list(range(300))

    run(main)


# ----------------------------------------------------------------------
# recv, recv_ok, close


def test_recv_on_closed_drained_raises_end_of_channel(run):
    def main():
        c = pg.Chan()
        c.close()
        with pytest.raises(pg.EndOfChannel):
            c.recv()
        with pytest.raises(pg.EndOfChannel):  # and again: the end is sticky
            c.recv()

    run(main)


def test_end_of_channel_is_a_parago_error():
    assert issubclass(pg.EndOfChannel, pg.ParagoError)
    assert issubclass(pg.ClosedChannelError, pg.ParagoError)


def test_recv_ok_returns_value_true_then_none_false(run):
    def main():
        c = pg.Chan(2)
        c.send(None)
        c.send(0)
        c.close()
        r1, r2, r3 = c.recv_ok(), c.recv_ok(), c.recv_ok()
        assert type(r1) is tuple and type(r3) is tuple
        # a None value is told apart from the end by ok
        assert (r1, r2, r3) == ((None, True), (0, True), (None, False))

    run(main)


def test_close_wakes_all_blocked_receivers(run):
    def main():
        c, out = pg.Chan(), pg.Chan(3)
        for _ in range(3):
            pg.go(_recv_ok_report, c, out)
        _wait_parked("chan receive", 3)
        c.close()
        got = [_recv_timeout(out)[0] for _ in range(3)]
        assert got == [(None, False)] * 3

    run(main)


def test_close_wakes_all_blocked_senders_which_raise(run):
    def main():
        c, out = pg.Chan(), pg.Chan(3)
        for i in range(3):
            pg.go(_send_expect_closed, c, i, out)
        _wait_parked("chan send", 3)
        c.close()
        got = [_recv_timeout(out)[0] for _ in range(3)]
        assert got == [("ClosedChannelError", "send on closed channel")] * 3
        assert c.recv_ok() == (None, False)  # nothing the senders held got enqueued

    run(main)


def test_close_wakes_blocked_sender_on_full_buffered_channel(run):
    def main():
        c, out = pg.Chan(1), pg.Chan(1)
        c.send("kept")
        pg.go(_send_expect_closed, c, "lost", out)
        _wait_parked("chan send")
        c.close()
        assert _recv_timeout(out)[0] == ("ClosedChannelError", "send on closed channel")
        assert c.recv_ok() == ("kept", True)
        assert c.recv_ok() == (None, False)

    run(main)


def test_buffered_values_are_drained_after_close(run):
    def main():
        c = pg.Chan(5)
        for v in ("a", "b", "c"):
            c.send(v)
        c.close()
        assert c.closed
        assert len(c) == 3
        assert c.recv() == "a"
        assert c.recv_ok() == ("b", True)
        assert list(c) == ["c"]
        with pytest.raises(pg.EndOfChannel):
            c.recv()

    run(main)


def test_close_twice_raises(run):
    def main():
        c = pg.Chan(1)
        c.close()
        with pytest.raises(pg.ClosedChannelError, match=r"^close of closed channel$"):
            c.close()
        assert c.closed

    run(main)


@pytest.mark.parametrize("cap", [0, 3])
def test_send_on_closed_raises(run, cap):
    def main():
        c = pg.Chan(cap)
        c.close()
        with pytest.raises(pg.ClosedChannelError, match=r"^send on closed channel$"):
            c.send(1)
        assert len(c) == 0

    run(main)


def test_close_from_another_goroutine_ends_for_loop(run):
    def main():
        c = pg.Chan(2)
        pg.go(_send_range_close, c, 50)
        assert [v for v in c] == list(range(50))
        assert c.closed

    run(main)


def test_for_loop_ends_at_close_unbuffered(run):
    def main():
        c = pg.Chan()
        pg.go(_send_range_close, c, 20)
        got = []
        for v in c:
            got.append(v)
        assert got == list(range(20))

    run(main)


# ----------------------------------------------------------------------
# len, cap, closed, bool, handles


def test_len_cap_closed(run):
    def main():
        c = pg.Chan(4)
        assert (len(c), c.cap, c.closed) == (0, 4, False)
        c.send(1)
        c.send(2)
        assert (len(c), c.cap) == (2, 4)
        c.recv()
        assert len(c) == 1
        c.close()
        assert (len(c), c.cap, c.closed) == (1, 4, True)
        u = pg.Chan()
        assert (len(u), u.cap, u.closed) == (0, 0, False)

    run(main)


def test_bool_is_true_even_when_empty(run):
    def main():
        for c in (pg.Chan(), pg.Chan(5)):
            assert len(c) == 0
            assert bool(c) is True
            c.close()
            assert bool(c) is True

    run(main)


def test_handles_compare_and_hash_alike_across_copies(run):
    def main():
        c, carrier, back = pg.Chan(1), pg.Chan(1), pg.Chan(1)
        other = pg.Chan(1)
        carrier.send(c)
        c2 = carrier.recv()
        assert c2 == c and not (c2 != c)
        assert hash(c2) == hash(c)
        assert c != other
        d = {c: "original"}
        assert d[c2] == "original"
        assert len({c, c2, other}) == 2
        # a copy made in another goroutine (maybe another P) is the same channel
        carrier.send(c)
        pg.go(_echo_handle, carrier, back)
        c3, _ = _recv_timeout(back)
        assert c3 == c and hash(c3) == hash(c) and d[c3] == "original"
        assert c.recv() == "via-copy"

    run(main)


def test_handle_passed_to_go_is_same_channel(run):
    def main():
        c = pg.Chan()
        pg.go(_send_range_close, c, 3)
        assert list(c) == [0, 1, 2]

    run(main)


# ----------------------------------------------------------------------
# capacity argument


def test_negative_cap_raises_value_error(run):
    def main():
        with pytest.raises(ValueError, match=r"^cap must be >= 0, got -1$"):
            pg.Chan(-1)

    run(main)


@pytest.mark.parametrize("bad", ["x", 1.0, None])
def test_non_int_cap_raises_type_error(run, bad):
    def main():
        with pytest.raises(TypeError, match=r"cap"):
            pg.Chan(bad)

    run(main)


# ----------------------------------------------------------------------
# typed channels


@pytest.mark.parametrize("make", [lambda: pg.Chan[int](4), lambda: pg.Chan(4, type=int)], ids=["getitem", "type_kw"])
def test_typed_channel_rejects_wrong_type_and_enqueues_nothing(run, make):
    def main():
        c = make()
        assert c.type is int
        c.send(1)
        with pytest.raises(pg.ChanTypeError, match=r"(?s)int.*str") as ei:
            c.send("x")
        assert isinstance(ei.value, TypeError)
        assert isinstance(ei.value, pg.ParagoError)
        # a bool is not an int (strict)
        with pytest.raises(pg.ChanTypeError, match=r"(?s)int.*bool"):
            c.send(True)
        with pytest.raises(pg.ChanTypeError, match=r"(?s)int.*float"):
            c.send(1.5)
        assert len(c) == 1, "a rejected value was enqueued"
        c.send(2)
        assert [c.recv(), c.recv()] == [1, 2]
        assert _nothing_ready(c)

    run(main)


def test_typed_channel_type_travels_to_other_goroutine(run):
    def main():
        c, out = pg.Chan[int](1), pg.Chan(1)
        pg.go(_typed_remote, c, out)
        kind, msg, type_known = _recv_timeout(out)[0]
        assert kind == "ChanTypeError"
        assert re.search(r"(?s)int.*str", msg)
        assert type_known
        assert len(c) == 0

    run(main)


def test_typed_channel_of_channels_carries_handles(run):
    def main():
        outer = pg.Chan[pg.Chan[int]](2)
        inner = pg.Chan[int](1)
        outer.send(inner)
        got = outer.recv()
        assert got == inner
        assert got.type is int
        got.send(7)
        assert inner.recv() == 7
        with pytest.raises(pg.ChanTypeError):
            outer.send(5)
        with pytest.raises(pg.ChanTypeError):
            outer.send(pg.Chan[str](1))
        assert len(outer) == 0

    run(main)


def test_typed_list_of_int(run):
    def main():
        c = pg.Chan[list[int]](2)
        c.send([1, 2, 3])
        with pytest.raises(pg.ChanTypeError):
            c.send([1, "x"])
        with pytest.raises(pg.ChanTypeError):
            c.send(["1"])  # strict: no str -> int coercion
        assert len(c) == 1
        v = c.recv()
        assert v == [1, 2, 3] and type(v) is list

    run(main)


def test_typed_struct_values_cross_goroutines(run):
    def main():
        c, out = pg.Chan[Point](4), pg.Chan[Point](4)
        c.send(Point(1, 2))
        with pytest.raises(pg.ChanTypeError):
            c.send((1, 2, 3))
        with pytest.raises(pg.ChanTypeError):
            c.send("Point")
        assert len(c) == 1
        c.close()
        pg.go(_swap_points, c, out)
        got = list(out)
        assert got == [Point(2, 1)]
        assert isinstance(got[0], Point)

    run(main)


def test_typed_struct_with_ill_typed_field_is_rejected_in_sender(run):
    # msgspec Structs do not validate at construction: the channel's strict
    # check in the sender must, or the receiver gets a DecodeError instead
    def main():
        c = pg.Chan[Point](2)
        with pytest.raises(pg.ChanTypeError, match=r"(?s)Point"):
            c.send(Point(1, "a"))
        assert len(c) == 0, "an ill-typed Struct was enqueued"

    run(main)


# ----------------------------------------------------------------------
# encoding and decoding errors


def test_unpicklable_value_raises_encode_error_channel_still_works(run):
    def main():
        c = pg.Chan(2)
        c.send("before")
        with pytest.raises(pg.EncodeError, match=r"(?i)lock"):
            c.send(threading.Lock())
        assert len(c) == 1
        u = pg.Chan()
        with pytest.raises(pg.EncodeError):
            u.send(threading.Lock())  # fails in the sender, before blocking
        c.send("after")
        assert [c.recv(), c.recv()] == ["before", "after"]

    run(main)


def test_undecodable_value_raises_decode_error(run):
    def main():
        c = pg.Chan(3)
        c.send(Bomb())
        c.send("next")
        with pytest.raises(pg.DecodeError, match=r"(?s)pg\.Chan.*ValueError.*boom in decode") as ei:
            c.recv()
        assert isinstance(ei.value, pg.ParagoError)
        assert c.recv() == "next"  # the channel keeps working

    run(main)


def test_undecodable_value_raises_decode_error_in_other_goroutine(run):
    def recv_report(c, out):
        try:
            c.recv()
        except pg.DecodeError as e:
            out.send(("DecodeError", str(e)))
        else:
            out.send(("ok", ""))

    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(recv_report, c, out)
        c.send(Bomb())
        kind, msg = _recv_timeout(out)[0]
        assert kind == "DecodeError" and "boom in decode" in msg

    run(main)


@pytest.mark.parametrize("cap", [0, 2])
def test_large_values_round_trip(run, cap):
    def main():
        big = bytes(range(256)) * 4096  # 1 MiB
        c, out = pg.Chan(cap), pg.Chan(2)
        pg.go(_reverse_all, c, out)
        c.send(big)
        c.send(big[:100_000])
        c.close()
        got = list(out)
        assert got == [big[::-1], big[:100_000][::-1]]

    run(main)


# ----------------------------------------------------------------------
# send_many / recv_many


def test_send_many_recv_many_batches_in_order(run):
    def main():
        c = pg.Chan(10)
        assert c.send_many(range(5)) == 5
        assert c.send_many([]) == 0
        assert len(c) == 5
        assert c.recv_many(3) == [0, 1, 2]
        assert c.recv_many(10) == [3, 4]
        assert len(c) == 0

    run(main)


@pytest.mark.parametrize("cap", [0, 4])
def test_send_many_larger_than_buffer_with_receiver(run, cap):
    def main():
        c, out = pg.Chan(cap), pg.Chan(1)
        pg.go(_send_many_report, c, list(range(100)), out)
        got = []
        while len(got) < 100:
            batch = c.recv_many(7)
            assert 1 <= len(batch) <= 7
            got += batch
        assert got == list(range(100))
        assert _recv_timeout(out)[0] == ("ok", 100)

    run(main)


def test_recv_many_blocks_for_at_least_one(run):
    def main():
        c, out = pg.Chan(5), pg.Chan(1)
        pg.go(_recv_many_report, c, 5, out)
        _wait_parked("chan receive")
        pg.sleep(0.02)
        assert _nothing_ready(out), "recv_many returned on an empty channel"
        c.send("one")
        got = _recv_timeout(out)[0]
        assert got == ["one"]

    run(main)


def test_recv_many_on_closed_drained_raises_end_of_channel(run):
    def main():
        c = pg.Chan(3)
        c.send(1)
        c.close()
        assert c.recv_many(5) == [1]
        with pytest.raises(pg.EndOfChannel):
            c.recv_many(5)

    run(main)


def test_recv_many_woken_by_close_raises_end_of_channel(run):
    def recv_many_report(c, out):
        try:
            out.send(c.recv_many(3))
        except pg.EndOfChannel:
            out.send("EndOfChannel")

    def main():
        c, out = pg.Chan(3), pg.Chan(1)
        pg.go(recv_many_report, c, out)
        _wait_parked("chan receive")
        c.close()
        assert _recv_timeout(out)[0] == "EndOfChannel"

    run(main)


def test_send_many_part_way_failure_reports_sent(run):
    def main():
        c, out = pg.Chan(2), pg.Chan(1)
        pg.go(_send_many_report, c, list(range(5)), out)
        _wait_parked("chan send")
        assert len(c) == 2
        c.close()
        msg, sent = _recv_timeout(out)[0]
        assert re.fullmatch(r"send on closed channel", msg)
        assert sent == 2
        assert list(c) == [0, 1]

    run(main)


def test_send_many_on_closed_channel_sent_zero(run):
    def main():
        c = pg.Chan(4)
        c.close()
        with pytest.raises(pg.ClosedChannelError, match=r"^send on closed channel$") as ei:
            c.send_many([1, 2, 3])
        assert ei.value.sent == 0

    run(main)


# ----------------------------------------------------------------------
# async forms


async def _arecv_timeout(ch: pg.Chan, seconds: float = 5.0):
    i, v, ok = await pg.select_async(pg.Recv(ch), pg.Recv(pg.after(seconds)))
    assert i == 0, f"nothing arrived on {ch!r} within {seconds} s"
    return v, ok


async def _asend_timeout(ch: pg.Chan, v, seconds: float = 5.0) -> None:
    i, _, _ = await pg.select_async(pg.Send(ch, v), pg.Recv(pg.after(seconds)))
    assert i == 0, f"no receiver took the value on {ch!r} within {seconds} s"


def test_async_main_send_recv_with_async_goroutine(run):
    # every wait is guarded by a timer, so a scheduler that never runs the
    # goroutine fails this test instead of hanging it
    async def main():
        c = pg.Chan()
        pg.go(_async_producer, c, 3)
        assert await _arecv_timeout(c) == (0, True)
        assert await c.recv_async() == 1
        assert await c.recv_async() == 2
        assert await _arecv_timeout(c) == (None, False)
        with pytest.raises(pg.EndOfChannel):
            await c.recv_async()

    run(main)


def test_async_main_send_async_to_goroutine(run):
    async def main():
        d, out = pg.Chan(), pg.Chan(1)
        pg.go(_async_consumer, d, out)
        await _asend_timeout(d, "a")
        await d.send_async("b")
        d.close()
        assert await _arecv_timeout(out) == (["a", "b"], True)
        with pytest.raises(pg.ClosedChannelError, match=r"^send on closed channel$"):
            await d.send_async("c")

    run(main)


def test_async_for_receives_until_closed(run):
    async def main():
        c = pg.Chan(5)
        for i in range(5):
            await c.send_async(i)
        c.close()
        assert [v async for v in c] == [0, 1, 2, 3, 4]
        assert [v async for v in c] == []

    run(main)


def test_async_goroutine_uses_async_forms(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_async_producer, c, 4)
        pg.go(_async_consumer, c, out)
        assert _recv_timeout(out)[0] == [0, 1, 2, 3]

    run(main)


def test_async_and_plain_goroutines_interoperate(run):
    def main():
        c, out = pg.Chan(1), pg.Chan(1)
        pg.go(_async_consumer, c, out)
        for i in range(5):
            c.send(i)
        c.close()
        assert _recv_timeout(out)[0] == [0, 1, 2, 3, 4]

    run(main)


def test_blocking_recv_in_async_goroutine_raises(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_async_blocking_recv, c, out)
        name, msg = _recv_timeout(out)[0]
        assert name == "ParagoError"
        assert "recv_async" in msg

    run(main)


def test_blocking_send_in_async_goroutine_raises(run):
    def main():
        c, out = pg.Chan(), pg.Chan(1)
        pg.go(_async_blocking_send, c, out)
        name, msg = _recv_timeout(out)[0]
        assert name == "ParagoError"
        assert "send_async" in msg
        assert len(c) == 0

    run(main)


def _send_handle_tuples(ch: pg.Chan, n: int) -> None:
    for i in range(n):
        ch.send((pg.Chan(1), "s", (i,), {}, pg.Chan(1)))


def test_recv_many_decodes_values_with_handles_from_another_p(run):
    # values that memoize when pickled (a handle inside) decode one by one:
    # a shared Unpickler with its memo cleared would lose them
    def main():
        ch = pg.Chan(1024)
        for _ in range(2):
            go_on(1, _send_handle_tuples, ch, 150)
        got = []
        while len(got) < 300:
            got.extend(ch.recv_many(256))
        assert sorted(v[2][0] for v in got) == sorted(list(range(150)) * 2)
        return all(isinstance(v[0], pg.Chan) and isinstance(v[4], pg.Chan) for v in got)

    assert run(main) is True


def _hand_off_player(inp: pg.Chan, out: pg.Chan, done: pg.Chan, count: pg.atomic.Int64) -> None:
    while True:
        i, v, _ = pg.select(pg.Recv(inp), pg.Recv(done))
        if i == 1:
            return
        count.add(1)
        if pg.select(pg.Send(out, v + 1), pg.Recv(done))[0] == 1:
            return


@pytest.mark.timeout(60)
def test_a_hand_off_loop_leaves_room_for_timers_new_goroutines_and_main(run):
    """Two goroutines passing a value back and forth without end (on one P
    each hand-off wakes the other: a G-to-G switch that skips the hub) must
    not keep their P from a timer, a new goroutine or main -- nor keep the
    GIL from a pg.blocking thread (CPython's GIL starved it: seconds)."""

    def main():
        a, b, done, started = pg.Chan(), pg.Chan(), pg.Chan(), pg.Chan(1)
        count = pg.atomic.Int64()
        wg = pg.WaitGroup()
        wg.go(_hand_off_player, a, b, done, count)
        wg.go(_hand_off_player, b, a, done, count)
        a.send(0)
        t0 = time.monotonic()
        pg.sleep(0.05)  # a timer's ready
        for _ in range(5):  # a thread's, through the P's event loop: the thread needs the GIL
            pg.blocking(time.sleep, 0.01)
        slept = time.monotonic() - t0
        pg.go(started.send, "started")
        got = started.recv()
        n = count.load()
        done.close()
        wg.wait()
        return slept, got, n

    slept, got, n = run(main)
    assert got == "started" and n > 0
    assert slept < 2.0, f"main's 100 ms of waits took {slept:.2f} s beside the hand-off loop"
