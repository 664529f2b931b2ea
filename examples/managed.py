"""The seed's §5.1 goroutine lifecycle: workers that stop on ctx.done() and recover from errors.

Each worker selects on its context's ``done()`` channel and the job
channel.  A job that raises is recovered inside the worker (Go's
``defer recover()``): the worker logs it and keeps going, where an
uncaught exception would end the whole program as a ``pg.Panic``.  Round
1 stops the workers by calling ``cancel()`` (``ctx.err()`` is
``Canceled``); round 2 gives them a context with a deadline and no more
jobs, so they stop by themselves when it passes (``DeadlineExceeded``,
fired by a timer while every goroutine is parked).  The program checks
that every job was either done or recovered, exactly once, and that every
worker stopped.

Go original (§5.1)::

    func managedGoroutine(ctx context.Context) {
        defer func() {
            if r := recover(); r != nil { log.Printf("goroutine panic: %v", r) }
        }()
        for {
            select {
            case <-ctx.Done():
                log.Println("优雅退出") // graceful exit
                return
            case task := <-taskChan:
                if err := handle(task); err != nil { metrics.RecordError(err) }
            }
        }
    }

Run::

    python3 examples/managed.py [--jobs 29] [--workers 3]
    parago run --procs 2 examples/managed.py
"""

import argparse

import parago as pg


def handle(job):
    if job % 13 == 0:
        raise ValueError(f"bad job {job}")
    return job * job


def worker(ctx, wid, jobs, results):
    while True:
        i, job, ok = pg.select(pg.Recv(ctx.done()), pg.Recv(jobs))
        if i == 0 or not ok:
            results.send((wid, "stopped", type(ctx.err()).__name__))  # graceful exit
            return
        try:  # recover(): a bad job does not take the worker (or the program) down
            results.send((wid, "done", (job, handle(job))))
        except ValueError as e:
            results.send((wid, "recovered", (job, str(e))))


def collect(results, workers):
    """Read results until every worker has reported that it stopped."""
    seen, stopped = {"done": [], "recovered": []}, []
    while len(stopped) < workers:
        _, what, detail = results.recv()
        (stopped if what == "stopped" else seen[what]).append(detail)
    return seen, stopped


def main(njobs, workers):
    jobs, results = pg.Chan(), pg.Chan(njobs + workers)
    ctx, cancel = pg.context.with_cancel(pg.context.background())
    for w in range(workers):
        pg.go(worker, ctx, w, jobs, results)
    for j in range(1, njobs + 1):
        jobs.send(j)  # unbuffered: returns once a worker has taken it
    cancel()
    seen, stopped = collect(results, workers)
    handled = sorted(j for j, _ in seen["done"] + seen["recovered"])
    assert handled == list(range(1, njobs + 1)), f"jobs lost or repeated: {handled}"
    assert all(r == j * j for j, r in seen["done"]), "a wrong result"

    ctx2, cancel2 = pg.context.with_timeout(pg.context.background(), 0.2)
    for w in range(workers):
        pg.go(worker, ctx2, w, jobs, results)
    _, stopped2 = collect(results, workers)  # nobody sends jobs: the deadline stops them
    cancel2()
    return len(seen["done"]), [e for _, e in seen["recovered"]], stopped, stopped2


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=29)
    ap.add_argument("--workers", type=int, default=3)
    args = ap.parse_args()
    done, recovered, stopped, stopped2 = pg.run(main, args.jobs, args.workers)
    print(f"{done} jobs done, {len(recovered)} recovered errors, {len(stopped)} workers stopped")
    print(f"  recovered: {'; '.join(recovered)}")
    print(f"  round 1 stopped by cancel():           ctx.err() = {', '.join(sorted(set(stopped)))}")
    print(f"  round 2 stopped by the 0.2 s deadline: ctx.err() = {', '.join(sorted(set(stopped2)))}")
    assert set(stopped) == {"Canceled"} and set(stopped2) == {"DeadlineExceeded"}, (stopped, stopped2)
