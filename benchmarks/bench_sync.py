"""sync, atomics, zero-copy buffers and context: parago against multiprocessing and Go.

    mutex_counter      two goroutines on different Ps (procs=2) each add 1
                       M times to a counter in a pg.Buffer under a pg.Mutex:
                       ns per increment (the seed's §6.2 comparison, with the
                       two rows below); peer: multiprocessing.Value with its lock
    atomic_counter     the same with pg.atomic.Int64.add
    sharded_counter    the same with pg.atomic.Counter (sharded, padded)
    mutex_uncontended  Mutex lock+unlock on one P: µs; peers
                       multiprocessing.Lock and threading.Lock
    zero_copy          1 MiB payloads to a consumer on another P that touches
                       one byte of each: pg.Buffer through a channel vs bytes
                       through a parago channel vs multiprocessing.Queue vs
                       multiprocessing.shared_memory + a queue of names.
                       pg.Buffer twice: a new one per message, and recycled
                       through a pg.Pool (the seed's zeroCopyExample)
    context_cancel     a goroutine parked (select on ctx.done()) on another P
                       sees done() after cancel(): median and p90 latency;
                       peers: multiprocessing.Event, a byte through a Pipe

Run: python3 benchmarks/bench_sync.py [--quick] [--repeat N] [--procs N]
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.resource_tracker
import multiprocessing.shared_memory
import os
import statistics
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["mutex_counter", "atomic_counter", "sharded_counter", "mutex_uncontended", "zero_copy", "context_cancel"]
FORK = multiprocessing.get_context("fork")
MiB = 1 << 20


# ======================================================================
# counters


def _count_mutex(mu: pg.Mutex, buf: pg.Buffer, m: int) -> None:
    v = memoryview(buf).cast("q")
    try:
        lock, unlock = mu.lock, mu.unlock
        for _ in range(m):
            lock()
            v[0] += 1
            unlock()
    finally:
        v.release()


def _count_atomic(a: pg.atomic.Int64, m: int) -> None:
    add = a.add
    for _ in range(m):
        add(1)


def _count_sharded(c: pg.atomic.Counter, m: int) -> None:
    add = c.add
    for _ in range(m):
        add(1)


def _counter_worker(kind: str, obj: Any, m: int, start: pg.Chan, done: pg.Chan) -> None:
    start.recv_ok()  # closed by main: everyone starts together
    _COUNT[kind](*obj, m)
    done.send(time.perf_counter())


_COUNT = {"mutex": _count_mutex, "atomic": _count_atomic, "sharded": _count_sharded}


def _pg_counter(kind: str, m: int, repeat: int) -> list[tuple[float, int, bool]]:
    """Main (P0) and one goroutine on another P each add 1 m times; (seconds, total, placed)."""
    out = []
    for _ in range(repeat):
        if kind == "mutex":
            buf = pg.Buffer(8)
            obj: tuple = (pg.Mutex(), buf)
        elif kind == "atomic":
            obj = (pg.atomic.Int64(),)
        else:
            obj = (pg.atomic.Counter(),)
        start, done = pg.Chan(0), pg.Chan(1)
        placed = h.go_on_other_p(_counter_worker, kind, obj, m, start, done)
        pg.sleep(0.01)  # the worker is parked on start
        t0 = time.perf_counter()
        start.close()
        _COUNT[kind](*obj, m)
        t_main = time.perf_counter()
        t_other = done.recv()
        dt = max(t_main, t_other) - t0
        if kind == "mutex":
            v = memoryview(buf).cast("q")
            total = v[0]
            v.release()
        elif kind == "atomic":
            total = obj[0].load()
        else:
            total = obj[0].value()
        out.append((dt, total, placed))
    return out


def _mp_value_counter(m: int) -> tuple[float, int]:
    val = FORK.Value("q", 0, lock=True)
    go = FORK.Event()

    def work() -> None:
        go.wait()
        lock = val.get_lock()
        for _ in range(m):
            with lock:
                val.value += 1

    p = FORK.Process(target=work, name="bench-counter")
    p.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    go.set()
    lock = val.get_lock()
    for _ in range(m):
        with lock:
            val.value += 1
    p.join()
    return time.perf_counter() - t0, val.value


def _pg_uncontended(m: int, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        mu = pg.Mutex()
        lock, unlock = mu.lock, mu.unlock
        t0 = time.perf_counter()
        for _ in range(m):
            lock()
            unlock()
        out.append(time.perf_counter() - t0)
    return out


def _lock_uncontended(lk: Any, m: int) -> float:
    acq, rel = lk.acquire, lk.release
    t0 = time.perf_counter()
    for _ in range(m):
        acq()
        rel()
    return time.perf_counter() - t0


def bench_counters(b: h.Bench) -> None:
    procs = b.procs
    m = b.size(200_000, 5_000)
    m_peer = min(m, b.size(100_000, 5_000))
    wanted = [k for k in ("mutex", "atomic", "sharded") if b.want(f"{k}_counter")]
    print(
        f"\n## counters: 2 goroutines on different Ps (procs={procs}) x {m:,} increments each: {', '.join(wanted)}",
        flush=True,
    )
    rows: dict[str, dict] = {}
    for kind in wanted:
        name = f"{kind}_counter"
        runs = b.guard(name, "parago", h.pg_run, _pg_counter, kind, m, b.repeat, procs=procs)
        if runs:
            for _, total, _ in runs:
                b.check(total == 2 * m, name, "parago", f"counter {total:,} after 2 x {m:,} increments")
            b.placement(name, "parago", [p for _, _, p in runs], procs)
            rows[kind] = b.add_samples(name, "parago", "increment", [dt / (2 * m) * 1e9 for dt, _, _ in runs], "ns/op")
    if "mutex" in wanted:
        impl = "multiprocessing.Value (its lock)"
        runs = b.guard("mutex_counter", impl, lambda: [_mp_value_counter(m_peer) for _ in range(b.repeat)])
        if runs:
            for _, total in runs:
                b.check(total == 2 * m_peer, "mutex_counter", impl, f"value {total} after 2 x {m_peer}")
            b.add_samples(
                "mutex_counter",
                impl,
                "increment",
                [dt / (2 * m_peer) * 1e9 for dt, _ in runs],
                "ns/op",
                note="2 processes",
            )
    for kind in wanted:
        b.add_go(f"{kind}_counter", "sync", _go_args(b))
    for kind in ("atomic", "sharded"):
        b.compare("the seed's §6.2 (parago)", rows.get(kind), rows.get("mutex"))
    gomap = {r["name"]: r for r in b.rows if r["impl"] == "go" and r["metric"] == "increment"}
    b.compare("the seed's §6.2 (Go)", gomap.get("sharded_counter"), gomap.get("mutex_counter"))
    b.flush()


def bench_mutex_uncontended(b: h.Bench) -> None:
    name = "mutex_uncontended"
    m = b.size(500_000, 10_000)
    print(f"\n## mutex_uncontended: {m:,} x lock+unlock on one P (procs=1)", flush=True)
    runs = b.guard(name, "parago", h.pg_run, _pg_uncontended, m, b.repeat, procs=1)
    if runs:
        b.add_samples(name, "parago", "lock+unlock", [dt / m * 1e6 for dt in runs], "µs")
    for impl, mk in (("multiprocessing.Lock", FORK.Lock), ("threading.Lock (1 process)", threading.Lock)):
        runs = b.guard(name, impl, lambda mk=mk: [_lock_uncontended(mk(), m) for _ in range(b.repeat)])
        if runs:
            b.add_samples(name, impl, "lock+unlock", [dt / m * 1e6 for dt in runs], "µs")
    b.add_go(name, "sync", _go_args(b))
    b.flush()


# ======================================================================
# zero_copy


def _zc_consume_buffers(ch: pg.Chan, n: int, done: pg.Chan) -> None:
    s = 0
    for _ in range(n):
        buf = ch.recv()
        s += buf[0]
        del buf
    done.send(s)


def _new_mib() -> pg.Buffer:
    return pg.Buffer(MiB)


def _zc_consume_pooled(ch: pg.Chan, pool: pg.Pool, n: int, done: pg.Chan) -> None:
    s = 0
    for _ in range(n):
        buf = ch.recv()
        s += buf[0]
        pool.put(buf)
        del buf
    done.send(s)


def _zc_consume_bytes(ch: pg.Chan, n: int, done: pg.Chan) -> None:
    s = 0
    for _ in range(n):
        s += ch.recv()[0]
    done.send(s)


def _pg_zero_copy(kind: str, n: int, repeat: int) -> list[tuple[float, int, bool]]:
    payload = b"\x01" * MiB
    out = []
    for _ in range(repeat):
        ch, done = pg.Chan(8), pg.Chan(1)
        if kind == "buffer":
            placed = h.go_on_other_p(_zc_consume_buffers, ch, n, done)
            t0 = time.perf_counter()
            for _ in range(n):
                buf = pg.Buffer(MiB)
                buf[0] = 1
                ch.send(buf)
                del buf
        elif kind == "pooled":
            pool = pg.Pool(_new_mib)
            placed = h.go_on_other_p(_zc_consume_pooled, ch, pool, n, done)
            t0 = time.perf_counter()
            for _ in range(n):
                buf = pool.get()
                buf[0] = 1
                ch.send(buf)
                del buf
        else:
            placed = h.go_on_other_p(_zc_consume_bytes, ch, n, done)
            t0 = time.perf_counter()
            for _ in range(n):
                ch.send(payload)
        s = done.recv()
        out.append((time.perf_counter() - t0, s, placed))
    return out


def _mp_queue_bytes(n: int) -> tuple[float, int]:
    payload = b"\x01" * MiB
    q = FORK.Queue(8)
    ctl_r, ctl_w = FORK.Pipe(duplex=False)

    def child() -> None:
        ctl_w.send("ready")
        s = 0
        for _ in range(n):
            s += q.get()[0]
        ctl_w.send(s)

    p = FORK.Process(target=child, name="bench-zc")
    p.start()
    try:
        ctl_r.recv()
        t0 = time.perf_counter()
        for _ in range(n):
            q.put(payload)
        s = ctl_r.recv()
        dt = time.perf_counter() - t0
    finally:
        p.join(10)
        q.close()
        q.join_thread()
    return dt, s


def _mp_shared_memory(n: int) -> tuple[float, int]:
    """A new SharedMemory segment per message, its name through a multiprocessing.Queue."""
    from multiprocessing.shared_memory import SharedMemory

    multiprocessing.resource_tracker.ensure_running()  # one tracker, shared with the child
    q = FORK.Queue(8)
    ctl_r, ctl_w = FORK.Pipe(duplex=False)

    def child() -> None:
        ctl_w.send("ready")
        s = 0
        for _ in range(n):
            shm = SharedMemory(name=q.get())
            s += shm.buf[0]
            shm.close()
            shm.unlink()
        ctl_w.send(s)

    p = FORK.Process(target=child, name="bench-zc-shm")
    p.start()
    try:
        ctl_r.recv()
        t0 = time.perf_counter()
        for _ in range(n):
            shm = SharedMemory(create=True, size=MiB)
            shm.buf[0] = 1
            q.put(shm.name)
            shm.close()
        s = ctl_r.recv()
        dt = time.perf_counter() - t0
    finally:
        p.join(10)
        q.close()
        q.join_thread()
    return dt, s


def bench_zero_copy(b: h.Bench) -> None:
    name = "zero_copy"
    procs = b.procs
    n = b.size(2_000, 100)
    n_peer = min(n, b.size(500, 50))
    print(f"\n## zero_copy: {n:,} x 1 MiB to a consumer on another P that touches one byte (procs={procs})", flush=True)
    for impl, kind in (
        ("parago Buffer (new each)", "buffer"),
        ("parago Buffer (pg.Pool)", "pooled"),
        ("parago bytes", "bytes"),
    ):
        runs = b.guard(name, impl, h.pg_run, _pg_zero_copy, kind, n, b.repeat, procs=procs)
        if runs:
            for _, s, _ in runs:
                b.check(s == n, name, impl, f"consumer saw {s} marker bytes of {n}")
            b.placement(name, impl, [p for _, _, p in runs], procs)
            b.add_samples(name, impl, "1 MiB msgs", [n / dt for dt, _, _ in runs], "msgs/s")
    scaled = f"scaled down: {n_peer:,} msgs" if n_peer < n else None
    for impl, fn in (
        ("multiprocessing.Queue (bytes)", _mp_queue_bytes),
        ("shared_memory + multiprocessing.Queue of names", _mp_shared_memory),
    ):
        runs = b.guard(name, impl, lambda fn=fn: [fn(n_peer) for _ in range(b.repeat)])
        if runs:
            for _, s in runs:
                b.check(s == n_peer, name, impl, f"consumer saw {s} marker bytes of {n_peer}")
            b.add_samples(name, impl, "1 MiB msgs", [n_peer / dt for dt, _ in runs], "msgs/s", note=scaled)
    b.add_go(name, "sync", _go_args(b))
    b.flush()


# ======================================================================
# context_cancel


def _ctx_waiter(ctxs: pg.Chan, ready: pg.Chan, times: pg.Chan, k: int) -> None:
    never = pg.Chan(0)
    for _ in range(k):
        ctx = ctxs.recv()
        ready.send(True)
        pg.select(pg.Recv(ctx.done()), pg.Recv(never))
        times.send(time.perf_counter())


def _pg_context_cancel(k: int, settle: float) -> tuple[list[float], bool]:
    ctxs, ready, times = pg.Chan(1), pg.Chan(1), pg.Chan(1)
    placed = h.go_on_other_p(_ctx_waiter, ctxs, ready, times, k)
    lat = []
    for _ in range(k):
        ctx, cancel = pg.context.with_cancel(pg.context.background())
        ctxs.send(ctx)
        ready.recv()
        pg.sleep(settle)  # the waiter is parked and its P gone idle
        t0 = time.perf_counter()
        cancel()
        lat.append(times.recv() - t0)
    return lat, placed


def _mp_event_latency(k: int, settle: float) -> list[float]:
    ev = FORK.Event()
    a, c = FORK.Pipe()

    def child() -> None:
        for _ in range(k):
            c.recv()
            c.send("ready")
            ev.wait()
            c.send(time.perf_counter())

    p = FORK.Process(target=child, name="bench-event")
    p.start()
    lat = []
    try:
        for _ in range(k):
            ev.clear()
            a.send("go")
            a.recv()
            time.sleep(settle)
            t0 = time.perf_counter()
            ev.set()
            lat.append(a.recv() - t0)
    finally:
        p.join(10)
        a.close()
        c.close()
    return lat


def _pipe_latency(k: int, settle: float) -> list[float]:
    a, c = FORK.Pipe()

    def child() -> None:
        for _ in range(k):
            c.recv()
            c.send(time.perf_counter())

    p = FORK.Process(target=child, name="bench-pipe")
    p.start()
    lat = []
    try:
        time.sleep(0.05)
        for _ in range(k):
            time.sleep(settle)
            t0 = time.perf_counter()
            a.send(None)
            lat.append(a.recv() - t0)
    finally:
        p.join(10)
        a.close()
        c.close()
    return lat


def bench_context_cancel(b: h.Bench) -> None:
    name = "context_cancel"
    procs = b.procs
    k = b.size(200, 20)
    settle = 0.005
    print(
        f"\n## context_cancel: {k} cancels, waiter parked on another P (procs={procs}), {settle * 1e3:.0f} ms idle before each",
        flush=True,
    )

    def stats(lat: list[float]) -> dict:
        qs = statistics.quantiles(lat, n=10) if len(lat) >= 2 else [lat[0]] * 9
        return {"median": statistics.median(lat) * 1e6, "p90": qs[8] * 1e6}

    placed: list[bool] = []
    runs = []
    for _ in range(b.repeat):
        r = b.guard(name, "parago", h.pg_run, _pg_context_cancel, k, settle, procs=procs)
        if r is None:
            runs = []
            break
        runs.append(stats(r[0]))
        placed.append(r[1])
    if runs:
        b.placement(name, "parago", placed, procs)
        for metric in ("median", "p90"):
            b.add_samples(name, "parago", metric, [s[metric] for s in runs], "µs")
    for impl, fn in (
        ("multiprocessing.Event", _mp_event_latency),
        ("multiprocessing.Pipe (a byte to a blocked recv)", _pipe_latency),
    ):
        peer = b.guard(name, impl, lambda fn=fn: [stats(fn(k, settle)) for _ in range(b.repeat)])
        if peer:
            for metric in ("median", "p90"):
                b.add_samples(name, impl, metric, [s[metric] for s in peer], "µs")
    b.add_go(name, "sync", _go_args(b))
    b.flush()


def _go_args(b: h.Bench) -> list[str]:
    return [
        "-procs", str(b.procs),
        "-m", str(b.size(1_000_000, 20_000)),
        "-zc-n", str(b.size(2_000, 100)),
        "-cancel-k", str(b.size(200, 20)),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("sync", __doc__.splitlines()[0], NAMES, argv, default_procs=2)
    if any(b.want(f"{k}_counter") for k in ("mutex", "atomic", "sharded")):
        bench_counters(b)
    for nm, fn in (
        ("mutex_uncontended", bench_mutex_uncontended),
        ("zero_copy", bench_zero_copy),
        ("context_cancel", bench_context_cancel),
    ):
        if b.want(nm):
            fn(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
