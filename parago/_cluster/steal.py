"""Work between nodes: an idle node steals unstarted goroutines, and
placement "spread" sends new ones round robin.

    idle node (every few ms, backing off to STEAL_BACKOFF_MAX)
      --("steal", n)--> the next node in turn: export(n) gives up to half its
                        queued unstarted goroutines (never pinned ones), as a
                        P is robbed by runqsteal; their payloads come back
      <-- payloads ---  decoded here and spawned (start_here)
    spread: place() sends a goroutine the hub starts to the next node in turn
            (batched with the round's asks: transport.send_goroutine)

Owns the steal timer, the turn counters and ``placing`` (a goroutine that
came from another node starts here: it is not sent on).  Counts goroutines
given and stolen on the node (the cluster deadlock check balances them).
What the runtime holds -- its queues, its unstarted goroutines' payloads --
it reads through the runtime's own calls (rt.backlog, rt.take_unstarted).
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from typing import Any, Callable

from .._errors import ParagoError
from .._runtime import report
from .wire import crossing_payload, xdumps, xloads

STEAL_MAX = 64
STEAL_BACKOFF_MAX = 0.02  # an idle node asks again at least every 20 ms (each ask costs both sides an actor call)
PLACEMENTS = ("local", "spread")


def placement() -> str:
    """$PARAGO_CLUSTER_PLACEMENT: where a new goroutine starts.  "local"
    (the default): on its spawner's node, moving only when an idle node
    steals it; "spread": the goroutines a node's P0 starts go round robin
    over the nodes of the run, this one included (a worker pool spans the
    cluster from its first job)."""
    how = os.environ.get("PARAGO_CLUSTER_PLACEMENT") or "local"
    if how not in PLACEMENTS:
        raise ValueError(f"PARAGO_CLUSTER_PLACEMENT must be one of {', '.join(PLACEMENTS)}, got {how!r}")
    return how


class Stealer:
    def __init__(self, node: Any, spread: bool) -> None:
        self.node = node
        self.rt = node.rt
        self.spread = spread
        self.out = False  # a steal request is in flight
        self.next = 0  # the next victim's turn
        self.backoff = 0.001
        self.place_next = 0  # spread placement: the next node's turn (0: this one)
        self.placing = False  # starting a goroutine another node sent: it stays here
        self.timer: Any = None

    def start(self) -> None:
        # placement spread puts the work on every node from the start: nodes do
        # not steal from each other then (an idle node would take a goroutine
        # just sent to another back before it started there)
        if not self.spread:
            self.timer = self.rt.loop.call_later(0.002, self._maybe_steal)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def start_here(self, fn: Callable, args: tuple, kw: dict, site: str) -> None:
        """Start a goroutine that came from another node (it stays here)."""
        self.placing = True
        try:
            self.rt.spawn(fn, args, kw, site=site)
        finally:
            self.placing = False

    def undecodable(self, e: BaseException) -> None:
        """A goroutine that came from another node and cannot be decoded here
        (its function is not importable on this node, ...): it starts and
        panics with why, so the program ends with a report naming it."""
        err = ParagoError(
            f"a goroutine sent to this node cannot start here: {type(e).__name__}: {e} "
            "(its function or a class it needs does not resolve here: docs/cluster.md)"
        )
        self.rt.spawn(_raise, (err,), {}, local=True, depth=2)

    # ---- placement spread (cluster.hooks.place) ----
    def place(self, fn: Any, args: tuple, kw: dict, depth: int) -> bool:
        """Send a goroutine the hub starts to the next node in turn; False
        when it is this node's turn (or the spawner is not this P0's hub, or
        the run is ending): start it here.  Batched with the round's asks;
        counted as given / stolen, so the cluster deadlock check sees it in
        flight."""
        node, rt = self.node, self.rt
        if self.placing or not node.peers or node.stopping.is_set() or threading.get_ident() != rt.hub_tid:
            return False
        k = self.place_next % (len(node.peers) + 1)
        self.place_next += 1
        if k == 0:
            return False
        peer = node.peers[k - 1]
        site = node.site_from_here(report.site(sys._getframe(depth)))
        tr = node.transport
        data = tr.sized(xdumps(("go", fn, args, kw, site)), "a goroutine's function and arguments")
        # (an EncodeError is the spawner's, as pg.go's)
        node.given += 1
        tr.send_goroutine(peer.nonce, data)
        return True

    # ---- stealing ----
    def _maybe_steal(self) -> None:
        """Every few ms while this node is idle: ask the next node for work."""
        node, rt = self.node, self.rt
        if node.stopping.is_set() or rt.closed or rt.shutting_down:
            return
        delay = 0.002
        if not self.out and node.peers and rt.node_idle():
            victim = node.peers[self.next % len(node.peers)]
            self.next += 1
            self.out = True
            fut = victim.mailbox.call.remote(pickle.dumps(("steal", STEAL_MAX))).future()
            fut.add_done_callback(lambda f: node.threadsafe(self._stolen, f))
            delay = self.backoff
        self.timer = rt.loop.call_later(delay, self._maybe_steal)

    def _stolen(self, f: Any) -> None:
        self.out = False
        node, rt = self.node, self.rt
        if rt.closed or rt.shutting_down or node.stopping.is_set():
            return  # the run is ending (main returned, or a failure): the node is closed
        try:
            ok, payloads = xloads(f.result())
        except BaseException:
            payloads = []
        if not payloads:
            if self.next % max(1, len(node.peers)) == 0:
                self.backoff = min(STEAL_BACKOFF_MAX, self.backoff * 2)
            return
        self.backoff = 0.001
        node.stolen += len(payloads)
        self.placing = True  # they start here (placement spread does not send them on)
        try:
            for data, site in payloads:
                # decoded here, in P0 (the cluster hook is set only here), and
                # re-encoded by spawn: remote handles inside take their node-local form
                try:
                    fn, args, kw = xloads(data)
                except BaseException as e:
                    self.undecodable(e)
                    continue
                rt.spawn(fn, args, kw, site=site)
        finally:
            self.placing = False
        rt.arm()

    def export(self, want: int) -> list[tuple[bytes, str]]:
        """Give up to half of this node's queued unstarted goroutines (as a P
        is robbed by runqsteal), never those pinned here (go_local, system)."""
        node, rt = self.node, self.rt
        if rt.closed or rt.shutting_down or node.stopping.is_set():
            return []
        n = rt.backlog()
        out = [
            (crossing_payload(data), node.site_from_here(site))
            for data, site in rt.take_unstarted(min(want, n - n // 2))
        ]
        node.given += len(out)
        return out


def _raise(e: BaseException) -> None:
    raise e
