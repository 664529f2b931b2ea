"""pg.atomic: shared atomics (Int64, Uint64, Int32, Uint32, Bool, Value) and the sharded Counter."""

from ._atomic import Bool as Bool
from ._atomic import Counter as Counter
from ._atomic import Int32 as Int32
from ._atomic import Int64 as Int64
from ._atomic import Uint32 as Uint32
from ._atomic import Uint64 as Uint64
from ._atomic import Value as Value

__all__ = ["Bool", "Counter", "Int32", "Int64", "Uint32", "Uint64", "Value"]
