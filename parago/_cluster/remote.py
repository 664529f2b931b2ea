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
    handle; the message names it, and its home takes the reference that
    decode adopts before decoding (node.xloads);
  - inside a node (a goroutine spawned or a value sent to another P of the
    same node): ``_rebuild_local``, which carries the node's *outbox*
    channel, because only P0 (the process that hosts the node's Ray actor)
    can talk to Ray: the other Ps forward their remote operations to P0
    through it.

Lifetime: an object that has crossed nodes stays allocated until the run
ends (no distributed reference counting yet; the arena goes with the run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import mmap
import threading
from typing import Any

import greenlet

from .._errors import ParagoError, Shutdown, stale_handle
from .._runtime import dump, handles, ops, state
from .._runtime.blocking import BlockingPool
from .._runtime.cluster import hooks
from .._runtime.handles import HandleMixin

_classes: dict[type, type] = {}
# home nonce -> node (set by node.py in P0 of each node for the run); the
# Node of this process while a cluster run is active (P0 only) is hooks.node
directory: dict[int, Any] = {}
# what a goroutine parked on a remote operation shows in a dump
REASONS = {
    "send": "chan send",
    "send_many": "chan send",
    "recv_ok": "chan receive",
    "recv": "chan receive",
    "recv_many": "chan receive",
    "__next__": "chan receive",  # for v in ch
    "wait": "sync.WaitGroup.Wait",
    "lock": "sync.Mutex.Lock",
    "rlock": "sync.RWMutex.RLock",
    "do": "sync.Once.Do",
    "acquire": "semacquire",
}

# names a remote class never forwards: identity, pickling, local plumbing
_KEEP = {"rlocker"}
_IMMUTABLE = {"cap", "type"}
# operations that can wait at home for another goroutine (an async goroutine
# must use their _async form); every other one completes at home at once
_BLOCKING = {
    "send", "send_many", "recv", "recv_ok", "recv_many", "__iter__", "__next__", "__enter__",
    "wait", "lock", "rlock", "acquire", "do", "result",
}  # fmt: skip


class RemoteMixin:
    """Forwards operations to the home node; compares by (home, offset, generation)."""

    __slots__ = ()
    _home: int
    _outbox: Any
    _cache: dict
    _kind: str

    def _call(self, name: str, args: tuple = (), kw: dict | None = None) -> Any:
        if _in_async_goroutine():
            return _from_async_goroutine(self, name, args, kw or {})
        n: Any = hooks.node
        if n is not None:
            return n.client.call(self, name, args, kw or {})
        return via_outbox(self._outbox, self, name, args, kw or {})

    async def _call_async(self, name: str, args: tuple = (), kw: dict | None = None) -> Any:
        n: Any = hooks.node
        if n is not None:
            return await n.client.call_async(self, name, args, kw or {})
        return await via_outbox_async(self._outbox, self, name, args, kw or {})

    def _live_rt(self) -> Any:
        # pg.select catches it (select.py runs a select across homes)
        raise handles.CrossHome(
            f"this {self._kind} lives on another node of the cluster: only its own operations work here"
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
        crossing = handles.CROSSING.get()
        if crossing is not None:
            crossing.append((self._home, self._off))  # type: ignore[attr-defined]
            return (handles._rebuild, (base, self._home, self._off, self._gen))  # type: ignore[attr-defined]
        return (_rebuild_local, (base, self._home, self._off, self._gen, self._outbox))  # type: ignore[attr-defined]

    def __del__(self) -> None:
        pass  # pinned until the run ends (module doc)


def _in_async_goroutine() -> bool:
    if getattr(greenlet.getcurrent(), "gs", None) is not None:
        return False
    rt = state.rt
    if rt is None or threading.get_ident() != rt.hub_tid:
        return False
    try:
        return asyncio.current_task(rt.loop) is not None
    except RuntimeError:
        return False


def _from_async_goroutine(h: Any, name: str, args: tuple, kw: dict) -> Any:
    """A sync operation on a remote handle in an async goroutine.  One that
    can wait for another goroutine is refused, as it is locally; one that
    completes at home at once (close, len, an atomic's add, ...) is one
    round trip, made by a helper thread while this P's loop waits for it
    (the loop cannot serve the round trip itself: the call must return)."""
    if name in _BLOCKING:
        alt = f"{name}_async" if not name.startswith("_") else "the async form"
        raise ParagoError(
            f"{name}() on a {h._kind} of another node can block, and this is an async goroutine: "
            f"use `await ...{alt}()` (a blocking call would stall every goroutine of this P)"
        )
    rt = state.rt
    if rt.executor is None:
        rt.executor = BlockingPool(f"parago-P{rt.p}-blocking")
    n: Any = hooks.node
    if n is not None:
        fut = rt.executor.submit(n.client.call_blocking, h, name, args, kw)
    else:
        fut = rt.executor.submit(via_outbox, h._outbox, h, name, args, kw)
    # bounded waits: the hub is blocked here, so read the run's state from the arena
    u32 = rt.arena.u32
    while True:
        try:
            return fut.result(timeout=0.05)
        except concurrent.futures.TimeoutError:
            if u32[rt.i_shutdown] or u32[rt.i_panicking] == 2:
                raise Shutdown() from None  # the run is ending (a lost node, a panic, main returned)


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


def via_outbox(outbox: Any, h: Any, name: str, args: tuple, kw: dict) -> Any:
    """From a P other than the node's P0: P0 performs h.name(*args, **kw)
    (h None: the node's ``name`` request, e.g. a select's part at a home)."""
    reply = _new_reply()
    outbox.send((h, name, args, kw, reply))
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if gs is None:
        return _unwrap(reply.recv())
    # a dump shows what it waits for (the operation at home), not the reply channel
    dump.shown_as[gs.off] = _reason(h, name)
    try:
        return _unwrap(reply.recv())
    finally:
        dump.shown_as.pop(gs.off, None)


def _reason(h: Any, name: str) -> str:
    if h is None:
        return "select" if name == "select" else "IO wait"
    return REASONS.get(name, "IO wait")


async def via_outbox_async(outbox: Any, h: Any, name: str, args: tuple, kw: dict) -> Any:
    reply = _new_reply()
    await outbox.send_async((h, name, args, kw, reply))
    return _unwrap(await reply.recv_async())


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
    if issubclass(cls, mmap.mmap):  # Buffers cross nodes as copies (node.xdumps): one never gets here
        raise ParagoError(
            "a pg.Buffer cannot be used on another node (its memory is one machine's arena): "
            "it crosses nodes as a copy only inside a value or a goroutine's arguments"
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
    n: Any = hooks.node
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
        ops.incref_many(rt, [off])
        return handles._rebuild(cls, nonce, off, gen)
    if hooks.node is not None:
        return rebuild(cls, nonce, off, gen)
    return _make(cls, nonce, off, gen, outbox)

