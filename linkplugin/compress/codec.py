"""Section-level codecs: compress a set of sections in shards, decompress one.

Compression plans every shard of every section up front, hands them all to the
shared process pool at once (so small sections do not wait on big ones), and
joins the results by index: the Go linker's parallel dwarfcompress, with
shards so a single large .debug_info is spread over the workers too.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator

from linkplugin.compress import shards
from linkplugin.elf.structs import ELFCOMPRESS_ZLIB, ELFCOMPRESS_ZSTD, MAX_MOVED_ALIGN, Layout
from linkplugin.errors import LinkpluginError
from linkplugin.pool import run_tasks, warm_up

CODECS = ("zlib", "zstd")
# objcopy's and libzstd's defaults, so "same level" comparisons are fair.
DEFAULT_LEVEL = {"zlib": 6, "zstd": 3}
LEVELS = {"zlib": range(0, 10), "zstd": range(1, 23)}
# zlib shards are primed with the 32 KiB before them, so their size barely
# changes the ratio; zstd frames start cold, and at 4 MiB its output is no
# larger than objcopy's single frame (1 MiB cost 1-2%).
DEFAULT_SHARD_SIZE = {"zlib": 1 << 20, "zstd": 4 << 20}
# zlib's default memLevel, as objcopy uses: 9 measured larger on real DWARF.
ZLIB_MEM_LEVEL = 8
_CHUNK = 1 << 20  # decompression step: never allocate what a header merely claims
_SMALL_JOB = 2 << 20  # plain bytes one process compresses about as fast as two
_FEED = 1 << 16  # compressed bytes handed to zlib at a time (see _unzlib)


@dataclass(frozen=True)
class Settings:
    """Everything that decides the compressed bytes. Not the worker count."""

    codec: str = "zlib"
    level: int | None = None
    shard_size: int | None = None

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise LinkpluginError(f"unknown compression type {self.codec!r} (use zlib or zstd)")
        if self.level is None:
            object.__setattr__(self, "level", DEFAULT_LEVEL[self.codec])
        if self.shard_size is None:
            object.__setattr__(self, "shard_size", DEFAULT_SHARD_SIZE[self.codec])
        if self.level not in LEVELS[self.codec]:
            r = LEVELS[self.codec]
            raise LinkpluginError(f"{self.codec} level must be {r.start} to {r.stop - 1}, not {self.level}")
        if self.shard_size < shards.WINDOW:
            raise LinkpluginError(f"shard size must be at least {shards.WINDOW} bytes")


@dataclass(frozen=True)
class Packed:
    """A compressed input section: its codec and where its payload (after the
    header) lies in the input file. The payload is read from the file a slice
    at a time, not through the input's memory map, whose pages would stay
    resident in this process once read."""

    name: str
    codec: str  # "zlib", "zstd" or "zdebug" (legacy GNU, a zlib stream)
    path: str
    start: int
    length: int


@dataclass(frozen=True)
class Plain:
    """Where a section's plain bytes are: in the input file, in memory, or
    inside a compressed input section (``size`` is then its header's claim,
    checked as the data decodes)."""

    size: int
    path: str | None = None  # read by the workers themselves
    offset: int = 0
    data: bytes | memoryview | None = None
    packed: Packed | None = None  # decompressed as the shards need it


def _zlib_header(level: int) -> bytes:
    # RFC 1950: CMF 0x78 (deflate, 32 KiB window), FLEVEL as zlib itself sets it.
    flevel = 0 if level < 2 else 1 if level < 6 else 2 if level == 6 else 3
    head = (0x78 << 8) | (flevel << 6)
    head += 31 - head % 31
    return head.to_bytes(2, "big")


def _task(settings: Settings, source: str | bytes, offset: int, prime: int, length: int,
          last: bool) -> tuple:
    if settings.codec == "zlib":
        return (source, offset, prime, length, settings.level, ZLIB_MEM_LEVEL, last)
    return (source, offset, prime, length, settings.level)


def _tasks(plain: Plain, settings: Settings) -> Iterator[tuple]:
    """The shard tasks of one section, in order, made as they are taken.

    A compressed input is decompressed here, one shard ahead at most: the
    plain section is never held whole, whatever its header claims.
    """
    if plain.packed is not None:
        yield from _streamed_tasks(plain, settings)
        return
    size, step = plain.size, settings.shard_size
    for start in range(0, size, step):
        length = min(step, size - start)
        prime = min(shards.WINDOW, start) if settings.codec == "zlib" else 0
        if plain.path is not None:
            source, offset = plain.path, plain.offset + start
        else:
            source, offset = bytes(plain.data[start - prime:start + length]), 0
        yield _task(settings, source, offset, prime, length, start + length == size)


def _streamed_tasks(plain: Plain, settings: Settings) -> Iterator[tuple]:
    # The same shards, primes and flags as from a plain file: the same bytes.
    size, step = plain.size, settings.shard_size
    window = shards.WINDOW if settings.codec == "zlib" else 0
    buf = bytearray()  # prime + the shard being filled
    prime = start = 0
    for piece in plain_chunks(plain.packed, size):
        buf += piece
        while len(buf) - prime >= step or (start + len(buf) - prime == size and len(buf) > prime):
            length = min(step, len(buf) - prime)
            yield _task(settings, bytes(buf[:prime + length]), 0, prime, length, start + length == size)
            start += length
            keep = min(window, prime + length)
            del buf[:prime + length - keep]
            prime = keep


def compress_all(sections: list[Plain], settings: Settings, jobs: int) -> list[list[bytes]]:
    """The compressed payload (no Chdr) of each section, in order, as pieces
    to write one after another: joining them would copy the whole output."""
    owners: list[tuple[int, int]] = []  # (section, plain length) of each task, as made

    def flat() -> Iterator[tuple]:
        for i, plain in enumerate(sections):
            for task in _tasks(plain, settings):
                owners.append((i, task[3]))
                yield task

    fn, jobs = compressor(settings), workers(sections, jobs)
    warm_up(fn, jobs)  # before the first task: forked workers are ready at once
    results = run_tasks(fn, flat(), jobs)
    parts: list[list] = [[] for _ in sections]
    lengths: list[list[int]] = [[] for _ in sections]
    for (i, length), result in zip(owners, results):
        parts[i].append(result)
        lengths[i].append(length)
    if settings.codec == "zstd":
        return parts
    out = []
    for section_parts, section_lengths in zip(parts, lengths):
        adler = 1
        for (_, shard_adler), length in zip(section_parts, section_lengths):
            adler = shards.adler32_combine(adler, shard_adler, length)
        out.append([_zlib_header(settings.level), *(p for p, _ in section_parts), adler.to_bytes(4, "big")])
    return out


def workers(sections: list[Plain], jobs: int) -> int:
    """How many processes ``compress_all`` uses: one for small jobs, which
    starting workers would slow down (the bytes are the same)."""
    return 1 if sum(p.size for p in sections) <= _SMALL_JOB else jobs


def compressor(settings: Settings) -> Callable[..., Any]:
    """The shard function the pool runs for ``settings``."""
    return shards.deflate_shard if settings.codec == "zlib" else shards.zstd_shard


def ch_type(codec: str) -> int:
    return ELFCOMPRESS_ZLIB if codec == "zlib" else ELFCOMPRESS_ZSTD


# Decompression -------------------------------------------------------------

def describe(raw: bytes | memoryview, name: str, compressed_flag: bool, lay: Layout) -> tuple[str, int, int]:
    """(codec, plain size, addralign) of a compressed section, from its header."""
    if compressed_flag:
        if len(raw) < lay.chdr.size:
            raise LinkpluginError(f"section {name}: compression header is truncated")
        kind, size, align = lay.unpack_chdr(raw)
        codec = {ELFCOMPRESS_ZLIB: "zlib", ELFCOMPRESS_ZSTD: "zstd"}.get(kind)
        if codec is None:
            raise LinkpluginError(f"section {name}: unknown compression type {kind}")
        if align & (align - 1) or align > MAX_MOVED_ALIGN:
            # It becomes the plain section's sh_addralign when decompressed.
            raise LinkpluginError(f"section {name}: compression header has alignment {align}")
        return codec, size, align
    # Legacy GNU .zdebug_*: "ZLIB", big-endian 64-bit size, zlib stream.
    if len(raw) < 12 or bytes(raw[:4]) != b"ZLIB":
        raise LinkpluginError(f"section {name}: not a valid .zdebug section")
    return "zdebug", int.from_bytes(raw[4:12], "big"), 1


def packed(raw: bytes | memoryview, name: str, compressed_flag: bool, lay: Layout, path: str,
           offset: int) -> tuple[Plain, int]:
    """Where the plain bytes of a compressed section come from, and their
    alignment; ``raw`` is the section as stored at ``offset`` in ``path``."""
    codec, size, align = describe(raw, name, compressed_flag, lay)
    head = lay.chdr.size if compressed_flag else 12
    return Plain(size, packed=Packed(name, codec, path, offset + head, len(raw) - head)), align


def plain_chunks(source: Packed, size: int) -> Iterator[bytes]:
    """The plain bytes of a compressed section, a piece at a time.

    The size in the header is checked, never trusted for allocation: each
    piece is at most _CHUNK bytes, made only as the data really decodes, and
    decoding stops one piece past the claim.
    """
    done = 0
    try:
        with open(source.path, "rb") as f:
            f.seek(source.start)
            payload = _Payload(f, source.length)
            pieces = _unzstd(payload) if source.codec == "zstd" else _unzlib(payload, source.path, source.name)
            for piece in pieces:
                done += len(piece)
                if done > size:
                    break
                yield piece
    except OSError as exc:
        raise LinkpluginError(f"{source.path}: cannot read: {exc.strerror}") from None
    except (zlib.error, _zstd_error()) as exc:
        raise LinkpluginError(f"{source.path}: section {source.name}: corrupt {source.codec} data ({exc})") from None
    if done != size:
        raise LinkpluginError(f"{source.path}: section {source.name}: header says {size} bytes, data holds "
                              f"{'more' if done > size else done}")


class _Payload:
    """The compressed payload of one section, read from the file in order."""

    def __init__(self, f: BinaryIO, length: int) -> None:
        self.f, self.left = f, length

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data


def _unzlib(payload: _Payload, path: str, name: str) -> Iterator[bytes]:
    # Input goes in by slices, so the unconsumed tail zlib copies out at each
    # bounded step is at most one slice: feeding the whole payload would copy
    # the rest of it at every step, time quadratic in the section size.
    d = zlib.decompressobj()
    while not d.eof and (pending := payload.read(_FEED)):
        while pending and not d.eof:
            piece = d.decompress(pending, _CHUNK)
            pending = d.unconsumed_tail
            if piece:
                yield piece
    if not d.eof:
        raise LinkpluginError(f"{path}: section {name}: zlib data is truncated")


def _unzstd(payload: _Payload) -> Iterator[bytes]:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True)
    while chunk := reader.read(_CHUNK):
        yield chunk


def _zstd_error() -> type[Exception]:
    import zstandard

    return zstandard.ZstdError


def codec_version(codec: str) -> str:
    """The codec library and version: part of a build cache key."""
    if codec == "zstd":
        import zstandard

        return f"zstandard-{zstandard.__version__}/libzstd-{'.'.join(map(str, zstandard.ZSTD_VERSION))}"
    return f"zlib-{zlib.ZLIB_RUNTIME_VERSION}"
