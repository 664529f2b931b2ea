"""The seed's practice project "开发分布式任务调度系统": a distributed task scheduler.

A dispatcher, a worker pool, deadlines and retries, in Go's shape.  Main is the dispatcher: it owns the queue of
tasks and is the only goroutine that touches it.  Workers take tasks from
a jobs channel, run each under a deadline (``context.with_timeout``) and
send back a result or an error; a failed attempt goes back on the queue
with a longer deadline until it has had MAX_ATTEMPTS.  Some tasks fail
their first attempt on purpose ("flaky": a transient error; "slow": their
first deadline is too short), so the retry path always runs.  The program
checks every answer against a sequential computation and shows which
processes (and, on a cluster, which nodes) ran the tasks.

Go shape (the dispatcher's loop: a nil channel disables the send case)::

    for pending > 0 {
        var out chan Task
        var next Task
        if len(queue) > 0 { out, next = jobs, queue[0] }
        select {
        case out <- next:
            queue = queue[1:]
        case r := <-results:
            if r.err != nil && r.task.attempt < maxAttempts {
                queue = append(queue, r.task.retry())
            } else {
                pending--
            }
        }
    }
    close(jobs)

Run::

    python3 examples/task_scheduler.py [--tasks 48] [--workers 4]
    python3 examples/task_scheduler.py --cluster ray     # across a Ray cluster's nodes

On a cluster (``pip install 'parago[ray]'``) the workers are spread over
the nodes (PARAGO_CLUSTER_PLACEMENT=spread); the jobs and results channels
live on the driver's node and every other node works through them.
"""

import argparse
import collections
import os
import socket
import time

import parago as pg
from parago import context

MAX_ATTEMPTS = 3
FIRST_DEADLINE = 2.0  # seconds; doubled for each retry
SLOW_DEADLINE = 0.002  # a "slow" task's first deadline: too short on purpose


class Transient(Exception):
    """A failure worth retrying (a lost connection, a busy service)."""


def make_tasks(n, size):
    """Task tuples (id, kind, limit, attempt, deadline): count the primes below limit."""
    tasks = []
    for i in range(n):
        kind = "flaky" if i % 7 == 3 else "slow" if i % 11 == 5 else "plain"
        deadline = SLOW_DEADLINE if kind == "slow" else FIRST_DEADLINE
        tasks.append((i, kind, size + 37 * i, 1, deadline))
    return tasks


def count_primes(limit, ctx=None):
    """Primes below limit (trial division); checks ctx every 2,000 numbers,
    as a Go loop would select on ctx.Done()."""
    found = 0
    for n in range(2, limit):
        if ctx is not None and n % 2000 == 0 and ctx.err() is not None:
            raise ctx.err()
        if n < 4 or (n % 2 and all(n % d for d in range(3, int(n**0.5) + 1, 2))):
            found += 1
    return found


def run_task(task, ctx):
    tid, kind, limit, attempt, _ = task
    if kind == "flaky" and attempt == 1:
        raise Transient(f"task {tid}: the service was busy")
    if kind == "slow" and attempt == 1:
        pg.sleep(0.01)  # waits past its short deadline
        raise ctx.err() or context.DeadlineExceeded()
    return count_primes(limit, ctx)


def worker(jobs, results):
    where = f"{socket.gethostname()}:{os.getpid()}"
    for task in jobs:  # until the dispatcher closes jobs
        ctx, cancel = context.with_timeout(context.background(), task[4])
        try:
            results.send((task, run_task(task, ctx), None, where))
        except (Transient, context.DeadlineExceeded) as e:
            results.send((task, None, f"{type(e).__name__}: {e}", where))
        finally:
            cancel()


def dispatch(tasks, workers):
    """Main: the dispatcher.  Returns (answers, attempts per task, tasks per process, errors seen)."""
    jobs, results = pg.Chan(), pg.Chan(workers)
    for _ in range(workers):
        pg.go(worker, jobs, results)
    queue = collections.deque(tasks)
    pending = len(tasks)
    answers, attempts, per_process, errors = {}, collections.Counter(), collections.Counter(), []
    while pending:
        out, nxt = (jobs, queue[0]) if queue else (None, None)
        i, r, _ = pg.select(pg.Send(out, nxt), pg.Recv(results))
        if i == 0:
            queue.popleft()
            continue
        task, value, err, where = r
        tid, kind, limit, attempt, deadline = task
        attempts[tid] += 1
        per_process[where] += 1
        if err is None:
            answers[tid] = value
            pending -= 1
        elif attempt < MAX_ATTEMPTS:
            errors.append(err)
            retry_deadline = FIRST_DEADLINE if kind == "slow" else deadline * 2
            queue.append((tid, kind, limit, attempt + 1, retry_deadline))
        else:
            errors.append(err)
            answers[tid] = err
            pending -= 1
    jobs.close()
    return answers, attempts, per_process, errors


def schedule(n, size, workers, cluster=None):
    tasks = make_tasks(n, size)
    t0 = time.perf_counter()
    answers, attempts, per_process, errors = pg.run(dispatch, tasks, workers, cluster=cluster)
    wall = time.perf_counter() - t0
    expected = {tid: count_primes(limit) for tid, _, limit, _, _ in tasks}
    assert answers == expected, "an answer differs from the sequential count (or a task failed for good)"
    retried = sorted(t for t, k in attempts.items() if k > 1)
    assert sum(attempts.values()) == n + len(retried), "a task ran more often than its retries say"
    assert all(k == 2 for t, k in attempts.items() if k > 1), "a retried task needed more than one retry"
    flaky_or_slow = sorted(tid for tid, kind, *_ in tasks if kind != "plain")
    assert retried == flaky_or_slow, f"retried {retried}, expected {flaky_or_slow}"
    hosts = {w.rsplit(":", 1)[0] for w in per_process}
    transient = sum("Transient" in e for e in errors)
    late = sum("DeadlineExceeded" in e for e in errors)
    print(
        f"{n} tasks: {n} done, {len(retried)} retried once ({transient} transient "
        f"error{'s' * (transient != 1)}, {late} deadline{'s' * (late != 1)} exceeded); "
        "answers match a sequential count"
    )
    print(f"  {workers} workers in {len(per_process)} process(es) on {len(hosts)} host(s), {wall:.2f} s")
    print("  attempts per process: " + ", ".join(f"{w} {k}" for w, k in sorted(per_process.items())))


def cli():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=48)
    ap.add_argument("--size", type=int, default=20_000, help="the first task counts primes below this")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cluster", default=None, help="ray or ray://host:port (default: $PARAGO_CLUSTER, else one machine)")
    args = ap.parse_args()
    if args.cluster or os.environ.get("PARAGO_CLUSTER"):
        os.environ.setdefault("PARAGO_CLUSTER_PLACEMENT", "spread")  # the workers span the nodes
    schedule(args.tasks, args.size, args.workers, args.cluster)


if __name__ == "__main__":
    cli()
