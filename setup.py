"""Build hook: compile shm/*.c into parago/_shim/libparago_shm.so.

The library is plain C (no Python C-API) loaded with ctypes, so the wheel
is platform-specific but serves every CPython version.
"""

import importlib.util
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _load_build():
    spec = importlib.util.spec_from_file_location("_pg_build", HERE / "parago" / "_shim" / "_build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildPyWithShim(build_py):
    def run(self):
        super().run()
        b = _load_build()
        out = Path(self.build_lib) / "parago" / "_shim" / b.LIBNAME
        b.build(HERE / "shm", out)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithShim}, distclass=BinaryDistribution)
