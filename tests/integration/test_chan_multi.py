"""Channels across Ps: conservation (every value sent is received exactly
once), the seed's pipeline, and a model-based property test of one
buffered channel against a deque.
"""

from __future__ import annotations

import collections
import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parago as pg
from tests import helpers

_recv_timeout = functools.partial(helpers.recv_within, seconds=30.0)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PRODUCERS = CONSUMERS = 4
PER_PRODUCER = 400


# ----------------------------------------------------------------------
# conservation: 4 producers x 4 consumers


def _producer(k: int, ch: pg.Chan, wg: pg.WaitGroup, seed: int, batch: bool) -> None:
    rnd = random.Random(seed * 1000 + k)
    vals = list(range(k * PER_PRODUCER, (k + 1) * PER_PRODUCER))
    i = 0
    try:
        while i < len(vals):
            n = rnd.randint(1, 8) if batch else 1
            if n == 1:
                ch.send(vals[i])
            else:
                assert ch.send_many(vals[i : i + n]) == len(vals[i : i + n])
            i += n
            r = rnd.random()
            if r < 0.05:
                pg.sleep(rnd.random() * 0.002)
            elif r < 0.2:
                pg.gosched()
    finally:
        wg.done()


def _closer(ch: pg.Chan, wg: pg.WaitGroup, delay: float) -> None:
    pg.sleep(delay)  # random close timing: never before the producers are done
    wg.wait()
    ch.close()


def _consumer(ch: pg.Chan, results: pg.Chan, many: bool) -> None:
    got = []
    if many:
        while True:
            try:
                got += ch.recv_many(5)
            except pg.EndOfChannel:
                break
    else:
        for v in ch:
            got.append(v)
    results.send((len(got), sum(got), got))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("cap,batch,many", [(0, False, False), (16, False, False), (16, True, True), (3, True, False)])
def test_conservation_producers_consumers_across_ps(seed, cap, batch, many):
    def main():
        rnd = random.Random(seed)
        ch, results = pg.Chan(cap), pg.Chan(CONSUMERS)
        wg = pg.WaitGroup()
        wg.add(PRODUCERS)
        for _ in range(CONSUMERS):
            pg.go(_consumer, ch, results, many)
        pg.go(_closer, ch, wg, rnd.random() * 0.05)
        for k in range(PRODUCERS):
            pg.go(_producer, k, ch, wg, seed, batch)
        return [_recv_timeout(results) for _ in range(CONSUMERS)]

    reports = pg.run(main, procs=2)
    total = PRODUCERS * PER_PRODUCER
    everything = []
    for count, checksum, got in reports:
        assert count == len(got) and checksum == sum(got)
        everything += got
    assert sum(r[0] for r in reports) == total
    assert sum(r[1] for r in reports) == total * (total - 1) // 2
    assert sorted(everything) == list(range(total)), "a value was lost or received twice"
    # each consumer sees each producer's values in send order (FIFO per channel)
    for _, _, got in reports:
        for k in range(PRODUCERS):
            mine = [v for v in got if v // PER_PRODUCER == k]
            assert mine == sorted(mine)


# ----------------------------------------------------------------------
# the seed's pipeline (§2.3): generator -> 4 squarers -> collector


def _generate(raw: pg.Chan, n: int) -> None:
    try:
        for i in range(1, n + 1):
            raw.send(i)
    finally:
        raw.close()


def _square(raw: pg.Chan, processed: pg.Chan, wg: pg.WaitGroup) -> None:
    try:
        for v in raw:
            processed.send(v * v)
    finally:
        wg.done()


def _close_when_done(wg: pg.WaitGroup, processed: pg.Chan) -> None:
    wg.wait()
    processed.close()


@pytest.fixture(params=[1, 2], ids=["procs1", "procs2"])
def procs(request):
    return request.param


def test_pipeline_generator_squarers_collector(procs):
    n = 2000

    def main():
        raw, processed = pg.Chan(100), pg.Chan(50)
        wg = pg.WaitGroup()
        wg.add(4)
        pg.go(_generate, raw, n)
        for _ in range(4):
            pg.go(_square, raw, processed, wg)
        pg.go(_close_when_done, wg, processed)
        count = total = 0
        for v in processed:
            count += 1
            total += v
        return count, total

    assert pg.run(main, procs=procs) == (n, sum(i * i for i in range(1, n + 1)))


# ----------------------------------------------------------------------
# model-based: one buffered channel vs a deque


_ops = st.one_of(
    st.tuples(st.just("send"), st.integers(-5, 1000)),
    st.tuples(st.just("recv")),
    st.tuples(st.just("send_block"), st.integers(-5, 1000)),
    st.tuples(st.just("recv_block")),
    st.tuples(st.just("len")),
    st.tuples(st.just("close")),
)


def _model_main(cap: int, ops: list) -> None:
    ch = pg.Chan(cap)
    model: collections.deque = collections.deque()
    closed = False
    for step, op in enumerate(ops):
        where = f"step {step}: {op}, model={list(model)}, closed={closed}"
        kind = op[0]
        if kind == "send" or (kind == "send_block" and (closed or len(model) == cap)):
            # a blocking send that would block (or fail) is tried non-blocking
            v = op[1] if len(op) > 1 else 0
            if closed:
                with pytest.raises(pg.ClosedChannelError, match=r"^send on closed channel$"):
                    pg.select(pg.Send(ch, v), default=True)
            elif len(model) < cap:
                assert pg.select(pg.Send(ch, v), default=True) == (0, None, True), where
                model.append(v)
            else:
                assert pg.select(pg.Send(ch, v), default=True) == (-1, None, False), where
        elif kind == "send_block":
            ch.send(op[1])
            model.append(op[1])
        elif kind == "recv" or (kind == "recv_block" and not model and not closed):
            r = pg.select(pg.Recv(ch), default=True)
            if model:
                assert r == (0, model.popleft(), True), where
            elif closed:
                assert r == (0, None, False), where
            else:
                assert r == (-1, None, False), where
        elif kind == "recv_block":
            if model:
                assert ch.recv_ok() == (model.popleft(), True), where
            else:
                assert ch.recv_ok() == (None, False), where
                with pytest.raises(pg.EndOfChannel):
                    ch.recv()
        elif kind == "len":
            assert (len(ch), ch.cap, ch.closed) == (len(model), cap, closed), where
        elif kind == "close":
            if closed:
                with pytest.raises(pg.ClosedChannelError, match=r"^close of closed channel$"):
                    ch.close()
            else:
                ch.close()
                closed = True
        assert len(ch) == len(model), where
    # the end state: what is left drains in order, then the end
    if not closed:
        ch.close()
    assert list(ch) == list(model)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cap=st.integers(1, 4), ops=st.lists(_ops, max_size=40))
def test_buffered_channel_matches_deque_model(cap, ops):
    pg.run(_model_main, cap, ops, procs=1)
