"""pg.Map against the shared dicts Python offers across processes.

    map_uncontended  one worker: load, store, load_or_store on K present keys,
                     µs per operation (parago: procs=1, the main goroutine)
    map_disjoint     two workers on two Ps (parago: main + a goroutine placed
                     on the other P; peers: two processes), each on its own
                     K keys: operations per second, both together.  Row
                     "parago (1 P)" is one worker alone on the same machine
                     (the scaling ratio)
    map_shared       the same with both workers on the same K keys

Peers, each measured in the same invocation:
  - ``multiprocessing.Manager().dict()``: a server process, every operation a
    round trip (load = ``d.get``, store = ``d[k] = v``, load_or_store =
    ``d.setdefault``)
  - a dict pickled into a ``multiprocessing.shared_memory`` block under a
    ``multiprocessing.Lock``: each operation takes the lock, unpickles the
    dict, (writes and re-pickles it,) releases -- O(K) per operation
  - Go's ``sync.Map`` (benchmarks/go/map.go) when ``go`` is on PATH
  - ``UltraDict`` (PyPI, shared memory; ``shared_lock=True`` for writers in
    several processes) when it is installed (``pip install ultradict
    atomics``); its loads are served from a per-process copy, and its
    ``setdefault`` is a load then a store (not atomic)

Run: python3 benchmarks/bench_map.py [--quick] [--repeat N] [--procs N]
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.resource_tracker
import os
import pickle
import struct
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["map_uncontended", "map_disjoint", "map_shared"]
OPS = ["load", "store", "load_or_store"]
FORK = multiprocessing.get_context("fork")
K = 256  # keys per worker


def _keys(worker: int, shared: bool) -> list[int]:
    base = 0 if shared else worker * K
    return list(range(base, base + K))


# ======================================================================
# parago


def _pg_ops(m: pg.Map, op: str, keys: list[int], n: int) -> None:
    nk = len(keys)
    if op == "load":
        load = m.load
        for i in range(n):
            load(keys[i % nk])
    elif op == "store":
        store = m.store
        for i in range(n):
            store(keys[i % nk], i)
    else:
        los = m.load_or_store
        for i in range(n):
            los(keys[i % nk], i)


def _pg_worker(m: pg.Map, op: str, keys: list[int], n: int, start: pg.Chan, done: pg.Chan) -> None:
    start.recv_ok()  # closed by main: both start together
    _pg_ops(m, op, keys, n)
    done.send(time.perf_counter())


def _pg_fill(m: pg.Map, keys: list[int]) -> None:
    for k in keys:
        m.store(k, k)


def _pg_uncontended(n: int, repeat: int) -> dict[str, list[float]]:
    """µs per operation, one worker (this goroutine)."""
    out: dict[str, list[float]] = {op: [] for op in OPS}
    keys = _keys(0, False)
    for _ in range(repeat):
        for op in OPS:
            m = pg.Map()
            _pg_fill(m, keys)
            t0 = time.perf_counter()
            _pg_ops(m, op, keys, n)
            out[op].append((time.perf_counter() - t0) / n * 1e6)
            assert len(m) == K
    return out


def _pg_two(n: int, repeat: int, shared: bool) -> dict[str, Any]:
    """ops/s: one worker alone, then two on two Ps; and whether the second was placed."""
    one: dict[str, list[float]] = {op: [] for op in OPS}
    two: dict[str, list[float]] = {op: [] for op in OPS}
    placed = []
    for _ in range(repeat):
        for op in OPS:
            m = pg.Map()
            k0, k1 = _keys(0, shared), _keys(1, shared)
            _pg_fill(m, k0)
            _pg_fill(m, k1)
            t0 = time.perf_counter()
            _pg_ops(m, op, k0, n)
            one[op].append(n / (time.perf_counter() - t0))
            start, done = pg.Chan(0), pg.Chan(1)
            placed.append(h.go_on_other_p(_pg_worker, m, op, k1, n, start, done))
            pg.sleep(0.01)  # the worker is parked on start
            t0 = time.perf_counter()
            start.close()
            _pg_ops(m, op, k0, n)
            t_main = time.perf_counter()
            t_other = done.recv()
            two[op].append(2 * n / (max(t_main, t_other) - t0))
            assert len(m) == (K if shared else 2 * K)
    return {"one": one, "two": two, "placed": placed}


# ======================================================================
# peers: each is (setup in the parent) -> a handle children attach to


class _Peer:
    """A shared dict peer: ``make()`` in the parent, ``attach()`` in a forked
    child, then ``load/store/load_or_store``; ``close()`` in the parent."""

    name = ""

    def make(self) -> None: ...
    def attach(self) -> None: ...
    def close(self) -> None: ...
    def load(self, k: int) -> Any: ...
    def store(self, k: int, v: int) -> None: ...
    def load_or_store(self, k: int, v: int) -> Any: ...


class _ManagerDict(_Peer):
    name = "multiprocessing.Manager().dict()"

    def make(self) -> None:
        self.mgr = FORK.Manager()
        self.d = self.mgr.dict()

    def attach(self) -> None:
        pass  # the proxy reconnects in the child

    def close(self) -> None:
        self.mgr.shutdown()

    def load(self, k: int) -> Any:
        return self.d.get(k)

    def store(self, k: int, v: int) -> None:
        self.d[k] = v

    def load_or_store(self, k: int, v: int) -> Any:
        return self.d.setdefault(k, v)


class _LockedShm(_Peer):
    name = "dict in shared_memory + multiprocessing.Lock"
    SIZE = 1 << 20
    _len = struct.Struct("<Q")

    def make(self) -> None:
        from multiprocessing.shared_memory import SharedMemory

        multiprocessing.resource_tracker.ensure_running()  # one tracker, shared with the children
        self.shm = SharedMemory(create=True, size=self.SIZE)
        self.lock = FORK.Lock()
        self._put({})

    def attach(self) -> None:
        pass  # fork: the mapping and the lock are inherited

    def close(self) -> None:
        self.shm.close()
        self.shm.unlink()

    def _get(self) -> dict:
        (n,) = self._len.unpack_from(self.shm.buf, 0)
        return pickle.loads(self.shm.buf[8 : 8 + n])

    def _put(self, d: dict) -> None:
        data = pickle.dumps(d, 5)
        self._len.pack_into(self.shm.buf, 0, len(data))
        self.shm.buf[8 : 8 + len(data)] = data

    def load(self, k: int) -> Any:
        with self.lock:
            return self._get().get(k)

    def store(self, k: int, v: int) -> None:
        with self.lock:
            d = self._get()
            d[k] = v
            self._put(d)

    def load_or_store(self, k: int, v: int) -> Any:
        with self.lock:
            d = self._get()
            if k in d:
                return d[k]
            d[k] = v
            self._put(d)
            return v


class _Ultra(_Peer):
    name = "UltraDict (shared_lock)"

    def make(self) -> None:
        try:
            from UltraDict import UltraDict
        except ImportError:
            raise h.PeerMissing("UltraDict is not installed (pip install ultradict atomics)") from None
        try:
            import atomics  # noqa: F401  # shared_lock=True needs it
        except ImportError:
            raise h.PeerMissing("UltraDict needs `atomics` for shared_lock=True (pip install atomics)") from None
        self.cls = UltraDict
        self.d = UltraDict(create=True, shared_lock=True, buffer_size=1 << 24, full_dump_size=1 << 22)
        self.dname = self.d.name

    def attach(self) -> None:
        # keep the inherited (creator's) object alive: its __del__ would
        # unlink the shared memory under everyone
        self.creator = self.d
        self.d = self.cls(name=self.dname, shared_lock=True)

    def close(self) -> None:
        self.d.unlink()

    def load(self, k: int) -> Any:
        return self.d.get(k)

    def store(self, k: int, v: int) -> None:
        self.d[k] = v

    def load_or_store(self, k: int, v: int) -> Any:
        return self.d.setdefault(k, v)


PEERS: list[Callable[[], _Peer]] = [_ManagerDict, _LockedShm, _Ultra]


def _peer_ops(p: _Peer, op: str, keys: list[int], n: int) -> None:
    fn = getattr(p, op)
    nk = len(keys)
    if op == "load":
        for i in range(n):
            fn(keys[i % nk])
    else:
        for i in range(n):
            fn(keys[i % nk], i)


def _peer_fill(p: _Peer, keys: list[int]) -> None:
    for k in keys:
        p.store(k, k)


def _peer_uncontended(mk: Callable[[], _Peer], n: int, repeat: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {op: [] for op in OPS}
    p = mk()
    p.make()
    try:
        keys = _keys(0, False)
        _peer_fill(p, keys)
        for _ in range(repeat):
            for op in OPS:
                t0 = time.perf_counter()
                _peer_ops(p, op, keys, n)
                out[op].append((time.perf_counter() - t0) / n * 1e6)
    finally:
        p.close()
    return out


def _peer_child(p: _Peer, op: str, keys: list[int], n: int, go: Any, conn: Any) -> None:
    p.attach()
    conn.send("ready")
    go.wait()
    _peer_ops(p, op, keys, n)
    conn.send(time.perf_counter())


def _peer_two(mk: Callable[[], _Peer], n: int, repeat: int, shared: bool) -> dict[str, list[float]]:
    """ops/s of two processes together."""
    out: dict[str, list[float]] = {op: [] for op in OPS}
    p = mk()
    p.make()
    try:
        k0, k1 = _keys(0, shared), _keys(1, shared)
        _peer_fill(p, k0)
        _peer_fill(p, k1)
        for _ in range(repeat):
            for op in OPS:
                go = FORK.Event()
                pipes, procs = [], []
                for keys in (k0, k1):
                    r, w = FORK.Pipe(duplex=False)
                    pr = FORK.Process(target=_peer_child, args=(p, op, keys, n, go, w), name="bench-map")
                    pr.start()
                    pipes.append(r)
                    procs.append(pr)
                for r in pipes:
                    r.recv()
                t0 = time.perf_counter()
                go.set()
                ends = [r.recv() for r in pipes]
                out[op].append(2 * n / (max(ends) - t0))
                for pr in procs:
                    pr.join(30)
    finally:
        p.close()
    return out


# ======================================================================


def bench_uncontended(b: h.Bench) -> None:
    name = "map_uncontended"
    n = b.size(100_000, 3_000)
    n_peer = b.size(10_000, 300)
    print(f"\n## {name}: one worker, {n:,} ops on {K} present keys (peers: {n_peer:,})", flush=True)
    runs = b.guard(name, "parago", h.pg_run, _pg_uncontended, n, b.repeat, procs=1)
    if runs:
        for op in OPS:
            b.add_samples(name, "parago", op, runs[op], "µs")
    for mk in PEERS:
        impl = mk.name
        runs = b.guard(name, impl, _peer_uncontended, mk, n_peer, b.repeat)
        if runs:
            for op in OPS:
                b.add_samples(name, impl, op, runs[op], "µs")
    b.add_go(name, "map", _go_args(b))
    b.flush()


def bench_two(b: h.Bench, shared: bool) -> None:
    name = "map_shared" if shared else "map_disjoint"
    procs = max(2, b.procs)
    n = b.size(100_000, 3_000)
    n_peer = b.size(10_000, 300)
    what = "the same" if shared else "disjoint"
    print(f"\n## {name}: two workers on two Ps, {what} {K} keys, {n:,} ops each (peers: {n_peer:,})", flush=True)
    runs = b.guard(name, "parago", h.pg_run, _pg_two, n, b.repeat, shared, procs=procs)
    rows: dict[str, tuple[dict, dict]] = {}
    if runs:
        b.placement(name, "parago", runs["placed"], procs)
        for op in OPS:
            two = b.add_samples(name, "parago", op, runs["two"][op], "ops/s", note="2 Ps")
            one = b.add_samples(name, "parago (1 P)", op, runs["one"][op], "ops/s", note="one worker alone")
            rows[op] = (two, one)
    for mk in PEERS:
        impl = mk.name
        peer = b.guard(name, impl, _peer_two, mk, n_peer, b.repeat, shared)
        if peer:
            for op in OPS:
                b.add_samples(name, impl, op, peer[op], "ops/s", note="2 processes")
    b.add_go(name, "map", _go_args(b))
    b.flush()
    for op, (two, one) in rows.items():
        b.compare(f"{name} scaling ({op})", two, one)


def _go_args(b: h.Bench) -> list[str]:
    """Go's sync.Map, the same shapes (more operations: each is ~100x cheaper)."""
    return ["-procs", str(max(2, b.procs)), "-n", str(b.size(1_000_000, 30_000)), "-k", str(K)]


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("map", __doc__.splitlines()[0], NAMES, argv, default_procs=2)
    if b.want("map_uncontended"):
        bench_uncontended(b)
    if b.want("map_disjoint"):
        bench_two(b, shared=False)
    if b.want("map_shared"):
        bench_two(b, shared=True)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
