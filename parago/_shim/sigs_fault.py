"""ctypes signatures of the shim's entry points for owner-tagged locks and the death watch (shm/watch.c).

Merged into the one table in ``parago/_shim/__init__.py`` (argtypes and
restype are declared once, at load).  ``BLOCKING``: the entry points that
can wait, so callers use the GIL-releasing ``blocking`` handle for them.
"""

from __future__ import annotations

from ctypes import c_char_p, c_int, c_int64, c_uint32, c_uint64, c_void_p  # noqa: F401

from ._ctypes import u32p, u64p  # noqa: F401

SIGS: dict[str, tuple[list, object]] = {}
BLOCKING: set[str] = set()
