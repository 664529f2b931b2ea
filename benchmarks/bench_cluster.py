"""parago across simulated Ray nodes (pg.run(cluster="ray")) against plain Ray.

One local Ray cluster (ray.cluster_utils.Cluster) on this machine: the
driver's node (1 CPU) and one more node (1 CPU), so every number is the
cost of *crossing nodes* on the same cores, not of a network.

    chan_per_value   one goroutine on the other node sends values one by one
                     on a channel whose home is the driver's node, main
                     receives them (one remote operation each): values/s
                     from the sender's start to the last value received;
                     peer: the same transfer through ray.util.queue.Queue,
                     put() from a Ray task on that node, get() in the driver
    chan_batched     the same with send_many (1,000 values per call); peer:
                     Queue.put_nowait_batch / get_nowait_batch
    round_trip       ping-pong between main and a goroutine on the other
                     node over two channels homed at the driver: µs per
                     round trip (two remote operations); peer: a Ray actor
                     method call
    cpu_job          64 goroutines of fib(n), spawned by main: 2 nodes x 1 P
                     (cluster: placement local, the idle node steals; and
                     placement spread) vs 1 node x 2 Ps (pg.run(procs=2));
                     peer: the same as 64 plain Ray tasks over the 2 nodes

The sender of the channel benchmarks and the echo goroutine are put on the
other node by placement spread (PARAGO_CLUSTER_PLACEMENT=spread: main's
first goroutine stays, the second goes there).

Run: python3 benchmarks/bench_cluster.py --quick   (needs pip install 'parago[ray]')
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["chan_per_value", "chan_batched", "round_trip", "cpu_job"]


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def _sender(ch: pg.Chan, stats: pg.Chan, n: int, batch: int) -> None:
    t0 = time.perf_counter()  # CLOCK_MONOTONIC: comparable across the processes of one machine
    if batch == 1:
        for i in range(n):
            ch.send(i)
    else:
        for i in range(0, n, batch):
            ch.send_many(range(i, min(n, i + batch)))
    stats.send((os.getpid(), t0))


def _noop() -> None:
    pass


def _throughput(n: int, batch: int) -> tuple[float, bool, bool]:
    """One transfer of n values from a goroutine on the other node to main,
    through a channel homed here: values/s from the sender's start to the last
    value received; whether the sender ran remotely; all received, in order.

    Placement spread (set by main()): main's first goroutine stays on its node,
    the next starts on the other one."""
    ch, stats = pg.Chan(4096), pg.Chan(1)
    pg.go(_noop)
    pg.go(_sender, ch, stats, n, batch)
    got: list = []
    while len(got) < n:
        got.extend(ch.recv_many(4096))
    t_end = time.perf_counter()
    pid, t0 = stats.recv()
    return n / (t_end - t0), pid != os.getpid(), got == list(range(n))


def _pong(idx: int, ping: pg.Chan, pong: pg.Chan, where: pg.Chan) -> None:
    where.send((idx, os.getpid()))
    for v in ping:
        pong.send(v)


def _round_trip(n: int) -> float:
    """µs per round trip with an echo goroutine on the other node (placement
    spread: the second goroutine main starts); 0 if it did not run there."""
    me = os.getpid()
    ping, pong, where = pg.Chan(), pg.Chan(), pg.Chan(1)
    pg.go(_noop)
    pg.go(_pong, 0, ping, pong, where)
    _, pid = where.recv()
    dt = 0.0
    if pid != me:
        ping.send(-1)
        pong.recv()
        t0 = time.perf_counter()
        for i in range(n):
            ping.send(i)
            pong.recv()
        dt = (time.perf_counter() - t0) / n * 1e6
    ping.close()
    return dt


def _burn(n: int, out: pg.Chan) -> None:
    out.send(fib(n))


def _cpu_job(tasks: int, n: int) -> tuple[bool, float]:
    """All results right; the job's wall time inside main (a run's start-up excluded)."""
    t0 = time.perf_counter()
    out = pg.Chan(tasks)
    for _ in range(tasks):
        pg.go(_burn, n, out)
    ok = all(out.recv() == fib(n) for _ in range(tasks))
    return ok, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("cluster", __doc__.splitlines()[0], NAMES, argv, default_procs=2)
    # the workloads by their module name, not __main__: a goroutine that moves
    # to another node is pickled by reference, and there __main__ is Ray's worker
    import bench_cluster as w

    try:
        import ray
        from ray.cluster_utils import Cluster
        from ray.util.queue import Queue
    except ImportError:
        b.note("Ray is not installed (pip install 'parago[ray]'): nothing measured")
        return b.finish()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    # the channel benchmarks put their sender on the other node from the start
    # (docs/cluster.md "placement spread"); cpu_job sets its own
    os.environ["PARAGO_CLUSTER_PLACEMENT"] = "spread"
    other = next(n["NodeID"] for n in ray.nodes() if n["NodeID"] != ray.get_runtime_context().get_node_id())
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    there = NodeAffinitySchedulingStrategy(other, soft=False)

    @ray.remote(num_cpus=1)
    def producer(q: Any, n: int, batch: int) -> float:
        t0 = time.perf_counter()
        if batch == 1:
            for i in range(n):
                q.put(i)
        else:
            for i in range(0, n, batch):
                q.put_nowait_batch(list(range(i, min(n, i + batch))))
        return t0

    def ray_queue(n: int, batch: int) -> float:
        """The same transfer: a Ray task on the other node puts, the driver gets;
        values/s from the producer's start to the last value received."""
        q = Queue(maxsize=0)
        ref = producer.options(scheduling_strategy=there).remote(q, n, batch)
        got: list = []
        while len(got) < n:
            if batch == 1:
                got.append(q.get())
            else:
                k = q.qsize()
                if k:
                    got.extend(q.get_nowait_batch(min(k, n - len(got))))
                else:
                    time.sleep(0.0005)
        t_end = time.perf_counter()
        t0 = ray.get(ref)
        b.check(got == list(range(n)), "chan_batched", "ray.util.queue.Queue", "values lost or out of order")
        ray.kill(q.actor)
        return n / (t_end - t0)

    try:
        for name, batch, n in (
            ("chan_per_value", 1, b.size(500, 100)),
            ("chan_batched", 1000, b.size(50_000, 10_000)),
        ):
            if not b.want(name):
                continue
            res = [pg.run(w._throughput, n, batch, cluster="ray") for _ in range(b.repeat)]
            for _, _, ok in res:
                b.check(ok, name, "parago", "a value was lost, duplicated or out of order")
            rates = [r for r, remote, _ in res if remote]
            if rates:
                b.add_samples(name, "parago", "values/s, one sender on the other node", rates, "values/s")
            else:
                b.note(f"{name}: the sender did not run on the other node")
            b.add_samples(
                name,
                "ray.util.queue.Queue",
                "values/s, one sender on the other node",
                [ray_queue(n, batch) for _ in range(b.repeat)],
                "values/s",
            )
        if b.want("round_trip"):
            n = b.size(500, 50)
            rts = [x for x in (pg.run(w._round_trip, n, cluster="ray") for _ in range(b.repeat)) if x]
            if rts:
                b.add_samples("round_trip", "parago", "round trip to another node", rts, "µs/rt")

            @ray.remote(num_cpus=0)
            class Echo:
                def echo(self, v: int) -> int:
                    return v

            e = Echo.options(scheduling_strategy=there).remote()
            ray.get(e.echo.remote(0))

            def actor_rt() -> float:
                t0 = time.perf_counter()
                for i in range(n):
                    ray.get(e.echo.remote(i))
                return (time.perf_counter() - t0) / n * 1e6

            b.add_samples(
                "round_trip",
                "Ray actor call",
                "round trip to another node",
                [actor_rt() for _ in range(b.repeat)],
                "µs/rt",
            )
            ray.kill(e)
        if b.want("cpu_job"):
            tasks, fn = 64, b.size(25, 22)

            def job(**kw: Any) -> float:
                t0 = time.perf_counter()
                ok, dt = pg.run(w._cpu_job, tasks, fn, **kw)
                b.check(ok, "cpu_job", "parago", "a wrong result")
                starts.append(time.perf_counter() - t0 - dt)
                return dt

            starts: list[float] = []
            for placement in ("local", "spread"):
                os.environ["PARAGO_CLUSTER_PLACEMENT"] = placement
                b.add_samples(
                    "cpu_job",
                    f"parago 2 nodes x 1 P ({placement})",
                    "job wall time",
                    [job(cluster="ray") for _ in range(b.repeat)],
                    "s",
                )
            b.note(f"cpu_job: a cluster run's start and stop (actors, node runs) took {h.median(starts):.2f} s besides")
            b.add_samples(
                "cpu_job", "parago 1 node x 2 Ps", "job wall time", [job(procs=2) for _ in range(b.repeat)], "s"
            )
            rfib = ray.remote(num_cpus=1)(fib)

            def ray_tasks() -> float:
                t0 = time.perf_counter()
                ray.get([rfib.remote(fn) for _ in range(tasks)])
                return time.perf_counter() - t0

            b.add_samples(
                "cpu_job", "Ray tasks (2 nodes)", "job wall time", [ray_tasks() for _ in range(b.repeat)], "s"
            )
    finally:
        ray.shutdown()
        c.shutdown()
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
