"""pg.Buffer: shared arena memory, zero copy across Ps (DESIGN §1 "sync and
atomics", "Teardown"), at procs=1 and procs=2."""

from __future__ import annotations

import gc
import os
import struct
import weakref

import pytest

import parago as pg
from parago._runtime import state
from parago._shim import offset
from tests.helpers import go_on, recv_within


def arena_inuse() -> int:
    """Bytes of the arena in use (the arena header's counter)."""
    gc.collect()
    state.rt.flush_decrefs()
    return state.rt.arena.q[offset("pg_arena", "inuse") // 8]


def _memfds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "parago" in os.readlink(f"/proc/self/fd/{fd}"):
                out.add(fd)
        except OSError:
            pass
    return out


# ---------------------------------------------------------------------------
# creation


def test_buffer_is_zeroed_memory_of_the_asked_size(run):
    def main():
        buf = pg.Buffer(100)
        assert len(buf) == 100 and buf.nbytes == 100
        assert bytes(buf) == bytes(100)
        buf[0] = 7
        buf[10:13] = b"abc"
        mv = memoryview(buf)
        assert mv.nbytes == 100 and not mv.readonly
        assert mv[0] == 7 and bytes(mv[10:13]) == b"abc"
        mv.release()
        big = pg.Buffer(3 * 4096 + 1)  # not page sized
        big[-1] = 255
        assert big[-1] == 255 and len(big) == 3 * 4096 + 1
        return True

    assert run(main) is True


def test_buffer_size_is_checked(run):
    def main():
        for bad in (0, -1):
            with pytest.raises(ValueError, match=r"nbytes must be >= 1"):
                pg.Buffer(bad)
        for bad in ("8", 8.0, None, True):
            with pytest.raises(TypeError):
                pg.Buffer(bad)
        return True

    assert run(main) is True


def test_buffer_bigger_than_the_arena_raises_out_of_shared_memory(run):
    def main():
        huge = state.rt.arena.size + 1
        with pytest.raises(pg.OutOfSharedMemory, match=r"PARAGO_ARENA_SIZE") as ei:
            pg.Buffer(huge)
        assert isinstance(ei.value, MemoryError)
        assert isinstance(ei.value, pg.ParagoError)
        with pytest.raises(MemoryError, match=r"PARAGO_ARENA_SIZE"):
            pg.Buffer(2**50)
        # the runtime is fine afterwards
        b = pg.Buffer(16)
        b[0] = 1
        return b[0]

    assert run(main) == 1


def test_buffer_outside_run_raises_not_in_runtime():
    with pytest.raises(pg.NotInRuntime, match=r"pg\.run"):
        pg.Buffer(8)


# ---------------------------------------------------------------------------
# sharing


def _write_then_signal(buf: pg.Buffer, ch: pg.Chan) -> None:
    mv = memoryview(buf)
    struct.pack_into("<qd", mv, 0, 123456789, 2.5)
    mv[16:21] = b"hello"
    mv.release()
    ch.send(state.rt.p)


def test_memoryview_sees_the_same_bytes_in_every_p(run, procs):
    def main():
        buf = pg.Buffer(64)
        ch = pg.Chan()
        go_on(1, _write_then_signal, buf, ch)
        p = recv_within(ch)
        mv = memoryview(buf)
        try:
            return p, struct.unpack_from("<qd", mv, 0), bytes(mv[16:21])
        finally:
            mv.release()

    assert run(main) == (1 % procs, (123456789, 2.5), b"hello")


def _echo_buffer(ch_in: pg.Chan, ch_out: pg.Chan) -> None:
    buf = ch_in.recv()
    first = buf[0]
    buf[0] = first + 1
    ch_out.send((buf, first, state.rt.p))


def test_sending_a_buffer_moves_the_handle_not_the_bytes(run, procs):
    def main():
        buf = pg.Buffer(4096)
        buf[0] = 41
        ch_in, ch_out = pg.Chan(1), pg.Chan(1)
        go_on(1, _echo_buffer, ch_in, ch_out)
        ch_in.send(buf)
        back, first, p = recv_within(ch_out)
        assert back == buf and hash(back) == hash(buf)
        assert back[0] == 42 and buf[0] == 42  # the other P wrote our memory
        # inside containers too
        ch_in2, ch_out2 = pg.Chan(1), pg.Chan(1)
        go_on(1, _echo_buffer, ch_in2, ch_out2)
        ch_in2.send(buf)
        back2, _, _ = recv_within(ch_out2)
        assert back2 == buf
        return first, p, buf[0]

    assert run(main) == (41, 1 % procs, 43)


def _sum_with_numpy(buf: pg.Buffer, out: pg.Chan) -> None:
    import numpy as np

    a = np.frombuffer(buf, dtype=np.int64)
    total = int(a.sum())
    a[:] = np.arange(len(a), dtype=np.int64) * 2
    del a
    out.send(total)


def test_numpy_asarray_sees_shared_bytes(run):
    np = pytest.importorskip("numpy")

    def main():
        buf = pg.Buffer(8 * 1000)
        raw = np.asarray(buf)
        assert raw.dtype == np.uint8 and raw.shape == (8000,)
        a = np.frombuffer(buf, dtype=np.int64)
        a[:] = 1
        out = pg.Chan(1)
        go_on(1, _sum_with_numpy, buf, out)
        total = recv_within(out)
        doubled = int(a.sum())
        del a, raw
        return total, doubled

    assert run(main) == (1000, 2 * sum(range(1000)))


def test_buffer_is_freed_when_no_p_holds_it(run):
    def main():
        base = arena_inuse()
        bufs = [pg.Buffer(64 * 1024) for _ in range(8)]
        grown = arena_inuse() - base
        assert grown >= 8 * 64 * 1024
        del bufs
        pg.sleep(0.01)
        return arena_inuse() - base

    assert run(main) < 64 * 1024


def test_buffer_offered_in_a_select_send_that_is_not_chosen_is_freed(run):
    def main():
        full = pg.Chan(1)
        full.send(0)
        base = arena_inuse()
        for _ in range(50):
            i, _, _ = pg.select(pg.Send(full, pg.Buffer(64 * 1024)), default=True)
            assert i == -1
        return arena_inuse() - base

    assert run(main) < 64 * 1024


# ---------------------------------------------------------------------------
# no leak over many cycles


def _drop_all(ch: pg.Chan, acks: pg.Chan) -> None:
    while True:
        v = ch.recv()
        if v is None:
            acks.send(True)
            continue
        v[0] = 1  # touch it on this P
        del v


def _cycles(n: int, ch: pg.Chan, acks: pg.Chan) -> None:
    for _ in range(n):
        b = pg.Buffer(256)
        b[1] = 2
        ch.send(b)
        del b
    ch.send(None)
    recv_within(acks, 60)  # the consumer dropped every one of them


@pytest.mark.timeout(120)
def test_no_arena_leak_over_ten_thousand_buffer_cycles(run):
    def main():
        ch, acks = pg.Chan(64), pg.Chan(1)
        go_on(1, _drop_all, ch, acks)
        base = arena_inuse()
        _cycles(1000, ch, acks)
        pg.sleep(0.05)
        after_1k = arena_inuse()
        _cycles(9000, ch, acks)
        pg.sleep(0.05)
        after_10k = arena_inuse()
        return base, after_1k, after_10k

    base, after_1k, after_10k = run(main)
    # a leaked Buffer(256) costs over a page: 9,000 of them would be > 36 MB
    assert after_10k - after_1k < 256 * 1024, (base, after_1k, after_10k)
    assert after_1k - base < 256 * 1024, (base, after_1k, after_10k)


# ---------------------------------------------------------------------------
# teardown


def test_exported_memoryview_stays_readable_after_run(run):
    def main():
        buf = pg.Buffer(32)
        buf[0:5] = b"alive"
        return memoryview(buf)

    mv = run(main)
    try:
        assert bytes(mv[0:5]) == b"alive"
        mv[5] = ord("!")  # still writable memory, not a crash
        assert bytes(mv[0:6]) == b"alive!"
    finally:
        mv.release()


def _hold_buffer(buf: pg.Buffer, wg: pg.WaitGroup) -> None:
    buf[0] += 1
    wg.done()


def test_buffers_passed_to_goroutines_are_released_after_run(run):
    # DESIGN "Running": when main returns the arena is released; a Buffer
    # given to pg.go must not keep its mapping (and fd) alive afterwards.
    def main():
        buf = pg.Buffer(64)
        wg = pg.WaitGroup()
        for i in range(4):
            wg.add(1)
            go_on(i, _hold_buffer, buf, wg)
        wg.wait()
        return buf[0], weakref.ref(buf)

    before = _memfds()
    n, ref = run(main)
    assert n == 4
    gc.collect()
    assert ref() is None, "the Buffer outlived pg.run"
    assert _memfds() - before == set()
