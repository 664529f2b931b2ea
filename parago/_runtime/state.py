"""The one mutable global of the runtime: this process's Runtime, or None.

Kept in its own module so that every layer can read ``state.rt`` without
import cycles.  Set by pg.run in P0 and by the P entry point in P1..Pn.
"""

from __future__ import annotations

from typing import Any

rt: Any = None
# bytes the last pg.run left allocated in its arena when every P left it
# cleanly (None otherwise): what it leaked; the test suite checks it
last_inuse: int | None = None
# what those bytes are: a line per block size, "N x SIZE B (kind words K...)"
last_leaked: str = ""


def _forget_in_child() -> None:
    """A process forked by user code is not a P: its copy of the runtime is
    dead (its handles refuse to work, and never touch the parent's arena
    references)."""
    global rt
    if rt is not None:
        rt.closed = True
        rt = None


import os as _os  # noqa: E402

_os.register_at_fork(after_in_child=_forget_in_child)
