"""A small HTTP/1.1 server in Go's shape: a goroutine per connection,
keep-alive, handlers on every core sharing state through parago objects
(one of the seed's practice projects: a web service).

HTTP is parsed with h11 (``pip install 'parago[net]'``).  Routes:

    GET /            "hello, world"
    GET /count       bumps a pg.atomic.Int64 shared by every P; answers its value
    PUT /kv/KEY      stores the body in a pg.Map (Go's sync.Map, shared by every P)
    GET /kv/KEY      answers it (404 when absent)

Go original (net/http's shape, a goroutine per connection)::

    var hits atomic.Int64
    var store sync.Map
    http.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
        fmt.Fprintln(w, hits.Add(1))
    })
    http.ListenAndServe("127.0.0.1:8080", nil)

``--work-ms MS`` makes each request cost about MS ms of pure-Python CPU
(what a real handler spends), so spreading the connections over the cores
shows.

Self-test (the default): the server runs beside ``--clients`` client
goroutines that each send ``--requests`` keep-alive requests over one
connection (a mix of the routes), check every answer, and the program
checks that /count saw every request exactly once, that every stored value
reads back from any P, and that connections were served on every P.

Serving for a load generator::

    python3 examples/http_server.py --serve 127.0.0.1:8080 [--work-ms 1]
    wrk -t2 -c100 -d10s http://127.0.0.1:8080/         # Debian: apt install wrk
    ab -k -c 100 -n 100000 http://127.0.0.1:8080/      # apache2-utils

``--serve`` uses ``pg.net.serve``: a SO_REUSEPORT listener on every P; the
self-test uses Go's accept loop (``for conn in ln: pg.go(handle, conn, ...)``,
each connection moving to the P that runs its goroutine).

Run::

    python3 examples/http_server.py [--clients 20] [--requests 10] [--work-ms 0]
    parago run --procs 2 examples/http_server.py
"""

import argparse
import os
import time

import h11

import parago as pg


def burn(ms):
    """About ms milliseconds of pure-Python work."""
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x += i * i
    return x


def respond(conn, h, status, body, keep):
    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    if not keep:
        headers.append(("connection", "close"))
    conn.write(h.send(h11.Response(status_code=status, headers=headers)))
    conn.write(h.send(h11.Data(data=body)) + h.send(h11.EndOfMessage()))


def route(method, target, body, hits, store):
    if target == b"/" and method == b"GET":
        return 200, b"hello, world\n"
    if target == b"/count" and method == b"GET":
        return 200, b"%d\n" % hits.add(1)
    if target.startswith(b"/kv/"):
        key = target[4:].decode()
        if method == b"PUT":
            store.store(key, body)
            return 200, b"stored\n"
        if method == b"GET":
            v, ok = store.load(key)
            return (200, v) if ok else (404, b"not found\n")
    return 404, b"not found\n"


def handle(conn, hits, store, work_ms, served=None):
    """One connection, keep-alive: read a request, answer, next one."""
    h = h11.Connection(h11.SERVER)
    n = 0
    with conn:
        while True:
            req, body = None, b""
            while True:
                ev = h.next_event()
                if ev is h11.NEED_DATA:
                    h.receive_data(conn.read())
                    continue
                if isinstance(ev, h11.Request):
                    req = ev
                elif isinstance(ev, h11.Data):
                    body += ev.data
                elif isinstance(ev, h11.EndOfMessage):
                    break
                elif isinstance(ev, h11.ConnectionClosed) or ev is h11.PAUSED:
                    if served is not None:
                        served.send((os.getpid(), n))
                    return
            if work_ms:
                burn(work_ms)
            status, out = route(req.method, req.target, body, hits, store)
            respond(conn, h, status, out, h.our_state is not h11.MUST_CLOSE)
            n += 1
            if h.our_state is h11.MUST_CLOSE:
                break
            h.start_next_cycle()
    if served is not None:
        served.send((os.getpid(), n))


def accept_loop(ln, hits, store, work_ms, served):
    for conn in ln:  # until main closes the listener
        pg.go(handle, conn, hits, store, work_ms, served)


def request(conn, h, method, target, body=b""):
    headers = [("host", "localhost"), ("content-length", str(len(body)))]
    conn.write(h.send(h11.Request(method=method, target=target, headers=headers)))
    conn.write(h.send(h11.Data(data=body)) + h.send(h11.EndOfMessage()) if body else h.send(h11.EndOfMessage()))
    status, out = None, b""
    while True:
        ev = h.next_event()
        if ev is h11.NEED_DATA:
            h.receive_data(conn.read())
        elif isinstance(ev, h11.Response):
            status = ev.status_code
        elif isinstance(ev, h11.Data):
            out += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            h.start_next_cycle()
            return status, out


def client(addr, i, n, results):
    conn = pg.net.dial(addr, timeout=30)
    h = h11.Connection(h11.CLIENT)
    counts = []
    with conn:
        for j in range(n):
            k = j % 3
            if k == 0:
                assert request(conn, h, "GET", "/") == (200, b"hello, world\n")
            elif k == 1:
                status, out = request(conn, h, "GET", "/count")
                assert status == 200
                counts.append(int(out))
            else:
                assert request(conn, h, "PUT", f"/kv/c{i}-{j}", b"value %d %d" % (i, j)) == (200, b"stored\n")
                assert request(conn, h, "GET", f"/kv/c{i}-{j}") == (200, b"value %d %d" % (i, j))
        assert request(conn, h, "GET", "/missing")[0] == 404
    results.send((i, counts))


def selftest(n_clients, n_requests, work_ms):
    ln = pg.net.listen("127.0.0.1:0")
    hits = pg.atomic.Int64(0)
    store = pg.Map()
    served = pg.Chan(n_clients)
    results = pg.Chan(n_clients)
    pg.go_local(accept_loop, ln, hits, store, work_ms, served)
    t0 = time.perf_counter()
    for i in range(n_clients):
        pg.go(client, ln.addr, i, n_requests, results)
    counts = []
    for _ in range(n_clients):
        _, c = results.recv()
        counts += c
    elapsed = time.perf_counter() - t0
    # /count answered 1..N, each once: the atomic saw every request, across Ps
    assert sorted(counts) == list(range(1, len(counts) + 1)), "the shared counter lost or repeated a request"
    # every value stored by a connection on one P reads back from this P
    for i in range(n_clients):
        for j in range(2, n_requests, 3):
            assert store.load(f"c{i}-{j}") == (b"value %d %d" % (i, j), True)
    per_p = {}
    total = 0
    for _ in range(n_clients):
        pid, n = served.recv()
        per_p[pid] = per_p.get(pid, 0) + 1
        total += n
    ln.close()
    assert len(per_p) == pg.gomaxprocs(), f"connections served in {len(per_p)} of {pg.gomaxprocs()} Ps only"
    expected = n_clients * (n_requests + n_requests // 3 + 1)
    assert total == expected, f"served {total} requests, expected {expected}"
    print(f"served {total:,} HTTP/1.1 requests over {n_clients} keep-alive connections; procs={pg.gomaxprocs()}")
    print(
        f"  connections on {len(per_p)} P(s): "
        + ", ".join(str(v) for v in sorted(per_p.values(), reverse=True))
        + f"; /count reached {hits.load()}; {total / elapsed:,.0f} requests/s"
    )


def serve_forever(addr, work_ms):
    hits = pg.atomic.Int64(0)
    store = pg.Map()
    print(f"serving http://{addr}/ on {pg.gomaxprocs()} P(s); Ctrl-C stops", flush=True)
    pg.net.serve(addr, lambda conn: handle(conn, hits, store, work_ms))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--work-ms", type=float, default=0.0)
    ap.add_argument("--serve", metavar="HOST:PORT", help="serve until Ctrl-C (for wrk/ab) instead of the self-test")
    a = ap.parse_args()
    if a.serve:
        try:
            pg.run(serve_forever, a.serve, a.work_ms)
        except KeyboardInterrupt:
            pass
    else:
        pg.run(selftest, a.clients, a.requests, a.work_ms)
