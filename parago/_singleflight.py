"""singleflight: golang.org/x/sync/singleflight's Group, across every P.

A Group is one channel of capacity 1 that holds the map of calls in
flight (key -> (the call's Once, its duplicate counter)): receiving the
map takes it, sending it back returns it -- Go's "a channel as a mutex
over its state", so a Group is a plain picklable value and every copy, on
any P, is the same group.  A call in flight is a program-wide once_value
(_sync._OnceCall): the leader runs fn through it, the duplicates wait on
its Once and get a copy of the outcome.

    leader (any P)                         duplicate (any P)
    take map; key absent:                  take map; key present:
      m[key] = (once, dups); return map      dups += 1; return map
    run fn through once ------------------>  wait on once; copy of outcome
    take map; delete key if still ours;
      return map; shared = dups > 0
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from ._atomic import Int64
from ._chan import Chan
from ._runtime import codec
from ._sync import _OnceCall


class Group:
    """Go's singleflight.Group: duplicate suppression for calls by key.

    ``do(key, fn, *args) -> (value, shared)``: the first caller of a key
    runs ``fn(*args)``; callers of the same key that arrive while it runs,
    on any P, wait for it and all get its result (copies) -- or its
    exception raised in each of them.  ``shared`` is True when the result
    went to more than one caller.  ``forget(key)``: later calls of key run
    fn again instead of waiting for the one in flight.  Keys are anything
    hashable a channel can carry (compared as a dict compares them).
    """

    __slots__ = ("_box",)

    def __init__(self) -> None:
        box = Chan(1)
        box.send({})
        self._box = box

    def __reduce__(self) -> tuple:
        return (_rebuild, (self._box,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Group) and other._box == self._box

    def __hash__(self) -> int:
        return hash(self._box)

    def do(self, key: Any, fn: Callable[..., Any], *args: Any) -> tuple[Any, bool]:
        if not callable(fn):
            raise TypeError(f"singleflight: fn must be callable, got {type(fn).__name__}")
        hash(key)  # TypeError for an unhashable key, before the map is taken
        codec.dumps(key, "singleflight key", [])  # an EncodeError now, not with the map in hand
        box = self._box
        m = box.recv()
        leader: _OnceCall | None = None
        try:
            ent = m.get(key)
            if ent is None:
                leader = _OnceCall(functools.partial(fn, *args) if args else fn, True)
                leader._claim()  # ours before a duplicate can find it in the map
                dups = Int64()
                m[key] = (leader._once, dups)
            else:
                once, dups = ent
                dups.add(1)
        finally:
            box.send(m)
        if leader is None:
            return _OnceCall(None, True, once)(), True
        try:
            v = leader()
        finally:
            m = box.recv()
            try:
                ent = m.get(key)
                if ent is not None and ent[0] == leader._once:
                    del m[key]
            finally:
                box.send(m)
        return v, dups.load() > 0

    def forget(self, key: Any) -> None:
        """Later calls of key run fn afresh (the call in flight goes on, and
        its waiters still get its result)."""
        hash(key)
        box = self._box
        m = box.recv()
        try:
            m.pop(key, None)
        finally:
            box.send(m)

    def __repr__(self) -> str:
        return f"<pg.singleflight.Group at {self._box._off:#x}>"


def _rebuild(box: Chan) -> Group:
    g = Group.__new__(Group)
    g._box = box
    return g
