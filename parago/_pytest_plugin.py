"""The passive half of parago's pytest plugin, registered for every pytest
run where parago is installed (``pytest11`` entry point ``parago``): it adds
only what a test asks for by name, so other projects' runs are unchanged.

- fixture ``pg_leakcheck``: every ``pg.run`` in the test that does not pass
  ``leaks=`` itself runs with ``leaks="error"`` -- goroutines still alive
  when its main returns fail the test with ``pg.GoroutineLeak`` (Uber's
  goleak);
- marker ``@pytest.mark.pg_leakcheck``: the same for one test, without
  naming the fixture (``pg_leakcheck(False)``: this test is not checked,
  also under ``-p parago.testing``);
- option ``--pg-leakcheck``: the same for every test of the session.

``pytest -p parago.testing`` (parago/testing.py) checks every test.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from ._runtime import leaks as _leaks

ALL_TESTS = "_parago_leakcheck_all"  # set on the config by parago.testing


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("parago")
    group.addoption(
        "--pg-leakcheck",
        action="store_true",
        default=False,
        help="parago: every pg.run in every test checks for leaked goroutines (leaks='error')",
    )


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "pg_leakcheck(on=True): every pg.run in this test fails with pg.GoroutineLeak when goroutines outlive main",
    )


@pytest.fixture
def pg_leakcheck() -> Iterator[str]:
    """Every pg.run in the test checks for leaked goroutines (leaks="error")."""
    old = _leaks.default_mode
    _leaks.default_mode = "error"
    try:
        yield "error"
    finally:
        _leaks.default_mode = old


def _wanted(item: Any) -> bool:
    mark = item.get_closest_marker("pg_leakcheck")
    if mark is not None:
        return bool(mark.args[0]) if mark.args else bool(mark.kwargs.get("on", True))
    cfg = item.config
    return bool(getattr(cfg, ALL_TESTS, False) or cfg.getoption("--pg-leakcheck", False))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any) -> Iterator[None]:
    old = _leaks.default_mode
    if _wanted(item):
        _leaks.default_mode = "error"
    elif item.get_closest_marker("pg_leakcheck") is not None:
        _leaks.default_mode = None  # pg_leakcheck(False): unchecked, also under -p parago.testing
    try:
        yield
    finally:
        _leaks.default_mode = old
