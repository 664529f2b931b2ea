"""A stored-value block: a value kept in the arena for any P to decode.

Once's result and a context's cause are kept in one (atomic.Value's record
has the same layout, shm/atomics.c):

    [u32 0][u32 nrefs][u64 refs: nrefs][encoded value]

refs: the handles inside the value, one arena reference each, owned by the
block and dropped with the object that stores it (pg_value_free).  Here, not
in an API module, so that both parago._sync and parago._context use it
without importing each other.
"""

from __future__ import annotations

import struct
from typing import Any

from . import codec, ops

BLOCK_HDR = struct.Struct("<II")


def stored_block(rt: Any, v: Any, what: str = "Once result") -> bytes:
    """v's encoding in a stored-value block; takes its handles' references."""
    refs: list[int] = []
    payload = codec.dumps(v, what, refs)
    if refs:
        ops.incref_many(rt, refs)
    return b"".join((BLOCK_HDR.pack(0, len(refs)), struct.pack(f"<{len(refs)}Q", *refs), payload))


def block_payload_at(data: bytes) -> int:
    """Where the encoded value starts in a block."""
    return BLOCK_HDR.size + 8 * BLOCK_HDR.unpack_from(data)[1]


def drop_block_refs(rt: Any, data: bytes) -> None:
    """A block that was not stored: its handles' references go back."""
    if data:
        n = BLOCK_HDR.unpack_from(data)[1]
        for off in struct.unpack_from(f"<{n}Q", data, BLOCK_HDR.size):
            rt.decref_later(off)
