"""The one mutable global of the runtime: this process's Runtime, or None.

Kept in its own module so that every layer can read ``state.rt`` without
import cycles.  Set by pg.run in P0 and by the P entry point in P1..Pn.
"""

from __future__ import annotations

from typing import Any

rt: Any = None
