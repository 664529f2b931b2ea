"""Channels and select: Go's chan in the shared arena (shm/chan.c).

A Chan is a handle: passing it to pg.go, sending it on a channel or
pickling it refers to the *same* channel, on every P.  Values are copies:
encoded in the sender (pickle, or msgspec for typed channels, where the
strict type check also happens in the sender, before anything is
enqueued) and decoded in the receiver.  One foreign call per operation on
the fast path; the batched forms move many values per call.
"""

from __future__ import annotations

import ctypes
import functools
import pickle
import struct
import threading
from typing import Any, Iterable, Iterator

import greenlet
import msgspec

from ._errors import (
    ChanTypeError,
    DecodeError,
    EndOfChannel,
    OutOfSharedMemory,
)
from ._runtime import codec, ops, park
from ._runtime.cluster import hooks
from ._runtime.g import WR
from ._runtime.handles import CrossHome, Handle, HandleMixin
from ._runtime.ops import CLOSED, OK, PARKED, WOULDBLOCK, Wake, check, error, fast, lib, views

_MAXCAP = (1 << 32) - 1

_SCALARS = (int, float, str, bytes, type(None), bool)
_send = fast.pg_chan_send
_recv = fast.pg_chan_recv
_recv_finish = fast.pg_chan_recv_finish
_OCAP = ctypes.c_uint64(65536)
_dumps = pickle.dumps
_loads = pickle.loads


# Go's zero values, for a receive on a closed, drained typed channel
# (``v, ok := <-ch`` gives 0 for a chan int); other element types: None
_ZERO_OF: dict[Any, Any] = {int: 0, float: 0.0, str: "", bool: False, bytes: b""}


def _zero_of(t: Any) -> Any:
    try:
        return _ZERO_OF.get(t)
    except TypeError:  # an unhashable type annotation
        return None


def _typename(t: Any) -> str:
    if isinstance(t, _TypedChan):
        return repr(t)
    return getattr(t, "__name__", None) or repr(t)


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, HandleMixin):
        return msgspec.msgpack.Ext(1, codec.dumps(obj))
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: memoryview) -> Any:
    if code == 1:
        return codec.loads(data)
    return msgspec.msgpack.Ext(code, bytes(data))


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


class _TypedChan:
    """``pg.Chan[T]``: a factory for channels of element type T (also usable
    as an element type: ``pg.Chan[pg.Chan[int]]``)."""

    __slots__ = ("T",)

    def __init__(self, T: Any) -> None:
        self.T = T

    def __call__(self, cap: int = 0) -> "Chan":
        return Chan(cap, type=self.T)

    def __repr__(self) -> str:
        return f"pg.Chan[{_typename(self.T)}]"

    def __eq__(self, o: object) -> bool:
        return isinstance(o, _TypedChan) and o.T == self.T

    def __hash__(self) -> int:
        return hash(("Chan", self.T))

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, Chan) and obj.type == self.T


class _Codec:
    """How one element type is encoded, checked and decoded."""

    __slots__ = ("T", "check", "dec", "name", "strict")

    def __init__(self, T: Any) -> None:
        self.T = T
        self.name = _typename(T)
        self.strict = False
        if isinstance(T, _TypedChan) or (isinstance(T, type) and issubclass(T, HandleMixin)):
            self.check = self._check_instance
            self.dec = msgspec.msgpack.Decoder(ext_hook=_ext_hook)
        else:
            try:
                self.dec = msgspec.msgpack.Decoder(T, ext_hook=_ext_hook)
            except TypeError as e:
                raise TypeError(f"pg.Chan: msgspec cannot handle element type {self.name}: {e}") from None
            self.check = self._check_strict
            self.strict = True

    def _check_instance(self, v: Any) -> None:
        if not isinstance(v, self.T):
            raise ChanTypeError(f"send on pg.Chan[{self.name}]: expected {self.name}, got {type(v).__name__}")

    def _check_strict(self, v: Any) -> None:
        pass  # done in encode: the encoded value must decode as T, strictly

    def encode(self, v: Any) -> bytes:
        self.check(v)
        T = self.T
        try:
            data = _encoder.encode(v)
        except (TypeError, NotImplementedError, OverflowError) as e:
            raise ChanTypeError(
                f"send on pg.Chan[{self.name}]: expected {self.name}, got {type(v).__name__} ({e})"
            ) from None
        if self.strict and not (type(v) is T and T in _SCALARS):
            # msgspec's strict rules (a bool is not an int), checked in the sender
            # on exactly what the receiver will decode -- also inside Structs
            try:
                self.dec.decode(data)
            except msgspec.ValidationError as e:
                raise ChanTypeError(
                    f"send on pg.Chan[{self.name}]: expected {self.name}, got {type(v).__name__} ({e})"
                ) from None
        return data


_codecs: dict[Any, _Codec] = {}


class Chan(Handle):
    """A channel (Go's ``make(chan T, cap)``), shared by every P.

    ``cap=0`` is unbuffered: a send blocks until a receiver takes the value
    (synchronous hand-off).  With ``type``, values are validated strictly
    in the sender and encoded with msgspec; without, pickled.  FIFO per
    channel.  Blocked senders and receivers are served in arrival order.
    ``close`` wakes every receiver (they drain, then see the end) and every
    blocked sender (they raise).  ``len(ch)`` is a racy snapshot.
    """

    __slots__ = ("_cap", "_type", "_codec", "_zero")
    _kind = "channel"

    def __new__(cls, cap: int = 0, type: Any = None) -> "Chan":
        if isinstance(cap, bool) or not isinstance(cap, int):
            raise TypeError(f"cap must be an int, got {_typename(cap.__class__)}")
        if cap < 0:
            raise ValueError(f"cap must be >= 0, got {cap}")
        rt = park.runtime("pg.Chan()")
        if cap > _MAXCAP:
            raise OutOfSharedMemory.for_size(cap * 64, rt.arena.size)
        if type is not None:
            _get_codec(type)  # reject unsupported types before allocating
            tb = pickle.dumps(type)
        else:
            tb = b""
        off = check(lib.pg_chan_new(rt.base, cap, tb, len(tb)), "pg.Chan", cap * 64 + 128)
        return cls._new(rt, off)

    def __class_getitem__(cls, T: Any) -> _TypedChan:
        return _TypedChan(T)

    def _load(self, rt: Any) -> None:
        a = rt.arena
        self._cap = views.chan_cap(a, self._off)
        tb = views.chan_type(a, self._off)
        if tb is not None:
            self._type = pickle.loads(tb)
            self._codec = _get_codec(self._type)
        else:
            self._type = None
            self._codec = None  # type: ignore[assignment]
        self._zero = _zero_of(self._type)

    # ---- properties ----
    @property
    def cap(self) -> int:
        return self._cap

    @property
    def type(self) -> Any:
        """The element type, or None for an untyped channel."""
        return self._type

    @property
    def closed(self) -> bool:
        """Whether the channel was closed (a racy snapshot)."""
        return bool(views.chan_closed(self._live_rt().arena, self._off))

    def __len__(self) -> int:
        """Values buffered now (a racy snapshot, as Go's len(ch))."""
        return views.chan_qcount(self._live_rt().arena, self._off)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        t = f"[{_typename(self._type)}]" if self._type is not None else ""
        return f"<pg.Chan{t} cap={self._cap} at {self._off:#x}>"

    # ---- encoding ----
    def _encode(self, v: Any) -> tuple[bytes, list[int]]:
        """(encoded value, offsets of the handles inside it).  The caller
        takes the payload's references (_hold) just before publishing it and
        drops them (_drop) if the value is not delivered after all."""
        refs: list[int] = []
        c = self._codec
        if c is None:
            if v.__class__ in _SCALARS:
                return _dumps(v, 5), refs
            return codec.dumps(v, "value", refs), refs
        with codec.collecting(codec.ENC_REFS, refs):  # handles inside: msgspec's enc_hook -> codec.dumps
            return c.encode(v), refs

    def _hold(self, rt: Any, refs: list[int]) -> None:
        ops.incref_many(rt, refs)

    def _drop(self, rt: Any, refs: list[int]) -> None:
        for r in refs:
            rt.decref_later(r)

    def _decode(self, data: Any) -> Any:
        try:
            c = self._codec
            if c is None:
                return _loads(data)
            return c.dec.decode(data)
        except Exception as e:
            raise self._decode_error(e) from e

    def _decode_error(self, e: Exception) -> DecodeError:
        return DecodeError(f"cannot decode a value received on {self!r}: {type(e).__name__}: {e}")

    def _take(self, rt: Any, gs: Any, r: int) -> Any:
        """Turn a recv status into the value (r >= 0 or BIG)."""
        if r >= 0:
            return self._decode(gs.obuf_mv[:r])
        check(r, "recv")
        out = gs.out
        data = rt.arena.read(out[0], out[1])
        lib.pg_mfree(rt.base, out[0])
        return self._decode(data)

    # ---- send ----
    def send(self, v: Any) -> None:
        """Send v: blocks until a receiver takes it (unbuffered) or it is buffered.

        Raises: ClosedChannelError("send on closed channel"); ChanTypeError
        (typed channel, wrong type: nothing is enqueued); EncodeError;
        OutOfSharedMemory.
        """
        rt = self._rt
        if rt.attn:  # closed, or a preemption request: yield here
            self._live_rt()
        if self._codec is None and v.__class__ in _SCALARS:
            data, refs = _dumps(v, 5), None
        else:
            data, refs = self._encode(v)
            if refs:
                self._hold(rt, refs)
        gs = getattr(greenlet.getcurrent(), "gs", None) or rt.slow_current("ch.send()")
        n = len(data)
        # park protocol (park.py): begin -- one foreign call
        if n < 0x7FFFFFFF:
            r = _send(rt.cbase, self._c, gs.c, data, n, 1)
        else:
            r = lib.pg_chan_send(rt.base, self._off, gs.off, data, n, 1)
        if r == OK:
            return
        if r == PARKED:  # on an interrupt the handles' references go back (a partial:
            # a closure's cells would slow every send, parked or not)
            park.park(gs, functools.partial(self._drop, rt, refs) if refs else None)
        self._send_finish(rt, gs, r, refs, n)

    async def send_async(self, v: Any) -> None:
        """``await ch.send_async(v)``: send() for async goroutines."""
        rt = self._live_rt()
        data, refs = self._encode(v)
        gs = rt.task_g()
        if refs:
            self._hold(rt, refs)
        r = lib.pg_chan_send(rt.base, self._off, gs.off, data, len(data), 1)
        if r == PARKED:
            await park.park_async(gs, functools.partial(self._drop, rt, refs) if refs else None)
        self._send_finish(rt, gs, r, refs, len(data))

    def _send_finish(self, rt: Any, gs: Any, r: int, refs: list[int] | None, n: int) -> None:
        """finish: a woken send either delivered (WAKE_OK) or saw the close;
        a failed send gives its handles' references back and raises."""
        if r == PARKED:
            if gs.wake_res() == Wake.OK:
                return
            r = CLOSED
        elif r == OK:
            return
        if refs:
            self._drop(rt, refs)
        raise error(r, "send", n)

    def _try_send(self, v: Any) -> bool:
        """Non-blocking send (for timers and pools): True if delivered."""
        rt = self._live_rt()
        data, refs = self._encode(v)
        if refs:
            self._hold(rt, refs)
        r = lib.pg_chan_send(rt.base, self._off, 0, data, len(data), 0)
        if r != OK and refs:
            self._drop(rt, refs)
        if r != CLOSED:
            check(r, "try_send", len(data))
        return r == OK

    def _try_recv(self) -> tuple[Any, bool]:
        """Non-blocking receive (pools, futures, errgroups): from any
        goroutine, task or thread; never parks."""
        rt = self._live_rt()
        if threading.get_ident() == rt.hub_tid:
            buf = rt  # the hub thread's buffers (nothing switches before the decode)
        else:
            buf = rt.slow_current("ch.recv()")
        r = lib.pg_chan_recv(rt.base, self._off, 0, 0, buf.obuf, rt.OBUF, buf.out)
        if r == WOULDBLOCK or r == CLOSED:
            return None, False
        return self._take(rt, buf, r), True

    # ---- recv ----
    def recv(self) -> Any:
        """Receive a value; blocks until one is there.

        Raises: EndOfChannel once the channel is closed and drained;
        DecodeError if the value cannot be decoded in this P.
        """
        v, ok = self.recv_ok()
        if not ok:
            raise EndOfChannel(f"recv on closed channel {self!r}")
        return v

    def recv_ok(self) -> tuple[Any, bool]:
        """Go's ``v, ok := <-ch``: (value, True), or (zero, False) when closed
        and drained -- zero is the element type's zero value (``Chan[int]``:
        0, str: "", float: 0.0, bool: False, bytes: b""), None for other
        types and untyped channels."""
        rt = self._rt
        if rt.attn:  # closed, or a preemption request: yield here
            self._live_rt()
        gs = getattr(greenlet.getcurrent(), "gs", None) or rt.slow_current("ch.recv()")
        r = _recv(rt.cbase, self._c, gs.c, 1, gs.obuf, _OCAP, gs.out)
        if r >= 0:
            if self._codec is None:
                try:
                    return _loads(gs.obuf_mv[:r]), True
                except Exception as e:
                    raise self._decode_error(e) from e
            return self._decode(gs.obuf_mv[:r]), True
        if r == PARKED:
            park.park(gs)
            r = _recv_finish(rt.cbase, gs.c, gs.obuf, _OCAP, gs.out)
        return self._recv_finish(rt, gs, r)

    def _recv_finish(self, rt: Any, gs: Any, r: int) -> tuple[Any, bool]:
        """finish: the value (in obuf, or a payload block), or the end."""
        if r == CLOSED:
            return self._zero, False
        return self._take(rt, gs, r), True

    async def recv_async(self) -> Any:
        """``await ch.recv_async()``: recv() for async goroutines."""
        v, ok = await self.recv_ok_async()
        if not ok:
            raise EndOfChannel(f"recv on closed channel {self!r}")
        return v

    async def recv_ok_async(self) -> tuple[Any, bool]:
        """``await ch.recv_ok_async()``: recv_ok() for async goroutines."""
        rt = self._live_rt()
        gs = rt.task_g()
        r = lib.pg_chan_recv(rt.base, self._off, gs.off, 1, gs.obuf, 65536, gs.out)
        if r == PARKED:
            await park.park_async(gs)
            r = lib.pg_chan_recv_finish(rt.base, gs.off, gs.obuf, 65536, gs.out)
        return self._recv_finish(rt, gs, r)

    def __iter__(self) -> Iterator[Any]:
        """``for v in ch``: receive until closed and drained."""
        while True:
            v, ok = self.recv_ok()
            if not ok:
                return
            yield v

    def __aiter__(self) -> "Chan":
        return self

    async def __anext__(self) -> Any:
        v, ok = await self.recv_ok_async()
        if not ok:
            raise StopAsyncIteration
        return v

    # ---- close ----
    def close(self) -> None:
        """Close: receivers drain what is buffered, then see the end; blocked
        senders raise.  Raises ClosedChannelError("close of closed channel")."""
        rt = self._live_rt()
        check(lib.pg_chan_close(rt.base, self._off), "close")

    # ---- batches ----
    def send_many(self, iterable: Iterable[Any]) -> int:
        """Send every value in order (one arena round trip per batch that fits).

        Returns the number sent.  If it fails part-way, the exception
        (ClosedChannelError, OutOfSharedMemory) carries ``.sent``, the number
        delivered.  Values are all encoded first: an encoding error sends none.
        """
        rt = self._live_rt()
        datas: list[bytes] = []
        held: dict[int, list[int]] = {}  # value index -> its handles' offsets
        scalar = self._codec is None
        for v in iterable:
            if scalar and v.__class__ in _SCALARS:
                datas.append(_dumps(v, 5))
            else:
                d, refs = self._encode(v)
                if refs:
                    held[len(datas)] = refs
                datas.append(d)
        if not datas:
            return 0
        if held:
            self._hold(rt, [r for rs in held.values() for r in rs])
        try:
            return self._send_many(rt, datas)
        except BaseException as e:
            sent = getattr(e, "sent", 0)
            undelivered = [r for i, rs in held.items() if i >= sent for r in rs]
            if undelivered:
                self._drop(rt, undelivered)
            raise

    def _send_many(self, rt: Any, datas: list[bytes]) -> int:
        n = len(datas)
        gs = park.current(rt, "ch.send_many()")
        blob = b"".join(datas)
        lens = struct.pack(f"{n}I", *map(len, datas))
        baddr = ctypes.cast(ctypes.c_char_p(blob), ctypes.c_void_p).value or 0
        laddr = ctypes.cast(ctypes.c_char_p(lens), ctypes.c_void_p).value or 0
        sent = pos = 0
        out = gs.out
        while sent < n:
            r = lib.pg_chan_send_many(rt.base, self._off, gs.off, baddr + pos, laddr + 4 * sent, n - sent, 1, out)
            k = out[0]
            pos += sum(map(len, datas[sent : sent + k])) if k < n - sent else 0
            sent += k
            if r >= 0:
                continue
            if r == PARKED:
                try:
                    park.park(gs)
                except BaseException as ex:  # tell the caller how many went
                    ex.sent = sent  # type: ignore[attr-defined]
                    raise
                if gs.wake_res() == Wake.OK:
                    pos += len(datas[sent])
                    sent += 1
                    continue
                r = CLOSED
            e = error(r, "send", len(datas[sent]))
            e.sent = sent  # type: ignore[attr-defined]
            raise e
        return sent

    def _unpickle_batch(self, gs: Any, n: int) -> list[Any]:
        return _unpickle_batch_impl(self, gs, n)

    def recv_many(self, max_n: int) -> list[Any]:
        """Receive between 1 and max_n values (blocks for at least one).

        Raises EndOfChannel once the channel is closed and drained.
        """
        if isinstance(max_n, bool) or not isinstance(max_n, int):
            raise TypeError(f"max_n must be an int, got {type(max_n).__name__}")
        if max_n < 1:
            raise ValueError(f"max_n must be >= 1, got {max_n}")
        rt = self._live_rt()
        gs = park.current(rt, "ch.recv_many()")
        # at most what one call can hand over anyway (a u64 in C: never let a
        # huge int wrap around to 0)
        n = max_n if max_n < 0xFFFFFFFF else 0xFFFFFFFF
        r = check(lib.pg_chan_recv_many(rt.base, self._off, gs.off, n, 1, gs.obuf, 65536, gs.out), "recv")
        if r > 0:
            if self._codec is None:
                return self._unpickle_batch(gs, r)
            mv = gs.obuf_mv
            dec = self._decode
            res = []
            pos = 0
            unpack = struct.unpack_from
            for _ in range(r):
                (ln,) = unpack("I", mv, pos)
                res.append(dec(mv[pos + 4 : pos + 4 + ln]))
                pos += 4 + ln
            return res
        if r == PARKED:
            park.park(gs)
            r = lib.pg_chan_recv_finish(rt.base, gs.off, gs.obuf, 65536, gs.out)
        if r == CLOSED:
            raise EndOfChannel(f"recv on closed channel {self!r}")
        return [self._take(rt, gs, r)]


def _unpickle_batch_impl(ch: "Chan", gs: Any, n: int) -> list[Any]:
    """n values packed [u32 length][pickle]...: each value was pickled on its
    own, so each is loaded on its own.  (One Unpickler for the batch, its
    memo cleared between values, is faster but wrong: C's MEMOIZE keeps
    counting from the old memo's length, so a value that memoizes -- any
    with a handle inside -- fails with "Memo value not found".)"""
    mv = gs.obuf_mv
    unpack, loads = struct.unpack_from, _loads
    res = []
    pos = 0
    try:
        for _ in range(n):
            (ln,) = unpack("I", mv, pos)
            res.append(loads(mv[pos + 4 : pos + 4 + ln]))
            pos += 4 + ln
    except Exception as e:
        raise ch._decode_error(e) from e
    return res


def _get_codec(T: Any) -> _Codec:
    c = _codecs.get(T)
    if c is None:
        c = _codecs[T] = _Codec(T)
    return c


# ----------------------------------------------------------------------
# select


class Recv:
    """A select case receiving from ch (``None``: a nil channel, never ready)."""

    __slots__ = ("ch",)

    def __init__(self, ch: Chan | None) -> None:
        if ch is not None and not isinstance(ch, Chan):
            raise TypeError(f"pg.Recv: expected a pg.Chan or None, got {type(ch).__name__}")
        self.ch = ch

    def __repr__(self) -> str:
        return f"pg.Recv({self.ch!r})"


class Send:
    """A select case sending value on ch (``None``: a nil channel, never ready)."""

    __slots__ = ("ch", "value")

    def __init__(self, ch: Chan | None, value: Any) -> None:
        if ch is not None and not isinstance(ch, Chan):
            raise TypeError(f"pg.Send: expected a pg.Chan or None, got {type(ch).__name__}")
        self.ch = ch
        self.value = value

    def __repr__(self) -> str:
        return f"pg.Send({self.ch!r}, {self.value!r})"


_packers: dict[int, struct.Struct] = {}  # number of cases -> the pg_case_t[n] packer
_C0 = ctypes.c_uint64(0)
_NIL, _RECV, _SEND = ops.SELDIR_NIL, ops.SELDIR_RECV, ops.SELDIR_SEND
_RES_VALUE, _RES_BLOCK, _RES_CLOSED, _RES_SENT = ops.SEL_VALUE, ops.SEL_BLOCK, ops.SEL_CLOSED, ops.SEL_SENT


class _Select:
    """One select: its cases packed for pg_select, every Send value encoded
    first (DESIGN: an encoding error raises even if another case would win),
    and the handle references those values carry until one is delivered."""

    __slots__ = ("packed", "blob", "chans", "live", "allrefs", "n")

    def __init__(self, cases: tuple) -> None:
        allrefs: list[tuple[int, list[int]]] = []  # (case, handle offsets) of Send values
        flat: list[int] = []
        blobs: list[bytes] = []
        pos = 0
        live = False
        chans: list = []
        for i, c in enumerate(cases):
            t = c.__class__
            ch = c.ch if t is Recv or t is Send else None
            if c is None or ch is None:
                if c is not None and t is not Recv and t is not Send:
                    raise TypeError(
                        f"select: case {i} must be pg.Recv(ch), pg.Send(ch, v) or None, got {type(c).__name__}"
                    )
                flat += (0, _NIL, 0, 0)
                chans.append(None)
                continue
            ch._live_rt()
            live = True
            chans.append(ch)
            if t is Recv:
                flat += (ch._off, _RECV, 0, 0)
            else:
                data, refs = ch._encode(c.value)
                flat += (ch._off, _SEND, len(data), pos)
                blobs.append(data)
                pos += len(data)
                if refs:
                    allrefs.append((i, refs))
        n = len(cases)
        packer = _packers.get(n)
        if packer is None:
            packer = _packers[n] = struct.Struct("<" + n * "QIIQ")
        self.packed = packer.pack(*flat)
        self.blob = b"".join(blobs) if blobs else b""
        self.chans = chans
        self.live = live
        self.allrefs = allrefs
        self.n = n

    def begin(self, rt: Any, gs: Any, default: bool) -> int:
        """park protocol: begin -- poll every case in a random order, or
        queue a sudog on each (all sharing the G's one ticket)."""
        if self.allrefs:
            ops.incref_many(rt, [r for _, rs in self.allrefs for r in rs])
        # the fast call: seed 0 (C draws it) and the capacity are prebuilt
        # 64-bit words -- they pass on the stack, where a plain int fills 4 bytes
        r = fast.pg_select(
            rt.cbase, gs.c, self.packed, self.n, self.blob, 0 if default else 1, _C0, gs.obuf, rt.c_ocap, gs.out
        )
        if r == OK:  # the common case: a case was ready
            if self.allrefs:
                self._drop_refs(rt, gs, r)
            return r
        if r != PARKED:
            self._drop_refs(rt, gs, r)
        return check(r, "select")

    def after_park(self, rt: Any, gs: Any) -> int:
        """finish, part 1: dequeue the losing sudogs (also after an interrupt)."""
        r = lib.pg_select_finish(rt.base, gs.off, self.packed, self.n, gs.obuf, 65536, gs.out)
        self._drop_refs(rt, gs, r)
        return check(r, "select")

    def _drop_refs(self, rt: Any, gs: Any, r: int) -> None:
        """The Send values that were not delivered give their references back."""
        if not self.allrefs:
            return
        sent = gs.out[0] if r == OK and gs.out[1] == _RES_SENT else -1
        for i, rs in self.allrefs:
            if i != sent:
                for off in rs:
                    rt.decref_later(off)

    def result(self, rt: Any, gs: Any, r: int) -> tuple[int, Any, bool]:
        """finish, part 2: (index, value, ok) as Go's select."""
        if r == WOULDBLOCK:
            return -1, None, False
        out = gs.out
        i, kind = out[0], out[1]
        if kind == _RES_VALUE:
            return i, self.chans[i]._decode(gs.obuf_mv[: out[2]]), True
        if kind == _RES_BLOCK:
            data = rt.arena.read(out[3], out[2])
            lib.pg_mfree(rt.base, out[3])
            return i, self.chans[i]._decode(data), True
        if kind == _RES_CLOSED:
            return i, self.chans[i]._zero, False  # Go: the element type's zero value
        if kind == _RES_SENT:
            return i, None, True
        raise error(CLOSED, "send")  # a chosen Send case on a closed channel


def select(*cases: Any, default: bool = False) -> tuple[int, Any, bool]:
    """Go's select: wait until one case can proceed; run it.

    Cases are ``pg.Recv(ch)``, ``pg.Send(ch, v)`` or ``None`` (a nil
    channel: never ready).  Among ready cases one is chosen uniformly at
    random.  Returns ``(index, value, ok)``: value is the received value
    (None for a send); ok is False only for a Recv on a closed, drained
    channel (and for default).  ``default=True`` never blocks and returns
    ``(-1, None, False)`` when nothing is ready.  No live case and no
    default blocks forever (Go's ``select {}``).  A chosen Send on a closed
    channel raises ClosedChannelError.
    """
    rt = park.runtime("pg.select()")
    try:
        sel = _Select(cases)
    except CrossHome:  # a channel of another node (a cluster run)
        return hooks.select(cases, default)  # type: ignore[misc]  # registered: a remote handle exists
    gs = park.current(rt, "pg.select()")
    if not sel.live:
        if default:
            return -1, None, False
        lib.pg_park_plain(rt.base, gs.off, WR["select (no cases)"], 1)
        while True:  # only an interrupt ends it (a stale ready parks again)
            park.park(gs)
    r = sel.begin(rt, gs, default)
    if r == PARKED:
        try:
            park.park(gs)
        finally:  # finish either way: dequeue the other cases
            r = sel.after_park(rt, gs)
    return sel.result(rt, gs, r)


async def select_async(*cases: Any, default: bool = False) -> tuple[int, Any, bool]:
    """``await pg.select_async(...)``: select for async goroutines."""
    rt = park.runtime("pg.select_async()")
    try:
        sel = _Select(cases)
    except CrossHome:
        return await hooks.select_async(cases, default)  # type: ignore[misc]
    gs = rt.task_g()
    if not sel.live:
        if default:
            return -1, None, False
        lib.pg_park_plain(rt.base, gs.off, WR["select (no cases)"], 1)
        while True:  # only an interrupt ends it (a stale ready parks again)
            await park.park_async(gs)
    r = sel.begin(rt, gs, default)
    if r == PARKED:
        try:
            await park.park_async(gs)
        finally:  # finish either way: dequeue the other cases
            r = sel.after_park(rt, gs)
    return sel.result(rt, gs, r)
