"""Go's profile format: a writer (and a small reader) of ``profile.proto``.

``go tool pprof``, Pyroscope and Grafana read profiles as a gzipped
protocol buffer of github.com/google/pprof's ``proto/profile.proto``.
Only the few messages a profile needs are written, by hand (varints and
length-delimited fields; no protobuf dependency):

    Profile   1 sample_type (ValueType)   2 sample      4 location
              5 function    6 string_table  9 time_nanos  10 duration_nanos
              11 period_type (ValueType)   12 period     13 comment
    ValueType 1 type (string index)       2 unit (string index)
    Sample    1 location_id (packed)      2 value (packed)  3 label
    Label     1 key  2 str (string indices)  3 num
    Location  1 id   4 line (Line)
    Line      1 function_id  2 line
    Function  1 id   2 name  3 system_name  4 filename  5 start_line

A location is one (function, line) of Python code; a sample's locations
are innermost first, as pprof expects.  ``read`` decodes what ``write``
produces (and any profile of this schema): the tests check every profile
with it, and with ``go tool pprof`` when Go is installed.
"""

from __future__ import annotations

import gzip
import os
from typing import Any, Iterable, Iterator

Frame = tuple[str, str, int, int]  # (function name, file, line, first line of the function)


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # int64: two's complement, as protobuf encodes negative numbers
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, v: int) -> bytes:
    return _key(field, 0) + _varint(v) if v else b""


def _bytes(field: int, b: bytes) -> bytes:
    return _key(field, 2) + _varint(len(b)) + b


def _packed(field: int, vs: Iterable[int]) -> bytes:
    body = b"".join(_varint(v) for v in vs)
    return _bytes(field, body) if body else b""


class Builder:
    """Collects samples and writes one profile."""

    def __init__(self, sample_types: list[tuple[str, str]], period_type: tuple[str, str] | None = None,
                 period: int = 0) -> None:
        self.strings: dict[str, int] = {"": 0}
        self.functions: dict[tuple[str, str, int], int] = {}
        self.locations: dict[tuple[int, int], int] = {}
        self.samples: list[bytes] = []
        self.sample_types = sample_types
        self.period_type = period_type
        self.period = period
        self.comments: list[str] = []

    def _s(self, text: str) -> int:
        i = self.strings.get(text)
        if i is None:
            i = self.strings[text] = len(self.strings)
        return i

    def _loc(self, fr: Frame) -> int:
        name, file, line, start = fr
        fk = (name, file, start)
        fid = self.functions.get(fk)
        if fid is None:
            fid = self.functions[fk] = len(self.functions) + 1
        lk = (fid, line)
        lid = self.locations.get(lk)
        if lid is None:
            lid = self.locations[lk] = len(self.locations) + 1
        return lid

    def add(self, stack: list[Frame], values: list[int], labels: dict[str, str] | None = None) -> None:
        """One sample: its stack (innermost first) and a value per sample type."""
        if len(values) != len(self.sample_types):
            raise ValueError(f"pprof.Builder.add: {len(self.sample_types)} values expected, got {len(values)}")
        body = _packed(1, [self._loc(fr) for fr in stack]) + _packed(2, values)
        for k, v in (labels or {}).items():
            body += _bytes(3, _int(1, self._s(k)) + _int(2, self._s(v)))
        self.samples.append(body)

    def encode(self, time_nanos: int = 0, duration_nanos: int = 0) -> bytes:
        # every string is interned before the table is written
        types = [_int(1, self._s(t)) + _int(2, self._s(u)) for t, u in self.sample_types]
        ptype = _int(1, self._s(self.period_type[0])) + _int(2, self._s(self.period_type[1])) if self.period_type else b""
        comments = [self._s(c) for c in self.comments]
        funcs = []
        for (name, file, start), fid in self.functions.items():
            n = self._s(name)
            funcs.append(_bytes(5, _int(1, fid) + _int(2, n) + _int(3, n) + _int(4, self._s(file)) + _int(5, start)))
        locs = []
        for (fid, line), lid in self.locations.items():
            locs.append(_bytes(4, _int(1, lid) + _bytes(4, _int(1, fid) + _int(2, line))))
        out = [_bytes(1, t) for t in types]
        out += [_bytes(2, s) for s in self.samples]
        out += locs + funcs
        out += [_bytes(6, s.encode()) for s in self.strings]
        out.append(_int(9, time_nanos))
        out.append(_int(10, duration_nanos))
        if ptype:
            out.append(_bytes(11, ptype))
        out.append(_int(12, self.period))
        if comments:
            out.append(_packed(13, comments))
        return b"".join(out)

    def write(self, path: str, time_nanos: int = 0, duration_nanos: int = 0) -> None:
        data = gzip.compress(self.encode(time_nanos, duration_nanos))
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


# ----------------------------------------------------------------------
# the reader (tests; `parago` never reads profiles back)


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    i, n = 0, len(buf)
    while i < n:
        k, i = _read_varint(buf, i)
        field, wire = k >> 3, k & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
            yield field, wire, v
        elif wire == 2:
            ln, i = _read_varint(buf, i)
            yield field, wire, buf[i : i + ln]
            i += ln
        elif wire == 1:
            yield field, wire, int.from_bytes(buf[i : i + 8], "little")
            i += 8
        elif wire == 5:
            yield field, wire, int.from_bytes(buf[i : i + 4], "little")
            i += 4
        else:
            raise ValueError(f"pprof.read: unsupported wire type {wire}")


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, i
        shift += 7


def _ints(wire: int, v: Any) -> list[int]:
    """A repeated integer field's value(s): packed (bytes) or one varint."""
    if wire == 2:
        out, i = [], 0
        while i < len(v):
            x, i = _read_varint(v, i)
            out.append(x)
        return out
    return [v]


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def read(data: bytes) -> dict:
    """A profile (gzipped or not) as a dict: ``sample_types`` [(type,
    unit)], ``samples`` [(stack [(function, file, line)] innermost first,
    values, labels)], ``period_type``, ``period``, ``duration_nanos``,
    ``time_nanos``, ``comments``."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    strings: list[str] = []
    raw_types, raw_samples, raw_locs, raw_funcs = [], [], [], []
    top: dict[int, int] = {}
    ptype = b""
    comments: list[int] = []
    for f, w, v in _fields(data):
        if f == 1:
            raw_types.append(v)
        elif f == 2:
            raw_samples.append(v)
        elif f == 4:
            raw_locs.append(v)
        elif f == 5:
            raw_funcs.append(v)
        elif f == 6:
            strings.append(v.decode())
        elif f == 11:
            ptype = v
        elif f == 13:
            comments += _ints(w, v)
        elif w == 0:
            top[f] = v

    def vt(buf: bytes) -> tuple[str, str]:
        d = {f: v for f, _, v in _fields(buf)}
        return strings[d.get(1, 0)], strings[d.get(2, 0)]

    funcs = {}
    for buf in raw_funcs:
        d = {f: v for f, _, v in _fields(buf)}
        funcs[d.get(1, 0)] = (strings[d.get(2, 0)], strings[d.get(4, 0)], d.get(5, 0))
    locs: dict[int, list[tuple[str, str, int]]] = {}
    for buf in raw_locs:
        lid, lines = 0, []
        for f, _, v in _fields(buf):
            if f == 1:
                lid = v
            elif f == 4:
                d = {ff: vv for ff, _, vv in _fields(v)}
                name, file, _start = funcs[d.get(1, 0)]
                lines.append((name, file, d.get(2, 0)))
        locs[lid] = lines
    samples = []
    for buf in raw_samples:
        ids: list[int] = []
        vals: list[int] = []
        labels: dict[str, str] = {}
        for f, w, v in _fields(buf):
            if f == 1:
                ids += _ints(w, v)
            elif f == 2:
                vals += [_signed(x) for x in _ints(w, v)]
            elif f == 3:
                d = {ff: vv for ff, _, vv in _fields(v)}
                labels[strings[d.get(1, 0)]] = strings[d.get(2, 0)] if d.get(2) else str(d.get(3, 0))
        stack = [fr for i in ids for fr in locs[i]]
        samples.append((stack, vals, labels))
    return {
        "sample_types": [vt(b) for b in raw_types],
        "samples": samples,
        "period_type": vt(ptype) if ptype else None,
        "period": top.get(12, 0),
        "time_nanos": top.get(9, 0),
        "duration_nanos": top.get(10, 0),
        "comments": [strings[i] for i in comments],
    }


def check_writable(path: str, flag: str) -> str:
    """The absolute path of a profile to write at the end, or ValueError now
    (a profile that cannot be written is said at start, not lost at the end)."""
    p = os.path.abspath(path)
    d = os.path.dirname(p) or "."
    if os.path.isdir(p):
        raise ValueError(f"{flag} {path}: is a directory")
    if not os.path.isdir(d):
        raise ValueError(f"{flag} {path}: no such directory: {d}")
    if not os.access(d, os.W_OK) or (os.path.exists(p) and not os.access(p, os.W_OK)):
        raise ValueError(f"{flag} {path}: permission denied")
    return p
