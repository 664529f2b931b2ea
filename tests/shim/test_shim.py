"""ctypes-level tests of the C shim (shm/): atomics, Go's run queues, the
arena allocator, its exhaustion, the exported layout table and constants.

Multi-process tests fork plain children that call only the C entry points
on the inherited arena mapping, then ``os._exit``; every child is reaped
(killed first if it overran), and each test asserts conservation -- every
increment counted, every goroutine taken exactly once, every byte of
``inuse`` given back -- not just that it finished (STYLE 17).

    parent (test)                      children (fork)
    -------------                      ---------------
    Arena.create(size, nprocs) ──fork──> same MAP_SHARED mapping, same base
    lib.pg_* on a.base                   lib.pg_* on a.base; results into
    os.waitpid + read results <───────── arena blocks; os._exit(status)
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parago._shim as shim
from parago._shim import CONST, LAYOUT, LAYOUT_HASH, NOMEM, Gstatus, SyncKind, lib, offset
from parago._shim.arena import Arena, LayoutMismatch

pytestmark = pytest.mark.shim

MiB = 1 << 20
GOID = offset("pg_g", "goid")
INUSE = offset("pg_arena", "inuse")
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- helpers


def _fork(fn, *args) -> int:
    """Run fn(*args) in a forked child: exit 0 on return, 1 on any exception."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            fn(*args)
            code = 0
        except BaseException:
            try:
                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:
                pass
        finally:
            os._exit(code)
    return pid


def _reap(pids: list[int], timeout: float = 30.0) -> dict[int, str]:
    """Wait for every child; kill the ones still running at the deadline.

    Returns pid -> "exit N" / "signal N" so a failed assertion says how each
    child ended.
    """
    deadline = time.monotonic() + timeout
    out: dict[int, str] = {}
    left = list(pids)
    while left:
        for pid in list(left):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                out[pid] = _how(status)
                left.remove(pid)
        if left and time.monotonic() > deadline:
            for pid in left:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                out[pid] = "killed at deadline (" + _how(status) + ")"
            break
        if left:
            time.sleep(0.005)
    return out


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.waitstatus_to_exitcode(status)}"


def _all_ok(ends: dict[int, str]) -> bool:
    return all(v == "exit 0" for v in ends.values())


@pytest.fixture
def arena_factory():
    """Arena.create(...) that is always closed at teardown.  Thieves steal at
    once here (no victim age): these tests are about Go's run queue itself."""
    made: list[Arena] = []
    lib.pg_set_steal_age(0)

    def make(size: int = 32 * MiB, nprocs: int = 4, nonce: int = 0x5EED) -> Arena:
        a = Arena.create(size, nprocs, nonce)
        made.append(a)
        return a

    yield make
    lib.pg_set_steal_age(1_000_000)
    for a in made:
        a.close()


def _u64(a: Arena, off: int) -> int:
    return a.q[off // 8]


# ---------------------------------------------------------------- atomics


def _adder(base: int, obj: int, ready: int, nprocs: int, n: int) -> None:
    add, load = lib.pg_atomic_add, lib.pg_atomic_load
    add(base, ready, 1)
    while load(base, ready) < nprocs:  # start together, so the adds contend
        os.sched_yield()
    for _ in range(n):
        add(base, obj, 1)


def _cas_adder(base: int, obj: int, ready: int, nprocs: int, n: int) -> None:
    cas, load, add = lib.pg_atomic_cas, lib.pg_atomic_load, lib.pg_atomic_add
    add(base, ready, 1)
    while load(base, ready) < nprocs:
        os.sched_yield()
    for _ in range(n):
        while True:
            v = load(base, obj)
            if cas(base, obj, v, v + 1):
                break


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker", [_adder, _cas_adder], ids=["atomic_add", "cas_loop"])
def test_atomic_increments_from_four_processes_are_all_counted(arena_factory, worker):
    a = arena_factory()
    obj = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 0)
    ready = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 0)
    assert obj > 0 and ready > 0
    nprocs, n = 4, 100_000
    pids = [_fork(worker, a.base, obj, ready, nprocs, n) for _ in range(nprocs)]
    ends = _reap(pids)
    assert _all_ok(ends), ends
    assert lib.pg_atomic_load(a.base, obj) == nprocs * n


@pytest.mark.timeout(10)
def test_atomic_ops_return_go_results(arena_factory):
    a = arena_factory()
    o = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 5)
    assert lib.pg_atomic_load(a.base, o) == 5
    assert lib.pg_atomic_add(a.base, o, 3) == 8  # Add returns the new value
    assert lib.pg_atomic_swap(a.base, o, 1) == 8  # Swap returns the old one
    assert lib.pg_atomic_cas(a.base, o, 2, 9) == 0
    assert lib.pg_atomic_load(a.base, o) == 1
    assert lib.pg_atomic_cas(a.base, o, 1, 9) == 1
    lib.pg_atomic_store(a.base, o, -(1 << 63))
    assert lib.pg_atomic_add(a.base, o, -1) == (1 << 63) - 1  # wraps like Go's int64


# ---------------------------------------------------------------- run queues


def _padded(fn, *args):
    """Call fn with args plus zeros for trailing parameters this test does
    not use (pg_go's refs/nrefs, pg_findrunnable's exited): 0 means "none"."""
    extra = len(fn.argtypes) - len(args)
    return fn(*args, *([0] * extra))


GF_HERE = CONST["GF_HERE"]


def _go(base: int, p: int) -> int:
    """pg.go of a G with a small payload onto P p's runnext (GF_HERE: Go's
    structures exactly, no placement)."""
    return _padded(lib.pg_go, base, p, b"payload", 7, GF_HERE, 0, 0, 0)


def _find(base: int, p: int, tick: int = 0) -> int:
    """pg_findrunnable as P p's owner: local queues, then steal (its own
    schedtick decides the 61st/7th-tick checks; ``tick`` is unused)."""
    return _padded(lib.pg_findrunnable, base, p)


def _new_g(a: Arena, p: int = 0) -> int:
    g = _go(a.base, p)
    assert g > 0, g
    return g


def _goid(a: Arena, g: int) -> int:
    return _u64(a, g + GOID)


def _thief(a: Arena, p: int, rec: int, cap: int, ready: int, done: int) -> None:
    """Take Gs as P p until the producer is done and nothing is left.

    rec: a block of 1 + cap uint64s: [count, goid, goid, ...].
    """
    base, find, load = a.base, _find, lib.pg_atomic_load
    lib.pg_atomic_add(base, ready, 1)
    q = a.q
    n, tick, idle = 0, 1, 0
    while True:
        g = find(base, p, tick)
        tick += 1
        if g:
            if n >= cap:
                raise AssertionError(f"P{p} took more than {cap} Gs: duplicates")
            q[rec // 8 + 1 + n] = q[(g + GOID) // 8]
            n += 1
            q[rec // 8] = n
            idle = 0
        elif load(base, done):
            idle += 1
            if idle > 200:
                return
        else:
            os.sched_yield()


def _drain(a: Arena, nprocs: int, taken: list[int], tick: int) -> None:
    """Single-threaded: take everything left on every P and the global queue."""
    while True:
        got = False
        for p in range(nprocs):
            while g := _find(a.base, p, tick):
                tick += 1
                taken.append(_goid(a, g))
                got = True
        if not got:
            return


def _produce_and_steal(a: Arena, n: int, take_every: int, nthieves: int = 2) -> list[int]:
    """P0 (this process) spawns n Gs, taking two itself every take_every
    spawns, while nthieves forked Ps steal.  Returns every goid taken."""
    done = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 0)
    ready = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 0)
    recs = [a.alloc(8 * (n + 1)) for _ in range(nthieves)]
    for r in recs:
        a.q[r // 8] = 0
    pids = [_fork(_thief, a, p + 1, recs[p], n, ready, done) for p in range(nthieves)]
    taken: list[int] = []
    tick = 1
    try:
        deadline = time.monotonic() + 10
        while lib.pg_atomic_load(a.base, ready) < nthieves and time.monotonic() < deadline:
            os.sched_yield()  # the thieves are stealing before the first spawn
        for i in range(n):
            _go(a.base, 0)
            if i % take_every == 0:
                # twice: the first usually takes runnext, the second races
                # the thieves for the ring's head
                for _ in range(2):
                    g = _find(a.base, 0, tick)
                    tick += 1
                    if g:
                        taken.append(_goid(a, g))
    finally:
        lib.pg_atomic_store(a.base, done, 1)
        ends = _reap(pids)
    assert _all_ok(ends), ends
    # the thieves are gone: this process may act as every P's owner now
    _drain(a, nthieves + 1, taken, tick)
    for r in recs:
        cnt = a.q[r // 8]
        taken.extend(a.q[r // 8 + 1 : r // 8 + 1 + cnt])
    return taken


def _assert_each_once(taken: list[int], n: int) -> None:
    dup = sorted({g for g in taken if taken.count(g) > 1}) if len(taken) != len(set(taken)) else []
    missing = sorted(set(range(1, n + 1)) - set(taken))
    extra = sorted(set(taken) - set(range(1, n + 1)))
    assert not dup and not missing and not extra, (
        f"{len(taken)} taken for {n} spawned: duplicates {dup[:10]}, "
        f"lost {missing[:10]} ({len(missing)}), unknown {extra[:10]}"
    )


@pytest.mark.timeout(60)
def test_runq_with_two_thieves_hands_out_every_goroutine_exactly_once(arena_factory):
    a = arena_factory(size=64 * MiB, nprocs=3)
    n = 20_000
    taken = _produce_and_steal(a, n, take_every=3)
    _assert_each_once(taken, n)


@pytest.mark.timeout(60)
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(n=st.integers(1, 700), take_every=st.integers(1, 4))
def test_runq_conservation_property(n, take_every):
    lib.pg_set_steal_age(0)
    a = Arena.create(16 * MiB, 3, 7)
    try:
        taken = _produce_and_steal(a, n, take_every)
        _assert_each_once(taken, n)
    finally:
        a.close()


@pytest.mark.timeout(10)
def test_spawn_goes_to_runnext_and_kicks_the_old_runnext_to_the_ring(arena_factory):
    a = arena_factory(nprocs=2)
    for _ in range(3):
        _new_g(a)
    # runnext holds the newest (3); the ring holds 1, 2 in FIFO order.
    # tick 1 is neither a 61st nor a 7th tick: runnext first, then the ring.
    order = [_goid(a, _find(a.base, 0, 1)) for _ in range(3)]
    assert order == [3, 1, 2]
    assert _find(a.base, 0, 1) == 0


@pytest.mark.timeout(10)
def test_steal_takes_half_the_ring_but_not_runnext(arena_factory):
    a = arena_factory(nprocs=2)
    for _ in range(9):
        _new_g(a)  # runnext = 9, ring = 1..8
    # P1 has nothing: it steals half of P0's ring (4), runs the last of the
    # batch and keeps the others in its own ring, as Go's runqsteal does
    got = _goid(a, _find(a.base, 1, 1))
    assert got == 4
    assert [_goid(a, _find(a.base, 1, 1)) for _ in range(3)] == [1, 2, 3]
    # P1's ring is empty now: the next steal takes half of 5..8 (2 of 4)
    assert _goid(a, _find(a.base, 1, 1)) == 6
    # P0 keeps runnext (9) and what was not stolen
    assert [_goid(a, _find(a.base, 0, 1)) for _ in range(3)] == [9, 7, 8]
    assert _goid(a, _find(a.base, 1, 1)) == 5
    assert _find(a.base, 0, 1) == 0
    assert _find(a.base, 1, 1) == 0


@pytest.mark.timeout(10)
def test_runq_overflow_to_the_global_queue_loses_nothing(arena_factory):
    a = arena_factory(nprocs=2)
    n = 1000  # > 256 ring slots: runqputslow moves halves to the global queue
    for _ in range(n):
        _new_g(a)
    assert a.hdr_u32("gq_size") > 0
    taken: list[int] = []
    _drain(a, 2, taken, 1)
    _assert_each_once(taken, n)
    assert a.hdr_u32("gq_size") == 0


# ---------------------------------------------------------------- allocator


def _churn(a: Arena, who: int, seed: int, ops: int, ready: int, nprocs: int) -> None:
    """pg_malloc/pg_mfree random sizes; each block carries (who, seq) in
    every 8-byte word and is verified before it is freed and at the end."""
    rng = random.Random(seed)
    base, malloc, mfree = a.base, lib.pg_malloc, lib.pg_mfree
    lib.pg_atomic_add(base, ready, 1)
    while lib.pg_atomic_load(base, ready) < nprocs:  # churn at the same time
        os.sched_yield()
    mv = a.mv
    live: dict[int, tuple[int, bytes]] = {}
    offs: list[int] = []  # live offsets, for O(1) random choice

    def check(off: int) -> None:
        size, pat = live[off]
        if bytes(mv[off : off + size]) != pat:
            raise AssertionError(f"process {who}: block {off:#x}+{size} overwritten by another process")

    # grow to `high` live blocks (mostly fresh bump allocations, so the
    # processes race on the bump pointer), then shrink (free lists), repeat
    high, growing = 1500, True
    for seq in range(ops):
        if growing and len(offs) >= high:
            growing = False
        elif not growing and len(offs) <= 50:
            growing = True
        if offs and rng.random() < (0.1 if growing else 0.9):
            i = rng.randrange(len(offs))
            off = offs[i]
            offs[i] = offs[-1]
            offs.pop()
            check(off)
            del live[off]
            mfree(base, off)
            continue
        size = rng.randint(16, 5000)
        off = malloc(base, size)
        if off <= 0 or off % 16 or off + size > a.size:
            raise AssertionError(f"process {who}: pg_malloc({size}) returned {off}")
        if off in live:
            raise AssertionError(f"process {who}: pg_malloc returned live block {off:#x} twice")
        word = ((who + 1) << 56 | seq).to_bytes(8, "little")
        pat = (word * (size // 8 + 1))[:size]
        mv[off : off + size] = pat
        live[off] = (size, pat)
        offs.append(off)
        if seq % 4 == 0:  # re-verify some older block while the others churn
            check(offs[rng.randrange(len(offs))])
    for off in offs:
        check(off)
        mfree(base, off)


@pytest.mark.timeout(60)
def test_allocator_churn_in_three_processes_never_overlaps_and_returns_inuse(arena_factory):
    a = arena_factory(size=64 * MiB, nprocs=3)
    ready = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 0)
    start = _u64(a, INUSE)
    pids = [_fork(_churn, a, who, 1000 + who, 30_000, ready, 3) for who in range(3)]
    ends = _reap(pids)
    assert _all_ok(ends), ends
    assert _u64(a, INUSE) == start
    # the free lists survived the churn: a fresh round hands out distinct,
    # non-overlapping blocks
    rng = random.Random(5)
    blocks = []
    for _ in range(2000):
        size = rng.randint(16, 5000)
        off = lib.pg_malloc(a.base, size)
        assert off > 0
        blocks.append((off, size))
    blocks.sort()
    for (o1, s1), (o2, _) in zip(blocks, blocks[1:], strict=False):
        assert o1 + s1 <= o2, f"blocks {o1:#x}+{s1} and {o2:#x} overlap"
    for off, _ in blocks:
        lib.pg_mfree(a.base, off)
    assert _u64(a, INUSE) == start


@pytest.mark.timeout(10)
def test_mfree_of_a_freed_block_is_refused(arena_factory):
    a = arena_factory()
    start = _u64(a, INUSE)
    off = lib.pg_malloc(a.base, 100)
    lib.pg_mfree(a.base, off)
    lib.pg_mfree(a.base, off)  # double free: refused, not pushed twice
    assert _u64(a, INUSE) == start
    x, y = lib.pg_malloc(a.base, 100), lib.pg_malloc(a.base, 100)
    assert x != y


def _exhaust(a: Arena) -> None:
    """In a child, so that a SIGBUS would fail the test, not kill pytest."""
    start = _u64(a, INUSE)

    def fill() -> dict[int, list[int]]:
        got: dict[int, list[int]] = {}
        for size in (4000, 16):
            blocks = got.setdefault(size, [])
            while (off := lib.pg_malloc(a.base, size)) != NOMEM:
                assert off > 0, off
                a.mv[off : off + size] = b"\xa5" * size  # every block is really usable
                blocks.append(off)
        return got

    first = fill()
    assert len(first[4000]) > 100, first  # 8 MiB holds > 1000 such blocks
    assert lib.pg_malloc(a.base, 4000) == NOMEM  # and stays exhausted
    for blocks in first.values():
        for off in blocks:
            lib.pg_mfree(a.base, off)
    assert _u64(a, INUSE) == start
    again = fill()
    assert {k: len(v) for k, v in again.items()} == {k: len(v) for k, v in first.items()}
    for blocks in again.values():
        for off in blocks:
            lib.pg_mfree(a.base, off)
    assert _u64(a, INUSE) == start


@pytest.mark.timeout(30)
def test_exhausted_arena_returns_nomem_and_recovers_after_free(arena_factory):
    a = arena_factory(size=8 * MiB, nprocs=1)
    start = _u64(a, INUSE)
    ends = _reap([_fork(_exhaust, a)])
    assert _all_ok(ends), ends
    assert _u64(a, INUSE) == start
    assert lib.pg_malloc(a.base, 4000) > 0


@pytest.mark.timeout(10)
@pytest.mark.parametrize("size", [1 << 40, 8 * MiB, 8 * MiB - 4096])
def test_malloc_larger_than_the_arena_returns_nomem(arena_factory, size):
    a = arena_factory(size=8 * MiB, nprocs=1)
    start = _u64(a, INUSE)
    assert lib.pg_malloc(a.base, size) == NOMEM
    assert _u64(a, INUSE) == start


@pytest.mark.timeout(10)
@pytest.mark.parametrize("size", [(1 << 64) - 1, (1 << 64) - 8, (1 << 64) - 16])
def test_malloc_of_a_size_that_overflows_with_the_header_returns_nomem(arena_factory, size):
    # size + the 16-byte block header must not wrap around to a tiny class
    a = arena_factory(size=8 * MiB, nprocs=1)
    start = _u64(a, INUSE)
    assert lib.pg_malloc(a.base, size) == NOMEM
    assert _u64(a, INUSE) == start


# ---------------------------------------------------------------- layout


def _fields(struct: str) -> dict[str, tuple[int, int]]:
    return {f: v for f, v in LAYOUT[struct].items() if f != "__size__"}


@pytest.mark.timeout(10)
def test_every_struct_exports_its_size():
    assert LAYOUT, "the C layout table is empty"
    for struct, fields in LAYOUT.items():
        assert "__size__" in fields, struct
        assert fields["__size__"][1] > 0, struct
        assert shim.sizeof(struct) == fields["__size__"][1]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("struct", sorted(LAYOUT))
def test_fields_lie_within_the_struct_and_do_not_overlap(struct):
    size = LAYOUT[struct]["__size__"][1]
    prev_end, prev = 0, None
    for name, (off, fsize) in sorted(_fields(struct).items(), key=lambda kv: kv[1][0]):
        assert fsize > 0, f"{struct}.{name} has size 0"
        assert off + fsize <= size, f"{struct}.{name} [{off}, {off + fsize}) outside size {size}"
        assert off >= prev_end, f"{struct}.{name} at {off} overlaps {prev} ending at {prev_end}"
        prev_end, prev = off + fsize, name


@pytest.mark.timeout(10)
def test_layout_table_lists_every_field_declared_in_layout_h():
    text = (REPO / "shm" / "layout.h").read_text()
    declared: dict[str, set[str]] = {}
    for s, f in re.findall(r"X\((pg_\w+),\s*\w+,\s*(\w+),", text):
        declared.setdefault(s, set()).add(f)
    assert declared, "no X(struct, type, field, ...) entries parsed from layout.h"
    exported = {s: set(_fields(s)) for s in LAYOUT}
    assert exported == declared


@pytest.mark.timeout(10)
def test_arena_header_records_abi_and_layout_hash(arena_factory):
    a = arena_factory()
    assert a.hdr_u32("layout_hash") == LAYOUT_HASH
    assert a.hdr_u32("abi") == shim.CONST["PG_ABI_VERSION"]
    assert a.hdr_u32("nprocs") == 4
    assert a.hdr_u64("nonce") == 0x5EED
    assert a.hdr_u64("size") == 32 * MiB


@pytest.mark.timeout(10)
@pytest.mark.parametrize("field", ["abi", "layout_hash"])
def test_attaching_a_mismatched_arena_names_both_builds(arena_factory, field):
    a = arena_factory()
    idx = offset("pg_arena", field) // 4
    theirs = a.u32[idx] ^ 0x5A5A
    a.u32[idx] = theirs
    abi = shim.CONST["PG_ABI_VERSION"]
    their_abi = theirs if field == "abi" else abi
    their_hash = theirs if field == "layout_hash" else LAYOUT_HASH
    fd = os.dup(a.fd)  # attach closes it when it refuses
    with pytest.raises(LayoutMismatch) as ei:
        Arena.attach(fd)
    assert re.match(
        rf"^pg_arena_attach: the arena was built with ABI {their_abi} layout {their_hash:#010x}, "
        rf"this shim has ABI {abi} layout {LAYOUT_HASH:#010x}",
        str(ei.value),
    ), str(ei.value)
    with pytest.raises(OSError):
        os.fstat(fd)  # the refused mapping released its fd


# ---------------------------------------------------------------- constants


@pytest.mark.timeout(10)
def test_gstatus_keeps_gos_numbering():
    assert {m.name: int(m) for m in Gstatus} == {
        "IDLE": 0,
        "RUNNABLE": 1,
        "RUNNING": 2,
        "SYSCALL": 3,
        "WAITING": 4,
        "DEAD": 6,
    }


@pytest.mark.timeout(10)
def test_status_codes_are_distinct_and_nonpositive():
    codes = {n: v for n, v in shim.CONST.items() if n.startswith("PG_") and n not in (
        "PG_MAXP", "PG_RUNQ", "PG_NCLASS", "PG_SITE", "PG_INLINE", "PG_ABI_VERSION", "PG_MAP_NSHARD")}
    assert codes["PG_OK"] == 0 and NOMEM == codes["PG_NOMEM"] < 0
    assert all(v <= 0 for v in codes.values()), codes
    assert len(set(codes.values())) == len(codes), codes


@pytest.mark.timeout(10)
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_layout_h_static_asserts_hold():
    # layout.h is self-contained: it compiles alone and its _Static_asserts pass
    r = subprocess.run(
        ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-x", "c", str(REPO / "shm" / "layout.h")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
