"""Stress (opt-in: ``pytest tests/stress --stress`` or PARAGO_STRESS=1): seeded, time-boxed
random workloads across Ps that must conserve every value."""

from __future__ import annotations

import os
import random
import time

import pytest

import parago as pg

pytestmark = pytest.mark.stress


@pytest.fixture(autouse=True)
def _opt_in(stress: bool) -> None:
    if not stress:
        pytest.skip("stress tests are opt-in: --stress or PARAGO_STRESS=1")


SECONDS = float(os.environ.get("PARAGO_STRESS_SECONDS", "5"))


def producer(
    seed: int, chans: list, total: pg.atomic.Int64, count: pg.atomic.Int64, deadline: float, wg: pg.WaitGroup
) -> None:
    rng = random.Random(seed)
    while time.time() < deadline:
        v = rng.randrange(1, 1000)
        ch = rng.choice(chans)
        if rng.random() < 0.2:
            i, _, _ = pg.select(pg.Send(ch, v), default=True)
            if i == -1:
                continue
        else:
            ch.send(v)
        total.add(v)
        count.add(1)
        if rng.random() < 0.01:
            pg.gosched()
    wg.done()


def consumer(seed: int, chans: list, total: pg.atomic.Int64, count: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    rng = random.Random(seed)
    cases = [pg.Recv(c) for c in chans]
    open_ = len(chans)
    while open_:
        i, v, ok = pg.select(*cases)
        if not ok:
            cases[i] = None
            open_ -= 1
            continue
        total.add(v)
        count.add(1)
        if rng.random() < 0.05 and len(chans[i]):
            try:
                extra = chans[i].recv_many(8)  # may block: others drain it too
            except pg.EndOfChannel:
                extra = []
            for x in extra:
                total.add(x)
                count.add(1)
    wg.done()


@pytest.mark.timeout(SECONDS * 6 + 60)
@pytest.mark.parametrize("seed", [1, 2])
def test_random_select_traffic_conserves_every_value(seed: int) -> None:
    def main() -> tuple:
        rng = random.Random(seed)
        chans = [pg.Chan(rng.choice([0, 1, 16, 256])) for _ in range(4)]
        sent_sum, sent_n = pg.atomic.Int64(), pg.atomic.Int64()
        got_sum, got_n = pg.atomic.Int64(), pg.atomic.Int64()
        pw, cw = pg.WaitGroup(), pg.WaitGroup()
        deadline = time.time() + SECONDS
        for k in range(6):
            pw.add(1)
            pg.go(producer, seed * 100 + k, chans, sent_sum, sent_n, deadline, pw)
        for k in range(6):
            cw.add(1)
            pg.go(consumer, seed * 1000 + k, chans, got_sum, got_n, cw)
        pw.wait()
        for c in chans:
            c.close()
        cw.wait()
        return sent_sum.load(), sent_n.load(), got_sum.load(), got_n.load()

    s, n, g, m = pg.run(main, procs=2)
    assert n > 1000
    assert (g, m) == (s, n)
