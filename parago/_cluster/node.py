"""A parago node: one machine's runtime (its own arena and Ps) in a cluster run.

    caller's process (driver node, P0)           each other Ray node
    ----------------------------------           ----------------------------------
    pg.run(main, cluster=...)                    Host actor (num_cpus = its Ps):
      Mailbox actor per node (num_cpus=0)          serve(): pg.run(node main) on the
      Host actor per other node ------------->       actor's main thread
      pg.run(driver main) here                     node main: hello -> driver, then
        node main: wait for hellos,                  park until told to stop
        send the directory, run main
    every node's P0: a Node -- the pump thread long-polls its mailbox and hands
    requests to the hub; remote operations go out as actor calls

The Mailbox is a plain async actor pinned to its node; ``take`` is the
home's long poll.  A request is one of three kinds:

  - an *ask* (the common path, from goroutines): ``ask_many`` carries every
    request one hub round makes to one home in one actor call; the home
    answers each through the asker's mailbox (``answer_many``, one call per
    round and asker), and the asker's pump resolves its futures;
  - a *call* (stealing, start-up, a thread that is not the hub's):
    ``call`` parks in the home's mailbox until the home answers through
    ``reply``, and returns the answer;
  - a *post*: no answer.

What a request asks (all pickled here, so Ray never sees a handle):

    ("op", cls, off, gen, name, args, kw)  perform h.name(*args) at home, in a
                                           goroutine (a blocked op is a parked
                                           goroutine at home, woken by the
                                           home's own parking code)
    ("select", specs, timeout)             one home's part of a select across
                                           homes (select.py), in a goroutine
    ("steal", n)                           up to n unstarted goroutines (their
                                           encoded (fn, args)), as a P steals
    ("go", fn, args, kw, site)             start this goroutine here (an ask
                                           without an answer: placement spread)
    ("hello", index, nonce, pids) / ("dir", d)  start-up: the directory of nodes
    ("stop",)                              main returned: end this node's run

Only P0 of a node talks to Ray (it is the actor's process); the other Ps of
the node forward their remote operations to P0 through the node's outbox
channel (remote.py).

A Node is its parts, one role each:

    wire.py       a message's bytes (xdumps / xloads, the size limit)
    transport.py  Transport: the mailbox's long poll in, batched calls out
    server.py     Home: the requests this node serves as a home
    client.py     Caller: operations on other nodes' handles; park_on
    steal.py      Stealer: stealing between nodes, placement spread
    node.py       Node: identity, directory, counters, dumps (this file)
"""


from __future__ import annotations

import pickle
import threading
from typing import Any

import greenlet

from .._errors import Shutdown
from .._runtime import failure, report
from .._runtime.cluster import hooks
from .._runtime.g import GreenletG
from .client import Caller, park_on, result
from .remote import directory, rebuild
from .server import Home
from .steal import Stealer, placement
from .transport import Transport
from .wire import max_message, xdumps, xloads


class Peer:
    """Another node as seen from here."""

    __slots__ = ("index", "name", "mailbox", "nonce")

    def __init__(self, index: int, name: str, mailbox: Any, nonce: int) -> None:
        self.index = index
        self.name = name
        self.mailbox = mailbox
        self.nonce = nonce


class Node:
    """This process's node while a cluster run is active (P0 of the node):
    its identity, the directory of the others, the message counters, and
    its parts -- transport (Ray traffic), home (serving requests), client
    (remote operations), stealer (work between nodes).  The runtime reaches
    it through cluster.hooks (attached here, detached by close)."""

    def __init__(self, rt: Any, index: int, name: str, mailbox: Any) -> None:
        self.rt = rt
        self.index = index
        self.name = name
        self.peers: list[Peer] = []
        self.remotes: dict[tuple, Any] = {}  # (home, off, gen) -> this node's remote handle
        self.stopping = threading.Event()
        self.stopped = rt.loop.create_future()  # the driver said stop (node main waits on it)
        self.on_hello: Any = None  # the driver's start-up hook
        self.on_dir: Any = None
        # for the cluster-wide deadlock check (driver.py): messages that carry
        # work, counted by both ends (a difference is a message in flight)
        self.asks_sent = 0
        self.asks_done = 0  # asks this home dispatched
        self.answers_sent = 0
        self.answers_recv = 0
        self.stolen = 0  # goroutines this node took from others (or was sent: spread)
        self.given = 0  # ... and gave away
        self.waits = 0  # goroutines here parked on a remote answer (park_on with this node)
        self.transport = Transport(self, mailbox, max_message())
        self.home = Home(self)
        self.client = Caller(self)
        self.stealer = Stealer(self, placement() == "spread")
        directory.clear()
        hooks.attach(self, self.stealer.place if self.stealer.spread else None)
        self.client.start()
        self.transport.start()
        self.stealer.start()

    @property
    def outbox(self) -> Any:
        return self.client.outbox

    # ---- the directory ----
    def set_directory(self, peers: list[tuple[int, str, Any, int]]) -> None:
        self.peers = [Peer(*p) for p in peers]
        for p in self.peers:
            directory[p.nonce] = p
        if self.on_dir is not None:
            self.on_dir()

    def close(self) -> None:
        self.stopping.set()
        if hooks.node is self:
            hooks.detach(self)
            directory.clear()
        self.stealer.close()
        self.transport.close()
        self.remotes.clear()

    def rebuild(self, cls: type, nonce: int, off: int, gen: int) -> Any:
        """cluster.hooks: a handle whose home is another node, decoded here."""
        return rebuild(cls, nonce, off, gen)

    def threadsafe(self, fn: Any, *a: Any) -> None:
        try:
            self.rt.loop.call_soon_threadsafe(fn, *a)
        except RuntimeError:
            pass

    def quiet_report(self) -> tuple | None:
        """For the cluster-wide deadlock check: None if something here can
        move now, else (park epoch, the message counters).  Ray's threads
        are not counted as user threads, and this node's remote waits are
        accounted for by the counters instead of as external waiters."""
        rt = self.rt
        if self.client.thread_calls or self.stopping.is_set() or rt.shutting_down:
            return None
        epoch = rt.sup.deadlock.snapshot(known_external=self.waits, threads=False)
        if epoch is None:
            return None
        return (epoch, self.asks_sent, self.asks_done, self.answers_sent, self.answers_recv, self.given, self.stolen)

    # ---- dumps ----
    def dump_others(self) -> str:
        """pg.debug.dump()'s part for the other nodes: each one's dump (all
        its Ps), asked for in one round and waited for (a goroutine parks,
        a thread waits; an async goroutine or a loop callback cannot wait
        here and gets a line saying so)."""
        if not self.peers or self.stopping.is_set():
            return ""
        msg = ("dump",)
        parts = []
        tr = self.transport
        if threading.get_ident() != self.rt.hub_tid:
            futs = [tr.call(p.nonce, msg) for p in self.peers]
            for p, f in zip(self.peers, futs, strict=True):
                parts.append((p, self._dump_text(lambda f=f: self.client.thread_wait(f))))
        elif isinstance(getattr(greenlet.getcurrent(), "gs", None), GreenletG):
            futs = [tr.ask(p.nonce, msg) for p in self.peers]
            for p, f in zip(self.peers, futs, strict=True):
                parts.append((p, self._dump_text(lambda f=f: park_on(self.rt, f, "IO wait", self))))
        else:
            return f"\n\n--- the other {len(self.peers)} node(s) of this cluster run: not listed (asked from an async goroutine) ---\n"
        return "".join(f"\n\n--- node {p.name} ---\n{text}" for p, text in parts)

    @staticmethod
    def _dump_text(wait: Any) -> str:
        try:
            return result(wait())
        except Shutdown:
            raise
        except BaseException as e:
            return f"(no dump: {type(e).__name__}: {e})\n"

    def site_from_here(self, text: str) -> str:
        """A goroutine's created-by text as another node shows it: "creator
        on node N" (report.created_by), unless it already names its node."""
        creator, _, where = text.partition(" ")
        if not where or "@node" in creator:
            return text
        return report.fit_site(f"{creator}@node{self.index} ", where)


def current() -> Node | None:
    return hooks.node  # type: ignore[return-value]


def record_remote_panic(rt: Any, node_name: str, p: Any) -> None:
    """A goroutine on another node panicked: end this program with its report."""
    cause = getattr(p, "__cause__", None)
    try:
        exc = pickle.dumps(cause) if cause is not None else None
    except Exception:
        exc = None
    failure.record(
        rt,
        {
            "kind": "panic",
            "goid": getattr(p, "goid", 0),
            "type": getattr(p, "exc_type", type(p).__name__),
            "msg": getattr(p, "message", str(p)),
            "tb": f"on node {node_name}:\n{getattr(p, 'remote_traceback', '') or str(p)}",
            "stack": f"on node {node_name}:\n{getattr(p, 'stack', '')}",
            "exc": exc,
        },
    )


def record_lost(rt: Any, node_name: str, nprocs: int, why: str) -> None:
    ps = "P0" if nprocs == 1 else f"P0..P{nprocs - 1}"
    failure.record(
        rt,
        {
            "kind": "lost",
            "p": 0,
            "how": f"node {node_name} was lost with its Ps {ps}: {why}",
            "goroutines": "every goroutine that node had started (their state died with it)",
        },
    )


__all__ = ["Node", "current", "park_on", "placement", "record_remote_panic", "record_lost", "xdumps", "xloads"]
