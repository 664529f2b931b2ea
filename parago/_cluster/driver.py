"""The main goroutines of a cluster run: the driver's (around the user's
main) and every other node's (it parks until the driver says stop)."""

from __future__ import annotations

import asyncio
import inspect
import os
import pickle
from typing import Any, Callable

from .._errors import Deadlock, WorkerLost
from .._runtime import failure, state
from .client import park_on
from .node import Node, record_lost, record_remote_panic
from .wire import xloads

START_TIMEOUT = 120.0  # every node's run must have started by then


def driver_main(r: Any, main: Callable, args: tuple) -> Any:
    rt = state.rt
    node = Node(rt, 0, r.names[0], r.mailboxes[0])
    check = None
    try:
        _start(r, rt, node)
        if inspect.iscoroutinefunction(main):
            return park_on(rt, asyncio.ensure_future(main(*args), loop=rt.loop), "IO wait")
        check = ClusterDeadlock(rt, node)
        return main(*args)
    finally:
        if check is not None:
            check.close()
        node.close()


class ClusterDeadlock:
    """Go's checkdead across the nodes of a run (in the driver's P0).

    Every PERIOD s while the driver's node is quiet (every goroutine parked,
    no timer, nothing queued; its goroutines waiting on another node's
    answer accounted for), ask every other node for its own quiet report
    (node.quiet_report): its park epoch and the counters of the messages
    that carry work, counted by both ends (asks sent / dispatched, answers
    sent / received, goroutines given / stolen).  Deadlock when every node
    is quiet, the counters balance (no such message in flight) and two
    rounds CONFIRM s apart saw exactly the same reports (nothing moved
    anywhere between them).  Like the single-machine check it errs on the
    side of waiting; an async main is not checked."""

    PERIOD = 0.05
    CONFIRM = 0.02

    def __init__(self, rt: Any, node: Node) -> None:
        self.rt = rt
        self.node = node
        self.prev: Any = None
        self.closed = False
        self.handle: Any = rt.loop.call_later(self.PERIOD, self.check)

    def close(self) -> None:
        self.closed = True
        self.handle.cancel()

    def _stopped(self) -> bool:
        rt = self.rt
        return self.closed or rt.closed or rt.sup.main_done or rt.shutting_down or self.node.stopping.is_set()

    def _again(self, delay: float, prev: Any = None) -> None:
        self.prev = prev
        if not self._stopped():
            self.handle = self.rt.loop.call_later(delay, self.check)

    def check(self) -> None:
        if self._stopped():
            return
        mine = self.node.quiet_report()
        if mine is None:
            return self._again(self.PERIOD)
        ask = pickle.dumps(("quiet",))
        futs = [asyncio.wrap_future(p.mailbox.call.remote(ask).future(), loop=self.rt.loop) for p in self.node.peers]
        if not futs:
            return self._judge([mine])
        g = asyncio.gather(*futs, return_exceptions=True)
        g.add_done_callback(lambda f: self._answers(mine, f))

    def _answers(self, mine: tuple, f: Any) -> None:
        if self._stopped():
            return
        reports = [mine]
        for res in f.result():
            if isinstance(res, BaseException):
                return self._again(self.PERIOD)
            ok, rep = xloads(res)
            if not ok or rep is None:
                return self._again(self.PERIOD)
            reports.append(rep)
        self._judge(reports)

    def _judge(self, reports: list) -> None:
        sums = [sum(r[k] for r in reports) for k in range(1, 7)]
        if sums[0] != sums[1] or sums[2] != sums[3] or sums[4] != sums[5]:
            return self._again(self.PERIOD)  # a message that carries work is in flight
        key = tuple(tuple(r) for r in reports)
        if key != self.prev:
            return self._again(self.CONFIRM, key)
        self._found(len(reports))

    def _found(self, nodes: int) -> None:
        rt = self.rt
        text = rt.sup.collect_dump()
        if nodes > 1:
            text += (
                f"\n\n(every goroutine of the {nodes - 1} other node{'s' if nodes > 2 else ''} of this cluster run "
                f"is asleep too; their goroutines are not listed here)"
            )
        if failure.record(rt, {"kind": "deadlock", "dump": text}):
            rt.sup.failure_seen = True
            rt.sup.interrupt_main(Deadlock(text))


def _start(r: Any, rt: Any, node: Node) -> None:
    """Wait until every node's run has started, then tell each the directory."""
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
        park_on(rt, node.stopped, "IO wait", node)  # the driver's stop: not a user's wait
    finally:
        node.close()
