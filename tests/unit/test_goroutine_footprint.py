"""What a parked goroutine keeps alive (bytes per parked goroutine, issue 21).

Everything a goroutine references while it is parked is paid once per
parked goroutine -- 100,000 parked goroutines pay it 100,000 times -- so
the start path hands a goroutine over without leaving per-goroutine
containers behind: the worker greenlet keeps its G in a slot (no instance
dict), the start tuple (gs, fn, args, kw) is unpacked and dropped, and a
goroutine started without keywords shares one empty dict.  Structural
checks (what references what), not sizes: sizes are measured by
``benchmarks/bench_spawn.py --only park``.
"""

from __future__ import annotations

import gc

import greenlet
import pytest

import parago as pg
from parago._runtime import sched

_PARKED: list = []  # the probes' greenlets, when they run in main's process


def _probe(gate: pg.WaitGroup, started: pg.atomic.Int64) -> None:
    _PARKED.append(greenlet.getcurrent())
    started.add(1)
    gate.wait()


def _footprint(gr: greenlet.greenlet) -> tuple:
    gs = getattr(gr, "gs", None)
    tuples = [r for r in gc.get_referrers(gs) if isinstance(r, tuple)]
    has_dict = any(isinstance(r, dict) for r in gc.get_referents(gr))
    kws = []
    f = gr.gr_frame
    while f is not None:  # run_goroutine's frame: the keywords it holds while its goroutine waits
        if f.f_code is sched.Runtime.run_goroutine.__code__:
            kws.append(f.f_locals["kw"] is sched._NO_KW)
        f = f.f_back
    return gs is not None, len(tuples), has_dict, kws


def _main() -> list:
    gate, started = pg.WaitGroup(), pg.atomic.Int64()
    gate.add(1)
    pg.go_local(_probe, gate, started)  # local: its own **kw dict until started
    pg.go(_probe, gate, started)  # encoded: a decoded (or start-cached) payload
    while started.load() < 2:
        pg.sleep(0.005)
    pg.sleep(0.02)  # both reached gate.wait() and parked
    res = [_footprint(gr) for gr in _PARKED]
    _PARKED.clear()
    gate.done()
    return res


@pytest.mark.timeout(60)
def test_a_parked_goroutine_keeps_no_start_tuple_dict_or_keywords_of_its_own(run):
    res = run(_main)
    assert res, "no probe ran in main's process"
    for has_gs, tuples, has_dict, shared_kw in res:
        assert has_gs, "the worker greenlet does not name its G"
        assert tuples == 0, "a tuple holding the G (its start record) is kept while it is parked"
        assert not has_dict, "the worker greenlet has an instance dict (its G belongs in its slot)"
        assert shared_kw == [True], "a goroutine started without keywords holds an empty dict of its own"
