"""The runtime's one interface to a cluster run: what parago._cluster registers.

parago._cluster is the top layer (STYLE "Layers"): its remote handles *are*
pg.Chan, pg.WaitGroup, ... (``isinstance`` holds), so it imports the API;
the API and the runtime therefore never import it.  Everything they need of
a cluster run goes through ``hooks``, declared here, filled in by _cluster:

    registered by                          hook                       called by
    -------------------------------------  -------------------------  --------------------------
    parago._cluster, when imported         launch(main, args, procs,  pg.run(cluster=...)
      (``import parago`` imports it)         start_method, cluster)
    the same                               select(cases, default),    pg.select / select_async
                                           select_async(...)          when a case's channel lives
                                                                      on another node (CrossHome)
    a node's P0 for one run (node.Node),   node: ClusterNode          handles._rebuild (a handle
      cleared when the run ends                                       whose home is another node),
                                                                      pg.debug.dump (other nodes)
    the same, with placement "spread"      place(fn, args, kw, depth) spawn (the new goroutine
                                                                      may go to another node)

Each is None when not registered: outside a cluster run the runtime's cost
is one attribute test (spawn's ``place``, _rebuild's ``node``).  The other
way round -- what a node asks of its runtime (the backlog, unstarted
goroutines to give away) -- is the NodeWork mixin below (a part of sched.Runtime).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from .._shim import GKind, Pstate, lib, views
from .types import START_STARTED, RuntimeLike


class ClusterNode(Protocol):
    """This process's node while it is a node's P0 in a cluster run."""

    def rebuild(self, cls: type, nonce: int, off: int, gen: int) -> Any:
        """A handle whose home is another node's arena (nonce: that node's
        run), decoded here: its remote form (parago._cluster.remote)."""
        ...

    def dump_others(self) -> str:
        """pg.debug.dump()'s part for the other nodes of the run."""
        ...


class Hooks:
    """The registry: one per process (``hooks``)."""

    __slots__ = ("launch", "select", "select_async", "node", "place")

    def __init__(self) -> None:
        self.launch: Callable[..., Any] | None = None
        self.select: Callable[[tuple, bool], tuple] | None = None
        self.select_async: Callable[[tuple, bool], Any] | None = None
        self.node: ClusterNode | None = None
        self.place: Callable[[Callable, tuple, dict, int], bool] | None = None

    def attach(self, node: ClusterNode, place: Callable[[Callable, tuple, dict, int], bool] | None) -> None:
        """A cluster run starts on this node (its P0): node, and place when
        its placement sends new goroutines to other nodes."""
        self.node = node
        self.place = place

    def detach(self, node: ClusterNode) -> None:
        """That run's node closes (only the node that attached detaches)."""
        if self.node is node:
            self.node = None
            self.place = None


hooks = Hooks()


# ----------------------------------------------------------------------
# the other way: what a node (its P0) asks of its runtime

class NodeWork:
    """A mixin of sched.Runtime: this machine's queued work, as a cluster
    node sees it (steal.py): how much is queued, whether the node is idle,
    and its unstarted goroutines' payloads to give to another node."""

    def backlog(self: RuntimeLike) -> int:
        """Unstarted or readied Gs queued on this node's Ps (racy snapshot)."""
        a = self.arena
        n = views.hdr(a, "gq_size")
        for p in range(self.nprocs):
            n += (views.p_get(a, p, "runqtail") - views.p_get(a, p, "runqhead")) & 0xFFFFFFFF
            n += bool(views.p_get(a, p, "runnext")) + views.p_get(a, p, "inbox_n")
        return n  # type: ignore[no-any-return]

    def node_idle(self: RuntimeLike) -> bool:
        """Nothing runs or waits to run on this node (P0 asks, in its hub)."""
        a = self.arena
        if self.local_ready or self.yielded or self.backlog():
            return False
        for p in range(1, self.nprocs):
            if views.p_get(a, p, "state") not in (Pstate.SLEEPING, Pstate.GONE):
                return False
        return self.current is None

    def take_unstarted(self: RuntimeLike, n: int) -> list[tuple[bytes, str]]:
        """Up to n unstarted goroutines of this P, taken out of the run
        (their Gs exit here): (payload, created-by text) each.  Pinned ones
        (go_local, system) start here instead, and a readied started G
        runs: findRunnable hands them out in the same order."""
        out: list[tuple[bytes, str]] = []
        fout = self.fout
        tries = 0
        while len(out) < n and tries < 2 * n + 4:
            tries += 1
            g = lib.pg_findrunnable(self.base, self.p, 0, self.obuf, self.OBUF, fout)
            if not g:
                break
            how = fout[0]
            if how == START_STARTED:  # a started goroutine readied: it can only run here, now
                self.run_g(g)
                continue
            if g in self.local_fns or views.g_get(self.arena, g, "kind") & GKind.SYSTEM:
                self.start_g(g, how, fout[1], fout[2])
                continue
            # the encoding goes; its references here stay with the objects
            # the other node reaches through it
            data = views.payload_refs(self.payload(how, fout[1], fout[2]))[0]
            site = views.g_site(self.arena, g)
            lib.pg_gexit(self.base, g)
            out.append((data, site))
        if tries:
            # pg_findrunnable marked this P running ("woken by the loop"): the
            # hub's own round must end it, going idle the usual way (state
            # SLEEPING, queues re-checked), or a waker on another P of this
            # node sees it running, does not wake it, and a G it readied here
            # waits for ever (an outbox request from P1 did)
            self.arm()
        return out
