"""parago's pytest plugin: goroutine leak checks per test (Uber's goleak).

Load it with ``pytest -p parago.testing`` (or ``pytest_plugins =
["parago.testing"]`` in a conftest).  It is not registered as a
``pytest11`` entry point on purpose: that would load it into every
pytest run of every project that has parago installed.

- fixture ``pg_leakcheck``: every ``pg.run`` in the test that does not pass
  ``leaks=`` itself runs with ``leaks="error"`` -- goroutines still alive
  when its main returns fail the test with ``pg.GoroutineLeak``;
- marker ``@pytest.mark.pg_leakcheck``: the same for one test, without
  naming the fixture;
- option ``--pg-leakcheck``: the same for every test of the session.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from ._runtime import leaks as _leaks


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
        "pg_leakcheck: every pg.run in this test fails with pg.GoroutineLeak when goroutines outlive main",
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: Any) -> Iterator[None]:
    on = item.config.getoption("--pg-leakcheck", False) or item.get_closest_marker("pg_leakcheck") is not None
    old = _leaks.default_mode
    if on:
        _leaks.default_mode = "error"
    try:
        yield
    finally:
        _leaks.default_mode = old
