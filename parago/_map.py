"""pg.Map: Go's sync.Map, one hash map in the arena shared by every P.

A Map is a handle (like a Chan): passing it to pg.go, sending it on a
channel or pickling it refers to the *same* map on every P; handles compare
equal when they name the same map, and the map lives while any P or
payload holds it.  Keys and values cross Ps as bytes:

    caller (any P)                              shm/map.c (shard lock)
    --------------                              ----------------------
    key   -> canonical bytes + tag (_key)  -->  hash, find in 1 of 64 shards
    value -> pickle (codec: handles by ref) -->  stored block (+ a reference
                                                 per handle inside)
    load  <- unpickle a copy               <--  bytes copied out (+ a fresh
                                                 reference per handle)

Keys: str, bytes, int, bool, None and tuples of them, compared as a dict
compares them -- the encoding is canonical (True and 1 encode alike, so they
are one key; a key keeps the form it was first stored with, as a dict key
does).  Floats are not keys (1.0 == 1 would make float keys a trap), nor
is anything else: TypeError naming the type.

Values: anything a channel can carry, as copies (each load decodes a new
copy), and handles (a loaded Chan/Map/Buffer is the same object).

Every operation is one foreign call on its fast path (compare_and_swap and
compare_and_delete: two -- see there), never parks, and so works the same
from plain goroutines, async goroutines and threads.
"""

from __future__ import annotations

import ctypes
import pickle
import struct
import threading
from typing import Any, Callable

from ._errors import DecodeError
from ._runtime import codec, ops, park
from ._runtime.handles import Handle
from ._runtime.ops import BIG, OK, WOULDBLOCK, check, fast, lib

_OPS = ops.MAP_OPS
_STORE, _SWAP, _LOAD_OR_STORE = _OPS["MAP_STORE"], _OPS["MAP_SWAP"], _OPS["MAP_LOAD_OR_STORE"]
_LOAD_AND_DELETE, _DELETE = _OPS["MAP_LOAD_AND_DELETE"], _OPS["MAP_DELETE"]
_CAS, _CAD = _OPS["MAP_CAS"], _OPS["MAP_CAD"]
_K = ops.MAP_KEYS
MK_EXACT, MK_STR, MK_BYTES, MK_INT = _K["MK_EXACT"], _K["MK_STR"], _K["MK_BYTES"], _K["MK_INT"]
MK_NONE, MK_TUPLE, MK_BOOL = _K["MK_NONE"], _K["MK_TUPLE"], _K["MK_BOOL"]
_NSHARD = ops.MAP_NSHARD

_load_fast = fast.pg_map_load
_write_fast = fast.pg_map_write
_get_ident = threading.get_ident
_dumps = pickle.dumps
_loads = pickle.loads
_SCALARS = frozenset({int, float, str, bytes, type(None), bool})
_FASTMAX = 0x7FFFFFFF  # lengths the no-argtypes calls may pass as Python ints
_ZERO = ops.c_zero

_q = struct.Struct("<q").pack
_u32 = struct.Struct("<I")
# pg_maprec (shm/layout.h), checked against the exported layout at import
_REC = struct.Struct("<IIIIQ")
if ops.MAPREC != {"ktag": 0, "klen": 4, "nref": 8, "pad": 12, "vlen": 16} or ops.MAPREC_SIZE != _REC.size:
    raise ImportError(f"parago._map: pg_maprec is now {ops.MAPREC} (size {ops.MAPREC_SIZE}): update _REC")

_KEYS = "keys are str, bytes, int, bool, None or tuples of them"


# ---------------------------------------------------------------- keys


def _bad_key(k: Any) -> TypeError:
    t = type(k).__name__
    try:
        hash(k)
    except TypeError:
        return TypeError(f"pg.Map: unhashable type: '{t}' ({_KEYS})")
    return TypeError(f"pg.Map: key of type {t} is not supported ({_KEYS})")


def _int_bytes(k: int) -> bytes:
    """8 bytes for an int64, else the shortest two's complement (9+ bytes):
    one encoding per int."""
    try:
        return _q(k)
    except struct.error:
        return k.to_bytes((k.bit_length() + 8) // 8, "little", signed=True)


def _str_bytes(k: str) -> bytes:
    try:
        return k.encode()
    except UnicodeEncodeError:  # lone surrogates: still one encoding per str
        return k.encode("utf-8", "surrogatepass")


_T_STR, _T_BYTES, _T_INT = bytes([MK_STR]), bytes([MK_BYTES]), bytes([MK_INT])
_T_NONE, _T_TUPLE = bytes([MK_NONE]), bytes([MK_TUPLE])
_T_TRUE, _T_FALSE = bytes([MK_BOOL, 1]), bytes([MK_BOOL, 0])


def _tagged(k: Any, exact: bool) -> bytes:
    """The self-tagged encoding of a key; ``exact`` keeps bools as bools
    (for range), else they are the ints they equal (for comparison)."""
    c = k.__class__
    if c is str:
        return _T_STR + _str_bytes(k)
    if c is bool:
        if exact:
            return _T_TRUE if k else _T_FALSE
        return _T_INT + _q(int(k))
    if c is int:
        return _T_INT + _int_bytes(k)
    if c is bytes:
        return _T_BYTES + k
    if k is None:
        return _T_NONE
    if isinstance(k, tuple):  # also a namedtuple: equal to its plain tuple, as in a dict
        parts = [_tagged(e, exact) for e in k]
        return _T_TUPLE + b"".join(_u32.pack(len(p)) + p for p in parts)
    if isinstance(k, int):  # an IntEnum member equals its int
        return _tagged(int(k), exact)
    if isinstance(k, str):
        return _tagged(str(k), exact)
    if isinstance(k, bytes):
        return _tagged(bytes(k), exact)
    raise _bad_key(k)


def _has_bool(k: Any) -> bool:
    return k.__class__ is bool or (isinstance(k, tuple) and any(map(_has_bool, k)))


def _key(k: Any) -> tuple[int, bytes, int, int]:
    """(tag, canonical bytes + exact bytes, canonical length, exact length).

    The canonical bytes are what C hashes and compares; the exact ones
    (only for keys holding a bool) are what range gives back."""
    c = k.__class__
    if c is str:
        b = _str_bytes(k)
        if len(b) < _FASTMAX:
            return MK_STR, b, len(b), 0
    elif c is int:
        b = _q(k) if -0x8000000000000000 <= k <= 0x7FFFFFFFFFFFFFFF else _int_bytes(k)
        return MK_INT, b, len(b), 0
    elif c is bytes:
        if len(k) < _FASTMAX:
            return MK_BYTES, k, len(k), 0
    elif k is None:
        return MK_NONE, b"", 0, 0
    return _key_slow(k)


def _key_slow(k: Any) -> tuple[int, bytes, int, int]:
    canon = _tagged(k, False)
    tag, body = canon[0], canon[1:]
    x = _tagged(k, True) if _has_bool(k) else b""
    if len(body) + len(x) >= _FASTMAX:
        raise ValueError(f"pg.Map: key too long ({len(body)} bytes encoded, at most {_FASTMAX - 1})")
    return tag, body + x, len(body), len(x)


def _untag(b: bytes) -> Any:
    return _key_of(b[0], b[1:])


def _key_of(tag: int, b: bytes) -> Any:
    """The key a range record names (the inverse of _key)."""
    if tag == MK_STR:
        return b.decode("utf-8", "surrogatepass")
    if tag == MK_INT:
        return int.from_bytes(b, "little", signed=True)
    if tag == MK_BYTES:
        return b
    if tag == MK_NONE:
        return None
    if tag == MK_BOOL:
        return b == b"\x01"
    if tag == MK_TUPLE:
        out, pos, n = [], 0, len(b)
        while pos < n:
            (ln,) = _u32.unpack_from(b, pos)
            out.append(_untag(b[pos + 4 : pos + 4 + ln]))
            pos += 4 + ln
        return tuple(out)
    if tag == MK_EXACT:
        return _untag(b)
    raise DecodeError(f"pg.Map: a key of unknown kind {tag}")


# ---------------------------------------------------------------- the Map


class _Bufs:
    """A thread's out buffers for map operations (threads that are no hub)."""

    __slots__ = ("obuf", "obuf_mv", "out")

    def __init__(self, n: int) -> None:
        self.obuf = ctypes.create_string_buffer(n)
        self.obuf_mv = memoryview(self.obuf).cast("B")
        self.out = (ctypes.c_uint64 * 8)()


_tls = threading.local()


def _thread_bufs(rt: Any) -> _Bufs:
    b = getattr(_tls, "b", None)
    if b is None or len(b.obuf) != rt.OBUF:
        b = _tls.b = _Bufs(rt.OBUF)
    return b


class Map(Handle):
    """Go's sync.Map, shared by every P.

    All methods are safe to call concurrently from any goroutine on any P,
    never park, and may be called from async goroutines as they are.
    Operations on different keys do not serialize on one lock: the map is
    64 shards, each a hash table under its own (owner-tagged) lock, and a
    shard grows or shrinks alone.  Stored values are copies (each load
    decodes a new one) except handles, which stay the same object.

    ``compare_and_swap``/``compare_and_delete`` compare with Python's
    ``==`` on the decoded current value (Go compares with ``==`` too), so
    ``m.compare_and_swap(k, 1, x)`` matches a stored ``1.0``, and a stored
    NaN never matches.

    A Map that holds a handle to itself is never freed (no cycle
    collection across Ps).

    Raises (every method taking a key): TypeError for a key that is not
    str, bytes, int, bool, None or a tuple of them (naming its type);
    EncodeError for a value that cannot be copied (the map unchanged);
    OutOfSharedMemory when the arena is full (the map unchanged).
    """

    __slots__ = ()
    _kind = "Map"

    def __new__(cls) -> "Map":
        rt = park.runtime("pg.Map()")
        off = check(lib.pg_map_new(rt.base), "pg.Map", 64 * 64 + 128)
        return cls._new(rt, off)

    def __init__(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<pg.Map at {self._off:#x}>"

    def __len__(self) -> int:
        """Entries now (a racy snapshot: Go's sync.Map has no Len at all)."""
        rt = self._live_rt()
        return lib.pg_map_len(rt.base, self._off)

    # ---- plumbing ----
    def _rt_bufs(self) -> tuple[Any, Any]:
        """(runtime, whose obuf/out to use): the P's own on its hub thread
        (nothing runs between our C call and our copy of the bytes), the
        thread's own otherwise (no G record: a map operation never parks)."""
        rt = self._rt
        if rt.attn:  # closed, or a preemption request: yield here
            self._live_rt()
        if _get_ident() == rt.hub_tid:
            return rt, rt
        return rt, _thread_bufs(rt)

    def _decode(self, data: bytes) -> Any:
        try:
            return _loads(data)
        except Exception as e:
            raise self._decode_error(e) from e

    def _decode_error(self, e: Exception) -> DecodeError:
        return DecodeError(f"cannot decode a value loaded from {self!r}: {type(e).__name__}: {e}")

    def _take(self, rt: Any, b: Any, r: int, op: str) -> Any:
        """The value a status r >= 0 (in obuf) or PG_BIG (in a block we free)
        stands for, decoded (the decode adopts its handles' references)."""
        if r >= 0:
            return self._decode(bytes(b.obuf_mv[:r]))
        check(r, op)
        if r != BIG:
            raise RuntimeError(f"{op}: unexpected status {r}")
        out = b.out
        data = rt.arena.read(out[0], out[1])
        lib.pg_mfree(rt.base, out[2])
        return self._decode(data)

    @staticmethod
    def _encode(v: Any) -> tuple[bytes, Any, int]:
        """(bytes, the handles' offsets as a C array or None, how many)."""
        if v.__class__ in _SCALARS:
            return _dumps(v, 5), None, 0
        refs: list[int] = []
        data = codec.dumps(v, "value", refs)  # the references are taken by C, on publish
        if not refs:
            return data, None, 0
        return data, (ctypes.c_uint64 * len(refs))(*refs), len(refs)

    def _write(self, rt: Any, b: Any, op: int, k: tuple, enc: tuple | None, seq: Any = _ZERO) -> int:
        tag, kb, kl, xl = k
        if enc is None:
            data, arr, nref = None, None, 0
        else:
            data, arr, nref = enc
        n = len(data) if data is not None else 0
        if n < _FASTMAX:
            r = _write_fast(rt.cbase, self._c, kb, kl, data, n, op, tag, xl, arr, nref, seq, b.obuf, rt.c_ocap, b.out)
        else:
            r = lib.pg_map_write(
                rt.base, self._off, kb, kl, data, n, op, tag, xl, arr, nref, seq.value, b.obuf, rt.OBUF, b.out
            )
        if r < 0 and r != WOULDBLOCK and r != BIG:
            check(r, "map.store", n)
        return r

    # ---- Go's methods ----
    def load(self, key: Any) -> tuple[Any, bool]:
        """(value, True), or (None, False) when key is absent."""
        tag, kb, kl, _ = _key(key)
        rt = self._rt
        if rt.attn:  # closed, or a preemption request: yield here
            self._live_rt()
        b = rt if _get_ident() == rt.hub_tid else _thread_bufs(rt)
        r = _load_fast(rt.cbase, self._c, tag, kb, kl, b.obuf, rt.c_ocap, b.out)
        if r >= 0:
            try:
                return _loads(bytes(b.obuf_mv[:r])), True
            except Exception as e:
                raise self._decode_error(e) from e
        if r == WOULDBLOCK:
            return None, False
        return self._take(rt, b, r, "map.load"), True

    def store(self, key: Any, value: Any) -> None:
        """Set the value for key."""
        tag, kb, kl, xl = _key(key)
        if value.__class__ in _SCALARS:
            data, arr, nref = _dumps(value, 5), None, 0
        else:
            data, arr, nref = self._encode(value)
        rt = self._rt
        if rt.attn:  # closed, or a preemption request: yield here
            self._live_rt()
        b = rt if _get_ident() == rt.hub_tid else _thread_bufs(rt)
        n = len(data)
        if n < _FASTMAX:
            r = _write_fast(rt.cbase, self._c, kb, kl, data, n, _STORE, tag, xl, arr, nref, _ZERO, b.obuf, rt.c_ocap, b.out)
            if r == OK:
                return
            check(r, "map.store", n)
        else:
            self._write(rt, b, _STORE, (tag, kb, kl, xl), (data, arr, nref))

    def _exchange(self, op: int, key: Any, value: Any, what: str) -> tuple[Any, bool]:
        """A write that answers with what key held before: (that value,
        True), or, when key was absent, (value, False) -- load_or_store
        stored value; swap and load_and_delete pass None."""
        k = _key(key)
        enc = None if op == _LOAD_AND_DELETE else self._encode(value)
        rt, b = self._rt_bufs()
        r = self._write(rt, b, op, k, enc)
        if r == WOULDBLOCK:
            return (value if op == _LOAD_OR_STORE else None), False
        return self._take(rt, b, r, what), True

    def load_or_store(self, key: Any, value: Any) -> tuple[Any, bool]:
        """The existing value and True if key is present; else store value
        and return (value, False)."""
        return self._exchange(_LOAD_OR_STORE, key, value, "map.load_or_store")

    def load_and_delete(self, key: Any) -> tuple[Any, bool]:
        """Delete key; (its value, True), or (None, False) if it was absent."""
        return self._exchange(_LOAD_AND_DELETE, key, None, "map.load_and_delete")

    def delete(self, key: Any) -> None:
        """Delete key (nothing happens if it is absent)."""
        k = _key(key)
        rt, b = self._rt_bufs()
        self._write(rt, b, _DELETE, k, None)

    def swap(self, key: Any, value: Any) -> tuple[Any, bool]:
        """Set the value for key; (the previous value, True), or (None,
        False) if there was none."""
        return self._exchange(_SWAP, key, value, "map.swap")

    def _compare(self, key: Any, old: Any, op: int, new: Any) -> bool:
        """compare_and_swap / compare_and_delete, two foreign calls: load the
        current value and its ticket (the shard's change count when it was
        set), compare in Python, then write only if the ticket still holds
        (else something changed the key in between: look again)."""
        k = _key(key)
        enc = self._encode(new) if op == _CAS else None  # EncodeError before anything
        tag, kb, kl, _ = k
        while True:
            rt, b = self._rt_bufs()
            r = _load_fast(rt.cbase, self._c, tag, kb, kl, b.obuf, rt.c_ocap, b.out)
            if r == WOULDBLOCK:
                return False
            seq = ctypes.c_uint64(b.out[3])  # before the decode, which may run code
            cur = self._take(rt, b, r, "map.compare_and_swap")
            if not (cur == old):
                return False
            rt, b = self._rt_bufs()
            if self._write(rt, b, op, k, enc, seq) == OK:
                return True

    def compare_and_swap(self, key: Any, old: Any, new: Any) -> bool:
        """Swap in new if the current value == old; True if it did (False
        when key is absent)."""
        return self._compare(key, old, _CAS, new)

    def compare_and_delete(self, key: Any, old: Any) -> bool:
        """Delete key if its value == old; True if it did (False when key is
        absent)."""
        return self._compare(key, old, _CAD, None)

    def range(self, fn: Callable[[Any, Any], Any]) -> None:
        """Call fn(key, value) for each entry until fn returns False.

        Go's Range: each key is seen at most once, but the whole is no
        consistent snapshot -- one shard is copied at a time, so a key
        stored or deleted concurrently (by fn too) may or may not be seen,
        with any value it had during the call.  fn runs with no lock held:
        it may use the map."""
        if not callable(fn):
            raise TypeError(f"Map.range: fn must be callable, got {type(fn).__name__}")
        start = 0
        while start < _NSHARD:
            rt, b = self._rt_bufs()
            r = lib.pg_map_range(rt.base, self._off, start, b.obuf, rt.OBUF, b.out)
            start = b.out[2]
            if r == BIG:
                data = rt.arena.read(b.out[0], b.out[1])
                lib.pg_mfree(rt.base, b.out[0])
            else:
                check(r, "map.range")
                data = bytes(b.obuf_mv[:r])
            for key, value in self._records(rt, data):
                if fn(key, value) is False:
                    return

    def _records(self, rt: Any, data: bytes) -> list[tuple[Any, Any]]:
        """Decode a batch of range records, every one before fn sees any (each
        decode adopts the references C took for its handles; if one fails,
        the rest are given back)."""
        out = []
        pos, n = 0, len(data)
        unpack = _REC.unpack_from
        while pos < n:
            ktag, klen, nref, _, vlen = unpack(data, pos)
            p = pos + _REC.size + 8 * nref
            kend = p + klen
            vstart = p + ((klen + 7) & ~7)
            nxt = vstart + ((vlen + 7) & ~7)
            try:
                key = _key_of(ktag, data[p:kend])
                value = self._decode(data[vstart : vstart + vlen])
            except BaseException:
                self._drop_records(rt, data, nxt)
                raise
            out.append((key, value))
            pos = nxt
        return out

    def _drop_records(self, rt: Any, data: bytes, pos: int) -> None:
        refs: list[int] = []
        while pos < len(data):
            _, klen, nref, _, vlen = _REC.unpack_from(data, pos)
            p = pos + _REC.size
            refs.extend(struct.unpack_from(f"<{nref}Q", data, p))
            pos = p + 8 * nref + ((klen + 7) & ~7) + ((vlen + 7) & ~7)
        for r in refs:
            rt.decref_later(r)

    def clear(self) -> None:
        """Delete every entry (Go 1.23's Clear; shard by shard: a store racing
        the clear may survive it)."""
        rt = self._live_rt()
        check(lib.pg_map_clear(rt.base, self._off), "map.clear")
