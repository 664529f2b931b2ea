"""ctypes signatures of the shim's entry points for owner-tagged locks and the death watch (shm/watch.c).

Merged into the one table in ``parago/_shim/__init__.py`` (argtypes and
restype are declared once, at load).  ``BLOCKING``: the entry points that
can wait, so callers use the GIL-releasing ``blocking`` handle for them.

``pg_rw_writer_gone`` and ``pg_sema_kick`` now return a status (PG_OK or
PG_LOST): their entries here replace the older ``None`` ones.
"""

from __future__ import annotations

from ctypes import c_char_p, c_int, c_int64, c_uint32, c_uint64, c_void_p  # noqa: F401

from ._ctypes import u32p, u64p  # noqa: F401

SIGS: dict[str, tuple[list, object]] = {
    # the lock word: who holds it
    "pg_set_self": ([c_int], None),
    "pg_lock_owner": ([c_uint32], c_int64),
    "pg_lock_tag": ([c_int], c_uint32),
    "pg_lock_at": ([c_void_p, c_uint64], c_int64),
    "pg_unlock_at": ([c_void_p, c_uint64], None),
    "pg_lock_nslow": ([], c_uint64),
    # the death watch: P0's pidfds, every other P's death pipe
    "pg_watch_start": ([c_void_p, c_void_p, c_void_p, c_int], c_int64),
    "pg_watch_stop": ([], None),
    "pg_deathpipe_watch": ([c_void_p, c_int], c_int64),
    # teardown: a P leaves the run (marked gone); the sysmon's bounded join
    "pg_p_leave": ([c_void_p, c_int], None),
    "pg_sysmon_join": ([c_uint64], c_int),
    # sync.c entry points that lock and used to return nothing
    "pg_rw_writer_gone": ([c_void_p, c_uint64], c_int64),
    "pg_sema_kick": ([c_void_p, c_uint64], c_int64),
}
BLOCKING: set[str] = {"pg_lock_at", "pg_watch_stop", "pg_sysmon_join"}
