"""Remote handles: a shared object used on a node that is not its home.

A handle pickles to (run nonce, offset, generation); each node runs its own
pg.run, so the nonce names the home node.  When such a handle is decoded on
another node (handles._rebuild's cluster hook), it becomes an instance of a
*remote class*: a subclass of the local class (``isinstance(x, pg.Chan)``
holds) whose public operations are forwarded to the home node, where a
goroutine performs them (node.py).  The local classes are not touched, so
their fast paths are unchanged.

Two pickled forms:

  - crossing nodes (encoded by node.py for a Ray message): the standard
    local form, so the receiver -- the home included -- rebuilds it as any
    handle; an arena reference is posted to the home first;
  - inside a node (a goroutine spawned or a value sent to another P of the
    same node): ``_rebuild_local``, which carries the node's *outbox*
    channel, because only P0 (the process that hosts the node's Ray actor)
    can talk to Ray: the other Ps forward their remote operations to P0
    through it.

Lifetime: an object that has crossed nodes stays allocated until the run
ends (no distributed reference counting yet; the arena goes with the run).
"""

from __future__ import annotations

import inspect
import mmap
from typing import Any

from .._errors import ParagoError, stale_handle
from .._runtime import handles, state
from .._runtime.handles import HandleMixin
from .._shim import lib

# set while node.py encodes a message that leaves this node (see module doc)
crossing = False

_classes: dict[type, type] = {}
# home nonce -> node (set by node.py in P0 of each node for the run)
directory: dict[int, Any] = {}
# the Node of this process while a cluster run is active (P0 only)
node: Any = None

# names a remote class never forwards: identity, pickling, local plumbing
_KEEP = {"rlocker"}
_IMMUTABLE = {"cap", "type"}


class RemoteMixin:
    """Forwards operations to the home node; compares by (home, offset, generation)."""

    __slots__ = ()
    _home: int
    _outbox: Any
    _cache: dict
    _kind: str

    def _call(self, name: str, args: tuple = (), kw: dict | None = None) -> Any:
        n = node
        if n is not None:
            return n.call(self, name, args, kw or {})
        return _via_outbox(self, name, args, kw or {})

    async def _call_async(self, name: str, args: tuple = (), kw: dict | None = None) -> Any:
        n = node
        if n is not None:
            return await n.call_async(self, name, args, kw or {})
        reply = _new_reply()
        await self._outbox.send_async((self, name, args, kw or {}, reply))
        return _unwrap(await reply.recv_async())

    def _live_rt(self) -> Any:
        raise ParagoError(
            f"this {self._kind} lives on another node of the cluster: only its own operations work here "
            f"(pg.select over channels of another node is not supported yet: see docs/cluster.md)"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RemoteMixin)
            and other._home == self._home
            and other._off == self._off  # type: ignore[attr-defined]
            and other._gen == self._gen  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((self._home, self._off, self._gen))  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<pg.{type(self).__mro__[2].__name__} at {self._off:#x} on node {_node_name(self._home)}>"  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple:
        base = type(self).__mro__[2]
        if crossing:
            n = node
            if n is not None:
                n.post_incref(self._home, self._off)  # type: ignore[attr-defined]
            return (handles._rebuild, (base, self._home, self._off, self._gen))  # type: ignore[attr-defined]
        return (_rebuild_local, (base, self._home, self._off, self._gen, self._outbox))  # type: ignore[attr-defined]

    def __del__(self) -> None:
        pass  # pinned until the run ends (module doc)


def _node_name(nonce: int) -> str:
    d = directory.get(nonce)
    return d.name if d is not None else f"{nonce:#x}"


def _new_reply() -> Any:
    from .._chan import Chan

    return Chan(1)


def _unwrap(res: tuple) -> Any:
    ok, val = res
    if ok:
        return val
    raise val


def _via_outbox(h: Any, name: str, args: tuple, kw: dict) -> Any:
    reply = _new_reply()
    h._outbox.send((h, name, args, kw, reply))
    return _unwrap(reply.recv())


def _forwarder(name: str) -> Any:
    def op(self: Any, *args: Any, **kw: Any) -> Any:
        return self._call(name, args, kw)

    op.__name__ = name
    return op


def _async_forwarder(name: str, home_name: str) -> Any:
    async def op(self: Any, *args: Any, **kw: Any) -> Any:
        return await self._call_async(home_name, args, kw)

    op.__name__ = name
    return op


def _getter(name: str) -> property:
    if name in _IMMUTABLE:

        def get(self: Any) -> Any:
            c = self._cache
            if name not in c:
                c[name] = self._call("@" + name)
            return c[name]

    else:

        def get(self: Any) -> Any:
            return self._call("@" + name)

    return property(get)


def remote_class(cls: type) -> type:
    """The remote subclass of a handle class: every public method, property
    and ``*_async`` form (performed by the sync form at home) forwarded."""
    rc = _classes.get(cls)
    if rc is not None:
        return rc
    ns: dict[str, Any] = {"__slots__": ("_home", "_outbox", "_cache"), "__module__": __name__}
    names = {n for k in cls.__mro__ if k not in (object, HandleMixin) for n in vars(k)}
    for name in sorted(names):
        if name in _KEEP or (name.startswith("_") and name not in ("__len__", "_try_send", "_try_recv")):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, property):
            ns[name] = _getter(name)
        elif inspect.iscoroutinefunction(attr):
            home = name[: -len("_async")] if name.endswith("_async") else name
            ns[name] = _async_forwarder(name, home)
        elif callable(attr) and not isinstance(attr, (type, classmethod, staticmethod)):
            ns[name] = _forwarder(name)
    rc = type(f"Remote{cls.__name__}", (RemoteMixin, cls), ns)
    _classes[cls] = rc
    return rc


def _make(cls: type, nonce: int, off: int, gen: int, outbox: Any) -> Any:
    if issubclass(cls, mmap.mmap):
        raise ParagoError(
            "a pg.Buffer cannot be used on another node (its memory is one machine's arena): "
            "send bytes(buf) or a numpy array instead"
        )
    h: Any = object.__new__(remote_class(cls))
    h._off = off
    h._gen = gen
    h._home = nonce
    h._outbox = outbox
    h._cache = {}
    h._rt = _Elsewhere
    return h


class _ElsewhereRT:
    """Stands in for the runtime of a remote handle (it has none here)."""

    closed = False
    nonce = 0


_Elsewhere = _ElsewhereRT()


def rebuild(cls: type, nonce: int, off: int, gen: int) -> Any:
    """handles._rebuild's hook in P0 of a node: a handle from another node."""
    n = node
    if n is None or nonce not in directory:
        raise stale_handle(cls.__name__)
    key = (nonce, off, gen)
    h: Any = n.remotes.get(key)
    if h is None:
        h = n.remotes[key] = _make(cls, nonce, off, gen, n.outbox)
    return h


def _rebuild_local(cls: type, nonce: int, off: int, gen: int, outbox: Any) -> Any:
    """A remote handle passed between the Ps of one node."""
    rt = state.rt
    if rt is None:
        raise stale_handle(cls.__name__)
    if rt.nonce == nonce:  # it came back home: _rebuild adopts a reference, so take one
        lib.pg_obj_incref(rt.base, off)
        return handles._rebuild(cls, nonce, off, gen)
    n = node
    if n is not None:
        return rebuild(cls, nonce, off, gen)
    return _make(cls, nonce, off, gen, outbox)
