"""Timers: one thread per P fires its deadlines, even while the P is busy.

pg.after, pg.tick, Timer, Ticker and context deadlines deliver through
channels (a non-blocking send) or close one (context): both are arena
operations that any thread may do, so a deadline fires on time whatever
the P's hub is running.  (pg.sleep is a loop timer instead: it only
readies a goroutine of its own P.)

Pending timers count as "something may still happen" for deadlock
detection (published by the P when it goes idle).
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
import traceback
from typing import Any, Callable


class TimerThread:
    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.cond = threading.Condition()
        self.seq = itertools.count()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name=f"parago-P{rt.p}-timers", daemon=True)
        self.thread._parago_runtime = True  # type: ignore[attr-defined]
        self.thread.start()

    def add(self, delay: float, fn: Callable[[], None]) -> None:
        when = time.monotonic() + max(0.0, delay)
        with self.cond:
            heapq.heappush(self.heap, (when, next(self.seq), fn))
            self.cond.notify()

    def pending(self) -> int:
        """Timers that may still fire: a stopped Timer or Ticker, or the
        deadline of a context already done, does not count (it would keep
        Deadlock from being detected until its time).  Dead entries are
        dropped here."""
        with self.cond:
            if len(self.heap) > 256:
                return len(self.heap)  # a big heap: not worth a scan per idle P
            live = [e for e in self.heap if _alive(e[2])]
            if len(live) != len(self.heap):
                heapq.heapify(live)
                self.heap = live
            return len(live)

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()
        if self.thread is not threading.current_thread():
            self.thread.join(1.0)

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stopped:
                    now = time.monotonic()
                    if self.heap and self.heap[0][0] <= now:
                        break
                    self.cond.wait(self.heap[0][0] - now if self.heap else None)
                if self.stopped:
                    return
                _, _, fn = heapq.heappop(self.heap)
            if self.rt.closed:
                return
            try:
                fn()
            except Exception:
                if not self.rt.closed and not self.rt.shutting_down:
                    sys.stderr.write("parago: a timer callback failed:\n" + traceback.format_exc())


def _alive(fn: Any) -> bool:
    alive = getattr(fn, "alive", None)
    if alive is None:
        return True
    try:
        return bool(alive())
    except Exception:
        return False  # its objects are gone (the run ended)


def timers(rt: Any) -> TimerThread:
    t = rt.timers
    if t is None:
        t = rt.timers = TimerThread(rt)
    return t
