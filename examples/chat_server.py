"""A chat server: connections on every core, one broadcast hub goroutine
fanning every message out to every connection through channels -- what N
independent server processes (SO_REUSEPORT, ``uvicorn --workers N``)
cannot do without a broker between them (the seed's §1.2: the netpoller
under goroutines, and channels between the cores).

    accept loop (P0) --pg.go(session, conn)--> session on any P
                                               |  reads lines   -> hub.msgs
                                               |  its outbox    <- hub
    hub (one goroutine): joins, leaves, msgs -> every outbox (a Chan each)
    writer (go_local beside its session): outbox -> conn.write

Go original (the shape of gorilla/websocket's chat example, on TCP)::

    for { conn, _ := ln.Accept(); go session(conn, hub) }
    func (h *Hub) run() {
        for { select {
        case c := <-h.join:  h.clients[c] = true
        case c := <-h.leave: delete(h.clients, c); close(c.out)
        case m := <-h.msgs:  for c := range h.clients { c.out <- m }
        } }
    }

``--clients`` clients (goroutines) join, wait until everyone has joined,
each says ``--messages`` lines, and reads until it has heard every line of
every client.  The program checks that every client heard every message
exactly once and that the sessions ran on every P.

Run::

    python3 examples/chat_server.py [--clients 20] [--messages 5]
    parago run --procs 2 examples/chat_server.py
"""

import argparse
import os
import time

import parago as pg


def hub(join, leave, msgs, quit):
    outboxes = {}  # session id -> its outbox channel
    while True:
        i, v, ok = pg.select(pg.Recv(join), pg.Recv(leave), pg.Recv(msgs), pg.Recv(quit))
        if i == 0:
            sid, out = v
            outboxes[sid] = out
            out.send(b"welcome %d\n" % sid)
        elif i == 1:
            out = outboxes.pop(v, None)
            if out is not None:
                out.close()  # its writer ends, and closes the conn
        elif i == 2:
            for out in outboxes.values():
                out.send(v)
        else:
            return


def writer(conn, out):
    try:
        for line in out:  # until the hub closes the outbox
            conn.write(line)
    finally:
        conn.close()


def session(conn, sid, join, leave, msgs, where):
    where.send(os.getpid())  # which P (process) serves this connection
    out = pg.Chan(256)
    pg.go_local(writer, conn, out)  # beside the session: the conn is shared on this P, not copied
    join.send((sid, out))
    f = conn.makefile("rb")
    try:
        for line in f:  # lines the client says, until it hangs up
            msgs.send(line)
    except pg.net.ClosedConnError:
        pass  # the writer closed it
    finally:
        leave.send(sid)


def client(addr, i, n_clients, n_messages, joined, start, results):
    conn = pg.net.dial(addr, timeout=30)
    f = conn.makefile("rb")
    assert f.readline().startswith(b"welcome ")
    joined.done()
    start.recv_ok()  # everyone is in: now talk
    for j in range(n_messages):
        conn.write(b"client %d says %d\n" % (i, j))
    heard = {}
    for _ in range(n_clients * n_messages):
        line = f.readline()
        if not line:
            break
        heard[line] = heard.get(line, 0) + 1
    conn.close()
    results.send((i, heard))


def main(n_clients, n_messages):
    ln = pg.net.listen("127.0.0.1:0")
    join, leave, msgs, quit = pg.Chan(), pg.Chan(), pg.Chan(1024), pg.Chan()
    where = pg.Chan(n_clients)
    pg.go(hub, join, leave, msgs, quit)
    joined = pg.WaitGroup()
    joined.add(n_clients)
    start = pg.Chan()
    results = pg.Chan(n_clients)
    t0 = time.perf_counter()
    for i in range(n_clients):
        pg.go(client, ln.addr, i, n_clients, n_messages, joined, start, results)
    for sid in range(n_clients):
        pg.go(session, ln.accept(), sid, join, leave, msgs, where)
    joined.wait()
    start.close()
    expected = {b"client %d says %d\n" % (i, j) for i in range(n_clients) for j in range(n_messages)}
    for _ in range(n_clients):
        i, heard = results.recv()
        assert set(heard) == expected, f"client {i} missed {len(expected - set(heard))} messages"
        assert set(heard.values()) == {1}, f"client {i} heard a message twice"
    elapsed = time.perf_counter() - t0
    procs = {}
    for _ in range(n_clients):
        pid = where.recv()
        procs[pid] = procs.get(pid, 0) + 1
    quit.send(None)
    ln.close()
    assert len(procs) == pg.gomaxprocs(), f"sessions ran in {len(procs)} of {pg.gomaxprocs()} Ps only"
    total = n_clients * n_messages
    print(f"chat: {n_clients} clients x {n_messages} messages: every client heard all {total} messages, once each")
    print(
        f"  sessions on {len(procs)} P(s): "
        + ", ".join(str(n) for n in sorted(procs.values(), reverse=True))
        + f"; {total * n_clients:,} deliveries in {elapsed:.2f} s; procs={pg.gomaxprocs()}"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--messages", type=int, default=5)
    a = ap.parse_args()
    pg.run(main, a.clients, a.messages)
