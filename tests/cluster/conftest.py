"""The cluster tier: a local Ray cluster of simulated nodes, started once per module.

Skipped when Ray is not importable (``pip install 'parago[ray]'``).  Ray's
own processes (GCS, raylets, its worker pool) are children of the test
process for the whole module, so the generic per-test leak check is off
here; test_cluster.py checks instead that every actor and process of a
run is gone after pg.run returns.
"""

from __future__ import annotations

import os
import sys

import pytest

ray = pytest.importorskip("ray", reason="the cluster tier needs Ray: pip install 'parago[ray]'")

# head (the driver's node) 1 CPU, node 1 with 1 CPU, node 2 with 2 CPUs (a node with 2 Ps)
NODES = (1, 1, 2)


@pytest.fixture(scope="module")
def ray_cluster():
    from ray.cluster_utils import Cluster

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if root not in sys.path:
        sys.path.insert(0, root)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": NODES[0]})
    for n in NODES[1:]:
        c.add_node(num_cpus=n)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=True)
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
