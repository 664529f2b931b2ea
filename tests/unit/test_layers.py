"""Import direction (STYLE "Layers"), checked on the source with ``ast``.

    parago/*.py (user API) -> parago/_runtime/ -> parago/_shim/ -> shm/ (C)

``parago/_errors.py`` is shared by every layer (status codes become its
exceptions in one place).  Every import counts: module level, inside a
function, under ``if TYPE_CHECKING:``, and ``importlib.import_module`` /
``__import__`` with a literal name.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "parago"
USER_API = sorted(p.stem for p in PKG.glob("*.py") if p.name not in ("__init__.py", "_errors.py"))

# what each layer may import from inside parago
ALLOWED = {
    "_shim": ("parago._shim", "parago._errors"),
    "_runtime": ("parago._runtime", "parago._shim", "parago._errors"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, modname: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of everything a module imports.

    ``from X import a, b`` yields X.a and X.b when X is ``parago`` itself
    (a, b may be submodules), else X.
    """
    package = modname if is_package else modname.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "parago":
                out += [(node.lineno, f"parago.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, target))
        elif isinstance(node, ast.Call):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if (
                fname in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                name = node.args[0].value
                if name.startswith(".") and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    name = str(node.args[1].value) + name
                out.append((node.lineno, name))
    return out


def violations(path: Path, layer: str) -> list[str]:
    src = path.read_text()
    mod = _module_name(path)
    bad = []
    for line, name in imported_modules(src, mod, path.name == "__init__.py"):
        if name != "parago" and not name.startswith("parago."):
            continue  # stdlib / third party
        if not any(name == a or name.startswith(a + ".") for a in ALLOWED[layer]):
            bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    return bad


def _files(sub: str) -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", _files("_shim"), ids=lambda p: p.name)
def test_shim_imports_neither_runtime_nor_user_api(path):
    assert violations(path, "_shim") == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", _files("_runtime"), ids=lambda p: p.name)
def test_runtime_imports_no_user_api(path):
    assert violations(path, "_runtime") == []


@pytest.mark.timeout(10)
def test_the_layers_exist():
    assert _files("_shim") and _files("_runtime") and USER_API


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("layer", "modname", "src", "expect"),
    [
        ("_shim", "parago._shim.arena", "from .._runtime import sched", ["parago._runtime"]),
        ("_shim", "parago._shim.arena", "def f():\n    from .._chan import Chan", ["parago._chan"]),
        ("_shim", "parago._shim.arena", "from .. import _sync", ["parago._sync"]),
        ("_shim", "parago._shim.arena", "import parago", ["parago"]),
        ("_shim", "parago._shim.arena", "import importlib\nimportlib.import_module('parago._time')", ["parago._time"]),
        ("_runtime", "parago._runtime.sched", "from ..context import background", ["parago.context"]),
        ("_runtime", "parago._runtime.sched", "from parago import Chan", ["parago.Chan"]),
        ("_runtime", "parago._runtime.sched", "from .._errors import Panic\nfrom .._shim import lib\nfrom . import g", []),
        ("_shim", "parago._shim.arena", "from .._errors import OutOfSharedMemory\nfrom . import CONST", []),
    ],
)
def test_the_checker_sees_violations(layer, modname, src, expect):
    # the checker itself, on synthetic modules: it must be able to fail
    found = [
        name
        for _, name in imported_modules(src, modname, False)
        if (name == "parago" or name.startswith("parago."))
        and not any(name == a or name.startswith(a + ".") for a in ALLOWED[layer])
    ]
    assert found == expect


# ---------------------------------------------------------------- parago/__init__.py


def _init_offenders(src: str) -> list[str]:
    tree = ast.parse(src)
    bad = []
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # the docstring
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) and t.id in ("__version__", "__all__") for t in targets):
                continue
        bad.append(f"line {node.lineno}: {ast.dump(node)[:80]}")
    return bad


@pytest.mark.timeout(10)
def test_init_only_reexports():
    assert _init_offenders((PKG / "__init__.py").read_text()) == []


@pytest.mark.timeout(10)
def test_init_checker_rejects_logic():
    assert _init_offenders('"""doc"""\nfrom . import x as x\n__all__ = ["x"]\n__version__ = "1"\n') == []
    assert _init_offenders('"""doc"""\ndef f():\n    pass\n')
    assert _init_offenders('import os\nos.environ["X"] = "1"\n')
    assert _init_offenders('"""doc"""\nDEFAULT = 3\n')


# ---------------------------------------------------------------- shm/*.c


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
@pytest.mark.parametrize("src", sorted((REPO / "shm").glob("*.c")), ids=lambda p: p.name)
def test_shm_compiles_warning_free_as_c11(src):
    r = subprocess.run(
        ["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", str(REPO / "shm"), str(src)],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- the shim's surface (issue: runtime in components)

# API modules reach the shim only through parago._runtime (ops: the bound
# operations, views: the shared fields, park: the protocol).  cli.py reports
# the shim's ABI in `parago env`: the one exception.
SHIM_CLIENTS_ALLOWED = {"cli"}
# outside parago/_shim nobody computes arena offsets: the layout table and
# the offset helpers stay inside the shim (_shim/views.py answers fields)
RAW_OFFSET_CALLS = {"offset", "sizeof", "p_field"}


def shim_imports(src: str, modname: str) -> list[str]:
    return [
        f"line {line}: imports {name}"
        for line, name in imported_modules(src, modname, False)
        if name == "parago._shim" or name.startswith("parago._shim.")
    ]


def raw_offsets(src: str) -> list[str]:
    """Calls of the layout helpers and subscripts of LAYOUT in a module."""
    bad = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in RAW_OFFSET_CALLS:
                bad.append(f"line {node.lineno}: {name}(...)")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "LAYOUT":
            bad.append(f"line {node.lineno}: LAYOUT[...]")
    return bad


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", [n for n in USER_API if n not in SHIM_CLIENTS_ALLOWED])
def test_api_modules_reach_the_shim_only_through_the_runtime(name):
    path = PKG / f"{name}.py"
    assert shim_imports(path.read_text(), f"parago.{name}") == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "path",
    [p for p in sorted(PKG.rglob("*.py")) if "_shim" not in p.parts],
    ids=lambda p: str(p.relative_to(PKG)),
)
def test_no_arena_offsets_outside_the_shim(path):
    assert raw_offsets(path.read_text()) == []


@pytest.mark.timeout(10)
def test_the_surface_checkers_see_violations():
    assert shim_imports("from ._shim import lib", "parago._chan") == ["line 1: imports parago._shim"]
    assert shim_imports("from ._runtime.ops import check", "parago._chan") == []
    assert raw_offsets("x = a.q[(off + offset('pg_g', 'goid')) // 8]") == ["line 1: offset(...)"]
    assert raw_offsets("i = arena.p_field(0, 'state') // 4") == ["line 1: p_field(...)"]
    assert raw_offsets("o = LAYOUT['pg_g']['goid']") == ["line 1: LAYOUT[...]"]
    assert raw_offsets("i = views.p_index(0, 'state')") == []


def test_no_integer_literal_stands_for_an_exported_constant_outside_the_shim():
    """Constants come from shm/layout.h through parago._shim (CONST and the
    enums built from it), never copied as a literal: `_GK_SYSTEM = 2  #
    GKind.SYSTEM` disagreed with layout.h's GK_SYSTEM = 4 for a whole turn."""
    import re

    from parago._shim import CONST

    enum_prefixes = {"GKind": "GK_", "Gstatus": "G_", "Pstate": "P_"}
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        if "_shim" in path.relative_to(PKG).parts:
            continue
        src = path.read_text()
        lines = src.splitlines()
        for node in ast.walk(ast.parse(src)):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
                continue
            if not isinstance(node.value.value, int) or isinstance(node.value.value, bool):
                continue
            for t in node.targets:
                name = t.id.lstrip("_") if isinstance(t, ast.Name) else ""
                comment = lines[node.lineno - 1].partition("#")[2]
                m = re.search(r"\b(\w+)\.([A-Z_]+)\b", comment)
                named = m and m.group(1) in enum_prefixes and enum_prefixes[m.group(1)] + m.group(2) in CONST
                if name in CONST or named:
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not bad, "constants copied as literals (use parago._shim's CONST / enums):\n" + "\n".join(bad)


# ---------------------------------------------------------------- parago/_cluster: the top layer

# _cluster sits above the API: its remote handles *are* pg.Chan, ... so it may
# import the API modules, the runtime and the errors -- never the shim (it
# reaches C through parago._runtime, as the API does) and never the package
# itself (``import parago`` imports _cluster: that would be a circle)
CLUSTER_ALLOWED = ("parago._cluster", "parago._runtime", "parago._errors", *(f"parago.{m}" for m in USER_API))


def cluster_violations(src: str, modname: str, is_package: bool) -> list[str]:
    return [
        f"line {line}: imports {name}"
        for line, name in imported_modules(src, modname, is_package)
        if (name == "parago" or name.startswith("parago."))
        and not any(name == a or name.startswith(a + ".") for a in CLUSTER_ALLOWED)
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", _files("_cluster"), ids=lambda p: p.name)
def test_cluster_imports_the_api_and_the_runtime_never_the_shim(path):
    assert cluster_violations(path.read_text(), _module_name(path), path.name == "__init__.py") == []


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", USER_API)
def test_api_modules_never_import_the_cluster_layer(name):
    # they reach it through parago._runtime.cluster.hooks, which it registers with
    src = (PKG / f"{name}.py").read_text()
    bad = [n for _, n in imported_modules(src, f"parago.{name}", False) if n.startswith("parago._cluster")]
    assert bad == []


@pytest.mark.timeout(10)
def test_the_cluster_checker_sees_violations():
    assert cluster_violations("from .._shim import lib", "parago._cluster.node", False) == [
        "line 1: imports parago._shim"
    ]
    assert cluster_violations("import parago", "parago._cluster.select", False) == ["line 1: imports parago"]
    assert cluster_violations(
        "from .._chan import Chan\nfrom .._runtime import ops\nfrom .wire import xdumps", "parago._cluster.node", False
    ) == []


# ---------------------------------------------------------------- import circles

# The edges are those of /work/shared/tools/structure.py's figure: every
# import counts (module level, in a function, under TYPE_CHECKING), and
# ``from X import a`` is an edge to X and, when X.a is a module, to X.a --
# so ``from . import x`` inside a package is an edge to the package's
# __init__ too (which runs first).


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """{module: (source, is_package)} -> {module: the package modules it imports}."""
    edges: dict[str, set[str]] = {}
    for mod, (src, is_package) in sources.items():
        package = mod if is_package else mod.rpartition(".")[0]
        out: set[str] = set()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = parts[: len(parts) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                out.add(target)
                out.update(f"{target}.{a.name}" for a in node.names)
        edges[mod] = {t for t in out if t in sources and t != mod}
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


@pytest.mark.timeout(60)
def test_no_import_circle_in_parago():
    sources = {_module_name(p): (p.read_text(), p.name == "__init__.py") for p in sorted(PKG.rglob("*.py"))}
    assert circles(import_graph(sources)) == []


@pytest.mark.timeout(10)
def test_the_circle_checker_sees_circles():
    pkg = {
        "parago": ("from . import _a", True),
        "parago._a": ("def f():\n    from ._b import x", False),
        "parago._b": ("from ._c import y", False),
        "parago._c": ("", False),
    }
    assert circles(import_graph(pkg)) == []
    # a function-level import back to the start
    assert circles(import_graph({**pkg, "parago._c": ("def g():\n    from ._a import f", False)})) == [
        ["parago._a", "parago._b", "parago._c"]
    ]
    # `from .. import x` is an edge to the package itself, which imports everything
    assert circles(import_graph({**pkg, "parago._c": ("from . import _b", False)})) == [
        ["parago", "parago._a", "parago._b", "parago._c"]
    ]
    # inside a subpackage: `from . import x` reaches the subpackage's __init__
    sub = {
        "parago._k": ("from . import m", True),
        "parago._k.m": ("from . import n", False),
        "parago._k.n": ("", False),
    }
    assert circles(import_graph(sub)) == [["parago._k", "parago._k.m"]]
