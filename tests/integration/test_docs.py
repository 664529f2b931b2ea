"""Docs whose code runs: every ```python block of README.md and docs/*.md.

Each block is a complete program: it is written to a file and run as a
script (``python3 block.py``, so a block's ``if __name__ == "__main__":
pg.run(main)`` runs as it would for a reader) in a fresh interpreter, from
an empty directory, with a timeout; it must exit 0.  A block followed by an
```output block must print exactly that.  Shell and text blocks are not run.

Opting out is explicit and rare: a ``<!-- not run: REASON -->`` line right
before the block, where REASON says it needs the network or a cluster
(Ray).  Blocks that call ``pg.run`` do it under the ``__main__`` guard, as
the docs teach (spawned and forkserver Ps re-import the main module).

The cheat sheet names every parago construct the examples use.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
ALLOWED_REASON = re.compile(r"network|internet|cluster|\bray\b", re.I)
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip_reason: str | None = None
    expect: str | None = None  # the ```output block that follows, if any

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its opt-out marker and the
    ```output block that follows it (attached to the block before)."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    prev_text = ""  # the last non-blank line before the current position
    last_end = -10  # line index where the previous block closed
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if lines[i].strip():
                prev_text = lines[i]
            i += 1
            continue
        fence, indent, lang = m.group("fence"), len(m.group("indent")), m.group("info").lower()
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence[0] * len(fence)):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        code = "\n".join(body) + "\n"
        between = lines[last_end + 1 : start]
        if lang == "output" and blocks and all(not ln.strip() for ln in between):
            blocks[-1].expect = code
        else:
            nr = NOT_RUN.match(prev_text)
            blocks.append(Block(path, start + 1, lang, code, nr.group("reason") if nr else None))
        last_end = i
        prev_text = ""
        i += 1
    return blocks


def python_blocks() -> list[Block]:
    return [b for p in DOCS for b in fenced_blocks(p) if b.lang in ("python", "py", "python3")]


BLOCKS = python_blocks()


def _guarded(stmt: ast.stmt) -> bool:
    t = stmt.test if isinstance(stmt, ast.If) else None
    return (
        isinstance(t, ast.Compare)
        and isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in t.comparators)
    )


def unguarded_runs(code: str) -> list[int]:
    """Lines of module-level ``pg.run(...)`` calls outside ``if __name__ == "__main__":``."""
    out = []
    for stmt in ast.parse(code).body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or _guarded(stmt):
            continue
        for node in ast.walk(stmt):
            f = node.func if isinstance(node, ast.Call) else None
            if (
                isinstance(f, ast.Attribute)
                and f.attr == "run"
                and isinstance(f.value, ast.Name)
                and f.value.id == "pg"
            ):
                out.append(node.lineno)
    return out


def test_the_collector_finds_the_readme_example_and_its_output() -> None:
    readme = [b for b in BLOCKS if b.path.name == "README.md"]
    assert readme, "README.md has no ```python block"
    assert any("pg.run(main)" in b.code and b.expect for b in readme), "README's first example has no ```output"
    assert all(b.path.suffix == ".md" for b in BLOCKS)
    assert len({b.id for b in BLOCKS}) == len(BLOCKS)


def test_opt_outs_are_rare_and_say_why() -> None:
    for b in BLOCKS:
        if b.skip_reason is not None:
            assert ALLOWED_REASON.search(b.skip_reason), (
                f"{b.id}: `<!-- not run: {b.skip_reason} -->` -- only blocks that need the network "
                f"or a cluster may opt out; make the block run instead"
            )


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
@pytest.mark.timeout(90)
def test_docs_code_block_runs(block: Block, tmp_path: Path) -> None:
    if block.skip_reason is not None:
        pytest.skip(f"not run: {block.skip_reason}")
    try:
        bad = unguarded_runs(block.code)
    except SyntaxError as e:
        pytest.fail(f"{block.id}: not valid Python: {e}")
    assert not bad, f"{block.id}: pg.run at line(s) {bad} of the block is not under `if __name__ == '__main__':`"
    script = tmp_path / "block.py"
    script.write_text(block.code)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PARAGO_MAXPROCS", None)
    try:
        r = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=75, cwd=tmp_path, env=env
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{block.id}: still running after 75 s; output so far:\n{e.stdout}\n{e.stderr}")
    assert r.returncode == 0, f"{block.id} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    if block.expect is not None:
        assert r.stdout == block.expect, (
            f"{block.id}: printed\n{r.stdout}\nbut its ```output block says\n{block.expect}"
        )


def _pg_names(tree: ast.AST) -> set[str]:
    """``pg.X`` and ``pg.mod.X`` names used in a module (``import parago as pg``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pg":
            names.add(f"pg.{node.attr}")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "pg"
            and node.value.attr in ("atomic", "context", "errgroup", "debug")
        ):
            names.add(f"pg.{node.value.attr}.{node.attr}")
    return names


def test_the_cheat_sheet_names_every_parago_construct_the_examples_use() -> None:
    sheet = (ROOT / "docs" / "cheatsheet.md").read_text()
    missing: dict[str, list[str]] = {}
    for ex in sorted((ROOT / "examples").glob("*.py")):
        for name in _pg_names(ast.parse(ex.read_text())):
            if name in ("pg.atomic", "pg.context", "pg.errgroup", "pg.debug"):
                continue  # the modules: their members are checked
            if not re.search(rf"`[^`]*{re.escape(name)}\b", sheet):
                missing.setdefault(name, []).append(ex.name)
    assert not missing, "docs/cheatsheet.md lacks: " + ", ".join(f"{k} ({', '.join(v)})" for k, v in missing.items())


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def test_relative_links_in_the_docs_point_at_files_that_exist() -> None:
    broken = []
    for path in DOCS:
        prose, fenced = [], False
        for line in path.read_text().splitlines():
            if FENCE.match(line):
                fenced = not fenced
            elif not fenced:
                prose.append(re.sub(r"`[^`]*`", "", line))  # pg.Chan[int](10) is code, not a link
        for m in LINK.finditer("\n".join(prose)):
            target = m.group("target").split("#", 1)[0]
            if not target or re.match(r"^[a-z]+:", target):
                continue  # an anchor on the same page, or a URL
            if not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)}: {m.group('target')}")
    assert not broken, "links to nothing: " + ", ".join(broken)
