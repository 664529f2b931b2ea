"""ctypes signatures of the shim's entry points for scheduling: placement, inboxes, preemption (shm/sched.c).

Merged into the one table in ``parago/_shim/__init__.py`` (argtypes and
restype are declared once, at load).  ``BLOCKING``: the entry points that
can wait, so callers use the GIL-releasing ``blocking`` handle for them.
"""

from __future__ import annotations

from ctypes import c_char_p, c_int, c_int64, c_uint32, c_uint64, c_void_p  # noqa: F401

from ._ctypes import u32p, u64p  # noqa: F401

SIGS: dict[str, tuple[list, object]] = {
    "pg_set_steal_age": ([c_uint64], None),
    "pg_wake_idle": ([c_void_p, c_int], None),
    "pg_p_has_runnable": ([c_void_p, c_int], c_int),
    "pg_idle_lost": ([], c_uint64),
    "pg_findready": ([c_void_p, c_int, c_uint64], c_uint64),
}
BLOCKING: set[str] = set()
