"""A web crawler on the netpoller: async goroutines fetching pages over TCP.

Serves a small site on 127.0.0.1 (no network needed), then crawls it
breadth-first with async def goroutines (tasks on each P's uvloop loop,
using plain asyncio streams) while a plain goroutine dedups URLs.

Run: python examples/crawler.py
"""

import asyncio
import re

import parago as pg

PAGES = {f"/p{i}": [f"/p{(i * 3 + k) % 20}" for k in range(1, 4)] for i in range(20)}


async def serve(ready, stop):
    async def handle(reader, writer):
        line = await reader.readline()
        path = line.split()[1].decode() if line.count(b" ") >= 2 else "/"
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        links = PAGES.get(path)
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
    await found.send_async((url, re.findall(r'href="([^"]+)"', data.decode())))


def main():
    ready, stop, found = pg.Chan(1), pg.Chan(), pg.Chan(100)
    pg.go_local(serve, ready, stop)  # the server stays on this P (its socket cannot move)
    port = ready.recv()
    seen, pending = {"/p0"}, 1
    pg.go(fetch, port, "/p0", found)
    while pending:
        url, links = found.recv()
        pending -= 1
        for link in links:
            if link not in seen:
                seen.add(link)
                pending += 1
                pg.go(fetch, port, link, found)
    stop.close()
    return sorted(seen, key=lambda u: int(u[2:]))


if __name__ == "__main__":
    pages = pg.run(main)
    print(f"crawled {len(pages)} pages: {' '.join(pages)}")
