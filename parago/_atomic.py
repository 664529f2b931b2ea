"""pg.atomic: Int64, Uint64, Bool and the sharded Counter, shared by every P.

Each operation is one foreign call doing one sequentially consistent
atomic instruction on the arena (loads are plain aligned 8-byte reads).
"""

from __future__ import annotations

import threading
from typing import Any

from ._runtime import ops, park
from ._runtime.handles import Handle
from ._runtime.ops import MAXP, SyncKind, check, views

_MASK = (1 << 64) - 1


def _int64(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not -(1 << 63) <= v < (1 << 63):
        raise OverflowError(f"{what} out of int64 range: {v}")
    return v


class _Atomic(Handle):
    __slots__ = ("_ai",)
    _kind = "atomic"

    def __new__(cls, v: Any = 0) -> Any:
        rt = park.runtime(f"pg.atomic.{cls.__name__}()")
        off = check(ops.sync_new(rt.base, SyncKind.ATOMIC, cls._to_c(v)), "pg.atomic", 128)  # type: ignore[attr-defined]
        return cls._new(rt, off)

    def _load(self, rt: Any) -> None:
        self._ai = views.sync_index(self._off, "pg_atom", "value")  # an aligned 8-byte load is atomic

    def _raw(self) -> int:
        return self._live_rt().arena.i[self._ai]

    def __repr__(self) -> str:
        return f"pg.atomic.{type(self).__name__}({self.load()!r})"  # type: ignore[attr-defined]


class Int64(_Atomic):
    """A shared int64 (Go's atomic.Int64); arithmetic wraps."""

    __slots__ = ()

    @staticmethod
    def _to_c(v: Any) -> int:
        return _int64(v, "Int64 value")

    def load(self) -> int:
        return self._live_rt().arena.i[self._ai]

    def store(self, v: int) -> None:
        rt = self._live_rt()
        ops.atomic_store(rt.base, self._off, _int64(v, "Int64.store value"))

    def add(self, d: int) -> int:
        """Add d; returns the new value."""
        rt = self._live_rt()
        if d.__class__ is int and -0x7FFFFFFF < d < 0x7FFFFFFF:
            return ops.atomic_add_fast(rt.cbase, self._c, d)
        return ops.atomic_add(rt.base, self._off, _int64(d, "Int64.add delta"))

    def swap(self, v: int) -> int:
        """Store v; returns the old value."""
        rt = self._live_rt()
        return ops.atomic_swap(rt.base, self._off, _int64(v, "Int64.swap value"))

    def compare_and_swap(self, old: int, new: int) -> bool:
        rt = self._live_rt()
        return bool(ops.atomic_cas(rt.base, self._off, _int64(old, "old"), _int64(new, "new")))


def _u64(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not 0 <= v <= _MASK:
        raise OverflowError(f"{what} out of uint64 range: {v}")
    return v - (1 << 64) if v >= (1 << 63) else v


class Uint64(_Atomic):
    """A shared uint64 (Go's atomic.Uint64); arithmetic wraps mod 2**64."""

    __slots__ = ()

    @staticmethod
    def _to_c(v: Any) -> int:
        return _u64(v, "Uint64 value")

    def load(self) -> int:
        return self._raw() & _MASK

    def store(self, v: int) -> None:
        rt = self._live_rt()
        ops.atomic_store(rt.base, self._off, _u64(v, "Uint64.store value"))

    def add(self, d: int) -> int:
        """Add d (may be negative, as Go's Add(^uint64(0)) idiom); returns the new value."""
        rt = self._live_rt()
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"Uint64.add delta must be an int, got {type(d).__name__}")
        d &= _MASK
        return ops.atomic_add(rt.base, self._off, d - (1 << 64) if d >= (1 << 63) else d) & _MASK

    def swap(self, v: int) -> int:
        rt = self._live_rt()
        return ops.atomic_swap(rt.base, self._off, _u64(v, "Uint64.swap value")) & _MASK

    def compare_and_swap(self, old: int, new: int) -> bool:
        rt = self._live_rt()
        return bool(ops.atomic_cas(rt.base, self._off, _u64(old, "old"), _u64(new, "new")))


class Bool(_Atomic):
    """A shared bool (Go's atomic.Bool)."""

    __slots__ = ()

    @staticmethod
    def _to_c(v: Any) -> int:
        return 1 if v else 0

    def load(self) -> bool:
        return self._raw() != 0

    def store(self, v: bool) -> None:
        rt = self._live_rt()
        ops.atomic_store(rt.base, self._off, 1 if v else 0)

    def swap(self, v: bool) -> bool:
        rt = self._live_rt()
        return ops.atomic_swap(rt.base, self._off, 1 if v else 0) != 0

    def compare_and_swap(self, old: bool, new: bool) -> bool:
        rt = self._live_rt()
        return bool(ops.atomic_cas(rt.base, self._off, 1 if old else 0, 1 if new else 0))


class Counter(Handle):
    """A sharded, cache-line padded counter (the seed's §6.2 optimisation).

    ``add`` touches only the calling P's own cache line -- no atomic
    instruction and no foreign call on a goroutine, one relaxed atomic add
    from other threads -- so Ps never contend.  ``value()`` sums the shards:
    a racy snapshot while adders run, exact once they are done.
    """

    __slots__ = ("_shards",)
    _kind = "Counter"

    def __new__(cls) -> "Counter":
        rt = park.runtime("pg.atomic.Counter()")
        off = check(ops.counter_new(rt.base), "pg.atomic.Counter", 2 * MAXP * 64)
        return cls._new(rt, off)

    def _load(self, rt: Any) -> None:
        self._shards = views.sync_res_off(rt.arena, self._off)

    def add(self, d: int = 1) -> None:
        rt = self._live_rt()
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"Counter.add delta must be an int, got {type(d).__name__}")
        if threading.get_ident() == rt.hub_tid:
            # only this P's hub thread writes its shard: a plain store is enough
            views.counter_add_own(rt.arena, self._shards, rt.p, d)
        else:
            ops.word_add(rt.base, views.counter_thread_shard(self._shards, rt.p), d)

    def value(self) -> int:
        return views.counter_sum(self._live_rt().arena, self._shards)

    def __repr__(self) -> str:
        return f"pg.atomic.Counter({self.value()})"
