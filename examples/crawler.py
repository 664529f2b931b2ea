"""The seed's practice project "高性能Web Crawler", written as Go would write it.

Plain goroutines call ``urllib.request.urlopen`` -- blocking-style code,
no ``async`` anywhere -- and ``pg.run(main, cooperative_io=True)`` makes
each blocking socket call park only its goroutine (DESIGN §1 "Python's
own blocking I/O inside goroutines"), so a P keeps fetching and parsing
other pages while one waits.  The fetch goroutines are started with
``pg.go``, which spreads them over the Ps, so the HTML parsing (pure
Python; ``--words`` sizes it) runs on every core.  Found links come back to main on
a channel; main dedups them and starts a goroutine per new link.  A
ticker (``pg.tick``) is the rate limit every fetcher waits on, whatever
its P; a context deadline bounds the whole crawl.

The site is served by a small ``http.server`` on 127.0.0.1 (a thread of
main's process; no network needed, nothing outside loopback is fetched,
and the site is finite).  The program checks that it fetched every page
reachable from /p0 exactly once and counted every word.

Go shape::

    throttle := time.Tick(interval)
    go fetch("/p0")
    for pending := 1; pending > 0; pending-- {
        page := <-found
        for _, link := range page.links {
            if !seen[link] { seen[link] = true; pending++; go fetch(link) }
        }
    }
    // fetch: select { case <-ctx.Done(): ...; case <-throttle: }
    //        resp := http.Get(url); links := parse(resp.Body); found <- page

Run::

    python3 examples/crawler.py [--pages 60] [--words 3000] [--rate 1000]
    parago run --procs 2 examples/crawler.py
"""

import argparse
import html.parser
import http.server
import os
import threading
import time
import urllib.request

import parago as pg


def site(n):
    """n pages, each linking to three others (page i to 3i+1..3i+3 mod n)."""
    return {f"/p{i}": [f"/p{(i * 3 + k) % n}" for k in range(1, 4)] for i in range(n)}


def reachable(pages, start="/p0"):
    seen, todo = {start}, [start]
    while todo:
        for link in pages[todo.pop()]:
            if link not in seen:
                seen.add(link)
                todo.append(link)
    return seen


def render(links, i, words):
    """Page i: a heading (2 words), ``words`` words of text, one word per link."""
    text = [f"w{(k * 7 + i) % 97}" for k in range(words)]
    paras = "".join(f"<p>{' '.join(text[j : j + 50])}</p>" for j in range(0, words, 50))
    anchors = "".join(f'<li><a href="{u}">{u}</a></li>' for u in links)
    return f"<html><body><h1>page {i}</h1>{paras}<ul>{anchors}</ul></body></html>".encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.bodies.get(self.path)
        self.send_response(200 if body is not None else 404)
        body = body if body is not None else b"not found"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(pages, words):
    """The site on 127.0.0.1 (an ephemeral port), served by threads of this process."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.bodies = {u: render(links, int(u[2:]), words) for u, links in pages.items()}
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


class _Parser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.words = [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href" and v)

    def handle_data(self, data):
        self.words += len(data.split())


def parse(body):
    p = _Parser()
    p.feed(body.decode())
    p.close()
    return p.links, p.words


def fetch(base, url, throttle, ctx, found):
    """One page: wait for the rate limiter (or the deadline), GET, parse, report."""
    i, _, _ = pg.select(pg.Recv(ctx.done()), pg.Recv(throttle))
    if i == 0:
        found.send((url, None, f"{type(ctx.err()).__name__} before fetching", os.getpid()))
        return
    try:
        with urllib.request.urlopen(base + url, timeout=10) as resp:  # parks this goroutine only
            body = resp.read()
        links, words = parse(body)  # CPU work, on whichever P runs this goroutine
    except OSError as e:
        found.send((url, None, f"{type(e).__name__}: {e}", os.getpid()))
        return
    found.send((url, (links, words), None, os.getpid()))


def main(pages, words=200, rate=1000.0, deadline=60.0, stats=None):
    """Crawl from /p0; return the pages fetched (sorted) and fetches per P
    process.  ``stats`` (main's arguments are not copied) gets the words."""
    srv = serve(pages, words)
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        ctx, cancel = pg.context.with_timeout(pg.context.background(), deadline)
        throttle = pg.tick(1.0 / rate)  # every fetcher, on every P, waits for a tick
        found = pg.Chan(64)
        seen, pending, fetched, per_p, total, errors = {"/p0"}, 1, [], {}, 0, []
        pg.go(fetch, base, "/p0", throttle, ctx, found)
        while pending:
            url, page, err, pid = found.recv()
            pending -= 1
            fetched.append(url)
            per_p[pid] = per_p.get(pid, 0) + 1
            if err is not None:
                errors.append(f"{url}: {err}")
                continue
            links, n = page
            total += n
            for link in links:
                if link not in seen:
                    seen.add(link)
                    pending += 1
                    pg.go(fetch, base, link, throttle, ctx, found)
        cancel()
    finally:
        srv.shutdown()
        srv.server_close()
    assert not errors, f"fetches failed: {errors[:3]}"
    assert sorted(fetched) == sorted(seen), "a page was fetched twice"
    expect = sum(words + 2 + len(pages[u]) for u in seen)
    assert total == expect, f"counted {total} words, the pages hold {expect}"
    if stats is not None:
        stats["words"] = total
    return sorted(seen, key=lambda u: int(u[2:])), per_p


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=60, help="pages on the site")
    ap.add_argument("--words", type=int, default=3000, help="words of text per page (the parsing work)")
    ap.add_argument("--rate", type=float, default=1000.0, help="fetches per second at most (the pg.tick limiter)")
    ap.add_argument("--deadline", type=float, default=60.0, help="seconds for the whole crawl (a context deadline)")
    a = ap.parse_args()
    pages, stats = site(a.pages), {}
    t0 = time.monotonic()
    crawled, per_p = pg.run(main, pages, a.words, a.rate, a.deadline, stats, cooperative_io=True)
    took = time.monotonic() - t0
    assert set(crawled) == reachable(pages), "the crawl missed pages or found phantom ones"
    print(f"crawled {len(crawled)} pages: {' '.join(crawled)}")
    print(f"  server on pid {os.getpid()}; fetches: " + ", ".join(f"pid {p}: {k}" for p, k in sorted(per_p.items())))
    print(f"  parsed {stats['words']:,} words in {took:.2f} s on {len(per_p)} P(s), at most {a.rate:g} fetches/s")
