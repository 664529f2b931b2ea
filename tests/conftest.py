"""Shared fixtures: procs=1 and procs=2, and leak checks after every test.

Every test has a hard timeout (pytest-timeout, default from pyproject; set
a tighter one with @pytest.mark.timeout(n)).  After each test we assert
that it left no child process, no new fd and no /dev/shm entry behind
(STYLE 17).
"""

from __future__ import annotations

import gc
import os
import time

import psutil
import pytest

import parago as pg
from parago._runtime import state


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
        kids.append(c)
    return kids


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
        raise AssertionError(f"the run left {leaked_bytes} bytes allocated in its arena (leaked blocks)")


@pytest.fixture(params=[1, 2], ids=["procs1", "procs2"])
def procs(request: pytest.FixtureRequest) -> int:
    """Run the scenario at procs=1 and procs=2 (STYLE 18)."""
    return request.param


@pytest.fixture
def run(procs: int):
    """``run(main, *args)`` -> pg.run(main, *args, procs=procs)."""

    def _run(main, *args, **kw):
        kw.setdefault("procs", procs)
        return pg.run(main, *args, **kw)

    return _run
