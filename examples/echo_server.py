"""An echo server in Go's shape: an accept loop that starts a goroutine per
connection -- and the connections spread over every core (the seed's §1.2,
step 3 of schedule(): the netpoller parks goroutines, not Ps).

Go original::

    ln, _ := net.Listen("tcp", "127.0.0.1:0")
    for {
        conn, err := ln.Accept()
        if err != nil { return }
        go handle(conn)
    }

``pg.go(handle, conn)`` moves the connection to whichever P runs the new
goroutine (its socket travels between the processes; no byte is lost), so
the handlers run on every P while the accept loop stays on one.  Clients
are goroutines too: each dials, sends ``--messages`` requests of
``--size`` bytes, and checks that every echo comes back exactly.  The
program checks that every message of every client was echoed once and
that the handlers ran on every P.

Run::

    python3 examples/echo_server.py [--clients 200] [--messages 20] [--size 64]
    parago run --procs 2 examples/echo_server.py
"""

import argparse
import os
import time

import parago as pg


def handle(conn, served, per_p):
    """One connection: echo until the client closes its side."""
    with conn:
        n = 0
        while True:
            data = conn.read()
            if not data:
                break
            conn.write(data)
            n += len(data)
    served.add(n)
    per_p.send(os.getpid())  # which P (process) ran this handler


def client(addr, i, messages, size, done):
    conn = pg.net.dial(addr, timeout=30)
    f = conn.makefile("rb")
    ok = 0
    for j in range(messages):
        msg = (b"%d.%d:" % (i, j)).ljust(size - 1, b"x") + b"\n"
        conn.write(msg)
        if f.readline() == msg:
            ok += 1
    conn.close()
    done.send((i, ok))


def accept_loop(ln, served, per_p):
    for conn in ln:  # ends when main closes the listener
        pg.go(handle, conn, served, per_p)


def main(clients, messages, size):
    ln = pg.net.listen("127.0.0.1:0")
    served = pg.atomic.Int64(0)
    per_p = pg.Chan(clients)
    done = pg.Chan(clients)
    pg.go_local(accept_loop, ln, served, per_p)  # the listener stays on this P
    t0 = time.perf_counter()
    for i in range(clients):
        pg.go(client, ln.addr, i, messages, size, done)
    seen = {}
    for _ in range(clients):
        i, ok = done.recv()
        assert ok == messages, f"client {i}: {ok} of {messages} echoes came back right"
        seen[i] = seen.get(i, 0) + 1
    elapsed = time.perf_counter() - t0
    assert sorted(seen) == list(range(clients)) and set(seen.values()) == {1}
    counts = {}
    for _ in range(clients):
        p = per_p.recv()
        counts[p] = counts.get(p, 0) + 1
    ln.close()
    total = clients * messages
    assert served.load() == total * size, f"served {served.load()} bytes, expected {total * size}"
    assert len(counts) == pg.gomaxprocs(), f"handlers ran in {len(counts)} of {pg.gomaxprocs()} Ps only"
    print(f"echoed {total:,} messages of {size} bytes over {clients} connections; procs={pg.gomaxprocs()}")
    print(f"  handlers on {len(counts)} P(s): " + ", ".join(str(n) for n in sorted(counts.values(), reverse=True)) + " connections")
    print(f"  {total / elapsed:,.0f} round trips/s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    if a.size < 16:
        ap.error("--size must be >= 16")
    pg.run(main, a.clients, a.messages, a.size)
