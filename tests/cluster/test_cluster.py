"""pg.run(main, cluster="ray") on simulated Ray nodes: the same programs, the same answers.

``where`` runs each scenario (tests/cluster/scenarios.py) on one machine
(procs=2) and on the cluster (3 nodes: 1 + 1 + 2 Ps); the answers must be
equal, and on the cluster the work must really have crossed nodes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import parago as pg

from ..raytier import actors_alive, gone
from . import scenarios as sc

pytestmark = [pytest.mark.cluster, pytest.mark.no_leak_check]

ray = pytest.importorskip("ray")

# examples/ on sys.path from the start: the Ps (a forkserver takes sys.path when
# it starts) and the other nodes (they get the driver's) import crawler by name
EXAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
if EXAMPLES not in sys.path:
    sys.path.insert(0, EXAMPLES)


@pytest.fixture(params=["local", "cluster"])
def where(request, ray_cluster):
    """run(main, *args) on one machine (procs=2) or across the cluster's nodes."""
    from parago import _cluster

    def run(main, *args, crossed=None):
        """crossed: the result's key counting the nodes that did the work; on
        the cluster the run is repeated (3 times at most) until it is >= 2,
        because which goroutines another node takes depends on timing."""
        if request.param == "local":
            return pg.run(main, *args, procs=2)
        for _ in range(3):
            res = pg.run(main, *args, cluster="ray")
            r = _cluster.last_run
            assert len(r.names) == 3 and sorted(r.nprocs) == [1, 1, 2]
            assert not gone(r.pids), "a node's processes outlived pg.run"
            assert not actors_alive(r.actors), "an actor of the run outlived pg.run"
            if crossed is None or res[crossed] >= 2:
                break
        return res

    run.cluster = request.param == "cluster"
    return run


@pytest.mark.timeout(120)
def test_conservation_every_value_once_in_sender_order(where):
    r = where(sc.conservation, crossed="nodes")
    assert r["fifo"] and r["senders"] == list(range(24)) and r["total"] == 480
    assert r["after_close"] == (None, False)
    if where.cluster:
        assert r["nodes"] >= 2, "no sender ran on another node"


@pytest.mark.timeout(120)
def test_channel_semantics_hold_across_nodes(where):
    r = where(sc.channels)
    assert r == {
        "echo": True,
        "batch": True,
        "closed": [
            "ClosedChannelError: send on closed channel",
            "ClosedChannelError: close of closed channel",
            (0, 3, True, True),
        ],
    }


@pytest.mark.timeout(120)
def test_select_over_channels_fed_from_other_nodes(where):
    r = where(sc.select)
    assert r["fifo"]
    assert r["inner"] == [(["a", "b"], -1, False)] * 3
    assert r["default"] == (-1, None, False)


@pytest.mark.timeout(180)
def test_select_over_channels_whose_homes_are_different_nodes(where):
    r = where(sc.select_homes, crossed="nodes")
    assert r["exactly_once_fifo"], r["wrong"]
    assert r["sends"] == [(1, None, True)] * 6
    assert r["sunk"] == list(range(6))
    assert r["default"] == (-1, None, False)
    if where.cluster:
        assert r["nodes"] >= 2, "every channel was made on the driver's node"


@pytest.mark.timeout(180)
def test_buffers_cross_nodes_as_copies_and_each_arrives_once(where):
    r = where(sc.buffers, crossed="nodes")
    assert r["every_buffer_once"] and r["seed_seen"]
    if where.cluster:
        assert r["nodes"] >= 2, "no worker ran on another node"


@pytest.mark.timeout(120)
def test_a_deadlock_across_nodes_is_deadlock(where):
    if not where.cluster:
        # (on one machine this is the ordinary check, tested in tests/unit; in
        # this process Ray's threads count as user threads that could send)
        pytest.skip("the single-machine deadlock check is tested without Ray in the process")
    with pytest.raises(pg.Deadlock) as ei:
        where(sc.deadlock_across_nodes)
    assert str(ei.value).startswith("fatal error: all goroutines are asleep - deadlock!")


@pytest.mark.timeout(120)
def test_goroutines_sleeping_on_other_nodes_are_not_a_deadlock(where):
    r = where(sc.sleepers_are_not_a_deadlock, crossed="nodes")
    if where.cluster:
        assert r["nodes"] >= 2


@pytest.mark.timeout(120)
def test_sync_atomics_and_context_across_nodes(where):
    r = where(sc.sync)
    assert r == {"mutex": 40, "atomic": 50, "once": 1, "ctx": ["Canceled"] * 5, "locked_after": True}


@pytest.mark.timeout(120)
def test_distributed_word_count_is_exact(where):
    r = where(sc.wordcount, crossed="nodes")
    assert r["exact"] and r["docs"]
    if where.cluster:
        assert r["nodes"] >= 2, "every document was counted on the driver's node"


@pytest.mark.timeout(120)
def test_crawler_fetches_every_page_once(where):
    import crawler

    pages = crawler.site(30)
    crawled, per_p = where(crawler.main, pages)
    assert set(crawled) == crawler.reachable(pages)
    assert sum(per_p.values()) == len(crawled)


@pytest.mark.timeout(120)
def test_idle_nodes_take_queued_goroutines(ray_cluster):
    for _ in range(3):  # which goroutines move depends on timing: 3 tries
        r = pg.run(sc.cpu_job, 64, 20, cluster="ray")
        assert r["ok"]
        if len(r["per_node"]) >= 2:
            break
    assert len(r["per_node"]) >= 2 and sum(r["per_node"]) == 64, r


def _node_of_worker(jobs: pg.Chan, out: pg.Chan, started: pg.Chan) -> None:
    started.send(os.getpid())
    for j in jobs:
        sc.hold(0.003)  # some work per job: the other nodes' workers (ms away) get their share
        out.send((j, os.getpid()))


def _pool(workers: int, jobs_n: int) -> dict:
    """The worker pool shape: workers that block on jobs at once."""
    from tests.helpers import wait_parked

    jobs, out, started = pg.Chan(), pg.Chan(jobs_n), pg.Chan(workers)
    for _ in range(workers):
        pg.go(_node_of_worker, jobs, out, started)
    # every worker waiting for its first job, on whichever node (the dump covers
    # them all): else the driver's two could finish every job before the
    # others' first receive reached home (a loaded machine: seen once in CI)
    wait_parked("chan receive", workers, timeout=60)
    for j in range(jobs_n):
        jobs.send(j)
    jobs.close()
    got = [out.recv() for _ in range(jobs_n)]
    return {
        "jobs": sorted(j for j, _ in got),
        "started": sorted(started.recv() for _ in range(workers)),
        "worked": sorted({p for _, p in got}),
        "driver": os.getpid(),
    }


@pytest.mark.timeout(120)
def test_placement_spread_starts_a_worker_pool_on_every_node(ray_cluster, monkeypatch):
    from parago import _cluster

    monkeypatch.setenv("PARAGO_CLUSTER_PLACEMENT", "spread")
    r = pg.run(_pool, 6, 200, cluster="ray")
    assert r["jobs"] == list(range(200)), "a job was lost or done twice"
    others = set(_cluster.last_run.pids)
    # 6 workers round robin over 3 nodes: two start on each (node 2's P0 may
    # pass one to its P1; under spread the nodes do not steal from each other)
    assert r["started"].count(r["driver"]) == 2 and len([p for p in r["started"] if p in others]) == 4, r
    assert len(set(r["started"]) & others) >= 2, r
    # and the pool's jobs are done on more than one node
    assert r["driver"] in r["worked"] and set(r["worked"]) & others, r


def _parked_on(ch: pg.Chan) -> None:
    ch.recv_ok()


def _dump_three_parked() -> str:
    from tests.helpers import wait_parked

    ch = pg.Chan()
    for _ in range(3):
        pg.go(_parked_on, ch)
    wait_parked("chan receive", 3)  # counted in the dump of every node
    text = pg.debug.dump()
    ch.close()
    return text


@pytest.mark.timeout(120)
def test_a_dump_lists_every_nodes_goroutines(ray_cluster, monkeypatch):
    monkeypatch.setenv("PARAGO_CLUSTER_PLACEMENT", "spread")
    text = pg.run(_dump_three_parked, cluster="ray")
    assert "--- node 1 " in text and "--- node 2 " in text, text
    # the two sent to other nodes: parked on the driver's channel, named as that
    # operation, created by main on node 0
    assert text.count("[chan receive") == 3, text
    assert text.count("created by tests.cluster.test_cluster._dump_three_parked on node 0") == 2, text


def _big_then_small(ch: pg.Chan, out: pg.Chan, back: pg.Chan) -> None:
    try:
        ch.send(b"x" * 200_000)  # ch's home is the driver: this must cross nodes
        out.send(("sent", os.getpid()))
    except pg.EncodeError as e:
        out.send(("refused", os.getpid(), str(e)))
    ch.send(b"small")
    mine = pg.Chan(2)  # homed on this node: main's sends to it cross nodes
    back.send(mine)
    out.send(("got", mine.recv()))


def _too_large() -> dict:
    ch, out, back = pg.Chan(4), pg.Chan(4), pg.Chan(1)
    pg.go(sc.hold, 0)  # placement spread: the first goroutine stays here, the next goes to node 1
    pg.go(_big_then_small, ch, out, back)
    first = out.recv()
    small = ch.recv()
    left = len(ch)
    remote_ch = back.recv()
    try:
        remote_ch.send(b"y" * 200_000)
        main_err = ""
    except pg.EncodeError as e:
        main_err = str(e)
    remote_ch.send(b"after")
    return {"first": first, "small": small, "left": left, "main_err": main_err, "got": out.recv(), "me": os.getpid()}


@pytest.mark.timeout(120)
def test_a_value_too_large_to_cross_nodes_is_a_clear_error_and_nothing_is_lost(ray_cluster, monkeypatch):
    monkeypatch.setenv("PARAGO_CLUSTER_PLACEMENT", "spread")
    monkeypatch.setenv("PARAGO_CLUSTER_MAX_MESSAGE", "65536")
    r = pg.run(_too_large, cluster="ray")
    kind, pid, *msg = r["first"]
    assert kind == "refused" and pid != r["me"], r  # in the sender, on the other node
    assert "too large to cross nodes" in msg[0] and "PARAGO_CLUSTER_MAX_MESSAGE" in msg[0], msg
    assert r["small"] == b"small" and r["left"] == 0, r  # the channel holds only what was sent
    assert "too large to cross nodes" in r["main_err"], r
    assert r["got"] == ("got", b"after"), r


def _pickled_remote_handle() -> bytes:
    import pickle

    back = pg.Chan(1)
    pg.go(sc.hold, 0)
    pg.go(_make_chan_there, back)
    return pickle.dumps(back.recv())


def _make_chan_there(back: pg.Chan) -> None:
    back.send(pg.Chan(1))


def _use_old_handle(blob: bytes) -> str:
    import pickle

    try:
        pickle.loads(blob).send(1)
    except pg.NotInRuntime as e:
        return str(e)
    return "no error"


@pytest.mark.timeout(120)
def test_a_handle_from_a_node_of_another_run_is_a_clear_error(ray_cluster, monkeypatch):
    monkeypatch.setenv("PARAGO_CLUSTER_PLACEMENT", "spread")
    blob = pg.run(_pickled_remote_handle, cluster="ray")
    text = pg.run(_use_old_handle, blob, cluster="ray")
    assert "Chan" in text and text != "no error", text


@pytest.mark.timeout(120)
def test_ray_not_reachable_at_the_address_is_a_clear_error():
    code = (
        "import parago as pg\n"
        "try:\n"
        "    pg.run(lambda: 1, cluster='ray:127.0.0.1:9')\n"
        "except pg.ParagoError as e:\n"
        "    print('ERR', e)\n"
    )
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PARAGO_CLUSTER")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=110, env=env)
    assert "ERR cannot start or reach the Ray cluster at 127.0.0.1:9" in p.stdout, (p.stdout, p.stderr[-2000:])


def test_a_bad_placement_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PARAGO_CLUSTER_PLACEMENT", "everywhere")
    with pytest.raises(ValueError, match="PARAGO_CLUSTER_PLACEMENT must be one of local, spread"):
        pg.run(sc.hold, cluster="ray")


@pytest.mark.timeout(180)
def test_the_task_scheduler_example_across_nodes(ray_cluster, monkeypatch):
    import task_scheduler as ts

    from parago import _cluster

    monkeypatch.setenv("PARAGO_CLUSTER_PLACEMENT", "spread")
    tasks = ts.make_tasks(30, 15_000)  # ~30 ms each: the workers ms away get their share
    answers, attempts, per_process, errors = pg.run(ts.dispatch, tasks, 6, cluster="ray")
    assert answers == {tid: ts.count_primes(limit) for tid, _, limit, _, _ in tasks}
    retried = sorted(t for t, k in attempts.items() if k > 1)
    assert retried == sorted(tid for tid, kind, *_ in tasks if kind != "plain")
    pids = {int(w.rsplit(":", 1)[1]) for w in per_process}
    assert pids & set(_cluster.last_run.pids) and os.getpid() in pids, per_process


def _boom(i: int) -> None:
    raise ValueError(f"bad item {i} on {sc.where()}")


def _panics() -> None:
    for i in range(20):
        pg.go(_boom, i)
    sc.hold(0.3)
    pg.Chan().recv()


@pytest.mark.timeout(120)
def test_a_panic_on_any_node_ends_the_program_with_its_traceback(ray_cluster):
    t0 = time.monotonic()
    with pytest.raises(pg.Panic) as ei:
        pg.run(_panics, cluster="ray")
    assert "ValueError" in str(ei.value) and "bad item" in str(ei.value)
    assert time.monotonic() - t0 < 60
    from parago import _cluster

    assert not gone(_cluster.last_run.pids)


def _sleeper(out: pg.Chan) -> None:
    out.send(sc.where())
    pg.sleep(60)


def _lose_a_node() -> None:
    from parago import _cluster

    out = pg.Chan(1000)
    mine = sc.where()
    for _ in range(10):  # until a goroutine reports from another node
        sc.ballast()
        for _ in range(24):
            pg.go(_sleeper, out)
        sc.ballast()
        if any(out.recv() != mine for _ in range(24)):
            break
    else:
        raise AssertionError("no goroutine ran on another node")
    ray.kill(_cluster.last_run.hosts[0], no_restart=True)
    pg.Chan().recv()  # blocks forever: WorkerLost must end it


@pytest.mark.timeout(120)
def test_a_lost_node_is_worker_lost_within_seconds(ray_cluster):
    from parago import _cluster

    with pytest.raises(pg.WorkerLost) as ei:
        pg.run(_lose_a_node, cluster="ray")
    assert "node 1" in str(ei.value) and "P0" in str(ei.value)
    r = _cluster.last_run
    assert not gone(r.pids) and not actors_alive(r.actors)


def test_without_cluster_ray_is_never_imported():
    code = (
        "import sys, parago as pg\n"
        "def main(): return sum(range(10))\n"
        "assert pg.run(main, procs=1) == 45\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PARAGO_CLUSTER"}
    import subprocess

    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_a_bad_cluster_value_is_a_clear_error():
    with pytest.raises(ValueError, match="cluster must be"):
        pg.run(sc.hold, cluster="spark://x")


def test_without_ray_cluster_says_how_to_install_it():
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import parago as pg\n"
        "try:\n"
        "    pg.run(lambda: 1, cluster='ray')\n"
        "except pg.ParagoError as e:\n"
        "    print(e)\n"
    )
    import subprocess

    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'parago[ray]'" in p.stdout, (p.stdout, p.stderr)


_CTRL_C = """
import sys, time, ray
sys.path[:0] = {path!r}
ray.init(address={address!r}, log_to_driver=False)
import parago as pg
from tests.cluster import scenarios as sc

def main():
    for _ in range(16):
        pg.go(sc.cpu_job, 4, 18)
    print("running", flush=True)
    pg.sleep(60)  # (a bare pg.Chan().recv() would be a Deadlock once the jobs end)

try:
    pg.run(main, cluster="ray")
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.timeout(120)
def test_ctrl_c_stops_every_node_and_leaves_no_actor(ray_cluster):
    import signal
    import subprocess

    from ray._private import state

    code = _CTRL_C.format(path=sys.path, address=ray_cluster.address)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "running"
        time.sleep(1.0)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert "interrupted" in out, err[-2000:]
    deadline = time.monotonic() + 10
    while True:
        alive = [
            a
            for a in state.actors().values()
            if a.get("ActorClassName", "").endswith(("Host", "Mailbox")) and a.get("State") != "DEAD"
        ]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not alive, alive


_SCRIPT = '''
import os, sys
import psutil
import parago as pg


class Square:  # a class of the script: its instances cross nodes and stay instances of it
    def __init__(self, n, v, pid):
        self.n, self.v, self.pid = n, v, pid


def square(jobs, out, wg):
    for n in jobs:
        pg.sleep(0.01)  # every worker gets jobs
        out.send(Square(n, n * n, os.getpid()))
    wg.done()


def main(njobs, nworkers):
    jobs, out, wg = pg.Chan(njobs), pg.Chan(njobs), pg.WaitGroup()
    for _ in range(nworkers):
        wg.add(1)
        pg.go(square, jobs, out, wg)
    pg.go(lambda c: c.send(Square(-1, 0, os.getpid())), out)  # a lambda of the script, too
    for n in range(njobs):
        jobs.send(n)
    jobs.close()
    got = [out.recv() for _ in range(njobs + 1)]
    wg.wait()
    assert all(isinstance(s, Square) for s in got), [type(s) for s in got]
    return sorted((s.n, s.v) for s in got), sorted({s.pid for s in got})


if __name__ == "__main__":
    results, pids = pg.run(main, 40, 8)
    assert results == [(-1, 0)] + [(n, n * n) for n in range(40)], results
    here = {os.getpid()} | {c.pid for c in psutil.Process().children(recursive=True)}
    print("OK", len(pids), len([p for p in pids if p not in here]), flush=True)
'''


@pytest.mark.timeout(240)
def test_a_plain_script_runs_its_goroutines_on_every_node(ray_cluster, tmp_path):
    """`python prog.py` with its goroutines, a class and a lambda defined in
    the script (__main__), spread over every node, through the bare
    host:port address that `ray start` prints: results exact, instances of
    the script's class, and work done on other nodes."""
    prog = tmp_path / "prog.py"
    prog.write_text(_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PYTHONPATH")}
    env.update(PARAGO_CLUSTER=ray_cluster.address, PARAGO_CLUSTER_PLACEMENT="spread")
    assert not ray_cluster.address.startswith("ray")  # the bare form
    p = subprocess.run([sys.executable, str(prog)], capture_output=True, text=True, timeout=200, env=env, cwd=tmp_path)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-4000:])
    ok, nprocs, remote = p.stdout.split()[-3:]
    assert ok == "OK" and int(remote) >= 2 and int(nprocs) >= 3, p.stdout  # both other nodes worked


def test_a_bare_host_port_is_a_ray_address():
    from parago._cluster import _address

    assert _address("192.0.2.2:38973") == "192.0.2.2:38973"
    assert _address("head-node.local:6379") == "head-node.local:6379"
    assert _address("[::1]:6379") == "[::1]:6379"
    assert _address("ray://h:10001") == "ray://h:10001" and _address("ray:auto") == "auto" and _address("ray") is None
    for bad in ("spark://x", "host:", "h:p0rt", ":6379x"):
        with pytest.raises(ValueError, match="cluster must be"):
            _address(bad)


# ---- cooperative_io on every node ----


def _fetch(url: str, out: pg.Chan) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as r:
        out.send((os.getpid(), r.status, r.read()))


def _fetch_all(url: str, n: int) -> list:
    out = pg.Chan(n)
    for _ in range(n):
        pg.go(_fetch, url, out)
    return [out.recv() for _ in range(n)]


@pytest.mark.timeout(180)
def test_cooperative_io_parks_urllib_goroutines_on_every_node(ray_cluster, monkeypatch):
    """The server answers only once all n requests are in at the same time
    (a barrier): the goroutines that placement spreads over the nodes (two
    on each: a 1-P node has two) must all be waiting in urlopen together,
    which only cooperative I/O allows -- without it a node's first urlopen
    holds its P and the second is never sent (the barrier breaks: 503)."""
    import http.server
    import threading

    from parago import _cluster

    n = 6
    barrier = threading.Barrier(n, timeout=30)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                barrier.wait()
                code, body = 200, b"together"
            except threading.BrokenBarrierError:
                code, body = 503, b"not all in flight at once"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        monkeypatch.setenv("PARAGO_CLUSTER_PLACEMENT", "spread")
        url = f"http://127.0.0.1:{srv.server_address[1]}/"
        got = pg.run(_fetch_all, url, n, cluster="ray", cooperative_io=True)
    finally:
        srv.shutdown()
        srv.server_close()
    assert sorted((s, b) for _, s, b in got) == [(200, b"together")] * n, got
    others = set(_cluster.last_run.pids)
    assert len({p for p, _, _ in got} & others) >= 2, "no fetch ran on another node"
    assert not gone(_cluster.last_run.pids) and not actors_alive(_cluster.last_run.actors)


def test_cooperative_io_with_cluster_must_be_a_bool():
    with pytest.raises(TypeError, match="cooperative_io must be a bool"):
        pg.run(_fetch_all, "http://127.0.0.1:1/", 1, cluster="ray", cooperative_io=1)
