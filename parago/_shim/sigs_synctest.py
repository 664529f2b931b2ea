"""ctypes signatures of the shim's entry points for synctest's virtual clock (shm/synctest.c).

Merged into the one table in ``parago/_shim/__init__.py`` (argtypes and
restype are declared once, at load).  None of them waits.
"""

from __future__ import annotations

from ctypes import c_double, c_int, c_uint64, c_void_p

SIGS: dict[str, tuple[list, object]] = {
    "pg_vclock_bind": ([c_void_p, c_int], None),
    "pg_vclock_now": ([], c_uint64),
    "pg_vclock_wall": ([], c_double),
    "pg_vclock_next": ([c_void_p], c_uint64),
    "pg_vclock_set": ([c_void_p, c_uint64], None),
    "pg_vwait_set": ([c_void_p, c_uint64], c_int),
    "pg_vwait_take": ([c_void_p, c_uint64], c_uint64),
}
BLOCKING: set[str] = set()
