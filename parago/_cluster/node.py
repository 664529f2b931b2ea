"""A parago node: one machine's runtime (its own arena and Ps) in a cluster run.

    caller's process (driver node, P0)           each other Ray node
    ----------------------------------           ----------------------------------
    pg.run(main, cluster=...)                    Host actor (num_cpus = its Ps):
      Mailbox actor per node (num_cpus=0)          serve(): pg.run(node main) on the
      Host actor per other node ------------->       actor's main thread
      pg.run(driver main) here                     node main: hello -> driver, then
        node main: wait for hellos,                  park until told to stop
        send the directory, run main
    every node's P0: a Node -- the pump thread long-polls its mailbox and hands
    requests to the hub; remote operations go out as actor calls

The Mailbox is a plain async actor pinned to its node; ``take`` is the
home's long poll.  A request is one of three kinds:

  - an *ask* (the common path, from goroutines): ``ask_many`` carries every
    request one hub round makes to one home in one actor call; the home
    answers each through the asker's mailbox (``answer_many``, one call per
    round and asker), and the asker's pump resolves its futures;
  - a *call* (stealing, start-up, a thread that is not the hub's):
    ``call`` parks in the home's mailbox until the home answers through
    ``reply``, and returns the answer;
  - a *post*: no answer.

What a request asks (all pickled here, so Ray never sees a handle):

    ("op", cls, off, gen, name, args, kw)  perform h.name(*args) at home, in a
                                           goroutine (a blocked op is a parked
                                           goroutine at home, woken by the
                                           home's own parking code)
    ("select", specs, timeout)             one home's part of a select across
                                           homes (select.py), in a goroutine
    ("steal", n)                           up to n unstarted goroutines (their
                                           encoded (fn, args)), as a P steals
    ("go", fn, args, kw, site)             start this goroutine here (an ask
                                           without an answer: placement spread)
    ("hello", index, nonce, pids) / ("dir", d)  start-up: the directory of nodes
    ("stop",)                              main returned: end this node's run

Only P0 of a node talks to Ray (it is the actor's process); the other Ps of
the node forward their remote operations to P0 through the node's outbox
channel (remote.py).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import pickle
import sys
import threading
import time
from typing import Any

import greenlet

from .._errors import EncodeError, ParagoError, Shutdown
from .._runtime import codec, dump, failure, handles, ops, spawn, state
from .._runtime.g import GreenletG
from .._shim import CONST, GKind, Pstate, lib, views
from . import remote

STEAL_MAX = 64
STEAL_BACKOFF_MAX = 0.02  # an idle node asks again at least every 20 ms (each ask costs both sides an actor call)
# what a goroutine parked on a remote operation shows in a dump
_REASONS = {
    "send": "chan send",
    "send_many": "chan send",
    "recv_ok": "chan receive",
    "recv": "chan receive",
    "recv_many": "chan receive",
    "__next__": "chan receive",  # for v in ch
    "wait": "sync.WaitGroup.Wait",
    "lock": "sync.Mutex.Lock",
    "rlock": "sync.RWMutex.RLock",
    "do": "sync.Once.Do",
    "acquire": "semacquire",
}
POLL_S = 0.25
# the largest message a node sends (a remote operation with its values, an
# answer, a goroutine): Ray carries it through its object store, which holds
# a node's share of memory, not more; $PARAGO_CLUSTER_MAX_MESSAGE bytes
MAX_MESSAGE = 256 << 20


def max_message() -> int:
    raw = os.environ.get("PARAGO_CLUSTER_MAX_MESSAGE")
    if not raw:
        return MAX_MESSAGE
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1024:
        raise ValueError(f"PARAGO_CLUSTER_MAX_MESSAGE must be a number of bytes >= 1024, got {raw!r}")
    return n
PLACEMENTS = ("local", "spread")


def placement() -> str:
    """$PARAGO_CLUSTER_PLACEMENT: where a new goroutine starts.  "local"
    (the default): on its spawner's node, moving only when an idle node
    steals it; "spread": the goroutines a node's P0 starts go round robin
    over the nodes of the run, this one included (a worker pool spans the
    cluster from its first job)."""
    how = os.environ.get("PARAGO_CLUSTER_PLACEMENT") or "local"
    if how not in PLACEMENTS:
        raise ValueError(f"PARAGO_CLUSTER_PLACEMENT must be one of {', '.join(PLACEMENTS)}, got {how!r}")
    return how


def xdumps(obj: Any) -> bytes:
    """Encode obj for another node: remote handles in their crossing form,
    and the (home, offset) of each with it -- its home takes the arena
    reference its decode adopts *before* decoding (xloads), so no separate
    message can arrive after the one that needs it (Ray does not order an
    async actor's calls)."""
    refs: list[tuple[int, int]] = []
    token = handles.CROSSING.set(refs)
    try:
        data = codec.dumps(obj, "value")
    finally:
        handles.CROSSING.reset(token)
    if not refs:
        return data  # a pickle: starts with its PROTO opcode, never with _WITH_REFS
    return _WITH_REFS + pickle.dumps((refs, data), 5)


_WITH_REFS = b"R"
_BUFFER_MARK = b"parago._buffer"  # in a pickle that holds a pg.Buffer (its class's module)


def xloads(blob: bytes) -> Any:
    """Decode what xdumps (or a plain pickle.dumps) encoded, on this node."""
    if blob[:1] != _WITH_REFS:
        return codec.loads(blob)
    refs, data = pickle.loads(blob[1:])
    rt = state.rt
    mine = [off for home, off in refs if home == rt.nonce]  # its other handles stay remote here: nothing to take
    if mine:
        ops.incref_many(rt, mine)
    return codec.loads(data)


def _capture(e: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return ParagoError(f"{type(e).__name__}: {e}")


class Peer:
    """Another node as seen from here."""

    __slots__ = ("index", "name", "mailbox", "nonce")

    def __init__(self, index: int, name: str, mailbox: Any, nonce: int) -> None:
        self.index = index
        self.name = name
        self.mailbox = mailbox
        self.nonce = nonce


class Node:
    """This process's node while a cluster run is active (P0 of the node)."""

    def __init__(self, rt: Any, index: int, name: str, mailbox: Any) -> None:
        self.rt = rt
        self.index = index
        self.name = name
        self.mailbox = mailbox
        self.peers: list[Peer] = []
        self.remotes: dict[tuple, Any] = {}
        self.replies: list[tuple[int, bytes]] = []  # answers to calls (through this node's mailbox)
        self.answers: dict[int, list[tuple[int, bytes]]] = {}  # caller's nonce -> answers to its asks
        self.asks: dict[int, list[tuple[int, bytes]]] = {}  # home's nonce -> this round's asks
        self.calls: dict[int, Any] = {}  # ask id -> the asyncio future its answer resolves
        self.next_id = 0
        self.flush_armed = False
        self.stopping = threading.Event()
        self.stopped = rt.loop.create_future()  # the driver said stop (node main waits on it)
        self.on_hello: Any = None  # the driver's start-up hook
        self.on_dir: Any = None
        self.steal_out = False
        self.steal_next = 0
        self.steal_backoff = 0.001
        self.stolen = 0  # goroutines this node took from others (or was sent: spread)
        self.given = 0  # ... and gave away
        self.place_next = 0  # spread placement: the next node's turn (0: this one)
        self.placing = False  # starting a goroutine another node sent: it stays here
        # for the cluster-wide deadlock check (driver.py): messages that carry
        # work, counted by both ends (a difference is a message in flight)
        self.asks_sent = 0
        self.asks_done = 0  # asks this home dispatched
        self.answers_sent = 0
        self.answers_recv = 0
        self.thread_calls = 0  # remote operations of threads, in flight
        self.waits = 0  # goroutines here parked on a remote answer (park_on with this node)
        self.max_message = max_message()
        self.fout = (ctypes.c_uint64 * 4)()
        from .._chan import Chan

        self.outbox = Chan(1024)
        remote.node = self
        remote.directory.clear()
        handles.remote_rebuild = remote.rebuild
        self.spread = placement() == "spread"
        if self.spread:
            spawn.place = self.place
        dump.cluster_part = self.dump_others
        rt.spawn(self._outbox_server, (), {}, local=True, system=True, depth=2)
        self.pump = threading.Thread(target=self._pump, name="parago-cluster-pump", daemon=True)
        self.pump._parago_runtime = True  # type: ignore[attr-defined]
        self.pump.start()
        # placement spread puts the work on every node from the start: nodes do
        # not steal from each other then (an idle node would take a goroutine
        # just sent to another back before it started there)
        self.steal_timer = rt.loop.call_later(0.002, self._maybe_steal) if not self.spread else None

    # ---- the directory ----
    def set_directory(self, peers: list[tuple[int, str, Any, int]]) -> None:
        self.peers = [Peer(*p) for p in peers]
        for p in self.peers:
            remote.directory[p.nonce] = p
        if self.on_dir is not None:
            self.on_dir()

    def close(self) -> None:
        self.stopping.set()
        if remote.node is self:
            remote.node = None
            handles.remote_rebuild = None
            remote.directory.clear()
        if spawn.place == self.place:
            spawn.place = None
        if dump.cluster_part == self.dump_others:
            dump.cluster_part = None
        if self.steal_timer is not None:
            self.steal_timer.cancel()
        try:
            self.mailbox.wake.remote()
        except Exception:
            pass
        self.pump.join(2.0)
        self.remotes.clear()

    # ---- home side: the pump and the requests ----
    def _pump(self) -> None:
        import ray

        mb = self.mailbox
        while not self.stopping.is_set():
            try:
                reqs = ray.get(mb.take.remote(POLL_S))
            except Exception:
                if self.stopping.is_set():
                    return
                time.sleep(0.05)
                continue
            if reqs and not self.stopping.is_set():
                try:
                    self.rt.loop.call_soon_threadsafe(self._dispatch, reqs)
                except RuntimeError:  # the loop closed: the run is over
                    return

    def _dispatch(self, reqs: list) -> None:
        rt = self.rt
        if rt.closed:
            return
        calls = self.calls
        for rid, data in reqs:
            if rid.__class__ is int and rid < 0:  # an answer to one of our asks
                self.answers_recv += 1
                fut = calls.pop(-rid, None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
                continue
            if rid.__class__ is tuple:
                self.asks_done += 1
            try:
                msg = xloads(data)
            except BaseException as e:
                if rid.__class__ is tuple and rid[1] == 0:  # a goroutine sent here ("go"): it fails here
                    self.stolen += 1
                    _undecodable(rt, e)
                else:
                    self.reply(rid, (False, _capture(e)))
                continue
            kind = msg[0]
            if kind == "op":
                _, cls, off, gen, name, args, kw = msg
                try:
                    h = self._local(cls, off, gen)
                except BaseException as e:
                    self.reply(rid, (False, _capture(e)))
                    continue
                rt.spawn(self._serve, (rid, h, name, args, kw), {}, local=True, system=True, depth=2)
            elif kind == "select":
                rt.spawn(self._serve_select, (rid, msg[1], msg[2]), {}, local=True, system=True, depth=2)
            elif kind == "go":
                self.stolen += 1
                self.placing = True
                try:
                    rt.spawn(msg[1], msg[2], msg[3], site=msg[4])
                finally:
                    self.placing = False
            elif kind == "steal":
                self.reply(rid, (True, self._export(msg[1])))
            elif kind == "hello":
                if self.on_hello is not None:
                    self.on_hello(msg[1], msg[2], msg[3])
            elif kind == "dir":
                self.set_directory(msg[1])
                self.reply(rid, (True, None))
            elif kind == "dump":
                self.reply(rid, (True, rt.sup.collect_dump()))
            elif kind == "quiet":
                self.reply(rid, (True, self.quiet_report()))
            elif kind == "stop":
                self.stopping.set()
                if not self.stopped.done():
                    self.stopped.set_result(None)
        self.flush()

    def _local(self, cls: type, off: int, gen: int) -> Any:
        """This node's handle for (off, gen), taking a reference for it if new."""
        rt = self.rt
        r = rt.handles.get(off)
        h = r() if r is not None else None
        if h is not None and h._gen == gen:
            return h
        a = rt.arena
        if views.obj_gen(a, off) != gen or views.obj_kind(a, off) == 0:
            raise ParagoError(f"a {cls.__name__} of node {self.name} was used after it was freed")
        lib.pg_obj_incref(rt.base, off)
        return cls._make(rt, off, gen)  # type: ignore[attr-defined]  # a handle class

    def _serve(self, rid: Any, h: Any, name: str, args: tuple, kw: dict) -> None:
        """A goroutine at home performing one remote operation."""
        try:
            if name[0] == "@":
                res = (True, getattr(h, name[1:]))
            else:
                res = (True, getattr(h, name)(*args, **kw))
        except Shutdown:
            raise
        except BaseException as e:
            res = (False, _capture(e))
        self.reply(rid, res)

    def _serve_select(self, rid: Any, specs: list, timeout: float) -> None:
        """A goroutine at home: its part of a select across homes (select.py)."""
        from .select import select_here

        res: tuple[bool, Any]
        try:
            res = (True, select_here(specs, timeout))
        except Shutdown:
            raise
        except BaseException as e:
            res = (False, _capture(e))
        self.reply(rid, res)

    def reply(self, rid: Any, res: tuple) -> None:
        """Answer a request: rid an int (a ``call``: through this node's
        mailbox), (caller's nonce, its id) (an ``ask``), or 0 (a post)."""
        if not rid:
            return
        try:
            data = self._sized(xdumps(res), "the answer")
        except EncodeError as e:
            data = xdumps((False, e))
        if rid.__class__ is int:
            self.replies.append((rid, data))
        else:
            self.answers_sent += 1
            self.answers.setdefault(rid[0], []).append((rid[1], data))
        self._arm_flush()

    def _arm_flush(self) -> None:
        if not self.flush_armed:
            self.flush_armed = True
            self.rt.loop.call_soon(self.flush)

    def flush(self) -> None:
        """What this hub round produced, one actor call per destination."""
        self.flush_armed = False
        if self.stopping.is_set():
            return
        if self.replies:
            batch, self.replies = self.replies, []
            self._send(self.mailbox.reply, batch)
        if self.asks:
            asks, self.asks = self.asks, {}
            for nonce, batch in asks.items():
                err = self._send(self._peer(nonce).mailbox.ask_many, self.rt.nonce, batch)
                if err is not None:
                    self._undelivered(nonce, batch, err)
        if self.answers:
            answers, self.answers = self.answers, {}
            for nonce, batch in answers.items():
                p = remote.directory.get(nonce)
                if p is not None:  # else: that node is not (or no longer) part of the run
                    self._send(p.mailbox.answer_many, batch)

    def _undelivered(self, nonce: int, batch: list, err: str) -> None:
        """Ray refused an ask_many call: each asker hears why now (it would
        wait for ever), and a goroutine placed there starts here instead."""
        self.asks_sent -= len(batch)
        why = xdumps((False, ParagoError(f"cannot reach node {self._peer(nonce).name}: {err}")))
        for rid, data in batch:
            if rid == 0:  # placement spread: ("go", fn, args, kw, site)
                self.given -= 1
                _, fn, args, kw, site = xloads(data)
                self.placing = True
                try:
                    self.rt.spawn(fn, args, kw, site=site)
                finally:
                    self.placing = False
                continue
            fut = self.calls.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(why)

    @staticmethod
    def _send(method: Any, *args: Any) -> str | None:
        """method.remote(*args); why it failed (Ray refused the call), else None."""
        try:
            method.remote(*args)
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        return None

    def quiet_report(self) -> tuple | None:
        """For the cluster-wide deadlock check: None if something here can
        move now, else (park epoch, the message counters).  Ray's threads
        are not counted as user threads, and this node's remote waits are
        accounted for by the counters instead of as external waiters."""
        rt = self.rt
        if self.thread_calls or self.stopping.is_set() or rt.shutting_down:
            return None
        epoch = rt.sup.deadlock.snapshot(known_external=self.waits, threads=False)
        if epoch is None:
            return None
        return (epoch, self.asks_sent, self.asks_done, self.answers_sent, self.answers_recv, self.given, self.stolen)

    def _sized(self, data: bytes, what: str) -> bytes:
        """data, if it may cross nodes; else EncodeError in the caller (nothing was sent)."""
        if len(data) > self.max_message:
            raise EncodeError(
                f"{what} is {len(data):,} bytes encoded: too large to cross nodes (the limit is "
                f"{self.max_message:,} bytes, $PARAGO_CLUSTER_MAX_MESSAGE; Ray carries it through its object store). "
                "Send it in parts, or keep it on one node"
            )
        return data

    # ---- caller side ----
    def _peer(self, nonce: int) -> Peer:
        p = remote.directory.get(nonce)
        if p is None:
            raise ParagoError(f"no node of this cluster run has the handle's home ({nonce:#x})")
        return p

    def submit(self, nonce: int, msg: tuple) -> Any:
        """Ask the node whose run is nonce (from the hub thread): an asyncio
        future of its answer.  The asks of one hub round to one home go in
        one actor call, and its answers come back so (flush)."""
        self._peer(nonce)  # an unknown home: the error here, in the caller
        data = self._sized(xdumps(msg), _what(msg))
        self.next_id += 1
        fut = self.rt.loop.create_future()
        self.calls[self.next_id] = fut
        self.asks.setdefault(nonce, []).append((self.next_id, data))
        self.asks_sent += 1
        self._arm_flush()
        return fut

    def submit_call(self, nonce: int, msg: tuple) -> Any:
        """The same from any thread, one actor call: a concurrent future."""
        peer = self._peer(nonce)
        return peer.mailbox.call.remote(self._sized(xdumps(msg), _what(msg))).future()

    @staticmethod
    def _op_msg(h: Any, name: str, args: tuple, kw: dict) -> tuple:
        return ("op", type(h).__mro__[2], h._off, h._gen, name, args, kw)

    def call_blocking(self, h: Any, name: str, args: tuple, kw: dict) -> Any:
        """h.name(*args) at home from a thread that is not the hub's (it waits)."""
        self.thread_calls += 1
        try:
            return self._result(self._thread_wait(self.submit_call(h._home, self._op_msg(h, name, args, kw))))
        finally:
            self.thread_calls -= 1

    def _thread_wait(self, fut: Any) -> Any:
        """A thread's wait for a call's answer, in 50 ms steps that give up
        with Shutdown once the run is ending (no dead node holds it)."""
        u32, rt = self.rt.arena.u32, self.rt
        while True:
            try:
                return fut.result(timeout=0.05)
            except concurrent.futures.TimeoutError:
                if u32[rt.i_shutdown] or u32[rt.i_panicking] == 2 or self.stopping.is_set():
                    raise Shutdown() from None

    def wait(self, fut: Any, name: str, reason: str) -> Any:
        """Park this goroutine until the home answered; the answer's value."""
        gs = getattr(greenlet.getcurrent(), "gs", None)
        if not isinstance(gs, GreenletG):
            raise ParagoError(f"{name}() from an async goroutine: use the _async form")
        return self._result(park_on(self.rt, fut, reason, self))

    def call(self, h: Any, name: str, args: tuple, kw: dict) -> Any:
        """Perform h.name(*args, **kw) at h's home; park this goroutine until done."""
        if threading.get_ident() != self.rt.hub_tid:
            return self.call_blocking(h, name, args, kw)
        return self.wait(self.submit(h._home, self._op_msg(h, name, args, kw)), name, _REASONS.get(name, "IO wait"))

    async def call_async(self, h: Any, name: str, args: tuple, kw: dict) -> Any:
        return self._result(await self.submit(h._home, self._op_msg(h, name, args, kw)))

    def call_select(self, nonce: int, specs: list, timeout: float) -> Any:
        """One home's part of a select across homes (select.py), at that home."""
        msg = ("select", specs, timeout)
        if threading.get_ident() != self.rt.hub_tid:
            return self._result(self._thread_wait(self.submit_call(nonce, msg)))
        return self.wait(self.submit(nonce, msg), "select", "select")

    async def call_select_async(self, nonce: int, specs: list, timeout: float) -> Any:
        return self._result(await self.submit(nonce, ("select", specs, timeout)))

    def _result(self, data: bytes) -> Any:
        ok, val = xloads(data)
        if ok:
            return val
        raise val

    def _outbox_server(self) -> None:
        """P0's goroutine for the other Ps of this node (they cannot reach Ray)."""
        ob = self.outbox
        rt = self.rt
        while True:
            # one at a time: a remote operation costs actor calls anyway
            rt.spawn(_forward, ob.recv(), {}, local=True, system=True, depth=2)

    def place(self, fn: Any, args: tuple, kw: dict, depth: int) -> bool:
        """Placement spread (spawn.place): send a goroutine the hub starts to
        the next node in turn; False when it is this node's turn (or the
        spawner is not this P0's hub, or the run is ending): start it here.
        Batched with the round's asks; counted as given / stolen, so the
        cluster deadlock check sees it in flight."""
        rt = self.rt
        if self.placing or not self.peers or self.stopping.is_set() or threading.get_ident() != rt.hub_tid:
            return False
        k = self.place_next % (len(self.peers) + 1)
        self.place_next += 1
        if k == 0:
            return False
        peer = self.peers[k - 1]
        site = self._site_from_here(dump.site(sys._getframe(depth)))
        data = self._sized(xdumps(("go", fn, args, kw, site)), "a goroutine's function and arguments")
        # (an EncodeError is the spawner's, as pg.go's)
        self.given += 1
        self.asks_sent += 1
        self.asks.setdefault(peer.nonce, []).append((0, data))
        self._arm_flush()
        return True

    def dump_others(self) -> str:
        """pg.debug.dump()'s part for the other nodes: each one's dump (all
        its Ps), asked for in one round and waited for (a goroutine parks,
        a thread waits; an async goroutine or a loop callback cannot wait
        here and gets a line saying so)."""
        if not self.peers or self.stopping.is_set():
            return ""
        msg = ("dump",)
        parts = []
        if threading.get_ident() != self.rt.hub_tid:
            futs = [self.submit_call(p.nonce, msg) for p in self.peers]
            for p, f in zip(self.peers, futs, strict=True):
                parts.append((p, self._dump_text(lambda f=f: self._thread_wait(f))))
        elif isinstance(getattr(greenlet.getcurrent(), "gs", None), GreenletG):
            futs = [self.submit(p.nonce, msg) for p in self.peers]
            for p, f in zip(self.peers, futs, strict=True):
                parts.append((p, self._dump_text(lambda f=f: park_on(self.rt, f, "IO wait", self))))
        else:
            return f"\n\n--- the other {len(self.peers)} node(s) of this cluster run: not listed (asked from an async goroutine) ---\n"
        return "".join(f"\n\n--- node {p.name} ---\n{text}" for p, text in parts)

    def _dump_text(self, wait: Any) -> str:
        try:
            return self._result(wait())
        except Shutdown:
            raise
        except BaseException as e:
            return f"(no dump: {type(e).__name__}: {e})\n"

    def _site_from_here(self, text: str) -> str:
        """A goroutine's created-by text as another node shows it: "creator
        on node N" (report.created_by), unless it already names its node."""
        creator, _, where = text.partition(" ")
        if not where or "@node" in creator:
            return text
        head = f"{creator}@node{self.index} "
        room = CONST["PG_SITE"] - 1 - len(head.encode())
        if len(where.encode()) > room:
            where = "..." + where.encode()[-max(room - 3, 8) :].decode(errors="ignore")
        return head + where

    # ---- work stealing between nodes ----
    def _backlog(self) -> int:
        rt = self.rt
        a = rt.arena
        n = views.hdr(a, "gq_size")
        for p in range(rt.nprocs):
            n += (views.p_get(a, p, "runqtail") - views.p_get(a, p, "runqhead")) & 0xFFFFFFFF
            n += bool(views.p_get(a, p, "runnext")) + views.p_get(a, p, "inbox_n")
        return n

    def _idle(self) -> bool:
        rt = self.rt
        a = rt.arena
        if rt.local_ready or rt.yielded or self._backlog():
            return False
        for p in range(1, rt.nprocs):
            if views.p_get(a, p, "state") not in (Pstate.SLEEPING, Pstate.GONE):
                return False
        return rt.current is None

    def _maybe_steal(self) -> None:
        """Every few ms while this node is idle: ask the next node for work."""
        rt = self.rt
        if self.stopping.is_set() or rt.closed or rt.shutting_down:
            return
        delay = 0.002
        if not self.steal_out and self.peers and self._idle():
            victim = self.peers[self.steal_next % len(self.peers)]
            self.steal_next += 1
            self.steal_out = True
            fut = victim.mailbox.call.remote(pickle.dumps(("steal", STEAL_MAX))).future()
            fut.add_done_callback(lambda f: self.threadsafe(self._stolen, f))
            delay = self.steal_backoff
        self.steal_timer = rt.loop.call_later(delay, self._maybe_steal)

    def threadsafe(self, fn: Any, *a: Any) -> None:
        try:
            self.rt.loop.call_soon_threadsafe(fn, *a)
        except RuntimeError:
            pass

    def _stolen(self, f: Any) -> None:
        self.steal_out = False
        rt = self.rt
        if rt.closed or rt.shutting_down or self.stopping.is_set():
            return  # the run is ending (main returned, or a failure): the node is closed
        try:
            ok, payloads = xloads(f.result())
        except BaseException:
            payloads = []
        if not payloads:
            if self.steal_next % max(1, len(self.peers)) == 0:
                self.steal_backoff = min(STEAL_BACKOFF_MAX, self.steal_backoff * 2)
            return
        self.steal_backoff = 0.001
        self.stolen += len(payloads)
        self.placing = True  # they start here (placement spread does not send them on)
        try:
            for data, site in payloads:
                # decoded here, in P0 (the cluster hook is set only here), and
                # re-encoded by spawn: remote handles inside take their node-local form
                try:
                    fn, args, kw = xloads(data)
                except BaseException as e:
                    _undecodable(rt, e)
                    continue
                rt.spawn(fn, args, kw, site=site)
        finally:
            self.placing = False
        rt.arm()

    def _find(self) -> int:
        rt = self.rt
        return lib.pg_findrunnable(rt.base, rt.p, 0, rt.obuf, rt.OBUF, self.fout)  # type: ignore[no-any-return]

    def _export(self, want: int) -> list[tuple[bytes, str]]:
        """Give up to half of this node's queued unstarted goroutines (as a P
        is robbed by runqsteal), never those pinned here (go_local, system)."""
        rt = self.rt
        if rt.closed or rt.shutting_down or self.stopping.is_set():
            return []
        n = self._backlog()
        n = min(want, n - n // 2)
        out: list[tuple[bytes, str]] = []
        tries = 0
        while len(out) < n and tries < 2 * n + 4:
            tries += 1
            g = self._find()
            if not g:
                break
            o = self.fout
            how = o[0]
            if how == 0:  # a started goroutine readied: it can only run here, now
                rt.run_g(g)
                continue
            if g in rt.local_fns or views.g_get(rt.arena, g, "kind") & GKind.SYSTEM:
                rt.start_g(g, how, o[1], o[2])
                continue
            if how == 2:
                data = rt.arena.read(o[2], o[1])
                lib.pg_mfree(rt.base, o[2])
            else:
                data = bytes(rt.obuf_mv[: o[1]])
            site = self._site_from_here(rt.site_text(g))
            lib.pg_gexit(rt.base, g)
            if _BUFFER_MARK in data:  # a pg.Buffer inside: the thief gets a copy of its bytes
                data = xdumps(codec.loads(data))
            out.append((data, site))
        self.given += len(out)
        if tries:
            # _find marked this P running (pg_findrunnable: "woken by the
            # loop"): the hub's own round must end it, going idle the usual
            # way (state SLEEPING, queues re-checked), or a waker on another
            # P of this node sees it running, does not wake it, and a G it
            # readied here waits for ever (an outbox request from P1 did)
            rt.arm()
        return out


def _what(msg: tuple) -> str:
    if msg[0] == "op":
        return f"the arguments of {msg[4].lstrip('@')}()"
    return f"a {msg[0]} request"


def _undecodable(rt: Any, e: BaseException) -> None:
    """A goroutine that came from another node and cannot be decoded here
    (its function is not importable on this node, ...): it starts and
    panics with why, so the program ends with a report naming it."""
    err = ParagoError(
        f"a goroutine sent to this node cannot start here: {type(e).__name__}: {e} "
        "(its function or a class it needs does not resolve here: docs/cluster.md)"
    )
    rt.spawn(_raise, (err,), {}, local=True, depth=2)


def _raise(e: BaseException) -> None:
    raise e


def park_on(rt: Any, afut: Any, reason: str, node: Node | None = None) -> Any:
    """Park the current goroutine (a greenlet of this P) until the asyncio
    future afut, on this P's loop, is done; its result.  Counted as an
    external waiter, as pg.await_ is (and in node.waits: a wait the cluster
    deadlock check accounts for)."""
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if not isinstance(gs, GreenletG):
        raise ParagoError("a cluster operation must run in a plain goroutine here")
    if not afut.done():
        rt.n_external += 1
        if node is not None:
            node.waits += 1

        def done(_f: Any) -> None:
            if gs.local_wait is afut:
                rt.wake_local(gs)

        gs.local_wait = afut
        afut.add_done_callback(done)
        try:
            rt.park_local(gs, reason)
        finally:
            rt.n_external -= 1
            if node is not None:
                node.waits -= 1
    return afut.result()


def _forward(h: Any, name: str, args: tuple, kw: dict, reply: Any) -> None:
    """P0, for another P of this node: perform the remote op, send the outcome."""
    try:
        if h is None:  # a node request for another P: a select's part at a home (select.py)
            res = (True, remote.node.call_select(*args))
        else:
            res = (True, h._call(name, args, kw))
    except Shutdown:
        raise
    except BaseException as e:
        res = (False, e)
    reply.send(res)


def current() -> Node | None:
    return remote.node


def record_remote_panic(rt: Any, node_name: str, p: Any) -> None:
    """A goroutine on another node panicked: end this program with its report."""
    cause = getattr(p, "__cause__", None)
    try:
        exc = pickle.dumps(cause) if cause is not None else None
    except Exception:
        exc = None
    failure.record(
        rt,
        {
            "kind": "panic",
            "goid": getattr(p, "goid", 0),
            "type": getattr(p, "exc_type", type(p).__name__),
            "msg": getattr(p, "message", str(p)),
            "tb": f"on node {node_name}:\n{getattr(p, 'remote_traceback', '') or str(p)}",
            "stack": f"on node {node_name}:\n{getattr(p, 'stack', '')}",
            "exc": exc,
        },
    )


def record_lost(rt: Any, node_name: str, nprocs: int, why: str) -> None:
    ps = "P0" if nprocs == 1 else f"P0..P{nprocs - 1}"
    failure.record(
        rt,
        {
            "kind": "lost",
            "p": 0,
            "how": f"node {node_name} was lost with its Ps {ps}: {why}",
            "goroutines": "every goroutine that node had started (their state died with it)",
        },
    )


__all__ = ["Node", "current", "park_on", "record_remote_panic", "record_lost", "xdumps"]
