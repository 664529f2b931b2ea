"""The C interface as Python sees it: every function the shim exports, declared once.

Owns: the one table of the shim's entry points (shm/*.c, each ``PG_API``
function), in the spirit of uvloop's ``includes/uv.pxd``: name, restype,
argtypes, and whether the call may wait.  This is the only place Python
names a C function's signature; parago/_shim/__init__.py configures its
three handles from it at load:

- ``lib`` (PyDLL, GIL held): every function, arguments converted;
- ``blocking`` (CDLL, GIL released during the call): every function; the
  ones marked ``waits=True`` must be called through it outside tests (they
  wait for another P's lock holder, a thread, or a timeout);
- ``fast`` (PyDLL, restype only, no argument conversion): the functions
  that never wait, for hot paths that pass prebuilt ctypes arguments.

A name the table lacks is an AttributeError on every handle; a declaration
the library lacks, or one whose types differ from its C definition (a
source checkout: parago/_shim/cproto.py reads shm/*.c), fails the import
with the function's name.  tests/shim/test_cdecl.py checks both directions
against the built library's exported symbols and the C prototypes.

Order: one block per C file, definitions in file order; each entry reads
like its C prototype (restype first).
"""

from __future__ import annotations

from ctypes import POINTER, c_char_p, c_double, c_int, c_int64, c_uint32, c_uint64, c_void_p
from typing import Any, NamedTuple

u64p = POINTER(c_uint64)
u32p = POINTER(c_uint32)


class Decl(NamedTuple):
    """One C entry point."""

    name: str
    restype: Any  # a ctypes type, or None for void
    argtypes: tuple[Any, ...]
    waits: bool  # may wait (a lock another P holds, a thread, a timeout): call through ``blocking``


def _d(restype: Any, name: str, *argtypes: Any, waits: bool = False) -> Decl:
    return Decl(name, restype, argtypes, waits)


DECLS: tuple[Decl, ...] = (
    # ---- arena.c
    _d(c_int, "pg_layout_entry", c_int, POINTER(c_char_p), POINTER(c_char_p), u64p, u64p),
    _d(c_int, "pg_const_entry", c_int, POINTER(c_char_p), POINTER(c_int64)),
    _d(c_int, "pg_waitreason_entry", c_int, POINTER(c_int64), POINTER(c_char_p)),
    _d(c_uint32, "pg_layout_hash"),
    _d(c_int64, "pg_arena_init", c_void_p, c_int, c_uint64, c_uint64, c_uint32),
    _d(c_int64, "pg_arena_attach", c_void_p, c_int, u32p, u32p),
    _d(None, "pg_set_wakefd", c_int, c_int),
    _d(c_int64, "pg_malloc", c_void_p, c_uint64),
    _d(None, "pg_mfree", c_void_p, c_uint64),
    _d(c_int64, "pg_store_bytes", c_void_p, c_char_p, c_uint64),
    _d(c_int, "pg_panic_record", c_void_p, c_char_p, c_uint64),
    # ---- atomics.c
    _d(c_int64, "pg_atomic_and", c_void_p, c_uint64, c_int64),
    _d(c_int64, "pg_atomic_or", c_void_p, c_uint64, c_int64),
    _d(c_int64, "pg_atomic_add32", c_void_p, c_uint64, c_int64, c_int),
    _d(c_int64, "pg_value_load", c_void_p, c_uint64, c_void_p, c_uint64, u64p),
    _d(c_int64, "pg_value_swap", c_void_p, c_uint64, c_char_p, c_uint64, c_int64, u64p),
    # ---- chan.c
    _d(c_int64, "pg_chan_new", c_void_p, c_uint32, c_char_p, c_uint64),
    _d(c_int64, "pg_chan_send", c_void_p, c_uint64, c_uint64, c_char_p, c_uint64, c_int),
    _d(c_int64, "pg_chan_recv", c_void_p, c_uint64, c_uint64, c_int, c_void_p, c_uint64, u64p),
    _d(c_int64, "pg_chan_recv_finish", c_void_p, c_uint64, c_void_p, c_uint64, u64p),
    _d(c_int64, "pg_chan_close", c_void_p, c_uint64),
    _d(c_int64, "pg_chan_send_many", c_void_p, c_uint64, c_uint64, c_void_p, c_void_p, c_uint64, c_int, u64p),
    _d(c_int64, "pg_chan_recv_many", c_void_p, c_uint64, c_uint64, c_uint64, c_int, c_void_p, c_uint64, u64p),
    _d(
        c_int64,
        "pg_select",
        c_void_p,
        c_uint64,
        c_char_p,
        c_uint32,
        c_char_p,
        c_int,
        c_uint64,
        c_void_p,
        c_uint64,
        u64p,
    ),
    _d(c_int64, "pg_select_finish", c_void_p, c_uint64, c_char_p, c_uint32, c_void_p, c_uint64, u64p),
    # ---- context.c
    _d(c_int64, "pg_cause_new", c_void_p, c_char_p, c_uint64),
    _d(c_int, "pg_ctx_cause", c_void_p, c_uint64, u64p),
    _d(c_int64, "pg_ctx_new_cause", c_void_p, c_int, c_uint64, c_uint64, c_int64, c_uint64),
    _d(c_int64, "pg_ctx_new", c_void_p, c_int, c_uint64, c_uint64, c_int64),
    # a cancel takes the context lock and every reached done channel's lock:
    # it may wait for another P's holder
    _d(c_int64, "pg_ctx_cancel", c_void_p, c_uint64, c_uint32, waits=True),
    _d(c_int64, "pg_ctx_cancel_cause", c_void_p, c_uint64, c_uint32, c_uint64, waits=True),
    # ---- lock.c
    _d(None, "pg_set_self", c_int),
    _d(c_int64, "pg_lock_owner", c_uint32),
    _d(c_uint32, "pg_lock_tag", c_int),
    _d(c_int64, "pg_lock_at", c_void_p, c_uint64, waits=True),
    _d(None, "pg_unlock_at", c_void_p, c_uint64),
    _d(c_uint64, "pg_lock_nslow"),
    # ---- map.c
    _d(c_int64, "pg_map_new", c_void_p),
    _d(c_int64, "pg_map_clear", c_void_p, c_uint64),
    _d(c_int64, "pg_map_len", c_void_p, c_uint64),
    _d(c_int64, "pg_map_load", c_void_p, c_uint64, c_uint32, c_char_p, c_uint32, c_void_p, c_uint64, u64p),
    _d(
        c_int64,
        "pg_map_write",
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
    ),
    _d(c_int64, "pg_map_range", c_void_p, c_uint64, c_uint32, c_void_p, c_uint64, u64p),
    # ---- sched.c
    _d(None, "pg_seed", c_uint64),
    _d(None, "pg_set_steal_age", c_uint64),
    _d(None, "pg_wakep_of", c_void_p, c_int),
    _d(None, "pg_wake_idle", c_void_p, c_int),
    _d(None, "pg_wake_all", c_void_p),
    _d(None, "pg_park_plain", c_void_p, c_uint64, c_uint32, c_int),
    _d(None, "pg_unpark_local", c_void_p, c_uint64, c_int),
    _d(c_int, "pg_park_cancel", c_void_p, c_uint64),
    _d(c_int, "pg_thread_park", c_void_p, c_uint64, c_uint64, waits=True),
    _d(
        c_int64,
        "pg_go",
        c_void_p,
        c_int,
        c_char_p,
        c_uint64,
        c_uint32,
        c_uint32,
        c_uint64,
        c_uint64,
        c_void_p,
        c_uint32,
        c_void_p,
    ),
    _d(c_int64, "pg_gnew_running", c_void_p, c_int, c_uint32, c_uint64),
    _d(None, "pg_gexit", c_void_p, c_uint64),
    _d(c_uint32, "pg_drop_unstarted", c_void_p),
    _d(c_int64, "pg_gstart", c_void_p, c_int, c_uint64, c_void_p, c_uint64, u64p),
    _d(c_uint64, "pg_findrunnable", c_void_p, c_int, c_uint64, c_void_p, c_uint64, c_void_p),
    _d(c_uint64, "pg_findready", c_void_p, c_int, c_uint64),
    _d(c_int, "pg_p_has_runnable", c_void_p, c_int),
    _d(c_uint64, "pg_idle_lost"),
    _d(c_uint64, "pg_p_idle", c_void_p, c_int, c_uint64, waits=True),
    _d(None, "pg_p_awake", c_void_p, c_int),
    # ---- sync.c
    _d(c_int64, "pg_sync_new", c_void_p, c_uint32, c_int64),
    _d(c_int64, "pg_buffer_new", c_void_p, c_uint64),
    _d(c_int64, "pg_counter_new", c_void_p),
    _d(c_uint32, "pg_obj_incref", c_void_p, c_uint64),
    _d(None, "pg_obj_incref_many", c_void_p, c_void_p, c_uint32),
    _d(None, "pg_obj_decref_many", c_void_p, c_void_p, c_uint32),
    _d(c_uint32, "pg_obj_decref", c_void_p, c_uint64),
    _d(c_int64, "pg_wg_add", c_void_p, c_uint64, c_int64),
    _d(c_int64, "pg_wg_wait", c_void_p, c_uint64, c_uint64),
    _d(c_int64, "pg_mutex_trylock", c_void_p, c_uint64),
    _d(c_int64, "pg_mutex_lock", c_void_p, c_uint64, c_uint64, c_int, c_uint64),
    _d(c_int64, "pg_mutex_unlock", c_void_p, c_uint64),
    _d(c_int64, "pg_rw_rlock", c_void_p, c_uint64, c_uint64, c_int),
    _d(c_int64, "pg_rw_runlock", c_void_p, c_uint64),
    _d(c_int64, "pg_rw_lock", c_void_p, c_uint64, c_uint64, c_int),
    _d(c_int64, "pg_rw_unlock", c_void_p, c_uint64),
    _d(c_int64, "pg_rw_writer_gone", c_void_p, c_uint64),
    _d(c_int64, "pg_sema_acquire", c_void_p, c_uint64, c_uint64, c_int64, c_int),
    _d(c_int64, "pg_sema_release", c_void_p, c_uint64, c_int64),
    _d(c_int64, "pg_sema_kick", c_void_p, c_uint64),
    _d(c_int64, "pg_cond_enqueue", c_void_p, c_uint64, c_uint64),
    _d(c_int64, "pg_cond_signal", c_void_p, c_uint64, c_int),
    _d(c_int64, "pg_once_begin", c_void_p, c_uint64, c_uint64, c_void_p, c_uint64, u64p),
    _d(c_int64, "pg_once_done", c_void_p, c_uint64, c_char_p, c_uint64),
    _d(c_int64, "pg_atomic_load", c_void_p, c_uint64),
    _d(None, "pg_atomic_store", c_void_p, c_uint64, c_int64),
    _d(c_int64, "pg_atomic_add", c_void_p, c_uint64, c_int64),
    _d(c_int64, "pg_atomic_swap", c_void_p, c_uint64, c_int64),
    _d(c_int, "pg_atomic_cas", c_void_p, c_uint64, c_int64, c_int64),
    _d(None, "pg_word_add", c_void_p, c_uint64, c_int64),
    # ---- synctest.c
    _d(None, "pg_vclock_bind", c_void_p, c_int),
    _d(c_uint64, "pg_vclock_now"),
    _d(c_double, "pg_vclock_wall"),
    _d(c_uint64, "pg_vclock_next", c_void_p),
    _d(None, "pg_vclock_set", c_void_p, c_uint64),
    _d(c_int, "pg_vwait_set", c_void_p, c_uint64),
    _d(c_uint64, "pg_vwait_take", c_void_p, c_uint64),
    # ---- sysmon.c
    _d(c_int, "pg_sysmon_start", c_void_p, c_int),
    _d(c_int, "pg_sysmon_join", c_uint64, waits=True),
    _d(c_uint32, "pg_sysreq_take", c_void_p, c_int),
    # ---- timer.c
    _d(None, "pg_timers_release", c_void_p, c_int),
    _d(c_int64, "pg_timer_new", c_void_p, c_int, c_uint32, c_uint32, c_uint64, c_uint64, c_uint64),
    _d(c_int64, "pg_timer_chan_new", c_void_p, c_int, c_uint32, c_uint32, c_uint64, c_uint64),
    _d(
        c_int64,
        "pg_timer_func_new",
        c_void_p,
        c_int,
        c_char_p,
        c_uint64,
        c_void_p,
        c_uint32,
        c_uint64,
        c_uint64,
        c_uint64,
    ),
    _d(c_int, "pg_timer_stop", c_void_p, c_uint64),
    _d(c_int64, "pg_timer_reset", c_void_p, c_int, c_uint64, c_uint64, c_uint64),
    _d(c_int64, "pg_sleep", c_void_p, c_int, c_uint64, c_uint64, c_uint32),
    _d(c_int, "pg_sleep_done", c_void_p, c_uint64),
    # ---- watch.c
    _d(c_int64, "pg_watch_start", c_void_p, c_void_p, c_void_p, c_int),
    _d(None, "pg_watch_stop", waits=True),
    _d(c_int64, "pg_deathpipe_watch", c_void_p, c_int),
    _d(None, "pg_p_leave", c_void_p, c_int),
)

BY_NAME: dict[str, Decl] = {d.name: d for d in DECLS}
WAITS: frozenset[str] = frozenset(d.name for d in DECLS if d.waits)
