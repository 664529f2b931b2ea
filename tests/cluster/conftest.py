"""The cluster tier: a local Ray cluster of simulated nodes (tests/raytier.py,
the session's ``ray_cluster`` fixture in tests/conftest.py).

Skipped when Ray is not importable (``pip install 'parago[ray]'``).  Ray's
own processes (GCS, raylets, its worker pool) are children of the test
process while the cluster is up, so the generic per-test leak check is off
here; test_cluster.py checks instead that every actor and process of a
run is gone after pg.run returns.
"""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray", reason="the cluster tier needs Ray: pip install 'parago[ray]'")
