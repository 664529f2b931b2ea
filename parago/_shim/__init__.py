"""ctypes bindings of the C shim (shm/), loaded once per process.

Owns: loading the library (building it first in a source checkout), its
three handles ``lib``/``blocking``/``fast`` configured from the one table
of entry points (cdecl.py: name, restype, argtypes, whether it waits), the
check of that table against the library and the C sources, and the
constant, wait-reason and layout tables exported by C.  Status codes become
exceptions in status.py (:func:`check`).

``lib`` calls through a ``PyDLL`` (the GIL stays held: cheaper, for the
calls that never wait), ``blocking`` through a ``CDLL`` (releases the GIL)
for the calls cdecl.py marks ``waits=True``; ``fast`` is described below.
Each handle is a module object holding the declared functions (see
:func:`_handle`: the cheapest attribute lookup at a call site).
"""

from __future__ import annotations

import ctypes
import enum
import os
import types
from ctypes import c_char_p, c_int64, c_uint64
from pathlib import Path
from typing import Any

from . import _build, cdecl, cproto

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


def _handle(name: str, dll: ctypes.CDLL, doc: str) -> Any:
    """A handle: a module object holding the declared functions of ``dll``
    as attributes.  A module, not the ctypes library object, so that the
    attribute lookup at a call site (``lib.pg_chan_send``) is the
    interpreter's specialised module-attribute load (~8 ns; a ctypes
    library's ``__getattr__`` hook costs ~45 ns more on every call, and so
    would a module ``__getattr__``).  A name cdecl.py lacks is a plain
    AttributeError naming the function and ``parago._shim.cdecl.<handle>``."""
    h = types.ModuleType(f"parago._shim.cdecl.{name}", doc)
    h._dll = dll  # type: ignore[attr-defined]
    h._name = dll._name  # type: ignore[attr-defined]
    return h


def _check_sources() -> None:
    """In a source checkout: every declaration agrees with its C definition
    (restype and each argument, coarsely: pointer, 32/64-bit, signedness)."""
    if not _SHM.is_dir():
        return
    bad = cproto.mismatches(cdecl.DECLS, cproto.parse(_SHM))
    if bad:
        raise ImportError("parago._shim: cdecl.py does not match the C sources:\n  " + "\n  ".join(bad))


def _bind(path: Path, decls: tuple[cdecl.Decl, ...] = cdecl.DECLS) -> tuple[Any, Any, Any]:
    """The three handles onto one library, configured from cdecl.DECLS; a
    declared function the library lacks fails the import with its name."""
    pydll, cdll, fastdll = ctypes.PyDLL(str(path)), ctypes.CDLL(str(path)), ctypes.PyDLL(str(path))
    lib_ = _handle("lib", pydll, "the shim's functions, GIL held, arguments converted")
    blocking_ = _handle("blocking", cdll, "the shim's functions, GIL released during the call")
    fast_ = _handle("fast", fastdll, "the shim's functions that never wait: restype only, no conversion")
    missing = []
    for d in decls:
        try:
            fns = (pydll[d.name], cdll[d.name], fastdll[d.name])
        except AttributeError:  # dlsym found no such symbol
            missing.append(d.name)
            continue
        for h, fn in ((lib_, fns[0]), (blocking_, fns[1])):
            fn.argtypes = d.argtypes
            fn.restype = d.restype
            setattr(h, d.name, fn)
        if not d.waits:
            fns[2].restype = d.restype
            setattr(fast_, d.name, fns[2])
    if missing:
        raise ImportError(f"parago._shim: {path} does not export {', '.join(missing)} (declared in cdecl.py)")
    return lib_, blocking_, fast_


_check_sources()
lib, blocking, fast = _bind(_find_library())
# ``lib`` keeps the GIL (cheaper, for calls that never wait); ``blocking``
# releases it (cdecl's waits=True calls).  The hot paths call through
# ``fast``: the same functions with restype set but no argtypes, so ctypes
# skips per-argument conversion (DESIGN §3a: ~270 ns instead of ~450-900
# ns).  Callers pass only prebuilt ctypes objects (c_void_p base, c_uint64
# offsets), bytes, ctypes buffers, and Python ints for parameters that are
# C ``int``/small lengths (< 2**31).  ``fast`` has no waiting function.


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
