"""The one binding table (parago/_shim/cdecl.py) against the library and the C sources.

Both directions: every function the built library exports is declared and
every declaration is exported (``nm -D --defined-only``); every PG_API
definition in shm/*.c is declared with the same restype and argument
classes, and every declaration has one.  A missing or mismatched function
fails the import with its name; a name the table lacks is refused by every
handle; the waiting calls are not on ``fast`` and are called through
``blocking`` everywhere in parago/.  In C, a function's prototype lives in
a header, never re-declared in another .c file (shm/pg_internal.h).
"""

from __future__ import annotations

import ast
import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from parago import _shim
from parago._shim import blocking, cdecl, cproto, fast, lib

pytestmark = pytest.mark.shim

ROOT = Path(__file__).resolve().parents[2]
SHM = ROOT / "shm"
PKG = ROOT / "parago"
DECLARED = {d.name for d in cdecl.DECLS}


def _exported() -> set[str]:
    """The library's exported functions (nm -D --defined-only; or readelf)."""
    path = lib._name
    if shutil.which("nm"):
        out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True, check=True).stdout
        return {f[2] for f in (ln.split() for ln in out.splitlines()) if len(f) == 3 and f[1] == "T"} - {
            "_init",
            "_fini",
        }
    out = subprocess.run(["readelf", "-W", "--dyn-syms", path], capture_output=True, text=True, check=True).stdout
    return {
        f[7] for f in (ln.split() for ln in out.splitlines()) if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND"
    } - {"_init", "_fini"}


def test_each_function_declared_once():
    names = [d.name for d in cdecl.DECLS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert set(cdecl.BY_NAME) == DECLARED


def test_declarations_are_the_library_exports():
    exported = _exported()
    assert exported, "no exported function found"
    assert sorted(exported - DECLARED) == [], "exported but not declared in cdecl.py"
    assert sorted(DECLARED - exported) == [], "declared in cdecl.py but not exported"


def test_declarations_match_the_c_prototypes():
    protos = cproto.parse(SHM)
    assert len(protos) > 50
    assert sorted(set(protos) - DECLARED) == [], "PG_API functions not declared in cdecl.py"
    assert sorted(DECLARED - set(protos)) == [], "declared but no PG_API definition in shm/*.c"
    assert cproto.mismatches(cdecl.DECLS, protos) == []


def test_each_block_of_the_table_is_its_c_file():
    """cdecl.py keeps one block per C file (``# ---- x.c``), in the order the
    file defines them: the table reads as a map of the C sources."""
    protos = cproto.parse(SHM)
    block, seen = "", []
    for line in (ROOT / "parago/_shim/cdecl.py").read_text().splitlines():
        m = re.match(r"\s*# ---- (\w+\.c)$", line)
        if m:
            block = m.group(1)
        m = re.match(r'\s*(?:_d\(\w+, )?"(pg_\w+)",?', line)
        if m and m.group(1) in DECLARED:
            seen.append((m.group(1), block))
    assert sorted(n for n, _ in seen) == sorted(DECLARED)
    wrong = [
        f"{n} under {b}, defined in {protos[n].where}" for n, b in seen if protos[n].where.split(":")[0] != f"shm/{b}"
    ]
    assert wrong == []
    order = [(protos[n].where.split(":")[0], int(protos[n].where.split(":")[1])) for n, _ in seen]
    assert order == sorted(order), "declarations out of their files' order"


def test_the_parser_reads_types_coarsely(tmp_path):
    (tmp_path / "x.c").write_text(
        "/* PG_API int pg_commented(void) { */\n"
        "PG_API int64_t pg_a(void *base, uint64_t o, const char **s,\n"
        "                    int32_t n /* count */, uint32_t k) {\n  return 0;\n}\n"
        "PG_API void pg_b(void) {}\n"
        "PG_API double pg_c(int x);\n"
        "PG_API uint32_t pg_d(unsigned int u, size_t z, const uint8_t buf[4]) { return 0; }\n"
    )
    p = cproto.parse(tmp_path)
    assert set(p) == {"pg_a", "pg_b", "pg_d"}  # pg_c: a prototype only; the comment is no definition
    assert p["pg_a"][1:3] == ("i64", ("ptr", "u64", "ptr", "i32", "u32"))
    assert p["pg_a"].where == "shm/x.c:2"
    assert p["pg_b"][1:3] == ("void", ())
    assert p["pg_d"][1:3] == ("u32", ("u32", "u64", "ptr"))


def test_a_mismatch_is_named():
    protos = {"pg_x": cproto.Proto("pg_x", "i64", ("ptr", "u64"), "shm/x.c:7")}
    ok = cdecl.Decl("pg_x", ctypes.c_int64, (ctypes.c_void_p, ctypes.c_uint64), False)
    assert cproto.mismatches([ok], protos) == []
    for bad in (
        ok._replace(restype=None),  # pg_rw_writer_gone's old duplicate: void vs int64_t
        ok._replace(restype=ctypes.c_uint64),
        ok._replace(argtypes=(ctypes.c_void_p,)),
        ok._replace(argtypes=(ctypes.c_void_p, ctypes.c_int)),
        ok._replace(argtypes=(ctypes.c_uint64, ctypes.c_uint64)),
    ):
        (line,) = cproto.mismatches([bad], protos)
        assert line.startswith("pg_x: ") and "shm/x.c:7" in line


def test_a_changed_c_definition_fails_the_import_check_with_its_name(tmp_path, monkeypatch):
    for src in SHM.glob("*.c"):
        text = src.read_text()
        if src.name == "chan.c":
            old = "PG_API int64_t pg_chan_close(void *base, uint64_t ch) {"
            assert old in text
            text = text.replace(old, "PG_API int pg_chan_close(void *base, uint32_t ch) {")
        (tmp_path / src.name).write_text(text)
    monkeypatch.setattr(_shim, "_SHM", tmp_path)
    with pytest.raises(ImportError, match=r"pg_chan_close: cdecl.py says i64 \(ptr, u64\), shm/chan.c:\d+ says i32"):
        _shim._check_sources()


def test_a_missing_symbol_fails_the_bind_with_its_name():
    extra = cdecl.Decl("pg_no_such_function", None, (), False)
    with pytest.raises(ImportError, match="pg_no_such_function"):
        _shim._bind(Path(lib._name), (*cdecl.DECLS[:3], extra))


def test_handles_refuse_undeclared_names_and_fast_has_no_waiting_call():
    for h in (lib, blocking, fast):
        with pytest.raises(AttributeError, match="parago._shim.cdecl.* has no attribute 'pg_alloc'"):
            getattr(h, "pg_alloc")  # noqa: B009 -- an internal function (not PG_API)
    assert cdecl.WAITS
    for name in cdecl.WAITS:
        assert getattr(lib, name).argtypes is not None and getattr(blocking, name) is not None
        with pytest.raises(AttributeError, match=f"parago._shim.cdecl.fast' has no attribute '{name}'"):
            getattr(fast, name)
    for d in cdecl.DECLS:
        if not d.waits:
            f = getattr(fast, d.name)
            assert f.restype is d.restype and f.argtypes is None  # the no-conversion form
        assert tuple(getattr(lib, d.name).argtypes) == d.argtypes
        assert getattr(blocking, d.name).restype is d.restype


def _pg_attributes(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("pg_"):
            v = node.value
            handle = v.id if isinstance(v, ast.Name) else v.attr if isinstance(v, ast.Attribute) else ""
            yield node.lineno, handle, node.attr


def test_python_calls_only_declared_functions_and_waits_through_blocking():
    """Outside parago/_shim, every ``<handle>.pg_*`` names a declared
    function, and a waiting one goes through ``blocking`` (the GIL released)."""
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        if "_shim" in path.relative_to(PKG).parts:
            continue
        for line, handle, name in _pg_attributes(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{line}"
            if handle not in ("lib", "fast", "blocking"):
                continue  # another object's attribute (not a C call)
            if name not in DECLARED:
                bad.append(f"{where}: {handle}.{name} is not declared in cdecl.py")
            elif name in cdecl.WAITS and handle != "blocking":
                bad.append(f"{where}: {handle}.{name} may wait: call it through blocking")
    assert bad == []


_PROTO = re.compile(r"^(?!static\b)[A-Za-z_][\w \t*]*?\b(pg_\w+)\s*\([^;{}]*\)\s*;", re.M)
_DEF = re.compile(r"^(?!static\b)[A-Za-z_][\w \t*]*?\b(pg_\w+)\s*\([^;{}]*\)\s*\{", re.M)


def test_no_c_file_redeclares_another_files_function():
    """A cross-file prototype lives in a header (shm/pg_internal.h), never
    copied into the .c file that calls it."""
    defined: dict[str, str] = {}
    texts = {}
    for src in sorted(SHM.glob("*.c")):
        text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", src.read_text(), flags=re.S)
        texts[src.name] = text
        for m in _DEF.finditer(text):
            defined[m.group(1)] = src.name
    assert "pg_chan_send" in defined and "pg_lock_slow" in defined
    bad = []
    for name, text in texts.items():
        for m in _PROTO.finditer(text):
            if defined.get(m.group(1), name) != name:
                bad.append(f"shm/{name}: declares {m.group(1)} (defined in shm/{defined[m.group(1)]})")
    assert bad == []
