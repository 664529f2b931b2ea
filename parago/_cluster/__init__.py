"""pg.run(main, cluster="ray"): one parago program across the nodes of a Ray cluster.

A parago *node* per Ray node: its own arena and local Ps -- the
single-machine runtime, unchanged -- in one process per node: the caller's
process for the driver's node (main stays there), a Host actor on every
other node (NodeAffinity placement: exactly one per node; ``num_cpus`` =
that node's Ps).  See node.py for the protocol, remote.py for the handles
that operate through their home node, docs/cluster.md for what crosses
nodes and what it costs.

Layering: this package is the top layer, above the API.  It imports the
API (a remote handle must *be* a pg.Chan / pg.WaitGroup / ... --
``isinstance`` holds -- while its operations go to the home node),
parago._runtime and parago._errors, never parago._shim; nothing below
imports it.  ``import parago`` imports it, and it registers with the
runtime's one interface to it, parago._runtime.cluster.hooks: ``launch``
(pg.run(cluster=...)) and ``select`` (a pg.select across homes); a node
attaches itself for its run (node.py).  Its modules never import this
package module (no import circle): this file imports them.  Ray is imported
only when a cluster run starts.
"""

from __future__ import annotations

import os
import pickle
import re
import sys
from typing import Any, Callable

from .._errors import ParagoError
from .._runtime.cluster import hooks
from . import select as _select  # its module: parago._cluster.select stays that

INSTALL_HINT = "pg.run(cluster=...) needs Ray: pip install 'parago[ray]' (or pip install ray)"
STOP_GRACE = 3.0
last_run: Any = None  # the latest run's driver state (tests read its pids and actors)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ParagoError(f"{INSTALL_HINT} ({e})") from None
    return ray


_HOSTPORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


def _address(cluster: str) -> str | None:
    """The address for ray.init: None (a local instance, or $RAY_ADDRESS),
    a Ray Client address, or a GCS address -- also the bare ``host:port``
    that `ray start --head` prints."""
    if cluster == "ray":
        return None
    if cluster.startswith("ray://"):
        return cluster
    if cluster.startswith("ray:"):
        return cluster[4:]
    if _HOSTPORT.match(cluster):
        return cluster
    raise ValueError(f"cluster must be 'ray', 'ray://host:port', 'ray:ADDRESS' or 'host:port', got {cluster!r}")


def _main_script() -> tuple[str, str] | None:
    """(path, source) of the script that is ``__main__`` (``python prog.py``,
    ``parago run prog.py``): every other node runs it as its ``__main__``
    before its Ps start, as multiprocessing's spawn does on one machine, so
    the goroutines, classes and lambdas it defines resolve there.  None for
    a main module without a source file (``python -c``, a REPL)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return os.path.abspath(path), f.read()
    except OSError:
        return None


def _probe(address: str) -> None:
    """A host:port address (or ray://host:port) that nothing listens on: a
    ParagoError now (ray.init would retry for minutes, or end the process)."""
    hostport = address[len("ray://") :] if address.startswith("ray://") else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # "auto", a local instance: ray.init decides
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5.0).close()
    except OSError as e:
        raise ParagoError(f"cannot start or reach the Ray cluster at {address}: {type(e).__name__}: {e}") from None


def _actors(ray: Any) -> tuple[Any, Any]:
    from .actors import Host, Mailbox

    return ray.remote(Mailbox), ray.remote(Host)


class _Run:
    """The driver's view of one cluster run."""

    def __init__(self, ray: Any, procs: int | None, start_method: str | None, cooperative_io: bool = False) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray = ray
        Mailbox, Host = _actors(ray)
        here = ray.get_runtime_context().get_node_id()
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        nodes.sort(key=lambda n: (n["NodeID"] != here, n["NodeID"]))
        if not nodes or nodes[0]["NodeID"] != here:
            nodes.insert(0, {"NodeID": here, "NodeManagerAddress": "driver", "Resources": {"CPU": 1}})
        self.names = [f"{i} ({n.get('NodeManagerAddress', '?')})" for i, n in enumerate(nodes)]
        self.nprocs = [procs or max(1, int(n["Resources"].get("CPU", 1))) for n in nodes]
        self.mailboxes: list[Any] = []
        self.hosts: list[Any] = []
        self.serving: list[Any] = []
        self.stopping = False
        self.pids: list[int] = []  # the other nodes' processes (their P0s and Ps), for the tests' leak check
        for n in nodes:
            pin = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            self.mailboxes.append(
                Mailbox.options(num_cpus=0, scheduling_strategy=pin, max_concurrency=100_000).remote()
            )
        env = {k: v for k, v in os.environ.items() if k.startswith("PARAGO_") and k != "PARAGO_CLUSTER"}
        script = _main_script()
        for i, n in enumerate(nodes[1:], start=1):
            pin = NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            h = Host.options(num_cpus=self.nprocs[i], scheduling_strategy=pin, max_restarts=0).remote()
            self.hosts.append(h)
            self.serving.append(
                h.serve.remote(
                    i,
                    self.names[i],
                    self.nprocs[i],
                    start_method,
                    list(sys.path),
                    env,
                    self.mailboxes[i],
                    self.mailboxes[0],
                    script,
                    cooperative_io,  # coop.py in every P of every node
                )
            )

    def peers(self, nonces: dict[int, int]) -> list[tuple[int, str, Any, int]]:
        return [(i, self.names[i], self.mailboxes[i], nonces[i]) for i in sorted(nonces)]

    def stop(self) -> None:
        """Tell every node to end its run, then kill every actor of this run."""
        ray = self.ray
        self.stopping = True
        msg = pickle.dumps(("stop",))
        for mb in self.mailboxes[1:]:
            try:
                mb.post.remote(msg)
            except Exception:
                pass
        if self.serving:
            try:
                ray.wait(self.serving, num_returns=len(self.serving), timeout=STOP_GRACE)
            except Exception:
                pass
        for a in self.hosts + self.mailboxes:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        self.actors = [a._actor_id.hex() for a in self.hosts + self.mailboxes]
        self.serving.clear()
        self.hosts.clear()
        self.mailboxes.clear()


def run(
    main: Callable, args: tuple, procs: int | None, start_method: str | None, cluster: str, cooperative_io: bool = False
) -> Any:
    """Run main(*args) on this process's node, with every other Ray node joining
    (``cooperative_io``: as pg.run's, on every node; $PARAGO_COOPERATIVE_IO
    travels with the other PARAGO_* variables)."""
    if not isinstance(cluster, str):
        raise TypeError(f"cluster must be a str, got {type(cluster).__name__}")
    if not isinstance(cooperative_io, bool):
        raise TypeError(f"cooperative_io must be a bool, got {type(cooperative_io).__name__}")
    address = _address(cluster)
    from .steal import placement

    placement()  # a bad $PARAGO_CLUSTER_PLACEMENT: the error before anything starts
    ray = _import_ray()
    from .._runtime import procs as _procs

    started = False
    if not ray.is_initialized():
        _probe(address or os.environ.get("RAY_ADDRESS") or "")
        try:
            ray.init(address=address, log_to_driver=True, configure_logging=False)
        except Exception as e:
            where = address or os.environ.get("RAY_ADDRESS") or "a local instance"
            raise ParagoError(f"cannot start or reach the Ray cluster at {where}: {type(e).__name__}: {e}") from None
        started = True
    global last_run
    r = None
    try:
        r = last_run = _Run(ray, procs, start_method, cooperative_io)
        from .driver import driver_main

        return _procs.run(
            driver_main, r, main, args, procs=r.nprocs[0], start_method=start_method, cooperative_io=cooperative_io
        )
    finally:
        if r is not None:
            r.stop()
        if started:
            ray.shutdown()


hooks.launch = run
hooks.select = _select.select
hooks.select_async = _select.select_async
