"""Section-level codecs: compress a set of sections in shards, decompress one.

Compression plans every shard of every section up front, hands them all to
the job's threads at once (so small sections do not wait on big ones), and
joins the results by index as the writer writes them: the Go linker's
parallel dwarfcompress, with shards so a single large .debug_info is spread
over the threads too. Compressed input sections are decoded by those threads
as well, each as a stream cut into the same shards (see parallel.py).
"""
from __future__ import annotations

import os

from linkplugin.compress import CODECS, parallel, shards
from linkplugin.elf.structs import ELFCOMPRESS_ZLIB, ELFCOMPRESS_ZSTD, MAX_MOVED_ALIGN, Layout
from linkplugin.errors import LinkpluginError
from linkplugin.record import Value

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any, BinaryIO, Callable, Iterator

# The library that inflates zlib streams, loaded with the first compressed input (a merge or a
# compression of plain sections never needs it: its import took 3-4 ms of their start-up).
_inflater: Any = None


def _inflate_library() -> Any:
    """zlib-ng when it is installed: it inflates about 1.8x faster (python3.11d's .debug_info:
    31 ms against 57), and what it decodes is the stream's bytes whatever the library, so
    nothing else changes. Else Python's zlib."""
    global _inflater
    if _inflater is None:
        try:
            with shards.importing:
                from zlib_ng import zlib_ng as library
        except ImportError:
            import zlib as library
        _inflater = library
    return _inflater

# objcopy's and libzstd's defaults, so "same level" comparisons are fair.
DEFAULT_LEVEL = {"zlib": 6, "zstd": 3}
LEVELS = {"zlib": range(0, 13), "zstd": range(1, 23)}  # zlib: libdeflate's levels, 10-12 beyond zlib's
# Shards start cold. zlib (libdeflate) at 1 MiB is still smaller than objcopy's single stream;
# zstd at 4 MiB is no larger than objcopy's single frame (1 MiB cost 1-2%).
DEFAULT_SHARD_SIZE = {"zlib": 1 << 20, "zstd": 4 << 20}
_CHUNK = 1 << 20  # decompression step: never allocate what a header merely claims
_FEED = 1 << 16  # compressed bytes handed to zlib at a time (see _unzlib)


class Settings(Value):
    """Everything that decides the compressed bytes. Not the worker count. ``level`` and
    ``shard_size`` default to the codec's."""

    __slots__ = ("codec", "level", "shard_size")

    def __init__(self, codec: str = "zlib", level: int | None = None, shard_size: int | None = None) -> None:
        if codec not in CODECS:
            raise LinkpluginError(f"unknown compression type {codec!r} (use zlib or zstd)")
        self.codec = codec
        self.level: int = DEFAULT_LEVEL[codec] if level is None else level
        self.shard_size: int = DEFAULT_SHARD_SIZE[codec] if shard_size is None else shard_size
        if self.level not in LEVELS[self.codec]:
            r = LEVELS[self.codec]
            raise LinkpluginError(f"{self.codec} level must be {r.start} to {r.stop - 1}, not {self.level}")
        if not shards.MIN_SHARD_SIZE <= self.shard_size <= shards.MAX_SHARD_SIZE:
            raise LinkpluginError(f"shard size must be {shards.MIN_SHARD_SIZE} to {shards.MAX_SHARD_SIZE} bytes")


class Packed(Value):
    """A compressed input section: its codec ("zlib", "zstd" or "zdebug": legacy GNU, a zlib
    stream) and where its payload (after the header) lies in the input file. The payload is
    read from the file a slice at a time, not through the input's memory map, whose pages would
    stay resident in this process once read."""

    __slots__ = ("name", "codec", "path", "start", "length")

    def __init__(self, name: str, codec: str, path: str, start: int, length: int) -> None:
        self.name, self.codec, self.path, self.start, self.length = name, codec, path, start, length


class Plain(Value):
    """Where a section's plain bytes are: in the input file (``path``, read by the workers
    themselves), in memory (``data``), or inside a compressed input section (``packed``,
    decompressed as the shards need it; ``size`` is then its header's claim, checked as the
    data decodes)."""

    __slots__ = ("size", "path", "offset", "data", "packed")

    def __init__(self, size: int, path: str | None = None, offset: int = 0,
                 data: bytes | memoryview | None = None, packed: Packed | None = None) -> None:
        self.size, self.path, self.offset, self.data, self.packed = size, path, offset, data, packed


def _zlib_header(level: int) -> bytes:
    # RFC 1950: CMF 0x78 (deflate, 32 KiB window), FLEVEL as zlib itself sets it.
    flevel = 0 if level < 2 else 1 if level < 6 else 2 if level == 6 else 3
    head = (0x78 << 8) | (flevel << 6)
    head += 31 - head % 31
    return head.to_bytes(2, "big")


class Shard:
    """One shard task: ``length`` plain bytes, held in ``data`` or read from
    ``path`` at ``offset`` by the thread that compresses it; ``last``: the
    section's last shard."""

    __slots__ = ("key", "length", "last", "data", "fd", "path", "offset")

    def __init__(self, key: tuple[int, int], length: int, last: bool,
                 data: bytes | memoryview | None = None, fd: int = -1, path: str = "", offset: int = 0) -> None:
        self.key, self.length, self.last = key, length, last
        self.data, self.fd, self.path, self.offset = data, fd, path, offset

    def read(self, buf: ShardBuffer) -> bytes | memoryview:
        """The shard's bytes: ``data``, or read from the file into ``buf``, the thread's own
        buffer for the shards it compresses (one buffer a thread, not a new one a shard: each
        new one is pages the system maps and zeroes again)."""
        if self.data is not None:
            return self.data
        view = buf.view(self.length)
        try:
            got = os.preadv(self.fd, [view], self.offset)  # the GIL is released while it reads
        except OSError as exc:
            raise LinkpluginError(f"{self.path}: cannot read: {exc.strerror}") from None
        if got != self.length:
            raise LinkpluginError(f"{self.path}: cannot read: the file shrank while it was read")
        return view


class ShardBuffer:
    """One thread's buffer for the shards it reads from a file: an anonymous mapping of a
    shard's size, made at the first read, whose pages become resident only as reads fill them
    (a thread that only compresses decoded or in-memory shards never has one, and a 4 MiB zstd
    buffer costs a small section's shards only their own pages)."""

    __slots__ = ("size", "map")

    def __init__(self, size: int) -> None:
        self.size, self.map = size, None

    def view(self, length: int) -> memoryview:
        if self.map is None:
            import mmap

            # A buffer its first shard fills is mapped with its pages at once (one call instead of a
            # fault a page: libstdc++'s zstd -j2 45.1 -> 43.2 ms, python3.11d's 62.9 -> 61.7, 21
            # runs); a thread that starts on a smaller shard still pays only for the pages it fills.
            populate = getattr(mmap, "MAP_POPULATE", 0) if length >= self.size else 0
            self.map = mmap.mmap(-1, self.size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
        return memoryview(self.map)[:length]


def _tasks(index: int, plain: Plain, settings: Settings, fds: dict[str, int]) -> list[Shard]:
    """The shard tasks of a plain section, in memory or in a file: no bytes read yet."""
    size, step = plain.size, settings.shard_size
    out = []
    for number, start in enumerate(range(0, size, step)):
        length = min(step, size - start)
        last = start + length == size
        if plain.path is not None:
            out.append(Shard((index, number), length, last, fd=fds[plain.path], path=plain.path,
                             offset=plain.offset + start))
        else:
            out.append(Shard((index, number), length, last, data=memoryview(plain.data)[start:start + length]))
    return out


def _streamed_tasks(index: int, plain: Plain, settings: Settings) -> Iterator[Shard]:
    """The shard tasks of a compressed input section, decoded as they are taken:
    the same shards and flags as from a plain file, so the same bytes.
    The plain section is never held whole, whatever its header claims. The last
    shard comes once the data's end was checked (its length against the header,
    the zlib stream's end and checksum): nothing after it is read, and a corrupt
    end fails the job before the section's last shard can be written."""
    size, step = plain.size, settings.shard_size
    pending: list[memoryview] = []  # the decoded pieces of the shard being filled
    have = start = number = 0
    last: Shard | None = None
    for piece in plain_chunks(plain.packed, size):
        view = memoryview(piece)
        while view:
            take = min(step - have, len(view))
            pending.append(view[:take])
            view = view[take:]
            have += take
            if have == step or start + have == size:
                data = b"".join(pending)  # the one copy of these bytes
                shard = Shard((index, number), have, start + have == size, data=data)
                pending, start, have, number = [], start + have, 0, number + 1
                if shard.last:
                    last = shard
                else:
                    yield shard
    if last is not None:
        yield last


def _kernel(settings: Settings) -> Callable[[], Callable[[Shard], Any]]:
    """What makes one thread's shard function for ``settings``."""
    level, size = settings.level, settings.shard_size
    if settings.codec == "zlib":
        def make() -> Callable[[Shard], Any]:
            shard, buf = shards.deflater(level), ShardBuffer(size)
            return lambda task: shard(task.read(buf), task.last)
        return make

    def make_zstd() -> Callable[[Shard], Any]:
        frame, buf = shards.zstd_compressor(level), ShardBuffer(size)
        return lambda task: frame(task.read(buf))
    return make_zstd


class CompressJob:
    """The compressed payloads (no Chdr) of ``sections``, each handed out as pieces to write one
    after another (``pieces``), made on ``jobs`` threads from the first request on.

    The writer asks for the sections in the order it writes them, which is the order they are
    given in, and the whole plain shards are queued in that order: each shard is written, and
    its memory freed, as soon as it and those before it are made, so the job holds a few shards,
    not the whole output (libjvm.so's debug file: 151 MB of compressed sections). ``close``
    (or leaving the ``with`` block) ends the job, finished or not."""

    def __init__(self, sections: list[Plain], settings: Settings, jobs: int) -> None:
        self.sections, self.settings, self.jobs = sections, settings, jobs
        self.counts = [-(-plain.size // settings.shard_size) for plain in sections]
        self._job: parallel.Job | None = None
        self._fds: dict[str, int] = {}

    def __enter__(self) -> CompressJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the threads now (else at the first ``pieces``)."""
        if self._job is None:
            self._job = self._start()

    def _start(self) -> parallel.Job:
        for plain in self.sections:
            if plain.path is not None and plain.path not in self._fds:
                try:
                    self._fds[plain.path] = os.open(plain.path, os.O_RDONLY)
                except OSError as exc:
                    raise LinkpluginError(f"{plain.path}: cannot open: {exc.strerror}") from None
        plain_tasks: list[Shard] = []
        for i, plain in enumerate(self.sections):
            if plain.packed is None:
                plain_tasks += _tasks(i, plain, self.settings, self._fds)
        # In the writer's order: helpers stop a few results ahead of the writer, so the shards
        # they make must be those it comes to next. (Largest first ended the threads closer
        # together, but a file of many one-shard sections then had its helpers' few results
        # far ahead of the writer, and the writer made nearly everything alone.)
        # The largest compressed section's decoding is the longest serial work: first.
        packed_sections = sorted((i for i, plain in enumerate(self.sections) if plain.packed is not None),
                                 key=lambda i: -self.sections[i].size)
        streams = [(i, self.sections[i].size, _streamed_tasks(i, self.sections[i], self.settings))
                   for i in packed_sections]
        weight = len if self.settings.codec == "zstd" else _zlib_result_bytes
        return parallel.start(plain_tasks, streams, _kernel(self.settings), self.jobs, sum(self.counts), weight)

    def pieces(self, i: int) -> Iterator[bytes]:
        """Section ``i``'s compressed payload, a piece at a time, each as soon as it is made."""
        self.start()
        job, plain, step = self._job, self.sections[i], self.settings.shard_size
        if self.settings.codec == "zstd":
            for n in range(self.counts[i]):
                yield job.take((i, n))
            return
        adler = 1
        yield _zlib_header(self.settings.level)
        for n in range(self.counts[i]):
            shard, shard_adler = job.take((i, n))
            adler = shards.adler32_combine(adler, shard_adler, min(step, plain.size - n * step))
            yield shard
        yield adler.to_bytes(4, "big")

    def close(self) -> None:
        if self._job is not None:
            self._job.close()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _zlib_result_bytes(result: tuple[bytearray, int]) -> int:
    return len(result[0])  # (the raw deflate and its Adler-32)


def compress_all(sections: list[Plain], settings: Settings, jobs: int) -> list[list[bytes]]:
    """Every section's compressed payload, whole (``CompressJob`` without the streaming)."""
    with CompressJob(sections, settings, jobs) as job:
        return [list(job.pieces(i)) for i in range(len(sections))]


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
        return codec, _plain_size(size, name), align
    # Legacy GNU .zdebug_*: "ZLIB", big-endian 64-bit size, zlib stream.
    if len(raw) < 12 or bytes(raw[:4]) != b"ZLIB":
        raise LinkpluginError(f"section {name}: not a valid .zdebug section")
    return "zdebug", _plain_size(int.from_bytes(raw[4:12], "big"), name), 1


MAX_PLAIN_SIZE = 1 << 48  # 256 TiB: more than any file system here holds


def _plain_size(size: int, name: str) -> int:
    """The plain size a header claims, if a file could hold it. The data is checked against the
    claim as it decodes; this only keeps an absurd claim (up to 2**64 - 1) out of the output's
    layout, where offsets past a machine word cannot even be computed."""
    if size > MAX_PLAIN_SIZE:
        raise LinkpluginError(f"section {name}: compression header claims {size} plain bytes")
    return size


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
            if source.codec == "zstd" and not _zstd_frames_whole(f, source.start, source.length):
                raise LinkpluginError(f"{source.path}: section {source.name}: zstd data is truncated or corrupt "
                                      f"(its frames do not end where the section does)")
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
    except (_inflate_library().error, _zstd_error()) as exc:
        raise LinkpluginError(f"{source.path}: section {source.name}: corrupt {source.codec} data ({exc})") from None
    if done != size:
        raise LinkpluginError(f"{source.path}: section {source.name}: header says {size} bytes, data holds "
                              f"{'more' if done > size else done}")


_ZSTD_MAGIC = 0xFD2FB528
_FCS_BYTES = (0, 2, 4, 8)  # Frame_Content_Size by its flag (flag 0: 1 byte in a single-segment frame)
_DICT_ID_BYTES = (0, 1, 2, 4)


def _zstd_frames_whole(f: BinaryIO, start: int, length: int) -> bool:
    """Whether the ``length`` bytes at ``start`` are whole zstd frames (RFC 8878: each frame's
    header, its blocks' headers and sizes, its checksum; skippable frames skipped) ending exactly
    at the end. libzstd's stream reader returns every byte of a frame whose 4-byte checksum is cut
    short, or missing, without a word: only the frames' own structure tells that the section
    ends early. Reads the headers only (one seek a block)."""
    pos, end = start, start + length
    while pos < end:
        f.seek(pos)
        head = f.read(18)  # the longest frame header
        if len(head) < 8:
            return False
        magic = int.from_bytes(head[:4], "little")
        if magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame
            pos += 8 + int.from_bytes(head[4:8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            return False
        fhd = head[4]
        single = fhd >> 5 & 1
        pos += 5 + (0 if single else 1) + _DICT_ID_BYTES[fhd & 3] + (_FCS_BYTES[fhd >> 6] or single)
        while True:
            if pos + 3 > end:
                return False
            f.seek(pos)
            block = int.from_bytes(f.read(3), "little")
            kind = block >> 1 & 3
            if kind == 3:  # reserved
                return False
            pos += 3 + (1 if kind == 1 else block >> 3)
            if block & 1:  # the frame's last block
                break
        pos += 4 * (fhd >> 2 & 1)  # Content_Checksum
    return pos == end


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
    d = _inflate_library().decompressobj()
    while not d.eof and (pending := payload.read(_FEED)):
        while pending and not d.eof:
            piece = d.decompress(pending, _CHUNK)
            pending = d.unconsumed_tail
            if piece:
                yield piece
    if not d.eof:
        raise LinkpluginError(f"{path}: section {name}: zlib data is truncated")


def _unzstd(payload: _Payload) -> Iterator[bytes]:
    reader = shards.zstd_library().ZstdDecompressor().stream_reader(payload, read_across_frames=True)
    while chunk := reader.read(_CHUNK):
        yield chunk


def _zstd_error() -> type[Exception]:
    return shards.zstd_library().ZstdError


def codec_version(codec: str) -> str:
    """The codec library and version: part of a build cache key ("...-missing" when it is not
    installed: the job itself then says so)."""
    try:
        if codec == "zstd":
            zstandard = shards.zstd_library()
            return f"zstandard-{zstandard.__version__}/libzstd-{'.'.join(map(str, zstandard.ZSTD_VERSION))}"
        # The package pins the libdeflate it bundles. The system zlib that finds block ends
        # (shards.py) never changes the bytes.
        return f"deflate-{shards.deflate_library().__version__}"
    except LinkpluginError:
        return f"{'zstandard' if codec == 'zstd' else 'deflate'}-missing"
