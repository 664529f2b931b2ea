"""Typed views of the arena's shared records, built from the C layout table.

Every read or write of a shared field outside C goes through here: the
layers above never do offset arithmetic (STYLE 9).  A view resolves the
field offsets once (from :data:`parago._shim.LAYOUT`) and answers either
values (``chan_cap(arena, ch)``) or, for the runtime's hot paths, an
*index* into one of the arena's typed memoryviews
(``arena.q[idx]`` / ``arena.u32[idx]`` / ``arena.i[idx]``) computed once.

    index = (record offset + field offset) // field size
"""

from __future__ import annotations

import array
from typing import Any, Callable

from . import CONST, LAYOUT, offset, sizeof

_P_BASE = offset("pg_arena", "p")
_P_SIZE = sizeof("pg_p")
SITE_MAX = CONST["PG_SITE"]


def _ix(struct: str, field: str, base: int = 0) -> int:
    off, size = LAYOUT[struct][field]
    if size not in (4, 8):
        raise TypeError(f"views: {struct}.{field} is {size} bytes, not a word")
    return (base + off) // size


def p_index(p: int, field: str) -> int:
    """Index of P p's ``field`` in ``arena.u32`` (4-byte fields) or ``arena.q``/``arena.i`` (8-byte)."""
    return _ix("pg_p", field, _P_BASE + p * _P_SIZE)


def hdr_offset(field: str) -> int:
    """Arena offset of an arena-header field (for the C calls that take one)."""
    return LAYOUT["pg_arena"][field][0]


def hdr_index(field: str) -> int:
    """Index of an arena-header field (``pg_arena``) in its word view."""
    return _ix("pg_arena", field)


def g_index(g: int, field: str) -> int:
    """Index of a G record's field (``pg_g``) in its word view."""
    return _ix("pg_g", field, g)


def g_indexer(field: str) -> tuple[int, int]:
    """(word size, field's word index in the record): G records are 16-byte
    aligned, so a G's field index is ``g // size + k`` -- for the hot paths
    that build one per goroutine."""
    off, size = LAYOUT["pg_g"][field]
    return size, off // size


def obj_index(o: int, struct: str, field: str) -> int:
    """Index of a field of the shared object at ``o`` (``pg_chan``, ``pg_sync``, ``pg_objhdr``)."""
    return _ix(struct, field, o)


# ---- values (not on hot paths) ----


def hdr(arena: Any, field: str) -> int:
    """An arena-header field's value (signed for int64 fields)."""
    off, size = LAYOUT["pg_arena"][field]
    if size == 4:
        return arena.u32[off // 4]
    return arena.i[off // 8] if field in _SIGNED_HDR else arena.q[off // 8]


_SIGNED_HDR = frozenset({"ngoroutines", "nsystem", "nparked", "ntimers"})


def p_get(arena: Any, p: int, field: str) -> int:
    i = p_index(p, field)
    return arena.u32[i] if LAYOUT["pg_p"][field][1] == 4 else arena.q[i]


def p_set(arena: Any, p: int, field: str, value: int) -> None:
    i = p_index(p, field)
    if LAYOUT["pg_p"][field][1] == 4:
        arena.u32[i] = value
    else:
        arena.q[i] = value


def g_get(arena: Any, g: int, field: str) -> int:
    i = g_index(g, field)
    return arena.u32[i] if LAYOUT["pg_g"][field][1] == 4 else arena.q[i]


def g_site(arena: Any, g: int) -> str:
    """The created-by text of G g ("" if none)."""
    off = arena.q[g_index(g, "site")]
    if not off:
        return ""
    return bytes(arena.mv[off : off + SITE_MAX]).split(b"\0", 1)[0].decode(errors="replace")


def _u32_field(struct: str, field: str) -> Callable[[Any, int], int]:
    """The reader of one 4-byte field of the shared object at ``o``:
    ``read(arena, o)``."""

    fo = _ix(struct, field) * 4  # the field's offset in the record, resolved once
    if LAYOUT[struct][field][1] != 4:
        raise TypeError(f"views: {struct}.{field} is not a 4-byte field")

    def read(arena: Any, o: int) -> int:
        return arena.u32[(o + fo) >> 2]  # type: ignore[no-any-return]

    return read


obj_gen = _u32_field("pg_objhdr", "gen")
obj_kind = _u32_field("pg_objhdr", "kind")
obj_lock = _u32_field("pg_objhdr", "lock")  # the lock word (fault tests and dumps)
chan_cap = _u32_field("pg_chan", "cap")
chan_qcount = _u32_field("pg_chan", "qcount")
chan_closed = _u32_field("pg_chan", "closed")


def chan_type(arena: Any, ch: int) -> bytes | None:
    """The pickled element type of a typed channel, or None."""
    toff = arena.q[obj_index(ch, "pg_chan", "type_off")]
    if not toff:
        return None
    return arena.read(toff, arena.q[obj_index(ch, "pg_chan", "type_len")])


def sync_index(o: int, kind: str, field: str) -> int:
    """Index in ``arena.i``/``arena.q`` of a field of a sync record's kind
    struct (``pg_wg``, ``pg_mutex``, ``pg_rw``, ``pg_sema``, ``pg_once``,
    ``pg_atom``, ``pg_buf``: the union ``pg_sync.u``)."""
    off, size = LAYOUT[kind][field]
    return (o + LAYOUT["pg_sync"]["u"][0] + off) // size


def sync_word(arena: Any, o: int, kind: str, field: str) -> int:
    """A field of a sync record's kind struct (signed)."""
    return arena.i[sync_index(o, kind, field)]


def sync_set_word(arena: Any, o: int, kind: str, field: str, v: int) -> None:
    arena.i[sync_index(o, kind, field)] = v


def sync_res_off(arena: Any, o: int) -> int:
    return arena.q[obj_index(o, "pg_sync", "res_off")]


# ---- pg.atomic.Counter: 2 * PG_MAXP cache lines of int64 shards ----
# shard p: P p's hub thread (plain stores: one writer); shard MAXP + p: the
# other threads of P p (relaxed atomic adds, pg_word_add)

_MAXP = CONST["PG_MAXP"]
_LINE = 64


def counter_add_own(arena: Any, shards: int, p: int, d: int) -> None:
    i = (shards + p * _LINE) // 8
    view = arena.i
    view[i] = ((view[i] + d + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)  # wraps like int64


def counter_thread_shard(shards: int, p: int) -> int:
    """Arena offset of the shard P p's other threads add to."""
    return shards + (_MAXP + p) * _LINE


def counter_sum(arena: Any, shards: int) -> int:
    start = shards // 8
    return sum(arena.i[start : start + 2 * _MAXP * (_LINE // 8) : _LINE // 8])


# ---- pg.Buffer: nbytes in sync.a, the data block (page aligned inside it) in res_off ----


def buffer_geometry(arena: Any, o: int, page: int) -> tuple[int, int]:
    """(nbytes, page-aligned offset of the data) of the Buffer at o."""
    nbytes = arena.i[sync_index(o, "pg_buf", "nbytes")]
    data = (arena.q[obj_index(o, "pg_sync", "res_off")] + page - 1) & ~(page - 1)
    return nbytes, data


def map_record() -> tuple[dict[str, int], int]:
    """pg.Map's range record (pg_maprec): its fields' offsets, its size."""
    return {f: o for f, (o, _) in LAYOUT["pg_maprec"].items() if f != "__size__"}, sizeof("pg_maprec")


# ---- wait queues and waiters: pg.debug.leaks, the mutex profile (racy reads, bounds-checked by the callers) ----

SUDOG_SIZE = sizeof("pg_sudog")
_G_SD = LAYOUT["pg_g"]["sd"][0]


def g_sudog(g: int) -> int:
    """Arena offset of G g's own sudog (its single-object wait)."""
    return g + _G_SD


def sudog_get(arena: Any, sd: int, field: str) -> int:
    """A field of the sudog at ``sd`` (``g``, ``next``, ``obj``, ``queued``, ``is_select`` ...)."""
    i = _ix("pg_sudog", field, sd)
    return arena.u32[i] if LAYOUT["pg_sudog"][field][1] == 4 else arena.q[i]


def obj_refcnt(arena: Any, o: int) -> int:
    """The arena reference count of the shared object at ``o``."""
    return arena.u32[obj_index(o, "pg_objhdr", "refcnt")]


def sync_waitq_first(arena: Any, o: int, q: str) -> int:
    """The first sudog of a sync record's wait queue ``q`` ("q1" or "q2"), 0 if empty."""
    return arena.q[(o + LAYOUT["pg_sync"][q][0] + LAYOUT["pg_waitq"]["first"][0]) // 8]


def payload_refs(data: bytes) -> tuple[bytes, array.array]:
    """A goroutine payload as pg_go stored it: (the encoding, the arena
    references the encoding holds) -- pg_go appends the references and
    their count (u64) to the encoding.  pickle stops at its STOP opcode, so
    a decode reads the whole payload as it is."""
    n = int.from_bytes(data[-8:], "little")
    end = len(data) - 8 - 8 * n
    return data[:end], array.array("Q", data[end : len(data) - 8])


_BLOCK_MAGIC = CONST["BLOCK_MAGIC"]
_BLOCK_HDR = sizeof("pg_block")


def _class_size(c: int) -> int:
    b = 16 << (c // 2)
    return ((b + b // 2 + 15) & ~15) if c & 1 else b  # arena.c: pg_class_size


def live_blocks(arena: Any) -> list[tuple[int, int]]:
    """Every allocated block of the arena, as (usable offset, block size):
    a walk from the header to the bump pointer (blocks are contiguous, each
    led by its pg_block header).  For diagnostics (what a run left behind);
    the Ps must be gone."""
    out = []
    off = (sizeof("pg_arena") + 63) & ~63
    end = hdr(arena, "bump")
    m_ix, c_ix = LAYOUT["pg_block"]["magic"][0] // 4, LAYOUT["pg_block"]["cls"][0] // 4
    while off < end:
        size = _class_size(arena.u32[off // 4 + c_ix])
        if arena.u32[off // 4 + m_ix] == _BLOCK_MAGIC:
            out.append((off + _BLOCK_HDR, size))
        off += size
    return out
