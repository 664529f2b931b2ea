"""Programs run both on one machine and across simulated Ray nodes (test_cluster.py).

Each is an ordinary parago main: it knows nothing of the cluster.  Each
returns a plain value computed from what it observed, so a run on the
cluster can be compared with a run on one machine.  Only unstarted
goroutines move between nodes (as between Ps), so each scenario first
queues some CPU-bound ``ballast()``: the goroutines queued behind it are
the ones an idle node takes.
"""

from __future__ import annotations

import collections
import os
import re
import time

import parago as pg
from parago import context


def hold(seconds: float = 0.15) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _ballast() -> None:
    hold(0.004)


def ballast(n: int = 16) -> None:
    """Queue n short CPU-bound goroutines (a scenario calls it before and
    after spawning its own).

    A P runs up to 16 goroutines per scheduling round before its loop
    polls, and an idle node's steal request is answered between rounds,
    taking half of what is queued from the head: the goroutines queued
    between the two ballasts are the ones another node takes (as they
    would be behind any CPU-bound work)."""
    for _ in range(n):
        pg.go(_ballast)


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def where() -> str:
    """Which node (process) this goroutine runs on."""
    return str(os.getpid())


# ---- channels: conservation, per-sender FIFO, close ----


def _sender(sid: int, n: int, ch: pg.Chan, done: pg.WaitGroup) -> None:
    for k in range(n):
        ch.send((sid, k, where()))
    done.done()


def _closer(ch: pg.Chan, wg: pg.WaitGroup) -> None:
    wg.wait()
    ch.close()


def conservation(senders: int = 24, n: int = 20, cap: int = 4) -> dict:
    """Every value exactly once and in order per sender; recv_ok after close."""
    ballast()
    ch = pg.Chan(cap)
    wg = pg.WaitGroup()
    wg.add(senders)
    for s in range(senders):
        pg.go(_sender, s, n, ch, wg)
    pg.go(_closer, ch, wg)
    ballast()
    per: dict[int, list[int]] = collections.defaultdict(list)
    nodes = set()
    for sid, k, node in ch:
        per[sid].append(k)
        nodes.add(node)
    return {
        "fifo": all(ks == list(range(n)) for ks in per.values()),
        "senders": sorted(per),
        "total": sum(map(len, per.values())),
        "after_close": ch.recv_ok(),
        "nodes": len(nodes),
    }


def _echo(req: pg.Chan, rep: pg.Chan) -> None:
    for v in req:  # unbuffered: each value is a rendezvous
        rep.send(v * 2)


def _batch_sender(ch: pg.Chan, base: int, n: int) -> None:
    ch.send_many(range(base, base + n))


def _batch_receiver(ch: pg.Chan, out: pg.Chan, n: int) -> None:
    got: list[int] = []
    while len(got) < n:
        got.extend(ch.recv_many(n - len(got)))
    out.send(got)


def _send_closed(ch: pg.Chan, out: pg.Chan) -> None:
    try:
        ch.send(1)
        out.send("sent")
    except pg.ClosedChannelError as e:
        out.send(f"{type(e).__name__}: {e}")
    try:
        ch.close()
    except pg.ClosedChannelError as e:
        out.send(f"{type(e).__name__}: {e}")
    out.send((len(ch), ch.cap, ch.closed, isinstance(ch, pg.Chan)))


def channels() -> dict:
    """Unbuffered rendezvous, batches, close semantics, len/cap, from any node."""
    ballast()
    req, rep = pg.Chan(), pg.Chan()
    for _ in range(3):
        pg.go(_echo, req, rep)
    batch, bout = pg.Chan(8), pg.Chan(1)
    pg.go(_batch_sender, batch, 0, 50)
    pg.go(_batch_receiver, batch, bout, 50)
    closed, cout = pg.Chan(3), pg.Chan(3)
    closed.close()
    pg.go(_send_closed, closed, cout)
    ballast()
    echoed = []
    for i in range(30):
        req.send(i)
        echoed.append(rep.recv())
    req.close()
    return {
        "echo": echoed == [2 * i for i in range(30)],
        "batch": sorted(bout.recv()) == list(range(50)),
        "closed": [cout.recv() for _ in range(3)],
    }


# ---- select ----


def _feeder(ch: pg.Chan, tag: str, n: int) -> None:
    for k in range(n):
        ch.send((tag, k))


def _local_select(out: pg.Chan) -> None:
    a, b = pg.Chan(1), pg.Chan(1)
    a.send("a")
    b.send("b")
    seen = set()
    for _ in range(200):
        i, v, ok = pg.select(pg.Recv(a), pg.Recv(b))
        seen.add(v)
        (a if i == 0 else b).send(v)
    idx, _, ok = pg.select(pg.Recv(pg.Chan()), None, default=True)
    out.send((sorted(seen), idx, ok))


def select() -> dict:
    """select in main over channels fed from other nodes; select inside moved goroutines."""
    ballast()
    a, b = pg.Chan(), pg.Chan()
    pg.go(_feeder, a, "a", 20)
    pg.go(_feeder, b, "b", 20)
    outs = [pg.Chan(1) for _ in range(3)]
    for o in outs:
        pg.go(_local_select, o)
    ballast()
    got: dict[str, list[int]] = {"a": [], "b": []}
    while len(got["a"]) + len(got["b"]) < 40:
        _, (tag, k), ok = pg.select(pg.Recv(a), pg.Recv(b))
        got[tag].append(k)
    return {
        "fifo": got == {"a": list(range(20)), "b": list(range(20))},
        "inner": [o.recv() for o in outs],
        "default": pg.select(pg.Recv(a), default=True),
    }


def _own_chan(tag: int, n: int, out: pg.Chan) -> None:
    """Make a channel here (its home: the node this goroutine runs on), hand
    it to main, then feed it (cap 2: the sends block until main selects)."""
    ch = pg.Chan(2)
    out.send((tag, ch, where()))
    for k in range(n):
        ch.send((tag, k))
    ch.close()


def _sink(inbox_out: pg.Chan, got: pg.Chan, quit: pg.Chan) -> None:
    """Receive on its own unbuffered inbox (its home is the node it runs
    on) in a select with main's quit channel: a select across homes there."""
    inbox = pg.Chan()
    inbox_out.send((inbox, where()))
    while True:
        i, v, ok = pg.select(pg.Recv(inbox), pg.Recv(quit))
        if i == 1 or not ok:
            break
        got.send(v)
    got.close()


async def _async_sink(inbox_out: pg.Chan, got: pg.Chan, quit: pg.Chan) -> None:
    inbox = pg.Chan()
    await inbox_out.send_async((inbox, where()))
    while True:
        i, v, ok = await pg.select_async(pg.Recv(quit), pg.Recv(inbox))
        if i == 0 or not ok:
            break
        await got.send_async(v)
    got.close()


def select_homes(producers: int = 16, n: int = 8) -> dict:
    """select over channels whose homes are different nodes: receives from
    every home until each is closed (each value once, FIFO per channel),
    Send cases where only the remote one can proceed, default."""
    ballast()
    out = pg.Chan(producers)
    for t in range(producers):
        pg.go(_own_chan, t, n, out)
    inbox_out, quit = pg.Chan(2), pg.Chan()
    gots = [pg.Chan(8), pg.Chan(8)]
    pg.go(_sink, inbox_out, gots[0], quit)
    pg.go(_async_sink, inbox_out, gots[1], quit)
    ballast()
    live: dict = {}
    homes = {where()}
    for _ in range(producers):
        t, ch, w = out.recv()
        live[t] = ch
        homes.add(w)
    local = pg.Chan(3)
    pg.go_local(_feeder, local, "L", n)
    per: dict = collections.defaultdict(list)
    while live or len(per["L"]) < n:
        keys = list(live) + ["L"]
        i, v, ok = pg.select(*[pg.Recv(live[k]) for k in keys[:-1]], pg.Recv(local) if len(per["L"]) < n else None)
        if not ok:
            del live[keys[i]]
            continue
        per[v[0]].append(v[1])
    empty = pg.Chan(1)
    inboxes = []
    for _ in range(2):
        inbox, w = inbox_out.recv()
        inboxes.append(inbox)
        homes.add(w)
    full = pg.Chan(1)
    full.send(0)  # a Send on it is never ready
    sends = [pg.select(pg.Send(full, -1), pg.Send(inboxes[k % 2], k), None) for k in range(6)]
    default = pg.select(pg.Recv(empty), *[pg.Recv(ib) for ib in inboxes], default=True)  # the sinks receive: no sender
    quit.close()
    return {
        "exactly_once_fifo": set(per) == {*range(producers), "L"} and all(v == list(range(n)) for v in per.values()),
        "wrong": {k: v for k, v in per.items() if v != list(range(n))},  # (what differs, for the report)
        "sends": sends,
        "sunk": sorted(list(gots[0]) + list(gots[1])),
        "default": default,
        "nodes": len(homes),
    }


# ---- pg.Buffer: shared on one machine, copied once between nodes ----


def _buf_worker(buf: pg.Buffer, jobs: pg.Chan, out: pg.Chan) -> None:
    """Gets a Buffer as its argument (a stolen goroutine's) and more on a
    channel; answers with new Buffers (reversed bytes) and its node."""
    first = bytes(buf)
    for b in jobs:
        r = pg.Buffer(len(b))
        r[:] = bytes(b)[::-1]
        out.send((r, sum(first), where()))
    out.close()


def buffers(workers: int = 24, per: int = 1, size: int = 100_000) -> dict:
    ballast()
    seed = pg.Buffer(size)
    seed[:3] = b"\x01\x02\x03"
    outs = []
    jobs = pg.Chan()
    for _ in range(workers):
        o = pg.Chan(per)
        outs.append(o)
        pg.go(_buf_worker, seed, jobs, o)
    ballast()
    sent = []
    for k in range(workers * per):
        b = pg.Buffer(size)
        b[:8] = k.to_bytes(8, "little")
        sent.append(bytes(b))
        jobs.send(b)
    jobs.close()
    got, sums, nodes = [], set(), {where()}
    for o in outs:
        for r, s, w in o:
            got.append(bytes(r)[::-1])
            sums.add(s)
            nodes.add(w)
    return {"every_buffer_once": sorted(got) == sorted(sent), "seed_seen": sums == {6}, "nodes": len(nodes)}


# ---- deadlock: every goroutine of every node asleep ----


def _stuck_on(ch: pg.Chan, started: pg.Chan) -> None:
    started.send(where())
    ch.recv()  # nobody ever sends: asleep for ever (parked at ch's home)


def _stuck_here(started: pg.Chan) -> None:
    c = pg.Chan()  # a channel of the node this goroutine runs on
    started.send(where())
    c.recv()


def deadlock_across_nodes() -> None:
    """Raises pg.Deadlock: goroutines asleep on channels of the driver's node
    and of their own nodes, main asleep too."""
    ballast()
    a, started = pg.Chan(), pg.Chan(16)
    for k in range(12):
        pg.go(_stuck_on if k % 2 else _stuck_here, *((a, started) if k % 2 else (started,)))
    ballast()
    for _ in range(12):
        started.recv()
    pg.Chan().recv()


def _late(out: pg.Chan, seconds: float) -> None:
    pg.sleep(seconds)
    out.send(where())


def sleepers_are_not_a_deadlock(n: int = 24) -> dict:
    """Goroutines that only sleep before they send (a timer on some node) are
    not asleep for ever: main gets every value, no Deadlock."""
    ballast()
    out = pg.Chan()
    for _ in range(n):
        pg.go(_late, out, 0.5)
    ballast()
    nodes = {out.recv() for _ in range(n)}
    return {"nodes": len(nodes | {where()})}


# ---- sync, atomics, context ----


def _locked_add(mu: pg.Mutex, cell: pg.atomic.Int64, n: int, wg: pg.WaitGroup) -> None:
    for _ in range(n):
        with mu:  # a read-modify-write that is only exact under the mutex
            cell.store(cell.load() + 1)
    wg.done()


def _counted(counter: pg.atomic.Int64, once: pg.Once, runs: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    counter.add(5)
    once.do(lambda: runs.add(1))
    wg.done()


def _until_done(ctx: context.Context, out: pg.Chan) -> None:
    ctx.done().recv_ok()
    out.send(type(ctx.err()).__name__)


def sync() -> dict:
    """Mutex, WaitGroup, Once, atomics and context cancellation across nodes."""
    ballast()
    mu, cell, wg = pg.Mutex(), pg.atomic.Int64(), pg.WaitGroup()
    wg.add(4)
    for _ in range(4):
        pg.go(_locked_add, mu, cell, 10, wg)
    counter, runs, once, wg2 = pg.atomic.Int64(), pg.atomic.Int64(), pg.Once(), pg.WaitGroup()
    wg2.add(10)
    for _ in range(10):
        pg.go(_counted, counter, once, runs, wg2)
    ctx, cancel = context.with_cancel(context.background())
    out = pg.Chan(5)
    for _ in range(5):
        pg.go(_until_done, ctx, out)
    ballast()
    wg.wait()
    wg2.wait()
    cancel()
    return {
        "mutex": cell.load(),
        "atomic": counter.load(),
        "once": runs.load(),
        "ctx": sorted(out.recv() for _ in range(5)),
        "locked_after": mu.try_lock(),
    }


# ---- a distributed word count ----

WORD = re.compile(r"[a-z]+")
VOCAB = "go chan select goroutine mutex atomic pool context cancel steal park wake arena node".split()


def text(i: int) -> str:
    return " ".join(VOCAB[(i * 7 + k * k) % len(VOCAB)] for k in range(400))


def _count(i: int, out: pg.Chan) -> None:
    c = collections.Counter(WORD.findall(text(i)))
    hold(0.005)
    out.send((i, dict(c), where()))


def wordcount(docs: int = 40) -> dict:
    ballast()
    out = pg.Chan(docs)
    for i in range(docs):
        pg.go(_count, i, out)
    ballast()
    total: collections.Counter = collections.Counter()
    seen, nodes = [], set()
    for _ in range(docs):
        i, c, node = out.recv()
        seen.append(i)
        nodes.add(node)
        total.update(c)
    expect: collections.Counter = collections.Counter()
    for i in range(docs):
        expect.update(WORD.findall(text(i)))
    return {"exact": total == expect, "docs": sorted(seen) == list(range(docs)), "nodes": len(nodes)}


# ---- CPU-bound work (the benchmark's job too) ----


def _burn(n: int, out: pg.Chan) -> None:
    out.send((fib(n), where()))


def cpu_job(tasks: int = 24, n: int = 21) -> dict:
    out = pg.Chan(tasks)
    for _ in range(tasks):
        pg.go(_burn, n, out)
    res = [out.recv() for _ in range(tasks)]
    nodes = collections.Counter(node for _, node in res)
    return {"ok": all(v == fib(n) for v, _ in res), "per_node": sorted(nodes.values())}
