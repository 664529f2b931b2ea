"""parago's pytest plugin: ``pytest -p parago.testing`` checks every test
for leaked goroutines (Uber's goleak): each ``pg.run`` in a test that does
not pass ``leaks=`` itself runs with ``leaks="error"``, so goroutines still
alive when its main returns fail the test with ``pg.GoroutineLeak``.

``@pytest.mark.pg_leakcheck(False)`` exempts one test.  Without ``-p``,
the fixture ``pg_leakcheck``, the marker ``pg_leakcheck`` and the option
``--pg-leakcheck`` check chosen tests: they come from parago's passive
plugin (parago/_pytest_plugin.py), which pytest loads wherever parago is
installed.
"""

from __future__ import annotations

from typing import Any

from . import _pytest_plugin

__all__ = ["pytest_configure"]


def pytest_configure(config: Any) -> None:
    setattr(config, _pytest_plugin.ALL_TESTS, True)
    if not config.pluginmanager.is_registered(_pytest_plugin):
        # plugin autoloading is off (PYTEST_DISABLE_PLUGIN_AUTOLOAD, -p no:parago):
        # the fixture, the marker and the check come with this module then
        config.pluginmanager.register(_pytest_plugin, "parago")
        _pytest_plugin.pytest_configure(config)
