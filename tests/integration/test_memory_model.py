"""The seed's memory-model litmus tests, across Ps (procs=2).

Each test checks a happens-before edge of DESIGN §1 with a pg.Buffer written
by plain (non-atomic) stores: the write on one P must be visible, complete,
on the other P after the synchronising operation -- a channel send/receive,
a Mutex unlock/lock, Once.do, WaitGroup.done/wait.  Every round also checks
conservation (each value written is read back exactly once).
"""

from __future__ import annotations

import functools
import struct

import pytest

import parago as pg
from parago._runtime import state
from tests import helpers
from tests.helpers import go_on

recv_within = functools.partial(helpers.recv_within, seconds=30.0)
pytestmark = pytest.mark.integration

PROCS = 2
SLOTS = 512  # int64 slots: 4 KiB, more than one cache line and one store


def fill(mv: memoryview, v: int) -> None:
    struct.pack_into(f"<{SLOTS}q", mv, 0, *([v] * SLOTS))


def slots(mv: memoryview) -> tuple[int, ...]:
    return struct.unpack_from(f"<{SLOTS}q", mv, 0)


def consistent(mv: memoryview, v: int) -> bool:
    return slots(mv) == (v,) * SLOTS


# ---------------------------------------------------------------------------
# channel send -> receive


def _chan_peer(buf: pg.Buffer, ping: pg.Chan, pong: pg.Chan, rounds: int, bad: pg.atomic.Int64) -> None:
    mv = memoryview(buf)
    try:
        for _ in range(rounds):
            v = ping.recv()
            if not consistent(mv, v):  # main's writes before its send
                bad.add(1)
            fill(mv, -v)
            pong.send(-v)
    finally:
        mv.release()
        pong.send(state.rt.p)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cap", [0, 4], ids=["unbuffered", "buffered"])
def test_write_before_send_is_visible_after_receive(cap):
    rounds = 200

    def main():
        buf = pg.Buffer(SLOTS * 8)
        ping, pong = pg.Chan(cap), pg.Chan(cap)
        bad = pg.atomic.Int64()
        go_on(1, _chan_peer, buf, ping, pong, rounds, bad)
        mv = memoryview(buf)
        seen = []
        try:
            for r in range(1, rounds + 1):
                fill(mv, r)
                ping.send(r)
                v = recv_within(pong)
                if not consistent(mv, v):  # the peer's writes before its send
                    bad.add(1)
                seen.append(v)
        finally:
            mv.release()
        p = recv_within(pong)
        return bad.load(), seen, p

    bad, seen, p = pg.run(main, procs=PROCS)
    assert p == 1, "the peer did not run on the other P"
    assert bad == 0
    assert seen == [-r for r in range(1, rounds + 1)]


# ---------------------------------------------------------------------------
# Mutex unlock -> next lock


def _mutex_writer(mu: pg.Mutex, buf: pg.Buffer, n: int, bad: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    mv = memoryview(buf)
    try:
        for i in range(n):
            with mu:
                (v,) = struct.unpack_from("<q", mv, 0)
                if not consistent(mv, v):  # the previous holder's writes, all of them
                    bad.add(1)
                fill(mv, v + 1)
            if i % 16 == 0:
                pg.gosched()
    finally:
        mv.release()
        wg.done()


@pytest.mark.timeout(120)
def test_write_under_mutex_is_visible_to_the_next_holder():
    workers, n = 4, 150

    def main():
        mu = pg.Mutex()
        buf = pg.Buffer(SLOTS * 8)
        bad = pg.atomic.Int64()
        wg = pg.WaitGroup()
        for i in range(workers):
            wg.add(1)
            go_on(i, _mutex_writer, mu, buf, n, bad, wg)
        wg.wait()
        with mu:
            mv = memoryview(buf)
            try:
                return bad.load(), consistent(mv, workers * n)
            finally:
                mv.release()

    assert pg.run(main, procs=PROCS) == (0, True)


# ---------------------------------------------------------------------------
# Once.do -> every caller


def _once_reader(once: pg.Once, buf: pg.Buffer, runs: pg.atomic.Int64, out: pg.Chan) -> None:
    def init():
        runs.add(1)
        mv = memoryview(buf)
        try:
            for k in range(SLOTS):  # slowly, one slot at a time
                struct.pack_into("<q", mv, k * 8, 4242)
                if k % 128 == 0:
                    pg.gosched()
        finally:
            mv.release()
        return "filled"

    res = once.do(init)
    mv = memoryview(buf)
    try:
        out.send((res, consistent(mv, 4242), state.rt.p))
    finally:
        mv.release()


@pytest.mark.timeout(120)
def test_once_effects_are_visible_to_every_caller():
    def main():
        once = pg.Once()
        buf = pg.Buffer(SLOTS * 8)
        runs = pg.atomic.Int64()
        out = pg.Chan(8)
        for i in range(8):
            go_on(i, _once_reader, once, buf, runs, out)
        got = [recv_within(out) for _ in range(8)]
        return runs.load(), got

    runs, got = pg.run(main, procs=PROCS)
    assert runs == 1
    assert all(r[:2] == ("filled", True) for r in got), got
    assert {r[2] for r in got} == {0, 1}


# ---------------------------------------------------------------------------
# WaitGroup.done -> wait


def _slot_writer(buf: pg.Buffer, k: int, v: int, wg: pg.WaitGroup) -> None:
    mv = memoryview(buf)
    try:
        # this goroutine's own stripe of 64 slots
        struct.pack_into("<64q", mv, k * 64 * 8, *([v] * 64))
    finally:
        mv.release()
        wg.done()


@pytest.mark.timeout(120)
def test_waitgroup_done_happens_before_wait_returns():
    workers, rounds = 8, 25

    def main():
        buf = pg.Buffer(workers * 64 * 8)
        bad = []
        for r in range(1, rounds + 1):
            wg = pg.WaitGroup()
            wg.add(workers)
            for k in range(workers):
                go_on(k, _slot_writer, buf, k, r * 100 + k, wg)
            wg.wait()
            mv = memoryview(buf)
            try:
                for k in range(workers):
                    stripe = struct.unpack_from("<64q", mv, k * 64 * 8)
                    if stripe != (r * 100 + k,) * 64:
                        bad.append((r, k))
            finally:
                mv.release()
        return bad

    assert pg.run(main, procs=PROCS) == []
