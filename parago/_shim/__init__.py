"""ctypes bindings of the C shim (shm/), loaded once per process.

Owns: the library handle, every entry point's argtypes/restype (declared
once, here), the constant and layout tables exported by C, and the single
place where status codes become exceptions (:func:`check`).

Two handles onto the same library: ``lib`` is a ``PyDLL`` (the GIL stays
held: cheaper, for the calls that never block), ``blocking`` a ``CDLL``
(releases the GIL) for the calls that wait or spin.
"""

from __future__ import annotations

import ctypes
import enum
import os
from ctypes import POINTER, c_char_p, c_int, c_int64, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any

from . import _build

_HERE = Path(__file__).resolve().parent
_SHM = _HERE.parents[1] / "shm"


def _find_library() -> Path:
    env = os.environ.get("PARAGO_SHIM")
    if env:
        return Path(env)
    lib = _HERE / _build.LIBNAME
    if _SHM.is_dir() and _build.stale(_SHM, lib):
        # a source checkout: (re)build next to the bindings
        _build.build(_SHM, lib)
    return lib


_path = _find_library()
lib = ctypes.PyDLL(str(_path))
blocking = ctypes.CDLL(str(_path))
# The hot paths call through ``fast``: the same functions with restype set
# but no argtypes, so ctypes skips per-argument conversion (DESIGN §3a:
# ~270 ns instead of ~450-900 ns).  Callers pass only prebuilt ctypes
# objects (c_void_p base, c_uint64 offsets), bytes, ctypes buffers, and
# Python ints for parameters that are C ``int``/small lengths (< 2**31).
fast = ctypes.PyDLL(str(_path))

from . import sigs_fault, sigs_map, sigs_sched, sigs_sync, sigs_synctest, sigs_timer  # noqa: E402
from ._ctypes import u32p, u64p  # noqa: E402

_SIGS: dict[str, tuple[list, object]] = {
    # arena.c
    "pg_layout_entry": ([c_int, POINTER(c_char_p), POINTER(c_char_p), u64p, u64p], c_int),
    "pg_const_entry": ([c_int, POINTER(c_char_p), POINTER(c_int64)], c_int),
    "pg_waitreason_entry": ([c_int, POINTER(c_int64), POINTER(c_char_p)], c_int),
    "pg_layout_hash": ([], c_uint32),
    "pg_arena_init": ([c_void_p, c_int, c_uint64, c_uint64, c_uint32], c_int64),
    "pg_arena_attach": ([c_void_p, c_int, u32p, u32p], c_int64),
    "pg_set_wakefd": ([c_int, c_int], None),
    "pg_malloc": ([c_void_p, c_uint64], c_int64),
    "pg_mfree": ([c_void_p, c_uint64], None),
    "pg_store_bytes": ([c_void_p, c_char_p, c_uint64], c_int64),
    "pg_panic_record": ([c_void_p, c_char_p, c_uint64], c_int),
    # sched.c
    "pg_seed": ([c_uint64], None),
    "pg_wake_all": ([c_void_p], None),
    "pg_wakep_of": ([c_void_p, c_int], None),
    "pg_go": (
        [c_void_p, c_int, c_char_p, c_uint64, c_uint32, c_uint32, c_uint64, c_uint64, c_void_p, c_uint32, c_void_p],
        c_int64,
    ),
    "pg_gnew_running": ([c_void_p, c_int, c_uint32, c_uint64], c_int64),
    "pg_gexit": ([c_void_p, c_uint64], None),
    "pg_gstart": ([c_void_p, c_int, c_uint64, c_void_p, c_uint64, u64p], c_int64),
    "pg_findrunnable": ([c_void_p, c_int, c_uint64, c_void_p, c_uint64, c_void_p], c_uint64),
    "pg_p_idle": ([c_void_p, c_int, c_uint64], c_uint64),
    "pg_p_awake": ([c_void_p, c_int], None),
    "pg_park_plain": ([c_void_p, c_uint64, c_uint32, c_int], None),
    "pg_unpark_local": ([c_void_p, c_uint64, c_int], None),
    "pg_park_cancel": ([c_void_p, c_uint64], c_int),
    "pg_thread_park": ([c_void_p, c_uint64, c_uint64], c_int),
    # chan.c
    "pg_chan_new": ([c_void_p, c_uint32, c_char_p, c_uint64], c_int64),
    "pg_chan_send": ([c_void_p, c_uint64, c_uint64, c_char_p, c_uint64, c_int], c_int64),
    "pg_chan_recv": ([c_void_p, c_uint64, c_uint64, c_int, c_void_p, c_uint64, u64p], c_int64),
    "pg_chan_recv_finish": ([c_void_p, c_uint64, c_void_p, c_uint64, u64p], c_int64),
    "pg_chan_close": ([c_void_p, c_uint64], c_int64),
    "pg_chan_send_many": (
        [c_void_p, c_uint64, c_uint64, c_void_p, c_void_p, c_uint64, c_int, u64p],
        c_int64,
    ),
    "pg_chan_recv_many": (
        [c_void_p, c_uint64, c_uint64, c_uint64, c_int, c_void_p, c_uint64, u64p],
        c_int64,
    ),
    "pg_select": (
        [c_void_p, c_uint64, c_char_p, c_uint32, c_char_p, c_int, c_uint64, c_void_p, c_uint64, u64p],
        c_int64,
    ),
    "pg_select_finish": (
        [c_void_p, c_uint64, c_char_p, c_uint32, c_void_p, c_uint64, u64p],
        c_int64,
    ),
    # sync.c
    "pg_sync_new": ([c_void_p, c_uint32, c_int64], c_int64),
    "pg_buffer_new": ([c_void_p, c_uint64], c_int64),
    "pg_counter_new": ([c_void_p], c_int64),
    "pg_obj_incref": ([c_void_p, c_uint64], c_uint32),
    "pg_obj_decref": ([c_void_p, c_uint64], c_uint32),
    "pg_obj_incref_many": ([c_void_p, c_void_p, c_uint32], None),
    "pg_obj_decref_many": ([c_void_p, c_void_p, c_uint32], None),
    "pg_wg_add": ([c_void_p, c_uint64, c_int64], c_int64),
    "pg_wg_wait": ([c_void_p, c_uint64, c_uint64], c_int64),
    "pg_mutex_lock": ([c_void_p, c_uint64, c_uint64, c_int, c_uint64], c_int64),
    "pg_mutex_unlock": ([c_void_p, c_uint64], c_int64),
    "pg_rw_rlock": ([c_void_p, c_uint64, c_uint64, c_int], c_int64),
    "pg_rw_runlock": ([c_void_p, c_uint64], c_int64),
    "pg_rw_lock": ([c_void_p, c_uint64, c_uint64, c_int], c_int64),
    "pg_rw_unlock": ([c_void_p, c_uint64], c_int64),
    "pg_rw_writer_gone": ([c_void_p, c_uint64], None),
    "pg_sema_acquire": ([c_void_p, c_uint64, c_uint64, c_int64, c_int], c_int64),
    "pg_sema_release": ([c_void_p, c_uint64, c_int64], c_int64),
    "pg_sema_kick": ([c_void_p, c_uint64], None),
    "pg_cond_enqueue": ([c_void_p, c_uint64, c_uint64], c_int64),
    "pg_cond_signal": ([c_void_p, c_uint64, c_int], c_int64),
    "pg_once_begin": ([c_void_p, c_uint64, c_uint64, c_void_p, c_uint64, u64p], c_int64),
    "pg_once_done": ([c_void_p, c_uint64, c_char_p, c_uint64], c_int64),
    "pg_atomic_load": ([c_void_p, c_uint64], c_int64),
    "pg_atomic_store": ([c_void_p, c_uint64, c_int64], None),
    "pg_atomic_add": ([c_void_p, c_uint64, c_int64], c_int64),
    "pg_atomic_swap": ([c_void_p, c_uint64, c_int64], c_int64),
    "pg_atomic_cas": ([c_void_p, c_uint64, c_int64, c_int64], c_int),
    "pg_word_add": ([c_void_p, c_uint64, c_int64], None),
}

_SIGS.update(sigs_sched.SIGS)
_SIGS.update(sigs_fault.SIGS)
_SIGS.update(sigs_timer.SIGS)
_SIGS.update(sigs_synctest.SIGS)
_SIGS.update(sigs_sync.SIGS)
_SIGS.update(sigs_map.SIGS)
_BLOCKING = (
    {"pg_p_idle", "pg_thread_park"} | sigs_sched.BLOCKING | sigs_fault.BLOCKING | sigs_timer.BLOCKING | sigs_sync.BLOCKING
)

for _name, (_args, _res) in _SIGS.items():
    if not hasattr(lib, _name):
        # a table names a function this build does not have (a shim built
        # from other sources, PARAGO_SHIM): calling it raises AttributeError
        continue
    for _dll in (lib, blocking):
        _fn = getattr(_dll, _name)
        _fn.argtypes = _args
        _fn.restype = _res
    getattr(fast, _name).restype = _res


def _read_consts() -> dict[str, int]:
    out: dict[str, int] = {}
    name = c_char_p()
    val = c_int64()
    i = 0
    while lib.pg_const_entry(i, ctypes.byref(name), ctypes.byref(val)) == 0:
        out[name.value.decode()] = val.value  # type: ignore[union-attr]
        i += 1
    return out


def _read_layout() -> dict[str, dict[str, tuple[int, int]]]:
    out: dict[str, dict[str, tuple[int, int]]] = {}
    s, f = c_char_p(), c_char_p()
    off, size = c_uint64(), c_uint64()
    i = 0
    while lib.pg_layout_entry(i, ctypes.byref(s), ctypes.byref(f), ctypes.byref(off), ctypes.byref(size)) == 0:
        out.setdefault(s.value.decode(), {})[f.value.decode()] = (off.value, size.value)  # type: ignore[union-attr]
        i += 1
    return out


def _read_wait_reasons() -> dict[int, str]:
    out: dict[int, str] = {}
    val, text = c_int64(), c_char_p()
    i = 0
    while lib.pg_waitreason_entry(i, ctypes.byref(val), ctypes.byref(text)) == 0:
        out[val.value] = text.value.decode()  # type: ignore[union-attr]
        i += 1
    return out


CONST = _read_consts()
# wait reason -> Go's text (shm/layout.h PG_WAITREASON_LIST): dumps, Deadlock
WAIT_REASONS = _read_wait_reasons()
LAYOUT = _read_layout()
LAYOUT_HASH = lib.pg_layout_hash()


def _enum(name: str, prefix: str, names: list[str]) -> type[enum.IntEnum]:
    return enum.IntEnum(name, {n[len(prefix) :] if n.startswith(prefix) else n: CONST[n] for n in names})  # type: ignore[return-value]


# the state machines, generated from the C constant lists (STYLE 3)
Gstatus: Any = _enum("Gstatus", "G_", [n for n in CONST if n.startswith("G_")])
Park: Any = _enum("Park", "PARK_", [n for n in CONST if n.startswith("PARK_")])
Wake: Any = _enum("Wake", "WAKE_", [n for n in CONST if n.startswith("WAKE_")])
Pstate: Any = _enum("Pstate", "P_", [n for n in CONST if n.startswith("P_")])
GKind: Any = _enum("GKind", "GK_", [n for n in CONST if n.startswith("GK_")])
SyncKind: Any = _enum("SyncKind", "SK_", [n for n in CONST if n.startswith("SK_")])
Status: Any = _enum(
    "Status", "PG_", [n for n in CONST if n.startswith("PG_") and CONST[n] <= 0 and n not in ("PG_ABI_VERSION",)]
)

OK = CONST["PG_OK"]
PARKED = CONST["PG_PARKED"]
WOULDBLOCK = CONST["PG_WOULDBLOCK"]
CLOSED = CONST["PG_CLOSED"]
NOMEM = CONST["PG_NOMEM"]
BIG = CONST["PG_BIG"]
NEGATIVE = CONST["PG_NEGATIVE"]
UNLOCKED = CONST["PG_UNLOCKED"]
INVAL = CONST["PG_INVAL"]
RUNFN = CONST["PG_RUNFN"]
BADLAYOUT = CONST["PG_BADLAYOUT"]
MAXP = CONST["PG_MAXP"]
INLINE = CONST["PG_INLINE"]


def offset(struct: str, field: str) -> int:
    return LAYOUT[struct][field][0]


def sizeof(struct: str) -> int:
    return LAYOUT[struct]["__size__"][1]
