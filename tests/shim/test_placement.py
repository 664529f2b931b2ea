"""Placement and the steal rule (shm/sched.c "Placement"), at the shim level.

A started goroutine never moves, so pg_go places a new one on the least
loaded P (queued + live started), the spawner on ties, through the target's
inbox; a thief takes unstarted work only from a P stuck in a goroutine.
"""

from __future__ import annotations

import ctypes
import time

import pytest

from parago._shim import CONST, lib, views
from parago._shim.arena import Arena

pytestmark = pytest.mark.shim
MiB = 1 << 20
GF_HERE = CONST["GF_HERE"]
GF_LOCAL = CONST["GF_LOCAL"]


@pytest.fixture
def arena():
    a = Arena.create(32 * MiB, 3, 0x9)
    lib.pg_set_steal_age(1_000_000)
    yield a
    lib.pg_set_steal_age(1_000_000)
    a.close()


def _go(a: Arena, p: int, flags: int = 0) -> int:
    out = (ctypes.c_uint64 * 3)()
    g = lib.pg_go(a.base, p, b"x", 1, flags, 0, 0, 0, None, 0, out)
    assert g > 0
    return int(out[0])


def _find(a: Arena, p: int) -> int:
    return lib.pg_findrunnable(a.base, p, 0, None, 0, None)


@pytest.mark.timeout(10)
def test_spawn_goes_to_the_least_loaded_p_and_stays_local_on_ties(arena):
    a = arena
    # everything idle and empty: a tie, so the spawner's own runnext
    assert _go(a, 0) == 0
    # P0 now has one queued: the next goes to an empty P through its inbox
    second = _go(a, 0)
    assert second in (1, 2)
    assert views.p_get(a, second, "inbox_n") == 1
    assert views.p_get(a, second, "nplaced") == 1
    third = _go(a, 0)
    assert {second, third} == {1, 2}  # one each: every P has one now


@pytest.mark.timeout(10)
def test_live_started_goroutines_count_as_load(arena):
    a = arena
    views.p_set(a, 1, "nlive", 5)
    views.p_set(a, 2, "nlive", 5)
    # P0 holds nothing: local, every time, until it is as loaded as the others
    assert [_go(a, 0) for _ in range(5)] == [0] * 5
    assert _go(a, 0) == 0  # 5 vs 5: a tie stays local
    assert _go(a, 0) in (1, 2)


@pytest.mark.timeout(10)
def test_go_local_and_go_here_skip_placement(arena):
    a = arena
    views.p_set(a, 0, "nlive", 50)
    assert _go(a, 0, GF_LOCAL) == 0
    assert _go(a, 0, GF_HERE) == 0
    assert views.p_get(a, 1, "inbox_n") == 0 and views.p_get(a, 2, "inbox_n") == 0


@pytest.mark.timeout(10)
def test_the_owner_drains_its_inbox_into_its_run_queue(arena):
    a = arena
    lib.pg_set_steal_age(1 << 62)  # no stealing between the inboxes here
    views.p_set(a, 0, "nlive", 50)
    targets = [_go(a, 0) for _ in range(4)]
    p = targets[0]
    n = views.p_get(a, p, "inbox_n")
    assert n == targets.count(p) > 0
    got = 0
    while _find(a, p):
        got += 1
    assert got == n and views.p_get(a, p, "inbox_n") == 0


@pytest.mark.timeout(10)
def test_a_thief_leaves_a_busy_but_recently_scheduling_p_alone(arena):
    a = arena
    for _ in range(6):
        assert lib.pg_go(a.base, 0, b"x", 1, GF_HERE, 0, 0, 0, None, 0, None) > 0
    views.p_set(a, 0, "state", CONST["P_RUNNING"])
    lib.pg_set_steal_age(1 << 62)  # every victim counts as having scheduled "just now"
    assert _find(a, 0)  # P0 itself runs one: lastsched = now
    assert _find(a, 1) == 0  # young work: not stolen (it would pin a pool's workers)
    lib.pg_set_steal_age(0)  # now P0 counts as stuck: the thief takes half the excess
    assert _find(a, 1) != 0
    assert views.p_get(a, 1, "nstolen") == 1


@pytest.mark.timeout(10)
def test_a_gone_p_is_never_chosen(arena):
    a = arena
    views.p_set(a, 0, "nlive", 9)
    views.p_set(a, 2, "nlive", 9)
    views.p_set(a, 1, "gone", 1)  # the death watch marked it
    assert all(_go(a, 0) != 1 for _ in range(12))
    assert views.p_get(a, 1, "inbox_n") == 0


def _placed_on_1(a: Arena) -> None:
    """pg.go of P0 that placement sends to P1's inbox (P0 and P2 busier)."""
    views.p_set(a, 0, "nlive", 9)
    views.p_set(a, 2, "nlive", 9)
    assert _go(a, 0) == 1
    assert views.p_get(a, 1, "inbox_n") == 1


@pytest.mark.timeout(10)
def test_a_p_that_never_scheduled_is_starting_not_stuck_for_a_grace(arena):
    """P1 has not run findRunnable yet (its process is still starting): for
    START_GRACE_NS after the run began an idle thief leaves what was placed
    there alone, however small the victim age -- else a pool spawned as main
    starts all lands on P0; a P still not scheduling after that is stuck
    like any other, and idle Ps take its work (a slow start never strands it)."""
    a = arena
    _placed_on_1(a)
    grace = CONST["START_GRACE_NS"]
    now = time.monotonic_ns()
    assert now < views.p_get(a, 1, "lastsched") <= now + grace  # young until the grace ends
    lib.pg_set_steal_age(1)  # any P that ever scheduled is long past 20 ages
    assert _find(a, 2) == 0
    assert views.p_get(a, 2, "nstolen") == 0 and views.p_get(a, 1, "inbox_n") == 1
    views.p_set(a, 1, "lastsched", time.monotonic_ns() - grace)  # the grace is over, P1 never ran
    assert _find(a, 2) != 0
    assert views.p_get(a, 2, "nstolen") == 1 and views.p_get(a, 1, "inbox_n") == 0


@pytest.mark.timeout(10)
def test_a_p_woken_for_placed_work_counts_as_just_scheduled(arena):
    """P1 slept since a findRunnable long ago; the pg.go that places work in
    its inbox wakes it, and from then on it is on its way to findRunnable,
    not stuck: a thief waits a victim age from the wake-up."""
    a = arena
    views.p_set(a, 1, "lastsched", 1)  # its last findRunnable: at boot
    views.p_set(a, 1, "state", CONST["P_SLEEPING"])
    lib.pg_set_steal_age(10 * 10**9)
    _placed_on_1(a)
    assert views.p_get(a, 1, "state") == CONST["P_RUNNING"]  # the placement woke it
    assert views.p_get(a, 1, "lastsched") > 1
    assert _find(a, 2) == 0  # not stolen: it woke just now
    assert views.p_get(a, 1, "inbox_n") == 1
