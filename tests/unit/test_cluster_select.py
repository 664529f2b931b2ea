"""pg.select across homes (parago/_cluster/select.py), without Ray: the
rounds a select over channels of several nodes makes, driven by fake homes
that answer as that home's own select would (a uniformly chosen ready case
of its own, or nothing).

The end-to-end form (channels made on other nodes of a 3-node Ray cluster)
is tests/cluster/test_cluster.py::test_select_over_channels_whose_homes_are_different_nodes.
"""

from __future__ import annotations

import collections
import random

import pytest

from parago._cluster import select as xs

pytestmark = pytest.mark.timeout(30)


def _groups(spec: dict[int, list[int]]) -> dict[int, list]:
    return {home: [(i, object()) for i in idx] for home, idx in spec.items()}


def _drive(spec: dict[int, list[int]], ready: set[int], default: bool, rng: random.Random, steps: int = 10_000):
    """(the select's result or None if it had not ended after ``steps``
    home selects, [(home, timeout), ...])."""
    gen = xs._rounds(_groups(spec), default, rng)
    trace: list[tuple[int, float]] = []
    got = None
    try:
        for _ in range(steps):
            home, group, timeout = gen.send(got)
            trace.append((home, timeout))
            mine = [j for j, (i, _) in enumerate(group) if i in ready]
            got = None
            if mine:
                j = rng.choice(mine)
                got = (j, f"v{group[j][0]}", True)
    except StopIteration as stop:
        return stop.value, trace
    return None, trace


def test_default_makes_one_non_blocking_round_over_every_home():
    res, trace = _drive({1: [0, 1], 2: [2], 3: [3]}, ready=set(), default=True, rng=random.Random(1))
    assert res == (-1, None, False)
    assert sorted(h for h, _ in trace) == [1, 2, 3]
    assert all(t == 0 for _, t in trace)


def test_without_default_each_round_parks_on_its_last_home_for_a_doubling_slice():
    res, trace = _drive({1: [0], 2: [1]}, ready=set(), default=False, rng=random.Random(2), steps=20)
    assert res is None  # nothing ready: it goes on for ever (Go blocks)
    rounds = [trace[k : k + 2] for k in range(0, 20, 2)]
    assert all(r[0][1] == 0 and r[1][1] > 0 for r in rounds), rounds  # one non-blocking, then one parked
    parked = [r[1][1] for r in rounds]
    assert parked[0] == xs.SLICE_MIN and parked[1] == 2 * xs.SLICE_MIN
    assert parked == sorted(parked) and parked[-1] == xs.SLICE_MAX
    assert {r[1][0] for r in rounds} == {1, 2}  # both homes get parked on


def test_the_first_home_that_proceeds_ends_the_select_with_the_callers_case_index():
    res, trace = _drive({7: [0, 2], 9: [1, 3]}, ready={3}, default=False, rng=random.Random(3))
    assert res == (3, "v3", True)
    assert trace[-1][0] == 9
    assert len(trace) <= 2  # at most one home before it: nothing ran twice


def test_every_ready_case_is_chosen_with_equal_probability_whatever_its_home():
    # 6 cases over 3 homes of 1, 2 and 3 cases, all ready: 1/6 each, as in Go
    rng = random.Random(4)
    n = 12_000
    counts = collections.Counter(
        _drive({1: [0], 2: [1, 2], 3: [3, 4, 5]}, ready=set(range(6)), default=False, rng=rng)[0][0] for _ in range(n)
    )
    for i in range(6):
        assert abs(counts[i] / n - 1 / 6) < 0.02, counts


def test_homes_are_ordered_by_a_draw_weighted_by_their_case_counts():
    rng = random.Random(5)
    first = collections.Counter(xs._order(_groups({1: [0], 2: [1, 2, 3]}), rng)[0] for _ in range(8000))
    assert abs(first[2] / 8000 - 0.75) < 0.03, first


def test_a_bad_case_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="case 1 must be pg.Recv"):
        xs._groups((None, 42))
