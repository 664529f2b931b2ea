"""A node's traffic with Ray: its mailbox's long poll in, batched actor calls out.

    other nodes' actor calls --> this node's Mailbox actor
                                   | take(POLL_S): the pump thread's long poll
                                   v
                                 hub loop: Home.dispatch (server.py)
    goroutines' asks, answers, replies (one hub round)
        --> flush(): one actor call per destination mailbox

Owns what is in flight: the futures of this node's asks (``calls``, by ask
id), this round's asks / answers / replies, and the pump thread.  Runs in
the hub thread except the pump, which only hands batches to the loop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .._errors import EncodeError, ParagoError
from .remote import directory
from .wire import sized, what, xdumps, xloads

POLL_S = 0.25


class Transport:
    def __init__(self, node: Any, mailbox: Any, limit: int) -> None:
        self.node = node
        self.rt = node.rt
        self.mailbox = mailbox
        self.limit = limit  # the largest message (wire.max_message)
        self.replies: list[tuple[int, bytes]] = []  # answers to calls (through this node's mailbox)
        self.answers: dict[int, list[tuple[int, bytes]]] = {}  # caller's nonce -> answers to its asks
        self.asks: dict[int, list[tuple[int, bytes]]] = {}  # home's nonce -> this round's asks
        self.calls: dict[int, Any] = {}  # ask id -> the asyncio future its answer resolves
        self.next_id = 0
        self.flush_armed = False
        self.pump = threading.Thread(target=self._pump, name="parago-cluster-pump", daemon=True)
        self.pump._parago_runtime = True  # type: ignore[attr-defined]

    def start(self) -> None:
        self.pump.start()

    def close(self) -> None:
        try:
            self.mailbox.wake.remote()
        except Exception:
            pass
        self.pump.join(2.0)

    def _pump(self) -> None:
        import ray

        mb = self.mailbox
        stopping = self.node.stopping
        while not stopping.is_set():
            try:
                reqs = ray.get(mb.take.remote(POLL_S))
            except Exception:
                if stopping.is_set():
                    return
                time.sleep(0.05)
                continue
            if reqs and not stopping.is_set():
                try:
                    self.rt.loop.call_soon_threadsafe(self.node.home.dispatch, reqs)
                except RuntimeError:  # the loop closed: the run is over
                    return

    def sized(self, data: bytes, what_: str) -> bytes:
        return sized(data, what_, self.limit)

    # ---- out ----
    def peer(self, nonce: int) -> Any:
        p = directory.get(nonce)
        if p is None:
            raise ParagoError(f"no node of this cluster run has the handle's home ({nonce:#x})")
        return p

    def reply(self, rid: Any, res: tuple) -> None:
        """Answer a request: rid an int (a ``call``: through this node's
        mailbox), (caller's nonce, its id) (an ``ask``), or 0 (a post)."""
        if not rid:
            return
        try:
            data = self.sized(xdumps(res), "the answer")
        except EncodeError as e:
            data = xdumps((False, e))
        if rid.__class__ is int:
            self.replies.append((rid, data))
        else:
            self.node.answers_sent += 1
            self.answers.setdefault(rid[0], []).append((rid[1], data))
        self.arm_flush()

    def ask(self, nonce: int, msg: tuple) -> Any:
        """Ask the node whose run is nonce (from the hub thread): an asyncio
        future of its answer.  The asks of one hub round to one home go in
        one actor call, and its answers come back so (flush)."""
        self.peer(nonce)  # an unknown home: the error here, in the caller
        data = self.sized(xdumps(msg), what(msg))
        self.next_id += 1
        fut = self.rt.loop.create_future()
        self.calls[self.next_id] = fut
        self.asks.setdefault(nonce, []).append((self.next_id, data))
        self.node.asks_sent += 1
        self.arm_flush()
        return fut

    def send_goroutine(self, nonce: int, data: bytes) -> None:
        """A goroutine for that node to start (placement): an ask without an answer."""
        self.node.asks_sent += 1
        self.asks.setdefault(nonce, []).append((0, data))
        self.arm_flush()

    def call(self, nonce: int, msg: tuple) -> Any:
        """The same from any thread, one actor call: a concurrent future."""
        peer = self.peer(nonce)
        return peer.mailbox.call.remote(self.sized(xdumps(msg), what(msg))).future()

    def resolve(self, rid: int, data: bytes) -> None:
        """An answer to one of this node's asks arrived."""
        self.node.answers_recv += 1
        fut = self.calls.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_result(data)

    def arm_flush(self) -> None:
        if not self.flush_armed:
            self.flush_armed = True
            self.rt.loop.call_soon(self.flush)

    def flush(self) -> None:
        """What this hub round produced, one actor call per destination."""
        self.flush_armed = False
        if self.node.stopping.is_set():
            return
        if self.replies:
            batch, self.replies = self.replies, []
            self._send(self.mailbox.reply, batch)
        if self.asks:
            asks, self.asks = self.asks, {}
            for nonce, batch in asks.items():
                err = self._send(self.peer(nonce).mailbox.ask_many, self.rt.nonce, batch)
                if err is not None:
                    self._undelivered(nonce, batch, err)
        if self.answers:
            answers, self.answers = self.answers, {}
            for nonce, batch in answers.items():
                p = directory.get(nonce)
                if p is not None:  # else: that node is not (or no longer) part of the run
                    self._send(p.mailbox.answer_many, batch)

    def _undelivered(self, nonce: int, batch: list, err: str) -> None:
        """Ray refused an ask_many call: each asker hears why now (it would
        wait for ever), and a goroutine placed there starts here instead."""
        node = self.node
        node.asks_sent -= len(batch)
        why = xdumps((False, ParagoError(f"cannot reach node {self.peer(nonce).name}: {err}")))
        for rid, data in batch:
            if rid == 0:  # placement spread: ("go", fn, args, kw, site)
                node.given -= 1
                _, fn, args, kw, site = xloads(data)
                node.stealer.start_here(fn, args, kw, site)
                continue
            fut = self.calls.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(why)

    @staticmethod
    def _send(method: Any, *args: Any) -> str | None:
        """method.remote(*args); why it failed (Ray refused the call), else None."""
        try:
            method.remote(*args)
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        return None
