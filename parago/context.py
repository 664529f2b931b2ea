"""pg.context: Go's context package, across every P."""

from ._context import AfterFuncStop as AfterFuncStop
from ._context import CancelCauseFunc as CancelCauseFunc
from ._context import Canceled as Canceled
from ._context import CancelFunc as CancelFunc
from ._context import Context as Context
from ._context import DeadlineExceeded as DeadlineExceeded
from ._context import after_func as after_func
from ._context import background as background
from ._context import cause as cause
from ._context import todo as todo
from ._context import with_cancel as with_cancel
from ._context import with_cancel_cause as with_cancel_cause
from ._context import with_deadline as with_deadline
from ._context import with_deadline_cause as with_deadline_cause
from ._context import with_timeout as with_timeout
from ._context import with_timeout_cause as with_timeout_cause
from ._context import with_value as with_value
from ._context import without_cancel as without_cancel

__all__ = [
    "AfterFuncStop",
    "CancelCauseFunc",
    "CancelFunc",
    "Canceled",
    "Context",
    "DeadlineExceeded",
    "after_func",
    "background",
    "cause",
    "todo",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_deadline_cause",
    "with_timeout",
    "with_timeout_cause",
    "with_value",
    "without_cancel",
]
