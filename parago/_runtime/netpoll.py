"""The netpoller: a goroutine waits for a file descriptor, its P does not.

Go's ``netpollblock`` / ``netpollready`` on the P's hub loop (uvloop, so
epoll).  This module owns, per P, the table of goroutines parked on a file
descriptor and the loop registrations that wake them.  Everything above it
(``pg.net``, cooperative standard-library I/O) waits through ``wait_fd`` /
``wait_fd_async`` and nothing else.

A wait, numbered as its steps happen (one fd may have several readers and
several writers parked at once; each direction has one registration):

    goroutine (plain)                      hub loop (same P)
    -----------------                      -----------------
    1. deadline passed? -> TIMEOUT
    2. w = a _Waiter of the G; add to
       fd's readers (first one:
       add_reader); a deadline timer
    3. park ("IO wait", an external
       waiter: never Deadlock)
                                           4. epoll: fd readable -> every
                                              reader's w = READY, taken out
                                              with the registration; or the
                                              deadline timer: w = TIMEOUT;
                                              or close_fd: every w = CLOSED
                                           5. setting w readies the G on
                                              this P (rt.wake_local)
    6. resumed: take w out of the
       table (last one: remove_reader),
       cancel the timer, return w's value

An async goroutine waits the same way with a loop future in place of the
_Waiter (``wait_fd_async``).

Step 6 runs on every exit path (a Shutdown at teardown included).  A
registration never outlives its file: a plain fd's goes in step 6; a
pg.net socket's (``wait_fd(..., sock=, owner=)``) is *kept* for the next
wait -- the echo loop read/write/read re-registers nothing (each add and
remove was an epoll_ctl and a libuv poll handle) -- and goes when a
readiness finds no waiter (level-triggered epoll: data the goroutine has
not read yet), at ``close_fd``, or when the owner object dies without a
close.  While kept, the entry holds the socket object, so the fd cannot be
closed (and its number reused) under the registration; libuv aborts on a
registration whose fd went away.

Invariants (owner: the P's hub thread only -- every function here runs on
it, or is the thread fallback that touches no table):
  - a fd with waiters in a direction is registered in that direction; a
    registration with no waiters exists only for a kept entry;
  - a waiter in the table is not done: readiness and close_fd take the
    waiters they complete out of it, so a wait that comes after them is
    added afresh (and a reused fd number starts clean).
A thread that is no goroutine polls the fd itself (real ``poll()`` with
the deadline): it holds no P.
"""

from __future__ import annotations

import asyncio
import functools
import select
import threading
import time
import weakref
from typing import Any

import greenlet

from .._errors import ParagoError, Shutdown
from .._shim import lib, views
from . import state
from .g import WR, GreenletG

READY, TIMEOUT, CLOSED = 0, 1, 2

_IO_WAIT = "IO wait"


class _Fd:
    """The waiters of one fd on one P, by direction (insertion-ordered sets),
    and its registrations.  ``sock``/``owner``: a kept entry's socket (held
    open while registered) and the object whose death drops the entry."""

    __slots__ = ("readers", "writers", "rreg", "wreg", "sock", "owner")

    def __init__(self) -> None:
        # loop futures (async waits) or _Waiters (plain goroutines)
        self.readers: dict[Any, None] = {}
        self.writers: dict[Any, None] = {}
        self.rreg = self.wreg = False
        self.sock: Any = None
        self.owner: weakref.ref | None = None


class Netpoller:
    """One P's table of fds that goroutines wait on (hub thread only)."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.loop = rt.loop
        # fd -> its waiters; an fd is registered with the loop for a direction
        # iff it has waiters in that direction
        self.fds: dict[int, _Fd] = {}
        # G offset -> (fd, write) of a goroutine parked here (its dump line)
        self.waiting: dict[int, tuple[int, bool]] = {}
        self.i_n = views.p_index(rt.p, "nnetpoll")  # len(waiting), published for schedtrace
        # run when the run ends in this process (Runtime.close): pg.net's
        # open sockets and moves of this P (DESIGN rule 4: no fd outlives pg.run)
        self.at_close: list[Any] = []
        # fd -> the open pg.net Conn/Listener over it (weak: a dropped one
        # is closed by its socket's own finalizer)
        self.at_close_files: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

    def parked(self, g_off: int, fd: int, write: bool) -> None:
        self.waiting[g_off] = (fd, write)
        self.rt.arena.q[self.i_n] = len(self.waiting)

    def unparked(self, g_off: int) -> None:
        self.waiting.pop(g_off, None)
        if not self.rt.closed:
            self.rt.arena.q[self.i_n] = len(self.waiting)

    # step 2
    def add(self, fd: int, write: bool, fut: Any, sock: Any = None, owner: Any = None) -> None:
        ent = self.fds.get(fd)
        if ent is None:
            ent = self.fds[fd] = _Fd()
        if not (ent.wreg if write else ent.rreg):
            try:
                # raises (EBADF, EPERM for a regular file) before anything is recorded
                if write:
                    self.loop.add_writer(fd, self._ready, fd, True)
                    ent.wreg = True
                else:
                    self.loop.add_reader(fd, self._ready, fd, False)
                    ent.rreg = True
            except BaseException:
                self._drop_if_unused(fd, ent)
                raise
        if sock is not None and ent.sock is None:
            ent.sock = sock
            ent.owner = weakref.ref(owner, functools.partial(self._owner_gone, fd))
        (ent.writers if write else ent.readers)[fut] = None

    # step 6: a future still in the table is this wait's own; one that step
    # 4 or close_fd took out already has no registration to answer for
    def remove(self, fd: int, write: bool, fut: Any) -> None:
        ent = self.fds.get(fd)
        if ent is None:
            return
        waiters = ent.writers if write else ent.readers
        if fut in waiters:
            del waiters[fut]
            if not waiters and ent.sock is None:
                self._unregister(fd, ent, write)
        self._drop_if_unused(fd, ent)

    def _drop_if_unused(self, fd: int, ent: _Fd) -> None:
        if not (ent.readers or ent.writers or ent.rreg or ent.wreg) and self.fds.get(fd) is ent:
            del self.fds[fd]

    def _unregister(self, fd: int, ent: _Fd, write: bool) -> None:
        if write:
            if not ent.wreg:
                return
            ent.wreg = False
        else:
            if not ent.rreg:
                return
            ent.rreg = False
        try:
            if write:
                self.loop.remove_writer(fd)
            else:
                self.loop.remove_reader(fd)
        except (OSError, ValueError, RuntimeError):  # a closed loop at teardown
            pass

    # step 4: readiness wakes every waiter of that direction and takes them
    # out of the table; each retries its operation (a reader that finds
    # nothing waits again).  A plain fd's registration goes with them
    # (level-triggered epoll would call this again before they ran); a kept
    # one stays, and goes on a readiness that finds nobody waiting.
    def _ready(self, fd: int, write: bool) -> None:
        ent = self.fds.get(fd)
        if ent is None:
            return
        waiters = ent.writers if write else ent.readers
        if not waiters or ent.sock is None:
            self._unregister(fd, ent, write)
        futs = list(waiters)
        waiters.clear()
        self._drop_if_unused(fd, ent)
        for fut in futs:
            if not fut.done():
                fut.set_result(READY)

    def _owner_gone(self, fd: int, ref: weakref.ref) -> None:
        """A kept entry's owner died without close_fd (a dropped pg.net
        object): the registration goes, then the socket (the entry held it
        open).  GC may run in any thread: the hub does it."""
        rt = self.rt
        if rt.closed:
            return
        if threading.get_ident() != rt.hub_tid:
            try:
                self.loop.call_soon_threadsafe(self._owner_gone, fd, ref)
            except RuntimeError:
                pass  # the loop is closed: close() has it
            return
        ent = self.fds.get(fd)
        if ent is not None and ent.owner is ref:
            self.close_fd(fd)

    def close(self) -> None:
        """The run is over (P0's teardown): close what pg.net holds here
        (the registrations first: libuv must not watch a closed fd)."""
        for fd, ent in list(self.fds.items()):
            self._unregister(fd, ent, False)
            self._unregister(fd, ent, True)
        self.fds.clear()
        for f in list(self.at_close_files.values()):
            f._closed = "use of closed network connection"
            f._sock.close()
        self.at_close_files.clear()
        for fn in reversed(self.at_close):
            try:
                fn()
            except Exception:
                pass
        self.at_close.clear()

    def close_fd(self, fd: int) -> None:
        ent = self.fds.pop(fd, None)
        if ent is None:
            return
        # the entry goes at once: the fd number may be reused by the next
        # socket, whose waits must register afresh
        self._unregister(fd, ent, False)
        self._unregister(fd, ent, True)
        for waiters in (ent.readers, ent.writers):
            for fut in waiters:
                if not fut.done():
                    fut.set_result(CLOSED)


def poller(rt: Any) -> Netpoller:
    """This P's netpoller (made on first use; one per run)."""
    np = rt.__dict__.get("netpoller")
    if np is None:
        np = rt.netpoller = Netpoller(rt)
    return np


def _expire(fut: Any) -> None:
    if not fut.done():
        fut.set_result(TIMEOUT)


def _poll(fd: int, write: bool, deadline: float | None) -> int:
    """A thread's wait: a real poll() with the deadline."""
    p = select.poll()
    p.register(fd, select.POLLOUT if write else select.POLLIN)
    while True:
        if deadline is None:
            ms = None
        else:
            left = deadline - time.time()
            if left <= 0:
                return TIMEOUT
            ms = max(1, int(left * 1000 + 0.999))
        try:
            if p.poll(ms):
                return READY  # POLLHUP/POLLERR/POLLNVAL too: the operation says what
        except InterruptedError:  # pragma: no cover - PEP 475 retries poll itself
            continue


def _rt_and_g(op: str) -> tuple[Any, Any]:
    """(runtime, GreenletG) for a plain goroutine; (rt or None, None) for a
    thread that is no goroutine (or code outside pg.run); ParagoError for an
    async goroutine or the hub's own code, which must not block."""
    rt = state.rt
    if rt is None or rt.closed:
        return None, None
    gs = getattr(greenlet.getcurrent(), "gs", None)
    if gs is not None and gs.__class__ is GreenletG:
        return rt, gs
    if threading.get_ident() != rt.hub_tid:
        return rt, None
    rt.slow_current(op)  # raises: an async goroutine (names the _async form) or hub code
    raise ParagoError(f"{op}: not in a goroutine")  # pragma: no cover


def wait_fd(fd: int, write: bool, deadline: float | None, sock: Any = None, owner: Any = None) -> int:
    """Park the calling goroutine until ``fd`` is readable (``write=False``)
    or writable, the absolute ``deadline`` (``time.time()`` seconds, or
    None) passes, or ``close_fd(fd)`` is called on this P.

    Returns READY, TIMEOUT (also at once for a deadline already passed) or
    CLOSED.  Only the goroutine waits: the P runs its others.  The wait
    shows as ``[IO wait]`` in dumps and counts as an external waiter (never
    a false Deadlock).  Raises ``pg.Shutdown`` when the run ends meanwhile.
    From a thread that is no goroutine it is a real ``poll()``; from an
    async goroutine it raises ParagoError naming ``wait_fd_async``.
    ``sock``/``owner``: fd's socket object and the object that closes it
    (always through ``close_fd`` first): the registration is kept for the
    next wait (module doc).
    """
    rt, gs = _rt_and_g("pg.net wait_fd()")
    if gs is None:
        return _poll(fd, write, deadline)
    delay = None
    if deadline is not None:
        delay = deadline - time.time()
        if delay <= 0:
            return TIMEOUT
    np = poller(rt)
    w = _Waiter(gs)
    np.add(fd, write, w, sock, owner)
    timer = rt.loop.call_later(delay, _expire, w) if delay is not None else None
    np.parked(gs.off, fd, write)
    # park as rt.park_on_future does (an external waiter, "IO wait"), but
    # readiness readies the G itself: no future, no done-callback hop
    rt.n_external += 1
    gs.local_wait = w
    t0 = time.monotonic_ns() if rt.tracer is not None else 0
    try:
        rt.park_local(gs, _IO_WAIT)
    finally:
        rt.n_external -= 1
        if t0:  # --trace: the wait as a slice on the goroutine's row
            rt.tracer.region(gs.goid, f"IO wait: {describe(rt, gs.off)}", t0, time.monotonic_ns())
        np.unparked(gs.off)
        np.remove(fd, write, w)
        if timer is not None:
            timer.cancel()
    return w.res


class _Waiter:
    """A plain goroutine's place in the table: step 4 sets ``res`` and
    readies the G on this P (Runtime.wake_local); an interrupt (teardown)
    cancels it -- the interface of the loop futures that async waits use."""

    __slots__ = ("gs", "res")

    def __init__(self, gs: Any) -> None:
        self.gs = gs
        self.res = -1

    def done(self) -> bool:
        return self.res >= 0

    def set_result(self, r: int) -> None:
        self.res = r
        gs = self.gs
        if gs.local_wait is self:
            gs.rt.wake_local(gs)

    def cancel(self) -> None:
        if self.res < 0:
            self.res = CLOSED


async def wait_fd_async(fd: int, write: bool, deadline: float | None, sock: Any = None, owner: Any = None) -> int:
    """``wait_fd`` for an ``async def`` goroutine (or any task on a P's loop):
    awaits until ``fd`` is ready, the deadline passes or ``close_fd``.
    Outside a P's loop it polls in a thread of the running loop's executor."""
    rt = state.rt
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if rt is None or rt.closed or loop is not rt.loop:
        if loop is None:
            return _poll(fd, write, deadline)
        return await loop.run_in_executor(None, _poll, fd, write, deadline)
    delay = None
    if deadline is not None:
        delay = deadline - time.time()
        if delay <= 0:
            return TIMEOUT
    gs = rt.task_g()
    np = poller(rt)
    fut = loop.create_future()
    np.add(fd, write, fut, sock, owner)
    timer = loop.call_later(delay, _expire, fut) if delay is not None else None
    # the G shows "IO wait" (not counted as parked: an external waiter)
    lib.pg_park_plain(rt.base, gs.off, WR[_IO_WAIT], 0)
    np.parked(gs.off, fd, write)
    rt.n_external += 1
    try:
        return await fut
    except asyncio.CancelledError:
        if rt.shutting_down:
            raise Shutdown from None
        raise
    finally:
        rt.n_external -= 1
        np.unparked(gs.off)
        if not rt.closed:
            lib.pg_unpark_local(rt.base, gs.off, 0)
        np.remove(fd, write, fut)
        if timer is not None:
            timer.cancel()


def close_fd(fd: int) -> None:
    """Wake every goroutine of this P parked on ``fd`` with CLOSED.  Call it
    before closing the fd (a parked wait then ends instead of watching a
    number that may be reused).  Outside a P's hub thread it does nothing."""
    rt = state.rt
    if rt is None or rt.closed or threading.get_ident() != rt.hub_tid:
        return
    np = rt.__dict__.get("netpoller")
    if np is not None:
        np.close_fd(fd)


def describe(rt: Any, g_off: int) -> str | None:
    """``fd 7 read`` for a goroutine of this P parked in the netpoller (dumps)."""
    np = rt.__dict__.get("netpoller")
    if np is None:
        return None
    w = np.waiting.get(g_off)
    if w is None:
        return None
    fd, write = w
    peer = peers.get(fd) if np.at_close_files.get(fd) is not None else None  # a live pg.net conn's
    text = f"fd {fd} {'write' if write else 'read'}"
    return f"{text}, peer {peer}" if peer else text


def kick(fd: int, write: bool) -> None:
    """Wake this P's waiters on fd in one direction as if it were ready:
    they re-check (a deadline moved while they were parked)."""
    rt = state.rt
    if rt is None or rt.closed or threading.get_ident() != rt.hub_tid:
        return
    np = rt.__dict__.get("netpoller")
    if np is not None:
        np._ready(fd, write)


def nwaiters(rt: Any) -> int:
    """Goroutines of this P parked in the netpoller now."""
    np = rt.__dict__.get("netpoller")
    return len(np.waiting) if np is not None else 0


# fd -> the peer ("host:port") of a pg.net connection on this P, for dumps;
# pg.net records it while the conn is open
peers: dict[int, str] = {}

__all__ = ["READY", "TIMEOUT", "CLOSED", "wait_fd", "wait_fd_async", "close_fd", "kick", "describe", "nwaiters", "peers"]
