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
import sys
from typing import Any

from .._errors import portable


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
        script: tuple[str, str] | None = None,
        cooperative_io: bool = False,
    ) -> tuple[str, Any]:
        """Run this node's pg.run until the driver says stop; how it ended."""
        for p in reversed(path):
            if p not in sys.path:
                sys.path.insert(0, p)
        os.environ.update(env)
        from .._errors import Panic, WorkerLost
        from .._runtime import procs
        from .driver import node_main

        saved = sys.modules.get("__main__"), sys.modules.get("__mp_main__")
        try:
            _install_main(script, name)
            procs.run(
                node_main, index, name, mailbox, driver, procs=nprocs, start_method=start_method,
                cooperative_io=cooperative_io,
            )
            return ("ok", None)
        except Panic as e:
            return ("panic", portable(e))
        except WorkerLost as e:
            return ("lost", str(e))
        except BaseException as e:
            return ("panic", portable(e))
        finally:
            for key, mod in zip(("__main__", "__mp_main__"), saved, strict=True):
                if mod is not None:
                    sys.modules[key] = mod


def _install_main(script: tuple[str, str] | None, node: str) -> None:
    """The driver's script as this process's ``__main__`` and ``__mp_main__``
    (run under the name ``__mp_main__``, so its ``if __name__ ==
    "__main__":`` block does not run), exactly as multiprocessing's spawn
    prepares a child: what the driver pickles by reference as
    ``__main__.f`` resolves here, what this node pickles as
    ``__mp_main__.f`` resolves at the driver (multiprocessing aliases its
    ``__mp_main__`` to ``__main__``), and this node's own Ps (forkserver or
    spawn: a Ray worker has threads) import the same file.  The source
    travels with the call: a node without the driver's file gets a copy."""
    if script is None:
        return
    import multiprocessing.spawn
    import tempfile

    path, source = script
    try:
        with open(path, encoding="utf-8") as f:
            same = f.read() == source
    except OSError:
        same = False
    if not same:
        d = tempfile.mkdtemp(prefix="parago-main-")
        path = os.path.join(d, os.path.basename(path))
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
    os.environ["_PARAGO_IN_P"] = "1"  # an unguarded pg.run in the script: the error that says so
    try:
        multiprocessing.spawn._fixup_main_from_path(path)  # type: ignore[attr-defined]
    except BaseException as e:
        from .._errors import ParagoError

        raise ParagoError(
            f"node {node}: running the program's script {script[0]} as __main__ there failed: "
            f"{type(e).__name__}: {e}"
        ) from None
    finally:
        os.environ.pop("_PARAGO_IN_P", None)
