"""Shared fixtures: procs=1 and procs=2, and leak checks after every test.

Every test has a hard timeout (pytest-timeout, default from pyproject; set
a tighter one with @pytest.mark.timeout(n)).  After each test we assert
that it left no child process, no new fd and no /dev/shm entry behind
(STYLE 17).
"""

from __future__ import annotations

import gc
import inspect
import os
import time

import psutil
import pytest

import parago as pg
from parago._runtime import state

from . import raytier


def _fds() -> set[int]:
    return {int(x) for x in os.listdir("/proc/self/fd")}


def _shm() -> set[str]:
    try:
        return {x for x in os.listdir("/dev/shm") if "parago" in x}
    except FileNotFoundError:
        return set()


def _children() -> list[psutil.Process]:
    me = psutil.Process()
    kids = []
    for c in me.children(recursive=True):
        try:
            name = " ".join(c.cmdline())
        except psutil.Error:
            continue
        # multiprocessing's forkserver and resource tracker are shared helpers, not Ps
        if "forkserver" in name or "resource_tracker" in name:
            continue
        if _RAY_UP and raytier.is_ray_process(c):  # the session's Ray cluster (its runs are checked by run)
            continue
        kids.append(c)
    return kids


_RAY_UP = False
# the semantics tests whose ``run`` also runs them across simulated Ray nodes
# (the ``ray`` variant, marker cluster: ``pytest -m cluster``)
CLUSTER_SEMANTICS = {f"tests.unit.test_{m}" for m in ("chan", "select", "sync", "context", "atomic")}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``procs`` (directly or through ``run``): procs1 and procs2 (STYLE 18).
    run-based tests of CLUSTER_SEMANTICS get a third variant, ``ray``: the
    same test with pg.run(main, cluster="ray") and placement spread, so its
    goroutines start on every node and its objects are used across homes.
    A test that takes ``procs`` itself is about the Ps of one machine and
    keeps procs1/procs2, as does one marked ``one_machine(why)`` (what it
    checks differs on a cluster by design: docs/cluster.md); one that parametrizes procs itself (or a module
    with its own procs fixture) keeps its own."""
    if "procs" not in metafunc.fixturenames:
        return
    if any("procs" in m.args[0] for m in metafunc.definition.iter_markers("parametrize")):
        return
    defs = metafunc._arg2fixturedefs.get("procs")  # a module's own parametrized procs fixture
    if defs and defs[-1].params:
        return
    values: list = [1, 2]
    ids = ["procs1", "procs2"]
    if (
        metafunc.module.__name__ in CLUSTER_SEMANTICS
        and "run" in metafunc.fixturenames
        and "procs" not in inspect.signature(metafunc.function).parameters
        and metafunc.definition.get_closest_marker("one_machine") is None
    ):
        values.append(pytest.param("ray", marks=pytest.mark.cluster))
        ids.append("ray")
    metafunc.parametrize("procs", values, ids=ids, indirect=True)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster of simulated nodes (tests/raytier.py NODES), up
    from the first test that needs it to the end of the session."""
    global _RAY_UP
    pytest.importorskip("ray", reason="the Ray tier needs Ray: pip install 'parago[ray]'")
    _RAY_UP = True
    c = raytier.RayCluster()
    try:
        yield c
    finally:
        c.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _process_globals():
    """Create the per-process globals that outlive any pg.run once, up front
    (libuv's signal pipe is made by the first loop and kept for the process)."""
    import uvloop

    uvloop.new_event_loop().close()
    # multiprocessing's own helpers, started by the first spawn/forkserver
    # start and kept for the life of the interpreter (tox runs every test
    # under each start method through PARAGO_START_METHOD)
    # (always the resource tracker: a test may pick spawn itself, e.g. a
    # replayed random program, and its first spawn would start it)
    method = os.environ.get("PARAGO_START_METHOD")
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    if method == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
    yield


@pytest.fixture(autouse=True)
def no_leaks(_process_globals, request: pytest.FixtureRequest):
    if request.node.get_closest_marker("no_leak_check"):
        yield
        return
    if request.node.get_closest_marker("cluster"):
        # a run across Ray nodes: Ray's own fds and processes come and go with
        # the session's cluster; run checks the run's processes and actors,
        # here its /dev/shm (no arena check: an object that crossed nodes
        # stays allocated until the run ends, docs/cluster.md "Lifetime")
        shm = _shm()
        yield
        assert _shm() == shm, f"leaked /dev/shm entries: {_shm() - shm}"
        return
    gc.collect()
    fds = _fds()
    shm = _shm()
    state.last_inuse = None
    yield
    gc.collect()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and (_children() or _fds() - fds):
        time.sleep(0.02)
        gc.collect()
    kids = _children()
    assert not kids, f"leaked processes: {[(k.pid, k.cmdline()) for k in kids]}"
    leaked = _fds() - fds
    details = {}
    for fd in leaked:
        try:
            details[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    details = {fd: t for fd, t in details.items()}
    assert not details, f"leaked fds: {details}"
    assert _shm() == shm, f"leaked /dev/shm entries: {_shm() - shm}"
    # the last pg.run of the test, if every P left it cleanly: every arena
    # block it allocated was freed (each P gives its references back when it
    # leaves, so what is left is a leak: a reference nobody will drop)
    leaked_bytes = state.last_inuse
    if leaked_bytes and not request.node.get_closest_marker("arena_residue_ok"):
        raise AssertionError(
            f"the run left {leaked_bytes} bytes allocated in its arena (leaked blocks: {state.last_leaked})"
        )


@pytest.fixture
def procs(request: pytest.FixtureRequest) -> int | str:
    """procs1, procs2 (and ray): parametrized by pytest_generate_tests."""
    return request.param


@pytest.fixture
def run(procs: int | str, request: pytest.FixtureRequest):
    """``run(main, *args)`` -> pg.run(main, *args, procs=procs); for the
    ``ray`` variant, pg.run(main, *args, cluster="ray") across the session's
    simulated nodes with PARAGO_CLUSTER_PLACEMENT=spread, then a check that
    the run left no process or actor behind."""
    if procs == "ray":
        request.getfixturevalue("ray_cluster")
        mp = request.getfixturevalue("monkeypatch")
        mp.setenv("PARAGO_CLUSTER_PLACEMENT", "spread")

        def _run_ray(main, *args, **kw):
            try:
                return pg.run(main, *args, cluster="ray", **kw)
            finally:
                raytier.check_run_left_nothing()

        return _run_ray

    def _run(main, *args, **kw):
        kw.setdefault("procs", procs)
        return pg.run(main, *args, **kw)

    return _run
