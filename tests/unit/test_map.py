"""pg.Map: Go's sync.Map in the arena (DESIGN §1 "sync and atomics"), at
procs=1 and procs=2.

Goroutines get copies of their arguments; a Map is a handle, so every
goroutine that gets one works on the same map.  ``go_on(p, fn, ...)``
starts a goroutine on a chosen P so that the procs=2 runs really cross
processes.  The Go ports follow src/sync/map_test.go.
"""

from __future__ import annotations

import enum
import gc
import pickle
import random
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parago as pg
from parago._runtime import state
from parago._shim import CONST, LAYOUT, blocking, lib, offset, views
from parago._shim.arena import P_BASE, P_SIZE
from tests.helpers import go_on, recv_within

KEYS_MSG = r"keys are str, bytes, int, bool, None or tuples of them"


def _items(m: pg.Map) -> list:
    out: list = []
    m.range(lambda k, v: out.append((k, v)))
    return out


# ---------------------------------------------------------------- every method


def test_load_store_delete(run):
    def main():
        m = pg.Map()
        assert m.load("a") == (None, False)
        m.store("a", 1)
        assert m.load("a") == (1, True)
        m.store("a", [2])
        assert m.load("a") == ([2], True)
        m.store("none", None)
        assert m.load("none") == (None, True)  # a stored None is there (ok=True)
        m.delete("a")
        m.delete("a")  # absent: nothing happens
        assert m.load("a") == (None, False)
        assert len(m) == 1
        return True

    assert run(main)


def test_load_or_store_returns_the_present_value_or_stores(run):
    def main():
        m = pg.Map()
        v = {"x": 1}
        actual, loaded = m.load_or_store("k", v)
        assert (actual, loaded) == ({"x": 1}, False)
        assert actual is v  # Go returns the given value itself
        assert m.load_or_store("k", 2) == ({"x": 1}, True)
        assert m.load("k") == ({"x": 1}, True)
        return True

    assert run(main)


def test_load_and_delete_swap(run):
    def main():
        m = pg.Map()
        assert m.load_and_delete("k") == (None, False)
        assert m.swap("k", 1) == (None, False)  # stored all the same
        assert m.load("k") == (1, True)
        assert m.swap("k", "two") == (1, True)
        assert m.load_and_delete("k") == ("two", True)
        assert m.load("k") == (None, False)
        assert len(m) == 0
        return True

    assert run(main)


def test_compare_and_swap_and_delete(run):
    def main():
        m = pg.Map()
        assert m.compare_and_swap("k", None, 1) is False  # absent: false, even for old=None (Go)
        assert m.compare_and_delete("k", None) is False
        m.store("k", [1, 2])
        assert m.compare_and_swap("k", [1], 3) is False
        assert m.load("k") == ([1, 2], True)
        assert m.compare_and_swap("k", [1, 2], 3) is True  # == on the decoded value
        assert m.load("k") == (3, True)
        assert m.compare_and_swap("k", 3.0, "x") is True  # Python's ==: 3 == 3.0
        assert m.compare_and_delete("k", "y") is False
        assert m.compare_and_delete("k", "x") is True
        assert m.load("k") == (None, False)
        m.store("nan", float("nan"))
        assert m.compare_and_swap("nan", float("nan"), 0) is False  # NaN != NaN
        return True

    assert run(main)


def test_range_visits_every_entry_and_stops_on_false(run):
    def main():
        m = pg.Map()
        for i in range(300):
            m.store(i, i * i)
        seen = dict(_items(m))
        assert seen == {i: i * i for i in range(300)}
        n = []
        m.range(lambda k, v: n.append(k) or len(n) < 5)
        assert len(n) == 5
        none_result = []
        m.range(lambda k, v: none_result.append(k))  # None is not False: go on
        assert len(none_result) == 300
        with pytest.raises(TypeError, match=r"^Map\.range: fn must be callable"):
            m.range(3)
        return True

    assert run(main)


def test_clear_and_len(run):
    def main():
        m = pg.Map()
        for i in range(100):
            m.store(str(i), i)
        assert len(m) == 100
        m.clear()
        assert len(m) == 0
        assert _items(m) == []
        m.store("1", 1)  # usable after
        assert m.load("1") == (1, True)
        assert len(m) == 1
        return True

    assert run(main)


def test_large_values_round_trip_through_blocks(run):
    big = bytes(range(256)) * 1000  # larger than a P's 64 KiB out buffer

    def main():
        m = pg.Map()
        m.store("b", big)
        assert m.load("b") == (big, True)
        assert m.load_or_store("b", 1) == (big, True)
        assert _items(m) == [("b", big)]
        for i in range(3):
            m.store(("many", i), big)  # one range batch bigger than the buffer
        assert sorted(map(repr, (k for k, _ in _items(m)))) == sorted(map(repr, [("many", 0), ("many", 1), ("many", 2), "b"]))
        assert m.swap("b", big + b"!") == (big, True)
        assert m.load_and_delete("b") == (big + b"!", True)
        return True

    assert run(main)


# ---------------------------------------------------------------- keys


class Color(enum.IntEnum):
    RED = 1


def test_keys_compare_as_in_a_dict(run):
    def main():
        m = pg.Map()
        m.store(True, "first")  # the key keeps the form it was first stored with
        m.store(1, "second")
        assert m.load(1) == ("second", True)
        assert m.load(True) == ("second", True)
        assert m.load(Color.RED) == ("second", True)
        assert _items(m) == [(True, "second")]
        m.store(0, "zero")
        assert m.load(False) == ("zero", True)
        m.store(("a", 1, (None, b"x")), "t")
        assert m.load(("a", True, (None, b"x"))) == ("t", True)
        m.store("x", "str")
        m.store(b"x", "bytes")  # str and bytes never equal
        assert m.load("x") == ("str", True) and m.load(b"x") == ("bytes", True)
        m.store((), "empty tuple")
        m.store("", "empty str")
        m.store(b"", "empty bytes")
        m.store(None, "none")
        big = 1 << 100
        m.store(big, "big")
        m.store(-big, "-big")
        m.store(-1, "-1")
        m.store((1 << 63) - 1, "max")
        m.store(-(1 << 63), "min")
        m.store(1 << 63, "past max")
        m.store("\ud800", "lone surrogate")
        m.store((True, (False,)), "bools inside")
        expect = {
            1: "second", 0: "zero", ("a", 1, (None, b"x")): "t", "x": "str", b"x": "bytes",
            (): "empty tuple", "": "empty str", b"": "empty bytes", None: "none", big: "big",
            -big: "-big", -1: "-1", (1 << 63) - 1: "max", -(1 << 63): "min", 1 << 63: "past max",
            "\ud800": "lone surrogate", (1, (0,)): "bools inside",
        }
        got = _items(m)
        assert dict(got) == expect
        assert len(got) == len(expect) == len(m)
        keys = [k for k, _ in got]
        assert (True, (False,)) in keys and type(next(k for k in keys if k == (1, (0,)))[0]) is bool
        for k, v in expect.items():
            assert m.load(k) == (v, True), k
        return True

    assert run(main)


@pytest.mark.parametrize(
    ("key", "pattern"),
    [
        (1.5, r"^pg\.Map: key of type float is not supported"),
        (1.0, r"^pg\.Map: key of type float is not supported"),
        ((1, 2.0), r"^pg\.Map: key of type float is not supported"),
        ([1], r"^pg\.Map: unhashable type: 'list'"),
        ({1: 2}, r"^pg\.Map: unhashable type: 'dict'"),
        ((1, [2]), r"^pg\.Map: unhashable type: 'list'"),
        ({1}, r"^pg\.Map: unhashable type: 'set'"),
        (frozenset({1}), r"^pg\.Map: key of type frozenset is not supported"),
        (object(), r"^pg\.Map: key of type object is not supported"),
    ],
)
def test_bad_keys_raise_type_error_naming_the_type(run, key, pattern):
    def main():
        m = pg.Map()
        m.store("ok", 1)
        for call in (
            lambda: m.load(key),
            lambda: m.store(key, 1),
            lambda: m.load_or_store(key, 1),
            lambda: m.load_and_delete(key),
            lambda: m.delete(key),
            lambda: m.swap(key, 1),
            lambda: m.compare_and_swap(key, 1, 2),
            lambda: m.compare_and_delete(key, 1),
        ):
            with pytest.raises(TypeError, match=pattern) as e:
                call()
            assert KEYS_MSG in str(e.value)
        assert _items(m) == [("ok", 1)]
        return True

    assert run(main)


def test_a_map_handle_is_not_a_key(run):
    def main():
        m = pg.Map()
        with pytest.raises(TypeError, match=r"^pg\.Map: key of type Map is not supported"):
            m.compare_and_swap(m, None, 42)  # Go's TestCompareAndSwap_NonExistingKey uses the map as key
        return True

    assert run(main)


def test_unencodable_value_raises_encode_error_and_leaves_the_map_unchanged(run):
    def main():
        m = pg.Map()
        m.store("k", "old")
        lock = threading.Lock()
        for call in (
            lambda: m.store("k", lock),
            lambda: m.swap("k", lock),
            lambda: m.load_or_store("new", lock),
            lambda: m.store("new", [1, lock]),
            lambda: m.compare_and_swap("k", "old", lock),
        ):
            with pytest.raises(pg.EncodeError, match=r"cannot copy value to another P"):
                call()
        assert _items(m) == [("k", "old")]
        assert len(m) == 1
        return True

    assert run(main)


_scalar_keys = st.one_of(
    st.text(max_size=4),
    st.binary(max_size=4),
    st.integers(-3, 3),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**100]),
    st.booleans(),
    st.none(),
)
_keys_st = st.recursive(_scalar_keys, lambda inner: st.tuples(inner, inner) | st.tuples(inner), max_leaves=4)
_bad_keys_st = st.one_of(
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2),
    st.tuples(st.integers(), st.floats(allow_nan=False)),
    st.tuples(st.text(max_size=2), st.lists(st.integers(), max_size=1)),
)


def test_keys_fuzzed_against_a_dict(run):
    """Hypothesis: any mix of valid keys behaves as a dict's keys (equality,
    the first-stored form kept); a bad key is a TypeError and changes
    nothing."""

    def main():
        @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(st.tuples(st.sampled_from(["store", "load", "delete", "bad"]), _keys_st, _bad_keys_st),
                        max_size=12))
        def check(steps):
            m, model = pg.Map(), {}
            for i, (op, k, bad) in enumerate(steps):
                if op == "store":
                    m.store(k, i)
                    model[k] = i
                elif op == "load":
                    assert m.load(k) == ((model[k], True) if k in model else (None, False))
                elif op == "delete":
                    m.delete(k)
                    model.pop(k, None)
                else:
                    with pytest.raises(TypeError, match=r"^pg\.Map: (unhashable type|key of type)"):
                        m.store(bad, i)
            got = _items(m)
            assert dict(got) == model
            assert sorted(repr(k) for k, _ in got) == sorted(repr(k) for k in model)
            assert len(m) == len(model)

        check()
        return True

    assert run(main)


# ---------------------------------------------------------------- values


def test_values_are_copies_and_handles_stay_the_same_object(run):
    def main():
        m = pg.Map()
        v = [1, 2]
        m.store("list", v)
        v.append(3)
        got, _ = m.load("list")
        assert got == [1, 2]
        got.append(4)
        assert m.load("list") == ([1, 2], True)
        ch = pg.Chan(1)
        m.store("ch", ch)
        m.store("both", (ch, m))
        assert m.load("ch")[0] is ch
        c2, m2 = m.load("both")[0]
        assert c2 is ch and m2 is m
        m.delete("both")  # a map holding itself is never freed: break the cycle
        return True

    assert run(main)


def _store_from(m: pg.Map, key, value, done: pg.Chan) -> None:
    m.store(key, value)
    done.send(state.rt.p)


def _use_loaded_chan(m: pg.Map, done: pg.Chan) -> None:
    ch, ok = m.load("ch")
    assert ok
    ch.send(("from", state.rt.p))
    done.send(True)


def test_a_map_passed_to_goroutines_is_the_same_map_on_every_p(run, procs):
    def main():
        m = pg.Map()
        done = pg.Chan(8)
        for i in range(4):
            go_on(i, _store_from, m, ("p", i), i * 10, done)
        ps = sorted(recv_within(done) for _ in range(4))
        assert ps == sorted(i % procs for i in range(4))
        assert dict(_items(m)) == {("p", i): i * 10 for i in range(4)}
        # a Chan stored by main, loaded and used on another P: the same channel
        ch = pg.Chan(4)
        m.store("ch", ch)
        go_on(1, _use_loaded_chan, m, done)
        assert recv_within(done) is True
        assert recv_within(ch) == ("from", 1 % procs)
        return True

    assert run(main)


def _echo_map(inbox: pg.Chan, outbox: pg.Chan) -> None:
    m = inbox.recv()
    m.store("seen-by", state.rt.p)
    outbox.send(m)


def test_a_map_sent_on_a_channel_compares_equal_and_pickles_by_reference(run):
    def main():
        m = pg.Map()
        inbox, outbox = pg.Chan(1), pg.Chan(1)
        go_on(1, _echo_map, inbox, outbox)
        inbox.send(m)
        back = recv_within(outbox)
        assert back == m and hash(back) == hash(m) and back is m
        assert {m: 1}[back] == 1
        assert back != pg.Map()
        assert m.load("seen-by")[1]
        copy = pickle.loads(pickle.dumps(m))
        assert copy is m
        assert "pg.Map at 0x" in repr(m)
        return True

    assert run(main)


def _from_a_thread(m: pg.Map) -> tuple:
    m.store("thread", threading.get_ident())
    return m.load("main")


async def _async_user(m: pg.Map, done: pg.Chan) -> None:
    m.store("async", 1)
    v, ok = m.load("async")
    await done.send_async((v, ok, m.swap("async", 2)))


def test_threads_and_async_goroutines_use_the_map_directly(run):
    def main():
        m = pg.Map()
        m.store("main", "here")
        assert pg.blocking(_from_a_thread, m) == ("here", True)
        assert m.load("thread")[1]
        done = pg.Chan(1)
        pg.go(_async_user, m, done)
        assert recv_within(done) == (1, True, (1, True))
        return True

    assert run(main)


# ---------------------------------------------------------------- Go's map_test.go


_OPS = ["load", "store", "load_or_store", "load_and_delete", "delete", "swap",
        "compare_and_swap", "compare_and_delete", "clear"]


def _rand_value(r: random.Random) -> str:
    return "".join(chr(ord("a") + r.randrange(26)) for _ in range(r.randrange(4)))


class _DictModel:
    """Go's RWMutexMap: the reference semantics, on a plain dict."""

    def __init__(self) -> None:
        self.d: dict = {}

    def load(self, k):
        return (self.d[k], True) if k in self.d else (None, False)

    def store(self, k, v):
        self.d[k] = v

    def load_or_store(self, k, v):
        if k in self.d:
            return self.d[k], True
        self.d[k] = v
        return v, False

    def load_and_delete(self, k):
        return (self.d.pop(k), True) if k in self.d else (None, False)

    def delete(self, k):
        self.d.pop(k, None)

    def swap(self, k, v):
        prev = self.load(k)
        self.d[k] = v
        return prev

    def compare_and_swap(self, k, old, new):
        if k in self.d and self.d[k] == old:
            self.d[k] = new
            return True
        return False

    def compare_and_delete(self, k, old):
        if k in self.d and self.d[k] == old:
            del self.d[k]
            return True
        return False

    def clear(self):
        self.d.clear()

    def range(self, fn):
        for k, v in list(self.d.items()):
            if fn(k, v) is False:
                return


def _apply(m, op: str, k, v, r: random.Random):
    """mapCall.apply"""
    if op == "load":
        return m.load(k)
    if op == "store":
        m.store(k, v)
        return None, False
    if op == "load_or_store":
        return m.load_or_store(k, v)
    if op == "load_and_delete":
        return m.load_and_delete(k)
    if op == "delete":
        m.delete(k)
        return None, False
    if op == "swap":
        return m.swap(k, v)
    if op == "compare_and_swap":
        if m.compare_and_swap(k, v, r.getrandbits(62)):
            m.delete(k)
            return v, True
        return None, False
    if op == "compare_and_delete":
        if m.compare_and_delete(k, v):
            if not m.load(k)[1]:
                return None, True
        return None, False
    m.clear()
    return None, False


def _apply_calls(m, calls: list, seed: int):
    r = random.Random(seed)
    results = [_apply(m, op, k, v, r) for op, k, v in calls]
    final: dict = {}
    m.range(lambda k, v: final.__setitem__(k, v) or True)
    return results, final


def test_map_matches_a_dict_model(run):
    """TestMapMatchesRWMutex / TestMapMatchesDeepCopy (quick.CheckEqual)."""

    def main():
        gen = random.Random(46399)
        for trial in range(60):
            calls = []
            for _ in range(gen.randrange(1, 60)):
                op = gen.choice(_OPS)
                k = _rand_value(gen)
                # Go gives a value to Store/LoadOrStore only; ours also compare
                # with a value that may be there
                v = _rand_value(gen) if op not in ("load", "delete", "load_and_delete", "clear") else None
                calls.append((op, k, v))
            got = _apply_calls(pg.Map(), calls, trial)
            want = _apply_calls(_DictModel(), calls, trial)
            assert got == want, (trial, calls)
        return True

    assert run(main)


def _range_worker(m: pg.Map, g: int, size: int, stop: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    r = random.Random(g)
    i = 0
    while not stop.load():
        for n in range(1, size):
            if r.randrange(size) == 0:
                m.store(n, n * i * g)
            else:
                m.load(n)
        i += 1
        pg.gosched()
    wg.done()


def test_concurrent_range(run, procs):
    """TestConcurrentRange (testing.Short's 16 ranges; a smaller map)."""
    size = 1 << 10

    def main():
        m = pg.Map()
        for n in range(1, size + 1):
            m.store(n, n)
        stop, wg = pg.atomic.Int64(), pg.WaitGroup()
        for g in range(1, procs + 1):
            wg.add(1)
            go_on(g, _range_worker, m, g, size, stop, wg)
        try:
            for _ in range(16):
                seen: set = set()

                def visit(k, v, seen=seen):
                    assert v % k == 0, f"while storing multiples of {k}, range saw value {v}"
                    assert k not in seen, f"range visited key {k} twice"
                    seen.add(k)
                    return True

                m.range(visit)
                assert len(seen) == size, f"range visited {len(seen)} elements of {size}-element Map"
                pg.gosched()
        finally:
            stop.store(1)
            wg.wait()
        return True

    assert run(main)


def _churn_worker(m: pg.Map, lo: int, hi: int, stop: pg.atomic.Int64, wg: pg.WaitGroup) -> None:
    r = random.Random(lo)
    while not stop.load():
        for _ in range(200):
            k = r.randrange(lo, hi)
            if r.random() < 0.5:
                m.delete(("c", k))
            else:
                m.store(("c", k), k)
        pg.gosched()
    wg.done()


def test_concurrent_range_with_deletes_and_reinserts(run, procs):
    """Range while other Ps delete and re-insert keys (and shards grow and
    shrink under it): a key is never seen twice, keys nobody touches are
    always seen, and every value seen is one stored under its key."""
    stable, churn = 512, 2048

    def main():
        m = pg.Map()
        for k in range(stable):
            m.store(("s", k), k)
        stop, wg = pg.atomic.Int64(), pg.WaitGroup()
        nw = 2 * procs
        for w in range(nw):
            wg.add(1)
            go_on(w + 1, _churn_worker, m, w * churn // nw, (w + 1) * churn // nw, stop, wg)
        try:
            for _ in range(12):
                seen: set = set()

                def visit(k, v, seen=seen):
                    assert k not in seen, f"range visited key {k} twice"
                    assert v == k[1], (k, v)
                    seen.add(k)
                    return True

                m.range(visit)
                assert {("s", k) for k in range(stable)} <= seen
                pg.gosched()
        finally:
            stop.store(1)
            wg.wait()
        return True

    assert run(main)


def test_range_nested_call(run):
    """TestMapRangeNestedCall (issue 46399): range from inside range, and
    deleting the visited key from the callback."""

    def main():
        m = pg.Map()
        for i, v in enumerate(["hello", "world", "Go"]):
            m.store(i, v)

        def outer(key, value):
            def inner(k2, v2):
                assert m.load(k2) == (v2, True)
                assert m.load_or_store(42, "dummy")[1] is False
                m.store(42, "sync.Map")
                assert m.load_and_delete(42) == ("sync.Map", True)
                return True

            m.range(inner)
            m.delete(key)
            return True

        m.range(outer)
        assert _items(m) == []
        return True

    assert run(main)


def test_map_delete_and_clear(run):
    """TestMapDelete, TestMapClear."""

    def main():
        m = pg.Map()
        m.store("go", 1.22)
        assert m.load("go") == (1.22, True)
        m.delete("go")
        assert m.load("go") == (None, False)
        m.store("go", 1.21)
        m.clear()
        assert m.load("go") == (None, False)
        m.store("go", 1.21)
        assert m.load("go") == (1.21, True)
        return True

    assert run(main)


def _clear_store(m, k, v, wg):
    m.store(k, v)
    wg.done()


def _clear_load(m, k, wg):
    m.load(k)
    wg.done()


def _clear_clear(m, wg):
    m.clear()
    wg.done()


def test_concurrent_clear(run):
    """TestConcurrentClear: 10 storers, 10 loaders, 10 clearers."""

    def main():
        m = pg.Map()
        wg = pg.WaitGroup()
        wg.add(30)
        for i in range(10):
            go_on(i, _clear_store, m, i, i * 10, wg)
        for i in range(10):
            go_on(i, _clear_load, m, i, wg)
        for i in range(10):
            go_on(i, _clear_clear, m, wg)
        wg.wait()
        m.clear()
        assert _items(m) == []
        assert len(m) == 0
        return True

    assert run(main)


# ---------------------------------------------------------------- a randomized model, every P


def _custody_worker(m: pg.Map, keys: list, g: int, n: int, seed: int, out: pg.Chan) -> None:
    """Random operations on shared keys with unique values; reports which
    values it placed, which it took out (each value may leave the map once)
    and which it saw."""
    r = random.Random(seed)
    placed, taken, seen = [], [], []
    last: dict = {}
    for i in range(n):
        k = r.choice(keys)
        v = (g, i, "x" * r.randrange(3))  # unique
        op = r.randrange(6)
        if op == 0:
            prev, loaded = m.swap(k, v)
            placed.append((k, v))
            if loaded:
                taken.append((k, prev))
        elif op == 1:
            actual, loaded = m.load_or_store(k, v)
            if loaded:
                seen.append((k, actual))
                last[k] = actual
            else:
                placed.append((k, v))
        elif op == 2:
            prev, loaded = m.load_and_delete(k)
            if loaded:
                taken.append((k, prev))
        elif op == 3:
            cur, ok = m.load(k)
            if ok:
                seen.append((k, cur))
                last[k] = cur
        elif op == 4 and k in last:
            if m.compare_and_swap(k, last[k], v):
                taken.append((k, last[k]))
                placed.append((k, v))
        elif op == 5 and k in last:
            if m.compare_and_delete(k, last[k]):
                taken.append((k, last[k]))
        if i % 50 == 0:
            pg.gosched()
    out.send((g, state.rt.p, placed, taken, seen))


@pytest.mark.timeout(180)
def test_random_operations_from_every_p_keep_every_value_exactly_once(run, procs):
    """Every value placed in the map is, at the end, either taken out exactly
    once (swap's previous, load_and_delete, a successful compare_and_*) or
    still there: no lost key, no lost or duplicated update -- what any
    linearization of per-key operations implies.  Every value seen was
    placed under that key."""
    ngor, nops = 2 * procs, 1500

    def main():
        m = pg.Map()
        keys = ["a", "b", 1, 2, (1, "t"), b"k", None, True]  # True is key 1's twin: keys 1 and True are one
        out = pg.Chan(ngor)
        for g in range(ngor):
            go_on(g, _custody_worker, m, keys, g, nops, 1000 + g, out)
        reports = [recv_within(out, 120) for _ in range(ngor)]
        assert sorted({p for _, p, *_ in reports}) == list(range(procs))
        final = _items(m)
        return reports, final

    reports, final = run(main)
    norm = lambda k: 1 if k is True else k  # noqa: E731
    placed = [(norm(k), v) for _, _, pl, _, _ in reports for k, v in pl]
    taken = [(norm(k), v) for _, _, _, tk, _ in reports for k, v in tk]
    seen = [(norm(k), v) for _, _, _, _, sn in reports for k, v in sn]
    left = [(norm(k), v) for k, v in final]
    assert len(placed) == len(set(placed)) > 0
    assert len(taken) == len(set(taken)), "a value was taken out of the map twice"
    assert len({k for k, _ in left}) == len(left), "a key appears twice in range"
    assert set(taken) | set(left) == set(placed), "a placed value vanished, or one never placed appeared"
    assert not set(taken) & set(left), "a value taken out is still there"
    assert set(seen) <= set(placed)


# ---------------------------------------------------------------- memory


def _inuse() -> int:
    gc.collect()
    state.rt.flush_decrefs()
    return views.hdr(state.rt.arena, "inuse")


def _churn(m: pg.Map, rounds: int, base: int) -> None:
    ch = pg.Chan(1)
    for i in range(base, base + rounds):
        m.store(("k", i), [i] * 8)
        m.store(("h", i % 7), ch)  # replacing a value that holds a handle
        m.swap(i % 13, "x" * (i % 200))
        if i >= base + 64:
            m.delete(("k", i - 64))
        m.load_and_delete(("gone", i))
    for i in range(base + rounds - 64, base + rounds):
        m.delete(("k", i))


def test_store_delete_churn_keeps_arena_memory_constant(run):
    def main():
        m = pg.Map()
        _churn(m, 3000, 0)  # warm up: the shards' arrays, the allocator's free lists
        before = _inuse()
        for r in range(3):
            _churn(m, 3000, 10_000 * (r + 1))
        after = _inuse()
        assert len(m) == 7 + 13
        return before, after

    before, after = run(main)
    # 9000 new keys and ~27000 replaced values went through the map
    assert after - before <= 4096, f"arena use grew by {after - before} bytes under churn"


def _fill_and_drop(n: int, done: pg.Chan) -> None:
    m = pg.Map()
    ch = pg.Chan(1)
    for i in range(n):
        m.store(i, (ch, "v" * i))
    done.send(len(m))


def test_a_map_nobody_holds_is_freed_with_its_entries(run):
    def main():
        done = pg.Chan(1)
        _fill_and_drop(10, done)  # warm up this P's free lists
        recv_within(done)
        before = _inuse()
        _fill_and_drop(2000, done)
        assert recv_within(done) == 2000
        return before, _inuse()

    before, after = run(main)
    assert after - before <= 4096, f"{after - before} bytes of a dropped Map are still allocated"


def test_a_map_grows_and_shrinks_back(run):
    """Shards double their bucket arrays as keys arrive and halve them as
    keys leave: after 20,000 keys come and go, arena use is back near where
    it started."""

    def main():
        m = pg.Map()
        m.store("seed", 0)
        before = _inuse()
        n = 20_000
        for i in range(n):
            m.store(i, i)
        grown = _inuse()
        assert len(m) == n + 1
        assert all(m.load(i) == (i, True) for i in range(0, n, 7))
        for i in range(n):
            assert m.load_and_delete(i) == (i, True)
        assert _items(m) == [("seed", 0)]
        return before, grown, _inuse()

    before, grown, after = run(main)
    assert grown - before > 20_000 * 64  # entries, values and bucket arrays
    assert after - before <= 64 * 1024, f"{after - before} bytes still held after every key left"


def _grow_worker(m: pg.Map, w: int, nw: int, n: int, wg: pg.WaitGroup, bad: pg.atomic.Int64) -> None:
    # insert my keys while reading the others' (their shards resize under us)
    for i in range(n):
        m.store((w, i), i * nw + w)
        v, ok = m.load(((w + 1) % nw, i // 2))
        if ok and v != (i // 2) * nw + (w + 1) % nw:
            bad.add(1)
        if i % 200 == 0:
            pg.gosched()
    wg.done()


def _shrink_worker(m: pg.Map, w: int, nw: int, n: int, wg: pg.WaitGroup, bad: pg.atomic.Int64) -> None:
    for i in range(n):
        v, ok = m.load_and_delete((w, i))
        if not ok or v != i * nw + w:
            bad.add(1)
        if i % 200 == 0:
            pg.gosched()
    wg.done()


def test_concurrent_growth_and_shrink_from_every_p_lose_nothing(run, procs):
    nw, n = 2 * procs, 2500

    def main():
        m = pg.Map()
        bad, wg = pg.atomic.Int64(), pg.WaitGroup()
        wg.add(nw)
        for w in range(nw):
            go_on(w, _grow_worker, m, w, nw, n, wg, bad)
        wg.wait()
        assert bad.load() == 0, "a load saw a value never stored under its key"
        assert len(m) == nw * n
        assert dict(_items(m)) == {(w, i): i * nw + w for w in range(nw) for i in range(n)}
        wg.add(nw)
        for w in range(nw):
            go_on(w + 1, _shrink_worker, m, w, nw, n, wg, bad)
        wg.wait()
        assert bad.load() == 0, "a key stored was not there to delete"
        assert len(m) == 0 and _items(m) == []
        return True

    assert run(main)


def test_map_outside_a_run_and_after_its_run(run):
    with pytest.raises(pg.NotInRuntime, match=r"^pg\.Map\(\) needs the parago runtime"):
        pg.Map()

    def main():
        m = pg.Map()
        m.store("k", 1)
        return m

    m = run(main)
    for call in (lambda: m.load("k"), lambda: m.store("k", 2), lambda: len(m), lambda: m.range(print)):
        with pytest.raises(pg.NotInRuntime, match=r"^this Map belongs to an earlier pg\.run"):
            call()


# ---------------------------------------------------------------- shards and lost Ps (C level)


@pytest.fixture
def shim_map():
    """A bare arena (no run) with one map: (arena, map offset, helpers)."""
    from parago._shim.arena import Arena

    a = Arena.create(32 << 20, 4, 0x5EED)
    m = lib.pg_map_new(a.base)
    assert m > 0
    try:
        yield a, m
    finally:
        lib.pg_set_self(-1)
        lib.pg_obj_decref(a.base, m)
        a.close()


_MK_STR = CONST["MK_STR"]
_SHARD = LAYOUT["pg_mapshard"]["__size__"][1]
_NSHARD = CONST["PG_MAP_NSHARD"]


def _shard_words(a, m) -> list[tuple[int, int]]:
    """(lock word offset, count) of every shard."""
    shards = a.q[(m + offset("pg_map", "shards")) // 8]
    out = []
    for i in range(_NSHARD):
        s = shards + i * _SHARD
        out.append((s + offset("pg_mapshard", "lock"), a.q[(s + offset("pg_mapshard", "count")) // 8]))
    return out


def _c_store(a, m, key: bytes, val: bytes, fn=lib.pg_map_write) -> int:
    import ctypes

    out = (ctypes.c_uint64 * 8)()
    obuf = ctypes.create_string_buffer(64)
    return fn(a.base, m, key, len(key), val, len(val), CONST["MAP_STORE"], _MK_STR, 0, None, 0, 0, obuf, 64, out)


def _c_load(a, m, key: bytes, fn=lib.pg_map_load) -> int:
    import ctypes

    out = (ctypes.c_uint64 * 8)()
    obuf = ctypes.create_string_buffer(64)
    return fn(a.base, m, _MK_STR, key, len(key), obuf, 64, out)


def _shard_of(a, m, key: bytes) -> int:
    before = [c for _, c in _shard_words(a, m)]
    assert _c_store(a, m, key, b"v") == CONST["PG_OK"]
    after = [c for _, c in _shard_words(a, m)]
    (i,) = [i for i in range(_NSHARD) if after[i] != before[i]]
    return i


@pytest.mark.timeout(20)
def test_keys_of_other_shards_do_not_wait_for_a_held_shard_lock(shim_map):
    a, m = shim_map
    si = _shard_of(a, m, b"held")
    other = next(k for k in (f"k{i}".encode() for i in range(1000)) if _shard_of(a, m, k) != si)
    lockw = _shard_words(a, m)[si][0]
    a.u32[lockw // 4] = lib.pg_lock_tag(1)  # P 1 (alive) holds the shard of b"held"
    res: list = []
    t = threading.Thread(target=lambda: res.append(_c_load(a, m, b"held", blocking.pg_map_load)))
    t.start()
    try:
        t0 = time.monotonic()
        for _ in range(100):  # another shard: never waits
            assert _c_load(a, m, other) >= 0
            assert _c_store(a, m, other, b"w") == CONST["PG_OK"]
        assert time.monotonic() - t0 < 2.0
        time.sleep(0.05)
        assert t.is_alive() and not res, "a load of the held shard did not wait for its lock"
    finally:
        a.u32[lockw // 4] = 0
        t.join(5)
    assert res and res[0] >= 0


@pytest.mark.timeout(20)
def test_a_shard_lock_held_by_a_lost_p_is_pg_lost_and_the_map_untouched(shim_map):
    a, m = shim_map
    si = _shard_of(a, m, b"key")
    lockw = _shard_words(a, m)[si][0]
    a.u32[lockw // 4] = lib.pg_lock_tag(2)
    gone = P_BASE + 2 * P_SIZE + offset("pg_p", "gone")
    a.u32[gone // 4] = 1
    t0 = time.monotonic()
    assert _c_load(a, m, b"key") == CONST["PG_LOST"]
    assert _c_store(a, m, b"key", b"new") == CONST["PG_LOST"]
    assert lib.pg_map_clear(a.base, m) == CONST["PG_LOST"]
    assert time.monotonic() - t0 < 5
    a.u32[lockw // 4] = 0  # (only to read it back) the value is the one before
    import ctypes

    out = (ctypes.c_uint64 * 8)()
    obuf = ctypes.create_string_buffer(64)
    n = lib.pg_map_load(a.base, m, _MK_STR, b"key", 3, obuf, 64, out)
    assert obuf.raw[:n] == b"v"
