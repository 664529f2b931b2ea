"""ctypes pointer types shared by the signature tables."""

from ctypes import POINTER, c_uint32, c_uint64

u64p = POINTER(c_uint64)
u32p = POINTER(c_uint32)
