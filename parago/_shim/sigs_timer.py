"""ctypes signatures of the shim's entry points for timers, contexts and the C sysmon thread (shm/timer.c, shm/sysmon.c).

Merged into the one table in ``parago/_shim/__init__.py`` (argtypes and
restype are declared once, at load).  ``BLOCKING``: the entry points that
can wait, so callers use the GIL-releasing ``blocking`` handle for them.
"""

from __future__ import annotations

from ctypes import c_char_p, c_int, c_int64, c_uint32, c_uint64, c_void_p

SIGS: dict[str, tuple[list, object]] = {
    # timer.c: timers (delays and periods are ns)
    "pg_timer_new": ([c_void_p, c_int, c_uint32, c_uint32, c_uint64, c_uint64, c_uint64], c_int64),
    "pg_timer_chan_new": ([c_void_p, c_int, c_uint32, c_uint32, c_uint64, c_uint64], c_int64),
    "pg_timer_func_new": (
        [c_void_p, c_int, c_char_p, c_uint64, c_void_p, c_uint32, c_uint64, c_uint64, c_uint64],
        c_int64,
    ),
    "pg_timer_stop": ([c_void_p, c_uint64], c_int),
    "pg_timer_reset": ([c_void_p, c_int, c_uint64, c_uint64, c_uint64], c_int64),
    "pg_sleep": ([c_void_p, c_int, c_uint64, c_uint64, c_uint32], c_int64),
    "pg_sleep_done": ([c_void_p, c_uint64], c_int),
    # timer.c: contexts
    "pg_ctx_new": ([c_void_p, c_int, c_uint64, c_uint64, c_int64], c_int64),
    "pg_ctx_cancel": ([c_void_p, c_uint64, c_uint32], c_int64),
    # sysmon.c
    "pg_sysmon_start": ([c_void_p, c_int], c_int),
    "pg_sysmon_stop": ([], None),
    "pg_timers_release": ([c_void_p, c_int], None),
    "pg_sysreq_take": ([c_void_p, c_int], c_uint32),
}
# pg_sysmon_stop joins the sysmon thread; pg_ctx_cancel takes the context
# and channel locks of every P (it may wait for another P's holder)
BLOCKING: set[str] = {"pg_sysmon_stop", "pg_ctx_cancel"}
