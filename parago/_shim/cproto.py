"""Read the shim's exported prototypes out of its C sources (shm/*.c).

Owns: the one parser of ``PG_API`` definitions and the coarse type classes
both sides are compared in ("ptr", "i32", "u32", "i64", "u64", "f64",
"void").  Used by the loader (parago/_shim/__init__.py) to refuse a
declaration in cdecl.py that no longer matches its C definition, and by
tests/shim/test_cdecl.py.  Names no C function itself.
"""

from __future__ import annotations

import ctypes
import re
from pathlib import Path
from typing import Iterable, NamedTuple

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
# PG_API <return type> pg_name(<params>) { ... }   (or a ';' prototype)
_API = re.compile(r"PG_API\s+([^;{}()]*?)\b(pg_\w+)\s*\(([^()]*)\)\s*([{;])")

# C scalar type -> class (the width and signedness ctypes passes)
_C_SCALAR = {
    "void": "void",
    "int": "i32",
    "int32_t": "i32",
    "unsigned": "u32",
    "uint32_t": "u32",
    "int64_t": "i64",
    "uint64_t": "u64",
    "size_t": "u64",
    "double": "f64",
}

_QUALIFIERS = frozenset(("const", "volatile", "static", "inline", "signed"))

_PY_SCALAR: dict[object, str] = {
    None: "void",
    ctypes.c_int: "i32",
    ctypes.c_uint32: "u32",
    ctypes.c_int64: "i64",
    ctypes.c_uint64: "u64",
    ctypes.c_double: "f64",
    ctypes.c_void_p: "ptr",
    ctypes.c_char_p: "ptr",
}


class Proto(NamedTuple):
    """One exported C function as the compiler sees it, coarsely."""

    name: str
    restype: str
    args: tuple[str, ...]
    where: str  # file:line of its definition


def c_class(decl: str, *, named: bool) -> str:
    """Class of one C declaration: a return type (``named=False``) or a
    parameter with its name (``named=True``)."""
    decl = decl.strip()
    if "*" in decl or "[" in decl:
        return "ptr"
    words = [w for w in decl.split() if w not in _QUALIFIERS]
    if named and len(words) > 1:
        words = words[:-1]  # drop the parameter's name
    key = " ".join(words)
    if key == "unsigned int":
        key = "unsigned"
    if key not in _C_SCALAR:
        raise ValueError(f"cproto: no class for C type {decl!r}")
    return _C_SCALAR[key]


def py_class(t: object) -> str:
    """Class of one ctypes type (an argtype or restype)."""
    if t in _PY_SCALAR:
        return _PY_SCALAR[t]
    if isinstance(t, type) and issubclass(t, ctypes._Pointer):
        return "ptr"
    raise ValueError(f"cproto: no class for ctypes type {t!r}")


def parse(shm_dir: Path) -> dict[str, Proto]:
    """Every ``PG_API`` function *defined* (with a body) in shm/*.c.

    House style puts ``PG_API`` at the start of the line of each exported
    definition; only those lines are read (about 1 ms for the whole tree,
    cheap enough for every import in a source checkout)."""
    out: dict[str, Proto] = {}
    for src in sorted(shm_dir.glob("*.c")):
        text = src.read_text()
        line, last = 1, 0
        i = text.find("\nPG_API")
        while i >= 0:
            m = _API.match(text, i + 1)
            i = text.find("\nPG_API", i + 1)
            if not m or m.group(4) != "{":
                continue  # a prototype; the definition is elsewhere
            ret, name, params = (_COMMENT.sub(" ", g) for g in m.groups()[:3])
            plist = [p for p in (x.strip() for x in params.split(",")) if p]
            if plist == ["void"]:
                plist = []
            line += text.count("\n", last, m.start())
            last = m.start()
            out[name] = Proto(
                name,
                c_class(ret, named=False),
                tuple(c_class(p, named=True) for p in plist),
                f"shm/{src.name}:{line}",
            )
    return out


def mismatches(decls: Iterable, protos: dict[str, Proto]) -> list[str]:
    """One line per declaration (cdecl.Decl) whose restype or argument
    classes differ from its C definition; a name C does not define is left
    to the library check (it is not exported either)."""
    bad = []
    for d in decls:
        c = protos.get(d.name)
        if c is None:
            continue
        res, args = py_class(d.restype), tuple(py_class(t) for t in d.argtypes)
        if (res, args) != (c.restype, c.args):
            bad.append(
                f"{d.name}: cdecl.py says {res} ({', '.join(args)}), {c.where} says {c.restype} ({', '.join(c.args)})"
            )
    return bad
