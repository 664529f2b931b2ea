"""Cooperative standard-library I/O: Python's blocking calls park the goroutine, not its P.

``pg.run(main, cooperative_io=True)`` (or ``PARAGO_COOPERATIVE_IO=1``, or
``parago run --cooperative-io``) installs this module's patches in every P
process for the length of the run -- gevent's ``monkey.patch_all`` idea,
on every core.  Owns: the list of patched names, installing and undoing
them, and the cooperative form of each call.

What is patched, at the narrowest layer that every caller goes through:

    socket.socket      recv, recv_into, recvfrom, recvfrom_into, recvmsg,
                       send, sendall, sendto, sendmsg, connect, connect_ex,
                       _accept (accept), sendfile, _real_close (close)
    socket             getaddrinfo, gethostbyname, gethostbyname_ex,
                       gethostbyaddr, getnameinfo (create_connection and
                       getfqdn go through them)
    ssl.SSLSocket      read, write, send, do_handshake, unwrap (recv,
                       recv_into, sendall, connect and accept go through
                       them or through socket.socket)
    time               sleep
    select             select, poll (its objects: a wrapper whose poll()
                       cooperates; epoll objects are not covered)
    selectors          SelectSelector/PollSelector/EpollSelector.select
                       (DefaultSelector; subprocess and socketserver use them)
    subprocess.Popen   wait, communicate

Class attributes are patched, not classes replaced (gevent replaces
``socket.socket`` with its own class): sockets made before the switch --
and by code that imported the class early -- are covered too, and undoing
the patch is deleting the attributes again.

Who cooperates.  Each patched call asks one question first: is the caller
a plain goroutine of a running P (its greenlet carries a ``GreenletG``)?
Only then does it take the cooperative path.  A thread (a ``pg.blocking``
function, a user's thread), the hub's own code (uvloop callbacks, async
goroutines, which never call blocking APIs on the loop) and code outside
``pg.run`` get the original call, unchanged.  A process forked by user
code is no P (state.rt is None there): originals too.

How a call cooperates (gevent's ``_socket3`` and ``_ssl3``, on netpoll):

    goroutine                               hub loop (same P)
    ---------                               -----------------
    1. try the operation without blocking:
       blocking socket: MSG_DONTWAIT (no
       extra syscall); socket with a
       timeout, accept, connect, SSL: the
       socket's timeout set to 0.0 around
       that one C call (never while parked:
       a goroutine of this P that uses the
       socket meanwhile sees its own timeout)
    2. done -> return.  EAGAIN, or
       SSLWantRead/WriteError -> 3
    3. netpoll.wait_fd(fd, write, deadline)  4. epoll: fd ready -> G readied
       ("IO wait", an external waiter)
    5. TIMEOUT -> socket.timeout ("timed
       out"); CLOSED (another goroutine
       closed it) -> OSError(EBADF); READY
       -> back to 1

A socket's timeout (``settimeout``) keeps its meaning: the deadline is
taken when the call starts, for ``sendall`` over the whole call (Python
3.5+).  A socket the user made non-blocking (timeout 0.0) is left alone.
(Rejected: keeping such sockets non-blocking for good, as gevent does --
threads sharing them would then see EAGAIN.  The price of step 1's
toggle: two fcntl-like syscalls per attempt, and a thread of the same
process that uses the same socket during that one C call sees 0.0.)

Name resolution runs on the P's blocking-pool threads (the pg.blocking
hand-off) unless the host is already numeric; ``select``/``selectors``
wait on one epoll fd made for the call (an EpollSelector's own);
``subprocess`` waits on a pidfd; ``time.sleep`` is pg.sleep.

Not covered: C libraries that do their own I/O (libpq, libcurl, grpc):
wrap those calls in ``pg.blocking``.  A C call of the standard library
that waits inside C on a socket it owns (none of the above) holds the P.
"""

from __future__ import annotations

import errno
import math
import os
import select
import selectors
import socket
import ssl
import subprocess
import threading
import time
from typing import Any, Callable

import greenlet

from . import netpoll, park, state, timers
from .blocking import BlockingPool
from .g import GreenletG

_ss: Any = socket.socket.__mro__[1]  # _socket.socket: the C methods
_DONTWAIT = socket.MSG_DONTWAIT
_getcurrent = greenlet.getcurrent
_wait_fd = netpoll.wait_fd
_TIMEOUT, _CLOSED = netpoll.TIMEOUT, netpoll.CLOSED
_now = time.time

# originals, bound at import (before any patch)
_orig_sleep = time.sleep
_orig_select = select.select
_orig_poll = select.poll
_orig_epoll = select.epoll
_orig_getaddrinfo = socket.getaddrinfo
_orig_gethostbyname = socket.gethostbyname
_orig_gethostbyname_ex = socket.gethostbyname_ex
_orig_gethostbyaddr = socket.gethostbyaddr
_orig_getnameinfo = socket.getnameinfo
_orig_real_close: Any = socket.socket.__dict__["_real_close"]
_orig_sendfile = socket.socket.sendfile
_ssl_read = ssl.SSLSocket.read
_ssl_write = ssl.SSLSocket.write
_ssl_send = ssl.SSLSocket.send
_ssl_do_handshake = ssl.SSLSocket.do_handshake
_ssl_unwrap = ssl.SSLSocket.unwrap
_popen_wait = subprocess.Popen.wait
# each concrete selector's select (PollSelector's is _PollLikeSelector's)
_sel_select = {
    cls: cls.select
    for cls in (
        getattr(selectors, "SelectSelector", None),
        getattr(selectors, "PollSelector", None),
        getattr(selectors, "EpollSelector", None),
    )
    if cls is not None
}


def _g() -> Any:
    """The caller's GreenletG when it is a plain goroutine of a running P
    (cooperative I/O applies), else None (the original call applies).
    A pending preemption request is honoured here: a cooperative call is a
    parago operation, so a safe point (as a syscall is in Go)."""
    rt = state.rt
    if rt is None:
        return None
    gs = getattr(_getcurrent(), "gs", None)
    if gs is None or gs.__class__ is not GreenletG:
        return None
    if rt.attn:
        if rt.closed:
            return None
        rt.attention()
    return gs


def _wait(fd: int, write: bool, deadline: float | None, what: str = "timed out") -> None:
    """Park until fd is ready (step 3); the socket module's errors otherwise."""
    r = _wait_fd(fd, write, deadline)
    if r == _TIMEOUT:
        raise TimeoutError(what)  # socket.timeout is TimeoutError (3.10+)
    if r == _CLOSED:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))


def _attempt(sock: Any, t: float | None, fn: Callable[..., Any], args: tuple) -> Any:
    """fn(sock, *args) once, without blocking: the timeout is 0.0 for the call only."""
    sock.settimeout(0.0)
    try:
        return fn(sock, *args)
    finally:
        sock.settimeout(t)


def _io(sock: Any, write: bool, fn: Callable[..., Any], args: tuple, flag: int) -> Any:
    """A socket operation that may block, so that only the goroutine waits.
    ``flag``: the index of fn's ``flags`` argument (MSG_DONTWAIT goes
    there for a blocking socket), or -1 when fn has none."""
    t = sock.gettimeout()
    if t == 0.0:
        return fn(sock, *args)  # the caller's own non-blocking socket
    deadline = None if t is None else _now() + t
    dargs = None
    if t is None and flag >= 0:
        if len(args) > flag:
            f = args[flag]
            if isinstance(f, int):
                if f & _DONTWAIT:
                    return fn(sock, *args)  # the caller asked for EAGAIN rather than a wait
                dargs = (*args[:flag], f | _DONTWAIT, *args[flag + 1 :])
        elif len(args) == flag:
            dargs = (*args, _DONTWAIT)
    fd = sock.fileno()
    while True:
        try:
            if dargs is not None:
                return fn(sock, *dargs)
            return _attempt(sock, t, fn, args)
        except BlockingIOError:
            pass
        _wait(fd, write, deadline)


# ----------------------------------------------------------------------
# socket.socket


def _method(name: str, write: bool, flag: int, into: bool = False) -> Callable[..., Any]:
    """socket.socket.<name> made cooperative: outside a goroutine the C
    method itself; in one, _io (write: which readiness it waits for, flag:
    see _io).  ``into``: recv_into and recvfrom_into, whose arguments may
    be keywords (_into)."""
    meth = getattr(_ss, name)

    def method(self: Any, *args: Any) -> Any:
        if _g() is None:
            return meth(self, *args)
        return _io(self, write, meth, args, flag)

    def method_kw(self: Any, *args: Any, **kw: Any) -> Any:
        if _g() is None:
            return meth(self, *args, **kw)
        return _io(self, write, meth, _into(args, kw), flag)

    out = method_kw if into else method
    out.__name__ = out.__qualname__ = "_" + name
    return out


def _recvmsg(self: Any, *args: Any) -> Any:
    if _g() is None:
        return _ss.recvmsg(self, *args)
    if len(args) == 1:  # recvmsg(bufsize[, ancbufsize[, flags]])
        args = (args[0], 0)
    return _io(self, False, _ss.recvmsg, args, 2)


def _into(args: tuple, kw: dict) -> tuple:
    """recv_into / recvfrom_into take keywords: (buffer, nbytes, flags)."""
    if not kw:
        return args if len(args) != 1 else (args[0], 0)
    names = ("buffer", "nbytes", "flags")
    full = list(args) + [None] * (3 - len(args))
    for k, v in kw.items():
        if k not in names:
            raise TypeError(f"'{k}' is an invalid keyword argument for this function")
        full[names.index(k)] = v
    if full[0] is None:
        raise TypeError("function missing required argument 'buffer' (pos 1)")
    return (full[0], full[1] or 0, full[2] or 0)


_recv = _method("recv", False, 1)
_recvfrom = _method("recvfrom", False, 1)
_recv_into = _method("recv_into", False, 2, into=True)
_recvfrom_into = _method("recvfrom_into", False, 2, into=True)
_send = _method("send", True, 1)


def _sendto(self: Any, *args: Any) -> Any:
    if _g() is None:
        return _ss.sendto(self, *args)
    if len(args) == 2:  # sendto(data, address)
        args = (args[0], 0, args[1])
    return _io(self, True, _ss.sendto, args, 1)


def _sendall(self: Any, data: Any, flags: int = 0) -> None:
    if _g() is None:
        return _ss.sendall(self, data, flags)
    t = self.gettimeout()
    if t == 0.0:
        return _ss.sendall(self, data, flags)
    deadline = None if t is None else _now() + t  # for the whole call, as Python's
    fd = self.fileno()
    with memoryview(data) as view, view.cast("B") as mv:
        sent, n = 0, len(mv)
        while True:
            try:
                if t is None:
                    sent += _ss.send(self, mv[sent:], flags | _DONTWAIT)
                else:
                    sent += _attempt(self, t, _ss.send, (mv[sent:], flags))
            except BlockingIOError:
                pass
            if sent >= n:
                return None
            _wait(fd, True, deadline)


def _numeric(host: Any) -> bool:
    """host needs no name service (an IP literal, or None)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str):
        return True  # a bad argument: the original call says so
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, host)
            return True
        except OSError:
            pass
    return False


def _resolved(sock: Any, address: Any) -> Any:
    """An AF_INET/AF_INET6 address with a host name, resolved off the hub:
    the C connect would resolve it itself, holding the P."""
    if (
        sock.family in (socket.AF_INET, socket.AF_INET6)
        and isinstance(address, tuple)
        and len(address) >= 2
        and isinstance(address[0], (str, bytes))
        and address[0] not in ("", "<broadcast>", b"", b"<broadcast>")
        and not _numeric(address[0])
    ):
        infos = _getaddrinfo(address[0], address[1], sock.family, sock.type, sock.proto)
        if not infos:  # pragma: no cover - getaddrinfo raises instead
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        sa = infos[0][4]
        return (*sa[:2], *address[2:]) if sock.family == socket.AF_INET6 else sa
    return address


def _connect_ex_coop(sock: Any, address: Any) -> int:
    t = sock.gettimeout()
    address = _resolved(sock, address)
    deadline = None if t is None else _now() + t
    err = _attempt(sock, t, _ss.connect_ex, (address,))
    if err == 0:
        return 0
    fd = sock.fileno()
    if sock.family == getattr(socket, "AF_UNIX", -1) and err == errno.EAGAIN:
        # a full backlog: a Unix socket never becomes writable for it; retry
        while err == errno.EAGAIN:
            if deadline is not None and _now() >= deadline:
                raise TimeoutError("timed out")
            _time_sleep(0.001)
            err = _attempt(sock, t, _ss.connect_ex, (address,))
        return err
    if err not in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
        return err
    _wait(fd, True, deadline)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def _connect(self: Any, address: Any) -> None:
    if _g() is None or self.gettimeout() == 0.0:
        return _ss.connect(self, address)
    err = _connect_ex_coop(self, address)
    if err:
        raise OSError(err, os.strerror(err))
    return None


def _connect_ex(self: Any, address: Any) -> int:
    if _g() is None or self.gettimeout() == 0.0:
        return _ss.connect_ex(self, address)
    try:
        return _connect_ex_coop(self, address)
    except TimeoutError:
        return errno.EWOULDBLOCK


def _accept(self: Any) -> Any:
    if _g() is None:
        return _ss._accept(self)
    return _io(self, False, _ss._accept, (), -1)


def _sendfile(self: Any, file: Any, offset: int = 0, count: int | None = None) -> int:
    # os.sendfile would block in C: the send() fallback cooperates
    if _g() is None or self.gettimeout() == 0.0:
        return _orig_sendfile(self, file, offset, count)
    return self._sendfile_use_send(file, offset, count)


def _real_close(self: Any, *args: Any) -> None:
    # goroutines of this P parked on the fd end with CLOSED (EBADF), instead
    # of watching an fd number that the kernel may give to the next socket
    fd = _ss.fileno(self)
    if fd >= 0 and state.rt is not None:
        netpoll.close_fd(fd)
    _orig_real_close(self, *args)


# ----------------------------------------------------------------------
# name resolution: off the hub, on the P's blocking-pool threads


def _offload(gs: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on a pool thread, the goroutine parked meanwhile (pg.blocking)."""
    rt = gs.rt
    if rt.executor is None:
        rt.executor = BlockingPool(f"parago-P{rt.p}-blocking")
    fut = rt.executor.submit(fn, *args)
    rt.count_syscall()
    rt.park_on_future(gs, fut, "syscall", threadsafe=True)
    return fut.result()


def _getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0) -> Any:
    gs = _g()
    if gs is None or _numeric(host):
        return _orig_getaddrinfo(host, port, family, type, proto, flags)
    return _offload(gs, _orig_getaddrinfo, host, port, family, type, proto, flags)


def _gethostbyname(hostname: Any) -> Any:
    gs = _g()
    if gs is None or _numeric(hostname):
        return _orig_gethostbyname(hostname)
    return _offload(gs, _orig_gethostbyname, hostname)


def _gethostbyname_ex(hostname: Any) -> Any:
    gs = _g()
    if gs is None:
        return _orig_gethostbyname_ex(hostname)
    return _offload(gs, _orig_gethostbyname_ex, hostname)


def _gethostbyaddr(ip_address: Any) -> Any:
    gs = _g()
    if gs is None:
        return _orig_gethostbyaddr(ip_address)
    return _offload(gs, _orig_gethostbyaddr, ip_address)


def _getnameinfo(sockaddr: Any, flags: int) -> Any:
    gs = _g()
    if gs is None:
        return _orig_getnameinfo(sockaddr, flags)
    return _offload(gs, _orig_getnameinfo, sockaddr, flags)


# ----------------------------------------------------------------------
# ssl.SSLSocket: non-blocking OpenSSL, want-read/want-write loops (gevent's _ssl3)


def _ssl_io(sock: Any, t: float | None, fn: Callable[..., Any], args: tuple, what: str) -> Any:
    deadline = None if t is None else _now() + t
    fd = sock.fileno()
    while True:
        try:
            return _attempt(sock, t, fn, args)
        except ssl.SSLWantReadError:
            write = False
        except ssl.SSLWantWriteError:
            write = True
        _wait(fd, write, deadline, what)


def _ssl_coop(sock: Any) -> Any:
    """(t,) when sock's SSL calls should cooperate, else None."""
    if _g() is None or sock._sslobj is None:
        return None
    t = sock.gettimeout()
    return None if t == 0.0 else (t,)


def _ssl_read_coop(self: Any, len: int = 1024, buffer: Any = None) -> Any:
    c = _ssl_coop(self)
    if c is None:
        return _ssl_read(self, len, buffer)
    return _ssl_io(self, c[0], _ssl_read, (len, buffer), "The read operation timed out")


def _ssl_write_coop(self: Any, data: Any) -> Any:
    c = _ssl_coop(self)
    if c is None:
        return _ssl_write(self, data)
    return _ssl_io(self, c[0], _ssl_write, (data,), "The write operation timed out")


def _ssl_send_coop(self: Any, data: Any, flags: int = 0) -> Any:
    c = _ssl_coop(self)
    if c is None:
        return _ssl_send(self, data, flags)  # unwrapped: socket.socket.send (cooperative itself)
    return _ssl_io(self, c[0], _ssl_send, (data, flags), "The write operation timed out")


def _ssl_do_handshake_coop(self: Any, block: bool = False) -> Any:
    if _g() is None or self._sslobj is None:
        return _ssl_do_handshake(self, block)
    t = self.gettimeout()
    if t == 0.0:
        if not block:
            return _ssl_do_handshake(self, block)
        t = None  # block=True on a non-blocking socket: a blocking handshake
    return _ssl_io(self, t, _ssl_do_handshake, (False,), "The handshake operation timed out")


def _ssl_unwrap_coop(self: Any) -> Any:
    c = _ssl_coop(self)
    if c is None:
        return _ssl_unwrap(self)
    return _ssl_io(self, c[0], _ssl_unwrap, (), "The read operation timed out")


# ----------------------------------------------------------------------
# time.sleep


def _sleep(gs: Any, secs: Any) -> None:
    if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not math.isfinite(secs) or secs < 0:
        return _orig_sleep(secs)  # its own TypeError / ValueError / OverflowError
    rt = gs.rt
    if secs == 0:  # lets the P's other runnable goroutines run (pg.gosched)
        park.gosched(gs)
        return None
    timers.sleep_g(rt, gs, timers.delay_ns(secs, "time.sleep"))
    return None


def _time_sleep(secs: float) -> None:
    gs = _g()
    if gs is None:
        return _orig_sleep(secs)
    return _sleep(gs, secs)


# ----------------------------------------------------------------------
# select.select and selectors: one epoll fd waited on through netpoll


def _fd_of(x: Any) -> int:
    return x if isinstance(x, int) else int(x.fileno())


def _wait_many(events: dict[int, int], deadline: float | None) -> int:
    """Park until one of the fds is ready for its epoll events (or the
    deadline): an epoll fd made for the call carries them all into the P's
    own epoll through netpoll.  A regular file cannot be watched (EPERM):
    it is always ready, as select() says."""
    ep = _orig_epoll(max(1, len(events)))
    try:
        for fd, ev in events.items():
            try:
                ep.register(fd, ev)
            except PermissionError:
                return netpoll.READY
        return _wait_fd(ep.fileno(), False, deadline)
    finally:
        ep.close()


def _select(rlist: Any, wlist: Any, xlist: Any, timeout: Any = None) -> Any:
    if _g() is None or timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        return _orig_select(rlist, wlist, xlist, timeout)  # a poll, or bad input: as it is
    r = _orig_select(rlist, wlist, xlist, 0)  # validates the arguments too
    if r[0] or r[1] or r[2]:
        return r
    events: dict[int, int] = {}
    for lst, ev in ((rlist, select.EPOLLIN), (wlist, select.EPOLLOUT), (xlist, select.EPOLLPRI)):
        for x in lst:
            fd = _fd_of(x)
            events[fd] = events.get(fd, 0) | ev
    deadline = None if timeout is None else _now() + timeout
    while True:
        w = _wait_many(events, deadline)
        r = _orig_select(rlist, wlist, xlist, 0)
        if r[0] or r[1] or r[2] or w == _TIMEOUT:
            return r


class _Poll:
    """``select.poll()`` whose ``poll(timeout)`` parks a plain goroutine
    (the poll object itself stays the C one, for everyone else).  poll's
    POLLIN/POLLPRI/POLLOUT/POLLRDHUP are epoll's values on Linux."""

    __slots__ = ("_p", "_fds")

    def __init__(self) -> None:
        self._p = _orig_poll()
        self._fds: dict[int, int] = {}

    def register(self, fd: Any, eventmask: int = select.POLLIN | select.POLLPRI | select.POLLOUT) -> None:
        self._p.register(fd, eventmask)
        self._fds[_fd_of(fd)] = eventmask

    def modify(self, fd: Any, eventmask: int) -> None:
        self._p.modify(fd, eventmask)
        self._fds[_fd_of(fd)] = eventmask

    def unregister(self, fd: Any) -> None:
        self._p.unregister(fd)
        self._fds.pop(_fd_of(fd), None)

    def poll(self, timeout: Any = None) -> list:
        if _g() is None:
            return self._p.poll(timeout)
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                return self._p.poll(timeout)  # its own TypeError
            if timeout == 0:
                return self._p.poll(0)
        r = self._p.poll(0)
        if r:
            return r
        deadline = None if timeout is None or timeout < 0 else _now() + timeout / 1000  # ms
        mask = select.POLLIN | select.POLLPRI | select.POLLOUT | select.POLLRDHUP
        events = {fd: ev & mask for fd, ev in self._fds.items()}
        while True:
            w = _wait_many(events, deadline)
            r = self._p.poll(0)
            if r or w == _TIMEOUT:
                return r


def _selector_select(self: Any, timeout: float | None = None) -> Any:
    orig = _sel_select[type(self)] if type(self) in _sel_select else _mro_select(self)
    if _g() is None or (timeout is not None and timeout <= 0):
        return orig(self, timeout)
    ready = orig(self, 0)
    if ready:
        return ready
    deadline = None if timeout is None else _now() + timeout
    while True:
        if isinstance(self, selectors.EpollSelector):
            ep: Any = self.__dict__["_selector"]
            w = _wait_fd(ep.fileno(), False, deadline)  # its own epoll fd
        else:
            events: dict[int, int] = {}
            for key in self.get_map().values():
                ev = 0
                if key.events & selectors.EVENT_READ:
                    ev |= select.EPOLLIN
                if key.events & selectors.EVENT_WRITE:
                    ev |= select.EPOLLOUT
                events[key.fd] = ev
            w = _wait_many(events, deadline)
        ready = orig(self, 0)
        if ready or w == _TIMEOUT:
            return ready


def _mro_select(self: Any) -> Callable[..., Any]:
    for cls in type(self).__mro__:
        if cls in _sel_select:
            return _sel_select[cls]
    raise TypeError(f"{type(self).__name__}: no select() to call")  # pragma: no cover


# ----------------------------------------------------------------------
# subprocess


def _popen_wait_coop(self: Any, timeout: float | None = None) -> Any:
    if _g() is None or self.returncode is not None:
        return _popen_wait(self, timeout)
    deadline = None if timeout is None else _now() + timeout
    try:
        pidfd = os.pidfd_open(self.pid)
    except (OSError, AttributeError):  # reaped meanwhile, or no pidfd: poll with parked sleeps
        delay = 0.0005
        while self.poll() is None:
            if deadline is not None and _now() >= deadline:
                raise subprocess.TimeoutExpired(self.args, float(timeout or 0)) from None
            _time_sleep(delay)
            delay = min(delay * 2, 0.05)
        return self.returncode
    try:
        r = _wait_fd(pidfd, False, deadline)  # readable once the child has exited
    finally:
        os.close(pidfd)
    if r == _TIMEOUT:
        raise subprocess.TimeoutExpired(self.args, float(timeout or 0))
    return _popen_wait(self, None)  # reaps at once: the child has exited


def _popen_communicate_coop(self: Any, input: Any = None, timeout: float | None = None) -> Any:
    # Popen.communicate without its fast path for one pipe, which reads
    # the pipe in C (self.stdout.read()): _communicate waits in a selector
    if _g() is None:
        return _popen_communicate(self, input, timeout)
    if self._communication_started and input:
        raise ValueError("Cannot send input after starting communication")
    endtime = None if timeout is None else _now_mono() + timeout
    try:
        stdout, stderr = self._communicate(input, endtime, timeout)
    finally:
        self._communication_started = True
    # the time left as Popen computes it (its _remaining_time, 3.15's
    # module-level _deadline_remaining: not a method to call on every version)
    self.wait(timeout=None if endtime is None else endtime - _now_mono())
    return (stdout, stderr)


_popen_communicate = subprocess.Popen.communicate
_now_mono = time.monotonic  # subprocess's _remaining_time is on time.monotonic


# ----------------------------------------------------------------------
# install / undo

_SOCKET_METHODS: dict[str, Callable[..., Any]] = {
    "recv": _recv,
    "recv_into": _recv_into,
    "recvfrom": _recvfrom,
    "recvfrom_into": _recvfrom_into,
    "send": _send,
    "sendall": _sendall,
    "sendto": _sendto,
    "connect": _connect,
    "connect_ex": _connect_ex,
    "_accept": _accept,
    "sendfile": _sendfile,
    "_real_close": _real_close,
}
if hasattr(_ss, "recvmsg"):
    _SOCKET_METHODS["recvmsg"] = _recvmsg
if hasattr(_ss, "sendmsg"):
    _SOCKET_METHODS["sendmsg"] = _method("sendmsg", True, -1)

_PATCHES: list[tuple[Any, str, Any]] = [
    *((socket.socket, name, fn) for name, fn in _SOCKET_METHODS.items()),
    (socket, "getaddrinfo", _getaddrinfo),
    (socket, "gethostbyname", _gethostbyname),
    (socket, "gethostbyname_ex", _gethostbyname_ex),
    (socket, "gethostbyaddr", _gethostbyaddr),
    (socket, "getnameinfo", _getnameinfo),
    (ssl.SSLSocket, "read", _ssl_read_coop),
    (ssl.SSLSocket, "write", _ssl_write_coop),
    (ssl.SSLSocket, "send", _ssl_send_coop),
    (ssl.SSLSocket, "do_handshake", _ssl_do_handshake_coop),
    (ssl.SSLSocket, "unwrap", _ssl_unwrap_coop),
    (time, "sleep", _time_sleep),
    (select, "select", _select),
    (select, "poll", _Poll),
    *((cls, "select", _selector_select) for cls in _sel_select),
    (subprocess.Popen, "wait", _popen_wait_coop),
    (subprocess.Popen, "communicate", _popen_communicate_coop),
]

_MISSING = object()
# (owner, name, what was there: the owner's own attribute or _MISSING)
_saved: list[tuple[Any, str, Any]] = []
_lock = threading.Lock()


def installed() -> bool:
    """The patches are in place in this process."""
    return bool(_saved)


def install() -> None:
    """Patch the standard library in this process (idempotent).  Each P calls
    it when the run's settings ask for cooperative I/O; P0 undoes it when
    pg.run returns (the other Ps exit)."""
    with _lock:
        if _saved:
            return
        for owner, name, fn in _PATCHES:
            _saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
            setattr(owner, name, fn)


def uninstall() -> None:
    """Undo install(): every patched name is what it was (idempotent)."""
    with _lock:
        while _saved:
            owner, name, old = _saved.pop()
            if old is _MISSING:
                try:
                    delattr(owner, name)  # the inherited C method shows through again
                except AttributeError:
                    pass
            else:
                setattr(owner, name, old)


__all__ = ["install", "uninstall", "installed"]
