"""pg.net: Go's ``net`` for goroutines -- blocking-style network code whose
waits park the goroutine on its P's netpoller (_runtime/netpoll.py), never
the P.

Owns Listener, Conn, the file a Conn's ``makefile`` returns, addresses,
``listen``/``dial`` and ``serve``.  A Conn or Listener belongs to one P
(its socket is that process's descriptor) until it is passed to ``pg.go``
or sent on a channel: then it *moves* (_runtime/netmove.py) -- the receiver
gets a new object over the same kernel socket, the sender's object is
closed.

Every operation has the same shape (trio's ``_channel.send``): check the
object and its deadline, try the system call without blocking, and only
on EAGAIN park in ``wait_fd`` and try again.  Waking is always "try
again": readiness, a deadline moved while parked (``kick``) and a close by
another goroutine (CLOSED) all come back to the check at the top.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import os
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable, Generator, Iterator

from ._errors import ClosedConnError, NetDeadlineExceeded, not_in_runtime, stale_handle
from ._runtime import codec, handles, netmove, netpoll, state
from ._runtime.netpoll import CLOSED, TIMEOUT

DeadlineExceeded = NetDeadlineExceeded

_CLOSED = "use of closed network connection"
_MOVED = "use of closed network connection (it moved to another goroutine: use the object that goroutine received)"
# accept errors that say "no resources now", not "this listener is broken"
# (Go's net/http backs off on them: temporary errors)
_TEMPORARY = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


# ----------------------------------------------------------------------
# addresses


def _bad(address: Any, why: str) -> ValueError:
    return ValueError(f"pg.net: bad address {address!r}: {why}")


def _parse(address: Any) -> tuple[str, str, int]:
    """("unix", path, 0) or ("tcp", host, port); host "" means every
    interface (listen) or this machine (dial)."""
    if not isinstance(address, str):
        raise TypeError(f"pg.net: address must be a str like '127.0.0.1:8080', got {type(address).__name__}")
    if address.startswith("unix:"):
        path = address[5:]
        if not path:
            raise _bad(address, "no path after 'unix:'")
        return "unix", path, 0
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or address[end + 1 : end + 2] != ":":
            raise _bad(address, "want '[host]:port'")
        host, port_s = address[1:end], address[end + 2 :]
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise _bad(address, f"{host!r} is not an IPv6 address") from None
    else:
        host, sep, port_s = address.rpartition(":")
        if not sep:
            raise _bad(address, "missing port (want 'host:port', ':port' or 'unix:/path')")
        if ":" in host:
            raise _bad(address, "too many colons (write an IPv6 host in brackets: '[::1]:8080')")
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise _bad(address, f"port {port_s!r} is not a number in 0..65535")
    return "tcp", host, int(port_s)


def _literal(host: str, port: int, passive: bool) -> list[tuple[int, Any]] | None:
    """The socket addresses of a literal host (no name resolution), or None."""
    if host == "":
        if passive:
            return [(socket.AF_INET6, ("::", port, 0, 0)), (socket.AF_INET, ("0.0.0.0", port))] if socket.has_ipv6 else [(socket.AF_INET, ("0.0.0.0", port))]
        return [(socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port, 0, 0))]
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6:
        return [(socket.AF_INET6, (host, port, 0, 0))]
    return [(socket.AF_INET, (host, port))]


def _getaddrinfo(host: str, port: int, passive: bool) -> list[tuple[int, Any]]:
    flags = socket.AI_PASSIVE if passive else 0
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, flags)
    return [(fam, sa) for fam, _, _, _, sa in infos if fam in (socket.AF_INET, socket.AF_INET6)]


def _resolve(host: str, port: int, passive: bool) -> list[tuple[int, Any]]:
    """Name resolution off the hub: a goroutine hands it to pg.blocking's
    threads (Go's cgo resolver hand-off); a thread simply calls it."""
    lit = _literal(host, port, passive)
    if lit is not None:
        return lit
    rt, gs = netpoll._rt_and_g("pg.net.dial()")
    try:
        if gs is None:
            return _getaddrinfo(host, port, passive)
        from ._goroutine import blocking

        return blocking(_getaddrinfo, host, port, passive)
    except socket.gaierror as e:
        raise OSError(e.errno, f"lookup {host}: {e.strerror}") from None


async def _resolve_async(host: str, port: int, passive: bool) -> list[tuple[int, Any]]:
    lit = _literal(host, port, passive)
    if lit is not None:
        return lit
    import asyncio

    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OSError(e.errno, f"lookup {host}: {e.strerror}") from None
    return [(fam, sa) for fam, _, _, _, sa in infos if fam in (socket.AF_INET, socket.AF_INET6)]


def _fmt(family: int, addr: Any) -> str:
    """Go's "host:port" ("[::1]:8080"; "unix:/path" for unix sockets)."""
    if family == socket.AF_UNIX:
        if isinstance(addr, bytes):
            addr = addr.decode(errors="replace")
        return f"unix:{addr}" if addr else "unix:"
    if not addr:
        return ""
    if family == socket.AF_INET6:
        return f"[{addr[0]}]:{addr[1]}"
    return f"{addr[0]}:{addr[1]}"


def _need_rt(what: str) -> Any:
    rt = state.rt
    if rt is None or rt.closed:
        raise not_in_runtime(what)
    return rt


def _check_deadline(t: Any, what: str) -> float | None:
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"{what}: t must be an absolute time.time() value or None, got {type(t).__name__}")
    return float(t)


# ----------------------------------------------------------------------
# the object both kinds share: a socket of this P


class _Sock:
    """A non-blocking socket owned by one P of one run."""

    __slots__ = ("_sock", "_fd", "_rt", "_closed", "_move", "__weakref__")

    _kind = "Conn"
    _sock: socket.socket
    _fd: int
    _rt: Any
    _closed: str | None
    _move: tuple | None

    def _own(self, sock: socket.socket, rt: Any) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._fd = sock.fileno()
        self._rt = rt
        self._closed = None
        self._move = None
        netpoll.poller(rt).at_close_files[self._fd] = self

    def _live(self) -> socket.socket:
        """The socket, checked: this run's, not closed or moved."""
        rt = self._rt
        if rt is not state.rt or rt.closed:
            raise stale_handle(f"pg.net {self._kind}")
        if self._closed is not None:
            if self._closed is _MOVED and self._revive():
                return self._sock
            raise ClosedConnError(self._closed)
        return self._sock

    def _revive(self) -> bool:
        """A move whose payload was not delivered (the send raised, a select
        chose another case) is cancelled on the sender's next use: this
        object owns its socket again (netmove.Mover.revive)."""
        mv = self._move
        if mv is None or threading.get_ident() != self._rt.hub_tid:
            return False
        if netmove.mover(self._rt).revive(mv[0][5]) is None:
            return False
        self._move = None
        self._closed = None
        netpoll.poller(self._rt).at_close_files[self._fd] = self
        self._revived()
        return True

    def _revived(self) -> None:
        pass

    # A wait is one shape for every operation of both kinds: park in
    # wait_fd until the fd is ready for the side (read: False, write: True),
    # then ask _waited whether the object or its deadline ended the wait.
    def _deadline(self, write: bool) -> float | None:
        """The deadline of the side's operations (None: none)."""
        raise NotImplementedError

    def _timeout(self, write: bool) -> DeadlineExceeded:
        """The error of the side's operation whose deadline passed."""
        raise NotImplementedError

    def _wait(self, write: bool) -> None:
        dl = self._deadline(write)
        self._waited(netpoll.wait_fd(self._fd, write, dl, self._sock, self), dl, write)

    async def _wait_async(self, write: bool) -> None:
        dl = self._deadline(write)
        self._waited(await netpoll.wait_fd_async(self._fd, write, dl, self._sock, self), dl, write)

    def _waited(self, r: int, dl: float | None, write: bool) -> None:
        """After a wait: closed meanwhile (by another goroutine, or moved)?
        Timed out on a deadline that still holds (one moved while parked
        kicked the wait: the caller tries again under the new one)?"""
        if self._closed is not None:
            raise ClosedConnError(self._closed)
        if r == CLOSED:
            raise ClosedConnError(_CLOSED)
        if r == TIMEOUT and self._deadline(write) == dl:
            raise self._timeout(write)

    def _release(self, why: str) -> None:
        """Mark closed and wake this P's goroutines parked on it (they raise
        ClosedConnError); the socket itself is the caller's to close or keep."""
        self._closed = why
        rt = self._rt
        if rt is state.rt and not rt.closed:
            netpoll.close_fd(self._fd)
            netpoll.peers.pop(self._fd, None)
            files = netpoll.poller(rt).at_close_files
            if files.get(self._fd) is self:
                del files[self._fd]

    def close(self) -> None:
        """Close it.  Goroutines parked on it raise ClosedConnError; closing
        again does nothing."""
        if self._closed is not None and not (self._closed is _MOVED and self._revive_if_live()):
            return
        rt = self._rt
        if rt is state.rt and not rt.closed and threading.get_ident() != rt.hub_tid:
            # a thread (a pg.blocking function): the loop's registration and
            # the parked goroutines belong to the hub, so the hub closes it
            self._closed = _CLOSED
            rt.loop.call_soon_threadsafe(self._close_on_hub)
            return
        self._release(_CLOSED)
        self._sock.close()

    def fileno(self) -> int:
        """The descriptor (valid while the object is open on this P)."""
        self._live()
        return self._fd

    def _revive_if_live(self) -> bool:
        rt = self._rt
        return rt is state.rt and not rt.closed and self._revive()

    def _close_on_hub(self) -> None:
        self._release(_CLOSED)
        self._sock.close()

    def _moved_token(self) -> tuple:
        """Give the socket to whoever decodes the returned token (netmove)."""
        encoding = codec.ENC_REFS.get()
        if encoding is None:
            # not pg.go or a channel send (a user's pickle.dumps, --race's
            # snapshot of a goroutine's arguments): that must not move it
            raise TypeError(f"a pg.net {self._kind} cannot be pickled; pass it to pg.go or send it on a channel to move it")
        if handles.CROSSING.get() is not None:
            raise TypeError(f"a pg.net {self._kind} cannot move to another node of a cluster (its socket is this machine's)")
        mv = self._move
        if mv is not None and mv[1] is encoding:
            # one encode tried twice (pickle, then cloudpickle: the first
            # try's references were cleared)
            if mv[2] not in encoding:
                encoding.append(mv[2])
            return mv[0]
        self._live()  # moved already (by another encode): ClosedConnError
        where, anchor = netmove.mover(self._rt).give(self._sock, self)
        token = (self._rt.nonce, *where, self._state())
        # the payload's reference on the anchor tells the sender whether it
        # was delivered (netmove: a failed send revives this object)
        encoding.append(anchor)
        self._move = (token, encoding, anchor)
        self._release(_MOVED)
        return token

    def __reduce__(self) -> tuple:
        return (_adopt, (type(self), *self._moved_token()))

    def _state(self) -> dict:
        return {}

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __copy__(self) -> Any:
        raise TypeError(f"a pg.net {self._kind} cannot be copied (pass it to pg.go or send it: it moves)")

    __deepcopy__ = __copy__  # type: ignore[assignment]


# ----------------------------------------------------------------------
# Conn


class Conn(_Sock):
    """A stream connection (TCP or unix) of this P.

    ``read``/``write`` park the calling goroutine, not its P.  Passing a
    Conn to ``pg.go`` or sending it on a channel moves it to the receiving
    goroutine (no byte lost); this object is then closed.
    """

    __slots__ = ("_rdl", "_wdl", "_wshut", "_rbuf", "_laddr", "_raddr")

    def __init__(self, sock: socket.socket, rt: Any, st: dict | None = None) -> None:
        self._own(sock, rt)
        st = st or {}
        self._rdl: float | None = st.get("rdl")
        self._wdl: float | None = st.get("wdl")
        self._wshut: bool = st.get("wshut", False)
        self._rbuf = bytearray(st.get("rbuf", b""))  # bytes a makefile() read ahead
        fam = sock.family
        if fam in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Go's default
            except OSError:
                pass
        try:
            self._laddr = _fmt(fam, sock.getsockname())
        except OSError:
            self._laddr = ""
        try:
            self._raddr = _fmt(fam, sock.getpeername())
        except OSError:
            self._raddr = ""
        if self._raddr:
            netpoll.peers[self._fd] = self._raddr

    def _revived(self) -> None:
        if self._raddr:
            netpoll.peers[self._fd] = self._raddr

    def _state(self) -> dict:
        return {"rdl": self._rdl, "wdl": self._wdl, "wshut": self._wshut, "rbuf": bytes(self._rbuf)}

    def __repr__(self) -> str:
        st = f" {self._closed.split(' (')[0]}" if self._closed else ""
        return f"<pg.net.Conn {self._laddr} -> {self._raddr}{st}>"

    @property
    def local_addr(self) -> str:
        """This end's address, "host:port"."""
        return self._laddr

    @property
    def remote_addr(self) -> str:
        """The peer's address, "host:port"."""
        return self._raddr

    def _deadline(self, write: bool) -> float | None:
        return self._wdl if write else self._rdl

    def _timeout(self, write: bool) -> DeadlineExceeded:
        return DeadlineExceeded(f"{'write' if write else 'read'} {self._raddr}: i/o timeout")

    # ---- read ----
    def _try_read(self, n: int, buffered: bool = True) -> bytes | None:
        """Up to n bytes, None when the socket has none yet.  Not buffered:
        from the socket past what is buffered (a makefile's read-ahead
        appends to the buffer)."""
        sock = self._live()
        dl = self._rdl
        if dl is not None and time.time() >= dl:
            raise self._timeout(False)
        rb = self._rbuf
        if rb and buffered:
            out = bytes(rb[:n])
            del rb[:n]
            return out
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            return None

    def read(self, n: int = 65536) -> bytes:
        """Up to n bytes; parks until at least one byte or EOF (``b""``).

        Raises: DeadlineExceeded (the read deadline passed), ClosedConnError
        (closed, also by another goroutine while parked), ConnectionResetError
        (the peer reset), ValueError for n < 1.
        """
        n = _size(n)
        while True:
            b = self._try_read(n)
            if b is not None:
                return b
            self._wait(False)

    async def read_async(self, n: int = 65536) -> bytes:
        """``read`` for an async goroutine."""
        n = _size(n)
        while True:
            b = self._try_read(n)
            if b is not None:
                return b
            await self._wait_async(False)

    # ---- write ----
    def _send(self, mv: memoryview, off: int) -> int:
        """Send mv[off:] until all of it is sent or the socket buffer is
        full; the offset reached (len(mv) when done)."""
        total = len(mv)
        while True:
            sock = self._live()
            if self._wshut:
                raise BrokenPipeError(errno.EPIPE, f"write {self._raddr}: the write side was closed by close_write()")
            dl = self._wdl
            if dl is not None and time.time() >= dl:
                raise self._timeout(True)
            try:
                off += sock.send(mv[off:])
            except (BlockingIOError, InterruptedError):
                return off
            if off >= total:
                return off

    def write(self, data: Any) -> int:
        """Write all of data (bytes-like); parks while the socket buffer is
        full.  Returns len(data).

        Raises: DeadlineExceeded, ClosedConnError, BrokenPipeError (after
        ``close_write``, or the peer went away), ConnectionResetError.
        """
        mv = _view(data)
        off = self._send(mv, 0)
        while off < len(mv):
            self._wait(True)
            off = self._send(mv, off)
        return len(mv)

    async def write_async(self, data: Any) -> int:
        """``write`` for an async goroutine."""
        mv = _view(data)
        off = self._send(mv, 0)
        while off < len(mv):
            await self._wait_async(True)
            off = self._send(mv, off)
        return len(mv)

    # ---- close, half-close, deadlines ----
    def close_write(self) -> None:
        """Shut down the writing side (Go's CloseWrite): the peer reads EOF;
        reading here goes on.  A later write raises BrokenPipeError."""
        sock = self._live()
        if not self._wshut:
            self._wshut = True
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            netpoll.kick(self._fd, True)

    def set_deadline(self, t: float | None) -> None:
        """Read and write deadline (absolute ``time.time()`` seconds; None
        clears).  A wait still parked when it passes raises DeadlineExceeded;
        later calls fail at once until it is moved; the conn stays usable."""
        t = _check_deadline(t, "set_deadline")
        self._live()
        self._rdl = self._wdl = t
        netpoll.kick(self._fd, False)
        netpoll.kick(self._fd, True)

    def set_read_deadline(self, t: float | None) -> None:
        """The read deadline alone (see set_deadline)."""
        t = _check_deadline(t, "set_read_deadline")
        self._live()
        self._rdl = t
        netpoll.kick(self._fd, False)

    def set_write_deadline(self, t: float | None) -> None:
        """The write deadline alone (see set_deadline)."""
        t = _check_deadline(t, "set_write_deadline")
        self._live()
        self._wdl = t
        netpoll.kick(self._fd, True)

    def makefile(self, mode: str = "rb", buffering: int | None = None, **text: Any) -> Any:
        """A file over the conn whose waits park the goroutine (``readline``
        for line protocols).  Modes "rb", "wb", "rwb" (or "r", "w", "rw"
        for text, with ``encoding``/``errors``/``newline``).  Closing the
        file leaves the conn open; bytes it read ahead stay with the conn
        (``read`` returns them, and they move with it)."""
        if not set(mode) <= {"r", "w", "b"} or not mode or len(set(mode)) != len(mode):
            raise ValueError(f"makefile: invalid mode {mode!r} (only 'r', 'w' and 'b')")
        self._live()
        f = ConnFile(self, "r" in mode, "w" in mode)
        if "b" in mode:
            if text:
                raise ValueError("makefile: encoding/errors/newline are for text mode")
            return f
        return io.TextIOWrapper(f, **text)  # type: ignore[arg-type]


def _size(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"read: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"read: n must be >= 1, got {n}")
    return n


def _view(data: Any) -> memoryview:
    if isinstance(data, str):
        raise TypeError("write: data must be bytes-like, not str (encode it first)")
    try:
        return memoryview(data).cast("B")
    except TypeError:
        raise TypeError(f"write: data must be bytes-like, got {type(data).__name__}") from None


class ConnFile(io.BufferedIOBase):
    """What ``Conn.makefile`` returns: buffered reads (``readline``) whose
    read-ahead lives in the conn, and writes that write through."""

    def __init__(self, conn: Conn, readable: bool, writable: bool) -> None:
        self._conn = conn
        self._r = readable
        self._w = writable

    def readable(self) -> bool:
        return self._r

    def writable(self) -> bool:
        return self._w

    def _fill(self) -> bool:
        """Read from the socket past what is buffered; False at EOF."""
        c = self._conn
        while True:
            chunk = c._try_read(65536, False)
            if chunk is not None:
                break
            c._wait(False)
        if not chunk:
            return False
        c._rbuf += chunk
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._check_r()
        c = self._conn
        if size is None or size < 0:
            while self._fill():
                pass
            n = len(c._rbuf)
        else:
            while len(c._rbuf) < size and self._fill():
                pass
            n = min(size, len(c._rbuf))
        out = bytes(c._rbuf[:n])
        del c._rbuf[:n]
        return out

    def read1(self, size: int = -1) -> bytes:
        self._check_r()
        c = self._conn
        if not c._rbuf:
            return c.read(size if size and size > 0 else 65536)
        n = len(c._rbuf) if size is None or size < 0 else size
        out = bytes(c._rbuf[:n])
        del c._rbuf[:n]
        return out

    def readinto(self, b: Any) -> int:  # type: ignore[override]
        data = self.read(len(memoryview(b)))
        memoryview(b).cast("B")[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        self._check_r()
        c = self._conn
        start = 0
        while True:
            i = c._rbuf.find(b"\n", start)
            if i >= 0:
                n = i + 1
                break
            if size is not None and 0 <= size <= len(c._rbuf):
                n = size
                break
            start = len(c._rbuf)
            if not self._fill():
                n = len(c._rbuf)
                break
        if size is not None and 0 <= size < n:
            n = size
        out = bytes(c._rbuf[:n])
        del c._rbuf[:n]
        return out

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def write(self, b: Any) -> int:  # type: ignore[override]
        if not self._w:
            raise io.UnsupportedOperation("not writable")
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        return self._conn.write(b)

    def flush(self) -> None:
        pass

    def _check_r(self) -> None:
        if not self._r:
            raise io.UnsupportedOperation("not readable")
        if self.closed:
            raise ValueError("I/O operation on closed file.")


# ----------------------------------------------------------------------
# Listener


class Listener(_Sock):
    """A listening socket of this P.  ``accept`` parks the goroutine; ``for
    conn in ln`` accepts until the listener is closed (by any goroutine of
    its P).  It moves like a Conn."""

    _kind = "Listener"
    __slots__ = ("_dl", "_addr", "_unlink")

    def __init__(self, sock: socket.socket, rt: Any, st: dict | None = None) -> None:
        self._own(sock, rt)
        st = st or {}
        self._dl: float | None = st.get("dl")
        self._unlink: str | None = st.get("unlink")
        self._addr = _fmt(sock.family, sock.getsockname())

    def _state(self) -> dict:
        return {"dl": self._dl, "unlink": self._unlink}

    def __repr__(self) -> str:
        return f"<pg.net.Listener {self._addr}{' closed' if self._closed else ''}>"

    @property
    def addr(self) -> str:
        """The bound address, "host:port" (the real port of a ":0" listen)."""
        return self._addr

    def _deadline(self, write: bool) -> float | None:
        return self._dl

    def _timeout(self, write: bool) -> DeadlineExceeded:
        return DeadlineExceeded(f"accept {self._addr}: i/o timeout")

    def _try_accept(self) -> Conn | None:
        sock = self._live()
        dl = self._dl
        if dl is not None and time.time() >= dl:
            raise self._timeout(False)
        while True:
            try:
                s, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return None
            except ConnectionAbortedError:
                continue  # the peer gave up before we took it: the next one
            except OSError as e:
                raise OSError(e.errno, f"accept {self._addr}: {e.strerror}") from None
            return Conn(s, self._rt)

    def accept(self) -> Conn:
        """The next connection; parks the goroutine until one arrives.

        Raises: ClosedConnError (closed, also while parked), DeadlineExceeded
        (``set_deadline``), OSError(EMFILE) when the fd table is full.
        """
        while True:
            c = self._try_accept()
            if c is not None:
                return c
            self._wait(False)

    async def accept_async(self) -> Conn:
        """``accept`` for an async goroutine."""
        while True:
            c = self._try_accept()
            if c is not None:
                return c
            await self._wait_async(False)

    def __iter__(self) -> Iterator[Conn]:
        while True:
            try:
                c = self.accept()
            except ClosedConnError:
                return
            yield c

    def set_deadline(self, t: float | None) -> None:
        """Deadline for accept (Go's TCPListener.SetDeadline); None clears."""
        t = _check_deadline(t, "set_deadline")
        self._live()
        self._dl = t
        netpoll.kick(self._fd, False)

    def close(self) -> None:
        """Stop listening; goroutines parked in accept raise ClosedConnError
        (a ``for conn in ln`` loop ends).  A unix socket's file is removed."""
        if self._closed is not None:
            return
        super().close()
        if self._unlink:
            try:
                os.unlink(self._unlink)
            except OSError:
                pass


def _adopt(
    cls: type[Conn] | type[Listener], nonce: int, p: int, pid: int, fd: int, ino: int, mid: int, anchor: int, st: dict
) -> Conn | Listener:
    """The receiver's side of a move: a new object of the sender's kind
    over the socket the sender gave (netmove.Mover.take)."""
    rt = state.rt
    if rt is None or rt.closed:
        raise not_in_runtime(f"receiving a pg.net {cls._kind}")
    sock = netmove.mover(rt).take(nonce, p, pid, fd, ino, mid, anchor)
    return cls(sock, rt, st)


# ----------------------------------------------------------------------
# listen and dial


def listen(address: str, *, reuse_port: bool = False, backlog: int = 1024) -> Listener:
    """Listen on ``address``: "host:port" ("127.0.0.1:0" picks a free port,
    "[::1]:8080", ":8080" every interface) or "unix:/path".

    ``reuse_port`` sets SO_REUSEPORT (several listeners on one port: the
    kernel spreads connections).  Raises ValueError for an address that
    does not parse, OSError(EADDRINUSE) for a port in use.
    """
    rt = _need_rt("pg.net.listen")
    kind, host, port = _parse(address)
    if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
        raise ValueError(f"listen: backlog must be an int >= 0, got {backlog!r}")
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.bind(host)
            s.listen(backlog)
        except OSError as e:
            s.close()
            raise OSError(e.errno, f"listen unix {host}: {e.strerror}") from None
        return Listener(s, rt, {"unlink": host})
    addrs = _resolve(host, port, True)
    err: OSError | None = None
    for fam, sa in addrs:
        try:
            s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        except OSError as e:  # no IPv6 here: the next family
            err = e
            continue
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if fam == socket.AF_INET6 and host == "":
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # ":8080" is dual-stack, as Go's
            s.bind(sa)
            s.listen(backlog)
        except OSError as e:
            s.close()
            err = OSError(e.errno, f"listen tcp {address}: {e.strerror}")
            if e.errno == errno.EADDRINUSE:
                raise err from None
            continue
        return Listener(s, rt)
    assert err is not None
    raise err


def _connect_start(fam: int, sa: Any) -> tuple[socket.socket, int]:
    s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        return s, s.connect_ex(sa)
    except BaseException:
        s.close()
        raise


def _dial_error(network: str, address: str, err: int) -> OSError:
    return OSError(err, f"dial {network} {address}: connect: {os.strerror(err)}")


def _dial_prepare(address: str, timeout: Any) -> tuple[str, str, int, float | None]:
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"dial: timeout must be seconds or None, got {type(timeout).__name__}")
    kind, host, port = _parse(address)
    deadline = None if timeout is None else time.time() + timeout
    if timeout is not None and timeout <= 0:
        raise DeadlineExceeded(f"dial {kind} {address}: i/o timeout")
    return kind, host, port, deadline


def _dial_finish(s: socket.socket, rt: Any) -> Conn:
    return Conn(s, rt)


def _dial_steps(kind: str, address: str, targets: list, rt: Any) -> Generator[int, int, Conn]:
    """dial's logic, for dial and dial_async alike: tries each target in
    turn; yields the fd to wait for (writable, by the caller's deadline)
    and is sent that wait's result.  The first connect that completes is
    the Conn; a timeout ends the dial; any other failure tries the next
    target, and the last one's is raised."""
    last: BaseException | None = None
    for fam, sa in targets:
        s, err = _connect_start(fam, sa)
        try:
            while err in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
                r = yield s.fileno()
                if r == TIMEOUT:
                    raise DeadlineExceeded(f"dial {kind} {address}: i/o timeout")
                if err == errno.EAGAIN and fam == socket.AF_UNIX:
                    # a unix listener's backlog was full: try again
                    err = s.connect_ex(sa)
                else:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise _dial_error(kind, address, err)
            return _dial_finish(s, rt)
        except OSError as e:
            s.close()
            if isinstance(e, DeadlineExceeded):
                raise
            last = e
        except BaseException:  # the wait raised (closing the generator throws GeneratorExit here)
            s.close()
            raise
    assert last is not None
    raise last


def dial(address: str, *, timeout: float | None = None) -> Conn:
    """Connect to ``address`` ("host:port", "[::1]:8080", "unix:/path");
    name resolution runs off the hub.  Parks the goroutine while connecting.

    Raises: DeadlineExceeded (no answer within ``timeout`` seconds),
    ConnectionRefusedError, OSError (unreachable, name not found),
    ValueError for an address that does not parse.
    """
    rt = _need_rt("pg.net.dial")
    kind, host, port, deadline = _dial_prepare(address, timeout)
    targets = [(socket.AF_UNIX, host)] if kind == "unix" else _resolve(host, port, False)
    steps = _dial_steps(kind, address, targets, rt)
    try:
        fd = next(steps)
        while True:
            fd = steps.send(netpoll.wait_fd(fd, True, deadline))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        steps.close()  # a wait that raised: the socket it was for is closed


async def dial_async(address: str, *, timeout: float | None = None) -> Conn:
    """``dial`` for an async goroutine."""
    rt = _need_rt("pg.net.dial_async")
    kind, host, port, deadline = _dial_prepare(address, timeout)
    targets = [(socket.AF_UNIX, host)] if kind == "unix" else await _resolve_async(host, port, False)
    steps = _dial_steps(kind, address, targets, rt)
    try:
        fd = next(steps)
        while True:
            fd = steps.send(await netpoll.wait_fd_async(fd, True, deadline))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        steps.close()


# ----------------------------------------------------------------------
# serve: a listener on every P

BACKOFF_MIN = 0.005  # Go's net/http: 5 ms, doubling, at most 1 s
BACKOFF_MAX = 1.0


class _Server:
    """One P's part of a serve: its listener and its handlers' conns
    (this process only: the handlers run on this P)."""

    def __init__(self, ln: Listener) -> None:
        self.ln = ln
        self.conns: set[Conn] = set()
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True
        self.ln.close()
        for c in list(self.conns):
            c.close()


def _handle(srv: _Server, handler: Callable[[Conn], Any], conn: Conn) -> None:
    try:
        handler(conn)
    except Exception as e:  # as net/http recovers a handler's panic: log it, close the conn, go on
        if not (srv.stopping and isinstance(e, (ClosedConnError, OSError))):
            from ._goroutine import goid

            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            sys.stderr.write(f"pg.net.serve: handler {_name(handler)} failed serving {conn.remote_addr} (goroutine {goid()}):\n{tb}")
            sys.stderr.flush()
    finally:
        srv.conns.discard(conn)
        conn.close()


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _stopper(srv: _Server, stop: Any) -> None:
    stop.recv_ok()  # closed when serve is told to stop
    srv.stop()


def _acceptor(address: str, handler: Callable[[Conn], Any], claimed: Any, reports: Any, stop: Any, wg: Any) -> None:
    """One P's accept loop (claims the P first: one acceptor per P)."""
    from ._goroutine import go_local
    from ._time import sleep

    p = state.rt.p
    bit = 1 << p
    while True:
        old = claimed.load()
        if old & bit:
            reports.send((p, "dup"))
            return
        if claimed.compare_and_swap(old, old | bit):
            break
    try:
        ln = listen(address, reuse_port=True)
    except Exception as e:
        reports.send((p, e))
        return
    srv = _Server(ln)
    wg.add(1)
    try:
        reports.send((p, None))
        go_local(_stopper, srv, stop)
        backoff = 0.0
        while True:
            try:
                conn = ln.accept()
            except ClosedConnError:
                return
            except OSError as e:
                if e.errno in _TEMPORARY:
                    # the fd table is full: wait for handlers to close some
                    # (Go's net/http: "Accept error: ...; retrying in 5ms")
                    backoff = min(BACKOFF_MAX, backoff * 2 if backoff else BACKOFF_MIN)
                    sys.stderr.write(f"pg.net.serve: accept error: {e}; retrying in {backoff * 1000:.0f}ms\n")
                    sleep(backoff)
                    continue
                raise
            backoff = 0.0
            if srv.stopping:
                conn.close()
                return
            srv.conns.add(conn)
            go_local(_handle, srv, handler, conn)
    finally:
        srv.stop()
        wg.done()


def serve(address: str, handler: Callable[[Conn], Any], *, ctx: Any = None) -> None:
    """Serve ``address`` on every P: each P listens (SO_REUSEPORT: the
    kernel spreads the connections), accepts, and runs ``handler(conn)`` in
    a goroutine on that P; the conn is closed when the handler returns.

    Blocks the calling goroutine until ``ctx`` is done (None: for ever);
    a P that is still starting or busy gets its listener as soon as it runs;
    then every listener closes and the handlers' conns are closed.  An
    exception in a handler is printed with its traceback and that conn
    closed; the server keeps serving (Go's net/http).  A full fd table
    (EMFILE) backs off and retries.  Raises what ``listen`` raises (bad
    address, port in use) before serving.
    """
    from ._atomic import Int64
    from ._chan import Chan, Recv, select
    from ._goroutine import go, go_local, gomaxprocs
    from ._sync import WaitGroup
    from ._time import after

    _need_rt("pg.net.serve")
    netpoll._rt_and_g("pg.net.serve()")  # an async goroutine must not block here
    if not callable(handler):
        raise TypeError(f"serve: handler must be callable, got {type(handler).__name__}")
    kind, host, port = _parse(address)
    if kind == "unix":
        raise ValueError(f"serve: {address!r}: unix sockets cannot be shared by SO_REUSEPORT; use listen and an accept loop")
    if port == 0:
        raise ValueError(f"serve: {address!r}: give a port (every P listens on the same one)")
    n = gomaxprocs()
    claimed = Int64(0)
    reports: Chan = Chan(4 * n + 4)
    stop: Chan = Chan()
    wg = WaitGroup()
    # this P's acceptor first (so a bad address or a port in use is raised
    # here), then one per other P: placement spreads them; an acceptor that
    # lands on a P that has one already says "dup" and another is started
    go_local(_acceptor, address, handler, claimed, reports, stop, wg)
    got: set[int] = set()
    outstanding = 1
    done = ctx.done() if ctx is not None else Chan()  # None: never done
    try:
        while True:
            # until every P has an acceptor, keep one more on its way to
            # each P without one (a P still starting, or busy, gets its
            # acceptor later: it is never given up on)
            if got and len(got) < n:
                while outstanding < n - len(got):
                    go(_acceptor, address, handler, claimed, reports, stop, wg)
                    outstanding += 1
            cases = [Recv(done), Recv(reports)]
            if len(got) < n:
                cases.append(Recv(after(0.25)))
            i, v, _ = select(*cases)
            if i == 0:
                break
            if i == 2:
                continue
            outstanding -= 1
            p, err = v
            if err is None:
                got.add(p)
            elif err != "dup":
                if not got:
                    raise err  # this P's listen failed: bad address, port in use
                sys.stderr.write(f"pg.net.serve: P{p} cannot listen on {address}: {err}\n")
                n = len(got)  # that P serves without a listener
    finally:
        stop.close()
        wg.wait()


__all__ = [
    "ClosedConnError",
    "Conn",
    "ConnFile",
    "DeadlineExceeded",
    "Listener",
    "dial",
    "dial_async",
    "listen",
    "serve",
]
