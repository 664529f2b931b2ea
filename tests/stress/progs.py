"""Random concurrent programs and the in-process model that judges them.

A program is a :class:`Plan`: pure data drawn from one integer seed
(:func:`generate`), so a failure is replayed by its seed alone.  The plan
names channels (buffered and unbuffered), producers (plain send, send_many,
select over several channels with and without default), consumers (range,
recv_ok, recv_many, select with and without default, select with a timer
case), how each channel is closed (after its producers are done, or at a
random moment while they still send), Mutex-protected read-modify-writes,
nested spawns, and how the program ends: cleanly, in a deadlock built into
it (a receive nobody serves, an unbuffered send nobody takes, a WaitGroup
that never reaches zero, a Mutex locked twice, a select nothing can
complete, a channel that is never closed so its consumers cannot drain),
or in the same situation resolved by a rescuer goroutine after a sleep
(which must *not* be reported as a deadlock).

:func:`execute` runs the plan with ``pg.run`` and returns the reports every
goroutine sent; :func:`check` compares them with the model:

* exactly once: per channel, the values received are the values whose send
  returned, each once; a value whose send raised ClosedChannelError is never
  received; with the "after" close no send may fail;
* FIFO: per channel and sender, every receiver sees that sender's values in
  send order;
* Mutex: the counter incremented by unlocked load+store pairs under the
  Mutex equals the number of increments;
* termination and Deadlock: ``pg.run`` returns, and raises ``pg.Deadlock``
  exactly when the plan's ending deadlocks.

Every goroutine body here is a module-level function (pickled by reference,
so spawned Ps import this module).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import parago as pg

SEQ = 1_000_000  # value = producer id * SEQ + sequence number
# seeds below LARGE_SEEDS draw the small programs of the default run; seeds
# from it on, the larger ones of the opt-in run (so a seed alone replays)
LARGE_SEEDS = 1_000_000

PRODUCER_MODES_ONE = ("send", "send", "send_many", "select", "select_default")
PRODUCER_MODES_MANY = ("send", "select", "select", "select_default")
CONSUMER_MODES_ONE = ("iter", "recv_ok", "recv_many", "select", "select_default", "select_timer")
CONSUMER_MODES_MANY = ("select", "select", "select_default", "select_timer")
BLOCKING_CONSUMER_MODES = ("iter", "recv_ok", "recv_many", "select")
# how the program ends after its traffic: clean, or a deadlock by construction
ENDINGS = (
    "recv_nobody",
    "send_nobody",
    "send_full",
    "wg_extra",
    "mutex_twice",
    "select_nothing",
    "select_empty",
    "cannot_drain",
)
RESCUABLE = {"recv_nobody", "send_nobody", "send_full", "wg_extra", "mutex_twice", "select_nothing", "cannot_drain"}
STUCK_KINDS = ("recv", "send", "wg", "mutex", "select")


@dataclass(frozen=True)
class Producer:
    ident: int
    chans: tuple[int, ...]
    n: int
    mode: str
    parent: int  # -1: started by main; else the producer that spawns it
    pause: float  # chance of a gosched/short sleep after a send


@dataclass(frozen=True)
class Consumer:
    ident: int
    chans: tuple[int, ...]
    mode: str
    parent: int  # -1: started by main; else the consumer that spawns it
    locks: float  # chance of a Mutex-protected increment per value


@dataclass(frozen=True)
class Plan:
    seed: int
    procs: int
    start_method: str
    caps: tuple[int, ...]
    close: tuple[str, ...]  # per channel: "after" (producers done), "random" (at a trigger), "never"
    triggers: tuple[tuple[int, int], ...]  # per channel: (producer, after its k-th send) for "random"
    producers: tuple[Producer, ...]
    consumers: tuple[Consumer, ...]
    ending: str  # "clean" or one of ENDINGS
    rescued: bool  # a rescuer resolves the ending after rescue_delay
    rescue_delay: float
    stuck: tuple[str, ...]  # extra goroutines parked in the ending (STUCK_KINDS)

    @property
    def deadlocks(self) -> bool:
        """The model's verdict: every goroutine ends up asleep."""
        return self.ending != "clean" and not self.rescued

    def describe(self) -> str:
        lines = [
            f"program seed={self.seed} procs={self.procs} start_method={self.start_method} "
            f"ending={self.ending} rescued={self.rescued} rescue_delay={self.rescue_delay:.4f} "
            f"stuck={list(self.stuck)} -> {'Deadlock' if self.deadlocks else 'clean'}"
        ]
        for c, cap in enumerate(self.caps):
            lines.append(f"  chan {c}: cap={cap} close={self.close[c]} trigger={self.triggers[c]}")
        lines += [f"  {p}" for p in self.producers]
        lines += [f"  {c}" for c in self.consumers]
        return "\n".join(lines)

    def replay_command(self) -> str:
        return f"PARAGO_STRESS_SEED={self.seed} python3 -m pytest -q -s tests/stress/test_random_programs.py"


def generate(seed: int) -> Plan:
    """The program of ``seed`` (small below LARGE_SEEDS, larger from it on)."""
    rng = random.Random(seed)
    large = seed >= LARGE_SEEDS
    if large:
        procs = rng.randint(1, 4)
        start_method = rng.choice(("fork", "fork", "forkserver", "spawn"))
        nchan, nprod, ncons, nmax = rng.randint(1, 4), rng.randint(1, 6), rng.randint(1, 5), 200
    else:
        procs = rng.choice((1, 1, 2, 2, 2))
        start_method = "fork"
        nchan, nprod, ncons, nmax = rng.randint(1, 3), rng.randint(1, 4), rng.randint(1, 3), 30
    caps = tuple(rng.choice((0, 0, 1, 2, 4, 16)) for _ in range(nchan))
    ending = "clean" if rng.random() < 0.4 else rng.choice(ENDINGS)
    rescued = ending in RESCUABLE and rng.random() < 0.4

    producers = []
    for i in range(nprod):
        k = rng.randint(1, min(3, nchan))
        chans = tuple(sorted(rng.sample(range(nchan), k)))
        mode = rng.choice(PRODUCER_MODES_ONE if k == 1 else PRODUCER_MODES_MANY)
        parent = rng.randrange(i) if i and rng.random() < 0.3 else -1
        producers.append(Producer(i, chans, rng.randint(0, nmax), mode, parent, rng.choice((0.0, 0.05, 0.3))))

    # every channel needs a consumer that stays until it is closed
    cover = list(range(nchan))
    rng.shuffle(cover)
    consumers = []
    for i in range(max(ncons, 1)):
        own = [cover.pop()] if cover else []
        extra = rng.sample(range(nchan), rng.randint(0, min(2, nchan)))
        chans = tuple(sorted(set(own + extra))) or (rng.randrange(nchan),)
        if i == max(ncons, 1) - 1 and cover:
            chans = tuple(sorted(set(chans) | set(cover)))
            cover = []
        mode = rng.choice(CONSUMER_MODES_ONE if len(chans) == 1 else CONSUMER_MODES_MANY)
        parent = rng.randrange(i) if i and rng.random() < 0.3 else -1
        consumers.append(Consumer(i, chans, mode, parent, rng.choice((0.0, 0.0, 0.2, 1.0))))

    # a select-with-default send on an unbuffered channel pairs only with a
    # receiver that is parked: if every consumer of it polls with default too,
    # sender and receiver never meet (a livelock in Go as well)
    for c in range(nchan):
        mine = [j for j, k in enumerate(consumers) if c in k.chans]
        if caps[c] == 0 and all(consumers[j].mode == "select_default" for j in mine):
            consumers[mine[0]] = dataclasses.replace(consumers[mine[0]], mode="select")

    close = [rng.choice(("after", "after", "random")) for _ in range(nchan)]
    if ending == "cannot_drain":
        victim = rng.randrange(nchan)
        close[victim] = "never"
        # a consumer that polls with default (or a timer) never sleeps: Go
        # would not call that a deadlock either, so its consumers block
        for j, c in enumerate(consumers):
            if victim in c.chans and c.mode not in BLOCKING_CONSUMER_MODES:
                consumers[j] = dataclasses.replace(c, mode="select")
    triggers = []
    for c in range(nchan):
        who = rng.randrange(nprod)
        triggers.append((who, rng.randint(0, producers[who].n)) if close[c] == "random" else (-1, 0))
    stuck = tuple(rng.choice(STUCK_KINDS) for _ in range(rng.randint(0, 3))) if ending != "clean" else ()
    return Plan(
        seed=seed,
        procs=procs,
        start_method=start_method,
        caps=caps,
        close=tuple(close),
        triggers=tuple(triggers),
        producers=tuple(producers),
        consumers=tuple(consumers),
        ending=ending,
        rescued=rescued,
        rescue_delay=rng.choice((0.0, 0.001, 0.005, 0.02)),
        stuck=stuck,
    )


# ----------------------------------------------------------------------
# the goroutines


@dataclass(frozen=True)
class Shared:
    """The program's shared objects (handles: every copy is the same object)."""

    plan: Plan
    chans: tuple
    pwgs: tuple  # per channel: its producers not yet done
    triggers: tuple  # per channel: fired once by its "random" closer's trigger producer
    results: pg.Chan  # every producer and consumer reports here once
    mu: pg.Mutex
    counter: pg.atomic.Int64  # read-modify-written under mu (no atomic add)


def _spawn_children(sh: Shared, kind: str, parent: int) -> None:
    pool = sh.plan.producers if kind == "P" else sh.plan.consumers
    body = producer if kind == "P" else consumer
    for spec in pool:
        if spec.parent == parent:
            pg.go(body, sh, spec)


def _fire(sh: Shared, pending: list, sent: int, final: bool) -> None:
    """Fire the triggers this producer owns once it has delivered k values
    (or at its end, whatever it delivered)."""
    for c, k in list(pending):
        if final or sent >= k:
            pg.select(pg.Send(sh.triggers[c], 1), default=True)
            pending.remove((c, k))


def producer(sh: Shared, spec: Producer) -> None:
    """Send spec.n values; report which were delivered (send returned) and
    which were refused because their channel was closed."""
    _spawn_children(sh, "P", spec.ident)
    rng = random.Random(sh.plan.seed * 7919 + spec.ident)
    open_ = list(spec.chans)
    delivered: list[tuple[int, int]] = []
    refused: list[int] = []
    pending = [(c, k) for c, (who, k) in enumerate(sh.plan.triggers) if who == spec.ident]
    seq = 0
    try:
        _fire(sh, pending, 0, False)
        while seq < spec.n:
            if not open_:
                refused.extend(spec.ident * SEQ + s for s in range(seq, spec.n))
                break
            if spec.mode == "send_many":
                c = open_[0]
                batch = [spec.ident * SEQ + s for s in range(seq, min(spec.n, seq + rng.randint(1, 5)))]
                try:
                    sh.chans[c].send_many(batch)
                    delivered += [(c, v) for v in batch]
                except pg.ClosedChannelError as e:
                    delivered += [(c, v) for v in batch[: e.sent]]
                    refused += batch[e.sent :]
                    open_.remove(c)
                seq += len(batch)
            else:
                v = spec.ident * SEQ + seq
                c = _send_one(sh, spec.mode, open_, v, rng)
                if c is None:
                    continue  # a closed channel dropped from open_, or default taken: try v again
                delivered.append((c, v))
                seq += 1
            _fire(sh, pending, len(delivered), False)
            r = rng.random()
            if r < spec.pause:
                pg.gosched() if r < spec.pause / 2 else pg.sleep(0.0002)
    finally:
        _fire(sh, pending, len(delivered), True)
        for c in spec.chans:
            sh.pwgs[c].done()
    sh.results.send(("P", spec.ident, delivered, refused))


def _send_one(sh: Shared, mode: str, open_: list, v: int, rng: random.Random) -> int | None:
    """One attempt to send v; the channel index it went to, or None (retry)."""
    if mode == "send":
        c = rng.choice(open_)
        try:
            sh.chans[c].send(v)
            return c
        except pg.ClosedChannelError:
            open_.remove(c)
            return None
    cases = [pg.Send(sh.chans[c], v) for c in open_]
    try:
        i, _, ok = pg.select(*cases, default=mode == "select_default")
    except pg.ClosedChannelError:
        open_[:] = [c for c in open_ if not sh.chans[c].closed]
        return None
    if i < 0:
        pg.gosched()
        return None
    assert ok
    return open_[i]


def _count(sh: Shared, rng: random.Random) -> None:
    """A read-modify-write that only the Mutex makes safe."""
    if not sh.mu.try_lock():
        sh.mu.lock()
    try:
        x = sh.counter.load()
        if rng.random() < 0.3:
            pg.gosched()  # let others pile up on the Mutex
        sh.counter.store(x + 1)
    finally:
        sh.mu.unlock()


def consumer(sh: Shared, spec: Consumer) -> None:
    """Receive from spec.chans until every one is closed and drained; report
    what came from which channel, in arrival order."""
    _spawn_children(sh, "C", spec.ident)
    rng = random.Random(sh.plan.seed * 104729 + spec.ident)
    got: list[tuple[int, int]] = []
    incs = 0
    for c, v in _receive(sh, spec):
        got.append((c, v))
        if spec.locks and rng.random() < spec.locks:
            _count(sh, rng)
            incs += 1
    sh.results.send(("C", spec.ident, got, incs))


def _receive(sh: Shared, spec: Consumer):
    chans = [sh.chans[c] for c in spec.chans]
    if spec.mode == "iter":
        for v in chans[0]:
            yield spec.chans[0], v
        return
    if spec.mode == "recv_ok":
        while True:
            v, ok = chans[0].recv_ok()
            if not ok:
                return
            yield spec.chans[0], v
    if spec.mode == "recv_many":
        while True:
            try:
                batch = chans[0].recv_many(4)
            except pg.EndOfChannel:
                return
            for v in batch:
                yield spec.chans[0], v
    cases = [pg.Recv(ch) for ch in chans]
    live = len(cases)
    timer = pg.after(0.001) if spec.mode == "select_timer" else None
    while live:
        extra = [pg.Recv(timer)] if timer is not None else []
        i, v, ok = pg.select(*cases, *extra, default=spec.mode == "select_default")
        if i < 0:
            pg.gosched()
        elif i == len(cases):
            timer = pg.after(0.001)  # the timer case: re-arm and go on
        elif not ok:
            cases[i] = None  # closed and drained: a nil case from now on
            live -= 1
        else:
            yield spec.chans[i], v


def closer(sh: Shared, c: int) -> None:
    """Close channel c after its producers are done ("after") or at its
    trigger, while they may still send ("random")."""
    if sh.plan.close[c] == "after":
        sh.pwgs[c].wait()
    else:
        sh.triggers[c].recv()
    sh.chans[c].close()


def _park_forever(kind: str, obj, wg: pg.WaitGroup) -> None:
    """A goroutine of the ending: parks on obj (served only by a rescuer)."""
    if kind == "recv":
        obj.recv()
    elif kind == "send":
        obj.send(1)
    elif kind in ("wg", "mutex"):
        obj.wait() if kind == "wg" else obj.lock()
    else:
        pg.select(pg.Recv(obj[0]), pg.Send(obj[1], 1))
    wg.done()


def _stuck_object(kind: str):
    if kind in ("recv", "send"):
        return pg.Chan(0)
    if kind == "wg":
        wg = pg.WaitGroup()
        wg.add(1)
        return wg
    if kind == "mutex":
        mu = pg.Mutex()
        mu.lock()
        return mu
    return (pg.Chan(0), pg.Chan(0))


def _release(kind: str, obj) -> None:
    if kind == "recv":
        obj.send(1)
    elif kind == "send":
        obj.recv()
    elif kind == "wg":
        obj.done()
    elif kind == "mutex":
        obj.unlock()
    else:
        pg.select(pg.Send(obj[0], 1), pg.Recv(obj[1]))


def rescuer(delay: float, kinds: tuple, objs: tuple) -> None:
    """After a sleep (a pending timer: no Deadlock may be declared meanwhile),
    serve every parked goroutine of the ending once."""
    pg.sleep(delay)
    for kind, obj in zip(kinds, objs, strict=True):
        _release(kind, obj)


def _ending(sh: Shared) -> None:
    """Run the plan's ending in main: park where the plan says (with the
    extra stuck goroutines), rescued or not."""
    plan = sh.plan
    kinds, objs = list(plan.stuck), [_stuck_object(k) for k in plan.stuck]
    wg = pg.WaitGroup()
    wg.add(len(kinds))
    for kind, obj in zip(kinds, objs, strict=True):
        pg.go(_park_forever, kind, obj, wg)
    main_kind = {
        "recv_nobody": "recv",
        "send_nobody": "send",
        "send_full": "send",
        "wg_extra": "wg",
        "mutex_twice": "mutex",
        "select_nothing": "select",
    }.get(plan.ending)
    mine = _stuck_object(main_kind) if main_kind else None
    if plan.ending == "send_full":
        mine = pg.Chan(2)
        mine.send(0)
        mine.send(0)
    if plan.rescued:
        rk, ro = kinds + ([main_kind] if main_kind else []), objs + ([mine] if main_kind else [])
        pg.go(rescuer, plan.rescue_delay, tuple(rk), tuple(ro))
    if plan.ending == "select_empty":
        pg.select()
    elif main_kind:
        if main_kind == "wg":
            mine.wait()
        elif main_kind == "mutex":
            mine.lock()  # main itself holds it: Go's double lock
        elif main_kind == "select":
            pg.select(pg.Recv(mine[0]), pg.Send(mine[1], 2))
        elif main_kind == "recv":
            mine.recv()
        else:
            mine.send(1)
    wg.wait()


def program(plan: Plan, reports: list) -> str:
    """main: start the plan's goroutines, collect every report into
    ``reports`` (main runs in the caller's process: the list is the test's),
    then run the ending."""
    nchan = len(plan.caps)
    sh = Shared(
        plan=plan,
        chans=tuple(pg.Chan(cap) for cap in plan.caps),
        pwgs=tuple(pg.WaitGroup() for _ in range(nchan)),
        triggers=tuple(pg.Chan(1) for _ in range(nchan)),
        results=pg.Chan(len(plan.producers) + len(plan.consumers)),
        mu=pg.Mutex(),
        counter=pg.atomic.Int64(),
    )
    for p in plan.producers:
        for c in p.chans:
            sh.pwgs[c].add(1)
    for c in range(nchan):
        if plan.close[c] != "never":
            pg.go(closer, sh, c)
    late_close = [c for c in range(nchan) if plan.close[c] == "never"]
    if late_close and plan.rescued:
        pg.go(_late_close, plan.rescue_delay, sh, tuple(late_close))
    _spawn_children(sh, "C", -1)
    _spawn_children(sh, "P", -1)
    for _ in range(len(plan.producers) + len(plan.consumers)):
        reports.append(sh.results.recv())
    reports.append(("M", sh.counter.load()))
    if plan.ending not in ("clean", "cannot_drain"):
        _ending(sh)
    return "done"


def _late_close(delay: float, sh: Shared, chans: tuple) -> None:
    """The rescue of "cannot_drain": the never-closed channel is closed after
    all (once its producers are done), so its consumers finish."""
    pg.sleep(delay)
    for c in chans:
        sh.pwgs[c].wait()
        sh.chans[c].close()


def execute(plan: Plan) -> tuple[str, list]:
    """Run the plan; ("clean" | "Deadlock", reports)."""
    reports: list = []
    try:
        r = pg.run(program, plan, reports, procs=plan.procs, start_method=plan.start_method)
    except pg.Deadlock:
        return "Deadlock", reports
    assert r == "done"
    return "clean", reports


# ----------------------------------------------------------------------
# the model


def check(plan: Plan, outcome: str, reports: list) -> list[str]:
    """Every way the run differs from the model (empty: it agrees)."""
    problems = []
    want = "Deadlock" if plan.deadlocks else "clean"
    if outcome != want:
        problems.append(f"outcome {outcome}, the model says {want}")
    if plan.ending == "cannot_drain" and not plan.rescued:
        return problems  # its consumers never report: nothing more to compare
    nreports = len(plan.producers) + len(plan.consumers) + 1
    if len(reports) != nreports:
        return problems + [f"{len(reports)} reports, expected {nreports}"]
    sent: dict[int, list[int]] = {c: [] for c in range(len(plan.caps))}
    refused: list[int] = []
    received: dict[int, list[int]] = {c: [] for c in range(len(plan.caps))}
    incs = counter = 0
    for rep in reports:
        if rep[0] == "P":
            _, ident, delivered, ref = rep
            spec = plan.producers[ident]
            for c, v in delivered:
                sent[c].append(v)
            refused += ref
            if len(delivered) + len(ref) != spec.n:
                problems.append(f"producer {ident}: {len(delivered)} delivered + {len(ref)} refused != {spec.n}")
            if ref and all(plan.close[c] != "random" for c in spec.chans):
                problems.append(f"producer {ident}: {len(ref)} sends failed, but its channels close after it")
        elif rep[0] == "C":
            _, ident, got, k = rep
            incs += k
            last: dict[tuple[int, int], int] = {}
            for c, v in got:
                received[c].append(v)
                key = (c, v // SEQ)
                if key in last and last[key] >= v:
                    problems.append(f"consumer {ident}, chan {c}: {v} after {last[key]} from producer {v // SEQ}")
                last[key] = v
        else:
            counter = rep[1]
    for c in sent:
        s, r = sorted(sent[c]), sorted(received[c])
        if s != r:
            lost = sorted(set(s) - set(r))[:10]
            dup = sorted(v for v in set(r) if r.count(v) > 1)[:10]
            extra = sorted(set(r) - set(s))[:10]
            problems.append(f"chan {c}: sent {len(s)}, received {len(r)}; lost {lost} duplicated {dup} unsent {extra}")
    every = [v for c in received for v in received[c]]
    bad = sorted(set(refused) & set(every))[:10]
    if bad:
        problems.append(f"values whose send raised were received: {bad}")
    if counter != incs:
        problems.append(f"Mutex counter {counter} != {incs} increments (a lost update)")
    return problems


def run_checked(seed: int) -> tuple[Plan, int]:
    """Generate, execute and check one program; raise AssertionError with the
    plan and the replay command on any difference.  Returns (plan, values)."""
    plan = generate(seed)
    outcome, reports = execute(plan)
    problems = check(plan, outcome, reports)
    if problems:
        raise AssertionError("\n".join(problems) + "\n" + plan.describe() + "\nreplay: " + plan.replay_command())
    return plan, sum(len(r[2]) for r in reports if r[0] == "C")
