"""net: pg.net echo servers against uvloop asyncio servers.

    echo    64-byte request / 64-byte response over C concurrent connections
            (1,000 full, 100 quick) for D seconds; round trips/s.

Servers, each in its own process tree, measured in the same invocation:
  - parago accept loop: ``for conn in ln: pg.go(handle, conn)`` (each conn
    moves to the P that runs its goroutine), procs = 1 .. nproc
  - parago ``pg.net.serve`` (a SO_REUSEPORT listener on every P), procs = 1 .. nproc
  - asyncio + uvloop, one process (a Protocol that echoes: the fastest
    asyncio shape)
  - nproc processes of that server on one SO_REUSEPORT port (what
    ``uvicorn --workers N`` does)

The load generator is one process for everyone: asyncio + uvloop with C
client connections, each sending a request and awaiting its answer in a
loop (Python: it competes for the CPUs with the server on a small
machine -- the same for every server; the ratios are what to read).

Run: python3 benchmarks/bench_net.py [--quick] [--repeat N] [--procs N] [--conns C] [--seconds D]
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["echo"]
FORK = multiprocessing.get_context("fork")
MSG = 64


# ======================================================================
# servers (each runs in a child process; it writes its port on `ready`
# and serves until stopped: a parago server when its stop pipe becomes
# readable -- pg.run turns SIGTERM into KeyboardInterrupt in main -- a
# uvloop one at SIGTERM)


def _pg_handle(conn: pg.net.Conn) -> None:
    with conn:
        while True:
            b = conn.read()
            if not b:
                return
            conn.write(b)


def _pg_accept_loop(ln: pg.net.Listener) -> None:
    for conn in ln:
        pg.go(_pg_handle, conn)


def _pg_wait_term(rfd: int) -> None:
    from parago._runtime import netpoll

    netpoll.wait_fd(rfd, False, None)  # the parent writes a byte (or exits)


def _pg_accept_main(port: int, ready: Any, rfd: int) -> None:
    ln = pg.net.listen(f"127.0.0.1:{port}", backlog=4096)
    ready.send(int(ln.addr.rsplit(":", 1)[1]))
    pg.go_local(_pg_accept_loop, ln)
    _pg_wait_term(rfd)
    ln.close()


def _pg_serve_main(port: int, ready: Any, rfd: int) -> None:
    ctx, cancel = pg.context.with_cancel(pg.context.background())
    done = pg.Chan(1)

    def server() -> None:
        pg.net.serve(f"127.0.0.1:{port}", _pg_handle, ctx=ctx)
        done.send(None)

    pg.go_local(server)
    for _ in range(500):  # until it accepts
        try:
            pg.net.dial(f"127.0.0.1:{port}").close()
            break
        except ConnectionRefusedError:
            pg.sleep(0.01)
    ready.send(port)
    _pg_wait_term(rfd)
    cancel()
    done.recv()


def _pg_server(kind: str, procs: int, port: int, ready: Any, stop_r: int, stop_w: int) -> None:
    os.close(stop_w)
    main = _pg_accept_main if kind == "accept" else _pg_serve_main
    pg.run(main, port, ready, stop_r, procs=procs)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.t = transport

    def data_received(self, data: bytes) -> None:
        self.t.write(data)


def _uv_server(port: int, ready: Any, reuse_port: bool) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = await loop.create_server(_Echo, "127.0.0.1", port, reuse_port=reuse_port, backlog=4096)
        ready.send(srv.sockets[0].getsockname()[1])
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        await stop
        srv.close()

    uvloop.run(main())


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Servers:
    """Start a server (one process, or several on one SO_REUSEPORT port); stop them."""

    def __init__(self, kind: str, procs: int) -> None:
        self.procs_list: list[Any] = []
        self.stop_r, self.stop_w = os.pipe()
        port = _free_port()
        n = procs if kind == "uvloop_n" else 1
        for _ in range(n):
            rd, wr = FORK.Pipe(duplex=False)
            if kind in ("accept", "serve"):
                p = FORK.Process(target=_pg_server, args=(kind, procs, port, wr, self.stop_r, self.stop_w), daemon=False)
            else:
                p = FORK.Process(target=_uv_server, args=(port, wr, kind == "uvloop_n"), daemon=True)
            p._uv = kind.startswith("uvloop")  # type: ignore[attr-defined]
            p.start()
            wr.close()
            if not rd.poll(60):
                self.stop()
                raise RuntimeError(f"{kind} server did not start")
            self.port = rd.recv()
            rd.close()
            self.procs_list.append(p)

    def stop(self) -> None:
        os.write(self.stop_w, b"x")
        for p in self.procs_list:
            if p.is_alive() and getattr(p, "_uv", False):
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs_list:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
        os.close(self.stop_r)
        os.close(self.stop_w)


# ======================================================================
# the load generator (one process)


def _load(port: int, conns: int, seconds: float, out: Any) -> None:
    import uvloop

    async def one(stop_at: float, counts: list, i: int) -> None:
        for attempt in range(50):
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.02 * (attempt + 1))
        else:
            raise RuntimeError("could not connect")
        msg = (b"%063d" % i) + b"\n"
        n = 0
        bad = 0
        while time.monotonic() < stop_at:
            w.write(msg)
            got = await r.readexactly(MSG)
            n += 1
            if got != msg:
                bad += 1
        w.close()
        counts.append((n, bad))

    async def main() -> tuple[int, int, float]:
        counts: list = []
        t0 = time.monotonic()
        stop_at = t0 + seconds
        await asyncio.gather(*(one(stop_at, counts, i) for i in range(conns)))
        return sum(c[0] for c in counts), sum(c[1] for c in counts), time.monotonic() - t0

    out.send(uvloop.run(main()))


def _measure(kind: str, procs: int, conns: int, seconds: float) -> tuple[float, int]:
    srv = _Servers(kind, procs)
    try:
        rd, wr = FORK.Pipe(duplex=False)
        p = FORK.Process(target=_load, args=(srv.port, conns, seconds, wr), daemon=True)
        p.start()
        wr.close()
        if not rd.poll(seconds + 120):
            p.kill()
            raise RuntimeError("the load generator did not finish")
        n, bad, elapsed = rd.recv()
        p.join(10)
        return n / elapsed, bad
    finally:
        srv.stop()


def bench_echo(b: h.Bench) -> None:
    conns = b.args.conns or b.size(1000, 100)
    seconds = b.args.seconds or (5.0 if not b.quick else 1.5)
    b.note(f"load generator: one asyncio+uvloop process, {conns} connections, {seconds:g} s per run")
    impls: list[tuple[str, str, int]] = []
    for p in range(1, b.procs + 1):
        impls.append((f"parago accept loop procs={p}", "accept", p))
        impls.append((f"parago serve procs={p}", "serve", p))
    impls.append(("uvloop asyncio 1 process", "uvloop", 1))
    if b.procs > 1:
        impls.append((f"uvloop asyncio {b.procs} processes (SO_REUSEPORT)", "uvloop_n", b.procs))
    rows = {}
    for label, kind, p in impls:
        samples = []
        for _ in range(b.repeat):
            r = b.guard("echo", label, _measure, kind, p, conns, seconds)
            if r is None:
                break
            rate, bad = r
            b.check(bad == 0, "echo", label, f"{bad} answers differed from their requests")
            samples.append(rate)
        if samples:
            rows[label] = b.add_samples("echo", label, "round trips", samples, "rt/s")
            print(f"  echo [{label}]: {h.fmt_num(rows[label]['value'])} rt/s", flush=True)
    one = rows.get("uvloop asyncio 1 process")
    for label, row in rows.items():
        if label.startswith("parago"):
            b.compare("echo", row, one)
    multi = rows.get(f"uvloop asyncio {b.procs} processes (SO_REUSEPORT)")
    for label in (f"parago accept loop procs={b.procs}", f"parago serve procs={b.procs}"):
        if label in rows:
            b.compare("echo", rows[label], multi)


def _extra(ap: Any) -> None:
    ap.add_argument("--conns", type=int, default=None, help="concurrent connections (default 1000; quick 100)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per run (default 5; quick 1.5)")


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("net", __doc__.splitlines()[0], NAMES, argv, extra=_extra)
    if b.want("echo"):
        bench_echo(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
