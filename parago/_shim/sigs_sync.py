"""ctypes signatures of the shim's entry points for Go 1.21-1.23 sync and
context additions: And/Or, the 32-bit atomics, atomic.Value
(shm/atomics.c) and context causes (shm/context.c).

Merged into the one table in ``parago/_shim/__init__.py`` (argtypes and
restype are declared once, at load).  ``BLOCKING``: the entry points that
can wait, so callers use the GIL-releasing ``blocking`` handle for them.
"""

from __future__ import annotations

from ctypes import c_char_p, c_int, c_int64, c_uint32, c_uint64, c_void_p

from ._ctypes import u64p

SIGS: dict[str, tuple[list, object]] = {
    # atomics.c
    "pg_atomic_and": ([c_void_p, c_uint64, c_int64], c_int64),
    "pg_atomic_or": ([c_void_p, c_uint64, c_int64], c_int64),
    "pg_atomic_add32": ([c_void_p, c_uint64, c_int64, c_int], c_int64),
    "pg_value_load": ([c_void_p, c_uint64, c_void_p, c_uint64, u64p], c_int64),
    "pg_value_swap": ([c_void_p, c_uint64, c_char_p, c_uint64, c_int64, u64p], c_int64),
    # context.c (causes) and timer.c's cause-taking forms
    "pg_cause_new": ([c_void_p, c_char_p, c_uint64], c_int64),
    "pg_ctx_cause": ([c_void_p, c_uint64, u64p], c_int),
    "pg_ctx_new_cause": ([c_void_p, c_int, c_uint64, c_uint64, c_int64, c_uint64], c_int64),
    "pg_ctx_cancel_cause": ([c_void_p, c_uint64, c_uint32, c_uint64], c_int64),
}
# pg_ctx_cancel_cause takes the context and channel locks of every P, as
# pg_ctx_cancel (it may wait for another P's holder)
BLOCKING: set[str] = {"pg_ctx_cancel_cause"}
