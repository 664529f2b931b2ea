"""Handles: a P's Python object for a shared object in the arena.

Owns the per-P intern table (offset -> the P's one handle) and the arena
reference counting protocol (DESIGN "Lifetime"):

  - each P holds one arena reference per object it has a handle for,
    dropped when that handle dies (``__del__``);
  - an encoded payload holds one reference per handle inside it, taken in
    ``__reduce__`` and consumed by ``_rebuild`` in the receiver: adopted as
    the receiver P's reference, or dropped if that P already has a handle.

Handles compare equal and hash alike when they refer to the same object;
``bool(h)`` is always True.  A handle from an earlier pg.run (or to an
object freed since) is a clear NotInRuntime error, never a wild read.
"""

from __future__ import annotations

import contextvars
import ctypes
import weakref
from typing import Any

from .._errors import DecodeError, ParagoError, not_in_runtime, stale_handle
from .._shim import lib, views
from . import state
from .cluster import hooks

# The handle offsets collected by the encode (or decode) in progress (codec
# sets them, __reduce__ and _rebuild append).  A context variable, so each
# call has its own list -- nested calls save and restore it, and another
# thread (a pg.blocking worker) or another greenlet encoding at the same time
# has its own context: a handle's reference can never land in someone else's
# payload.  Declared here, with the protocol: codec imports this module.
ENC_REFS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("parago_enc_refs", default=None)
DEC_REFS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("parago_dec_refs", default=None)


class HandleMixin:
    """The handle protocol; concrete handles add storage (slots or a dict)."""

    __slots__ = ()
    _kind = "object"
    _off: int
    _gen: int
    _rt: Any

    def _bind(self, rt: Any, off: int, gen: int) -> None:
        self._off = off  # type: ignore[misc]
        self._c = ctypes.c_uint64(off)  # type: ignore[misc]  # prebuilt for the fast calls
        self._gen = gen  # type: ignore[misc]
        self._rt = rt
        self._red = (_rebuild, (type(self), rt.nonce, off, gen))  # type: ignore[misc]
        rt.handles[off] = weakref.ref(self)
        self._load(rt)

    def _load(self, rt: Any) -> None:
        """Read the immutable fields of the object (subclasses)."""

    @classmethod
    def _new(cls, rt: Any, off: int) -> Any:
        return cls._make(rt, off, views.obj_gen(rt.arena, off))

    @classmethod
    def _make(cls, rt: Any, off: int, gen: int) -> Any:
        h = object.__new__(cls)
        h._bind(rt, off, gen)
        return h

    def _live_rt(self) -> Any:
        """This handle's runtime, checked: the entry of every operation, and
        so a preemption point (DESIGN "Time slices": one attribute check)."""
        rt = self._rt
        if rt.attn:
            rt.attention()
            if rt.closed:
                raise stale_handle(self._kind)
        return rt

    def __reduce__(self) -> tuple:
        rt = self._rt
        if rt.closed:
            raise stale_handle(self._kind)
        refs = ENC_REFS.get()
        if refs is not None:
            refs.append(self._off)  # taken by the publishing call, in one batch
        else:
            lib.pg_obj_incref(rt.base, self._off)  # a user's own pickle.dumps
        return self._red

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HandleMixin)
            and other._off == self._off
            and other._gen == self._gen
            and other._rt is self._rt
        )

    def __hash__(self) -> int:
        return hash((self._off, self._gen))

    def __bool__(self) -> bool:
        return True

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict) -> Any:
        return self

    def __del__(self) -> None:
        rt = getattr(self, "_rt", None)
        if rt is not None and not rt.closed:
            # the table lets go of this handle with its reference: an entry
            # left behind would be decref'd again when the P leaves
            # (Refs.release), stealing the reference of whatever object
            # reuses the block (a timer freed while its fire was due: the
            # sysmon sent on channel 0 and spun for ever).  Dying by refcount,
            # our weakref still answers self here; collected in a cycle, None.
            d = rt.handles
            r = d.get(self._off)
            if r is not None:
                h = r()
                if h is None or h is self:
                    del d[self._off]
                    # whoever takes the entry out gives its reference back:
                    # this handle, even while its P leaves the run (a
                    # collection triggered inside Refs.release)
                    rt.refs.give_back(self._off)
                    return
            rt.decref_later(self._off)


class CrossHome(ParagoError):
    """Raised by a remote handle's ``_live_rt`` (a channel of another node):
    pg.select catches it and hands the whole select to the cluster's
    (cluster.hooks.select)."""


# While parago._cluster encodes a message for another node: the (home,
# offset) of every remote handle in it (collected by their __reduce__), and
# a pg.Buffer pickles to a copy of its bytes (another node cannot map this
# arena).  A context variable, as ENC_REFS is: an encode on another
# thread (or greenlet) at that moment is not one for another node.
CROSSING: contextvars.ContextVar[list | None] = contextvars.ContextVar("parago_crossing", default=None)


def _rebuild(cls: type, nonce: int, off: int, gen: int) -> Any:
    node = hooks.node  # a cluster run's: a handle whose home is another node's arena
    if node is not None and state.rt is not None and state.rt.nonce != nonce:
        return node.rebuild(cls, nonce, off, gen)
    refs = DEC_REFS.get()
    if refs is not None:
        refs.append(off)
    rt = state.rt
    if rt is None:
        raise not_in_runtime(f"receiving a {cls.__name__}")
    if rt.nonce != nonce:
        raise stale_handle(cls.__name__)
    r = rt.handles.get(off)
    h = r() if r is not None else None
    if h is not None and h._gen == gen:
        rt.decref_later(off)  # the payload's reference: we hold one already
        return h
    if views.obj_gen(rt.arena, off) != gen or views.obj_kind(rt.arena, off) == 0:
        raise DecodeError(f"{cls.__name__} handle refers to an object that was freed")
    return cls._make(rt, off, gen)  # type: ignore[attr-defined]  # adopts the payload reference


class Handle(HandleMixin):
    __slots__ = ("_off", "_c", "_gen", "_rt", "_red", "__weakref__")
