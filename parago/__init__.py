"""parago: Go's concurrency model for Python, on every core.

General layout (imports go one way only, STYLE "Layers"):

    parago/_cluster/   pg.run(cluster=...): a run across Ray nodes (above the
                       API; registers with _runtime/cluster.py's hooks)
    parago/*.py        the user API (this file only re-exports)
    parago/_runtime/   the scheduler, G/P, parking, timers, process lifecycle
    parago/_shim/      ctypes bindings, layouts, the arena
    shm/               the C shim
"""

# the cluster layer, above the API: importing it registers pg.run(cluster=...)
# and pg.select across nodes with the runtime (parago/_runtime/cluster.py)
from . import _cluster as _cluster
from . import atomic as atomic
from . import context as context
from . import debug as debug
from . import errgroup as errgroup
from . import net as net
from . import singleflight as singleflight
from . import synctest as synctest
from . import trace as trace
from ._buffer import Buffer as Buffer
from ._chan import Chan as Chan
from ._chan import Recv as Recv
from ._chan import Send as Send
from ._chan import select as select
from ._chan import select_async as select_async
from ._errgroup import ErrGroup as ErrGroup
from ._errors import ChanTypeError as ChanTypeError
from ._errors import ClosedChannelError as ClosedChannelError
from ._errors import Deadlock as Deadlock
from ._errors import DecodeError as DecodeError
from ._errors import EncodeError as EncodeError
from ._errors import EndOfChannel as EndOfChannel
from ._errors import GoroutineLeak as GoroutineLeak
from ._errors import NotInRuntime as NotInRuntime
from ._errors import OutOfSharedMemory as OutOfSharedMemory
from ._errors import Panic as Panic
from ._errors import ParagoError as ParagoError
from ._errors import Shutdown as Shutdown
from ._errors import SyncError as SyncError
from ._errors import WorkerLost as WorkerLost
from ._future import Future as Future
from ._future import future as future
from ._goroutine import await_ as await_
from ._goroutine import blocking as blocking
from ._goroutine import go as go
from ._goroutine import go_local as go_local
from ._goroutine import goexit as goexit
from ._goroutine import goid as goid
from ._goroutine import gomaxprocs as gomaxprocs
from ._goroutine import gosched as gosched
from ._goroutine import numgoroutine as numgoroutine
from ._goroutine import run as run
from ._map import Map as Map
from ._sync import Cond as Cond
from ._sync import Mutex as Mutex
from ._sync import Once as Once
from ._sync import Pool as Pool
from ._sync import RWMutex as RWMutex
from ._sync import Semaphore as Semaphore
from ._sync import WaitGroup as WaitGroup
from ._sync import once_func as once_func
from ._sync import once_value as once_value
from ._sync import once_values as once_values
from ._synctest import now as now
from ._time import Ticker as Ticker
from ._time import Timer as Timer
from ._time import after as after
from ._time import after_func as after_func
from ._time import sleep as sleep
from ._time import sleep_async as sleep_async
from ._time import tick as tick

__version__ = "0.1.0"

__all__ = [
    "Buffer",
    "Chan",
    "ChanTypeError",
    "ClosedChannelError",
    "Cond",
    "Deadlock",
    "DecodeError",
    "EncodeError",
    "EndOfChannel",
    "ErrGroup",
    "GoroutineLeak",
    "Future",
    "Map",
    "Mutex",
    "NotInRuntime",
    "Once",
    "OutOfSharedMemory",
    "Panic",
    "ParagoError",
    "Pool",
    "RWMutex",
    "Recv",
    "Semaphore",
    "Send",
    "Shutdown",
    "SyncError",
    "Ticker",
    "Timer",
    "WaitGroup",
    "WorkerLost",
    "after",
    "after_func",
    "atomic",
    "await_",
    "blocking",
    "context",
    "debug",
    "errgroup",
    "future",
    "go",
    "go_local",
    "net",
    "goexit",
    "gomaxprocs",
    "goid",
    "gosched",
    "now",
    "numgoroutine",
    "once_func",
    "once_value",
    "once_values",
    "run",
    "select",
    "select_async",
    "sleep",
    "singleflight",
    "sleep_async",
    "synctest",
    "tick",
    "trace",
]
