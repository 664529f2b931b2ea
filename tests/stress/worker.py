"""The worker process of the reliability tier: runs random programs or fault
runs one after another and reports each on stdout, so that the pytest
process (tests/stress/supervise.py) can time each one out -- a hang, even
one with the GIL held in C, costs one worker, never the test session.

    python -m tests.stress.worker programs SEED [SEED ...]
    python -m tests.stress.worker faults SEED [SEED ...]

Every report is one line ``@@PG {json}`` (P processes share stdout; other
lines are ignored).  After each pg.run the worker checks it left no process,
fd (the arena memfd included) or /dev/shm entry behind.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

import parago as pg
from tests.stress import faults, leaks, progs

TAG = "@@PG "


def emit(ev: dict) -> None:
    sys.stdout.write(TAG + json.dumps(ev) + "\n")
    sys.stdout.flush()


def run_program(seed: int) -> dict:
    plan = progs.generate(seed)
    emit({"ev": "start", "seed": seed})
    t = time.monotonic()
    try:
        outcome, reports = progs.execute(plan)
        problems = progs.check(plan, outcome, reports)
        values = sum(len(r[2]) for r in reports if r[0] == "C")
    except BaseException as e:  # Panic, WorkerLost...: the program failed
        outcome, problems, values = type(e).__name__, [f"{type(e).__name__}: {e}"[:4000]], 0
    return {
        "ev": "done",
        "seed": seed,
        "outcome": outcome,
        "problems": problems,
        "values": values,
        "elapsed": time.monotonic() - t,
        "procs": plan.procs,
        "start_method": plan.start_method,
    }


def run_fault(seed: int) -> dict:
    fault = faults.fault_of(seed)
    emit({"ev": "start", "seed": seed})
    try:
        pg.run(faults.traffic_main, fault, emit, procs=fault.procs, start_method=fault.start_method)
        outcome, msg = "returned", "pg.run returned"
    except pg.WorkerLost as e:
        outcome, msg = "WorkerLost", str(e)[:2000]
    except BaseException as e:
        outcome, msg = type(e).__name__, "".join(traceback.format_exception(e))[-4000:]
    return {"ev": "done", "seed": seed, "outcome": outcome, "t": time.monotonic(), "msg": msg}


def main(argv: list[str]) -> None:
    mode, seeds = argv[0], [int(s) for s in argv[1:]]
    leaks.process_globals()
    baseline = leaks.fd_targets()
    one = run_program if mode == "programs" else run_fault
    for seed in seeds:
        rep = one(seed)
        rep["leaks"] = leaks.check_after_run(baseline)
        from parago._runtime import state

        # a run that left something behind (or its runtime installed) taints
        # the next one: ask for a fresh worker
        rep["restart"] = bool(rep["leaks"]) or state.rt is not None
        emit(rep)
        if rep["restart"]:
            return


if __name__ == "__main__":
    main(sys.argv[1:])
