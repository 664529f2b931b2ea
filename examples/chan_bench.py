"""The seed's §2.2 channel benchmark: N values through an unbuffered channel.

A consumer goroutine receives N ints while main sends them: every send
waits for its receiver (a synchronous hand-off), so the time per value is
the cost of one rendezvous.  The same is then measured with a buffered
channel (the sender runs ahead while the buffer has room) and with the
batched ``send_many``/``recv_many`` (one arena round trip for a whole
batch).  Each consumer sends back the sum and the count it received, and
the program checks both: every value arrived exactly once.

Go original (§2.2)::

    func BenchmarkUnbufferedChan(b *testing.B) {
        ch := make(chan int)
        go func() {
            for i := 0; i < b.N; i++ { <-ch }
        }()
        for i := 0; i < b.N; i++ { ch <- i }
    }

Run::

    python3 examples/chan_bench.py [-n 100000]
    parago run --procs 1 examples/chan_bench.py -n 20000
"""

import argparse
import time

import parago as pg

BATCH = 256


def consumer(ch, n, out):
    total = 0
    for _ in range(n):  # for i := 0; i < b.N; i++ { <-ch }
        total += ch.recv()
    out.send((total, n))


def batch_consumer(ch, n, out):
    total = got = 0
    while got < n:
        vs = ch.recv_many(BATCH)
        total += sum(vs)
        got += len(vs)
    out.send((total, got))


def measure(cap, n, batched):
    ch, out = pg.Chan(cap), pg.Chan(1)
    pg.go(batch_consumer if batched else consumer, ch, n, out)
    t0 = time.perf_counter()
    if batched:
        for lo in range(0, n, BATCH):
            ch.send_many(range(lo, min(lo + BATCH, n)))
    else:
        for i in range(n):  # ch <- i
            ch.send(i)
    total, got = out.recv()
    secs = time.perf_counter() - t0
    assert (total, got) == (n * (n - 1) // 2, n), f"received {got} values summing to {total}"
    return secs


def main(n):
    rows = [
        ("unbuffered  make(chan int)", measure(0, n, False)),
        ("buffered    make(chan int, 128)", measure(128, n, False)),
        (f"batched     send_many/recv_many({BATCH}), cap 1024", measure(1024, n, True)),
    ]
    return pg.gomaxprocs(), rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100_000, help="values per channel (b.N)")
    n = ap.parse_args().n
    procs, rows = pg.run(main, n)
    print(f"{n:,} ints through a channel, one sender and one receiver, procs={procs}; every value checked")
    base = rows[0][1]
    for name, secs in rows:
        print(f"  {name:48} {secs / n * 1e9:9,.0f} ns/op  {n / secs:12,.0f} values/s  x{base / secs:.1f}")
