"""pg.synctest: Go 1.25's testing/synctest for a whole parago program (virtual time)."""

from ._synctest import run as run
from ._synctest import wait as wait
from ._synctest import wait_async as wait_async

__all__ = ["run", "wait", "wait_async"]
