"""pg.atomic: Int64, Uint64, Int32, Uint32, Bool, Value and the sharded
Counter, shared by every P.

Each integer operation is one foreign call doing one sequentially
consistent atomic instruction on the arena (loads are plain aligned 8-byte
reads).  Int32/Uint32 keep their value sign-/zero-extended in the same
64-bit word (shm/atomics.c), so only their Add needs a 32-bit wrap.
``Value`` stores its value encoded (as a channel does) in an arena block
swapped under the object's lock; loads decode a copy.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from typing import Any

from ._runtime import codec, ops, park
from ._runtime.handles import Handle
from ._runtime.ops import BIG, INVAL, MAXP, OK, WOULDBLOCK, SyncKind, check, fast, lib, views

_MASK = (1 << 64) - 1


def _int64(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not -(1 << 63) <= v < (1 << 63):
        raise OverflowError(f"{what} out of int64 range: {v}")
    return v


def _mask(v: Any, width: int, what: str, signed: bool = False) -> int:
    """An And/Or mask as the word holds it.  Any int of the width, signed or
    unsigned, is its bits (``u.and_(~(1 << 3))`` clears bit 3 of a Uint32,
    as Go's ``^uint32(1 << 3)``); beyond the width: OverflowError."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not -(1 << (width - 1)) <= v < (1 << width):
        raise OverflowError(f"{what} out of range for {width} bits [-2**{width - 1}, 2**{width}-1]: {v}")
    bits = v & ((1 << width) - 1)
    if signed or width == 64:  # sign-extended (Int32), or the int64 the C call takes
        return bits - (1 << width) if bits >> (width - 1) else bits
    return bits  # Uint32: zero-extended


class _Atomic(Handle):
    __slots__ = ("_ai",)
    _kind = "atomic"

    def __new__(cls, v: Any = 0) -> Any:
        rt = park.runtime(f"pg.atomic.{cls.__name__}()")
        off = check(lib.pg_sync_new(rt.base, SyncKind.ATOMIC, cls._to_c(v)), "pg.atomic", 128)  # type: ignore[attr-defined]
        return cls._new(rt, off)

    def _load(self, rt: Any) -> None:
        self._ai = views.sync_index(self._off, "pg_atom", "value")  # an aligned 8-byte load is atomic

    def _raw(self) -> int:
        return self._live_rt().arena.i[self._ai]

    def __repr__(self) -> str:
        return f"pg.atomic.{type(self).__name__}({self.load()!r})"  # type: ignore[attr-defined]


class _Int(_Atomic):
    """What every integer kind does alike.  A kind says how a value is
    checked and held in the 64-bit word (``_check``), its masks' width and
    whether they sign-extend (``_width``, ``_signed``), and which bits of
    the word an old value returns (``_out``: Uint64 its 64; the others -1,
    the word as it is held, which x & -1 leaves as it is)."""

    __slots__ = ()
    _width = 64
    _signed = False
    _out = -1
    # the error words of each operation, "Int32.store value" (set per kind)
    _w_value = _w_store = _w_swap = _w_and = _w_or = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        n = cls.__name__
        cls._w_value, cls._w_store, cls._w_swap = f"{n} value", f"{n}.store value", f"{n}.swap value"
        cls._w_and, cls._w_or = f"{n}.and_ mask", f"{n}.or_ mask"

    @staticmethod
    def _check(v: Any, what: str) -> int:
        raise NotImplementedError

    @classmethod
    def _to_c(cls, v: Any) -> int:
        return cls._check(v, cls._w_value)

    def store(self, v: int) -> None:
        rt = self._live_rt()
        lib.pg_atomic_store(rt.base, self._off, self._check(v, self._w_store))

    def swap(self, v: int) -> int:
        """Store v; returns the old value."""
        rt = self._live_rt()
        return lib.pg_atomic_swap(rt.base, self._off, self._check(v, self._w_swap)) & self._out  # type: ignore[no-any-return]

    def compare_and_swap(self, old: int, new: int) -> bool:
        rt = self._live_rt()
        return bool(lib.pg_atomic_cas(rt.base, self._off, self._check(old, "old"), self._check(new, "new")))

    def and_(self, mask: int) -> int:
        """Bitwise AND with mask (Go 1.23's And; any int of the kind's width
        is its bits, see _mask); returns the old value."""
        rt = self._live_rt()
        m = _mask(mask, self._width, self._w_and, self._signed)
        return lib.pg_atomic_and(rt.base, self._off, m) & self._out  # type: ignore[no-any-return]

    def or_(self, mask: int) -> int:
        """Bitwise OR with mask (Go 1.23's Or; any int of the kind's width
        is its bits, see _mask); returns the old value."""
        rt = self._live_rt()
        m = _mask(mask, self._width, self._w_or, self._signed)
        return lib.pg_atomic_or(rt.base, self._off, m) & self._out  # type: ignore[no-any-return]


class Int64(_Int):
    """A shared int64 (Go's atomic.Int64); arithmetic wraps."""

    __slots__ = ()
    _check = staticmethod(_int64)

    def load(self) -> int:
        return self._live_rt().arena.i[self._ai]

    def add(self, d: int) -> int:
        """Add d; returns the new value."""
        rt = self._live_rt()
        if d.__class__ is int and -0x7FFFFFFF < d < 0x7FFFFFFF:
            return fast.pg_atomic_add(rt.cbase, self._c, d)
        return lib.pg_atomic_add(rt.base, self._off, _int64(d, "Int64.add delta"))


def _u64(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not 0 <= v <= _MASK:
        raise OverflowError(f"{what} out of uint64 range: {v}")
    return v - (1 << 64) if v >= (1 << 63) else v


class Uint64(_Int):
    """A shared uint64 (Go's atomic.Uint64); arithmetic wraps mod 2**64."""

    __slots__ = ()
    _check = staticmethod(_u64)
    _out = _MASK  # the word holds it as an int64

    def load(self) -> int:
        return self._raw() & _MASK

    def add(self, d: int) -> int:
        """Add d (may be negative, as Go's Add(^uint64(0)) idiom); returns the new value."""
        rt = self._live_rt()
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"Uint64.add delta must be an int, got {type(d).__name__}")
        d &= _MASK
        return lib.pg_atomic_add(rt.base, self._off, d - (1 << 64) if d >= (1 << 63) else d) & _MASK


# ---------------------------------------------------------------------------
# 32-bit integers: the value sign- (Int32) or zero-extended (Uint32) in the
# 64-bit word, so every operation but Add is the 64-bit one.

_I32_MIN, _I32_MAX, _U32_MAX = -(1 << 31), (1 << 31) - 1, (1 << 32) - 1


def _int32(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not _I32_MIN <= v <= _I32_MAX:
        raise OverflowError(f"{what} out of int32 range [-2**31, 2**31-1]: {v}")
    return v


def _u32(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not 0 <= v <= _U32_MAX:
        raise OverflowError(f"{what} out of uint32 range [0, 2**32-1]: {v}")
    return v


class Int32(_Int):
    """A shared int32 (Go's atomic.Int32); add wraps at 32 bits."""

    __slots__ = ()
    _check = staticmethod(_int32)
    _width = 32
    _signed = True  # a mask sign-extended, as the word holds an Int32

    def load(self) -> int:
        return self._raw()

    def add(self, d: int) -> int:
        """Add d (an int32); returns the new value, wrapped as Go's int32."""
        rt = self._live_rt()
        return lib.pg_atomic_add32(rt.base, self._off, _int32(d, "Int32.add delta"), 1)  # type: ignore[no-any-return]


class Uint32(_Int):
    """A shared uint32 (Go's atomic.Uint32); add wraps mod 2**32."""

    __slots__ = ()
    _check = staticmethod(_u32)
    _width = 32

    def load(self) -> int:
        return self._raw()

    def add(self, d: int) -> int:
        """Add d (may be negative down to -(2**32-1), as Go's
        Add(^uint32(0)) idiom); returns the new value mod 2**32."""
        rt = self._live_rt()
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(f"Uint32.add delta must be an int, got {type(d).__name__}")
        if not -_U32_MAX <= d <= _U32_MAX:
            raise OverflowError(f"Uint32.add delta out of range [-(2**32-1), 2**32-1]: {d}")
        return lib.pg_atomic_add32(rt.base, self._off, d, 0)  # type: ignore[no-any-return]


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
        rt = park.runtime("pg.atomic.Counter()")
        off = check(lib.pg_counter_new(rt.base), "pg.atomic.Counter", 2 * MAXP * 64)
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
            lib.pg_word_add(rt.base, views.counter_thread_shard(self._shards, rt.p), d)

    def value(self) -> int:
        return views.counter_sum(self._live_rt().arena, self._shards)

    def __repr__(self) -> str:
        return f"pg.atomic.Counter({self.value()})"


# ---------------------------------------------------------------------------
# Value


class _NilValueError(TypeError, ValueError):
    """Go panics on storing nil into a Value: both a TypeError (None has no
    concrete type) and a ValueError (an unusable argument)."""


_VAL_HDR = struct.Struct("<II")  # type name length, handle references in the payload
# then the references' offsets (u64 each), the type name, the encoded value:
# the block owns one reference per handle inside (shm/atomics.c)


def _type_name(v: Any) -> bytes:
    t = type(v)
    mod = t.__module__
    if mod == "__mp_main__":  # the main module, as a spawned P calls it
        mod = "__main__"
    return f"{mod}.{t.__qualname__}".encode()


class Value(Handle):
    """Go's atomic.Value, shared by every P: ``load()`` (None before the
    first store), ``store(v)``, ``swap(v) -> old``, ``compare_and_swap(old,
    new) -> bool``.

    Values are anything a channel can carry, stored as their encoding:
    each load gets a copy (handles inside refer to the same objects).
    Every store must have the type of the first (Go panics otherwise):
    another type raises TypeError("sync/atomic: store of inconsistently
    typed value into Value") and leaves the value unchanged; storing None
    raises an error too (Go's "store of nil value into Value").
    compare_and_swap compares with ``==`` the value loaded at that moment,
    and swaps only if no store came in between.
    """

    __slots__ = ()
    _kind = "atomic.Value"

    def __new__(cls) -> "Value":
        rt = park.runtime("pg.atomic.Value()")
        off = check(lib.pg_sync_new(rt.base, SyncKind.VALUE, 0), "pg.atomic.Value", 128)
        return cls._new(rt, off)  # type: ignore[no-any-return]

    # ---- the stored block: [tlen, nrefs][refs][type name][encoded value] ----

    def _load_raw(self, rt: Any) -> tuple[bytes, int]:
        """(block, sequence number): the stored block (b"" before the
        first store), copied under the object's lock."""
        if threading.get_ident() == rt.hub_tid:
            buf, cap, out = rt.obuf, rt.OBUF, rt.out  # nothing switches before the copy
        else:
            cap = 4096
            buf, out = ctypes.create_string_buffer(cap), (ctypes.c_uint64 * 2)()
        while True:
            r = lib.pg_value_load(rt.base, self._off, buf, cap, out)
            if r != BIG:
                n = check(r, "Value.load")
                return ctypes.string_at(buf, n), out[0]
            cap = out[1]
            buf, out = ctypes.create_string_buffer(cap), (ctypes.c_uint64 * 2)()

    @staticmethod
    def _decode(rt: Any, blk: bytes, kept: bool) -> Any:
        """The value of a block.  kept: the block stays stored (a load), so
        each handle decoded takes a reference of its own; else the block's
        references pass to the decoded handles."""
        tlen, nrefs = _VAL_HDR.unpack_from(blk)
        refs: list[int] = []
        v = codec.loads_collecting(memoryview(blk)[_VAL_HDR.size + 8 * nrefs + tlen :], refs)
        if kept and refs:
            ops.incref_many(rt, refs)
        return v

    @staticmethod
    def _stored_type(blk: bytes) -> bytes:
        tlen, nrefs = _VAL_HDR.unpack_from(blk)
        at = _VAL_HDR.size + 8 * nrefs
        return blk[at : at + tlen]

    def _swap(self, rt: Any, v: Any, expect: int, what: str) -> tuple[int, bytes] | None:
        """Store v's block; None when expect >= 0 and a store came in
        between, else (OK, the replaced block, b"" for none)."""
        if v is None:
            raise _NilValueError(f"sync/atomic: {what} of nil value into Value")
        refs: list[int] = []
        payload = codec.dumps(v, "atomic.Value value", refs)
        tn = _type_name(v)
        blk = b"".join((_VAL_HDR.pack(len(tn), len(refs)), struct.pack(f"<{len(refs)}Q", *refs), tn, payload))
        if refs:
            ops.incref_many(rt, refs)  # the stored block's references
        out = (ctypes.c_uint64 * 2)()
        r = lib.pg_value_swap(rt.base, self._off, blk, len(blk), expect, out)
        if r != OK:
            for off in refs:
                rt.decref_later(off)
            if r == WOULDBLOCK:
                return None
            if r == INVAL:
                raise TypeError(f"sync/atomic: {what} of inconsistently typed value into Value")
            check(r, f"Value.{what}", len(blk))
        old = b""
        if out[0]:
            old = rt.arena.read(out[0], out[1])
            lib.pg_mfree(rt.base, out[0])
        return OK, old

    def _drop(self, rt: Any, old: bytes) -> None:
        """A replaced block nobody receives: give back its references."""
        if old:
            nrefs = _VAL_HDR.unpack_from(old)[1]
            for off in struct.unpack_from(f"<{nrefs}Q", old, _VAL_HDR.size):
                rt.decref_later(off)

    # ---- the API ----

    def load(self) -> Any:
        """The value of the last store (a copy), or None before the first."""
        rt = self._live_rt()
        blk, _ = self._load_raw(rt)
        return self._decode(rt, blk, kept=True) if blk else None

    def store(self, v: Any) -> None:
        """Set the value.  Raises TypeError for another type than the first
        store's, or None; EncodeError if v cannot be copied (unchanged)."""
        rt = self._live_rt()
        res = self._swap(rt, v, -1, "store")
        assert res is not None
        self._drop(rt, res[1])

    def swap(self, v: Any) -> Any:
        """Store v; returns the previous value (None before the first store)."""
        rt = self._live_rt()
        res = self._swap(rt, v, -1, "swap")
        assert res is not None
        return self._decode(rt, res[1], kept=False) if res[1] else None

    def compare_and_swap(self, old: Any, new: Any) -> bool:
        """Store new if the value is ``== old`` (None: never stored); True
        if it did.  old and new must have the stored value's type."""
        rt = self._live_rt()
        if new is None:
            raise _NilValueError("sync/atomic: compare and swap of nil value into Value")
        if old is not None and type(old) is not type(new):
            raise TypeError("sync/atomic: compare and swap of inconsistently typed values")
        while True:
            blk, seq = self._load_raw(rt)
            if not blk:
                if old is not None:
                    return False
            else:
                if self._stored_type(blk) != _type_name(new):
                    raise TypeError("sync/atomic: compare and swap of inconsistently typed value into Value")
                cur = self._decode(rt, blk, kept=True)
                if old is None or type(cur) is not type(old) or not bool(cur == old):
                    return False
            res = self._swap(rt, new, seq, "compare and swap")
            if res is not None:
                self._drop(rt, res[1])
                return True
            # another store came in between: compare with its value

    def __repr__(self) -> str:
        return f"pg.atomic.Value({self.load()!r})"
