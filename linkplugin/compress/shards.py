"""Shard compressors: the functions the compression threads run.

A section is cut into fixed-size shards (the size is a setting, never derived
from the worker count), each compressed on its own, and the results joined by
index, so the bytes do not depend on how many threads ran.

zlib: the section must stay *one* zlib stream (several concatenated streams
break llvm-dwarfdump and Go's reader). Each shard is raw deflate, primed with
the 32 KiB that precede it (as pigz does, so back-references cross shard
borders and the ratio matches a single stream) and ended with Z_SYNC_FLUSH,
the last with Z_FINISH. The job adds one zlib header and the Adler-32 of
the whole section, combined from the shards' checksums.

zstd: one frame per shard; decoders read concatenated frames as one stream.

Both run on the compression job's threads (see parallel.py): zlib and
libzstd release the GIL while they work.
"""
from __future__ import annotations

import zlib
from typing import Any, Callable

WINDOW = 32768  # deflate's window: priming with more than this is useless
ADLER_BASE = 65521
# zlib's default memLevel, as objcopy uses: 9 measured larger on real DWARF.
ZLIB_MEM_LEVEL = 8


def deflate_shard(buf: bytes | memoryview, prime: int, level: int, last: bool) -> tuple[list[bytes], int]:
    """Raw deflate of ``buf[prime:]`` primed with ``buf[:prime]``, as pieces
    to write one after another, and the Adler-32 of the shard's plain bytes."""
    view = memoryview(buf)
    shard = view[prime:]
    if prime:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, ZLIB_MEM_LEVEL, zdict=view[:prime])
    else:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, ZLIB_MEM_LEVEL)
    return [comp.compress(shard), comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)], zlib.adler32(shard)


def zstd_compressor(level: int) -> Callable[[bytes | memoryview], bytes]:
    """One thread's zstd shard function: one frame per shard, with its content
    size, from a context the thread reuses (making one per shard costs its
    tables again each time)."""
    import zstandard  # only zstd jobs pay for it

    compress: Any = zstandard.ZstdCompressor(level=level, write_content_size=True).compress

    def zstd_shard(buf: bytes | memoryview) -> bytes:
        # A copy of the right size: the frame sits at the start of a buffer of the
        # worst-case size, and each one kept would pin that much of the heap.
        return bytes(memoryview(compress(buf)))
    return zstd_shard

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
