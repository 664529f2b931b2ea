"""Every wait goes through the park protocol (parago/_runtime/park.py).

A G's own ``park``/``park_async`` (g.py: how each kind waits) is called only
by park.py; everything else calls the protocol's entries -- ``park.park``,
``park.park_async``, ``park.gosched``, ``park.run``, ``park.run_async`` --
where the abort contract is written once.  Checked on the source with
``ast`` (the rule of /work/shared/tools/structure.py's "direct park calls"),
and the contract itself on a stand-in G.
"""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

from parago._runtime import park

REPO = Path(__file__).resolve().parents[2]
PKG = REPO / "parago"
# the protocol, and the kinds of G whose park it calls
OWNERS = ("parago/_runtime/park.py", "parago/_runtime/g.py")
G_WAITS = ("park", "park_async")


def _protocol_names(tree: ast.AST, rel: str) -> set[str]:
    """Names a module binds to the protocol module (``from . import park``,
    ``from parago._runtime import park as p``, ``import parago._runtime.park as p``)."""
    names: set[str] = set()
    in_runtime = rel.startswith("parago/_runtime/")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            pkg_is_runtime = (
                (node.level == 1 and in_runtime and not mod)
                or (node.level == 1 and not in_runtime and mod == "_runtime")
                or (node.level == 0 and mod == "parago._runtime")
            )
            if pkg_is_runtime:
                names |= {a.asname or a.name for a in node.names if a.name == "park"}
        elif isinstance(node, ast.Import):
            names |= {a.asname for a in node.names if a.name == "parago._runtime.park" and a.asname}
    return names


def direct_parks(source: str, rel: str) -> list[str]:
    """``rel:line`` of each call of a G's park outside the protocol."""
    if rel in OWNERS:
        return []
    tree = ast.parse(source)
    via = _protocol_names(tree, rel)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in G_WAITS:
            if not (isinstance(f.value, ast.Name) and f.value.id in via):
                out.append(f"{rel}:{node.lineno}")
        # getattr(gs, "park")(...) is the same call spelled differently
        elif (
            isinstance(f, ast.Call)
            and isinstance(f.func, ast.Name)
            and f.func.id == "getattr"
            and len(f.args) >= 2
            and isinstance(f.args[1], ast.Constant)
            and f.args[1].value in G_WAITS
        ):
            out.append(f"{rel}:{node.lineno}")
    return out


def test_no_direct_park_outside_the_protocol() -> None:
    found = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        found += direct_parks(path.read_text(), rel)
    assert not found, "call park.park / park.park_async / park.gosched instead of a G's own park: " + ", ".join(found)


@pytest.mark.parametrize(
    "src, rel, n",
    [
        ("def f(gs):\n    gs.park()\n", "parago/_chan.py", 1),
        ("async def f(gs):\n    await gs.park_async()\n", "parago/_sync.py", 1),
        ("def f(rt):\n    rt.current.park()\n", "parago/_runtime/sched.py", 1),
        ("def f(gs):\n    getattr(gs, 'park')()\n", "parago/_chan.py", 1),
        # a name `park` that is not the protocol module is no way round the rule
        ("def f(park):\n    park.park()\n", "parago/_chan.py", 1),
        ("from ._runtime import park\ndef f(gs):\n    park.park(gs)\n", "parago/_chan.py", 0),
        ("from . import park\nasync def f(gs):\n    await park.park_async(gs)\n", "parago/_runtime/timers.py", 0),
        ("from parago._runtime import park as pk\ndef f(gs):\n    pk.gosched(gs)\n", "parago/_x.py", 0),
        ("def park(self):\n    self.park()\n", "parago/_runtime/g.py", 0),
    ],
)
def test_the_rule_itself(src: str, rel: str, n: int) -> None:
    assert len(direct_parks(src, rel)) == n


def test_wake_res_is_the_g_records() -> None:
    # one reader of WAKE_*: GState.wake_res (the protocol no longer duplicates it)
    assert not hasattr(park, "wake_res")
    assert set(park.__all__) >= {"park", "park_async", "gosched", "run", "run_async"}


# ----------------------------------------------------------------------
# the abort contract, on a stand-in G (the kinds' own waits are tested
# through every blocking operation's tests)


class _G:
    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc
        self.parks = 0

    def park(self) -> None:
        self.parks += 1
        if self.exc is not None:
            raise self.exc

    async def park_async(self) -> None:
        self.park()


class Interrupt(BaseException):
    pass


def test_on_abort_only_when_the_park_raises() -> None:
    calls: list[int] = []
    park.park(_G(None), lambda: calls.append(1))
    assert calls == []
    g = _G(Interrupt())
    with pytest.raises(Interrupt):
        park.park(g, lambda: calls.append(1))
    assert calls == [1] and g.parks == 1
    with pytest.raises(Interrupt):
        park.park(_G(Interrupt()))  # no on_abort: the interrupt goes on


def test_on_abort_async_form() -> None:
    calls: list[int] = []

    async def main() -> None:
        await park.park_async(_G(None), lambda: calls.append(1))
        assert calls == []
        with pytest.raises(Interrupt):
            await park.park_async(_G(Interrupt()), lambda: calls.append(2))

    asyncio.run(main())
    assert calls == [2]


def test_run_throws_the_interrupt_into_the_slow_path() -> None:
    seen: list[str] = []

    def steps() -> park.Steps:
        try:
            yield
            seen.append("woken")
            yield
        except Interrupt:
            seen.append("undone")
            raise
        return "done"

    assert park.run(_G(None), steps()) == "done"
    assert seen == ["woken"]
    with pytest.raises(Interrupt):
        park.run(_G(Interrupt()), steps())
    assert seen == ["woken", "undone"]
