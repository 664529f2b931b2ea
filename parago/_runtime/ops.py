"""The shim's operations as the API modules see them (STYLE "Layers").

The API modules (parago/*.py) never import ``parago._shim``: they reach the
C functions through the three handles re-exported here, by their C names
(``lib.pg_chan_send``, ``fast.pg_chan_send``; the one table of them is
parago/_shim/cdecl.py), turn statuses into exceptions with :func:`check`
(the one map, ``_shim/status.py``) and read shared fields through
:mod:`parago._shim.views` re-exported as ``views``.  ``fast`` calls take
prebuilt ``c_void_p``/``c_uint64`` arguments (no argtypes: one foreign
call, no conversion); ``lib`` converts its arguments (any Python int);
both keep the GIL (they never wait: a blocking operation parks the
goroutine instead, see park.py).  ``blocking`` releases the GIL, for the
calls cdecl.py marks ``waits=True`` (pg_ctx_cancel_cause).

Owns too: the constants the API modules use by name (mutex flags, select
cases, pg.Map ops), a prebuilt c_uint64 zero, and :func:`incref_many`.
"""

from __future__ import annotations

import ctypes

from .._shim import CONST, MAXP, SyncKind, Wake, blocking, fast, lib, views
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

c_zero = ctypes.c_uint64(0)  # a prebuilt 0 for the fast forms

# Mutex lock flags (shm/layout.h PG_MUTEX_LIST)
MX_TRY, MX_RETRY = CONST["MX_TRY"], CONST["MX_RETRY"]

# select: case directions and result kinds (shm/layout.h PG_SELECT_LIST)
SELDIR_NIL, SELDIR_RECV, SELDIR_SEND = CONST["SELDIR_NIL"], CONST["SELDIR_RECV"], CONST["SELDIR_SEND"]
SEL_VALUE, SEL_BLOCK, SEL_CLOSED = CONST["SEL_VALUE"], CONST["SEL_BLOCK"], CONST["SEL_CLOSED"]
SEL_SENT, SEL_SENDCLOSED = CONST["SEL_SENT"], CONST["SEL_SENDCLOSED"]


# ---- pg.Map (shm/map.c): op codes, key tags, range record ----
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
    "blocking",
    "check",
    "error",
    "fast",
    "lib",
    "views",
]
