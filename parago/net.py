"""pg.net: Go's net for goroutines -- listen, dial, Conn, Listener, serve.

Waits park the goroutine on its P's netpoller, never the P; a Conn or
Listener passed to pg.go or sent on a channel moves to the receiving
goroutine's P.  See DESIGN §1 "Network -- the netpoller".
"""

from ._net import ClosedConnError as ClosedConnError
from ._net import Conn as Conn
from ._net import ConnFile as ConnFile
from ._net import DeadlineExceeded as DeadlineExceeded
from ._net import Listener as Listener
from ._net import dial as dial
from ._net import dial_async as dial_async
from ._net import listen as listen
from ._net import serve as serve

__all__ = ["ClosedConnError", "Conn", "ConnFile", "DeadlineExceeded", "Listener", "dial", "dial_async", "listen", "serve"]
