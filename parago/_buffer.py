"""pg.Buffer: a block of shared arena memory, zero copy across Ps.

A Buffer is a handle whose bytes are the arena itself: this process maps
exactly that block of the arena's memfd (page aligned), so
``memoryview(buf)`` and ``numpy.asarray(buf)`` see the same bytes in every
P, and sending a Buffer on a channel moves only its handle.  It is freed
when no P holds it any more (shared reference count).  A memoryview of it
stays valid after pg.run returns (its own mapping keeps the pages).
"""

from __future__ import annotations

import mmap
from typing import Any

from ._errors import OutOfSharedMemory
from ._runtime import handles, park
from ._runtime.handles import HandleMixin
from ._runtime.ops import check, lib, views

PAGE = mmap.PAGESIZE


class Buffer(HandleMixin, mmap.mmap):
    """``pg.Buffer(nbytes)``: nbytes of zeroed shared memory.

    Supports the buffer protocol (``memoryview(buf)``, ``numpy.asarray(buf)``,
    ``bytes(buf)``), indexing and slicing like ``mmap``.  Raises ValueError
    for nbytes < 1, OutOfSharedMemory when the arena cannot hold it.
    """

    _kind = "Buffer"

    def __new__(cls, nbytes: int) -> "Buffer":
        if isinstance(nbytes, bool) or not isinstance(nbytes, int):
            raise TypeError(f"nbytes must be an int, got {type(nbytes).__name__}")
        if nbytes < 1:
            raise ValueError(f"nbytes must be >= 1, got {nbytes}")
        rt = park.runtime("pg.Buffer()")
        if nbytes > rt.arena.size:
            raise OutOfSharedMemory.for_size(nbytes, rt.arena.size)
        off = check(lib.pg_buffer_new(rt.base, nbytes + PAGE), "pg.Buffer", nbytes)
        views.sync_set_word(rt.arena, off, "pg_buf", "nbytes", nbytes)  # written before the handle exists anywhere
        return cls._new(rt, off)

    def __init__(self, *a: Any, **kw: Any) -> None:
        pass

    @classmethod
    def _make(cls, rt: Any, off: int, gen: int) -> "Buffer":
        a = rt.arena
        nbytes, data = views.buffer_geometry(a, off, PAGE)
        b = mmap.mmap.__new__(cls, a.fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=data)
        b._bind(rt, off, gen)
        return b

    @property
    def nbytes(self) -> int:
        return len(self)

    def __reduce_ex__(self, protocol: int) -> tuple:  # type: ignore[override]
        return self.__reduce__()

    def __reduce__(self) -> tuple:
        if handles.CROSSING.get() is not None:  # leaving this machine's arena: its bytes, copied once
            return (_from_bytes, (bytes(self),))
        return HandleMixin.__reduce__(self)

    def __eq__(self, other: object) -> bool:
        return HandleMixin.__eq__(self, other)

    def __hash__(self) -> int:
        return HandleMixin.__hash__(self)

    def __repr__(self) -> str:
        return f"<pg.Buffer {len(self)} bytes at {getattr(self, '_off', 0):#x}>"

    def __del__(self) -> None:
        HandleMixin.__del__(self)


def _from_bytes(data: bytes) -> Buffer:
    """A Buffer that crossed nodes (a cluster run): a new one here, holding
    a copy of the sender's bytes."""
    b = Buffer(max(1, len(data)))
    b[: len(data)] = data
    return b
