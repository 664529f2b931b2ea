"""Output in order (DESIGN §1 "Diagnostics"): while a program runs, every
P's stdout and stderr write each line when it is complete, also into a pipe
or a file, so lines printed by goroutines on different Ps appear in the
order they were printed; nothing is lost at exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 40

# main (P0) and pong (P1) take turns: each prints its line, then hands the
# turn over on an unbuffered channel -- so line k is printed, causally,
# before line k+1, by alternating processes
PING_PONG = """
    import os, sys
    import parago as pg
    from tests.helpers import go_on

    PONG_OUT = sys.STREAM

    def pong(ping, back, rounds):
        for i in range(rounds):
            ping.recv()
            print(f"pong {i} {os.getpid()}", file=PONG_OUT)
            back.send(i)
        print("tail", end="", file=PONG_OUT)  # an unfinished line: written when P1 exits

    def main(rounds):
        ping, back = pg.Chan(), pg.Chan()
        go_on(1, pong, ping, back, rounds)
        for i in range(rounds):
            print(f"ping {i} {os.getpid()}")
            ping.send(i)
            back.recv()
        print("end")

    if __name__ == "__main__":
        pg.run(main, int(sys.argv[1]), procs=2)
"""


def run_prog(tmp_path: Path, how: str, stream: str, stdout, stderr) -> subprocess.CompletedProcess:
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(PING_PONG).replace("STREAM", stream))
    cmd = [sys.executable, str(prog)] if how == "python" else [sys.executable, "-m", "parago", "run", str(prog)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONUNBUFFERED", None)
    return subprocess.run([*cmd, str(ROUNDS)], stdout=stdout, stderr=stderr, text=True, timeout=60, env=env)


def check_causal_order(out: str) -> None:
    lines = out.split("\n")
    assert "".join(lines).count("tail") == 1, "the unfinished line is written exactly once, at exit"
    lines = [s.replace("tail", "") for s in lines]
    assert lines[-1] == "", out
    lines = [s for s in lines if s]
    assert lines[-1] == "end", out
    words = [s.split() for s in lines[:-1]]
    expected = [w for i in range(ROUNDS) for w in (f"ping {i}", f"pong {i}")]
    assert [f"{w[0]} {w[1]}" for w in words] == expected, out
    pids = {w[0]: {int(x[2]) for x in words if x[0] == w[0]} for w in words}
    assert len(pids["ping"]) == len(pids["pong"]) == 1 and pids["ping"] != pids["pong"], "two Ps took turns"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["python", "parago-run"])
def test_lines_from_two_ps_reach_a_pipe_in_causal_order(tmp_path, how):
    r = run_prog(tmp_path, how, "stdout", subprocess.PIPE, subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    check_causal_order(r.stdout)


@pytest.mark.timeout(90)
def test_lines_from_two_ps_reach_a_file_in_causal_order(tmp_path):
    path = tmp_path / "out.txt"
    with open(path, "w") as f:
        r = run_prog(tmp_path, "python", "stdout", f, subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    check_causal_order(path.read_text())


@pytest.mark.timeout(90)
def test_stdout_and_stderr_of_two_ps_interleave_in_causal_order_in_one_pipe(tmp_path):
    # pong writes to stderr, main to stdout, both into the same pipe (2>&1)
    r = run_prog(tmp_path, "python", "stderr", subprocess.PIPE, subprocess.STDOUT)
    assert r.returncode == 0, r.stdout
    check_causal_order(r.stdout)
