"""Section-level codecs: compress a set of sections in shards, decompress one.

Compression plans every shard of every section up front, hands them all to the
shared process pool at once (so small sections do not wait on big ones), and
joins the results by index: the Go linker's parallel dwarfcompress, with
shards so a single large .debug_info is spread over the workers too.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from linkplugin.compress import shards
from linkplugin.elf.structs import ELFCOMPRESS_ZLIB, ELFCOMPRESS_ZSTD, MAX_MOVED_ALIGN, Layout
from linkplugin.errors import LinkpluginError
from linkplugin.pool import run_tasks

CODECS = ("zlib", "zstd")
# objcopy's and libzstd's defaults, so "same level" comparisons are fair.
DEFAULT_LEVEL = {"zlib": 6, "zstd": 3}
LEVELS = {"zlib": range(0, 10), "zstd": range(1, 23)}
DEFAULT_SHARD_SIZE = 1 << 20
# zlib's default memLevel, as objcopy uses: 9 measured larger on real DWARF.
ZLIB_MEM_LEVEL = 8
_CHUNK = 1 << 20  # decompression step: never allocate what a header merely claims


@dataclass(frozen=True)
class Settings:
    """Everything that decides the compressed bytes. Not the worker count."""

    codec: str = "zlib"
    level: int | None = None
    shard_size: int = DEFAULT_SHARD_SIZE

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise LinkpluginError(f"unknown compression type {self.codec!r} (use zlib or zstd)")
        if self.level is None:
            object.__setattr__(self, "level", DEFAULT_LEVEL[self.codec])
        if self.level not in LEVELS[self.codec]:
            r = LEVELS[self.codec]
            raise LinkpluginError(f"{self.codec} level must be {r.start} to {r.stop - 1}, not {self.level}")
        if self.shard_size < shards.WINDOW:
            raise LinkpluginError(f"shard size must be at least {shards.WINDOW} bytes")


@dataclass(frozen=True)
class Plain:
    """Where a section's plain bytes are: in the input file, or in memory."""

    size: int
    path: str | None = None  # read by the workers themselves
    offset: int = 0
    data: bytes | memoryview | None = None


def _zlib_header(level: int) -> bytes:
    # RFC 1950: CMF 0x78 (deflate, 32 KiB window), FLEVEL as zlib itself sets it.
    flevel = 0 if level < 2 else 1 if level < 6 else 2 if level == 6 else 3
    head = (0x78 << 8) | (flevel << 6)
    head += 31 - head % 31
    return head.to_bytes(2, "big")


def _tasks(plain: Plain, settings: Settings) -> list[tuple]:
    size, step = plain.size, settings.shard_size
    zlib_codec = settings.codec == "zlib"
    tasks = []
    for start in range(0, size, step):
        length = min(step, size - start)
        prime = min(shards.WINDOW, start) if zlib_codec else 0
        if plain.path is not None:
            source, offset = plain.path, plain.offset + start
        else:
            source, offset = bytes(plain.data[start - prime:start + length]), 0
        if zlib_codec:
            tasks.append((source, offset, prime, length, settings.level, ZLIB_MEM_LEVEL,
                          start + length == size))
        else:
            tasks.append((source, offset, prime, length, settings.level))
    return tasks


def compress_all(sections: list[Plain], settings: Settings, jobs: int) -> list[bytes]:
    """The compressed payload (no Chdr) of each section, in order."""
    per_section = [_tasks(p, settings) for p in sections]
    flat = [t for tasks in per_section for t in tasks]
    fn = shards.deflate_shard if settings.codec == "zlib" else shards.zstd_shard
    if sum(p.size for p in sections) <= 2 * settings.shard_size:
        jobs = 1  # starting workers would cost more than it saves; same bytes
    results = run_tasks(fn, flat, jobs)
    out, at = [], 0
    for plain, tasks in zip(sections, per_section):
        parts = results[at:at + len(tasks)]
        at += len(tasks)
        if settings.codec == "zstd":
            out.append(b"".join(parts))
            continue
        adler = 1
        for (source, offset, prime, length, *_), (_, shard_adler) in zip(tasks, parts):
            adler = shards.adler32_combine(adler, shard_adler, length)
        out.append(_zlib_header(settings.level) + b"".join(p for p, _ in parts)
                   + adler.to_bytes(4, "big"))
    return out


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


def decompress(raw: bytes | memoryview, name: str, compressed_flag: bool, lay: Layout) -> tuple[bytes, int]:
    """The plain bytes of a compressed section and their alignment.

    The size in the header is checked, never trusted for allocation: output
    grows only as the data really decodes, and stops one step past the claim.
    """
    codec, size, align = describe(raw, name, compressed_flag, lay)
    payload = raw[lay.chdr.size:] if compressed_flag else raw[12:]
    try:
        if codec == "zstd":
            data = _unzstd(payload, size)
        else:
            data = _unzlib(payload, size, name)
    except (zlib.error, _zstd_error()) as exc:
        raise LinkpluginError(f"section {name}: corrupt {codec} data ({exc})") from None
    if len(data) != size:
        raise LinkpluginError(f"section {name}: header says {size} bytes, data holds "
                              f"{'more' if len(data) > size else len(data)}")
    return data, align


def _unzlib(payload: bytes | memoryview, size: int, name: str) -> bytes:
    d = zlib.decompressobj()
    out = bytearray()
    pending = bytes(payload)
    while pending and not d.eof and len(out) <= size:
        out += d.decompress(pending, _CHUNK)
        pending = d.unconsumed_tail
    if not d.eof and len(out) <= size:
        raise LinkpluginError(f"section {name}: zlib data is truncated")
    return bytes(out)


def _unzstd(payload: bytes | memoryview, size: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(bytes(payload), read_across_frames=True)
    out = bytearray()
    while len(out) <= size:
        chunk = reader.read(_CHUNK)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _zstd_error() -> type[Exception]:
    import zstandard

    return zstandard.ZstdError


def codec_version(codec: str) -> str:
    """The codec library and version: part of a build cache key."""
    if codec == "zstd":
        import zstandard

        return f"zstandard-{zstandard.__version__}/libzstd-{'.'.join(map(str, zstandard.ZSTD_VERSION))}"
    return f"zlib-{zlib.ZLIB_RUNTIME_VERSION}"
