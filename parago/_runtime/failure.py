"""How a program fails: the first failure recorded in the arena wins.

Any P records a failure (an uncaught exception = Go's panic, SystemExit =
os.Exit, a lost P, a deadlock) with one CAS on arena.panicking; the winner
writes a pickled description and wakes P0, which interrupts main and, at
teardown, raises the matching exception from pg.run.  An exception that
cannot be rebuilt in P0 still arrives as its type name, message and the
remote traceback text.

The report a user reads is Go's (report.py): the failing P writes the
``goroutine N [running]:`` section of the goroutine that raised, while
its traceback is at hand; P0, when it first sees the failure and the other
Ps still run, adds every other goroutine (dump.collect_dump) -- once per
program, since pg.run's exception is rebuilt from the record after
teardown.
"""

from __future__ import annotations

import pickle
from typing import Any

from .._errors import Deadlock, Panic, WorkerLost
from .._shim import CONST, lib, views
from . import dump, report

DUMP_TIMEOUT = 0.5  # how long a failure waits for a busy P's goroutines before calling it unresponsive
LOST_DUMP_TIMEOUT = 0.1  # a lost P aborts the run: WorkerLost must reach main fast (p99 <= 200 ms)


def _describe(e: BaseException) -> str:
    t = type(e)
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", "__main__", "__mp_main__") else f"{mod}.{t.__qualname__}"


def record(rt: Any, info: dict) -> bool:
    if rt.closed:
        return False
    data = pickle.dumps(info)
    won = bool(lib.pg_panic_record(rt.base, data, len(data)))
    if won:
        lib.pg_wakep_of(rt.base, 0)
        if rt.p == 0:
            rt.arm()
    return won


def record_failure(rt: Any, goid: int, e: BaseException) -> bool:
    if isinstance(e, SystemExit):
        return record(rt, {"kind": "exit", "code": e.code, "goid": goid})
    tb = dump.format_tb(e)
    try:
        exc = pickle.dumps(e)
    except Exception:
        exc = None
    return record(
        rt,
        {
            "kind": "panic",
            "goid": goid,
            "type": _describe(e),
            "msg": str(e),
            "tb": tb,
            "stack": dump.failing_section(rt, goid, e, tb),
            "exc": exc,
        },
    )


def recorded(rt: Any) -> BaseException | None:
    """The failure recorded in the arena, as the exception pg.run raises."""
    a = rt.arena
    if views.hdr(a, "panicking") != 2:
        return None
    if views.hdr(a, "fail_kind") == CONST["FAIL_LOST"]:  # the C death watch's: no payload
        from .deathwatch import lost_error

        exc = lost_error(rt)
        exc.dump = others(rt, None, LOST_DUMP_TIMEOUT)
        return exc
    info = getattr(rt, "failure_info", None)
    if info is None:
        off = views.hdr(a, "panic_off")
        try:
            info = pickle.loads(a.read(off, views.hdr(a, "panic_len")))
        except Exception as e:  # pragma: no cover - our own payload
            return Panic(0, type(e).__name__, str(e), "")
        if rt.p == 0 and off:
            # P0 alone reads the record, and keeps it decoded for the later
            # calls (pg.run's, after teardown): its block goes back to the arena
            rt.failure_info = info
            lib.pg_mfree(rt.base, off)
    kind = info["kind"]
    if kind == "exit":
        return SystemExit(info["code"])
    if kind == "lost":
        return WorkerLost(
            info["p"],
            info["how"],
            info.get("goroutines", ""),
            others(rt, None, LOST_DUMP_TIMEOUT),
            pid=info.get("pid", 0),
        )
    if kind == "deadlock":
        return Deadlock(info.get("dump", ""), info.get("head"))
    p = Panic(info["goid"], info["type"], info["msg"], info["tb"], info.get("stack", ""), others(rt, info["goid"]))
    if info.get("exc") is not None:
        try:
            p.__cause__ = pickle.loads(info["exc"])
        except Exception:
            pass
    return p


def others(rt: Any, goid: int | None, timeout: float = DUMP_TIMEOUT) -> str:
    """Every goroutine but the failing one, for a failure's report: collected
    by P0 the first time it looks at the failure, while the other Ps still
    run, and kept for the exception pg.run raises after teardown (by then
    the goroutines are unwound).  Never collected once teardown began (Ps
    that have exited would only be waited for)."""
    text = getattr(rt, "failure_dump", None)
    if text is None:
        text = ""
        if rt.p == 0 and not (rt.closed or rt.shutting_down) and report.level() != "single":
            text = dump.collect_dump(rt, timeout, goid)
        rt.failure_dump = text
    return text
