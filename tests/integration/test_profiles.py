"""Profiles in Go's format: --cpuprofile (pstats + flame graph + pprof),
--blockprofile, --mutexprofile, --memprofile, each merged from every P and
written as gzipped profile.proto; read back with parago's own reader in
every run and with ``go tool pprof -top`` when Go is installed."""

from __future__ import annotations

import gzip
import os
import pstats
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import parago as pg
from parago._runtime import pprof, profile

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PARAGO_") or k == "PARAGO_START_METHOD"}
ENV["PYTHONPATH"] = str(ROOT)

PROG = """
    import parago as pg

    def spin(n):
        s = 0
        for i in range(n):
            s += i * i
        return s

    def worker(mu, out, wg):
        for _ in range(10):
            mu.lock()
            spin(100000)  # held while the others wait for it
            mu.unlock()
        big = bytearray(4_000_000)  # live while the goroutine sleeps: at a memory peak
        pg.sleep(0.1)
        out.send(len(big))
        wg.done()

    def main():
        mu = pg.Mutex()
        out = pg.Chan(8)
        wg = pg.WaitGroup()
        wg.add(4)
        for _ in range(4):
            pg.go(worker, mu, out, wg)
        wg.wait()
        print("total", sum(out.recv() for _ in range(4)))

    if __name__ == "__main__":
        pg.run(main)
"""


def parago_run(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    p = tmp_path / "prog.py"
    p.write_text(textwrap.dedent(PROG))
    return subprocess.run([sys.executable, "-m", "parago", "run", "--procs", "2", *flags, str(p)],
                          capture_output=True, text=True, timeout=120, env=ENV, cwd=tmp_path)


def names(stack: list) -> list[str]:
    return [fr[0] for fr in stack]


def go_top(path: Path) -> str | None:
    """``go tool pprof -top`` of a profile, or None without Go."""
    if shutil.which("go") is None:
        return None
    r = subprocess.run(["go", "tool", "pprof", "-top", str(path)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=os.environ.get("HOME", "/tmp")))
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.timeout(180)
def test_every_profile_is_gzipped_profile_proto_merged_from_every_p(tmp_path: Path) -> None:
    r = parago_run(tmp_path, "--cpuprofile", "cpu.prof", "--blockprofile", "block.pb.gz",
                   "--mutexprofile", "mutex.pb.gz", "--memprofile", "mem.pb.gz")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "total 16000000"

    # CPU: the existing forms still there, and pprof beside them
    st = pstats.Stats(str(tmp_path / "cpu.prof"))
    assert "spin" in {fn[2] for fn in st.stats}  # type: ignore[attr-defined]
    assert (tmp_path / "cpu.prof.svg").read_text().startswith("<svg")
    assert "[sync.Mutex.Lock] worker" in (tmp_path / "cpu.prof.block").read_text()
    raw = (tmp_path / "cpu.prof.pb.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # gzip
    cpu = pprof.read(raw)
    assert cpu["sample_types"] == [("samples", "count"), ("cpu", "nanoseconds")]
    assert cpu["period_type"] == ("cpu", "nanoseconds") and cpu["period"] == 5_000_000
    spin = [(s, v, lab) for s, v, lab in cpu["samples"] if s and s[0][0] == "prog.spin"]
    assert spin and all(v[1] == v[0] * 5_000_000 for _, v, _ in spin)
    assert all(names(s)[1] == "prog.worker" and s[0][1].endswith("prog.py") for s, _, _ in spin)
    assert {lab["p"] for _, _, lab in cpu["samples"]} == {"P0", "P1"}  # every P's part is in it
    assert not list(tmp_path.glob("*.p[0-9]")), "the per-P parts are merged and removed"

    # block: time parked, by stack (the API call at the top) and wait reason
    block = pprof.read((tmp_path / "block.pb.gz").read_bytes())
    assert block["sample_types"] == [("contentions", "count"), ("delay", "nanoseconds")]
    locks = [(s, v) for s, v, lab in block["samples"] if lab["wait reason"] == "sync.Mutex.Lock"]
    assert locks and all(names(s)[:2] == ["parago._sync.Mutex.lock", "__main__.worker"] for s, _ in locks)
    assert sum(v[0] for _, v in locks) >= 10 and sum(v[1] for _, v in locks) > 0
    assert any(lab["wait reason"] == "sleep" for _, _, lab in block["samples"])
    assert re.search(r"^\s+\d+\.\d+\s+\d+  \[sync\.Mutex\.Lock\] worker \S*prog\.py:12$",
                     (tmp_path / "block.pb.gz.txt").read_text(), re.M)

    # mutex: the delay is charged to the stack that held it (its unlock)
    mutex = pprof.read((tmp_path / "mutex.pb.gz").read_bytes())
    assert mutex["sample_types"] == [("contentions", "count"), ("delay", "nanoseconds")]
    assert mutex["samples"]
    for s, v, _ in mutex["samples"]:
        assert names(s)[:2] == ["parago.Mutex.unlock", "__main__.worker"] and s[1][2] == 14
        assert v[0] >= 1 and v[1] > 0
    # waiting for it took about as long as the block profile says (the same waits, seen from both ends)
    m_total = sum(v[1] for _, v, _ in mutex["samples"])
    b_total = sum(v[1] for _, v in locks)
    assert 0.3 * b_total <= m_total <= 1.5 * b_total, (m_total, b_total)
    assert "worker" in (tmp_path / "mutex.pb.gz.txt").read_text()

    # memory: the 4 MB buffers live at the peak, at their line, in the worker
    mem = pprof.read((tmp_path / "mem.pb.gz").read_bytes())
    assert mem["sample_types"] == [("inuse_objects", "count"), ("inuse_space", "bytes")]
    bufs = [v for s, v, _ in mem["samples"] if s[0][0] == "prog.worker" and s[0][2] == 15]
    assert sum(v[1] for v in bufs) >= 4_000_000, sorted(mem["samples"], key=lambda x: -x[1][1])[:3]
    assert "prog.worker" in (tmp_path / "mem.pb.gz.txt").read_text()

    for f in ("cpu.prof.pb.gz", "block.pb.gz", "mutex.pb.gz", "mem.pb.gz"):
        top = go_top(tmp_path / f)
        if top is not None:
            assert re.search(r"(worker|spin|lock|unlock)", top), top


@pytest.mark.timeout(120)
def test_go_tool_pprof_reads_them(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("go is not installed: the profiles are checked with parago's reader only")
    r = parago_run(tmp_path, "--cpuprofile", "cpu.prof", "--mutexprofile", "mutex.pb.gz")
    assert r.returncode == 0, r.stderr
    top = go_top(tmp_path / "cpu.prof.pb.gz")
    assert top is not None and re.search(r"prog\.spin", top), top
    top = go_top(tmp_path / "mutex.pb.gz")
    assert top is not None and "parago.Mutex.unlock" in top and "__main__.worker" in top, top


@pytest.mark.timeout(120)
def test_a_profile_path_that_cannot_be_written_is_said_at_start_and_the_program_runs(tmp_path: Path) -> None:
    bad = tmp_path / "no" / "such" / "dir" / "m.pb.gz"
    r = parago_run(tmp_path, "--mutexprofile", str(bad), "--blockprofile", "block.pb.gz")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "total 16000000"  # it ran
    assert re.match(rf"^parago run: --mutexprofile {re.escape(str(bad))}: no such directory: "
                    rf"{re.escape(str(bad.parent))}; running without that profile\n", r.stderr), r.stderr
    assert not bad.parent.exists()
    assert pprof.read((tmp_path / "block.pb.gz").read_bytes())["samples"]  # the others are written
    r = parago_run(tmp_path, "--cpuprofile", str(tmp_path))  # a directory
    assert r.returncode == 0 and re.match(r"^parago run: --cpuprofile \S+: is a directory;", r.stderr), r.stderr


def _contended():
    mu = pg.Mutex()
    wg = pg.WaitGroup()
    wg.add(2)
    for _ in range(2):
        pg.go(_hold, mu, wg)
    wg.wait()
    return "ok"


def _hold(mu, wg):
    for _ in range(5):
        with mu:
            pg.sleep(0.005)
    wg.done()


@pytest.mark.timeout(60)
def test_mutexprofile_from_the_environment_and_nothing_left_wrapped(tmp_path: Path, monkeypatch, procs) -> None:
    unlock = pg.Mutex.unlock
    assert profile.sampler_for({}, 0) is None  # no flag: no sampler, the hub parks directly
    path = tmp_path / "m.pb.gz"
    monkeypatch.setenv("PARAGO_MUTEXPROFILE", str(path))
    assert pg.run(_contended, procs=procs) == "ok"
    assert pg.Mutex.unlock is unlock  # the run's hooks are gone: later runs pay nothing
    samples = pprof.read(path.read_bytes())["samples"]
    assert samples and all(names(s)[:2] == ["parago.Mutex.unlock", "parago._sync._Locker.__exit__"] for s, _, _ in samples)
    assert any(n.endswith("_hold") for s, _, _ in samples for n in names(s))
    monkeypatch.setenv("PARAGO_MUTEXPROFILE", str(tmp_path / "nope" / "m.pb.gz"))
    assert pg.run(_contended, procs=procs) == "ok"  # said on stderr at start; the program runs


@pytest.mark.timeout(30)
def test_pprof_writer_and_reader_round_trip(tmp_path: Path) -> None:
    b = pprof.Builder([("alloc_objects", "count"), ("alloc_space", "bytes")], ("space", "bytes"), 512)
    a = ("pkg.a", "/src/a.py", 10, 8)
    c = ("pkg.c", "/src/c.py", 3, 1)
    b.add([a, c], [2, 1 << 40], {"p": "P1"})
    b.add([c], [1, -5], {"k": "v"})
    b.add([a, c], [0, 7])
    b.comments.append("hello")
    out = tmp_path / "x.pb.gz"
    b.write(str(out), time_nanos=123, duration_nanos=456)
    d = pprof.read(out.read_bytes())
    assert d["sample_types"] == [("alloc_objects", "count"), ("alloc_space", "bytes")]
    assert d["period_type"] == ("space", "bytes") and d["period"] == 512
    assert d["time_nanos"] == 123 and d["duration_nanos"] == 456 and d["comments"] == ["hello"]
    assert d["samples"] == [
        ([("pkg.a", "/src/a.py", 10), ("pkg.c", "/src/c.py", 3)], [2, 1 << 40], {"p": "P1"}),
        ([("pkg.c", "/src/c.py", 3)], [1, -5], {"k": "v"}),
        ([("pkg.a", "/src/a.py", 10), ("pkg.c", "/src/c.py", 3)], [0, 7], {}),
    ]
    assert pprof.read(gzip.decompress(out.read_bytes())) == d  # plain protobuf too
    with pytest.raises(ValueError, match=r"^pprof\.Builder\.add: 2 values expected, got 1$"):
        b.add([a], [1])


@pytest.mark.timeout(30)
def test_cpu_time_is_samples_times_the_period_exactly(tmp_path: Path) -> None:
    """811 samples are 4,055,000,000 ns, not the 4,054,999,999 that 811 * 0.005 * 1e9 gives."""
    path = str(tmp_path / "cpu.prof")
    frame = ("/src/prog.py", 5, "spin", 7, "spin")  # what the sampler keeps: file, first line, name, line, qualname
    for p, n in ((0, 811), (1, 3)):
        profile._dump(f"{path}.p{p}", {(frame,): n})
        profile._dump(f"{path}.block.p{p}", {})
    profile.merge(path, 2)
    cpu = pprof.read((tmp_path / "cpu.prof.pb.gz").read_bytes())
    assert sorted(v for _, v, _ in cpu["samples"]) == [[3, 15_000_000], [811, 4_055_000_000]]
    assert cpu["duration_nanos"] == 814 * 5_000_000
