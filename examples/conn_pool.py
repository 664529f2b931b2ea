"""The seed's §5.2 resource pool: a buffered channel of idle connections.

``get`` takes an idle connection from the channel, or, when there is none
(``select`` with ``default``), dials a new one with the factory; ``put``
returns it to the channel, or closes it when the pool is full.  The
"connections" are ``pg.Buffer`` sessions (shared memory, so a connection
can be handed between goroutines on any P) carrying an id and a use count.
Many clients on every P hammer a small pool; the program checks that every
request was served exactly once, that every connection dialled was either
closed or is back in the pool, and that the use counts add up.

Go original (§5.2)::

    type ConnPool struct {
        pool    chan net.Conn
        factory func() (net.Conn, error)
    }
    func (p *ConnPool) Get() (net.Conn, error) {
        select {
        case conn := <-p.pool: return conn, nil
        default:               return p.factory()
        }
    }
    func (p *ConnPool) Put(conn net.Conn) {
        select {
        case p.pool <- conn:
        default: conn.Close() // the pool is full: close it
        }
    }

Run::

    python3 examples/conn_pool.py [--clients 40] [--requests 5] [--size 4]
    parago run --procs 2 examples/conn_pool.py
"""

import argparse
import functools
import struct

import parago as pg


class Conn:
    """A pretend connection: an id and a use count in 16 bytes of shared memory."""

    def __init__(self, cid):
        self.buf = pg.Buffer(16)
        struct.pack_into("<qq", self.buf, 0, cid, 0)

    @property
    def id(self):
        return struct.unpack_from("<q", self.buf, 0)[0]

    @property
    def uses(self):
        return struct.unpack_from("<q", self.buf, 8)[0]

    def request(self, req):
        struct.pack_into("<q", self.buf, 8, self.uses + 1)  # only one client holds a conn at a time
        pg.sleep(0.001)  # the round trip
        return (req, self.id)


def dial(stats):
    return Conn(stats["dialled"].add(1))


class ConnPool:
    def __init__(self, size, factory, stats):
        self.pool = pg.Chan(size)
        self.factory = factory
        self.stats = stats

    def get(self):
        i, conn, _ = pg.select(pg.Recv(self.pool), default=True)
        return conn if i == 0 else self.factory()

    def put(self, conn):
        i, _, _ = pg.select(pg.Send(self.pool, conn), default=True)
        if i == -1:  # full: conn.Close()
            self.stats["closed"].add(1)
            self.stats["closed uses"].add(conn.uses)


def client(pool, cid, requests, in_use, peak, results, wg):
    try:
        serve(pool, cid, requests, in_use, peak, results)
    finally:
        wg.done()  # Go's defer wg.Done()


def serve(pool, cid, requests, in_use, peak, results):
    for r in range(requests):
        conn = pool.get()
        n = in_use.add(1)
        while True:  # record the most connections in use at once
            p = peak.load()
            if n <= p or peak.compare_and_swap(p, n):
                break
        results.send(conn.request((cid, r)))
        in_use.add(-1)
        pool.put(conn)


def main(clients, requests, size):
    stats = {k: pg.atomic.Int64() for k in ("dialled", "closed", "closed uses")}
    pool = ConnPool(size, functools.partial(dial, stats), stats)
    in_use, peak = pg.atomic.Int64(), pg.atomic.Int64()
    results = pg.Chan(clients * requests)
    wg = pg.WaitGroup()
    for c in range(clients):
        wg.add(1)
        pg.go(client, pool, c, requests, in_use, peak, results, wg)
    served = [results.recv() for _ in range(clients * requests)]
    wg.wait()  # a client puts its last conn back after sending its last result
    assert sorted(req for req, _ in served) == [(c, r) for c in range(clients) for r in range(requests)]
    idle = []
    while len(pool.pool):  # every client is done: drain the idle connections
        idle.append(pool.pool.recv())
    dialled, closed = stats["dialled"].load(), stats["closed"].load()
    assert dialled == closed + len(idle), f"{dialled} dialled != {closed} closed + {len(idle)} idle"
    uses = stats["closed uses"].load() + sum(c.uses for c in idle)
    assert uses == len(served), f"connections were used {uses} times for {len(served)} requests"
    return len(served), dialled, closed, len(idle), peak.load(), pg.gomaxprocs()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--requests", type=int, default=5, help="requests per client")
    ap.add_argument("--size", type=int, default=4, help="idle connections the pool keeps")
    args = ap.parse_args()
    served, dialled, closed, idle, peak, procs = pg.run(main, args.clients, args.requests, args.size)
    print(f"{served} requests from {args.clients} clients served; procs={procs}, pool size {args.size}")
    print(
        f"  connections: {dialled} dialled, {closed} closed (pool full), {idle} idle in the pool; "
        f"at most {peak} in use at once"
    )
