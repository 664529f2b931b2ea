"""pg.atomic: shared atomics (Int64, Uint64, Bool) and the sharded Counter."""

from ._atomic import Bool as Bool
from ._atomic import Counter as Counter
from ._atomic import Int64 as Int64
from ._atomic import Uint64 as Uint64

__all__ = ["Bool", "Counter", "Int64", "Uint64"]
