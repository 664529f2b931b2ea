"""Run seeds through worker processes (tests/stress/worker.py) with a time
limit per seed: a seed that does not finish in time is a hang -- its worker
(process group: its Ps too) is SIGKILLed, the hang recorded, and a fresh
worker goes on with the next seed."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from tests.stress.worker import TAG

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, mode: str, seeds: list[int]) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("PARAGO_START_METHOD", None)  # each seed names its own
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.stress.worker", mode, *map(str, seeds)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.err,
            start_new_session=True,  # one process group: the worker and its Ps
        )
        assert self.proc.stdout is not None
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buf = b""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def next_event(self, timeout: float) -> dict | None:
        """The next report, or None if none came within ``timeout`` s (or
        the worker exited)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith(TAG):
                    return json.loads(text[len(TAG) :])
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)  # type: ignore[union-attr]
            if not chunk:
                return None
            self.buf += chunk

    def stderr_tail(self, n: int = 3000) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-n:]

    def close(self, kill: bool) -> None:
        if kill:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        finally:
            self.sel.close()
            self.proc.stdout.close()  # type: ignore[union-attr]
            self.err.close()


def supervise(
    mode: str,
    seeds: list[int],
    limit: float,
    on_ready: Callable[[Worker, dict], dict] | None = None,
    time_box: float | None = None,
) -> Iterator[dict]:
    """Yield one result per seed run (``{"seed", "outcome", ...}``; a hang
    is ``outcome="hang"``).  ``on_ready(worker, event)`` handles a fault
    run's "ready" event (it injects the fault) and returns fields merged into
    that seed's result.  Stops early (without a result for the rest) once
    ``time_box`` s have passed."""
    t0 = time.monotonic()
    todo = list(seeds)
    while todo:
        w = Worker(mode, todo)
        hung = False
        first = True
        try:
            while todo:
                if time_box is not None and time.monotonic() - t0 > time_box:
                    return
                seed = todo[0]
                extra: dict = {}
                ev = w.next_event(limit + (30 if first else 0))  # the worker's start-up, imports included
                first = False
                while ev is not None and ev["ev"] != "done":
                    if ev["ev"] == "ready" and on_ready is not None:
                        extra.update(on_ready(w, ev))
                    ev = w.next_event(limit)
                todo.pop(0)
                if ev is None:
                    hung = True
                    rc = w.proc.poll()
                    outcome = "hang" if rc is None else f"worker exited with {rc}"
                    yield {"seed": seed, "outcome": outcome, "leaks": [], "stderr": w.stderr_tail(), **extra}
                    break
                yield {**ev, **extra}
                if ev.get("restart"):
                    break
        finally:
            w.close(kill=hung or bool(todo))
