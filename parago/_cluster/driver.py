"""The main goroutines of a cluster run: the driver's (around the user's
main) and every other node's (it parks until the driver says stop)."""

from __future__ import annotations

import asyncio
import inspect
import os
import pickle
from typing import Any, Callable

from .._errors import WorkerLost
from .._runtime import state
from .node import Node, park_on, record_lost, record_remote_panic


def driver_main(r: Any, main: Callable, args: tuple) -> Any:
    rt = state.rt
    node = Node(rt, 0, r.names[0], r.mailboxes[0])
    try:
        _start(r, rt, node)
        if inspect.iscoroutinefunction(main):
            return park_on(rt, asyncio.ensure_future(main(*args), loop=rt.loop), "IO wait")
        return main(*args)
    finally:
        node.close()


def _start(r: Any, rt: Any, node: Node) -> None:
    """Wait until every node's run has started, then tell each the directory."""
    from . import START_TIMEOUT

    n = len(r.names)
    nonces = {0: rt.nonce}
    ready = rt.loop.create_future()

    def on_hello(i: int, nonce: int, pids: list[int]) -> None:
        nonces[i] = nonce
        r.pids.extend(pids)
        if len(nonces) == n and not ready.done():
            ready.set_result(None)

    def late() -> None:
        if not ready.done():
            missing = ", ".join(r.names[i] for i in range(n) if i not in nonces)
            ready.set_exception(WorkerLost(0, f"node {missing} did not start within {START_TIMEOUT:.0f} s", ""))

    node.on_hello = on_hello
    for i, ref in enumerate(r.serving, start=1):
        ref.future().add_done_callback(lambda f, i=i: node.threadsafe(_node_exited, r, rt, i, f))
    if n == 1:
        ready.set_result(None)
    timer = rt.loop.call_later(START_TIMEOUT, late)
    try:
        park_on(rt, ready, "IO wait")
    finally:
        timer.cancel()
    peers = r.peers(nonces)
    node.set_directory([p for p in peers if p[0] != 0])
    futs = [
        asyncio.wrap_future(r.mailboxes[i].call.remote(pickle.dumps(("dir", [p for p in peers if p[0] != i]))).future())
        for i in range(1, n)
    ]
    if futs:
        park_on(rt, asyncio.gather(*futs), "IO wait")


def _node_exited(r: Any, rt: Any, i: int, f: Any) -> None:
    """A Host's serve() returned or failed: unless we are stopping, the program ends."""
    if r.stopping or rt.closed or (rt.sup is not None and rt.sup.main_done):
        return
    name, nprocs = r.names[i], r.nprocs[i]
    try:
        how, what = f.result()
    except BaseException as e:
        record_lost(rt, name, nprocs, f"Ray reports its actor dead ({type(e).__name__})")
        return
    if how == "panic":
        record_remote_panic(rt, name, what)
    elif how == "lost":
        record_lost(rt, name, nprocs, what)
    else:
        record_lost(rt, name, nprocs, "its run ended before the program did")


def node_main(index: int, name: str, mailbox: Any, driver: Any) -> None:
    rt = state.rt
    node = Node(rt, index, name, mailbox)
    try:
        pids = [os.getpid(), *(p.pid for p in rt.sup.procs)]
        driver.post.remote(pickle.dumps(("hello", index, rt.nonce, pids)))
        park_on(rt, node.stopped, "IO wait")
    finally:
        node.close()
