"""Placement end to end: a P that dies while goroutines wait in its inbox."""

from __future__ import annotations

import os
import signal
import time

import pytest

import parago as pg
from parago._runtime import state
from parago._shim import views
from tests.helpers import go_on


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def _kill_p1_with_a_full_inbox() -> None:
    a = state.rt.arena
    stop = time.monotonic() + 30
    go_on(1, _spin, stop)  # P1 busy in a goroutine
    deadline = time.monotonic() + 10
    while views.p_get(a, 1, "nlive") == 0 and time.monotonic() < deadline:
        pg.sleep(0.005)
    for _ in range(40):
        pg.go(_spin, stop)  # placement sends half of them to P1's inbox
    assert views.p_get(a, 1, "nplaced") > 0
    os.kill(views.p_get(a, 1, "pid"), signal.SIGKILL)
    pg.Chan().recv()  # WorkerLost interrupts main here


@pytest.mark.timeout(60)
def test_a_p_that_dies_with_work_placed_in_its_inbox_is_worker_lost():
    t0 = time.monotonic()
    with pytest.raises(pg.WorkerLost) as ei:
        pg.run(_kill_p1_with_a_full_inbox, procs=2)
    assert ei.value.p == 1
    assert time.monotonic() - t0 < 20  # never a hang: goroutines spinning on P0 are unwound
