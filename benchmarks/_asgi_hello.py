"""The `http` benchmark's ASGI app for uvicorn (benchmarks/bench_net.py):
the same answer as examples/http_server.py's ``GET /`` ("hello, world",
text/plain), after the same pure-Python work per request (its ``burn``,
$BENCH_WORK_MS milliseconds).

    uvicorn --app-dir benchmarks _asgi_hello:app --workers N
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from http_server import burn  # noqa: E402

WORK_MS = float(os.environ.get("BENCH_WORK_MS", "0"))
BODY = b"hello, world\n"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())],
}


async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    if WORK_MS:
        burn(WORK_MS)
    await send(START)
    await send({"type": "http.response.body", "body": BODY})
