"""Shard compressors: the functions the process pool runs.

A section is cut into fixed-size shards (the size is a setting, never derived
from the worker count), each compressed on its own, and the results joined by
index, so the bytes do not depend on how many workers ran.

zlib: the section must stay *one* zlib stream (several concatenated streams
break llvm-dwarfdump and Go's reader). Each shard is raw deflate, primed with
the 32 KiB that precede it (as pigz does, so back-references cross shard
borders and the ratio matches a single stream) and ended with Z_SYNC_FLUSH,
the last with Z_FINISH. The parent adds one zlib header and the Adler-32 of
the whole section, combined from the shards' checksums.

zstd: one frame per shard; decoders read concatenated frames as one stream.

This module is imported by spawned workers: keep its imports light.
"""
from __future__ import annotations

import zlib

WINDOW = 32768  # deflate's window: priming with more than this is useless
ADLER_BASE = 65521


def _read(source: str | bytes, offset: int, prime: int, length: int) -> bytes:
    """The shard with the ``prime`` bytes before it (zlib's dictionary).

    Plain sections of the input file are read by the worker itself, so only
    the compressed result crosses the process boundary; bytes the parent had
    to decompress first come as ``source`` already cut to prime + shard.
    """
    if isinstance(source, str):
        with open(source, "rb") as f:
            f.seek(offset - prime)
            return f.read(prime + length)
    return source


def deflate_shard(source: str | bytes, offset: int, prime: int, length: int, level: int,
                  mem_level: int, last: bool) -> tuple[bytes, int]:
    """Raw deflate of one shard and the Adler-32 of its plain bytes."""
    buf = _read(source, offset, prime, length)
    view = memoryview(buf)
    shard = view[prime:prime + length]
    if prime:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, mem_level, zdict=view[:prime])
    else:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15, mem_level)
    out = comp.compress(shard) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return out, zlib.adler32(shard)


def zstd_shard(source: str | bytes, offset: int, prime: int, length: int, level: int) -> bytes:
    """One zstd frame holding one shard (``prime`` is always 0 here)."""
    import zstandard  # only workers that do zstd pay for it

    buf = _read(source, offset, prime, length)
    frame = zstandard.ZstdCompressor(level=level, write_content_size=True).compress(buf)
    # A copy of the right size: the frame sits at the start of a buffer of the
    # worst-case size, and each one kept would pin that much of the heap.
    return bytes(memoryview(frame))


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
