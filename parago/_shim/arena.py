"""The shared arena as seen from one process.

Owns: the memfd, this process's mapping of it, and the memoryviews that
Python reads arena fields through (built from the C layout table).  P0
creates the arena (and is the only one to release it, STYLE 12); every
other P attaches to the fd it was handed.  Nothing is ever named in
/dev/shm.

    P0: memfd_create -> ftruncate(size) -> seal(SHRINK) -> mmap -> pg_arena_init
    Pn: mmap(fd passed at start) -> pg_arena_attach (checks ABI + layout hash)
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os

from . import LAYOUT_HASH, NOMEM, OK, lib, offset, sizeof

_F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
_F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x0002)
MAX_ARENA = (1 << 36) - (1 << 20)  # offsets are stored >> 4 in 32 bits

P_BASE = offset("pg_arena", "p")
P_SIZE = sizeof("pg_p")


class LayoutMismatch(RuntimeError):
    pass


def parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = 1
    for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40)):
        if t.endswith(suffix):
            t, mult = t[:-1], m
            break
    try:
        n = int(float(t) * mult)
    except ValueError:
        raise ValueError(f"PARAGO_ARENA_SIZE: cannot parse {text!r} (e.g. 512M, 4G)") from None
    if n < (8 << 20):
        raise ValueError(f"PARAGO_ARENA_SIZE must be >= 8M, got {text!r}")
    return min(n, MAX_ARENA)


def default_size() -> int:
    env = os.environ.get("PARAGO_ARENA_SIZE")
    if env:
        return parse_size(env)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 << 30
    return min(MAX_ARENA, max(256 << 20, total // 2))


class Arena:
    """One process's mapping of the arena."""

    def __init__(self, fd: int, size: int, owner: bool) -> None:
        self.fd = fd
        self.size = size
        self.owner = owner
        self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._anchor = ctypes.c_char.from_buffer(self.mm)
        self.base = ctypes.addressof(self._anchor)
        self.mv = memoryview(self.mm)
        self.q = self.mv.cast("Q")  # uint64 view: index = offset // 8
        self.i = self.mv.cast("q")  # int64 view
        self.u32 = self.mv.cast("I")  # uint32 view: index = offset // 4
        self.closed = False

    @classmethod
    def create(cls, size: int, nprocs: int, nonce: int) -> "Arena":
        fd = os.memfd_create("parago-arena", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            fcntl.fcntl(fd, _F_ADD_SEALS, _F_SEAL_SHRINK)
            a = cls(fd, size, owner=True)
        except BaseException:
            os.close(fd)
            raise
        rc = lib.pg_arena_init(a.base, fd, size, nonce, nprocs)
        if rc != OK:
            a.close()
            raise MemoryError("pg_arena_init: cannot commit the arena header")
        a._attach()
        return a

    @classmethod
    def attach(cls, fd: int) -> "Arena":
        size = os.fstat(fd).st_size
        a = cls(fd, size, owner=False)
        a._attach()
        return a

    def _attach(self) -> None:
        abi, h = ctypes.c_uint32(), ctypes.c_uint32()
        if lib.pg_arena_attach(self.base, self.fd, ctypes.byref(abi), ctypes.byref(h)) != OK:
            self.close()
            from . import CONST

            raise LayoutMismatch(
                f"pg_arena_attach: the arena was built with ABI {abi.value} layout "
                f"{h.value:#010x}, this shim has ABI {CONST['PG_ABI_VERSION']} layout "
                f"{LAYOUT_HASH:#010x}: every P must load the same parago build"
            )

    # ---- field access (offsets from the C table) ----
    def hdr_u64(self, field: str) -> int:
        return self.q[offset("pg_arena", field) // 8]

    def hdr_i64(self, field: str) -> int:
        return self.i[offset("pg_arena", field) // 8]

    def hdr_u32(self, field: str) -> int:
        return self.u32[offset("pg_arena", field) // 4]

    def p_field(self, p: int, field: str) -> int:
        return P_BASE + p * P_SIZE + offset("pg_p", field)

    def alloc(self, n: int) -> int:
        off = lib.pg_malloc(self.base, n)
        if off == NOMEM:
            from .._errors import OutOfSharedMemory

            raise OutOfSharedMemory.for_size(n, self.size)
        return off

    def free(self, off: int) -> None:
        lib.pg_mfree(self.base, off)

    def read(self, off: int, n: int) -> bytes:
        return bytes(self.mv[off : off + n])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for v in (self.q, self.i, self.u32):
            v.release()
        self.mv.release()
        del self._anchor
        try:
            self.mm.close()
        except BufferError:
            # a memoryview of a pg.Buffer is still exported: P0 keeps the
            # mapping alive until it is released (DESIGN "Teardown")
            _leaked_maps.append(self.mm)
        try:
            os.close(self.fd)
        except OSError:
            pass


_leaked_maps: list[mmap.mmap] = []
