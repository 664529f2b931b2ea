"""The examples/ programs run and print what they promise (procs=1 and 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "pipeline.py": (["20000"], r"^sum of squares below 20000: 2666466670000$"),
    "work_stealing.py": ([], r"^2000 tasks in [0-9.]+ s on [12] P\(s\):$"),
    "managed.py": ([], r"^27 jobs done, 2 recovered errors, 3 workers stopped$"),
    "conn_pool.py": ([], r"^40 requests served; at most [1-4] of 4 pooled connections in use at once$"),
    "crawler.py": ([], r"^crawled 20 pages: /p0 /p1 .* /p19$"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name: str, procs: int) -> None:
    args, pattern = CASES[name]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PARAGO_MAXPROCS=str(procs))
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True, text=True, timeout=100, env=env, cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    import re

    assert re.match(pattern, r.stdout.splitlines()[0]), r.stdout
