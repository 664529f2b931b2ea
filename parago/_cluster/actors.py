"""The two Ray actors of a cluster run (made remote by parago._cluster._actors).

Mailbox: an async actor per node, pinned there (num_cpus=0): other nodes'
requests wait in it until the home's pump takes them.  ``ask_many`` /
``answer_many``: a hub round's requests to one home in one call, and the
home's answers to one caller node in one call (neither waits for the
other side); ``call`` (start-up, stealing, threads) returns the home's
reply itself.  Host: one per node other than the driver's, its process is
that node's P0 (pg.run runs on the actor's main thread, as a sync actor
method does).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from typing import Any


class Mailbox:
    def __init__(self) -> None:
        self.q: list[tuple[Any, bytes]] = []  # (request id, data): see node.py
        self.ev = asyncio.Event()
        self.waiting: dict[int, Any] = {}
        self.n = 0

    async def call(self, data: bytes) -> bytes:
        """A request that wants an answer: parks until the home replies."""
        self.n += 1
        rid = self.n
        fut = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        self.q.append((rid, data))
        self.ev.set()
        return await fut

    async def post(self, data: bytes) -> None:
        """A request without an answer (hello, stop)."""
        self.q.append((0, data))
        self.ev.set()

    async def ask_many(self, reply_to: int, batch: list[tuple[int, bytes]]) -> None:
        """Requests of one hub round of the node whose run is reply_to: the
        home answers each through that node's mailbox (answer_many)."""
        self.q.extend(((reply_to, rid), data) for rid, data in batch)
        self.ev.set()

    async def answer_many(self, batch: list[tuple[int, bytes]]) -> None:
        """Answers to this node's asks (its pump resolves them)."""
        self.q.extend((-rid, data) for rid, data in batch)
        self.ev.set()

    async def wake(self) -> None:
        self.ev.set()

    async def take(self, timeout: float) -> list[tuple[Any, bytes]]:
        """The home's long poll: what arrived, or [] after timeout seconds."""
        if not self.q:
            self.ev.clear()
            try:
                await asyncio.wait_for(self.ev.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        q, self.q = self.q, []
        return q

    async def reply(self, batch: list[tuple[int, bytes]]) -> None:
        for rid, data in batch:
            fut = self.waiting.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(data)


class Host:
    def serve(
        self,
        index: int,
        name: str,
        nprocs: int,
        start_method: str | None,
        path: list[str],
        env: dict,
        mailbox: Any,
        driver: Any,
    ) -> tuple[str, Any]:
        """Run this node's pg.run until the driver says stop; how it ended."""
        for p in reversed(path):
            if p not in sys.path:
                sys.path.insert(0, p)
        os.environ.update(env)
        from .._errors import Panic, WorkerLost
        from .._runtime import procs
        from .driver import node_main

        try:
            procs.run(node_main, index, name, mailbox, driver, procs=nprocs, start_method=start_method)
            return ("ok", None)
        except Panic as e:
            return ("panic", _portable(e))
        except WorkerLost as e:
            return ("lost", str(e))
        except BaseException as e:
            return ("panic", _portable(e))


def _portable(e: BaseException) -> Any:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        from .._errors import ParagoError

        return ParagoError(f"{type(e).__name__}: {e}")
