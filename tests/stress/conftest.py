"""Options of the reliability tier (tests/stress).

    --stress            the opt-in sizes (also PARAGO_STRESS=1): >= 2,000 random
                        programs across procs 1..4 and every start method, 200
                        faults (half inside a lock)
    --stress-seed N     replay exactly one random program / fault (also
                        PARAGO_STRESS_SEED=N): run it, print it
    --soak MINUTES      the soak: mixed traffic for MINUTES, a table of RSS per
                        P, fds and arena inuse over time

pytest reads these options only from an initial conftest: name this
directory on the command line (``pytest tests/stress --stress``); the
environment variables work from anywhere.  What the runs measured (program
and fault counts, WorkerLost latency, the soak table) is printed at the end
of the session.
"""

from __future__ import annotations

import os

import pytest

SUMMARY: list[str] = []  # lines for the terminal summary


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("parago reliability tier")
    g.addoption("--stress", action="store_true", default=False, help="run the opt-in stress sizes")
    g.addoption("--stress-seed", type=int, default=None, help="replay one random program or fault by seed")
    g.addoption("--soak", type=float, default=None, metavar="MINUTES", help="run the soak for MINUTES")


def stress_enabled(config: pytest.Config) -> bool:
    return os.environ.get("PARAGO_STRESS") == "1" or bool(config.getoption("stress", default=False))


def replay_seed(config: pytest.Config) -> int | None:
    env = os.environ.get("PARAGO_STRESS_SEED")
    if env:
        return int(env)
    return config.getoption("stress_seed", default=None)


def soak_minutes(config: pytest.Config) -> float | None:
    env = os.environ.get("PARAGO_SOAK_MINUTES")
    if env:
        return float(env)
    return config.getoption("soak", default=None)


@pytest.fixture
def stress(request: pytest.FixtureRequest) -> bool:
    """True when the opt-in stress sizes were asked for."""
    return stress_enabled(request.config)


@pytest.fixture
def replay(request: pytest.FixtureRequest) -> int | None:
    """The seed to replay, or None."""
    return replay_seed(request.config)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if SUMMARY:
        terminalreporter.section("parago reliability tier")
        for line in SUMMARY:
            terminalreporter.write_line(line)
