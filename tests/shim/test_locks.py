"""ctypes-level tests of the owner-tagged arena lock and the death watch
(shm/lock.h, shm/lock.c, shm/watch.c): a lock word names the P holding it; a
waiter on a word whose P is gone gets PG_LOST without touching the
object; every entry point that locks passes PG_LOST up; P0's pidfd watch
marks a dead P gone, records FAIL_LOST and wakes every P; a P's death-pipe
watch exits it when P0 is gone.

    test process (P0's role)                   forked children (a P's role)
    ------------------------                   ----------------------------
    Arena.create, pg_set_self / word tags      pg_set_self(p), lock and unlock
    p[i].gone = 1 by hand, or pg_watch_start   SIGKILLed / pg_deathpipe_watch
    pidfds -> p[i].gone, FAIL_LOST, eventfds   EOF on the death pipe -> _exit(3)
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import struct
import threading
import time

import pytest

from parago._shim import CONST, LAYOUT, SyncKind, blocking, lib, offset, sizeof
from parago._shim.arena import P_BASE, P_SIZE, Arena

from .test_shim import _all_ok, _fork, _new_g, _reap, arena_factory  # noqa: F401 (fixture)

# ruff: noqa: F811 -- arena_factory is a fixture imported from test_shim

pytestmark = pytest.mark.shim

OK = CONST["PG_OK"]
LOST = CONST["PG_LOST"]
NOMEM = CONST["PG_NOMEM"]
MAXP = CONST["PG_MAXP"]
FAIL_LOST = CONST["FAIL_LOST"]
LOCK = offset("pg_objhdr", "lock")  # the lock word of every object (chan, sync)
WAITERS = 1


def _pf(p: int, field: str) -> int:
    return P_BASE + p * P_SIZE + offset("pg_p", field)


def _hdr(field: str) -> int:
    return offset("pg_arena", field)


def _u32(a: Arena, off: int) -> int:
    return a.u32[off // 4]


def _set_u32(a: Arena, off: int, v: int) -> None:
    a.u32[off // 4] = v


def _mark_gone(a: Arena, p: int) -> None:
    _set_u32(a, _pf(p, "gone"), 1)


@pytest.fixture
def as_no_p():
    """Locks taken by this process are tagged "no P" again afterwards."""
    yield
    lib.pg_set_self(-1)


# ---------------------------------------------------------------- the word


@pytest.mark.timeout(10)
def test_lock_word_names_its_owner_p_and_unlock_frees_it(arena_factory, as_no_p):
    a = arena_factory()
    w = lib.pg_malloc(a.base, 8)
    for p in (0, 5, MAXP - 1):
        lib.pg_set_self(p)
        assert lib.pg_lock_at(a.base, w) == OK
        word = _u32(a, w)
        assert word == lib.pg_lock_tag(p) == (p + 1) << 1  # no waiters bit: nobody waited
        assert lib.pg_lock_owner(word) == p
        lib.pg_unlock_at(a.base, w)
        assert _u32(a, w) == 0
    assert lib.pg_lock_owner(0) == -1
    lib.pg_set_self(-1)
    assert lib.pg_lock_at(a.base, w) == OK
    assert lib.pg_lock_owner(_u32(a, w)) >= MAXP  # a process that is no P: never a P index
    lib.pg_unlock_at(a.base, w)


@pytest.mark.timeout(10)
def test_attaching_an_arena_tags_locks_as_no_p_until_pg_set_self(arena_factory, as_no_p):
    lib.pg_set_self(2)
    a = arena_factory()  # create + attach
    ch = lib.pg_chan_new(a.base, 4, None, 0)
    assert lib.pg_lock_at(a.base, ch + LOCK) == OK
    assert lib.pg_lock_owner(_u32(a, ch + LOCK)) >= MAXP
    lib.pg_unlock_at(a.base, ch + LOCK)


@pytest.mark.timeout(20)
def test_uncontended_operations_stay_on_the_one_cas_fast_path(arena_factory, as_no_p):
    a = arena_factory()
    lib.pg_set_self(0)
    ch = lib.pg_chan_new(a.base, 8, None, 0)
    mu = lib.pg_sync_new(a.base, SyncKind.MUTEX, 0)
    wg = lib.pg_sync_new(a.base, SyncKind.WAITGROUP, 0)
    obuf = ctypes.create_string_buffer(64)
    out = (ctypes.c_uint64 * 8)()
    before = lib.pg_lock_nslow()
    for i in range(2000):
        assert lib.pg_chan_send(a.base, ch, 0, b"v%d" % i, 2 + len(str(i)) - 1, 0) == OK
        assert lib.pg_chan_recv(a.base, ch, 0, 0, obuf, 64, out) >= 0
        assert lib.pg_wg_add(a.base, wg, 1) == 1
        assert lib.pg_wg_add(a.base, wg, -1) == 0
        assert lib.pg_mutex_lock(a.base, mu, 0, 1, 0) == OK
        assert lib.pg_mutex_unlock(a.base, mu) == OK
    assert lib.pg_lock_nslow() == before, "an uncontended lock left the one-CAS fast path"
    assert _u32(a, ch + LOCK) == 0 and _u32(a, wg + LOCK) == 0


# ---------------------------------------------------------------- a gone owner


@pytest.mark.timeout(10)
def test_lock_held_by_a_gone_p_returns_lost_within_20ms_and_keeps_the_word(arena_factory):
    a = arena_factory()
    w = lib.pg_malloc(a.base, 8)
    _set_u32(a, w, lib.pg_lock_tag(1))
    _mark_gone(a, 1)
    t0 = time.perf_counter()
    r = blocking.pg_lock_at(a.base, w)
    dt = time.perf_counter() - t0
    assert r == LOST
    assert dt < 0.020, f"PG_LOST took {dt * 1e3:.1f} ms"
    assert lib.pg_lock_owner(_u32(a, w)) == 1  # still the dead P's: never taken


@pytest.mark.timeout(10)
def test_a_claim_whose_claimer_p_died_before_its_ready_can_be_cancelled(arena_factory):
    """A waker claims a parked G (park WAITING -> CLAIMED, tagged with its
    P), then readies it.  If its P dies in between, nobody ever readies the
    G: once that P is marked gone, cancelling the park succeeds (a live
    claimer's ready is in flight: cancelling must wait for it)."""
    a = arena_factory()
    park = offset("pg_g", "park")
    claimed = CONST["PARK_CLAIMED"]
    shift = CONST["PARK_CLAIMER_SHIFT"]
    for claimer, who in ((1, 2), (None, 0)):
        g = _new_g(a)
        lib.pg_park_plain(a.base, g, 0, 1)
        assert _u32(a, g + park) == CONST["PARK_WAITING"]
        _set_u32(a, g + park, claimed | who << shift)  # a waker's claim, its ready not yet done
        assert lib.pg_park_cancel(a.base, g) == 0
        assert _u32(a, g + park) == claimed | who << shift
        _mark_gone(a, 1)
        if claimer is None:  # a claim by no P is never orphaned
            assert lib.pg_park_cancel(a.base, g) == 0
        else:
            assert lib.pg_park_cancel(a.base, g) == 1
            assert _u32(a, g + park) == CONST["PARK_NONE"]
        _set_u32(a, _pf(1, "gone"), 0)


@pytest.mark.timeout(10)
def test_sleeping_waiter_returns_lost_soon_after_its_owner_is_marked_gone(arena_factory):
    a = arena_factory()
    w = lib.pg_malloc(a.base, 8)
    _set_u32(a, w, lib.pg_lock_tag(2))
    got: list[tuple[int, float]] = []

    def waiter() -> None:
        r = blocking.pg_lock_at(a.base, w)  # releases the GIL while it waits
        got.append((r, time.perf_counter()))

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    assert not got, "the waiter took a lock that a live P holds"
    assert _u32(a, w) & WAITERS  # it announced itself before sleeping
    gone_at = time.perf_counter()
    _mark_gone(a, 2)
    t.join(2)
    assert got and got[0][0] == LOST
    assert got[0][1] - gone_at < 0.020, f"{(got[0][1] - gone_at) * 1e3:.1f} ms after the P was marked gone"


@pytest.mark.timeout(10)
def test_lock_held_by_a_process_that_is_no_p_never_reads_as_gone(arena_factory):
    a = arena_factory()
    w = lib.pg_malloc(a.base, 8)
    _set_u32(a, w, lib.pg_lock_tag(-1))
    for p in range(MAXP):
        _mark_gone(a, p)
    threading.Timer(0.03, lib.pg_unlock_at, (a.base, w)).start()
    t0 = time.perf_counter()
    assert blocking.pg_lock_at(a.base, w) == OK
    assert time.perf_counter() - t0 >= 0.02  # it waited for the unlock
    lib.pg_unlock_at(a.base, w)


# ---------------------------------------------------------------- live owners


def _hold_then_unlock(base: int, w: int, flag: int, hold: float) -> None:
    lib.pg_set_self(1)
    assert lib.pg_lock_at(base, w) == OK
    lib.pg_atomic_store(base, flag, 1)
    time.sleep(hold)
    lib.pg_unlock_at(base, w)


@pytest.mark.timeout(20)
def test_waiter_gets_the_lock_when_its_live_owner_unlocks(arena_factory):
    a = arena_factory()
    w = lib.pg_malloc(a.base, 8)
    flag = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 0)
    pid = _fork(_hold_then_unlock, a.base, w, flag, 0.08)
    while not lib.pg_atomic_load(a.base, flag):
        time.sleep(0.001)
    assert lib.pg_lock_owner(_u32(a, w)) == 1
    t0 = time.perf_counter()
    assert blocking.pg_lock_at(a.base, w) == OK
    assert time.perf_counter() - t0 > 0.04
    assert lib.pg_lock_owner(_u32(a, w)) >= MAXP  # ours now
    lib.pg_unlock_at(a.base, w)
    assert _all_ok(_reap([pid]))


def _count_under_lock(base: int, w: int, counter: int, ready: int, p: int, nprocs: int, n: int) -> None:
    lib.pg_set_self(p)
    lib.pg_atomic_add(base, ready, 1)
    while lib.pg_atomic_load(base, ready) < nprocs:
        os.sched_yield()
    cell = ctypes.c_uint64.from_address(base + counter)  # a plain, non-atomic word
    for _ in range(n):
        assert lib.pg_lock_at(base, w) == OK
        cell.value += 1
        lib.pg_unlock_at(base, w)


@pytest.mark.timeout(60)
def test_contended_lock_excludes_four_processes_and_counts_every_increment(arena_factory):
    a = arena_factory()
    w = lib.pg_malloc(a.base, 8)
    counter = lib.pg_malloc(a.base, 8)
    a.q[counter // 8] = 0
    ready = lib.pg_sync_new(a.base, SyncKind.ATOMIC, 0)
    nprocs, n = 4, 20_000
    pids = [_fork(_count_under_lock, a.base, w, counter, ready, p, nprocs, n) for p in range(nprocs)]
    ends = _reap(pids)
    assert _all_ok(ends), ends
    assert a.q[counter // 8] == nprocs * n
    assert _u32(a, w) == 0


# ---------------------------------------------------------------- every entry point passes PG_LOST up

_CASE = struct.Struct("<QIIQ")  # pg_case_t: ch, dir (1 recv, 2 send), len, data offset in the blob


def _select(a: Arena, cases: list[tuple[int, int]], block: int = 0) -> int:
    packed = b"".join(_CASE.pack(ch, d, 1 if d == 2 else 0, 0) for ch, d in cases)
    obuf = ctypes.create_string_buffer(64)
    out = (ctypes.c_uint64 * 8)()
    return lib.pg_select(a.base, 0, packed, len(cases), b"x", block, 7, obuf, 64, out)


def _objects(a: Arena) -> dict[str, int]:
    ch = lib.pg_chan_new(a.base, 4, None, 0)
    assert lib.pg_chan_send(a.base, ch, 0, b"v", 1, 0) == OK  # one buffered value
    objs = {"chan": ch}
    for kind, init in (("WAITGROUP", 0), ("MUTEX", 0), ("RWMUTEX", 0), ("SEMA", 4), ("COND", 0), ("ONCE", 0)):
        objs[kind] = lib.pg_sync_new(a.base, getattr(SyncKind, kind), init)
    lib.pg_wg_add(a.base, objs["WAITGROUP"], 1)
    assert lib.pg_mutex_lock(a.base, objs["MUTEX"], 0, 1, 0) == OK  # held: lock goes to the object lock
    return objs


def _call(a: Arena, objs: dict[str, int], op: str) -> int:
    b = a.base
    obuf = ctypes.create_string_buffer(64)
    out = (ctypes.c_uint64 * 8)()
    ch = objs["chan"]
    calls = {
        "chan_send": lambda: lib.pg_chan_send(b, ch, 0, b"w", 1, 0),
        "chan_send_big": lambda: lib.pg_chan_send(b, ch, 0, b"w" * 100, 100, 0),
        "chan_recv": lambda: lib.pg_chan_recv(b, ch, 0, 0, obuf, 64, out),
        "chan_close": lambda: lib.pg_chan_close(b, ch),
        "chan_send_many": lambda: lib.pg_chan_send_many(
            b, ch, 0, ctypes.addressof(obuf), ctypes.addressof((ctypes.c_uint32 * 1)(1)), 1, 0, out
        ),
        "chan_recv_many": lambda: lib.pg_chan_recv_many(b, ch, 0, 4, 0, obuf, 64, out),
        "select_recv": lambda: _select(a, [(ch, 1)]),
        "wg_add": lambda: lib.pg_wg_add(b, objs["WAITGROUP"], 1),
        "wg_wait": lambda: lib.pg_wg_wait(b, objs["WAITGROUP"], 0),
        "mutex_lock": lambda: lib.pg_mutex_lock(b, objs["MUTEX"], 0, 1, 0),
        "rw_rlock": lambda: lib.pg_rw_rlock(b, objs["RWMUTEX"], 0, 1),
        "rw_runlock": lambda: lib.pg_rw_runlock(b, objs["RWMUTEX"]),
        "rw_lock": lambda: lib.pg_rw_lock(b, objs["RWMUTEX"], 0, 1),
        "rw_unlock": lambda: lib.pg_rw_unlock(b, objs["RWMUTEX"]),
        "rw_writer_gone": lambda: lib.pg_rw_writer_gone(b, objs["RWMUTEX"]),
        "sema_acquire": lambda: lib.pg_sema_acquire(b, objs["SEMA"], 0, 1, 1),
        "sema_release": lambda: lib.pg_sema_release(b, objs["SEMA"], 1),
        "sema_kick": lambda: lib.pg_sema_kick(b, objs["SEMA"]),
        "cond_signal": lambda: lib.pg_cond_signal(b, objs["COND"], 1),
        "once_begin": lambda: lib.pg_once_begin(b, objs["ONCE"], 0, obuf, 64, out),
        "once_done": lambda: lib.pg_once_done(b, objs["ONCE"], b"result", 6),
    }
    return calls[op]()


_TARGET = {"chan": "chan", "select": "chan", "wg": "WAITGROUP", "mutex": "MUTEX", "rw": "RWMUTEX"}
_TARGET.update({"sema": "SEMA", "cond": "COND", "once": "ONCE"})


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "op",
    [
        "chan_send", "chan_send_big", "chan_recv", "chan_close", "chan_send_many", "chan_recv_many",
        "select_recv", "wg_add", "wg_wait", "mutex_lock", "rw_rlock", "rw_runlock", "rw_lock",
        "rw_unlock", "rw_writer_gone", "sema_acquire", "sema_release", "sema_kick", "cond_signal",
        "once_begin", "once_done",
    ],
)
def test_entry_point_on_an_object_locked_by_a_gone_p_returns_lost_and_leaves_it_untouched(arena_factory, op):
    a = arena_factory()
    objs = _objects(a)
    obj = objs[_TARGET[op.split("_")[0]]]
    size = sizeof("pg_chan") if obj == objs["chan"] else sizeof("pg_sync")
    _set_u32(a, obj + LOCK, lib.pg_lock_tag(1))
    _mark_gone(a, 1)
    before = a.read(obj, size)
    inuse = a.hdr_u64("inuse")
    t0 = time.perf_counter()
    assert _call(a, objs, op) == LOST
    assert time.perf_counter() - t0 < 0.020
    assert a.read(obj, size) == before, "the object was touched"
    assert a.hdr_u64("inuse") == inuse, "a payload block was left allocated"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("lost_first", [True, False], ids=["lost_locked_first", "lost_locked_last"])
def test_select_unlocks_the_channels_it_locked_before_returning_lost(arena_factory, lost_first):
    a = arena_factory()
    c1 = lib.pg_chan_new(a.base, 4, None, 0)
    c2 = lib.pg_chan_new(a.base, 4, None, 0)
    lost, live = (min(c1, c2), max(c1, c2)) if lost_first else (max(c1, c2), min(c1, c2))  # lock order: by offset
    _set_u32(a, lost + LOCK, lib.pg_lock_tag(3))
    _mark_gone(a, 3)
    before = a.read(live, sizeof("pg_chan"))
    assert _select(a, [(c1, 2), (c2, 1)], block=1) == LOST
    assert _u32(a, live + LOCK) == 0, "select returned with a live channel still locked"
    assert a.read(live, sizeof("pg_chan")) == before
    assert lib.pg_chan_send(a.base, live, 0, b"ok", 2, 0) == OK  # and it is usable


@pytest.mark.timeout(10)
def test_alloc_that_cannot_take_a_dead_ps_commit_lock_returns_nomem(arena_factory):
    a = arena_factory()
    assert lib.pg_malloc(a.base, 64) > 0  # commits the first chunk
    _set_u32(a, _hdr("commit_lock"), lib.pg_lock_tag(1))
    _mark_gone(a, 1)
    t0 = time.perf_counter()
    assert lib.pg_malloc(a.base, 8 << 20) == NOMEM  # needs a commit beyond what is there
    assert time.perf_counter() - t0 < 0.020
    assert lib.pg_malloc(a.base, 64) > 0  # within the committed memory: no lock needed


# ---------------------------------------------------------------- P0's death watch


def _sleeper() -> None:
    time.sleep(30)


class _Watch:
    """pg_watch_start over forked sleeper children as P1..Pn-1."""

    def __init__(self, a: Arena, nprocs: int, kinds: str = "pidfd") -> None:
        self.a = a
        self.evfds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for _ in range(nprocs)]
        for p, fd in enumerate(self.evfds):
            lib.pg_set_wakefd(p, fd)
        self.pids = [_fork(_sleeper) for _ in range(nprocs - 1)]
        self.fds = [-1]
        self.pipes: list[int] = []
        for pid in self.pids:
            self.fds.append(os.pidfd_open(pid))
        n = nprocs
        fds = (ctypes.c_int * n)(*self.fds)
        kind = (ctypes.c_int * n)(*([0] * n))
        assert lib.pg_watch_start(a.base, fds, kind, n) == OK
        self.started = True

    def kill(self, p: int) -> float:
        os.kill(self.pids[p - 1], signal.SIGKILL)
        return time.perf_counter()

    def wait_gone(self, p: int, timeout: float = 1.0) -> float:
        deadline = time.perf_counter() + timeout
        while not _u32(self.a, _pf(p, "gone")):
            assert time.perf_counter() < deadline, f"P{p} not marked gone within {timeout} s"
            time.sleep(0.0005)
        return time.perf_counter()

    def close(self) -> None:
        blocking.pg_watch_stop()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap(self.pids)
        for fd in self.fds[1:] + self.evfds:
            os.close(fd)
        for p in range(len(self.evfds)):
            lib.pg_set_wakefd(p, -1)


@pytest.fixture
def watch(arena_factory):
    made: list[_Watch] = []

    def make(nprocs: int = 3) -> _Watch:
        w = _Watch(arena_factory(nprocs=nprocs), nprocs)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


@pytest.mark.timeout(20)
def test_watch_marks_a_killed_p_gone_records_fail_lost_and_wakes_every_live_p(watch):
    w = watch(3)
    a = w.a
    killed = w.kill(1)
    seen = w.wait_gone(1)
    assert seen - killed < 0.2, f"P1 marked gone {(seen - killed) * 1e3:.1f} ms after SIGKILL"
    st = ctypes.c_int32(_u32(a, _pf(1, "exit_status"))).value
    assert os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL  # a child of ours: waitid(WNOWAIT)
    assert a.hdr_u32("panicking") == 2
    assert a.hdr_u32("fail_kind") == FAIL_LOST
    assert ctypes.c_int32(a.hdr_u32("lost_p")).value == 1
    assert a.hdr_u32("nlost") == 1
    deadline = time.perf_counter() + 1
    while not (_readable(w.evfds[0]) and _readable(w.evfds[2])) and time.perf_counter() < deadline:
        time.sleep(0.001)
    assert _readable(w.evfds[0]) and _readable(w.evfds[2]), "a live P was not woken"
    assert not _u32(a, _pf(2, "gone"))
    # a second death: marked gone too, but the first failure stays the recorded one
    w.kill(2)
    w.wait_gone(2)
    assert a.hdr_u32("nlost") == 2
    assert ctypes.c_int32(a.hdr_u32("lost_p")).value == 1


@pytest.mark.timeout(20)
def test_watch_during_teardown_marks_gone_but_records_no_failure(watch):
    w = watch(2)
    _set_u32(w.a, _hdr("shutdown"), 1)
    w.kill(1)
    w.wait_gone(1)
    assert w.a.hdr_u32("panicking") == 0
    assert w.a.hdr_u32("nlost") == 1


@pytest.mark.timeout(20)
def test_watch_turns_a_lock_held_by_the_killed_p_into_lost(watch):
    w = watch(2)
    word = lib.pg_malloc(w.a.base, 8)
    _set_u32(w.a, word, lib.pg_lock_tag(1))
    got: list[tuple[int, float]] = []
    th = threading.Thread(target=lambda: got.append((blocking.pg_lock_at(w.a.base, word), time.perf_counter())))
    th.start()
    time.sleep(0.02)
    killed = w.kill(1)
    th.join(2)
    assert got and got[0][0] == LOST
    assert got[0][1] - killed < 0.2, f"PG_LOST {(got[0][1] - killed) * 1e3:.1f} ms after SIGKILL"


@pytest.mark.timeout(10)
def test_watch_stop_joins_at_once_and_a_second_start_is_refused_while_running(watch):
    w = watch(2)
    fds = (ctypes.c_int * 2)(-1, -1)
    assert lib.pg_watch_start(w.a.base, fds, fds, 2) == CONST["PG_INVAL"]
    t0 = time.perf_counter()
    blocking.pg_watch_stop()
    assert time.perf_counter() - t0 < 0.1
    assert not _u32(w.a, _pf(1, "gone"))


@pytest.mark.timeout(20)
def test_watch_of_a_sentinel_fd_marks_the_p_gone_with_unknown_status(arena_factory):
    a = arena_factory(nprocs=2)
    r, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child holds the write end until it dies
        os.close(r)
        time.sleep(30)
        os._exit(0)
    os.close(wfd)
    try:
        fds = (ctypes.c_int * 2)(-1, r)
        kinds = (ctypes.c_int * 2)(0, 1)
        assert lib.pg_watch_start(a.base, fds, kinds, 2) == OK
        os.kill(pid, signal.SIGKILL)
        deadline = time.perf_counter() + 1
        while not _u32(a, _pf(1, "gone")):
            assert time.perf_counter() < deadline
            time.sleep(0.001)
        assert ctypes.c_int32(_u32(a, _pf(1, "exit_status"))).value == -1
    finally:
        blocking.pg_watch_stop()
        _reap([pid])
        os.close(r)


# ---------------------------------------------------------------- a P's death-pipe watch


def _watch_parent(base: int, r: int, w: int) -> None:
    os.close(w)
    assert lib.pg_deathpipe_watch(base, r) == OK
    time.sleep(30)  # only the watch ends this process


@pytest.mark.timeout(20)
def test_deathpipe_eof_marks_p0_gone_and_exits_the_p_with_status_3(arena_factory):
    a = arena_factory(nprocs=2)
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = _fork(_watch_parent, a.base, r, w)
    os.close(r)
    time.sleep(0.1)
    assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the P exited while P0 was alive"
    t0 = time.perf_counter()
    os.close(w)  # what P0's death does
    ends = _reap([pid], timeout=2)
    dt = time.perf_counter() - t0
    assert ends[pid] == "exit 3", ends
    assert dt < 1.0, f"the P took {dt:.2f} s to exit"
    assert dt >= 0.04  # the grace: a hub in pg_lock gets PG_LOST first
    assert _u32(a, _pf(0, "gone")) == 1


def test_layout_names_the_death_watch_fields():
    for f in ("gone", "exit_status"):
        assert f in LAYOUT["pg_p"]
    for f in ("fail_kind", "lost_p", "nlost"):
        assert f in LAYOUT["pg_arena"]
