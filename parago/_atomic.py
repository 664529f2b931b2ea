"""pg.atomic: Int64, Uint64, Bool and the sharded Counter, shared by every P.

Each operation is one foreign call doing one sequentially consistent
atomic instruction on the arena (loads are plain aligned 8-byte reads).
"""

from __future__ import annotations

import threading
from typing import Any

from ._errors import OutOfSharedMemory
from ._runtime.handles import Handle
from ._runtime.sched import need_rt
from ._shim import MAXP, NOMEM, SyncKind, fast, lib, offset

_A = offset("pg_sync", "a")
_RES = offset("pg_sync", "res_off")
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
        rt = need_rt(f"pg.atomic.{cls.__name__}()")
        off = lib.pg_sync_new(rt.base, SyncKind.ATOMIC, cls._to_c(v))  # type: ignore[attr-defined]
        if off == NOMEM:
            raise OutOfSharedMemory.for_size(128, rt.arena.size)
        return cls._new(rt, off)

    def _load(self, rt: Any) -> None:
        self._ai = (self._off + _A) // 8

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
        lib.pg_atomic_store(rt.base, self._off, _int64(v, "Int64.store value"))

    def add(self, d: int) -> int:
        """Add d; returns the new value."""
        rt = self._live_rt()
        if d.__class__ is int and -0x7FFFFFFF < d < 0x7FFFFFFF:
            return fast.pg_atomic_add(rt.cbase, self._c, d)
        return lib.pg_atomic_add(rt.base, self._off, _int64(d, "Int64.add delta"))

    def swap(self, v: int) -> int:
        """Store v; returns the old value."""
        rt = self._live_rt()
        return lib.pg_atomic_swap(rt.base, self._off, _int64(v, "Int64.swap value"))

    def compare_and_swap(self, old: int, new: int) -> bool:
        rt = self._live_rt()
        return bool(lib.pg_atomic_cas(rt.base, self._off, _int64(old, "old"), _int64(new, "new")))


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
        lib.pg_atomic_store(rt.base, self._off, _u64(v, "Uint64.store value"))

    def add(self, d: int) -> int:
        """Add d (may be negative, as Go's Add(^uint64(0)) idiom); returns the new value."""
        rt = self._live_rt()
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"Uint64.add delta must be an int, got {type(d).__name__}")
        d &= _MASK
        return lib.pg_atomic_add(rt.base, self._off, d - (1 << 64) if d >= (1 << 63) else d) & _MASK

    def swap(self, v: int) -> int:
        rt = self._live_rt()
        return lib.pg_atomic_swap(rt.base, self._off, _u64(v, "Uint64.swap value")) & _MASK

    def compare_and_swap(self, old: int, new: int) -> bool:
        rt = self._live_rt()
        return bool(lib.pg_atomic_cas(rt.base, self._off, _u64(old, "old"), _u64(new, "new")))


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
        lib.pg_atomic_store(rt.base, self._off, 1 if v else 0)

    def swap(self, v: bool) -> bool:
        rt = self._live_rt()
        return lib.pg_atomic_swap(rt.base, self._off, 1 if v else 0) != 0

    def compare_and_swap(self, old: bool, new: bool) -> bool:
        rt = self._live_rt()
        return bool(lib.pg_atomic_cas(rt.base, self._off, 1 if old else 0, 1 if new else 0))


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
        rt = need_rt("pg.atomic.Counter()")
        off = lib.pg_counter_new(rt.base)
        if off == NOMEM:
            raise OutOfSharedMemory.for_size(2 * MAXP * 64, rt.arena.size)
        return cls._new(rt, off)

    def _load(self, rt: Any) -> None:
        self._shards = rt.arena.q[(self._off + _RES) // 8]

    def add(self, d: int = 1) -> None:
        rt = self._live_rt()
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"Counter.add delta must be an int, got {type(d).__name__}")
        if threading.get_ident() == rt.hub_tid:
            # only this P's hub thread writes this shard: a plain store is enough
            i = (self._shards + rt.p * 64) // 8
            view = rt.arena.i
            view[i] = ((view[i] + d + (1 << 63)) & _MASK) - (1 << 63)
        else:
            lib.pg_word_add(rt.base, self._shards + (MAXP + rt.p) * 64, d)

    def value(self) -> int:
        rt = self._live_rt()
        view = rt.arena.i
        start = self._shards // 8
        return sum(view[start : start + 2 * MAXP * 8 : 8])

    def __repr__(self) -> str:
        return f"pg.atomic.Counter({self.value()})"
