"""crawl: fetch and parse N pages from a local server, parse cost ≈ fetch cost.

    crawl   N pages (a known URL list), each fetched with one HTTP/1.1
            request from a server on 127.0.0.1 that answers after LATENCY
            (a network's round trip, spent waiting) and parsed with
            ``html.parser`` (pure Python, calibrated at start to cost about
            LATENCY of CPU per page); pages/s.  Every implementation keeps
            at most C requests in flight and must find every link and word.

Implementations, each measured in the same invocation:
  - parago: C plain goroutines (a worker pool reading a channel of URLs)
    calling ``urllib.request.urlopen`` under ``pg.run(main,
    cooperative_io=True)`` at procs=nproc: waits park goroutines, parsing
    runs on every core
  - ``ThreadPoolExecutor(C)`` with urllib (one process: the GIL serializes
    the parsing)
  - ``multiprocessing.Pool`` with urllib, nproc processes and 4 x nproc
    processes (more processes overlap more waits)
  - asyncio + uvloop + aiohttp, one process, C tasks (skipped with a note
    when aiohttp is not installed); aiohttp keeps connections alive, the
    urllib clients open one per page, as each library does by default

The server is its own process (asyncio + uvloop, pre-rendered pages), the
same for everyone; on a small machine it takes some of the CPU from every
implementation alike.

Run: python3 benchmarks/bench_crawl.py [--quick] [--repeat N] [--procs N] [--latency MS]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html.parser
import multiprocessing
import os
import signal
import sys
import time
import urllib.request
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as h  # noqa: E402

import parago as pg  # noqa: E402

NAMES = ["crawl"]
FORK = multiprocessing.get_context("fork")
LINKS = 5  # links per page


# ======================================================================
# the pages and their parsing (the CPU half)


def render(i: int, n: int, spans: int) -> bytes:
    """Page i: LINKS links and ``spans`` one-word elements (the parse work)."""
    words = "".join(f"<span class=w>w{(k * 7 + i) % 97}</span> " for k in range(spans))
    links = "".join(f'<a href="/p{(i * LINKS + k) % n}">p</a>' for k in range(1, LINKS + 1))
    return f"<html><body><h1>page {i}</h1><p>{words}</p>{links}</body></html>".encode()


class _Parser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.words = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href" and v)

    def handle_data(self, data: str) -> None:
        self.words += len(data.split())


def parse(body: bytes) -> tuple[int, int]:
    """(links, words) of a page."""
    p = _Parser()
    p.feed(body.decode())
    p.close()
    return len(p.links), p.words


def calibrate(target_s: float) -> int:
    """Spans per page so that parsing a page costs about target_s of CPU."""
    spans = 200
    for _ in range(4):  # on CPU time: a busy machine's wall clock would make pages too small
        body = render(1, 10, spans)
        t0 = time.process_time()
        k = 0
        while time.process_time() - t0 < 0.05:
            parse(body)
            k += 1
        per = (time.process_time() - t0) / k
        spans = max(10, int(spans * target_s / per))
    return spans


# ======================================================================
# the server (its own process)


def _server_main(port_w: int, n: int, spans: int, latency: float) -> None:
    import uvloop

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pages = {}
    for i in range(n):
        body = render(i, n, spans)
        pages[f"/p{i}".encode()] = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    class Http(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while b"\r\n\r\n" in self.buf:
                head, self.buf = self.buf.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0].split(b" ")
                resp = pages.get(line[1] if len(line) > 1 else b"", missing)
                close = b"connection: close" in head.lower()
                loop.call_later(latency, self._answer, resp, close)

        def _answer(self, resp: bytes, close: bool) -> None:
            if not self.t.is_closing():
                self.t.write(resp)
                if close:
                    self.t.close()

    async def serve() -> None:
        srv = await loop.create_server(Http, "127.0.0.1", 0, backlog=4096)
        os.write(port_w, str(srv.sockets[0].getsockname()[1]).encode())
        os.close(port_w)
        await asyncio.Event().wait()

    loop = uvloop.new_event_loop()
    loop.run_until_complete(serve())


class Server:
    def __init__(self, n: int, spans: int, latency: float) -> None:
        r, w = os.pipe()
        self.proc = FORK.Process(target=_server_main, args=(w, n, spans, latency), daemon=True)
        self.proc.start()
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 16)
            if not chunk:
                break
            data += chunk
        os.close(r)
        if not data:
            raise RuntimeError("the page server did not start")
        self.base = f"http://127.0.0.1:{int(data)}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(5)


# ======================================================================
# the clients: each returns (seconds, links, words)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def _fetch_parse(url: str) -> tuple[int, int]:
    return parse(_get(url))


def _pg_worker(urls: pg.Chan, out: pg.Chan) -> None:
    links = words = pages = 0
    for url in urls:
        a, b = _fetch_parse(url)
        links += a
        words += b
        pages += 1
    out.send((links, words, pages, os.getpid()))


def _pg_main(base: str, n: int, conc: int) -> tuple:
    urls, out = pg.Chan(conc), pg.Chan(conc)
    t0 = time.perf_counter()
    for _ in range(conc):
        pg.go(_pg_worker, urls, out)
    for i in range(n):
        urls.send(f"{base}/p{i}")
    urls.close()
    res = [out.recv() for _ in range(conc)]
    took = time.perf_counter() - t0
    pids = {r[3] for r in res if r[2]}
    return took, sum(r[0] for r in res), sum(r[1] for r in res), len(pids)


def run_parago(base: str, n: int, conc: int, procs: int) -> tuple:
    return pg.run(_pg_main, base, n, conc, procs=procs, cooperative_io=True)


def run_threads(base: str, n: int, conc: int) -> tuple:
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(conc) as ex:
        res = list(ex.map(_fetch_parse, [f"{base}/p{i}" for i in range(n)]))
    return time.perf_counter() - t0, sum(r[0] for r in res), sum(r[1] for r in res)


def run_pool(base: str, n: int, processes: int) -> tuple:
    with FORK.Pool(processes) as pool:
        pool.map(int, range(processes))  # the workers are up before the clock starts
        t0 = time.perf_counter()
        res = pool.map(_fetch_parse, [f"{base}/p{i}" for i in range(n)], chunksize=1)
        took = time.perf_counter() - t0
    return took, sum(r[0] for r in res), sum(r[1] for r in res)


def run_aiohttp(base: str, n: int, conc: int) -> tuple:
    try:
        import aiohttp
    except ImportError:
        raise h.PeerMissing("aiohttp is not installed (pip install aiohttp)") from None
    import uvloop

    async def crawl() -> tuple:
        sem = asyncio.Semaphore(conc)
        conn = aiohttp.TCPConnector(limit=conc)
        async with aiohttp.ClientSession(connector=conn) as s:

            async def one(i: int) -> tuple[int, int]:
                async with sem:
                    async with s.get(f"{base}/p{i}") as r:
                        body = await r.read()
                return parse(body)

            t0 = time.perf_counter()
            res = await asyncio.gather(*(one(i) for i in range(n)))
            took = time.perf_counter() - t0
        return took, sum(r[0] for r in res), sum(r[1] for r in res)

    return uvloop.run(crawl())


# ======================================================================


def bench_crawl(b: h.Bench) -> None:
    name = "crawl"
    latency = b.args.latency / 1000
    n = b.size(2000, 200)
    conc = 64
    spans = calibrate(latency)
    body = render(1, n, spans)
    t0 = time.process_time()
    for _ in range(20):
        parse(body)
    parse_ms = (time.process_time() - t0) / 20 * 1000  # CPU ms per page
    print(
        f"\n## {name}: {n:,} pages of {len(body) / 1024:.0f} KiB, server latency {latency * 1000:.1f} ms, "
        f"parse {parse_ms:.1f} ms CPU/page, {conc} in flight, procs={b.procs}",
        flush=True,
    )
    expect = (n * LINKS, sum(parse(render(i, n, spans))[1] for i in range(n)))
    srv = Server(n, spans, latency)
    try:
        runs = []

        def check(impl: str, r: tuple | None) -> None:
            if r is not None:
                b.check((r[1], r[2]) == expect, name, impl, f"found {r[1:3]}, expected {expect}")

        for _ in range(b.repeat):
            r = b.guard(name, "parago", run_parago, srv.base, n, conc, b.procs)
            check("parago", r)
            if r:
                runs.append(r)
        if runs:
            b.add_samples(name, "parago", "pages", [n / r[0] for r in runs], "pages/s", note=f"procs={b.procs}")
            used = min(r[3] for r in runs)
            if used < b.procs:
                b.note(f"{name} [parago]: the workers ran on {used} of {b.procs} Ps in some run")
        peers: list[tuple[str, Any, tuple, str]] = [
            ("asyncio+aiohttp", run_aiohttp, (srv.base, n, conc), "1 process, uvloop"),
            (f"ThreadPoolExecutor({conc})", run_threads, (srv.base, n, conc), "urllib"),
            (f"multiprocessing.Pool({b.procs})", run_pool, (srv.base, n, b.procs), "urllib"),
            (f"multiprocessing.Pool({4 * b.procs})", run_pool, (srv.base, n, 4 * b.procs), "urllib"),
        ]
        for impl, fn, args, note in peers:
            samples = []
            for _ in range(b.repeat):
                r = b.guard(name, impl, fn, *args)
                if r is None:
                    break
                check(impl, r)
                samples.append(n / r[0])
            if samples:
                b.add_samples(name, impl, "pages", samples, "pages/s", note=note)
    finally:
        srv.close()
    b.flush()


def _extra(ap: Any) -> None:
    ap.add_argument("--latency", type=float, default=3.0, help="server answer delay in ms (default 3)")


def main(argv: list[str] | None = None) -> int:
    b = h.Bench("crawl", __doc__.splitlines()[0], NAMES, argv, extra=_extra)
    if b.want("crawl"):
        bench_crawl(b)
    return b.finish()


if __name__ == "__main__":
    sys.exit(main())
