"""The seed's §5.2 resource pool: a buffered channel of connections.

"Connections" here are ids of arena-backed session buffers (pg.Buffer), so
they can be handed to goroutines on any P; get = recv, put = send, and the
channel's capacity bounds how many are in use at once.

Run: python examples/conn_pool.py
"""

import parago as pg


class Pool:
    def __init__(self, size):
        self.conns = pg.Chan(size)
        for i in range(size):
            buf = pg.Buffer(64)
            buf[0] = i
            self.conns.send(buf)

    def get(self):
        return self.conns.recv()

    def put(self, conn):
        self.conns.send(conn)


def client(pool, req, in_use, peak, results):
    conn = pool.get()
    try:
        n = in_use.add(1)
        while True:  # record the peak number of connections in use
            p = peak.load()
            if n <= p or peak.compare_and_swap(p, n):
                break
        pg.sleep(0.001)
        results.send((req, conn[0]))
        in_use.add(-1)
    finally:
        pool.put(conn)


def main(clients=40, size=4):
    pool = Pool(size)
    in_use, peak = pg.atomic.Int64(), pg.atomic.Int64()
    results = pg.Chan(clients)
    for r in range(clients):
        pg.go(client, pool, r, in_use, peak, results)
    served = sorted(results.recv()[0] for _ in range(clients))
    assert served == list(range(clients))
    return peak.load(), size


if __name__ == "__main__":
    peak, size = pg.run(main)
    print(f"40 requests served; at most {peak} of {size} pooled connections in use at once")
