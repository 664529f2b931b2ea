"""pg.errgroup: Go's errgroup package."""

from ._errgroup import ErrGroup as ErrGroup
from ._errgroup import with_context as with_context

__all__ = ["ErrGroup", "with_context"]
