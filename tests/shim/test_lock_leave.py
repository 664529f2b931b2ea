"""ctypes-level tests of the lock slow path's teardown rules (issue 15,
shm/watch.c): no locker ever waits on an owner that will not come back --
a P that left the run (pg_p_leave), an owner index that is no P of the run
(the word is no lock any more), while a word held by a live P, or by a
process that is no P, is still waited for; and the sysmon's bounded join.
"""

from __future__ import annotations

import threading
import time

import pytest

from parago._shim import CONST, blocking, lib, offset
from parago._shim.arena import P_BASE, P_SIZE, Arena

from .test_shim import arena_factory  # noqa: F401 (fixture)

# ruff: noqa: F811 -- arena_factory is a fixture imported from test_shim

pytestmark = pytest.mark.shim

OK = CONST["PG_OK"]
LOST = CONST["PG_LOST"]
MAXP = CONST["PG_MAXP"]


def _gone(a: Arena, p: int) -> int:
    return a.u32[(P_BASE + p * P_SIZE + offset("pg_p", "gone")) // 4]


def _lock_in_thread(a: Arena, w: int) -> tuple[threading.Thread, list]:
    res: list = []
    t = threading.Thread(target=lambda: res.append(blocking.pg_lock_at(a.base, w)), daemon=True)
    t.start()
    return t, res


@pytest.mark.timeout(10)
def test_a_lock_left_held_by_a_p_that_left_the_run_is_lost_not_waited_on(arena_factory):
    a = arena_factory(nprocs=4)
    w = lib.pg_malloc(a.base, 8)
    a.u32[w // 4] = lib.pg_lock_tag(2)  # P2 holds it ...
    t, res = _lock_in_thread(a, w)
    time.sleep(0.05)
    assert t.is_alive() and not res, "a lock held by a live P was not waited for"
    lib.pg_p_leave(a.base, 2)  # ... and leaves the run (its process may still be there)
    t.join(2)
    assert res == [LOST]
    assert lib.pg_lock_owner(a.u32[w // 4]) == 2  # never taken: the object untouched
    assert _gone(a, 2) == 2  # PG_GONE_LEFT


@pytest.mark.timeout(10)
def test_pg_p_leave_keeps_an_earlier_death_mark(arena_factory):
    a = arena_factory(nprocs=4)
    off = P_BASE + 1 * P_SIZE + offset("pg_p", "gone")
    a.u32[off // 4] = 1  # the death watch saw it end
    lib.pg_p_leave(a.base, 1)
    assert a.u32[off // 4] == 1
    lib.pg_p_leave(a.base, -1)  # out of range: nothing
    lib.pg_p_leave(a.base, MAXP)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("owner", [4, 7, MAXP - 1, MAXP + 5], ids=["nprocs", "beyond", "maxp-1", "garbage"])
def test_a_word_naming_no_p_of_the_run_is_lost_at_once(arena_factory, owner):
    """An index >= nprocs (not "no P"): the word is no lock any more (an
    object freed under its user) -- waiting on it would be for ever."""
    a = arena_factory(nprocs=4)
    w = lib.pg_malloc(a.base, 8)
    a.u32[w // 4] = ((owner + 1) << 1) & 0xFFFFFFFF
    t0 = time.perf_counter()
    assert blocking.pg_lock_at(a.base, w) == LOST
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.timeout(10)
def test_a_word_held_by_a_process_that_is_no_p_is_still_waited_for(arena_factory):
    a = arena_factory(nprocs=2)
    w = lib.pg_malloc(a.base, 8)
    a.u32[w // 4] = lib.pg_lock_tag(-1)  # a helper process / tool: PG_LOCK_NOP
    t, res = _lock_in_thread(a, w)
    time.sleep(0.05)
    assert t.is_alive() and not res
    lib.pg_unlock_at(a.base, w)
    t.join(2)
    assert res == [OK]
    lib.pg_unlock_at(a.base, w)


@pytest.mark.timeout(10)
def test_the_sysmon_join_is_bounded_and_ok_when_none_runs():
    t0 = time.perf_counter()
    assert blocking.pg_sysmon_join(50_000_000) == OK  # no sysmon in this process
    assert time.perf_counter() - t0 < 0.5
