"""What crosses nodes: a message's bytes (encode, decode, size limit).

A message is pickled here, so Ray never sees a handle.  A handle of this
node inside it travels with its (home, offset): the home takes the arena
reference the decode adopts *before* decoding (xloads), so no separate
message can arrive after the one that needs it (Ray does not order an
async actor's calls).  Used by every part of a node (node.py).
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from .._errors import EncodeError, portable
from .._runtime import codec, handles, ops, state

# the largest message a node sends (a remote operation with its values, an
# answer, a goroutine): Ray carries it through its object store, which holds
# a node's share of memory, not more; $PARAGO_CLUSTER_MAX_MESSAGE bytes
MAX_MESSAGE = 256 << 20
_WITH_REFS = b"R"
BUFFER_MARK = b"parago._buffer"  # in a pickle that holds a pg.Buffer (its class's module)


def max_message() -> int:
    raw = os.environ.get("PARAGO_CLUSTER_MAX_MESSAGE")
    if not raw:
        return MAX_MESSAGE
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1024:
        raise ValueError(f"PARAGO_CLUSTER_MAX_MESSAGE must be a number of bytes >= 1024, got {raw!r}")
    return n


def xdumps(obj: Any) -> bytes:
    """Encode obj for another node: remote handles in their crossing form,
    and the (home, offset) of each with it (module doc)."""
    refs: list[tuple[int, int]] = []
    token = handles.CROSSING.set(refs)
    try:
        data = codec.dumps(obj, "value")
    finally:
        handles.CROSSING.reset(token)
    if not refs:
        return data  # a pickle: starts with its PROTO opcode, never with _WITH_REFS
    return _WITH_REFS + pickle.dumps((refs, data), 5)


def xloads(blob: bytes) -> Any:
    """Decode what xdumps (or a plain pickle.dumps) encoded, on this node."""
    if blob[:1] != _WITH_REFS:
        return codec.loads(blob)
    refs, data = pickle.loads(blob[1:])
    rt = state.rt
    mine = [off for home, off in refs if home == rt.nonce]  # its other handles stay remote here: nothing to take
    if mine:
        ops.incref_many(rt, mine)
    return codec.loads(data)


def crossing_payload(data: bytes) -> bytes:
    """An unstarted goroutine's payload as this node encoded it, made fit to
    cross: a pg.Buffer inside goes as a copy of its bytes."""
    if BUFFER_MARK in data:
        return xdumps(codec.loads(data))
    return data


capture = portable  # e, if it pickles; else a ParagoError that says what it was


def sized(data: bytes, what: str, limit: int) -> bytes:
    """data, if it may cross nodes; else EncodeError in the caller (nothing was sent)."""
    if len(data) > limit:
        raise EncodeError(
            f"{what} is {len(data):,} bytes encoded: too large to cross nodes (the limit is "
            f"{limit:,} bytes, $PARAGO_CLUSTER_MAX_MESSAGE; Ray carries it through its object store). "
            "Send it in parts, or keep it on one node"
        )
    return data


def what(msg: tuple) -> str:
    """A request as an EncodeError names it."""
    if msg[0] == "op":
        return f"the arguments of {msg[4].lstrip('@')}()"
    return f"a {msg[0]} request"
