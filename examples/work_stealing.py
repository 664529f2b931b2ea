"""The seed's §4.2 work-stealing scheduler, written with parago primitives -- and parago's own.

Part 1 is the seed's ``WorkStealingScheduler``: one task queue per worker
(a buffered ``pg.Chan`` each), one worker goroutine per P
(``pg.gomaxprocs()``, Go's ``runtime.GOMAXPROCS(0)``).  A worker takes from
its own queue and, when that is empty, steals from the others with a
non-blocking ``select`` (``default=True``).  Every task is queued on worker
0, so all the other workers' work is stolen.  (A channel is FIFO: a thief
takes from the same end as the owner, where the seed's deque has
``PopBack``.)

Part 2 is the runtime doing the same for goroutines: one goroutine spawns
uneven tasks; idle Ps steal half of the spawner's run queue (Go's
``runqsteal``), so the work spreads over every core.

Both parts check that every task ran exactly once, and show who ran what.

Go original (§4.2)::

    func (s *WorkStealingScheduler) worker(id int) {
        for {
            task, ok := s.queues[id].PopFront()
            if !ok {
                for i := 0; i < len(s.queues); i++ {   // try to steal
                    if i == id { continue }
                    if task, ok := s.queues[i].PopBack(); ok {
                        execute(task); break
                    }
                }
            } else {
                execute(task)
            }
        }
    }

Run::

    python3 examples/work_stealing.py [-n 400]
    parago run --procs 2 examples/work_stealing.py -n 200
"""

import argparse
import os
import time

import parago as pg


def execute(i):
    """Uneven CPU work: task i costs (1 + i % 7) units."""
    s = 0
    for k in range(2000 * (1 + i % 7)):
        s += k * k
    return s


# Part 1: the seed's scheduler on channels


class WorkStealingScheduler:
    def __init__(self, workers, capacity):
        self.queues = [pg.Chan(capacity) for _ in range(workers)]
        self.results = pg.Chan(capacity)
        self.wg = pg.WaitGroup()
        self.started = pg.atomic.Int64()

    def submit(self, worker, task):
        self.queues[worker].send(task)

    def start(self):
        """Start one worker per queue, one per P where there are enough Ps.

        A goroutine runs on the P where it starts, for its whole life, and P0
        would start all of them as soon as main waits.  So main keeps P0 busy
        (no yield) until the idle Ps have stolen the other workers, for at
        most a second."""
        self.wg.add(len(self.queues))
        for i in range(len(self.queues)):
            pg.go(self.worker, i)
        want = min(pg.gomaxprocs(), len(self.queues)) - 1
        deadline = time.monotonic() + 1.0
        while self.started.load() < want and time.monotonic() < deadline:
            pass

    def worker(self, wid):
        """Run own tasks first, then stolen ones; return when every queue is empty
        (all tasks are submitted before start, so none can appear later)."""
        self.started.add(1)
        others = [self.queues[(wid + k) % len(self.queues)] for k in range(1, len(self.queues))]
        while True:
            _, task, ok = pg.select(pg.Recv(self.queues[wid]), default=True)  # PopFront
            stolen = not ok
            if stolen:
                for q in others:
                    _, task, ok = pg.select(pg.Recv(q), default=True)  # steal
                    if ok:
                        break
                else:
                    self.wg.done()
                    return
            execute(task)
            self.results.send((task, wid, stolen, os.getpid()))
            pg.gosched()  # let this P's other workers in now, not at the end of a 10 ms time slice


def user_level(n):
    workers = pg.gomaxprocs()
    s = WorkStealingScheduler(max(workers, 2), n)
    for task in range(n):
        s.submit(0, task)  # all on worker 0: the others must steal
    t0 = time.perf_counter()
    s.start()
    s.wg.wait()
    secs = time.perf_counter() - t0
    done = [s.results.recv() for _ in range(n)]
    assert sorted(t for t, *_ in done) == list(range(n)), "a task was lost or ran twice"
    per_worker = {}
    for _, wid, stolen, pid in done:
        ran, st, _ = per_worker.get(wid, (0, 0, pid))
        per_worker[wid] = (ran + 1, st + stolen, pid)
    return secs, per_worker


# Part 2: the runtime's own stealing of goroutines


def task(i, results):
    execute(i)
    results.send((i, os.getpid()))


def spawner(n, results):
    for i in range(n):
        pg.go(task, i, results)


def runtime_level(n):
    results = pg.Chan(n)
    t0 = time.perf_counter()
    pg.go(spawner, n, results)
    done = [results.recv() for _ in range(n)]
    secs = time.perf_counter() - t0
    assert sorted(i for i, _ in done) == list(range(n)), "a goroutine was lost or ran twice"
    per_p = {}
    for _, pid in done:
        per_p[pid] = per_p.get(pid, 0) + 1
    return secs, per_p


def main(n):
    return pg.gomaxprocs(), user_level(n), runtime_level(n)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=400, help="tasks")
    n = ap.parse_args().n
    procs, (secs1, per_worker), (secs2, per_p) = pg.run(main, n)
    print(
        f"1. WorkStealingScheduler on channels: {n} tasks, all queued on worker 0, "
        f"{len(per_worker)} workers, procs={procs}: {secs1:.2f} s"
    )
    for wid, (ran, stolen, pid) in sorted(per_worker.items()):
        print(f"   worker {wid} (pid {pid}): ran {ran} tasks, {stolen} of them stolen")
    print(f"2. the runtime's runqsteal: {n} goroutines spawned by one goroutine: {secs2:.2f} s on {len(per_p)} P(s)")
    for pid, k in sorted(per_p.items()):
        print(f"   pid {pid}: {k} goroutines")
