"""Soak (opt-in: ``pytest tests/stress --soak MINUTES`` or
PARAGO_SOAK_MINUTES): mixed traffic for MINUTES in one run -- a channel
per request, pg.after in a loop, a context per call, select, Mutex,
WaitGroup, Buffers -- in rounds that each end with every worker done.  At
each round boundary it samples RSS per P, the fds of every P and the arena's
``inuse`` bytes (read from the arena header), prints them as a table, and
asserts no drift: RSS within 5 % of its value after warm-up, fds and
``inuse`` back to their baseline (a long-running program runs in constant
arena memory, DESIGN "The arena").
"""

from __future__ import annotations

import gc
import os
import random
import time

import psutil
import pytest

import parago as pg
from parago._runtime import state
from tests import helpers
from tests.stress import conftest

pytestmark = pytest.mark.soak

WORKERS_PER_P = 4
OPS = 200  # per worker per round
RSS_DRIFT = 0.05
WARMUP = 0.25  # of the duration
INUSE_SLACK = 4096  # bytes


def _request(rng: random.Random, shared: pg.Chan, mu: pg.Mutex, counter: pg.atomic.Int64, ctx) -> None:
    """One unit of mixed traffic; everything it creates is garbage after."""
    r = rng.random()
    if r < 0.3:
        reply = pg.Chan(1)  # a channel per request
        reply.send(("pong", rng.random()))
        assert reply.recv()[0] == "pong"
    elif r < 0.45:
        timer = pg.after(0.0005)  # pg.after in a loop
        pg.select(pg.Recv(timer), pg.Recv(ctx.done()))
    elif r < 0.6:
        c, cancel = pg.context.with_timeout(ctx, 1.0)  # a context per call
        cancel()
        assert c.err() is not None
    elif r < 0.75:
        with mu:
            counter.store(counter.load() + 1)
    elif r < 0.9:
        i, _, _ = pg.select(pg.Send(shared, rng.randrange(100)), pg.Recv(shared), default=True)
    else:
        buf = pg.Buffer(rng.choice((64, 4096, 65536)))
        memoryview(buf)[0] = 1


def _worker(seed: int, shared: pg.Chan, mu: pg.Mutex, counter: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    rng = random.Random(seed)
    ctx = pg.context.background()
    try:
        for _ in range(OPS):
            _request(rng, shared, mu, counter, ctx)
    finally:
        wg.done()


def _settle(wg: pg.WaitGroup) -> None:
    """Let this P give back what its garbage held (handles are released when
    collected, and their arena references dropped at its next round)."""
    gc.collect()
    pg.sleep(0.02)
    gc.collect()
    pg.sleep(0.02)
    wg.done()


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _sample(t0: float) -> dict:
    a = state.rt.arena
    pids = [a.u32[a.p_field(p, "pid") // 4] for p in range(pg.gomaxprocs())]
    return {
        "t": time.monotonic() - t0,
        "rss": [psutil.Process(pid).memory_info().rss for pid in pids],
        "fds": sum(_fds(pid) for pid in pids),
        "inuse": a.hdr_u64("inuse"),
    }


def soak_main(seconds: float, every: float) -> list[dict]:
    procs = pg.gomaxprocs()
    shared, mu, counter = pg.Chan(8), pg.Mutex(), pg.atomic.Int64()
    samples: list[dict] = []
    t0 = time.monotonic()
    last = -every
    rnd = 0
    while time.monotonic() - t0 < seconds:
        wg = pg.WaitGroup()
        wg.add(procs * WORKERS_PER_P)
        for k in range(procs * WORKERS_PER_P):
            helpers.go_on(k, _worker, rnd * 1000 + k, shared, mu, counter, wg)
        wg.wait()
        while pg.select(pg.Recv(shared), default=True)[0] == 0:
            pass  # drain: the round boundary holds nothing in flight
        rnd += 1
        if time.monotonic() - t0 - last >= every:
            last = time.monotonic() - t0
            settled = pg.WaitGroup()
            settled.add(procs)
            for p in range(procs):
                helpers.go_on(p, _settle, settled)
            settled.wait()
            pg.sleep(0.05)  # the arena decrefs of the others' last round
            samples.append(_sample(t0))
    return samples


def _table(samples: list[dict]) -> list[str]:
    procs = len(samples[0]["rss"])
    head = f"{'t (s)':>8} " + " ".join(f"{'P' + str(p) + ' RSS MiB':>12}" for p in range(procs))
    head += f" {'fds':>6} {'arena inuse':>12}"
    rows = [head]
    for s in samples:
        rss = " ".join(f"{r / 2**20:12.1f}" for r in s["rss"])
        rows.append(f"{s['t']:8.1f} {rss} {s['fds']:6d} {s['inuse']:12d}")
    return rows


@pytest.mark.timeout(0)  # the soak sets its own length; the per-round waits are bounded by OPS
def test_soak_rss_fds_and_arena_inuse_do_not_drift(request):
    minutes = conftest.soak_minutes(request.config)
    if not minutes:
        pytest.skip("opt-in: pytest tests/stress --soak MINUTES (or PARAGO_SOAK_MINUTES)")
    seconds = minutes * 60
    procs = min(4, max(2, os.cpu_count() or 2))
    samples = pg.run(soak_main, seconds, max(1.0, seconds / 30), procs=procs)
    table = _table(samples)
    conftest.SUMMARY.append(f"soak: {minutes} min at procs={procs}")
    conftest.SUMMARY.extend(table)
    assert len(samples) >= 4, "too short a soak to judge drift"
    base = samples[max(1, int(len(samples) * WARMUP))]
    end = samples[-1]
    for p, (r0, r1) in enumerate(zip(base["rss"], end["rss"], strict=True)):
        assert r1 <= r0 * (1 + RSS_DRIFT), f"P{p} RSS grew {r0 / 2**20:.1f} -> {r1 / 2**20:.1f} MiB after warm-up"
    assert end["fds"] <= base["fds"], f"fds {base['fds']} -> {end['fds']}"
    # inuse at a settled boundary still holds a few blocks in flight (timers
    # about to fire, a decref not yet applied): a leak raises its floor
    q = max(2, len(samples) // 4)
    warm = max(1, int(len(samples) * WARMUP))
    floor0 = min(s["inuse"] for s in samples[warm : warm + q])
    floor1 = min(s["inuse"] for s in samples[-q:])
    assert floor1 <= floor0 + INUSE_SLACK, f"arena inuse floor {floor0} -> {floor1} bytes (a leak)"
