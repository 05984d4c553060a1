"""Shard compressors: the functions the compression threads run.

A section is cut into fixed-size shards (the size is a setting, never derived
from the worker count), each compressed on its own, and the results joined by
index, so the bytes do not depend on how many threads ran.

zlib: the section must stay *one* zlib stream (several concatenated streams
break llvm-dwarfdump and Go's reader). Each shard is raw deflate made by
libdeflate (the ``deflate`` package, which bundles it): at the same level it is
about 4x faster than zlib and its output is smaller on DWARF (python3.11d's
debug sections: 0.989x of objcopy's single zlib stream, though shards share no
back-references). libdeflate always ends its output with a final block, so a
shard that is not its section's last is made into what zlib's Z_SYNC_FLUSH
gives: the last block's BFINAL bit cleared and an empty stored block appended
at the bit where that block ends. The job adds one zlib header and the
Adler-32 of the whole section, combined from the shards' checksums.

Where the last block starts and ends (bit positions) only decoding tells:
zlib's inflate stops at each block boundary when asked (Z_BLOCK) and says the
bit there. Python's zlib module does not expose that, so the system's libz is
called through ctypes. The positions are facts of the stream, so the bytes do
not depend on which zlib finds them; decoding costs about a quarter of the
compression, and checks that the shard decodes to its length.

zstd: one frame per shard; decoders read concatenated frames as one stream.

Both run on the compression job's threads (see parallel.py): libdeflate,
inflate (a ctypes call) and libzstd release the GIL while they work.
"""
from __future__ import annotations

import importlib
import os
import sys
import threading

from linkplugin.errors import LinkpluginError

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any, Callable

ADLER_BASE = 65521
MIN_SHARD_SIZE = 32768  # smaller shards only cost ratio (each restarts its matches and tables)
MAX_SHARD_SIZE = 1 << 30  # the block walk hands inflate a shard's output whole (avail_in: 32 bits)
_SYNC_TAIL = b"\x00\x00\xff\xff"  # an empty stored block's LEN and NLEN
_Z_OK, _Z_BLOCK = 0, 5
_OUT_SIZE = 64 << 10
_libz: Any = None  # (ctypes module, z_stream type, the library, its version), loaded by the first zlib job


def deflater(level: int) -> Callable[[bytes | memoryview, bool], tuple[bytearray, int]]:
    """One thread's zlib shard function: ``(buf, last)`` -> the raw deflate of ``buf``
    and its Adler-32. A shard that is not
    its section's last ends on a byte, with a non-final block, so the next
    shard's blocks can follow it."""
    from zlib import adler32  # (a zlib job's: the module is 0.2 ms of a start that needs none)

    compress = deflate_library().deflate_compress
    ends = _BlockEnds()

    def deflate_shard(buf: bytes | memoryview, last: bool) -> tuple[bytearray, int]:
        raw = compress(buf, level)
        if last:
            return raw, adler32(buf)
        start, end = ends(raw, len(buf))
        raw[start >> 3] &= ~(1 << (start & 7)) & 0xFF  # BFINAL is the first bit of a block's header
        # The stored block's 3 header bits (all zero) at ``end``, then zero bits up to a byte, then
        # LEN and NLEN. libdeflate pads its last byte with zero bits, so only the length changes.
        keep = (end + 3 + 7) >> 3
        if keep > len(raw):
            raw.append(0)
        else:
            del raw[keep:]
        raw += _SYNC_TAIL
        return raw, adler32(buf)
    return deflate_shard


class _BlockEnds:
    """One thread's block walker: the bit where the last deflate block of a raw
    stream starts and the bit just past its end-of-block code."""

    def __init__(self) -> None:
        ctypes, stream_type, self.lib, self.version = _load_libz()
        self.ctypes = ctypes
        self.stream = stream_type()
        self.size = ctypes.sizeof(stream_type)
        # Where inflate writes the decoded bytes, which nobody reads: reused round and round
        # (inflate keeps its own 32 KiB window), so a thread holds 64 KiB, not a shard.
        self.out = ctypes.create_string_buffer(_OUT_SIZE)

    def __call__(self, raw: bytearray, length: int) -> tuple[int, int]:
        ctypes, lib, s = self.ctypes, self.lib, self.stream
        ref = ctypes.byref(s)
        source = (ctypes.c_char * len(raw)).from_buffer(raw)
        try:
            if lib.inflateInit2_(ref, -15, self.version, self.size) != _Z_OK:
                raise LinkpluginError("the system's zlib cannot inflate (inflateInit2 failed)")
            try:
                s.next_in, s.avail_in = ctypes.addressof(source), len(raw)
                out, size = ctypes.addressof(self.out), len(self.out)
                s.avail_out = 0
                start = 0
                while True:
                    if not s.avail_out:
                        s.next_out, s.avail_out = out, size
                    status = lib.inflate(ref, _Z_BLOCK)
                    if status != _Z_OK:
                        break
                    # data_type: unused bits of the last byte read, +64 in the last block,
                    # +128 right after an end-of-block code.
                    flags = s.data_type
                    if flags & 128:
                        at = s.total_in * 8 - (flags & 7)
                        if flags & 64:
                            if s.total_out != length:
                                break
                            return start, at
                        start = at
            finally:
                lib.inflateEnd(ref)
        finally:
            del source  # release the bytearray, which the caller then resizes
        raise LinkpluginError("libdeflate's output did not decode to its shard (inflate status "
                              f"{status}, {s.total_out} of {length} bytes)")


def _load_libz() -> Any:
    global _libz
    if _libz is None:
        import ctypes

        try:
            lib = ctypes.CDLL("libz.so.1")
        except OSError:
            # Only here: ctypes.util imports shutil, subprocess and tempfile (8 ms, in the
            # compression's first shard on Linux until this was moved), and may run ldconfig.
            import ctypes.util

            name = ctypes.util.find_library("z")
            if name is None:
                raise LinkpluginError("zlib compression needs the system's zlib library (libz), not found") from None
            lib = ctypes.CDLL(name)

        class ZStream(ctypes.Structure):
            # zlib.h's z_stream; inflateInit2_ checks its size against the library's.
            _fields_ = [("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint), ("total_in", ctypes.c_ulong),
                        ("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_uint),
                        ("total_out", ctypes.c_ulong), ("msg", ctypes.c_char_p), ("state", ctypes.c_void_p),
                        ("zalloc", ctypes.c_void_p), ("zfree", ctypes.c_void_p), ("opaque", ctypes.c_void_p),
                        ("data_type", ctypes.c_int), ("adler", ctypes.c_ulong), ("reserved", ctypes.c_ulong)]

        lib.zlibVersion.restype = ctypes.c_char_p
        lib.inflateInit2_.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.inflate.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.inflateEnd.argtypes = [ctypes.c_void_p]
        _libz = (ctypes, ZStream, lib, lib.zlibVersion())
    return _libz


def zstd_compressor(level: int) -> Callable[[bytes | memoryview], bytes]:
    """One thread's zstd shard function: one frame per shard, with its content
    size, from a context the thread reuses (making one per shard costs its
    tables again each time)."""
    # The frame as the library returns it: made in a buffer of the worst-case size and shrunk
    # to the frame's (the untouched tail was never resident). A copy of the right size, as
    # made before the output was streamed, cost each thread another frame's memory at once
    # and bought nothing once a frame is written as soon as it is made: python3.11d's peak at
    # -j2 29.5 -> 26.9 MiB, libjvm.so's 41 -> 33 MiB.
    compress: Callable[[bytes | memoryview], bytes] = \
        zstd_library().ZstdCompressor(level=level, write_content_size=True).compress
    return compress


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """zlib's adler32_combine: the checksum of A+B from those of A and B."""
    rem = len2 % ADLER_BASE
    sum1 = adler1 & 0xFFFF
    sum2 = (rem * sum1) % ADLER_BASE
    sum1 += (adler2 & 0xFFFF) + ADLER_BASE - 1
    sum2 += ((adler1 >> 16) & 0xFFFF) + ((adler2 >> 16) & 0xFFFF) + ADLER_BASE - rem
    if sum1 >= ADLER_BASE:
        sum1 -= ADLER_BASE
    if sum1 >= ADLER_BASE:
        sum1 -= ADLER_BASE
    if sum2 >= ADLER_BASE << 1:
        sum2 -= ADLER_BASE << 1
    if sum2 >= ADLER_BASE:
        sum2 -= ADLER_BASE
    return sum1 | (sum2 << 16)


# The codec packages' first import, one thread at a time: a job's threads each import the package
# when they start, and a thread importing it while another's import is failing (the package
# absent: pip install --no-deps) got the half-made module, an AttributeError traceback instead
# of the one-line error (one run in four at -j2).
importing = threading.Lock()


def deflate_library() -> Any:
    """The ``deflate`` package (libdeflate), imported by the first zlib compression job."""
    try:
        with importing:
            import deflate
    except ImportError:
        raise LinkpluginError("zlib compression needs the Python package deflate (pip install deflate)") from None
    return deflate


def zstd_library() -> Any:
    """The ``zstandard`` package's C backend (its ZstdCompressor, ZstdDecompressor, ZstdError and
    ZSTD_VERSION), imported by the first zstd job."""
    try:
        with importing:
            return (sys.modules.get("zstandard") or sys.modules.get("zstandard.backend_c") or _zstd_backend()
                    or importlib.import_module("zstandard"))
    except ImportError:
        raise LinkpluginError("zstd needs the Python package zstandard (pip install zstandard)") from None


def _zstd_backend() -> Any:
    """``zstandard.backend_c`` loaded without the package: its ``__init__`` only picks that
    backend on CPython and re-exports it, but imports ``platform`` and ``typing`` to do so (6 ms,
    7% of a 16 MB input's zstd compression). None where the package is not laid out so, or the
    user chose a backend (PYTHON_ZSTANDARD_IMPORT_POLICY): the package is imported then."""
    if "PYTHON_ZSTANDARD_IMPORT_POLICY" in os.environ or sys.implementation.name != "cpython":
        return None
    from importlib import machinery

    spec = machinery.PathFinder.find_spec("zstandard")
    if spec is None or not spec.origin:
        return None
    for suffix in machinery.EXTENSION_SUFFIXES:
        path = os.path.join(os.path.dirname(spec.origin), "backend_c" + suffix)
        if os.path.exists(path):
            loader = machinery.ExtensionFileLoader("zstandard.backend_c", path)
            module = loader.create_module(machinery.ModuleSpec("zstandard.backend_c", loader, origin=path))
            loader.exec_module(module)
            # Where the package finds it if it is imported later (SCons's cache key names its
            # version): one module, so one ZstdError class.
            sys.modules["zstandard.backend_c"] = module
            return module
    return None
