"""The seed's §2.3 pattern 2, the zero-copy channel: 1 MiB buffers from a pool.

A producer goroutine takes a 1 MiB ``pg.Buffer`` from a ``pg.Pool``, fills
it and sends it on a channel; main receives it, processes it (checks its
sequence number and one byte of every page of its payload) and puts it back in the pool.
A Buffer is shared arena memory, so the channel moves only its handle:
the megabyte is never copied, whichever P the producer runs on, and the
pool keeps the number of buffers ever allocated small (about the
channel's capacity) however many messages flow.  For comparison the same
traffic is sent as ``bytes`` objects, which are copied into the channel
and out again; and the cost of one channel hop is measured alone, for a
Buffer handle and for 1 MiB of bytes.

Go original (§2.3)::

    type BigData struct{ payload [1 << 20]byte }
    ch := make(chan *BigData, 10)
    go func() {
        for {
            data := pool.Get().(*BigData)
            generateData(data)
            ch <- data
        }
    }()
    for data := range ch {
        process(data)
        pool.Put(data) // back into the sync.Pool
    }

Run::

    python3 examples/zero_copy.py [-n 200]
    parago run --procs 2 examples/zero_copy.py -n 50
"""

import argparse
import functools
import struct
import time

import parago as pg

MiB = 1 << 20
HEADER = 8  # the message's sequence number, then the payload
PAGE = 4096
PATTERNS = 16  # payload i is the byte i % 16 repeated: cheap to make, cheap to check


@functools.lru_cache(maxsize=PATTERNS)
def _pattern(p):
    return bytes([p]) * (MiB - HEADER)


def payload(seq):
    return _pattern(seq % PATTERNS)


@functools.lru_cache(maxsize=PATTERNS)
def _probe(p):
    return _pattern(p)[::PAGE]


def new_buffer(allocated):
    allocated.add(1)
    return pg.Buffer(MiB)


def generate(buf, seq):
    """generateData: write the header and the payload into the shared buffer in place."""
    struct.pack_into("<q", buf, 0, seq)
    buf[HEADER:] = payload(seq)


def process(view, seq):
    got = struct.unpack_from("<q", view, 0)[0]
    assert got == seq, f"message {seq} arrived as {got}"
    # one byte of every page: touches the whole megabyte without copying it
    assert view[HEADER::PAGE] == _probe(seq % PATTERNS), f"message {seq}: payload corrupted"


def producer(n, pool, ch):
    for seq in range(n):
        buf = pool.get()  # pool.Get().(*BigData)
        generate(buf, seq)
        ch.send(buf)  # only the handle travels
    ch.close()


def copying_producer(n, ch):
    for seq in range(n):
        ch.send(struct.pack("<q", seq) + payload(seq))  # a fresh 1 MiB object, copied through the channel
    ch.close()


def zero_copy(n):
    allocated = pg.atomic.Int64()
    pool = pg.Pool(functools.partial(new_buffer, allocated))
    ch = pg.Chan(10)
    t0 = time.perf_counter()
    pg.go(producer, n, pool, ch)
    for seq, buf in enumerate(ch):  # for data := range ch
        with memoryview(buf) as view:
            process(view, seq)
        pool.put(buf)  # pool.Put(data)
    return time.perf_counter() - t0, allocated.load()


def copying(n):
    ch = pg.Chan(10)
    t0 = time.perf_counter()
    pg.go(copying_producer, n, ch)
    for seq, data in enumerate(ch):
        process(memoryview(data), seq)
    return time.perf_counter() - t0


def hop(value, rounds=20):
    """Seconds for one send + receive of value through a buffered channel, in one goroutine:
    the channel's own cost, without producing or processing anything."""
    ch = pg.Chan(1)
    t0 = time.perf_counter()
    for _ in range(rounds):
        ch.send(value)
        ch.recv()
    return (time.perf_counter() - t0) / rounds


def main(n):
    zc_secs, allocated = zero_copy(n)
    copy_secs = copying(n)
    buf = pg.Buffer(MiB)
    hops = hop(buf), hop(bytes(buf))
    return pg.gomaxprocs(), zc_secs, allocated, copy_secs, hops


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="1 MiB messages to send")
    n = ap.parse_args().n
    procs, zc_secs, allocated, copy_secs, (hop_handle, hop_bytes) = pg.run(main, n)
    print(f"{n} messages of 1 MiB, channel capacity 10, procs={procs}; every message's sequence and payload checked")
    print(
        f"  pg.Buffer from pg.Pool (handle only) {zc_secs:7.3f} s  {n / zc_secs:8.0f} MiB/s   {allocated} buffers allocated"
    )
    print(
        f"  bytes (copied in and out)            {copy_secs:7.3f} s  {n / copy_secs:8.0f} MiB/s   {n} objects allocated"
    )
    print(
        f"  one channel hop of 1 MiB: {hop_handle * 1e6:,.0f} us as a pg.Buffer handle, "
        f"{hop_bytes * 1e6:,.0f} us as bytes (x{hop_bytes / hop_handle:.0f})"
    )
    assert allocated <= 10 + 4, f"the pool should bound the buffers to about the channel's capacity, got {allocated}"
