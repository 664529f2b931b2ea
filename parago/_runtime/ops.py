"""The shim's operations as the API modules see them (STYLE "Layers").

The API modules (parago/*.py) never import ``parago._shim``: they call the
C operations by the names bound here, turn statuses into exceptions with
:func:`check` (the one map, ``_shim/status.py``) and read shared fields
through :mod:`parago._shim.views` re-exported as ``views``.  Binding the
names once here keeps the fast paths at one foreign call: ``fast.*`` are
the same C functions with ``restype`` only (no argtypes: callers pass
prebuilt ``c_void_p``/``c_uint64`` arguments), ``lib.*`` convert their
arguments (any Python int); both keep the GIL (they never wait: a
blocking operation parks the goroutine instead, see park.py).
"""

from __future__ import annotations

import ctypes

from .._shim import CONST, MAXP, SyncKind, Wake, fast, lib, views
from .._shim.status import (
    BIG,
    CLOSED,
    INVAL,
    LOST,
    NEGATIVE,
    NOMEM,
    OK,
    PARKED,
    RUNFN,
    UNLOCKED,
    WOULDBLOCK,
    check,
    error,
)

# ---- the operations, fast form (no argtypes: prebuilt ctypes arguments only) ----

atomic_add_fast = fast.pg_atomic_add
chan_recv_fast = fast.pg_chan_recv
chan_recv_finish_fast = fast.pg_chan_recv_finish
chan_send_fast = fast.pg_chan_send
mutex_lock_fast = fast.pg_mutex_lock
mutex_unlock_fast = fast.pg_mutex_unlock
wg_add_fast = fast.pg_wg_add
wg_wait_fast = fast.pg_wg_wait

# ---- the operations, converting form (plain Python ints, bytes, buffers) ----

atomic_add = lib.pg_atomic_add
atomic_load = lib.pg_atomic_load
atomic_cas = lib.pg_atomic_cas
atomic_store = lib.pg_atomic_store
atomic_swap = lib.pg_atomic_swap
atomic_and = lib.pg_atomic_and
atomic_or = lib.pg_atomic_or
atomic_add32 = lib.pg_atomic_add32
value_load = lib.pg_value_load
value_swap = lib.pg_value_swap
cause_new = lib.pg_cause_new
ctx_cause = lib.pg_ctx_cause
ctx_new_cause = lib.pg_ctx_new_cause
obj_decref = lib.pg_obj_decref


def ctx_cancel_cause(base: object, off: int, code: int, cause: int) -> int:
    """pg_ctx_cancel_cause through the GIL-releasing handle (it may wait
    for a lock another P holds)."""
    from .._shim import blocking

    return blocking.pg_ctx_cancel_cause(base, off, code, cause)  # type: ignore[no-any-return]
buffer_new = lib.pg_buffer_new
chan_close = lib.pg_chan_close
chan_new = lib.pg_chan_new
chan_recv = lib.pg_chan_recv
chan_recv_finish = lib.pg_chan_recv_finish
chan_recv_many = lib.pg_chan_recv_many
chan_send = lib.pg_chan_send
chan_send_many = lib.pg_chan_send_many
cond_enqueue = lib.pg_cond_enqueue
cond_signal = lib.pg_cond_signal
counter_new = lib.pg_counter_new
mfree = lib.pg_mfree
mutex_lock = lib.pg_mutex_lock
mutex_unlock = lib.pg_mutex_unlock
obj_incref_many = lib.pg_obj_incref_many
once_begin = lib.pg_once_begin
once_done = lib.pg_once_done
park_cancel = lib.pg_park_cancel
park_plain = lib.pg_park_plain
park_cancel = lib.pg_park_cancel
c_zero = ctypes.c_uint64(0)  # a prebuilt 0 for the fast forms

# Mutex lock flags (shm/layout.h PG_MUTEX_LIST)
MX_TRY, MX_RETRY = CONST["MX_TRY"], CONST["MX_RETRY"]
rw_lock = lib.pg_rw_lock
rw_rlock = lib.pg_rw_rlock
rw_runlock = lib.pg_rw_runlock
rw_unlock = lib.pg_rw_unlock
rw_writer_gone = lib.pg_rw_writer_gone
select = lib.pg_select
select_finish = lib.pg_select_finish
sema_acquire = lib.pg_sema_acquire
sema_kick = lib.pg_sema_kick
sema_release = lib.pg_sema_release
sync_new = lib.pg_sync_new
wg_add = lib.pg_wg_add
wg_wait = lib.pg_wg_wait
word_add = lib.pg_word_add

park_plain = lib.pg_park_plain
park_cancel = lib.pg_park_cancel
c_zero = ctypes.c_uint64(0)  # a prebuilt 0 for the fast forms

# Mutex lock flags (shm/layout.h PG_MUTEX_LIST)
MX_TRY, MX_RETRY = CONST["MX_TRY"], CONST["MX_RETRY"]

# select: case directions and result kinds (shm/layout.h PG_SELECT_LIST)
SELDIR_NIL, SELDIR_RECV, SELDIR_SEND = CONST["SELDIR_NIL"], CONST["SELDIR_RECV"], CONST["SELDIR_SEND"]
SEL_VALUE, SEL_BLOCK, SEL_CLOSED = CONST["SEL_VALUE"], CONST["SEL_BLOCK"], CONST["SEL_CLOSED"]
SEL_SENT, SEL_SENDCLOSED = CONST["SEL_SENT"], CONST["SEL_SENDCLOSED"]


# ---- pg.Map (shm/map.c): its operations, op codes, key tags, range record ----
map_load_fast = fast.pg_map_load
map_write_fast = fast.pg_map_write
map_load = lib.pg_map_load
map_write = lib.pg_map_write
map_new = lib.pg_map_new
map_len = lib.pg_map_len
map_clear = lib.pg_map_clear
map_range = lib.pg_map_range
MAP_OPS = {n: v for n, v in CONST.items() if n.startswith("MAP_")}
MAP_KEYS = {n: v for n, v in CONST.items() if n.startswith("MK_")}
MAP_NSHARD = CONST["PG_MAP_NSHARD"]
# a range record (pg_maprec): its size and where its fields are
MAPREC, MAPREC_SIZE = views.map_record()


def incref_many(rt: object, offs: list[int]) -> None:
    """Take one arena reference on each object (one foreign call)."""
    import array

    arr = array.array("Q", offs)
    addr, n = arr.buffer_info()
    lib.pg_obj_incref_many(rt.base, addr, n)  # type: ignore[attr-defined]


__all__ = [
    "BIG",
    "CLOSED",
    "INVAL",
    "LOST",
    "MAXP",
    "NEGATIVE",
    "NOMEM",
    "OK",
    "PARKED",
    "RUNFN",
    "UNLOCKED",
    "WOULDBLOCK",
    "SyncKind",
    "Wake",
    "check",
    "error",
    "views",
]
