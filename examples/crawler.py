"""The seed's practice project "高性能Web Crawler": a crawler on the netpoller.

Serves a small site on 127.0.0.1 (no network needed), then crawls it
breadth-first: every page is fetched by its own ``async def`` goroutine (a
task on its P's uvloop loop, using plain asyncio streams), which may run
on any P; main dedups the links it gets back and starts a fetch for each
new one.  The server stays on main's P (``pg.go_local``: its listening
socket cannot move to another process).  The program checks that it
fetched every page reachable from /p0 exactly once.

Go shape::

    for len(pending) > 0 {
        page := <-found
        for _, link := range page.links {
            if !seen[link] { seen[link] = true; go fetch(link, found) }
        }
    }

Run::

    python3 examples/crawler.py [--pages 20]
    parago run --procs 2 examples/crawler.py
"""

import argparse
import asyncio
import os
import re

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


async def serve(pages, ready, stop):
    async def handle(reader, writer):
        line = await reader.readline()
        path = line.split()[1].decode() if line.count(b" ") >= 2 else "/"
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        links = pages.get(path)
        body = "".join(f'<a href="{u}">{u}</a>' for u in links or [])
        status = "200 OK" if links is not None else "404 Not Found"
        writer.write(f"HTTP/1.0 {status}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    await ready.send_async(server.sockets[0].getsockname()[1])
    await stop.recv_ok_async()
    server.close()
    await server.wait_closed()


async def fetch(port, url, found):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {url} HTTP/1.0\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await found.send_async((url, re.findall(r'href="([^"]+)"', data.decode()), os.getpid()))


def main(pages):
    ready, stop, found = pg.Chan(1), pg.Chan(), pg.Chan(100)
    pg.go_local(serve, pages, ready, stop)  # the server stays on this P (its socket cannot move)
    port = ready.recv()
    seen, pending, fetched, per_p = {"/p0"}, 1, [], {}
    pg.go(fetch, port, "/p0", found)
    while pending:
        url, links, pid = found.recv()
        fetched.append(url)
        per_p[pid] = per_p.get(pid, 0) + 1
        pending -= 1
        for link in links:
            if link not in seen:
                seen.add(link)
                pending += 1
                pg.go(fetch, port, link, found)
    stop.close()
    assert sorted(fetched) == sorted(seen), "a page was fetched twice"
    return sorted(seen, key=lambda u: int(u[2:])), per_p


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20, help="pages on the site")
    pages = site(ap.parse_args().pages)
    crawled, per_p = pg.run(main, pages)
    assert set(crawled) == reachable(pages), "the crawl missed pages or found phantom ones"
    print(f"crawled {len(crawled)} pages: {' '.join(crawled)}")
    print(f"  server on pid {os.getpid()}; fetches: " + ", ".join(f"pid {p}: {k}" for p, k in sorted(per_p.items())))
