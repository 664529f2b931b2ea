"""The Ray tier's shared pieces: one local Ray cluster of simulated nodes for
the whole session (started by the first test that asks for it), and the
checks that a cluster run left nothing behind.

Used by tests/cluster and by the ``ray`` variant of the ``run`` fixture
(tests/conftest.py), which runs the channel, select, sync, context and
atomic semantics tests across the nodes with placement spread.
"""

from __future__ import annotations

import os
import sys
import time

import psutil

# head (the driver's node) 1 CPU, node 1 with 1 CPU, node 2 with 2 CPUs (a node with 2 Ps)
NODES = (1, 1, 2)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RayCluster:
    """ray.cluster_utils.Cluster with NODES, and ray.init connected to it."""

    def __init__(self) -> None:
        import ray
        from ray.cluster_utils import Cluster

        if ROOT not in sys.path:  # the other nodes import the tests' modules (they get the driver's sys.path)
            sys.path.insert(0, ROOT)
        self.ray = ray
        self.c = Cluster(initialize_head=True, head_node_args={"num_cpus": NODES[0]})
        for n in NODES[1:]:
            self.c.add_node(num_cpus=n)
        self.c.wait_for_nodes()
        self.address = self.c.address
        ray.init(address=self.address, log_to_driver=True)

    def shutdown(self) -> None:
        self.ray.shutdown()
        self.c.shutdown()


def is_ray_process(p: psutil.Process) -> bool:
    """One of Ray's own processes (GCS, raylet, a worker, an actor -- and a
    node's Ps, which run in its Host actor's process tree)."""
    try:
        name = " ".join(p.cmdline())
    except psutil.Error:
        return True
    return "ray" in name or "gcs_server" in name


def gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Those of pids still alive after timeout s (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def actors_alive(ids: list[str]) -> list[str]:
    from ray._private import state

    table = state.actors()
    return [a for a in ids if table.get(a, {}).get("State") not in ("DEAD", None)]


def check_run_left_nothing(nodes: int | None = len(NODES)) -> None:
    """After a cluster pg.run: every node took part, and no node process and
    no actor of the run outlived it."""
    from parago import _cluster

    r = _cluster.last_run
    if nodes is not None:
        assert len(r.names) == nodes, f"the run had {len(r.names)} nodes, not {nodes}"
    assert not gone(r.pids), "a node's processes outlived pg.run"
    assert not actors_alive(r.actors), "an actor of the run outlived pg.run"
