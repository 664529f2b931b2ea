"""pg.net across Ps: many concurrent connections through Go's accept loop
(conns moving to every P), and a P killed with a conn in flight.

    P0 (main)                               P1
    -----------------------------------     ---------------------------------
    for conn in ln: pg.go(handle, conn) --> handle: conn pulled by pidfd_getfd
    clients: pg.go(client) on any P          (the sender's copy closed when
                                              the receiver says "taken")
"""

from __future__ import annotations

import os
import resource
import signal
import time

import pytest

import parago as pg
from parago._runtime import state
from tests.unit.test_net import _ps_up

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

N_CONNS = 2000


def _handle(conn: pg.net.Conn, served: pg.Chan) -> None:
    with conn:
        n = 0
        while True:
            b = conn.read()
            if not b:
                break
            n += len(b)
            conn.write(b)
    served.send((state.rt.p, n))


def _client(addr: str, i: int, barrier: pg.WaitGroup, release: pg.Chan, res: pg.Chan) -> None:
    c = pg.net.dial(addr, timeout=60)
    msg = b"%08d" % i * 8  # 64 bytes
    c.write(msg)
    got = b""
    while len(got) < len(msg):
        b = c.read()
        if not b:
            break
        got += b
    barrier.done()
    release.recv_ok()  # every connection is open at once before any closes
    c.close()
    res.send((i, got == msg))


def _many_main(n: int) -> dict:
    _ps_up()
    ln = pg.net.listen("127.0.0.1:0", backlog=4096)
    barrier = pg.WaitGroup()
    barrier.add(n)
    release = pg.Chan()
    served, res = pg.Chan(n), pg.Chan(n)
    for i in range(n):
        pg.go(_client, ln.addr, i, barrier, release, res)
    for _ in range(n):
        conn = ln.accept()
        pg.go(_handle, conn, served)
    barrier.wait()
    release.close()
    seen = {}
    for _ in range(n):
        i, ok = res.recv()
        assert ok, f"client {i} got a wrong echo"
        seen[i] = seen.get(i, 0) + 1
    assert sorted(seen) == list(range(n)) and set(seen.values()) == {1}  # every client exactly once
    per_p: dict[int, int] = {}
    total = 0
    for _ in range(n):
        p, k = served.recv()
        per_p[p] = per_p.get(p, 0) + 1
        total += k
    assert total == 64 * n
    ln.close()
    return per_p


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * N_CONNS + 1024))
    if want < 2 * N_CONNS + 256:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for {N_CONNS} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("procs", [1, 2])
def test_many_concurrent_loopback_connections(procs, many_fds):
    t0 = time.monotonic()
    per_p = pg.run(_many_main, N_CONNS, procs=procs)
    assert sum(per_p.values()) == N_CONNS
    assert len(per_p) == procs, f"handlers ran on {per_p} only"
    assert time.monotonic() - t0 < 170


# ----------------------------------------------------------------------
# a P killed with a conn in flight


def _give(addr: str, ch: pg.Chan, ready: pg.Chan) -> None:
    c = pg.net.dial(addr)
    ch.send(c)  # buffered: the conn is in flight, its socket held by this P
    ready.send((state.rt.p, os.getpid()))
    pg.sleep(60)


def _killed_main() -> None:
    _ps_up()
    ln = pg.net.listen("127.0.0.1:0")
    for _ in range(50):
        ch, ready = pg.Chan(1), pg.Chan(1)
        pg.go(_give, ln.addr, ch, ready)
        server_side = ln.accept()
        p, pid = ready.recv()
        if p == 0:
            ch.recv().close()
            server_side.close()
            continue
        os.kill(pid, signal.SIGKILL)
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.005)
        ch.recv()  # the sender is gone: WorkerLost (here, or from the supervisor)
        raise AssertionError("received a conn from a dead P")
    raise AssertionError("the sender never ran on P1")


def test_a_p_killed_with_a_conn_in_flight_is_worker_lost_and_leaks_no_fd():
    with pytest.raises(pg.WorkerLost, match=r"P1 died \(killed by signal SIGKILL\)"):
        pg.run(_killed_main, procs=2)
