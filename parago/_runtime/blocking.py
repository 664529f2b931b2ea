"""The threads behind pg.blocking (Go's syscall hand-off).

Daemon threads, unlike concurrent.futures' workers: when main returns the
program ends (as in Go) even if a blocking call is still running -- the
interpreter does not wait for it.  Idle threads are reused; they are
runtime threads, so an idle one never hides a deadlock.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Any, Callable

from . import state

MAX_THREADS = 64


class BlockingPool:
    def __init__(self, name: str) -> None:
        self.name = name
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads = 0
        self.idle = 0

    def submit(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self.lock:
            start = self.idle == 0 and self.threads < MAX_THREADS
            if start:
                self.threads += 1
            else:
                self.idle -= 1
        self.jobs.put((fut, fn, args, kw))
        if start:
            t = threading.Thread(target=self._work, name=f"{self.name}-{self.threads}", daemon=True)
            t._parago_runtime = True  # type: ignore[attr-defined]
            t.start()
        return fut

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fut, fn, args, kw = job
            job = None
            if fut.set_running_or_notify_cancel():
                try:
                    try:
                        res = fn(*args, **kw)
                    finally:
                        # before the waiting goroutine resumes: the G this
                        # thread made for the job's parago calls (a pooled
                        # thread outlives the job and the run's leak check)
                        rt = state.rt
                        if rt is not None:
                            rt.drop_thread_g()
                    fut.set_result(res)
                except BaseException as e:  # handed to the goroutine that waits
                    fut.set_exception(e)
                res = None
            fut = fn = args = kw = None
            with self.lock:
                self.idle += 1

    def shutdown(self) -> None:
        for _ in range(self.threads):
            self.jobs.put(None)
