"""Moving an open socket from one P to another (a pg.net Conn or Listener
passed to pg.go or sent on a channel).

The receiving P is not known when the value is encoded (an unstarted
goroutine may be stolen, any goroutine may receive from a channel), so the
socket is *pulled* by whoever decodes it, with ``pidfd_getfd`` -- a kernel
copy of the descriptor that needs nothing from the sending P's hub:

    sender P (encode: __reduce__)             receiver P (decode)
    ---------------------------------         ------------------------------
    1. moving[id] = sock (kept open),
       the Conn/Listener object closed
       ("moved"); token = (pid, fd, inode,
       id, user-space state)       --- payload in the arena --->
                                              2. pidfd_open(pid),
                                                 pidfd_getfd(fd); the inode
                                                 must match (a reused pid or
                                                 fd number is never adopted)
                                              3. a new Conn/Listener owns it
    4. its "taken" socket reads id:  <--- datagram "id" (abstract unix
       close moving[id]                   socket of the sender, per run)

No byte is lost: the kernel socket itself moves (its receive queue with
it), and what the Conn had buffered in user space travels in the token.

A move is committed only when the payload is delivered and decoded.  Each
move has an *anchor*: a small arena atomic whose offset the token carries
and adds to the payload's handle references, so the arena reference the
publishing call takes (a channel send, a select's Send case, pg.go) and
gives back when the payload is not delivered after all (a closed channel,
a Send case that lost, the undelivered rest of a send_many, an encode that
failed) is counted on it like any handle's.  The receiver consumes that
reference as a decode consumes a handle's: it marks the anchor "taken"
(0 -> 1) and drops the payload's reference, then tells the sender.  The
sender keeps one reference of its own:

    refcount 2            a payload on its way (buffered, or a receiver
                          decoding it)
    refcount 1, value 1   taken: the "taken" datagram is on its way
    refcount 1, value 0   no payload holds it: the send failed -- the
                          sender's object revives on its next use
                          (``revive``), or the socket is closed once that
                          object is gone (``_orphan``)
    datagram "taken"      the sender closes its copy and drops its reference

The sender reads the refcount before the mark (the receiver marks before it
drops), so it never revives a socket that a receiver holds; and no
reference waits on a datagram, so a run that ends with "taken" still
queued leaves nothing in the arena (each P gives its own reference back
when it leaves: Refs.release).

Failure and lifetime (DESIGN rule 4, "never a leaked fd"):
  - the sender P died before step 2: ``pidfd_getfd`` fails (its files died
    with it) -> WorkerLost naming that P in the receiver;
  - the receiver died after step 2: its copy died with it; the sender's
    copy is closed at teardown;
  - the payload is never decoded (a buffered value of a channel nobody
    drains or that was dropped, a goroutine that never started): the
    sender's ``moving`` table is closed when its P leaves the run;
  - the payload was never delivered: see the anchor above;
  - a move within one process takes the socket straight from the table.

Owner of ``Mover`` state: the P's hub thread (encode and decode run in
goroutines or the hub of that P).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import itertools
import os
import socket
import struct
import threading
import time
import weakref
from typing import Any

from .._errors import ParagoError, Shutdown, WorkerLost, stale_handle
from .._shim import SyncKind, lib, views
from .._shim.status import check

_SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture (unified syscall table)
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_ID = struct.Struct("<Q")


def pidfd_getfd(pid: int, fd: int) -> int:
    """A copy of process pid's descriptor fd in this process (Linux >= 5.6)."""
    pidfd = os.pidfd_open(pid)
    try:
        r = _syscall(ctypes.c_long(_SYS_PIDFD_GETFD), ctypes.c_long(pidfd), ctypes.c_long(fd), ctypes.c_long(0))
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return int(r)
    finally:
        os.close(pidfd)


_PR_SET_PTRACER = 0x59616D61
_PR_SET_PTRACER_ANY = ctypes.c_ulong(-1 & 0xFFFFFFFFFFFFFFFF)
_ptracer_set = False


def _allow_pulls() -> None:
    """Under Yama's ptrace_scope 1 (Ubuntu's default) only an ancestor may
    pidfd_getfd from a process, and a P's receivers are its siblings and
    P0: a P that gives a socket away lets same-user processes take its
    descriptors (PR_SET_PTRACER).  Scopes 2 and 3 forbid it altogether: the
    receiver's error says so."""
    global _ptracer_set
    if _ptracer_set:
        return
    _ptracer_set = True
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return
    if scope == 1:
        _libc.prctl(ctypes.c_int(_PR_SET_PTRACER), _PR_SET_PTRACER_ANY, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _forget_ptracer() -> None:
    global _ptracer_set
    _ptracer_set = False  # not inherited by a child: each P process sets its own


os.register_at_fork(after_in_child=_forget_ptracer)


def _address(nonce: int, p: int) -> bytes:
    return b"\0parago-net-%x-%d" % (nonce & 0xFFFFFFFFFFFFFFFF, p)


class Mover:
    """One P's side of socket moves: the sockets it gave away that were not
    yet taken, and the datagram socket that hears "taken"."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.moving: dict[int, socket.socket] = {}
        self.anchors: dict[int, int] = {}  # move id -> its anchor's offset (see the module doc)
        self.owners: dict[int, weakref.ref] = {}  # move id -> the sender's object, for _orphan
        self.ids = itertools.count(1)
        self.inbox: socket.socket | None = None  # "taken" datagrams for this P (bound on first move)
        self.outbox: socket.socket | None = None  # sends "taken" to other Ps
        self.unsent: list[tuple[bytes, bytes]] = []

    # ---- sender: step 1 and step 4 ----
    def give(self, sock: socket.socket, owner: Any) -> tuple[tuple[int, int, int, int, int, int], int]:
        """Keep sock for its receiver; returns ((p, pid, fd, inode, id,
        anchor), anchor): the caller adds the anchor to the payload's
        references."""
        rt = self.rt
        if self.inbox is None:
            _allow_pulls()
            ib = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            ib.bind(_address(rt.nonce, rt.p))
            rt.loop.add_reader(ib.fileno(), self._taken)
            self.inbox = ib
        fd = sock.fileno()
        ino = os.fstat(fd).st_ino
        anchor = check(lib.pg_sync_new(rt.base, SyncKind.ATOMIC, 0), "pg.net: moving a connection", 128)
        mid = next(self.ids)
        self.moving[mid] = sock
        self.anchors[mid] = anchor
        ref = self.owners[mid] = weakref.ref(owner, functools.partial(self._owner_gone, mid))
        # our reference sits in the P's table as a handle's does, so that the
        # P gives it back when it leaves the run (Refs.release) if the move
        # is still open then; whoever takes the entry out drops it (_unanchor)
        rt.handles[anchor] = ref
        return (rt.p, os.getpid(), fd, ino, mid, anchor), anchor

    def _taken(self) -> None:
        ib = self.inbox
        while ib is not None:
            try:
                data = ib.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(data) == _ID.size:
                s = self._commit(_ID.unpack(data)[0])
                if s is not None:
                    s.close()

    def _commit(self, mid: int) -> socket.socket | None:
        """The receiver has the socket (and dropped the payload's reference):
        forget the move and drop ours."""
        s = self.moving.pop(mid, None)
        self._unanchor(mid)
        return s

    def _unanchor(self, mid: int) -> None:
        """The move is over (committed or cancelled): drop our reference on
        its anchor, unless the P already gave it back (Refs.release)."""
        self.owners.pop(mid, None)
        anchor = self.anchors.pop(mid, None)
        rt = self.rt
        if anchor is not None and rt.handles.pop(anchor, None) is not None and not rt.closed:
            lib.pg_obj_decref(rt.base, anchor)

    def _undelivered(self, mid: int) -> bool:
        """No payload holds the move's anchor any more (the send failed)."""
        rt = self.rt
        anchor = self.anchors.get(mid)
        if anchor is None or mid not in self.moving or rt.closed:
            return False
        rt.flush_decrefs()  # a failed send's drop is batched
        # the refcount first: a receiver marks the anchor before it drops
        return bool(views.obj_refcnt(rt.arena, anchor) == 1 and lib.pg_atomic_load(rt.base, anchor) == 0)

    def revive(self, mid: int) -> socket.socket | None:
        """The socket back to its sender if its payload was not delivered
        (then the move is cancelled), else None.  Hub thread."""
        if not self._undelivered(mid):
            return None
        s = self.moving.pop(mid)
        self._unanchor(mid)  # ours was the last reference: frees it
        return s

    def _owner_gone(self, mid: int, _ref: Any = None) -> None:
        """The sender's object was collected: a move that was not delivered
        has nobody left to revive it (GC may run in any thread: the hub
        decides)."""
        rt = self.rt
        if rt.closed or mid not in self.moving:
            return
        if threading.get_ident() == rt.hub_tid:
            self._orphan(mid)
            return
        try:
            rt.loop.call_soon_threadsafe(self._orphan, mid)
        except RuntimeError:
            pass  # the loop is closed: close() has it

    def _orphan(self, mid: int) -> None:
        s = self.revive(mid)
        if s is not None:
            s.close()

    # ---- receiver: steps 2 and 3 ----
    def take(self, nonce: int, p: int, pid: int, fd: int, ino: int, mid: int, anchor: int) -> socket.socket:
        rt = self.rt
        if nonce != rt.nonce:
            raise stale_handle("pg.net connection")
        if pid == os.getpid():
            if mid not in self.moving:
                raise ParagoError("pg.net: this connection was already received (a payload decoded twice)")
            _consume(rt, anchor)
            s = self._commit(mid)
            assert s is not None
            return s
        if p < rt.nprocs and views.p_get(rt.arena, p, "gone"):
            raise _lost(rt, p)
        try:
            nfd = pidfd_getfd(pid, fd)
        except OSError as e:
            if e.errno in (errno.ESRCH, errno.EBADF):
                raise _lost(rt, p) from None
            raise ParagoError(
                f"pg.net: cannot move a connection from P{p} to P{rt.p}: pidfd_getfd: {e.strerror} "
                f"(moving sockets needs Linux >= 5.6 and ptrace rights over the other Ps; "
                f"use pg.go_local to keep it on its P)"
            ) from e
        if os.fstat(nfd).st_ino != ino:
            os.close(nfd)  # the pid or the fd number was reused: the sender is gone
            raise _lost(rt, p)
        _consume(rt, anchor)
        self._tell(_address(nonce, p), _ID.pack(mid))
        return socket.socket(fileno=nfd)

    def _tell(self, addr: bytes, data: bytes) -> None:
        if self.outbox is None:
            self.outbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            self.outbox.sendto(data, addr)
        except BlockingIOError:
            # its queue is full (a burst of moves): try again from the loop
            self.unsent.append((addr, data))
            if len(self.unsent) == 1:
                self.rt.loop.call_later(0.005, self._retry)
        except OSError:
            pass  # the sender left the run: its copy died with it

    def _retry(self) -> None:
        pending, self.unsent = self.unsent, []
        for addr, data in pending:
            self._tell(addr, data)

    def close(self) -> None:
        """The run is over: sockets never taken are closed.  (Our references
        on the anchors of open moves went back when the P left the run,
        Refs.release; an anchor in a payload nobody will decode keeps that
        payload's reference, as any handle inside it does.)"""
        for s in self.moving.values():
            s.close()
        self.moving.clear()
        self.owners.clear()
        self.anchors.clear()
        if self.inbox is not None:
            try:
                self.rt.loop.remove_reader(self.inbox.fileno())
            except Exception:
                pass
            self.inbox.close()
            self.inbox = None
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None


def _consume(rt: Any, anchor: int) -> None:
    """The receiver took the socket: mark the anchor taken, then drop the
    payload's reference on it (the order the sender's check relies on)."""
    if not lib.pg_atomic_cas(rt.base, anchor, 0, 1):
        raise ParagoError("pg.net: this connection was already received (a payload decoded twice)")
    lib.pg_obj_decref(rt.base, anchor)


def _lost(rt: Any, p: int) -> BaseException:
    """The sender P died with the socket: the run is aborted as for any lost
    P (deathwatch.py) -- WorkerLost in P0, Shutdown elsewhere.  Waits (a
    second at most) for the death watch to record the loss first, so the
    run fails as WorkerLost whichever exception reaches the caller."""
    from .deathwatch import lost_error

    a = rt.arena
    deadline = time.monotonic() + 1.0
    while views.hdr(a, "panicking") != 2 and time.monotonic() < deadline:
        time.sleep(0.002)
    if rt.p != 0:
        return Shutdown()
    if views.hdr(a, "panicking") == 2:
        return lost_error(rt)
    return WorkerLost(p, "it died with a connection on its way to another P", "none")


def mover(rt: Any) -> Mover:
    """This P's Mover (one per run)."""
    m = rt.__dict__.get("netmover")
    if m is None:
        m = rt.netmover = Mover(rt)
        from .netpoll import poller

        poller(rt).at_close.append(m.close)
    return m


__all__ = ["Mover", "mover", "pidfd_getfd"]
