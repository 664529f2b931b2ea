"""The seed's §2.3 pattern 1, the two-channel pipeline: clean, process in parallel, collect.

Stage 1, one goroutine, reads the raw records (``fetch_data``), cleans
them and sends them on ``raw_data`` (capacity 100), closing it at the end.
Stage 2, four workers, ranges over ``raw_data`` -- each record is received
by exactly one of them -- and sends results on ``processed`` (capacity 50).
Stage 3 closes ``processed`` once every worker is done (a WaitGroup), so
main's ``for result in processed`` ends.  The workers are stolen by idle
Ps, so stage 2 runs on every core.  Main checks the total against a
sequential computation and shows how many records each P processed.

Go original (§2.3)::

    rawData := make(chan *Data, 100)
    processed := make(chan *Result, 50)
    go func() {                        // stage 1: cleaning
        defer close(rawData)
        for data := range fetchData() { rawData <- sanitize(data) }
    }()
    const workers = 4
    var wg sync.WaitGroup
    wg.Add(workers)
    for i := 0; i < workers; i++ {     // stage 2: parallel processing
        go func() {
            defer wg.Done()
            for data := range rawData { processed <- complexProcessing(data) }
        }()
    }
    go func() { wg.Wait(); close(processed) }()   // stage 3: collection

Run::

    python3 examples/pipeline.py [N]
    parago run --procs 2 examples/pipeline.py 20000
"""

import os
import sys
import time

import parago as pg

WORKERS = 4


def fetch_data(n):
    for i in range(n):
        yield f" record {i} "


def sanitize(data):
    return int(data.strip().split()[1])


def complex_processing(v):
    return v * v


def clean(n, raw_data):
    try:
        for data in fetch_data(n):
            raw_data.send(sanitize(data))
    finally:
        raw_data.close()  # defer close(rawData)


def process(raw_data, processed, wg):
    done = 0
    try:
        for v in raw_data:
            processed.send((complex_processing(v), None))
            done += 1
    finally:
        processed.send((None, (os.getpid(), done)))  # this worker's tally, then wg.Done()
        wg.done()


def close_when_done(wg, processed):
    wg.wait()
    processed.close()


def main(n):
    raw_data, processed = pg.Chan(100), pg.Chan(50)
    wg = pg.WaitGroup()
    wg.add(WORKERS)
    t0 = time.perf_counter()
    pg.go(clean, n, raw_data)
    for _ in range(WORKERS):
        pg.go(process, raw_data, processed, wg)
    pg.go(close_when_done, wg, processed)
    total, per_p = 0, {}
    for result, tally in processed:  # until stage 3 closes it
        if tally is None:
            total += result
        else:
            per_p[tally[0]] = per_p.get(tally[0], 0) + tally[1]
    secs = time.perf_counter() - t0
    assert total == sum(complex_processing(i) for i in range(n)), f"wrong total {total}"
    assert sum(per_p.values()) == n, f"{sum(per_p.values())} records processed, {n} sent"
    return total, per_p, secs


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    total, per_p, secs = pg.run(main, n)
    print(f"sum of squares below {n}: {total}")
    print(
        f"{n:,} records through 1 cleaner, {WORKERS} workers and 1 collector in {secs:.2f} s; "
        + ", ".join(f"pid {pid}: {k:,}" for pid, k in sorted(per_p.items()))
    )
