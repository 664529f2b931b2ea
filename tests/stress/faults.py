"""Fault injection: heavy traffic that runs until the run is aborted, and
the parent-side injector that SIGKILLs one P of it -- at a random moment, or
while it holds the arena lock word of one of the traffic's objects.

The traffic runs in a worker process (tests/stress/worker.py); main tells
the parent, on the worker's stdout, every P's pid, the arena fd and where
the lock words of the objects under traffic are (an arena lock word lives
in the object header: shm/layout.h pg_objhdr.lock, encoded as
``((owner P + 1) << 1) | waiters``).  The parent maps the arena read-only
through ``/proc/<worker>/fd/<fd>``, SIGSTOPs the victim P, and SIGKILLs it
if the victim owns one of those words, else SIGCONTs it and tries again.
"""

from __future__ import annotations

import mmap
import os
import random
import signal
import time
from dataclasses import dataclass

import parago as pg
from parago._shim import offset
from tests import helpers

KINDS = ("chan", "select", "mutex", "wg")
LOCK = offset("pg_objhdr", "lock")  # in every object header (pg_chan.hdr, pg_sync.hdr are at 0)


@dataclass(frozen=True)
class Fault:
    seed: int
    kind: str
    procs: int
    victim: int  # the P index to kill (never 0: P0 is the worker itself)
    in_lock: bool  # wait until the victim holds a target's lock word
    delay: float  # random-point faults: seconds of traffic before the kill
    cap: int
    start_method: str

    def replay_command(self) -> str:
        return f"PARAGO_STRESS_SEED={self.seed} python3 -m pytest -q -s tests/stress/test_faults_random.py -k replay"


def fault_of(seed: int) -> Fault:
    rng = random.Random(seed)
    procs = rng.randint(2, 4 if seed >= 1_000_000 else 3)
    return Fault(
        seed=seed,
        kind=KINDS[seed % len(KINDS)],
        procs=procs,
        victim=rng.randrange(1, procs),
        in_lock=(seed // len(KINDS)) % 2 == 1,  # every kind both ways
        delay=rng.uniform(0.01, 0.15),
        cap=rng.choice((0, 1, 16)),
        start_method=rng.choice(("fork", "fork", "forkserver", "spawn")) if seed >= 1_000_000 else "fork",
    )


# ----------------------------------------------------------------------
# the traffic (goroutines loop until teardown raises Shutdown in them)


def _chan_producer(ch: pg.Chan, k: int) -> None:
    i = 0
    while True:
        ch.send((k, i))
        i += 1


def _chan_consumer(ch: pg.Chan) -> None:
    while True:
        ch.recv()


def _selector(a: pg.Chan, b: pg.Chan, c: pg.Chan, k: int) -> None:
    rng = random.Random(k)
    while True:
        pg.select(pg.Send(a, k), pg.Recv(b), pg.Send(c, k), pg.Recv(a), default=rng.random() < 0.3)


def _locker(mu: pg.Mutex, n: pg.atomic.Int64) -> None:
    while True:
        with mu:
            n.store(n.load() + 1)
            if n.load() % 7 == 0:
                pg.gosched()  # hold it across a switch: waiters park on it


def _wg_churn(wg: pg.WaitGroup, done: pg.WaitGroup) -> None:
    while True:
        wg.add(1)
        done.add(1)
        wg.done()
        done.done()
        wg.wait()


def _targets(kind: str, cap: int) -> dict:
    if kind == "chan":
        return {"chan": pg.Chan(cap)}
    if kind == "select":
        return {"a": pg.Chan(cap), "b": pg.Chan(0), "c": pg.Chan(1)}
    if kind == "mutex":
        return {"mutex": pg.Mutex(), "n": pg.atomic.Int64()}
    return {"wg": pg.WaitGroup(), "done": pg.WaitGroup()}


def _start_traffic(kind: str, t: dict, procs: int) -> None:
    """Two goroutines of each role on every P (placed: started goroutines
    never move), so the victim P is busy with the targets too."""
    for p in range(procs * 2):
        if kind == "chan":
            helpers.go_on(p, _chan_producer, t["chan"], p)
            helpers.go_on(p, _chan_consumer, t["chan"])
        elif kind == "select":
            helpers.go_on(p, _selector, t["a"], t["b"], t["c"], p)
        elif kind == "mutex":
            helpers.go_on(p, _locker, t["mutex"], t["n"])
        else:
            helpers.go_on(p, _wg_churn, t["wg"], t["done"])


def _main_traffic(kind: str, t: dict) -> None:
    """main joins in (a receive, a select, a lock, a wait in main)."""
    while True:
        if kind == "chan":
            t["chan"].recv()
        elif kind == "select":
            pg.select(pg.Recv(t["a"]), pg.Send(t["b"], 0), pg.Recv(t["c"]))
        elif kind == "mutex":
            with t["mutex"]:
                t["n"].add(1)
        else:
            t["wg"].add(1)
            t["wg"].done()
            t["wg"].wait()


def traffic_main(fault: Fault, announce) -> None:
    """Goroutine 1 of a fault run: start the traffic, announce the P pids
    and the targets' lock words, then take part until the run is aborted."""
    from parago._runtime import state

    rt = state.rt
    t = _targets(fault.kind, fault.cap)
    _start_traffic(fault.kind, t, fault.procs)
    pids = [rt.arena.u32[rt.arena.p_field(p, "pid") // 4] for p in range(fault.procs)]
    locks = {name: h._off + LOCK for name, h in t.items() if isinstance(h, (pg.Chan, pg.Mutex, pg.WaitGroup))}
    announce({"ev": "ready", "seed": fault.seed, "pids": pids, "arena_fd": rt.arena.fd, "locks": locks})
    _main_traffic(fault.kind, t)


# ----------------------------------------------------------------------
# the injector (runs in the parent, the pytest process)


def _stopped(pid: int, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state in ("T", "t"):
            return True
        time.sleep(0.0001)
    return False


def lock_owner(word: int) -> int | None:
    """The P index an owner-tagged lock word names (None: free)."""
    return (word >> 1) - 1 if word else None


class Injector:
    """Kill one P of an announced fault run (see the module docstring)."""

    def __init__(self, worker_pid: int, ready: dict) -> None:
        fd = os.open(f"/proc/{worker_pid}/fd/{ready['arena_fd']}", os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)  # the mapping keeps the memfd alive, not our fd
        self.u32 = memoryview(self.mm).cast("I")
        self.pids = ready["pids"]
        self.locks = ready["locks"]

    def close(self) -> None:
        self.u32.release()
        self.mm.close()

    def held_by(self, p: int) -> str | None:
        for name, off in self.locks.items():
            if lock_owner(self.u32[off // 4]) == p:
                return name
        return None

    def kill(self, fault: Fault, rng: random.Random, budget: float = 3.0) -> tuple[float, str | None, int]:
        """SIGKILL the victim; returns (CLOCK_MONOTONIC of the kill, the
        lock it held or None, tries).  An in-lock fault that does not catch
        the victim inside a lock within ``budget`` s kills it anyway."""
        pid = self.pids[fault.victim]
        time.sleep(fault.delay)
        tries = 0
        held = None
        if fault.in_lock:
            deadline = time.monotonic() + budget
            while time.monotonic() < deadline:
                tries += 1
                os.kill(pid, signal.SIGSTOP)
                if _stopped(pid):
                    held = self.held_by(fault.victim)
                    if held is not None:
                        break
                os.kill(pid, signal.SIGCONT)
                time.sleep(rng.uniform(0, 0.002))
        os.kill(pid, signal.SIGKILL)
        return time.monotonic(), held, tries
