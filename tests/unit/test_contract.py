"""DESIGN.md §1 as written: the exact names, parameter names, defaults and
keyword-only markers, return shapes (plain tuples), exception base classes
and Go's error words -- the things a test written against §1 relies on."""

from __future__ import annotations

import inspect
import time

import pytest

import parago as pg

pytestmark = pytest.mark.timeout(120)


def _params(obj) -> str:
    """A signature without annotations: names, defaults, * and / markers."""
    sig = inspect.signature(obj)
    return str(sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                           return_annotation=sig.empty))


SIGNATURES = [
    (lambda: pg.run, "(main, *args, procs=None, start_method=None, cluster=None, cooperative_io=False, leaks=None)"),
    (lambda: pg.go, "(fn, *args, **kw)"),
    (lambda: pg.go_local, "(fn, *args, **kw)"),
    (lambda: pg.sleep, "(seconds)"),
    (lambda: pg.Chan, "(cap=0, type=None)"),
    (lambda: pg.Chan.send_many, "(self, iterable)"),
    (lambda: pg.Chan.recv_many, "(self, max_n)"),
    (lambda: pg.select, "(*cases, default=False)"),
    (lambda: pg.after_func, "(seconds, fn, *args)"),
    (lambda: pg.Timer.reset, "(self, seconds)"),
    (lambda: pg.Ticker.reset, "(self, seconds)"),
    (lambda: pg.Cond, "(mu)"),
    (lambda: pg.Pool, "(new=None, size=1024)"),
    (lambda: pg.WaitGroup.go, "(self, fn, *args)"),
    (lambda: pg.Semaphore.acquire, "(self, k=1, ctx=None)"),
    (lambda: pg.Semaphore.release, "(self, k=1)"),
    (lambda: pg.atomic.Value.swap, "(self, v)"),
    (lambda: pg.atomic.Value.compare_and_swap, "(self, old, new)"),
    (lambda: pg.atomic.Int32.and_, "(self, mask)"),
    (lambda: pg.atomic.Uint64.or_, "(self, mask)"),
    (lambda: pg.Map.compare_and_delete, "(self, key, old)"),
    (lambda: pg.singleflight.Group.do, "(self, key, fn, *args)"),
    (lambda: pg.context.with_deadline_cause, "(parent, t, cause)"),
    (lambda: pg.context.with_timeout_cause, "(parent, seconds, cause)"),
    (lambda: pg.context.after_func, "(ctx, fn)"),
    (lambda: pg.net.listen, "(address, *, reuse_port=False, backlog=1024)"),
    (lambda: pg.net.dial, "(address, *, timeout=None)"),
    (lambda: pg.net.dial_async, "(address, *, timeout=None)"),
    (lambda: pg.net.serve, "(address, handler, *, ctx=None)"),
    (lambda: pg.net.Conn.read, "(self, n=65536)"),
    (lambda: pg.trace.log, "(category, message)"),
]


@pytest.mark.parametrize("get,expected", SIGNATURES, ids=[s for _, s in SIGNATURES])
def test_signature(get, expected: str) -> None:
    assert _params(get()) == expected


@pytest.mark.parametrize("exc,bases", [
    (pg.ChanTypeError, (pg.ParagoError, TypeError)),
    (pg.OutOfSharedMemory, (pg.ParagoError, MemoryError)),
    (pg.net.ClosedConnError, (pg.ParagoError, OSError)),
    (pg.net.DeadlineExceeded, (pg.ParagoError, TimeoutError)),
    (pg.context.DeadlineExceeded, (pg.ParagoError, TimeoutError)),
    (pg.GoroutineLeak, (pg.ParagoError,)),
    (pg.WorkerLost, (pg.ParagoError,)),
])
def test_exception_bases(exc: type, bases: tuple) -> None:
    assert issubclass(exc, bases)


def test_shutdown_is_a_base_exception_only() -> None:
    assert issubclass(pg.Shutdown, BaseException)
    assert not issubclass(pg.Shutdown, Exception)
    assert issubclass(pg.ParagoError, Exception)


def _shapes():
    ch = pg.Chan[int](1)
    ch.close()
    m = pg.Map()
    ctx, cancel = pg.context.with_cancel(pg.context.background())
    cancel()
    t = pg.Timer(10)
    return [
        ch.recv_ok(),
        pg.select(pg.Recv(ch)),
        pg.select(pg.Recv(pg.Chan()), default=True),
        m.load("k"), m.load_or_store("k", 1), m.swap("k", 2), m.load_and_delete("k"),
        pg.singleflight.Group().do("k", int),
        (ctx, cancel).__class__ is tuple,
        (len(t.c), t.c.cap, t.stop(), t.stop(), t.reset(10), t.stop()),
    ]


def test_return_shapes_are_plain_tuples(run) -> None:
    r = run(_shapes)
    assert r[:8] == [(0, False), (0, 0, False), (-1, None, False), (None, False), (1, False), (1, True),
                     (2, True), (0, False)]
    assert all(type(x) is tuple for x in r[:8])
    assert r[8] is True
    assert r[9] == (0, 0, True, False, False, True)


def _keywords():
    mu = pg.Mutex()
    cv = pg.Cond(mu=mu)
    v = pg.atomic.Value()
    v.store(1)
    old = v.swap(v=2)
    ch = pg.Chan(cap=3, type=int)
    n = ch.send_many(iterable=[1, 2])
    sem = pg.Semaphore(1)
    sem.acquire(k=1, ctx=pg.context.background())
    sem.release(k=1)
    return cv.L is mu, old, v.load(), n, ch.recv_many(max_n=5)


def test_keyword_names_from_section_1(run) -> None:
    assert run(_keywords) == (True, 1, 2, 2, [1, 2])


def _drain_one_then_close(ch):
    ch.recv()
    ch.close()


def _send_many_closed_part_way():
    ch = pg.Chan(2)
    pg.go(_drain_one_then_close, ch)
    try:
        ch.send_many(range(10))
    except pg.ClosedChannelError as e:
        assert "send on closed channel" in str(e)
        return e.sent, ch.recv_many(10)
    return None


def test_send_many_failing_part_way_says_how_many(run) -> None:
    sent, buffered = run(_send_many_closed_part_way)
    # every value sent is received exactly once: 1 by the closer, the rest buffered
    assert sent == 1 + len(buffered)
    assert buffered == list(range(1, sent))


async def _future_result_from_async():
    f = pg.future(pg.sleep, 0.01)
    try:
        f.result()
    except pg.ParagoError as e:
        msg = str(e)
    return msg, await f.result_async()


def test_future_result_in_async_goroutine_names_result_async(run) -> None:
    msg, res = run(_future_result_from_async)
    assert "fut.result_async()" in msg
    assert res is None


def _error_words():
    out = []
    for fn in (lambda: pg.WaitGroup().done(), lambda: pg.Mutex().unlock()):
        try:
            fn()
        except pg.SyncError as e:
            out.append(str(e))
    v = pg.atomic.Value()
    v.store(1)
    try:
        v.store("x")
    except TypeError as e:
        out.append(str(e))
    ch = pg.Chan(1)
    ch.close()
    for fn in (lambda: ch.send(1), ch.close):
        try:
            fn()
        except pg.ClosedChannelError as e:
            out.append(str(e))
    ctx, cancel = pg.context.with_deadline(pg.context.background(), time.time() - 1)
    sem = pg.Semaphore(0)
    try:
        sem.acquire(1, ctx=ctx)
    except pg.context.DeadlineExceeded as e:
        out.append(isinstance(e, TimeoutError))
    cancel()
    return out


def test_go_error_words(run) -> None:
    out = run(_error_words)
    assert "sync: negative WaitGroup counter" in out[0]
    assert "sync: unlock of unlocked mutex" in out[1]
    assert "sync/atomic: store of inconsistently typed value" in out[2]
    assert "send on closed channel" in out[3]
    assert "close of closed channel" in out[4]
    assert out[5] is True
