"""net: pg.net echo and HTTP servers against uvloop, gevent, Go and uvicorn.

    echo    64-byte request / 64-byte response over C concurrent connections
            (1,000 full, 100 quick) for D seconds; round trips/s.
    http    examples/http_server.py (``--serve``: pg.net.serve, h11) under
            wrk, GET / with a handler costing ~1 ms of pure-Python CPU
            (--work-ms), beside uvicorn (1 and N workers) serving the same
            answer after the same work from a trivial ASGI app
            (benchmarks/_asgi_hello.py); requests/s.

Servers, each in its own process tree, measured in the same invocation:
  - parago accept loop: ``for conn in ln: pg.go(handle, conn)`` (each conn
    moves to the P that runs its goroutine), procs = 1 .. nproc
  - parago ``pg.net.serve`` (a SO_REUSEPORT listener on every P), procs = 1 .. nproc
  - asyncio + uvloop, one process (a Protocol that echoes: the fastest
    asyncio shape)
  - nproc processes of that server on one SO_REUSEPORT port (what
    ``uvicorn --workers N`` does)
  - gevent's StreamServer (one process; greenlets, gevent's own loop)
  - Go's net: benchmarks/go/echo_server.go, GOMAXPROCS=nproc (when ``go``
    is on PATH)

The load generator is one process for everyone: benchmarks/go/echo_client.go
(GOMAXPROCS=1) when ``go`` is on PATH, else asyncio + uvloop; C client
connections, each sending a request and awaiting its answer in a loop (it
competes for the CPUs with the server on a small machine -- the same for
every server; the ratios are what to read).

The ``http`` load generator is wrk (Debian's package: ``apt install wrk``),
2 threads, the same for every server.  A peer that is not installed
(gevent, uvicorn, wrk, Go) is skipped with a line saying how to add it.

Run: python3 benchmarks/bench_net.py [--quick] [--repeat N] [--procs N] [--conns C] [--seconds D] [--work-ms MS]
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["echo", "http"]
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(BENCH_DIR, "..", "examples")
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


def _gevent_server(port: int, ready: Any) -> None:
    from gevent import signal_handler
    from gevent.server import StreamServer

    def handle(sock: Any, _addr: Any) -> None:
        while True:
            b = sock.recv(4096)
            if not b:
                break
            sock.sendall(b)
        sock.close()

    srv = StreamServer(("127.0.0.1", port), handle, backlog=4096)
    srv.init_socket()
    ready.send(srv.server_port)
    signal_handler(signal.SIGTERM, srv.stop)
    srv.serve_forever()


def _need_gevent() -> None:
    try:
        import gevent  # noqa: F401
    except ImportError:
        raise h.PeerMissing("gevent is not installed (pip install gevent)") from None


_go_built: dict[str, str | None] = {}


def _go_exe(b: h.Bench, program: str) -> str:
    """benchmarks/go/<program>.go built once per invocation; PeerMissing without Go."""
    go = None if b.args.no_go else h.go_binary()
    if go is None:
        why = "--no-go" if b.args.no_go else "`go` is not on PATH"
        raise h.PeerMissing(f"Go's net server needs Go ({why}; install Go >= 1.19)")
    if program not in _go_built:
        env = dict(os.environ)
        if not env.get("GOCACHE") and not env.get("HOME"):
            env["GOCACHE"] = os.path.join(tempfile.gettempdir(), "parago-bench-gocache")
        exe = os.path.join(tempfile.mkdtemp(prefix="parago-bench-net-"), program)
        r = subprocess.run(
            [go, "build", "-o", exe, os.path.join(h.GO_DIR, f"{program}.go")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        if r.returncode != 0:
            raise RuntimeError(f"go build {program}.go failed: {r.stderr.strip()}")
        _go_built[program] = exe
    exe = _go_built[program]
    assert exe is not None
    return exe


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Servers:
    """Start a server (one process, or several on one SO_REUSEPORT port); stop them."""

    def __init__(self, kind: str, procs: int, go_exe: str | None = None) -> None:
        self.procs_list: list[Any] = []
        self.popen: subprocess.Popen | None = None
        self.stop_r, self.stop_w = os.pipe()
        port = _free_port()
        if kind == "go":
            assert go_exe is not None
            self.popen = subprocess.Popen(
                [go_exe, "-procs", str(procs), "-port", "0"], stdout=subprocess.PIPE, text=True
            )
            assert self.popen.stdout is not None
            line = self.popen.stdout.readline()
            if not line.strip().isdigit():
                self.stop()
                raise RuntimeError("the Go echo server did not start")
            self.port = int(line)
            return
        n = procs if kind == "uvloop_n" else 1
        for _ in range(n):
            rd, wr = FORK.Pipe(duplex=False)
            if kind in ("accept", "serve"):
                p = FORK.Process(
                    target=_pg_server, args=(kind, procs, port, wr, self.stop_r, self.stop_w), daemon=False
                )
            elif kind == "gevent":
                p = FORK.Process(target=_gevent_server, args=(port, wr), daemon=True)
            else:
                p = FORK.Process(target=_uv_server, args=(port, wr, kind == "uvloop_n"), daemon=True)
            p._uv = kind.startswith("uvloop") or kind == "gevent"  # type: ignore[attr-defined]
            p.start()
            wr.close()
            if not rd.poll(60):
                self.stop()
                raise RuntimeError(f"{kind} server did not start")
            self.port = rd.recv()
            rd.close()
            self.procs_list.append(p)

    def pids(self) -> list[int]:
        """Every process of the server (a parago run's Ps are P0's children)."""
        if self.popen is not None:
            return [self.popen.pid]
        return [q for p in self.procs_list for q in _tree(p.pid)]

    def stop(self) -> None:
        if self.popen is not None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
            if self.popen.stdout is not None:
                self.popen.stdout.close()
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


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for c in f.read().split():
                out += _tree(int(c))
    except OSError:
        pass
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes, every thread (Linux /proc)."""
    ticks = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{pid}/task/{t}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


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


def _measure(
    kind: str, procs: int, conns: int, seconds: float, client: str | None, go_exe: str | None = None
) -> tuple[float, int, float]:
    """(round trips/s, wrong answers, the server's CPU per round trip in
    microseconds: what a round trip costs, whoever else wants the CPUs)."""
    if kind == "gevent":
        _need_gevent()
    srv = _Servers(kind, procs, go_exe)
    try:
        pids = srv.pids()
        cpu0 = _cpu_seconds(pids)
        rate, bad, n = _drive(srv, conns, seconds, client)
        return rate, bad, (_cpu_seconds(pids) - cpu0) / max(n, 1) * 1e6
    finally:
        srv.stop()


def _drive(srv: _Servers, conns: int, seconds: float, client: str | None) -> tuple[float, int, int]:
    """Run the load generator against srv: (round trips/s, wrong answers, round trips)."""
    if client is not None:
        r = subprocess.run(
            [client, "-port", str(srv.port), "-conns", str(conns), "-seconds", str(seconds), "-procs", "1"],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
        if r.returncode != 0:
            raise RuntimeError(f"the Go load generator failed: {r.stderr.strip()}")
        res = json.loads(r.stdout)
        return res["n"] / res["elapsed"], res["bad"], res["n"]
    rd, wr = FORK.Pipe(duplex=False)
    p = FORK.Process(target=_load, args=(srv.port, conns, seconds, wr), daemon=True)
    p.start()
    wr.close()
    if not rd.poll(seconds + 120):
        p.kill()
        raise RuntimeError("the load generator did not finish")
    n, bad, elapsed = rd.recv()
    p.join(10)
    return n / elapsed, bad, n


def _client(b: h.Bench) -> str | None:
    """The Go load generator when Go is there (it takes less of the CPUs
    the servers need than a Python one); None: the asyncio one."""
    try:
        return _go_exe(b, "echo_client")
    except h.PeerMissing:
        return None
    except RuntimeError as e:
        b.note(f"echo: the Go load generator did not build ({e}); using the asyncio one")
        return None


def bench_echo(b: h.Bench) -> None:
    conns = b.args.conns or b.size(1000, 100)
    seconds = b.args.seconds or (5.0 if not b.quick else 1.5)
    client = _client(b)
    gen = "a Go process (benchmarks/go/echo_client.go, GOMAXPROCS=1)" if client else "an asyncio+uvloop process"
    b.note(f"echo: load generator {gen}, {conns} connections, {seconds:g} s per run")
    impls: list[tuple[str, str, int]] = []
    for p in range(1, b.procs + 1):
        impls.append((f"parago accept loop procs={p}", "accept", p))
        impls.append((f"parago serve procs={p}", "serve", p))
    impls.append(("uvloop asyncio 1 process", "uvloop", 1))
    if b.procs > 1:
        impls.append((f"uvloop asyncio {b.procs} processes (SO_REUSEPORT)", "uvloop_n", b.procs))
    impls.append(("gevent StreamServer 1 process", "gevent", 1))
    impls.append((f"go net GOMAXPROCS={b.procs}", "go", b.procs))
    rows, cpu_rows = {}, {}
    for label, kind, p in impls:
        samples, cpu = [], []
        for _ in range(b.repeat):
            if kind == "go":
                exe = b.guard("echo", label, _go_exe, b, "echo_server")
                if exe is None:
                    break
                r = b.guard("echo", label, _measure, kind, p, conns, seconds, client, exe)
            else:
                r = b.guard("echo", label, _measure, kind, p, conns, seconds, client)
            if r is None:
                break
            rate, bad, us = r
            b.check(bad == 0, "echo", label, f"{bad} answers differed from their requests")
            samples.append(rate)
            cpu.append(us)
        if samples:
            rows[label] = b.add_samples("echo", label, "round trips", samples, "rt/s")
            # what one round trip costs the server in CPU, every process and
            # thread of it: the machine-independent side of the rate above
            cpu_rows[label] = b.add_samples("echo", label, "server CPU per round trip", cpu, "µs/rt")
            print(
                f"  echo [{label}]: {h.fmt_num(rows[label]['value'])} rt/s, "
                f"server CPU {cpu_rows[label]['value']:.1f} µs per round trip",
                flush=True,
            )
    one = rows.get("uvloop asyncio 1 process")
    for label, row in rows.items():
        if label.startswith("parago"):
            b.compare("echo", row, one)
            b.compare("echo cpu", cpu_rows[label], cpu_rows.get("gevent StreamServer 1 process"))
    multi = rows.get(f"uvloop asyncio {b.procs} processes (SO_REUSEPORT)")
    for label in (f"parago accept loop procs={b.procs}", f"parago serve procs={b.procs}"):
        if label in rows:
            b.compare("echo", rows[label], multi)
            b.compare("echo", rows[label], rows.get("gevent StreamServer 1 process"))
            b.compare("echo", rows[label], rows.get(f"go net GOMAXPROCS={b.procs}"))


# ======================================================================
# http: examples/http_server.py and uvicorn under wrk


def _get_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        return data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello, world\n")
    except OSError:
        return False


class _HttpServer:
    """examples/http_server.py --serve (procs Ps) or uvicorn (procs workers),
    a process tree of its own; stopped with SIGINT (both end on Ctrl-C)."""

    def __init__(self, kind: str, procs: int, work_ms: float) -> None:
        self.port = _free_port()
        env = dict(os.environ, BENCH_WORK_MS=str(work_ms), PARAGO_MAXPROCS=str(procs))
        if kind == "parago":
            cmd = [
                sys.executable,
                os.path.join(EXAMPLES, "http_server.py"),
                "--serve",
                f"127.0.0.1:{self.port}",
                "--work-ms",
                str(work_ms),
            ]
        else:
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                BENCH_DIR,
                "_asgi_hello:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(procs),
                "--log-level",
                "warning",
                "--no-access-log",
                "--lifespan",
                "off",
                "--backlog",
                "4096",
            ]
        # its stderr in a file: wrk's connections closing at the end of a
        # run are broken pipes the server logs (net/http's shape); shown
        # only when the server does not start
        self.err = tempfile.TemporaryFile()
        self.p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.err, start_new_session=True)
        deadline = time.monotonic() + 60
        while not _get_ok(self.port):
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.err.seek(0)
                tail = self.err.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"{kind} http server did not start (exit {self.p.returncode}): {tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGINT)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        try:
            os.killpg(self.p.pid, signal.SIGKILL)  # a worker left behind
        except ProcessLookupError:
            pass
        self.err.close()


_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_SOCK = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def _wrk(kind: str, procs: int, conns: int, seconds: float, work_ms: float) -> tuple[float, str, int]:
    """(requests/s, what went wrong or "", requests still unanswered after
    wrk's 10 s timeout: latency on a loaded machine, not a wrong answer)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise h.PeerMissing("wrk is not installed (Debian/Ubuntu: apt install wrk)")
    if kind == "uvicorn":
        try:
            import uvicorn  # noqa: F401
        except ImportError:
            raise h.PeerMissing("uvicorn is not installed (pip install uvicorn)") from None
    srv = _HttpServer(kind, procs, work_ms)
    try:
        r = subprocess.run(
            [wrk, "-t2", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", f"http://127.0.0.1:{srv.port}/"],
            capture_output=True,
            text=True,
            timeout=seconds + 120,
        )
    finally:
        srv.stop()
    m = _WRK_RATE.search(r.stdout)
    if r.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed: {r.stdout.strip()} {r.stderr.strip()}")
    bad = []
    non2xx = _WRK_NON2XX.search(r.stdout)
    if non2xx:
        bad.append(f"{non2xx.group(1)} non-2xx answers")
    sock = _WRK_SOCK.search(r.stdout)
    timeouts = 0
    if sock:
        conn_e, read_e, write_e, timeouts = map(int, sock.groups())
        if conn_e or read_e or write_e:
            bad.append(f"socket errors: connect {conn_e}, read {read_e}, write {write_e}")
    return float(m.group(1)), "; ".join(bad), timeouts


def bench_http(b: h.Bench) -> None:
    conns = b.args.conns or b.size(256, 64)
    seconds = b.args.seconds or (5.0 if not b.quick else 2.0)
    work_ms = b.args.work_ms
    b.note(
        f"http: wrk -t2 -c{conns} -d{seconds:g}s GET /, each request ~{work_ms:g} ms of pure-Python CPU; "
        "parago: examples/http_server.py --serve (pg.net.serve, h11); "
        "uvicorn: its defaults (uvloop, httptools), benchmarks/_asgi_hello.py"
    )
    impls: list[tuple[str, str, int]] = [(f"parago http_server procs={p}", "parago", p) for p in range(1, b.procs + 1)]
    impls.append(("uvicorn 1 worker", "uvicorn", 1))
    if b.procs > 1:
        impls.append((f"uvicorn {b.procs} workers", "uvicorn", b.procs))
    rows = {}
    for label, kind, p in impls:
        samples = []
        for _ in range(b.repeat):
            r = b.guard("http", label, _wrk, kind, p, conns, seconds, work_ms)
            if r is None:
                break
            rate, bad, timeouts = r
            b.check(not bad, "http", label, f"wrk saw errors: {bad}")
            if timeouts:
                b.note(f"http [{label}]: {timeouts} requests unanswered within wrk's 10 s timeout")
            samples.append(rate)
        if samples:
            rows[label] = b.add_samples("http", label, "requests", samples, "req/s")
            print(f"  http [{label}]: {h.fmt_num(rows[label]['value'])} req/s", flush=True)
    one = rows.get("uvicorn 1 worker")
    multi = rows.get(f"uvicorn {b.procs} workers")
    for label, row in rows.items():
        if label.startswith("parago"):
            b.compare("http", row, one)
            if label.endswith(f"procs={b.procs}"):
                b.compare("http", row, multi)


def _extra(ap: Any) -> None:
    ap.add_argument("--conns", type=int, default=None, help="concurrent connections (default 1000; quick 100)")
    ap.add_argument("--seconds", type=float, default=None, help="seconds per run (default 5; quick 1.5 echo, 2 http)")
    ap.add_argument("--work-ms", type=float, default=1.0, help="http: pure-Python CPU per request, ms (default 1)")


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("net", __doc__.splitlines()[0], NAMES, argv, extra=_extra)
    if b.want("echo"):
        bench_echo(b)
    if b.want("http"):
        bench_http(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
