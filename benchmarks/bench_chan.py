"""Channels and select: parago against multiprocessing, faster-fifo, asyncio, queue and Go.

    chan_sync      the seed's BenchmarkUnbufferedChan: N ints through an
                   unbuffered channel on one P (procs=1): µs per op
    chan_buffered  1,000,000 ints producer -> consumer on different Ps
                   (procs=2), and 100,000 x 1 KiB bytes: msgs/s
    chan_batch     the same ints with send_many/recv_many, batches of 1,000
    ping_pong      round trip between two goroutines on different Ps: µs
    select_2       select over two channels fed from the other P: µs/select
    pipeline       1 -> 4 -> 1 goroutines at procs=2: items/s

Peers in the same run, each between two processes (a forked child):
multiprocessing.Queue, SimpleQueue, Pipe, faster_fifo.Queue (single and
batched put_many/get_many); in one process, for reference: asyncio.Queue
on uvloop and queue.Queue between two threads; Go when `go` is on PATH.

Run: python3 benchmarks/bench_chan.py [--quick] [--repeat N] [--procs N]
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import queue
import sys
import threading
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["chan_sync", "chan_buffered", "chan_batch", "ping_pong", "select_2", "pipeline"]
FORK = multiprocessing.get_context("fork")
CAP = 1024  # capacity of every buffered channel / bounded queue
BATCH = 1000
KIB = b"x" * 1024

try:
    import faster_fifo
except ImportError:  # pragma: no cover - the bench extra installs it
    faster_fifo = None


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


# ======================================================================
# parago


def _send_ints(ch: pg.Chan, n: int) -> None:
    for i in range(n):
        ch.send(i)


def _consume_ints(ch: pg.Chan, n: int, done: pg.Chan) -> None:
    s = 0
    for _ in range(n):
        s += ch.recv()
    done.send(s)


def _consume_bytes(ch: pg.Chan, n: int, done: pg.Chan) -> None:
    s = 0
    for _ in range(n):
        s += len(ch.recv())
    done.send(s)


def _consume_many(ch: pg.Chan, n: int, batch: int, done: pg.Chan) -> None:
    s = got = 0
    while got < n:
        xs = ch.recv_many(batch)
        got += len(xs)
        s += sum(xs)
    done.send(s)


def _echo(a: pg.Chan, b: pg.Chan, n: int) -> None:
    for _ in range(n):
        b.send(a.recv())


def _select_producer(a: pg.Chan, b: pg.Chan, n: int, batch: int) -> None:
    # feeds both channels in batches so that the select side is the bottleneck
    sent = 0
    while sent < n:
        k = min(batch, n - sent)
        (a if (sent // batch) % 2 == 0 else b).send_many(range(sent, sent + k))
        sent += k


def _pl_source(src: pg.Chan, n: int) -> None:
    for i in range(n):
        src.send(i)
    src.close()


def _pl_worker(src: pg.Chan, dst: pg.Chan, wg: pg.WaitGroup) -> None:
    for v in src:
        dst.send(v * 2)
    wg.done()


def _pl_closer(wg: pg.WaitGroup, dst: pg.Chan) -> None:
    wg.wait()
    dst.close()


def _pg_chan_sync(n: int, repeat: int) -> list[tuple[float, int]]:
    out = []
    for _ in range(repeat):
        ch = pg.Chan(0)
        pg.go(_send_ints, ch, n)
        t0 = time.perf_counter()
        s = 0
        for _ in range(n):
            s += ch.recv()
        out.append((time.perf_counter() - t0, s))
    return out


def _pg_stream(n: int, payload: bytes | None, repeat: int, typed: bool, batch: int) -> list[tuple[float, int, bool]]:
    """Main (P0) produces, a consumer placed on another P receives; (seconds, checksum, placed)."""
    out = []
    for _ in range(repeat):
        ch = pg.Chan[int](CAP * 4 if batch else CAP) if typed else pg.Chan(CAP * 4 if batch else CAP)
        done = pg.Chan(1)
        if batch:
            placed = h.go_on_other_p(_consume_many, ch, n, batch, done)
        else:
            placed = h.go_on_other_p(_consume_bytes if payload else _consume_ints, ch, n, done)
        t0 = time.perf_counter()
        if batch:
            for i in range(0, n, batch):
                ch.send_many(range(i, min(i + batch, n)))
        elif payload is None:
            for i in range(n):
                ch.send(i)
        else:
            for _ in range(n):
                ch.send(payload)
        s = done.recv()
        out.append((time.perf_counter() - t0, s, placed))
    return out


def _pg_ping_pong(n: int, repeat: int) -> list[tuple[float, bool]]:
    out = []
    for _ in range(repeat):
        a, b = pg.Chan(0), pg.Chan(0)
        placed = h.go_on_other_p(_echo, a, b, n)
        t0 = time.perf_counter()
        for i in range(n):
            a.send(i)
            b.recv()
        out.append((time.perf_counter() - t0, placed))
    return out


def _pg_select(n: int, repeat: int) -> list[tuple[float, int, bool]]:
    out = []
    for _ in range(repeat):
        a, b = pg.Chan(CAP), pg.Chan(CAP)
        placed = h.go_on_other_p(_select_producer, a, b, n, 100)
        ra, rb = pg.Recv(a), pg.Recv(b)
        select = pg.select
        s = 0
        t0 = time.perf_counter()
        for _ in range(n):
            s += select(ra, rb)[1]
        out.append((time.perf_counter() - t0, s, placed))
    return out


def _pg_pipeline(n: int, repeat: int) -> list[tuple[float, int]]:
    out = []
    for _ in range(repeat):
        src, dst = pg.Chan(CAP), pg.Chan(CAP)
        wg = pg.WaitGroup()
        wg.add(4)
        t0 = time.perf_counter()
        pg.go(_pl_source, src, n)
        for _ in range(4):
            pg.go(_pl_worker, src, dst, wg)
        pg.go(_pl_closer, wg, dst)
        s = 0
        for v in dst:
            s += v
        out.append((time.perf_counter() - t0, s))
    return out


# ======================================================================
# peers across processes


class Transport:
    """One direction between this process and a forked child."""

    def __init__(self, kind: str, payload_bytes: int = 64) -> None:
        self.kind = kind
        self.batched = False
        if kind == "multiprocessing.Queue":
            q: Any = FORK.Queue()
            self.put, self.get = q.put, q.get
            self._close: Callable[[], None] = lambda: (q.close(), q.join_thread())
        elif kind == "multiprocessing.Queue (lists of 1,000)":
            q = FORK.Queue()
            self.put, self.get = q.put, q.get
            self.batched = True
            self._close = lambda: (q.close(), q.join_thread())
        elif kind == "multiprocessing.SimpleQueue":
            q = FORK.SimpleQueue()
            self.put, self.get = q.put, q.get
            self._close = q.close
        elif kind == "multiprocessing.Pipe":
            r, w = FORK.Pipe(duplex=False)
            self.put, self.get = w.send, r.recv
            self._close = lambda: (r.close(), w.close())
        elif kind in ("faster_fifo.Queue", "faster_fifo.Queue (put_many/get_many)"):
            if faster_fifo is None:
                raise h.PeerMissing("faster_fifo is not installed (pip install 'parago[bench]' adds it)")
            # room for CAP messages, as the parago channel has
            q = faster_fifo.Queue(max_size_bytes=max(1_000_000, CAP * (payload_bytes + 64)))
            self.put, self.get = q.put, q.get
            if "many" in kind:
                self.batched = True
                self.put = q.put_many
                self.get = lambda: q.get_many(max_messages_to_get=BATCH)
            self._close = q.close
        else:
            raise ValueError(kind)

    def close(self) -> None:
        self._close()


STREAM_PEERS = [
    "multiprocessing.Queue",
    "multiprocessing.SimpleQueue",
    "multiprocessing.Pipe",
    "faster_fifo.Queue",
    "faster_fifo.Queue (put_many/get_many)",
]


def _peer_stream(kind: str, n: int, payload: bytes | None) -> tuple[float, int]:
    """This process produces n items, a forked child consumes them; (seconds, checksum)."""
    t = Transport(kind, len(payload) if payload else 16)
    ctl_r, ctl_w = FORK.Pipe(duplex=False)

    def child() -> None:
        ctl_w.send("ready")
        s = got = 0
        get = t.get
        if t.batched:
            while got < n:
                xs = get()
                got += len(xs)
                s += sum(len(x) for x in xs) if payload else sum(xs)
        elif payload:
            for _ in range(n):
                s += len(get())
        else:
            for _ in range(n):
                s += get()
        ctl_w.send(s)

    p = FORK.Process(target=child, name="bench-consumer")
    p.start()
    try:
        ctl_r.recv()
        put = t.put
        t0 = time.perf_counter()
        if t.batched:
            for i in range(0, n, BATCH):
                k = min(BATCH, n - i)
                put([payload] * k if payload else list(range(i, i + k)))
        elif payload:
            for _ in range(n):
                put(payload)
        else:
            for i in range(n):
                put(i)
        s = ctl_r.recv()
        dt = time.perf_counter() - t0
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()
        t.close()
        ctl_r.close()
        ctl_w.close()
    return dt, s


def _inproc_asyncio_stream(n: int, payload: bytes | None) -> tuple[float, int]:
    async def amain() -> tuple[float, int]:
        q: asyncio.Queue = asyncio.Queue(CAP)

        async def producer() -> None:
            if payload:
                for _ in range(n):
                    await q.put(payload)
            else:
                for i in range(n):
                    await q.put(i)

        async def consumer() -> int:
            s = 0
            for _ in range(n):
                v = await q.get()
                s += len(v) if payload else v
            return s

        t0 = time.perf_counter()
        _, s = await asyncio.gather(producer(), consumer())
        return time.perf_counter() - t0, s

    loop = _new_loop()
    try:
        return loop.run_until_complete(amain())
    finally:
        loop.close()


def _inproc_queue_stream(n: int, payload: bytes | None) -> tuple[float, int]:
    q: queue.Queue = queue.Queue(CAP)

    def producer() -> None:
        if payload:
            for _ in range(n):
                q.put(payload)
        else:
            for i in range(n):
                q.put(i)

    th = threading.Thread(target=producer)
    t0 = time.perf_counter()
    th.start()
    s = 0
    for _ in range(n):
        v = q.get()
        s += len(v) if payload else v
    dt = time.perf_counter() - t0
    th.join()
    return dt, s


def _peer_ping_pong(kind: str, n: int) -> float:
    if kind == "multiprocessing.Pipe":
        a, b = FORK.Pipe()
        send, recv, csend, crecv = a.send, a.recv, b.send, b.recv
        closers: list[Callable] = [a.close, b.close]
    else:
        t1, t2 = Transport(kind), Transport(kind)
        send, recv, crecv, csend = t1.put, t2.get, t1.get, t2.put
        closers = [t1.close, t2.close]

    def child() -> None:
        for _ in range(n):
            csend(crecv())

    p = FORK.Process(target=child, name="bench-echo")
    p.start()
    try:
        send(-1)  # the child is up
        recv()
        t0 = time.perf_counter()
        for i in range(n - 1):
            send(i)
            recv()
        dt = time.perf_counter() - t0
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join()
        for c in closers:
            c()
    return dt / (n - 1)


def _inproc_asyncio_ping_pong(n: int) -> float:
    async def amain() -> float:
        a: asyncio.Queue = asyncio.Queue(1)
        b: asyncio.Queue = asyncio.Queue(1)

        async def echo() -> None:
            for _ in range(n):
                await b.put(await a.get())

        task = asyncio.ensure_future(echo())
        t0 = time.perf_counter()
        for i in range(n):
            await a.put(i)
            await b.get()
        dt = time.perf_counter() - t0
        await task
        return dt / n

    loop = _new_loop()
    try:
        return loop.run_until_complete(amain())
    finally:
        loop.close()


def _inproc_queue_ping_pong(n: int) -> float:
    a: queue.Queue = queue.Queue(1)
    b: queue.Queue = queue.Queue(1)

    def echo() -> None:
        for _ in range(n):
            b.put(a.get())

    th = threading.Thread(target=echo)
    th.start()
    t0 = time.perf_counter()
    for i in range(n):
        a.put(i)
        b.get()
    dt = time.perf_counter() - t0
    th.join()
    return dt / n


def _peer_select(n: int) -> tuple[float, int]:
    """multiprocessing.connection.wait over two Pipes fed by a child (Python's select)."""
    r1, w1 = FORK.Pipe(duplex=False)
    r2, w2 = FORK.Pipe(duplex=False)

    def child() -> None:
        for i in range(n):
            (w1 if (i // 100) % 2 == 0 else w2).send(i)

    p = FORK.Process(target=child, name="bench-select")
    t0 = time.perf_counter()
    p.start()
    s = got = 0
    wait = multiprocessing.connection.wait
    conns = [r1, r2]
    try:
        while got < n:
            for c in wait(conns):
                s += c.recv()
                got += 1
        dt = time.perf_counter() - t0
    finally:
        p.join(10)
        for c in (r1, w1, r2, w2):
            c.close()
    return dt, s


def _peer_pipeline(kind: str, n: int) -> tuple[float, int]:
    """source process -> 4 worker processes -> this process."""
    t_in, t_out = Transport(kind), Transport(kind)

    def source() -> None:
        put = t_in.put
        for i in range(n):
            put(i)
        for _ in range(4):
            put(None)

    def worker() -> None:
        get, put = t_in.get, t_out.put
        while True:
            v = get()
            if v is None:
                break
            put(v * 2)

    workers = [FORK.Process(target=worker, name="bench-worker") for _ in range(4)]
    for w in workers:
        w.start()
    src = FORK.Process(target=source, name="bench-source")
    t0 = time.perf_counter()
    src.start()
    s = 0
    get = t_out.get
    try:
        for _ in range(n):
            s += get()
        dt = time.perf_counter() - t0
    finally:
        for p in (src, *workers):
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
        t_in.close()
        t_out.close()
    return dt, s


# ======================================================================
# the benchmarks


def bench_chan_sync(b: h.Bench) -> None:
    name = "chan_sync"
    n = b.size(200_000, 5_000)
    print(f"\n## chan_sync: {n:,} ints through an unbuffered channel, one P (procs=1)", flush=True)
    runs = b.guard(name, "parago", h.pg_run, _pg_chan_sync, n, b.repeat, procs=1)
    if runs:
        for _, s in runs:
            b.check(s == n * (n - 1) // 2, name, "parago", f"checksum {s}")
        b.add_samples(name, "parago", "op", [dt / n * 1e6 for dt, _ in runs], "µs/op")
    runs = b.guard(
        name,
        "asyncio.Queue(1) (uvloop, same thread)",
        lambda: [_inproc_asyncio_stream_sync(n) for _ in range(b.repeat)],
    )
    if runs:
        b.add_samples(name, "asyncio.Queue(1) (uvloop, same thread)", "op", [dt / n * 1e6 for dt in runs], "µs/op")
    b.add_go(name, "chan", _go_args(b))
    b.flush()


def _inproc_asyncio_stream_sync(n: int) -> float:
    async def amain() -> float:
        q: asyncio.Queue = asyncio.Queue(1)

        async def producer() -> None:
            for i in range(n):
                await q.put(i)

        t0 = time.perf_counter()
        task = asyncio.ensure_future(producer())
        for _ in range(n):
            await q.get()
        await task
        return time.perf_counter() - t0

    loop = _new_loop()
    try:
        return loop.run_until_complete(amain())
    finally:
        loop.close()


def _stream_peers(
    b: h.Bench, name: str, metric: str, n: int, n_peer: int, payload: bytes | None, kinds: list[str]
) -> None:
    scaled = f"scaled down: {n_peer:,} msgs" if n_peer < n else None
    expect = n_peer * len(payload) if payload else n_peer * (n_peer - 1) // 2
    for kind in kinds:
        runs = b.guard(name, kind, lambda kind=kind: [_peer_stream(kind, n_peer, payload) for _ in range(b.repeat)])
        if runs:
            for _, s in runs:
                b.check(s == expect, name, kind, f"checksum {s} != {expect}")
            b.add_samples(name, kind, metric, [n_peer / dt for dt, _ in runs], "msgs/s", note=scaled)


def _inproc_refs(b: h.Bench, name: str, metric: str, n: int, payload: bytes | None) -> None:
    for impl, fn in (
        ("asyncio.Queue (uvloop, 1 process)", _inproc_asyncio_stream),
        ("queue.Queue (2 threads, 1 process)", _inproc_queue_stream),
    ):
        runs = b.guard(name, impl, lambda fn=fn: [fn(n, payload) for _ in range(b.repeat)])
        if runs:
            b.add_samples(name, impl, metric, [n / dt for dt, _ in runs], "msgs/s")


def bench_chan_buffered(b: h.Bench) -> None:
    name = "chan_buffered"
    procs = b.procs
    n = b.size(1_000_000, 20_000)
    n_peer = min(n, b.size(200_000, 5_000))
    n_kib = b.size(100_000, 5_000)
    n_kib_peer = min(n_kib, b.size(50_000, 2_000))
    print(
        f"\n## chan_buffered: {n:,} ints and {n_kib:,} x 1 KiB, producer -> consumer on another P (procs={procs}, cap {CAP})",
        flush=True,
    )
    for impl, typed in (("parago", False), ("parago Chan[int]", True)):
        runs = b.guard(name, impl, h.pg_run, _pg_stream, n, None, b.repeat, typed, 0, procs=procs)
        if runs:
            for _, s, _ in runs:
                b.check(s == n * (n - 1) // 2, name, impl, f"checksum {s}")
            b.placement(name, impl, [r[2] for r in runs], procs)
            b.add_samples(name, impl, "ints", [n / dt for dt, _, _ in runs], "msgs/s")
    runs = b.guard(name, "parago", h.pg_run, _pg_stream, n_kib, KIB, b.repeat, False, 0, procs=procs)
    if runs:
        for _, s, _ in runs:
            b.check(s == n_kib * 1024, name, "parago", f"bytes received {s}")
        b.placement(name, "parago (1 KiB)", [r[2] for r in runs], procs)
        b.add_samples(name, "parago", "1 KiB bytes", [n_kib / dt for dt, _, _ in runs], "msgs/s")
    _stream_peers(b, name, "ints", n, n_peer, None, STREAM_PEERS)
    _stream_peers(b, name, "1 KiB bytes", n_kib, n_kib_peer, KIB, STREAM_PEERS)
    _inproc_refs(b, name, "ints", n_peer, None)
    _inproc_refs(b, name, "1 KiB bytes", n_kib_peer, KIB)
    b.add_go(name, "chan", _go_args(b))
    b.flush()


def bench_chan_batch(b: h.Bench) -> None:
    name = "chan_batch"
    procs = b.procs
    n = b.size(1_000_000, 20_000)
    n_peer = min(n, b.size(500_000, 20_000))
    print(
        f"\n## chan_batch: {n:,} ints with send_many/recv_many in batches of {BATCH:,}, across Ps (procs={procs})",
        flush=True,
    )
    for impl, typed in (("parago", False), ("parago Chan[int]", True)):
        runs = b.guard(name, impl, h.pg_run, _pg_stream, n, None, b.repeat, typed, BATCH, procs=procs)
        if runs:
            for _, s, _ in runs:
                b.check(s == n * (n - 1) // 2, name, impl, f"checksum {s}")
            b.placement(name, impl, [r[2] for r in runs], procs)
            b.add_samples(name, impl, "ints", [n / dt for dt, _, _ in runs], "msgs/s")
    _stream_peers(
        b,
        name,
        "ints",
        n,
        n_peer,
        None,
        ["faster_fifo.Queue (put_many/get_many)", "multiprocessing.Queue (lists of 1,000)"],
    )
    b.add_go(name, "chan", _go_args(b))
    b.flush()


def bench_ping_pong(b: h.Bench) -> None:
    name = "ping_pong"
    procs = b.procs
    n = b.size(100_000, 2_000)
    n_peer = min(n, b.size(20_000, 1_000))
    print(
        f"\n## ping_pong: {n:,} round trips between goroutines on different Ps (unbuffered, procs={procs})", flush=True
    )
    runs = b.guard(name, "parago", h.pg_run, _pg_ping_pong, n, b.repeat, procs=procs)
    if runs:
        b.placement(name, "parago", [r[1] for r in runs], procs)
        b.add_samples(name, "parago", "round trip", [dt / n * 1e6 for dt, _ in runs], "µs")
    scaled = f"scaled down: {n_peer:,} round trips" if n_peer < n else None
    for kind in ("multiprocessing.Pipe", "multiprocessing.Queue", "multiprocessing.SimpleQueue", "faster_fifo.Queue"):
        runs = b.guard(name, kind, lambda kind=kind: [_peer_ping_pong(kind, n_peer) for _ in range(b.repeat)])
        if runs:
            b.add_samples(name, kind + " pair", "round trip", [x * 1e6 for x in runs], "µs", note=scaled)
    for impl, fn in (
        ("asyncio.Queue pair (uvloop, 1 process)", _inproc_asyncio_ping_pong),
        ("queue.Queue pair (2 threads, 1 process)", _inproc_queue_ping_pong),
    ):
        runs = b.guard(name, impl, lambda fn=fn: [fn(n_peer) for _ in range(b.repeat)])
        if runs:
            b.add_samples(name, impl, "round trip", [x * 1e6 for x in runs], "µs", note=scaled)
    b.add_go(name, "chan", _go_args(b))
    b.flush()


def bench_select_2(b: h.Bench) -> None:
    name = "select_2"
    procs = b.procs
    n = b.size(500_000, 10_000)
    n_peer = min(n, b.size(100_000, 5_000))
    print(f"\n## select_2: {n:,} selects over two buffered channels fed from another P (procs={procs})", flush=True)
    runs = b.guard(name, "parago", h.pg_run, _pg_select, n, b.repeat, procs=procs)
    if runs:
        for _, s, _ in runs:
            b.check(s == n * (n - 1) // 2, name, "parago", f"checksum {s}")
        b.placement(name, "parago", [r[2] for r in runs], procs)
        b.add_samples(name, "parago", "select", [dt / n * 1e6 for dt, _, _ in runs], "µs/op")
    impl = "multiprocessing.connection.wait (2 Pipes)"
    runs = b.guard(name, impl, lambda: [_peer_select(n_peer) for _ in range(b.repeat)])
    if runs:
        for _, s in runs:
            b.check(s == n_peer * (n_peer - 1) // 2, name, impl, f"checksum {s}")
        b.add_samples(
            name,
            impl,
            "select",
            [dt / n_peer * 1e6 for dt, _ in runs],
            "µs/op",
            note=f"scaled down: {n_peer:,}" if n_peer < n else None,
        )
    b.add_go(name, "chan", _go_args(b))
    b.flush()


def bench_pipeline(b: h.Bench) -> None:
    name = "pipeline"
    procs = b.procs
    n = b.size(200_000, 5_000)
    n_peer = min(n, b.size(50_000, 2_000))
    print(f"\n## pipeline: {n:,} items, source -> 4 workers -> sink (procs={procs}, cap {CAP})", flush=True)
    runs = b.guard(name, "parago", h.pg_run, _pg_pipeline, n, b.repeat, procs=procs)
    if runs:
        for _, s in runs:
            b.check(s == n * (n - 1), name, "parago", f"checksum {s}")
        b.add_samples(name, "parago", "1->4->1", [n / dt for dt, _ in runs], "items/s")
    scaled = f"6 processes; scaled down: {n_peer:,} items" if n_peer < n else "6 processes"
    for kind in ("multiprocessing.Queue", "faster_fifo.Queue"):
        runs = b.guard(name, kind, lambda kind=kind: [_peer_pipeline(kind, n_peer) for _ in range(b.repeat)])
        if runs:
            for _, s in runs:
                b.check(s == n_peer * (n_peer - 1), name, kind, f"checksum {s}")
            b.add_samples(name, kind, "1->4->1", [n_peer / dt for dt, _ in runs], "items/s", note=scaled)
    b.add_go(name, "chan", _go_args(b))
    b.flush()


def _go_args(b: h.Bench) -> list[str]:
    return [
        "-procs", str(b.procs),
        "-cap", str(CAP),
        "-sync-n", str(b.size(1_000_000, 20_000)),
        "-n", str(b.size(1_000_000, 20_000)),
        "-kib-n", str(b.size(100_000, 5_000)),
        "-pingpong-n", str(b.size(1_000_000, 20_000)),
        "-select-n", str(b.size(1_000_000, 20_000)),
        "-pipeline-n", str(b.size(1_000_000, 20_000)),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("chan", __doc__.splitlines()[0], NAMES, argv, default_procs=2)
    for nm, fn in (
        ("chan_sync", bench_chan_sync),
        ("chan_buffered", bench_chan_buffered),
        ("chan_batch", bench_chan_batch),
        ("ping_pong", bench_ping_pong),
        ("select_2", bench_select_2),
        ("pipeline", bench_pipeline),
    ):
        if b.want(nm):
            fn(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
