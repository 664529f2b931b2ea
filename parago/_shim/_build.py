"""Compile the C shim (shm/*.c) into a plain shared library.

Used by setup.py at ``pip install`` time and, in a source checkout, by the
loader when the library is missing or older than its sources.  The library
has no Python C-API in it, so one build serves every CPython version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

LIBNAME = "libparago_shm.so"
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-fvisibility=hidden"]


def sources(shm_dir: Path) -> list[Path]:
    return sorted(shm_dir.glob("*.c"))


def headers(shm_dir: Path) -> list[Path]:
    return sorted(shm_dir.glob("*.h"))


def compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()[:1] if cc else ["cc"]


def build(shm_dir: Path, out: Path, extra_flags: list[str] | None = None) -> Path:
    """Compile every shm/*.c into ``out`` (atomically replaced)."""
    srcs = sources(shm_dir)
    if not srcs:
        raise RuntimeError(f"build: no C sources in {shm_dir}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=str(out.parent))
    os.close(fd)
    cmd = [
        *compiler(),
        *CFLAGS,
        *(extra_flags or []),
        "-shared",
        "-I",
        str(shm_dir),
        *map(str, srcs),
        "-o",
        tmp,
    ]
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as e:
        os.unlink(tmp)
        raise RuntimeError(f"build: no C compiler found ({cmd[0]}); install gcc") from e
    except subprocess.CalledProcessError as e:
        os.unlink(tmp)
        raise RuntimeError(
            f"build: compiling the shim failed:\n{' '.join(cmd)}\n{e.stderr.decode(errors='replace')}"
        ) from e
    os.replace(tmp, out)
    return out


def stale(shm_dir: Path, lib: Path) -> bool:
    if not lib.exists():
        return True
    mtime = lib.stat().st_mtime
    return any(p.stat().st_mtime > mtime for p in sources(shm_dir) + headers(shm_dir))


if __name__ == "__main__":  # python -m parago._shim._build [out]
    here = Path(__file__).resolve()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / LIBNAME
    print(build(here.parents[2] / "shm", target))
