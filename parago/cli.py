"""The ``parago`` command (also ``python -m parago``).

parago run script.py [args]   run a script (like ``go run``); flags:
    --cooperative-io (PARAGO_COOPERATIVE_IO=1: blocking stdlib I/O parks goroutines)
    --procs N  --schedtrace MS  --scheddetail  --race  --trace FILE
    --cpuprofile FILE  --blockprofile FILE  --mutexprofile FILE  --memprofile FILE
    exit status (as ``go run``): 0; 2 for a panic, a deadlock, a lost P or
    leaked goroutines (PARAGO_DEBUG=leakcheck=1)
    (the crash report alone on stderr); a goroutine's SystemExit code; 66
    for --race findings; 130 for Ctrl-C; 1 for an exception escaping main
parago trace FILE --html OUT  draw a trace
parago demo [--procs N]       all cores busy: a speedup table
parago bench [args]           the benchmark suite (results in ./parago-bench/)
parago env                    what parago sees on this machine
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path


def _run(ns: argparse.Namespace) -> int:
    if ns.procs is not None:
        if ns.procs < 1:
            print(f"parago run: --procs must be >= 1, got {ns.procs}", file=sys.stderr)
            return 2
        os.environ["PARAGO_MAXPROCS"] = str(ns.procs)
    dbg = []
    if ns.schedtrace:
        dbg.append(f"schedtrace={ns.schedtrace}")
    if ns.scheddetail:
        dbg.append("scheddetail=1")
    if dbg:
        os.environ["PARAGO_DEBUG"] = ",".join(filter(None, [os.environ.get("PARAGO_DEBUG", ""), *dbg]))
    if ns.race:
        os.environ["PARAGO_RACE"] = "1"
    if ns.trace:
        os.environ["PARAGO_TRACE"] = str(Path(ns.trace).resolve())
    from ._runtime import pprof, profile

    for kind in profile.KINDS:  # --cpuprofile, --blockprofile, --mutexprofile, --memprofile
        path = getattr(ns, kind)
        if path:
            try:  # a path that cannot be written is said now, not found out at the end
                os.environ[profile.ENV[kind]] = pprof.check_writable(path, profile.FLAGS[kind])
            except ValueError as e:
                print(f"parago run: {e}; running without that profile", file=sys.stderr)
    if ns.cluster:
        os.environ["PARAGO_CLUSTER"] = ns.cluster
    if ns.cooperative_io:
        os.environ["PARAGO_COOPERATIVE_IO"] = "1"  # the default of the script's pg.run
    script = Path(ns.script)
    if not script.exists():
        print(f"parago run: no such file: {script}", file=sys.stderr)
        return 2
    sys.argv = [str(script), *ns.args]
    sys.path.insert(0, str(script.resolve().parent))
    code = _exec(script)
    if ns.race and code == 0:
        from ._runtime import race

        if race.reported():
            return 66  # as `go run -race`: findings turn a clean exit into 66
    return code


def _exec(script: Path) -> int:
    """Run the script as __main__; its exit status, as `go run` reports one:
    the crash report alone on stderr and 2 for a panic, a deadlock or a lost
    P; a goroutine's SystemExit code; 130 for Ctrl-C; 1 and the traceback
    (the user's frames only) for any other exception."""
    from ._errors import Deadlock, GoroutineLeak, Panic, WorkerLost
    from ._runtime import report

    try:
        runpy.run_path(str(script.resolve()), run_name="__main__")  # absolute paths in frames, as python3 gives
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except (Panic, Deadlock, WorkerLost, GoroutineLeak) as e:
        _stderr(f"{e}\n")
        return 2
    except KeyboardInterrupt:
        _stderr("signal: interrupt\n")
        return 130
    except BaseException as e:  # noqa: BLE001 - main's (or the script's) own exception
        _stderr(report.format_exception(e))
        return 1
    return 0


def _stderr(text: str) -> None:
    try:
        sys.stdout.flush()  # what the program printed comes before its report
    except (OSError, ValueError):
        pass
    sys.stderr.write(text)
    sys.stderr.flush()


def _env(ns: argparse.Namespace) -> int:
    import platform

    from . import __version__
    from ._runtime.procs import default_procs, usable_cpus
    from ._shim import CONST, LAYOUT_HASH
    from ._shim.arena import default_size

    rows = [
        ("parago", __version__),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", platform.platform()),
        ("usable CPUs", usable_cpus()),
        ("default procs", default_procs()),
        ("PARAGO_MAXPROCS", os.environ.get("PARAGO_MAXPROCS", "")),
        (
            "arena size",
            f"{default_size() / 2**30:.1f} GiB (PARAGO_ARENA_SIZE={os.environ.get('PARAGO_ARENA_SIZE', '')})",
        ),
        ("PARAGO_DEBUG", os.environ.get("PARAGO_DEBUG", "")),
        ("shim ABI / layout", f"{CONST['PG_ABI_VERSION']} / {LAYOUT_HASH:#010x}"),
    ]
    for k, v in rows:
        print(f"{k:18} {v}")
    return 0


def _bench(argv: list[str]) -> int:
    """The benchmark suite shipped as parago.bench (the checkout's benchmarks/):
    its run goes under ./parago-bench/ of the current directory."""
    import importlib.util

    spec = importlib.util.find_spec("parago.bench")
    locs = list(spec.submodule_search_locations or []) if spec is not None else []
    locs.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # a checkout on PYTHONPATH
    root = next((Path(p) for p in locs if (Path(p) / "run.py").exists()), None)
    if root is None:
        print("parago bench: the benchmark suite is missing from this install (reinstall parago)", file=sys.stderr)
        return 2
    out = os.environ.setdefault("PARAGO_BENCH_RESULTS", str(Path.cwd() / "parago-bench"))
    print(f"parago bench: results go under {out}/", flush=True)
    sys.path.insert(0, str(root))
    import importlib

    mod = importlib.import_module("run")
    return int(mod.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return _bench(argv[1:])
    p = argparse.ArgumentParser(prog="parago", description="Go's concurrency model for Python, on every core.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a script (like `go run`)")
    r.add_argument("--procs", type=int, default=None, help="number of Ps (default: usable CPUs)")
    r.add_argument("--schedtrace", type=int, default=0, metavar="MS", help="print a SCHED line every MS ms")
    r.add_argument("--scheddetail", action="store_true", help="with --schedtrace: a line per P")
    r.add_argument("--race", action="store_true", help="report goroutines that mutate captured state; exit 66")
    r.add_argument("--trace", metavar="FILE", help="write a Chrome/Perfetto trace-event JSON")
    r.add_argument(
        "--cpuprofile", metavar="FILE", help="write a CPU profile merged from every P (pstats) + FILE.svg + FILE.pb.gz (pprof)"
    )
    r.add_argument("--blockprofile", metavar="FILE", help="write where goroutines waited, as pprof (gzipped profile.proto)")
    r.add_argument("--mutexprofile", metavar="FILE", help="write who held contended Mutex/RWMutex, as pprof")
    r.add_argument("--memprofile", metavar="FILE", help="write tracemalloc's allocation sites of every P, as pprof")
    r.add_argument(
        "--cooperative-io",
        action="store_true",
        help="the standard library's blocking calls (socket, ssl, time.sleep, subprocess...) park plain goroutines",
    )
    r.add_argument("--cluster", metavar="ray[://ADDR]", help="run across the nodes of a Ray cluster (docs/cluster.md)")
    r.add_argument("script")
    r.add_argument("args", nargs=argparse.REMAINDER)
    d = sub.add_parser("demo", help="all cores busy, channels across Ps, a speedup table, a trace picture")
    d.add_argument("--procs", type=int, default=None, help="number of Ps (default: usable CPUs)")
    d.add_argument("--n", type=int, default=None, help="fib(n) per goroutine in the speedup table (default 27)")
    d.add_argument("--goroutines", type=int, default=None, help="goroutines in the speedup table (default 32)")
    d.add_argument("--quick", action="store_true", help="small sizes: a few seconds")
    sub.add_parser("env", help="what parago sees on this machine")
    t = sub.add_parser("trace", help="render a --trace file")
    t.add_argument("file")
    t.add_argument("--html", metavar="OUT", required=True, help="write an HTML picture of the trace")
    sub.add_parser("bench", help="the benchmark suite")
    ns = p.parse_args(argv)
    if ns.cmd == "run":
        return _run(ns)
    if ns.cmd == "demo":
        from .demo import main as demo_main

        return demo_main(ns.procs, ns.n, ns.goroutines, quick=ns.quick)
    if ns.cmd == "env":
        return _env(ns)
    if ns.cmd == "trace":
        from ._runtime.trace import render_html

        render_html(ns.file, ns.html)
        print(f"wrote {ns.html}")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
