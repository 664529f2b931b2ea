"""pg.select over channels with different homes (a cluster run).

A select whose cases all live in one arena is the ordinary pg_select: one
lock order, one ticket, Go's uniform choice among the ready cases.  When
its channels live on several nodes there is no lock that covers them all,
so the select runs as rounds over its *homes* (this node's channels form
one home, each other node's channels another):

    round:  homes in a random order, each drawn with a weight equal to its
            number of cases;
            every home but the last: its cases as one select with default
            (at that home: a non-blocking pg_select, atomic there);
            the last home: its cases as one select *parked at that home*
            for a time slice (its waiters are real sudogs, so a plain
            send or receive on one of those channels meets it), with a
            timer case that ends the slice;
            the first home whose select proceeds ends the select.
    default=True: one round, all non-blocking, then (-1, None, False).
    otherwise: rounds until one proceeds; the slice doubles from 2 ms to
            100 ms (a value that arrives at a home not parked on is taken
            in the next round: at most one slice late).

Each home's select commits at most one case and the rounds stop at the
first that does, so exactly one case proceeds and nothing is lost: a Send
value goes to at most one channel, a received value is returned.  When
every case is ready the first home is drawn with a weight of its case
count and its select chooses uniformly among its own cases, so each case
is chosen with probability 1/n, as in Go.  What differs from one arena:
two selects on different nodes that could only proceed with each other
(a Send case in one, the matching Recv case in the other, nothing else)
meet only while one of them is parked at that channel's home, so the
rendezvous can take a few rounds.

The algorithm is one generator (``_rounds``) driven by a sync and an async
driver, as parago._runtime.park drives the slow paths of the sync objects.
"""

from __future__ import annotations

import random
from typing import Any, Generator

from .._runtime.cluster import hooks
from .remote import RemoteMixin, via_outbox, via_outbox_async

SLICE_MIN = 0.002
SLICE_MAX = 0.1
_LOCAL = 0  # the key of this node's own channels (a run nonce is never 0)
_RECV, _SEND = 0, 1


def _groups(cases: tuple) -> dict[int, list[tuple[int, Any]]]:
    from .._chan import Chan, Recv, Send

    groups: dict[int, list[tuple[int, Any]]] = {}
    for i, c in enumerate(cases):
        if c is None:
            continue
        if c.__class__ is not Recv and c.__class__ is not Send:
            raise TypeError(f"select: case {i} must be pg.Recv(ch), pg.Send(ch, v) or None, got {type(c).__name__}")
        ch = c.ch
        if ch is None:
            continue
        if not isinstance(ch, Chan):  # pragma: no cover - Recv/Send check it
            raise TypeError(f"select: case {i}: expected a pg.Chan, got {type(ch).__name__}")
        home = ch._home if isinstance(ch, RemoteMixin) else _LOCAL
        groups.setdefault(home, []).append((i, c))
    return groups


def _order(groups: dict[int, list], rng: random.Random) -> list[int]:
    """The homes in a random order, each next one drawn with a weight of
    its number of cases (so that a ready case is chosen with 1/n)."""
    left = [(h, len(g)) for h, g in groups.items()]
    out = []
    while left:
        k = rng.randrange(sum(n for _, n in left))
        j = 0
        while k >= left[j][1]:
            k -= left[j][1]
            j += 1
        out.append(left.pop(j)[0])
    return out


def _rounds(
    groups: dict[int, list], default: bool, rng: random.Random
) -> Generator[tuple[int, list, float], tuple | None, tuple[int, Any, bool]]:
    """Over the cases grouped by home (_groups): yield (home, its (index,
    case) list, timeout: 0 non-blocking, else the seconds to park there);
    receive what that home's select returned -- (j, value, ok) with j an
    index into the list, or None.  Returns (index, value, ok) as pg.select."""
    slice_s = SLICE_MIN
    while True:
        order = _order(groups, rng)
        for k, home in enumerate(order):
            park = not default and k == len(order) - 1
            group = groups[home]
            got = yield home, group, (slice_s if park else 0.0)
            if got is not None:
                j, value, ok = got
                return group[j][0], value, ok
        if default:
            return -1, None, False
        slice_s = min(SLICE_MAX, slice_s * 2)


def _specs(group: list) -> list[tuple]:
    from .._chan import Send

    return [(_SEND, c.ch, c.value) if c.__class__ is Send else (_RECV, c.ch, None) for _, c in group]


def _cases_of(specs: list[tuple]) -> list:
    from .._chan import Recv, Send

    return [Send(ch, v) if d == _SEND else Recv(ch) for d, ch, v in specs]


def select_here(specs: list[tuple], timeout: float) -> tuple | None:
    """One home's part of a select, at that home (its own channels): a
    non-blocking select (timeout 0) or one parked for up to timeout s."""
    from .._chan import Recv
    from .._chan import select as local_select
    from .._time import Timer

    cases = _cases_of(specs)
    if not timeout:
        j, v, ok = local_select(*cases, default=True)
        return None if j < 0 else (j, v, ok)
    t = Timer(timeout)
    try:
        j, v, ok = local_select(*cases, Recv(t.c))
    finally:
        t.stop()
    return None if j == len(cases) else (j, v, ok)


async def select_here_async(specs: list[tuple], timeout: float) -> tuple | None:
    from .._chan import Recv
    from .._chan import select_async as local_select_async
    from .._time import Timer

    cases = _cases_of(specs)
    if not timeout:
        j, v, ok = await local_select_async(*cases, default=True)
        return None if j < 0 else (j, v, ok)
    t = Timer(timeout)
    try:
        j, v, ok = await local_select_async(*cases, Recv(t.c))
    finally:
        t.stop()
    return None if j == len(cases) else (j, v, ok)


def _outbox_of(group: list) -> Any:
    return group[0][1].ch._outbox


def _select_at(home: int, group: list, timeout: float) -> tuple | None:
    """One round's select at one home: here, through this node's client
    (P0), or through P0's outbox (another P of the node: P0 talks to Ray
    for it)."""
    specs = _specs(group)
    if home == _LOCAL:
        return select_here(specs, timeout)
    if hooks.node is not None:
        return hooks.node.client.call_select(home, specs, timeout)  # type: ignore[attr-defined]
    return via_outbox(_outbox_of(group), None, "select", (home, specs, timeout), {})


async def _select_at_async(home: int, group: list, timeout: float) -> tuple | None:
    specs = _specs(group)
    if home == _LOCAL:
        return await select_here_async(specs, timeout)
    if hooks.node is not None:
        return await hooks.node.client.call_select_async(home, specs, timeout)  # type: ignore[attr-defined]
    return await via_outbox_async(_outbox_of(group), None, "select", (home, specs, timeout), {})


def select(cases: tuple, default: bool) -> tuple[int, Any, bool]:
    """cluster.hooks.select: pg.select with a case on another node."""
    steps = _rounds(_groups(cases), default, random.Random())
    got: tuple | None = None
    try:
        while True:
            got = _select_at(*steps.send(got))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def select_async(cases: tuple, default: bool) -> tuple[int, Any, bool]:
    """cluster.hooks.select_async: pg.select_async with a case on another node."""
    steps = _rounds(_groups(cases), default, random.Random())
    got: tuple | None = None
    try:
        while True:
            got = await _select_at_async(*steps.send(got))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
