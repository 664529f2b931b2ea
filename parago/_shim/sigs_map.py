"""ctypes signatures of the shim's entry points for pg.Map (shm/map.c).

Merged into the one table in ``parago/_shim/__init__.py`` (argtypes and
restype are declared once, at load).  None of them waits (a shard lock is
held for pointer work only), so ``BLOCKING`` is empty.
"""

from __future__ import annotations

from ctypes import c_char_p, c_int, c_int64, c_uint32, c_uint64, c_void_p

from ._ctypes import u64p

SIGS: dict[str, tuple[list, object]] = {
    "pg_map_new": ([c_void_p], c_int64),
    "pg_map_len": ([c_void_p, c_uint64], c_int64),
    "pg_map_clear": ([c_void_p, c_uint64], c_int64),
    "pg_map_load": ([c_void_p, c_uint64, c_uint32, c_char_p, c_uint32, c_void_p, c_uint64, u64p], c_int64),
    "pg_map_write": (
        [
            c_void_p,  # base
            c_uint64,  # map
            c_char_p,  # key: canonical bytes, then exact bytes
            c_uint32,  # klen
            c_char_p,  # value bytes
            c_uint64,  # vlen
            c_int,  # op (MAP_*)
            c_uint32,  # key tag (MK_*)
            c_uint32,  # xlen
            c_void_p,  # handle offsets inside the value (u64 each)
            c_uint32,  # how many
            c_uint64,  # seq (MAP_CAS / MAP_CAD)
            c_void_p,  # obuf
            c_uint64,  # ocap
            u64p,  # out
        ],
        c_int64,
    ),
    "pg_map_range": ([c_void_p, c_uint64, c_uint32, c_void_p, c_uint64, u64p], c_int64),
}
BLOCKING: set[str] = set()
