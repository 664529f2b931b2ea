"""The claims of docs/security.md: the arena is a sealed memfd reached only by
fd (never a name in /dev/shm), nothing listens on a socket, and a handle
from an earlier run is refused with NotInRuntime."""

from __future__ import annotations

import fcntl
import os
import pickle
import socket

import psutil
import pytest

import parago as pg
from parago._runtime import state

pytestmark = pytest.mark.timeout(60)

F_GET_SEALS = getattr(fcntl, "F_GET_SEALS", 1034)
F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x0002)


def _pids() -> list[int]:
    a = state.rt.arena
    return [a.u32[a.p_field(p, "pid") // 4] for p in range(pg.gomaxprocs())]


def _sockets(pid: int) -> list:
    proc = psutil.Process(pid)
    conns = getattr(proc, "net_connections", None) or proc.connections
    return list(conns(kind="all"))


def _linger() -> None:
    pg.sleep(0.01)


def test_arena_is_a_sealed_cloexec_memfd_with_no_name_in_dev_shm(procs):
    def main():
        pg.go(_linger)
        fd = state.rt.arena.fd
        target = os.readlink(f"/proc/self/fd/{fd}")
        seals = fcntl.fcntl(fd, F_GET_SEALS)
        cloexec = fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        shm = [x for x in os.listdir("/dev/shm")] if os.path.isdir("/dev/shm") else []
        # every P maps the same anonymous file (the same inode), by fd
        inodes = set()
        for pid in _pids():
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{name}").startswith("/memfd:parago-arena"):
                        inodes.add(os.stat(f"/proc/{pid}/fd/{name}").st_ino)
                except OSError:
                    pass
        return target, seals, cloexec, shm, inodes

    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    target, seals, cloexec, shm, inodes = pg.run(main, procs=procs)
    assert target.startswith("/memfd:parago-arena"), target
    assert seals & F_SEAL_SHRINK, f"seals {seals:#x} lack F_SEAL_SHRINK"
    assert cloexec, "the arena fd would leak into exec'd programs"
    assert set(shm) == before, f"new /dev/shm entries during pg.run: {set(shm) - before}"
    assert len(inodes) == 1, f"the Ps map {len(inodes)} different arenas"


def test_no_p_listens_or_holds_a_network_or_named_socket_during_a_run(procs):
    def main():
        ch = pg.Chan(0)
        pg.go(ch.send, 1)  # traffic between Ps while we look
        found = {pid: _sockets(pid) for pid in _pids()}
        ch.recv()
        return found

    found = pg.run(main, procs=procs)
    assert len(found) == procs
    # an unnamed AF_UNIX socketpair (the event loop's self-pipe) reaches no one;
    # a listening socket, an inet socket or a named/abstract Unix address would
    reachable = {
        pid: [c for c in conns if c.status == psutil.CONN_LISTEN or c.family != socket.AF_UNIX or c.laddr or c.raddr]
        for pid, conns in found.items()
    }
    reachable = {pid: c for pid, c in reachable.items() if c}
    assert not reachable, f"reachable sockets in parago processes (no port may exist): {reachable}"


def _make_chan() -> pg.Chan:
    return pg.Chan(1)


def test_a_handle_from_an_earlier_run_raises_not_in_runtime(procs):
    def first():
        ch = pg.Chan(1)
        ch.send("old")
        return ch, pickle.dumps(ch)

    old, blob = pg.run(first, procs=procs)
    with pytest.raises(pg.NotInRuntime):
        old.send(1)  # no run at all

    def second():
        fresh = pg.Chan(1)  # may reuse the very offset the old channel had
        out = []
        for use in (lambda: old.send(2), old.recv, lambda: pickle.loads(blob).recv()):
            try:
                use()
                out.append("worked")
            except pg.NotInRuntime as e:
                out.append(str(e))
        fresh.send("new")
        return out, fresh.recv()

    out, new = pg.run(second, procs=procs)
    assert new == "new", "the stale handles disturbed this run's channel"
    assert all(o != "worked" for o in out), out
