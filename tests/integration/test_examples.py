"""Every program in examples/ runs at small sizes and checks its own output.

Each example is a subprocess (as a user runs it: ``python3 examples/x.py``
or ``python3 -m parago run [flags] examples/x.py``), at procs=1 and
procs=2 where that matters (PARAGO_MAXPROCS, or ``--procs`` for the
command line).  A run passes when its exit status is the expected one
(0; 66 for ``--race`` findings) and every anchored line pattern appears in
its output.  The examples assert their own invariants (conservation,
sequential cross-checks) and exit non-zero when one fails, so a pattern
here checks what they print, not what they compute.  A new file in
examples/ fails ``test_every_example_is_run`` until a case is added here.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# settings a developer may have exported that would change what the examples print
_DROP = ("PARAGO_MAXPROCS", "PARAGO_DEBUG", "PARAGO_RACE", "PARAGO_CPUPROFILE", "PARAGO_TRACE")


@dataclass(frozen=True)
class Case:
    """One way to run an example.  In args and patterns, PROCS, TMP and ROOT are
    replaced by the run's procs, a temporary directory and the repository root."""

    args: tuple[str, ...] = ()
    stdout: tuple[str, ...] = ()  # line patterns (re.M), each must match some line
    stderr: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # patterns that must match no line of stdout or stderr
    cli: tuple[str, ...] | None = None  # run as `python3 -m parago run CLI... script ARGS`
    procs: tuple[int, ...] = (1, 2)
    rc: int = 0
    files: tuple[str, ...] = ()  # files the run must leave behind


CASES: dict[str, list[Case]] = {
    "spawn_bench.py": [
        Case(
            ("-n", "5000"),
            (
                r"^spawned 5,000 goroutines \(atomic add each\) in [0-9.]+ s: [0-9,]+ goroutines/s, procs=PROCS$",
                r"^count = 5,000$",
                r"^parago +5,000 +[0-9.]+s +\d+ MiB  \(peak RSS of all Ps, \+\d+ MiB\)$",
            ),
        )
    ],
    "schedtrace.py": [
        Case(
            ("--phase-ms", "200"),
            (r"^\d+ busy goroutines ran on [12] of PROCS P\(s\); 50 parked goroutines woke and finished$",),
            (
                r"^--- phase 1: \d+ CPU-bound goroutines on PROCS P\(s\), about 50 ms of work each$",
                r"^SCHED \d+ms: gomaxprocs=PROCS idleprocs=\d+ threads=\d+ spinningthreads=\d+ .*runqueue=\d+ \[",
                r"^  P0: status=\d schedtick=\d+ syscalltick=\d+ m=0 runqsize=\d+ ",
                r"^  goroutines=\d+ parked=\d+$",
                r"^  G1: status=4\((chan receive|sleep)\) ",  # main, always on P0
                r"^--- phase 3: ",
            ),
        ),
        Case(
            ("--phase-ms", "200"),
            (r"^\d+ busy goroutines ran on [12] of 2 P\(s\); 50 parked goroutines woke and finished$",),
            (r"^SCHED \d+ms: gomaxprocs=2 ", r"^  P1: status=\d "),
            cli=("--schedtrace", "50", "--scheddetail"),
            procs=(2,),
        ),
    ],
    "chan_bench.py": [
        Case(
            ("-n", "3000"),
            (
                r"^3,000 ints through a channel, one sender and one receiver, procs=PROCS; every value checked$",
                r"^  unbuffered  make\(chan int\) +[0-9,]+ ns/op +[0-9,]+ values/s  x1\.0$",
                r"^  batched     send_many/recv_many\(256\), cap 1024 +[0-9,]+ ns/op ",
            ),
        )
    ],
    "pipeline.py": [
        Case(
            ("20000",),
            (
                r"^sum of squares below 20000: 2666466670000$",
                r"^20,000 records through 1 cleaner, 4 workers and 1 collector in [0-9.]+ s; pid \d+: [0-9,]+",
            ),
        )
    ],
    "zero_copy.py": [
        Case(
            ("-n", "30"),
            (
                r"^30 messages of 1 MiB, channel capacity 10, procs=PROCS; every message's sequence and payload checked$",
                r"^  pg\.Buffer from pg\.Pool \(handle only\) +[0-9.]+ s +\d+ MiB/s +\d+ buffers allocated$",
                r"^  bytes \(copied in and out\) +[0-9.]+ s +\d+ MiB/s +30 objects allocated$",
                r"^  one channel hop of 1 MiB: [0-9,]+ us as a pg\.Buffer handle, [0-9,]+ us as bytes \(x\d+\)$",
            ),
        )
    ],
    "memory_model.py": [
        Case(
            ("--runs", "30"),
            (
                r'^  plain variables \(copies\) +"0 0" x30 +f wrote its own copy$',
                r'^  pg\.Buffer, no synchronisation +("[02] [01]" x\d+ +)+a data race$',
                r'^  channel send -> receive +"2 1" x30 +guaranteed$',
                r'^  Mutex unlock -> lock +"2 1" x30 +guaranteed$',
                r'^  Once\.do \(\d+ callers\) +"2 1" x30 +guaranteed$',
            ),
        )
    ],
    "race.py": [
        Case(
            ("-n", "200"),
            (
                r"^counter\+\+ in 200 goroutines: +counter = 0 \(each goroutine incremented its own copy\)$",
                r"^counter\.add\(1\) in 200 goroutines: counter = 200 \(pg\.atomic\.Int64, procs=PROCS\)$",
            ),
        ),
        Case(
            ("-n", "50"),
            (r"^counter\.add\(1\) in 50 goroutines: counter = 50 ",),
            (
                r"^WARNING: ISOLATION VIOLATION$",
                r"^goroutine \d+ \(racy_counter\.<locals>\.inc\) wrote to captured variable 'counter'",
                r"^  created by (__main__\.)?racy_counter .*race\.py:\d+$",
            ),
            cli=("--race",),
            rc=66,
        ),
        Case(
            ("-n", "50", "--fixed-only"),
            (r"^counter\.add\(1\) in 50 goroutines: counter = 50 ",),
            absent=(r"ISOLATION VIOLATION",),
            cli=("--race",),
            procs=(2,),
        ),
    ],
    "cas_counter.py": [
        Case(
            ("--goroutines", "4", "--per", "1000"),
            (
                r"^4 goroutines x 1,000 CAS increments on [12] of PROCS P\(s\): count = 4,000 \(expected 4,000\)$",
                r"^  failed CAS attempts \(another goroutine got there first\): [0-9,]+$",
                r"^  CAS loop [0-9,]+ ns/increment; atomic add [0-9,]+ ns/increment$",
            ),
        )
    ],
    "work_stealing.py": [
        Case(
            ("-n", "100"),
            (
                r"^1\. WorkStealingScheduler on channels: 100 tasks, all queued on worker 0, 2 workers, "
                r"procs=PROCS: [0-9.]+ s$",
                r"^   worker 0 \(pid \d+\): ran \d+ tasks, 0 of them stolen$",
                r"^   worker 1 \(pid \d+\): ran [1-9]\d* tasks, [1-9]\d* of them stolen$",
                r"^2\. the runtime's runqsteal: 100 goroutines spawned by one goroutine: [0-9.]+ s on [12] P\(s\)$",
            ),
        )
    ],
    "managed.py": [
        Case(
            (),
            (
                r"^27 jobs done, 2 recovered errors, 3 workers stopped$",
                r"^  recovered: bad job 13; bad job 26$",
                r"^  round 1 stopped by cancel\(\): +ctx\.err\(\) = Canceled$",
                r"^  round 2 stopped by the 0\.2 s deadline: ctx\.err\(\) = DeadlineExceeded$",
            ),
        )
    ],
    "conn_pool.py": [
        Case(
            ("--clients", "20", "--requests", "3"),
            (
                r"^60 requests from 20 clients served; procs=PROCS, pool size 4$",
                r"^  connections: \d+ dialled, \d+ closed \(pool full\), [0-4] idle in the pool; "
                r"at most \d+ in use at once$",
            ),
        )
    ],
    "profiles.py": [
        Case(
            ("--items", "60", "--cpuprofile", "TMP/own.out"),
            (
                r"^60 items, 8 workers, procs=1: [0-9.]+ s; shared total checked$",
                r"^ +[0-9.]+ ms +60 waits  sync\.Mutex\.Lock in record\(\)$",
                r"^ +[0-9.]+ ms +\d+ waits  chan receive in worker\(\)$",
                r"^memory: pid \d+ peak RSS \d+ MiB$",
                r"^ +[0-9.]+%  hot_work  profiles\.py:\d+$",
            ),
            procs=(1,),
            files=("TMP/own.out", "TMP/own.out.svg"),
        ),
        Case(
            ("--items", "60"),
            (
                r"^CPU profile .*cli\.out \([0-9.]+ s sampled over every P; flame graph .*cli\.out\.svg\), "
                r"top by own time:$",
                r"^ +[0-9.]+%  hot_work  profiles\.py:\d+$",
            ),
            cli=("--cpuprofile", "TMP/cli.out"),
            procs=(2,),
            files=("TMP/cli.out", "TMP/cli.out.svg"),
        ),
    ],
    "sharded_counter.py": [
        Case(
            ("--goroutines", "4", "--per", "2000"),
            (
                r"^4 goroutines x 2,000 increments = 8,000, procs=PROCS; every total exact$",
                r"^  pg\.Mutex \+ int64 \(global lock\) +[0-9.]+ s +[0-9,]+ inc/s +x1\.0 +on [12] P\(s\)$",
                r"^  pg\.atomic\.Counter \(sharded per P\) +[0-9.]+ s +[0-9,]+ inc/s +x[0-9.]+ +on [12] P\(s\)$",
            ),
        )
    ],
    "future.py": [
        Case(
            ("--n", "16"),
            (
                r"^1\. Async\[int\] on Chan\[int\]: fib\(12\.\.16\) = \[144, 233, 377, 610, 987\]$",
                r"^   Chan\[int\]\.send\('not an int'\) refused: .*expected int, got str",
                r"^2\. pg\.future: fib\(12\.\.16\) = \[144, 233, 377, 610, 987\], computed on [12] P\(s\)$",
                r"^   a failing future: result\(\) raised ValueError: fib of a negative number: -1$",
                r"^   select over f\.c, in completion order: fib\(\d+\), fib\(\d+\), fib\(\d+\)$",
            ),
        )
    ],
    "prime_sieve.py": [
        Case(
            ("-n", "30"),
            (
                r"^the first 30 primes: 2 3 5 7 11 13 17 19 23 29 31 37 41 43 47 53 59 61 67 71 73 79 83 89 97 "
                r"101 103 107 109 113$",
                r"^30 filter goroutines in a chain, procs=PROCS: [0-9.]+ s; filters ran \d+ on pid \d+",
            ),
        ),
        Case(("-n", "60", "--cap", "8"), (r"^the first 60 primes: 2 3 5 .* 271 277 281$",), procs=(2,)),
    ],
    "wordcount.py": [
        Case(
            ("--files", "8", "--words", "1000"),
            (
                r"^8 files, [0-9,]+ words, \d+ distinct; procs=PROCS, 4 workers; matches a sequential count$",
                r"^  top words: go [0-9,]+, chan [0-9,]+, ",
                r"^  files per P: pid \d+: \d+",
            ),
        ),
        Case(
            ("ROOT/README.md", "ROOT/docs/guide.md", "--workers", "2"),
            (r"^2 files, [0-9,]+ words, [0-9,]+ distinct; procs=2, 2 workers; matches a sequential count$",),
            procs=(2,),
        ),
    ],
    "order_book.py": [
        Case(
            ("--orders", "2000", "--symbols", "3"),
            (
                r"^2,000 orders \([0-9,]+ limit, [0-9,]+ cancels\) on 3 symbols, procs=PROCS: [0-9.]+ s, "
                r"[0-9,]+ orders/s; the gateway \(main\) on pid \d+$",
                r"^  quantity: 2 x [0-9,]+ filled \(both sides\) \+ [0-9,]+ resting \+ [0-9,]+ cancelled "
                r"== [0-9,]+ submitted$",
                r"^  every book identical to a sequential replay \(same fills, same resting orders\)$",
                r"^  latency submit -> ack: p50 [0-9,]+ us  p99 [0-9,]+ us  max [0-9,]+ us$",
                r"^  CCC: bid \d+ / ask \d+, \d+ resting orders, pid \d+$",
            ),
        ),
        Case(
            ("--orders", "600", "--rate", "4000"),
            # paced at 4,000 orders/s, 600 orders cannot take less than ~0.15 s
            (r"^600 orders \(.*\) on 4 symbols, procs=2: (0\.1[4-9]|0\.[2-9]|[1-9]\d*\.\d)\d* s, ",),
            procs=(2,),
        ),
    ],
    "task_scheduler.py": [
        Case(
            ("--tasks", "24", "--size", "5000"),
            (
                r"^24 tasks: 24 done, 5 retried once \(3 transient errors, 2 deadlines exceeded\); "
                r"answers match a sequential count$",
                r"^  4 workers in [12] process\(es\) on 1 host\(s\), [0-9.]+ s$",
                r"^  attempts per process: \S+:\d+ \d+",
            ),
        )
    ],
    "crawler.py": [
        Case(  # plain goroutines, urllib.request under cooperative_io (the example turns it on)
            ("--pages", "20", "--words", "500"),
            (
                r"^crawled 20 pages: /p0 /p1 /p2 .* /p18 /p19$",
                r"^  server on pid \d+; fetches: pid \d+: \d+",
                r"^  parsed 10,100 words in [0-9.]+ s on [12] P\(s\), at most 1000 fetches/s$",
            ),
        ),
        Case(
            ("--pages", "30", "--rate", "200"),
            (r"^crawled 30 pages: /p0 .* /p29$", r"^  parsed 90,150 words in [0-9.]+ s on 2 P\(s\), at most 200 fetches/s$"),
            cli=("--cooperative-io",),
            procs=(2,),
        ),
    ],
    "echo_server.py": [
        Case(  # Go's accept loop: conns move to the P of each handler goroutine
            ("--clients", "40", "--messages", "10"),
            (
                r"^echoed 400 messages of 64 bytes over 40 connections; procs=PROCS$",
                r"^  handlers on PROCS P\(s\): \d+(, \d+)? connections$",
            ),
        )
    ],
    "chat_server.py": [
        Case(
            ("--clients", "12", "--messages", "4"),
            (
                r"^chat: 12 clients x 4 messages: every client heard all 48 messages, once each$",
                r"^  sessions on PROCS P\(s\): \d+(, \d+)?; 576 deliveries in [0-9.]+ s; procs=PROCS$",
            ),
        )
    ],
    "http_server.py": [
        Case(
            ("--clients", "10", "--requests", "9"),
            (
                r"^served 130 HTTP/1.1 requests over 10 keep-alive connections; procs=PROCS$",
                r"^  connections on PROCS P\(s\): \d+(, \d+)?; /count reached 30; [0-9,]+ requests/s$",
            ),
        ),
        Case(
            ("--clients", "4", "--requests", "3", "--work-ms", "1"),
            (r"^served 20 HTTP/1.1 requests over 4 keep-alive connections; procs=2$",),
            cli=(),
            procs=(2,),
        ),
    ],
}


# where each example comes from in the seed guide (shared seed/000_7d8882a577599a81.txt, DESIGN §5)
SEED: dict[str, str | None] = {
    "spawn_bench.py": "§1.1",
    "schedtrace.py": "§1.3",
    "chan_bench.py": "§2.2",
    "pipeline.py": "§2.3",
    "zero_copy.py": "§2.3",
    "memory_model.py": "§3.1",
    "race.py": "§3.3",
    "cas_counter.py": "§4.1",
    "work_stealing.py": "§4.2",
    "managed.py": "§5.1",
    "conn_pool.py": "§5.2",
    "profiles.py": "§6.1",
    "sharded_counter.py": "§6.2",
    "future.py": "§7.1",
    "crawler.py": "practice project",
    "http_server.py": "practice project",
    "echo_server.py": "§1.2",
    "chat_server.py": "§1.2",
    "order_book.py": "practice project",
    "task_scheduler.py": "practice project",
    "prime_sieve.py": None,  # Go's classic sieve
    "wordcount.py": None,
}


def _runs() -> list:
    return [
        pytest.param(name, i, p, id=f"{name[:-3]}-{i}-procs{p}")
        for name, cases in sorted(CASES.items())
        for i, case in enumerate(cases)
        for p in case.procs
    ]


def _subst(text: str, procs: int, tmp: Path) -> str:
    return text.replace("PROCS", str(procs)).replace("TMP", str(tmp)).replace("ROOT", str(ROOT))


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("name", "index", "procs"), _runs())
def test_example_runs_and_checks_its_output(name: str, index: int, procs: int, tmp_path: Path) -> None:
    case = CASES[name][index]
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    args = [_subst(a, procs, tmp_path) for a in case.args]
    if case.cli is None:
        env["PARAGO_MAXPROCS"] = str(procs)
        cmd = [sys.executable, str(EXAMPLES / name), *args]
    else:
        cli = [_subst(a, procs, tmp_path) for a in case.cli]
        cmd = [sys.executable, "-m", "parago", "run", "--procs", str(procs), *cli, str(EXAMPLES / name), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=80, env=env, cwd=tmp_path)
    shown = f"$ {' '.join(cmd)}\n--- exit status {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    assert r.returncode == case.rc, shown
    for stream, patterns in ((r.stdout, case.stdout), (r.stderr, case.stderr)):
        for pat in patterns:
            assert re.search(_subst(pat, procs, tmp_path), stream, re.M), f"no line matches {pat!r}\n{shown}"
    for pat in case.absent:
        assert not re.search(pat, r.stdout + r.stderr, re.M), f"{pat!r} should not appear\n{shown}"
    for f in case.files:
        assert Path(_subst(f, procs, tmp_path)).stat().st_size > 0, f"{f} missing or empty\n{shown}"


def test_every_example_is_run() -> None:
    """A new example cannot be forgotten: each file in examples/ has a case here, and each case a file."""
    on_disk = {p.name for p in EXAMPLES.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert set(SEED) == set(CASES), "SEED and CASES list different examples"
    assert on_disk == set(CASES), (
        f"without a case: {sorted(on_disk - set(CASES))}; stale: {sorted(set(CASES) - on_disk)}"
    )


def _is_main_guard(node: ast.stmt) -> bool:
    t = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(t, ast.Compare)
        and isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and isinstance(t.comparators[0], ast.Constant)
        and t.comparators[0].value == "__main__"
    )


def _calls_pg_run(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "run"
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "pg"
        for n in ast.walk(node)
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_documents_itself_and_guards_pg_run(name: str) -> None:
    """Each example says what it shows, where it comes from and how to run it, and
    runs pg.run only from ``if __name__ == "__main__":`` (spawn/forkserver Ps
    re-import the main module: nothing at module level may start a program)."""
    tree = ast.parse((EXAMPLES / name).read_text())
    doc = ast.get_docstring(tree) or ""
    assert re.search(r"^Run::$", doc, re.M), f"{name}: the docstring has no 'Run::' section"
    assert re.search(rf"^    (python3|parago run .*) examples/{re.escape(name)}", doc, re.M), f"{name}: no run command"
    section = SEED[name]
    if section is not None:
        assert section in doc.split("\n\n")[0], f"{name}: the first paragraph does not name the seed's {section}"
    assert re.search(r"^(Go original|Go shape).*::$", doc, re.M), f"{name}: the docstring does not show the Go original"
    guards = [node for node in tree.body if _is_main_guard(node)]
    assert len(guards) == 1, f"{name}: expected one `if __name__ == '__main__':` block, found {len(guards)}"
    assert _calls_pg_run(tree), f"{name} never calls pg.run"
    loose = [
        node
        for node in tree.body
        if not _is_main_guard(node) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    assert not any(_calls_pg_run(n) for n in loose), f"{name}: pg.run runs at import, outside the __main__ guard"
