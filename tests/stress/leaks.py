"""What a finished pg.run may not leave behind, seen from inside a worker
process (the autouse conftest check covers the pytest process itself)."""

from __future__ import annotations

import os
import time

import psutil


def fd_targets() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the fd of the listing itself
    return out


def process_globals() -> None:
    """Start what outlives any pg.run once (libuv's signal pipe,
    multiprocessing's resource tracker and forkserver), so they are part of
    the baseline and not counted as leaks."""
    from multiprocessing import forkserver, resource_tracker

    import uvloop

    uvloop.new_event_loop().close()
    resource_tracker.ensure_running()
    forkserver.ensure_running()


def ps_of_ours() -> list[str]:
    """Live children that are not multiprocessing's shared helpers."""
    kids = []
    for c in psutil.Process().children(recursive=True):
        try:
            line = " ".join(c.cmdline())
        except psutil.Error:
            continue
        if "forkserver" not in line and "resource_tracker" not in line:
            kids.append(f"{c.pid}: {line}")
    return kids


def check_after_run(baseline: dict[int, str], wait: float = 3.0) -> list[str]:
    """Leaks since ``baseline`` (from fd_targets()): P processes, fds (the
    arena memfd among them), /dev/shm entries.  Waits up to ``wait`` s for
    exiting Ps to be reaped."""
    deadline = time.monotonic() + wait
    while True:
        kids = ps_of_ours()
        fds = {fd: t for fd, t in fd_targets().items() if fd not in baseline}
        if (not kids and not fds) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    problems = [f"leaked process {k}" for k in kids] + [f"leaked fd {fd} -> {t}" for fd, t in fds.items()]
    try:
        problems += [f"leaked /dev/shm/{x}" for x in os.listdir("/dev/shm") if "parago" in x]
    except FileNotFoundError:
        pass
    return problems
