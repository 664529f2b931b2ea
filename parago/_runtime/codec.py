"""Copying values between Ps: encode to bytes, decode in the receiver.

DESIGN "Copies": goroutine functions, their arguments and every channel
value cross Ps as bytes.  pickle (protocol 5) first -- functions and
classes go *by reference*, which is fast and keeps ``isinstance`` working;
cloudpickle only when pickle cannot (lambdas, closures, local
definitions).  Shared-object handles pickle to (nonce, offset, generation)
and take an arena reference that the decoder consumes (handles.py).

    sender P                                  receiver P
    dumps(v): pickle -> handle.__reduce__     loads(b): pickle -> _rebuild
              (incref per handle inside)                (adopt or decref)
"""

from __future__ import annotations

import array
import contextvars
import dis
import pickle
import sys
import types
import warnings
from typing import Any

import cloudpickle

from .._errors import EncodeError
from .._shim import lib
from . import state

# the handle offsets collected by the encode (or decode) in progress: the
# reference protocol's, declared with it (handles.py); this module imports
# handles, never the reverse
from .handles import DEC_REFS, ENC_REFS, HandleMixin


class collecting:
    """``with collecting(ENC_REFS, refs):`` -- the calls inside collect into refs."""

    __slots__ = ("var", "refs", "token")

    def __init__(self, var: contextvars.ContextVar, refs: list[int]) -> None:
        self.var, self.refs = var, refs

    def __enter__(self) -> list[int]:
        self.token = self.var.set(self.refs)
        return self.refs

    def __exit__(self, *exc: Any) -> None:
        self.var.reset(self.token)


def dumps(obj: Any, what: str = "value", refs_out: list[int] | None = None) -> bytes:
    """Encode obj for another P; raises EncodeError naming what failed.

    Each handle inside gets one arena reference for the payload: taken here
    in one call, or -- with ``refs_out`` -- left to the caller, who passes
    the offsets to the C operation that publishes the payload (pg_go); an
    encode nested in another (a typed channel's handle) adds to the outer
    one's list."""
    outer = ENC_REFS.get()
    refs: list[int] = []
    with collecting(ENC_REFS, refs):
        try:
            data = pickle.dumps(obj, 5)
        except Exception:
            refs.clear()
            try:
                data = cloudpickle.dumps(obj, 5)
            except Exception as e:
                raise EncodeError(f"cannot copy {what} to another P: {type(e).__name__}: {e}{_socket_hint(e)}") from e
    if refs:
        if refs_out is not None:
            refs_out.extend(refs)
        elif outer is not None:
            outer.extend(refs)
        else:
            arr = array.array("Q", refs)
            addr, n = arr.buffer_info()
            lib.pg_obj_incref_many(state.rt.base, addr, n)
    return data


def dumps_fn(fn: Any, args: tuple, kw: dict, refs_out: list[int] | None = None) -> bytes:
    """Encode a goroutine's (fn, args, kwargs), naming the culprit on failure."""
    try:
        return dumps((fn, args, kw), "goroutine", refs_out)
    except EncodeError as e:
        culprit = _find_culprit(fn, args, kw)
        raise EncodeError(
            f"pg.go: cannot copy {culprit} to a goroutine ({e.__cause__}); "
            f"goroutines get copies of their function and arguments -- pass a channel "
            f"or another shared object instead, or use pg.go_local for what cannot be copied"
            f"{_socket_hint(e.__cause__)}"
        ) from e.__cause__


def _socket_hint(e: BaseException | None) -> str:
    """A plain socket cannot cross Ps; pg.net's Conn and Listener can."""
    if "socket" not in str(e):
        return ""
    return "; for a socket use pg.net (pg.net.listen/dial: a Conn or Listener moves to the receiving goroutine's P) or pg.go_local"


def _find_culprit(fn: Any, args: tuple, kw: dict) -> str:
    def ok(x: Any) -> bool:
        try:
            cloudpickle.dumps(x)
            return True
        except Exception:
            return False

    for i, a in enumerate(args):
        if not ok(a):
            return f"argument {i} ({_short(a)})"
    for k, v in kw.items():
        if not ok(v):
            return f"keyword argument {k!r} ({_short(v)})"
    cells = getattr(fn, "__closure__", None) or ()
    names = getattr(getattr(fn, "__code__", None), "co_freevars", ())
    for name, cell in zip(names, cells, strict=False):
        try:
            val = cell.cell_contents
        except ValueError:
            continue
        if not ok(val):
            return f"captured variable {name!r} ({_short(val)})"
    return f"the function {_short(fn)}"


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 80 else r[:77] + "..."


def loads(data: Any) -> Any:
    return pickle.loads(data)


def loads_collecting(data: Any, refs: list[int]) -> Any:
    """loads, recording the offset of every handle decoded (whose payload
    reference the decode consumed) in refs: for decoded values that are
    kept and decoded again (the goroutine start cache, a Once's result)."""
    with collecting(DEC_REFS, refs):
        return pickle.loads(data)



# ---- goroutine payload caches ----
#
# Spawning the same function with the same shared objects (the seed's
# BenchmarkScheduler, worker pools) would pickle and unpickle identical
# bytes each time.  When fn is pickled by reference and every argument is
# an immutable scalar or a handle, the payload depends only on *which*
# objects they are, so the sender caches it by identity (the cache holds
# the objects, so their ids stay theirs) and the receiver caches the
# decoded goroutine by payload bytes.  Anything else (closures, mutable
# arguments, kwargs) is encoded afresh every time.

_SCALAR_TYPES = frozenset({int, float, str, bytes, bool, type(None), complex})
_CACHE_MAX = 256


def cacheable(fn: Any, args: tuple, kw: dict) -> bool:
    if kw or len(args) > 8 or getattr(fn, "__closure__", 1) is not None:
        return False
    qn = getattr(fn, "__qualname__", "<")
    if "<" in qn or "." in qn:
        return False
    for a in args:
        if a.__class__ not in _SCALAR_TYPES and not isinstance(a, HandleMixin):
            return False
    return True


class SpawnCache:
    """Sender side: (id(fn), ids of args) -> (payload, handle offsets)."""

    def __init__(self) -> None:
        self.d: dict[tuple, tuple] = {}

    def get(self, fn: Any, args: tuple) -> tuple | None:
        return self.d.get(_key(fn, args))

    def put(self, fn: Any, args: tuple, payload: bytes, refs: list[int]) -> None:
        d = self.d
        if len(d) >= _CACHE_MAX:
            d.pop(next(iter(d)))
        d[_key(fn, args)] = (payload, tuple(refs), fn, args)


def _key(fn: Any, args: tuple) -> tuple:
    """SpawnCache's key: the identities of fn and each argument (the common
    lengths spelled out: a starred map costs twice as much per pg.go)."""
    n = len(args)
    if n == 1:
        return (id(fn), id(args[0]))
    if n == 2:
        return (id(fn), id(args[0]), id(args[1]))
    if n == 3:
        return (id(fn), id(args[0]), id(args[1]), id(args[2]))
    return (id(fn), *map(id, args))


class StartCache:
    """Receiver side: payload bytes -> (fn, args, handle offsets)."""

    def __init__(self) -> None:
        self.d: dict[bytes, tuple] = {}

    def get(self, data: bytes) -> tuple | None:
        return self.d.get(data)

    def put(self, data: bytes, fn: Any, args: tuple, refs: list[int]) -> None:
        d = self.d
        if len(d) >= _CACHE_MAX:
            d.pop(next(iter(d)))
        d[data] = (fn, args, tuple(refs))


# ---- the isolation warning (DESIGN "Copies") ----

_writes_cache: dict[types.CodeType, tuple[str, ...]] = {}
_warned_sites: set[tuple[str, int]] = set()


def captured_writes(code: types.CodeType) -> tuple[str, ...]:
    """Names of globals and captured variables the code assigns to."""
    r = _writes_cache.get(code)
    if r is None:
        names = []
        for ins in dis.get_instructions(code):
            if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                names.append(f"global {ins.argval}")
            elif ins.opname in ("STORE_DEREF", "DELETE_DEREF") and ins.argval in code.co_freevars:
                names.append(f"captured variable {ins.argval}")
        r = _writes_cache[code] = tuple(dict.fromkeys(names))
    return r


def warn_captured_writes(fn: Any, depth: int = 3) -> None:
    """Warn once per pg.go call site (``depth`` frames up from the caller
    of this function) about writes the goroutine can never share."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    names = captured_writes(code)
    if not names:
        return
    f = sys._getframe(depth)
    site = (f.f_code.co_filename, f.f_lineno)
    if site in _warned_sites:
        return
    _warned_sites.add(site)
    warnings.warn_explicit(
        f"goroutine {getattr(fn, '__qualname__', fn)!s} assigns to {', '.join(names)}: "
        f"goroutines run on copies, so that write will never be seen by other goroutines "
        f"(use a channel, pg.atomic or pg.Buffer)",
        RuntimeWarning,
        site[0],
        site[1],
    )
