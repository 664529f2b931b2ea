"""A node as a caller: operations on handles whose home is another node.

    goroutine (hub thread):  call() -> transport.ask -> park_on(future) -> answer
    async goroutine:         call_async() -> await the same future
    any other thread:        call_blocking() -> transport.call -> a bounded wait
    another P of this node:  its request comes through the node's *outbox*
                             channel (remote.via_outbox); P0's outbox server
                             performs it (only P0 can reach Ray)

Owns the outbox and the count of threads' calls in flight (the cluster
deadlock check reads it).  ``park_on`` is how a goroutine waits for an
answer: through the runtime's park_on_future, counted in node.waits.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import greenlet

from .._errors import ParagoError, Shutdown
from .._runtime.g import GreenletG
from .remote import REASONS
from .wire import xloads


class Caller:
    def __init__(self, node: Any) -> None:
        from .._chan import Chan

        self.node = node
        self.rt = node.rt
        self.outbox = Chan(1024)
        self.thread_calls = 0  # remote operations of threads, in flight

    def start(self) -> None:
        self.rt.spawn(self._outbox_server, (), {}, local=True, system=True, depth=2)

    @staticmethod
    def _op_msg(h: Any, name: str, args: tuple, kw: dict) -> tuple:
        return ("op", type(h).__mro__[2], h._off, h._gen, name, args, kw)

    def call(self, h: Any, name: str, args: tuple, kw: dict) -> Any:
        """Perform h.name(*args, **kw) at h's home; park this goroutine until done."""
        if threading.get_ident() != self.rt.hub_tid:
            return self.call_blocking(h, name, args, kw)
        fut = self.node.transport.ask(h._home, self._op_msg(h, name, args, kw))
        return self.wait(fut, name, REASONS.get(name, "IO wait"))

    async def call_async(self, h: Any, name: str, args: tuple, kw: dict) -> Any:
        return result(await self.node.transport.ask(h._home, self._op_msg(h, name, args, kw)))

    def call_blocking(self, h: Any, name: str, args: tuple, kw: dict) -> Any:
        """h.name(*args) at home from a thread that is not the hub's (it waits)."""
        self.thread_calls += 1
        try:
            return result(self.thread_wait(self.node.transport.call(h._home, self._op_msg(h, name, args, kw))))
        finally:
            self.thread_calls -= 1

    def call_select(self, nonce: int, specs: list, timeout: float) -> Any:
        """One home's part of a select across homes (select.py), at that home."""
        msg = ("select", specs, timeout)
        if threading.get_ident() != self.rt.hub_tid:
            return result(self.thread_wait(self.node.transport.call(nonce, msg)))
        return self.wait(self.node.transport.ask(nonce, msg), "select", "select")

    async def call_select_async(self, nonce: int, specs: list, timeout: float) -> Any:
        return result(await self.node.transport.ask(nonce, ("select", specs, timeout)))

    def thread_wait(self, fut: Any) -> Any:
        """A thread's wait for a call's answer, in 50 ms steps that give up
        with Shutdown once the run is ending (no dead node holds it)."""
        rt = self.rt
        u32 = rt.arena.u32
        stopping = self.node.stopping
        while True:
            try:
                return fut.result(timeout=0.05)
            except concurrent.futures.TimeoutError:
                if u32[rt.i_shutdown] or u32[rt.i_panicking] == 2 or stopping.is_set():
                    raise Shutdown() from None

    def wait(self, fut: Any, name: str, reason: str) -> Any:
        """Park this goroutine until the home answered; the answer's value."""
        gs = getattr(greenlet.getcurrent(), "gs", None)
        if not isinstance(gs, GreenletG):
            raise ParagoError(f"{name}() from an async goroutine: use the _async form")
        return result(park_on(self.rt, fut, reason, self.node))

    def _outbox_server(self) -> None:
        """P0's goroutine for the other Ps of this node (they cannot reach Ray)."""
        ob = self.outbox
        rt = self.rt
        while True:
            # one at a time: a remote operation costs actor calls anyway
            rt.spawn(_forward, ob.recv(), {}, local=True, system=True, depth=2)


def result(data: bytes) -> Any:
    """An answer's value, or its exception raised here."""
    ok, val = xloads(data)
    if ok:
        return val
    raise val


def park_on(rt: Any, afut: Any, reason: str, node: Any = None) -> Any:
    """Park the current goroutine (a greenlet of this P) until the asyncio
    future afut, on this P's loop, is done; its result.  Counted as an
    external waiter, as pg.await_ is (and in node.waits: a wait the cluster
    deadlock check accounts for)."""
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if not isinstance(gs, GreenletG):
        raise ParagoError("a cluster operation must run in a plain goroutine here")
    if not afut.done():
        if node is not None:
            node.waits += 1
        try:
            rt.park_on_future(gs, afut, reason, False)
        finally:
            if node is not None:
                node.waits -= 1
    return afut.result()


def _forward(h: Any, name: str, args: tuple, kw: dict, reply: Any) -> None:
    """P0, for another P of this node: perform the remote op, send the outcome."""
    from .._runtime.cluster import hooks

    try:
        if h is None:  # a node request for another P: a select's part at a home (select.py)
            res = (True, hooks.node.client.call_select(*args))  # type: ignore[union-attr]
        else:
            res = (True, h._call(name, args, kw))
    except Shutdown:
        raise
    except BaseException as e:
        res = (False, e)
    reply.send(res)
