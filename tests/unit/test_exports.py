"""The public surface is fixed here (STYLE 20; DESIGN §1 "The user contract").

Adding or removing a name from ``parago`` is a contract change: it must be
made in DESIGN §1 and in this list together.
"""

from __future__ import annotations

import re
import types

import pytest

import parago as pg

# Everything DESIGN §1 says is importable from ``parago``, section by section.
RUNNING = {
    "run", "go", "go_local", "gomaxprocs", "numgoroutine", "goid", "gosched",
    "sleep", "sleep_async", "blocking", "await_",
}
CHANNELS = {"Chan", "select", "select_async", "Recv", "Send"}
TIME = {"after", "after_func", "tick", "Timer", "Ticker"}
SYNC = {"WaitGroup", "Mutex", "RWMutex", "Once", "Cond", "Semaphore", "atomic", "Pool", "Buffer"}
SYNC |= {"Map"}  # pg.Map: Go's sync.Map in the arena
SYNC |= {"once_func", "once_value", "once_values", "singleflight", "goexit"}  # Go 1.21 OnceFunc..., x/sync, Goexit
PATTERNS = {"context", "ErrGroup", "errgroup", "future", "Future"}
ERRORS = {
    "ParagoError", "Panic", "Deadlock", "ClosedChannelError", "EndOfChannel",
    "ChanTypeError", "DecodeError", "SyncError", "OutOfSharedMemory",
    "NotInRuntime", "WorkerLost", "Shutdown", "GoroutineLeak",
}
NETWORK = {"net"}  # pg.net: listen, dial, Conn, Listener, serve (DESIGN §1 "Network")
DIAGNOSTICS = {"debug", "trace"}  # pg.debug.dump(), pg.trace.region/log
TESTING = {"synctest", "now"}  # pg.synctest.run/wait, pg.now() (virtual inside synctest)
# Exported but not named in DESIGN §1: the sender-side counterpart of
# DecodeError (an argument or value that cannot be copied to another P).
BEYOND_DESIGN = {"EncodeError"}

PUBLIC = RUNNING | CHANNELS | TIME | SYNC | PATTERNS | ERRORS | DIAGNOSTICS | TESTING | BEYOND_DESIGN | NETWORK


@pytest.mark.timeout(10)
def test_all_is_exactly_the_documented_surface():
    assert len(pg.__all__) == len(set(pg.__all__)), "duplicates in parago.__all__"
    assert set(pg.__all__) - PUBLIC == set(), "exported but not in the contract"
    assert PUBLIC - set(pg.__all__) == set(), "in the contract but not exported"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_exported_name_is_an_attribute(name):
    assert hasattr(pg, name), name


@pytest.mark.timeout(10)
def test_no_public_attribute_escapes_all():
    # submodules (pg.atomic, ...) are listed; other modules appear as
    # attributes only because something imported them (parago.cli)
    stray = {
        n for n in dir(pg)
        if not n.startswith("_") and n not in pg.__all__ and not isinstance(getattr(pg, n), types.ModuleType)
    }
    assert stray == set()


@pytest.mark.timeout(10)
def test_version_is_a_string():
    assert isinstance(pg.__version__, str) and re.match(r"^\d+\.\d+\.\d+", pg.__version__)


# ---------------------------------------------------------------- errors


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", sorted(ERRORS - {"Shutdown", "ParagoError"} | BEYOND_DESIGN))
def test_errors_subclass_parago_error(name):
    cls = getattr(pg, name)
    assert issubclass(cls, pg.ParagoError)
    assert issubclass(cls, Exception)


@pytest.mark.timeout(10)
def test_parago_error_is_an_exception():
    assert issubclass(pg.ParagoError, Exception)


@pytest.mark.timeout(10)
def test_shutdown_is_a_base_exception_that_except_exception_does_not_catch():
    assert issubclass(pg.Shutdown, BaseException)
    assert not issubclass(pg.Shutdown, Exception)
    assert not issubclass(pg.Shutdown, pg.ParagoError)
    with pytest.raises(pg.Shutdown):
        try:
            raise pg.Shutdown()
        except Exception:  # noqa: B014 - the point: this must not catch it
            pytest.fail("except Exception caught pg.Shutdown")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("err", "builtin"),
    [
        (pg.ChanTypeError, TypeError),
        (pg.OutOfSharedMemory, MemoryError),
        (pg.context.DeadlineExceeded, TimeoutError),
    ],
)
def test_errors_are_also_their_builtin_kind(err, builtin):
    assert issubclass(err, builtin)
    assert issubclass(err, pg.ParagoError)


@pytest.mark.timeout(10)
def test_context_canceled_is_a_parago_error_but_not_a_timeout():
    assert issubclass(pg.context.Canceled, pg.ParagoError)
    assert not issubclass(pg.context.Canceled, TimeoutError)


# ---------------------------------------------------------------- submodules


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", ["Int64", "Uint64", "Int32", "Uint32", "Bool", "Counter", "Value"])
def test_atomic_module_has(name):
    assert isinstance(getattr(pg.atomic, name), type)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "name",
    [
        "background", "with_cancel", "with_timeout", "with_deadline", "with_value", "Canceled", "DeadlineExceeded",
        "with_cancel_cause", "cause", "with_deadline_cause", "with_timeout_cause", "without_cancel", "after_func",
    ],
)
def test_context_module_has(name):
    assert hasattr(pg.context, name)
    if name[0].islower():
        assert callable(getattr(pg.context, name))


@pytest.mark.timeout(10)
def test_singleflight_module_has_group():
    assert isinstance(pg.singleflight.Group, type)


@pytest.mark.timeout(10)
def test_errgroup_module_has_with_context():
    assert callable(pg.errgroup.with_context)
    assert pg.errgroup.ErrGroup is pg.ErrGroup


# ---------------------------------------------------------------- outside pg.run


def _noop():
    pass


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "call",
    [
        lambda: pg.go(_noop),
        lambda: pg.Chan(),
        lambda: pg.Chan(3),
        lambda: pg.WaitGroup(),
        lambda: pg.Mutex(),
        lambda: pg.atomic.Int64(),
    ],
    ids=["go", "Chan", "Chan3", "WaitGroup", "Mutex", "atomic.Int64"],
)
def test_api_outside_run_raises_not_in_runtime_pointing_at_pg_run(call):
    with pytest.raises(pg.NotInRuntime) as ei:
        call()
    # names the call first, then says to wrap the program in pg.run(main)
    assert re.match(r"^pg\.[\w.]+(\(\))? .*\bpg\.run\(main\)", str(ei.value)), str(ei.value)
