"""The seed's §5.1 goroutine lifecycle: workers that stop on ctx.done(),
recover from their own errors, and a supervisor that cancels them.

Run: python examples/managed.py
"""

import parago as pg


def worker(ctx, wid, jobs, results):
    while True:
        i, job, ok = pg.select(pg.Recv(ctx.done()), pg.Recv(jobs))
        if i == 0 or not ok:
            results.send((wid, "stopped", str(ctx.err())))
            return
        try:  # Go's recover(): a bad job does not kill the worker
            if job % 13 == 0:
                raise ValueError(f"bad job {job}")
            results.send((wid, "done", job))
        except ValueError as e:
            results.send((wid, "recovered", str(e)))


def main():
    ctx, cancel = pg.context.with_timeout(pg.context.background(), 5.0)
    jobs, results = pg.Chan(), pg.Chan(100)
    for w in range(3):
        pg.go(worker, ctx, w, jobs, results)
    for j in range(1, 30):
        jobs.send(j)
    cancel()  # stop everyone: they see ctx.done() closed
    done = recovered = stopped = 0
    while stopped < 3:
        _, what, _ = results.recv()
        done += what == "done"
        recovered += what == "recovered"
        stopped += what == "stopped"
    return done, recovered, stopped


if __name__ == "__main__":
    done, recovered, stopped = pg.run(main)
    print(f"{done} jobs done, {recovered} recovered errors, {stopped} workers stopped")
