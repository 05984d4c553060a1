"""Write an ELF file with some non-allocated sections replaced.

What a loader or debugger finds by address stays put: the ELF header, the
program headers, every segment's bytes and every allocated section keep their
offsets and bytes. Non-allocated sections are laid out again after them, in
their original order and with their alignment, then the section header table.
In a file without program headers (a relocatable ``.o``) nothing is pinned to
an offset, so every section is laid out again.

The output goes to a temporary file in the target folder and is renamed into
place only when complete, with the input's file mode.
"""
from __future__ import annotations

import errno
import os
import stat
import struct

from linkplugin.elf.read import ElfImage, Section
from linkplugin.elf.structs import (MAX_MOVED_ALIGN, SHDR_FIELDS, SHF_INFO_LINK, SHN_LORESERVE, SHT_DYNSYM,
                                    SHT_GROUP, SHT_REL, SHT_RELA, SHT_SYMTAB, SHT_SYMTAB_SHNDX)
from linkplugin.errors import LinkpluginError
from linkplugin.record import Record, Value

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import BinaryIO, Callable, Iterable


class Stream(Value):
    """Section contents made while they are written (a decompressing reader),
    never held whole: ``pieces()`` yields ``size`` bytes in all, or raises."""

    __slots__ = ("size", "pieces")

    def __init__(self, size: int, pieces: Callable[[], Iterable[bytes]]) -> None:
        self.size, self.pieces = size, pieces

    def __len__(self) -> int:
        return self.size


class Deferred:
    """Section contents chosen as they are written: ``pieces()`` yields the first choice (a
    compressed section, its shards as they are made: never held whole, and its size known only
    once written); then ``settle(size)`` says whether it stands (None) or what is written over
    it instead: a Replacement, or KEEP for the section as the input holds it. ``start()`` is
    called before the file's first byte is written: the work can begin while the writer copies
    what comes before."""

    def start(self) -> None:
        pass

    def pieces(self) -> Iterable[bytes]:
        raise NotImplementedError

    def settle(self, size: int) -> Replacement | object | None:
        raise NotImplementedError


KEEP = object()  # Deferred.settle: the input's section as it is


class Replacement(Record):
    """New contents and header fields of one section (None: keep)."""

    __slots__ = ("data", "name", "header")

    def __init__(self, data: bytes | memoryview | Stream | Deferred, name: str | None = None,
                 header: dict[str, int] | None = None) -> None:
        self.data, self.name = data, name
        self.header = {} if header is None else header  # e.g. sh_flags, sh_addralign


class _Span:
    """Bytes of the input file kept as they are (``size`` bytes at ``start``): copied file to
    file by the kernel, so they never pass through (nor stay in) this process's memory."""

    __slots__ = ("start", "size")

    def __init__(self, start: int, size: int) -> None:
        self.start, self.size = start, size

    def __len__(self) -> int:
        return self.size


def _align(value: int, alignment: int) -> int:
    return value if alignment <= 1 else (value + alignment - 1) // alignment * alignment


def _inside_segment(image: ElfImage, start: int, size: int) -> bool:
    return any(off <= start and start + size <= off + filesz
               for off, filesz in image.segments if filesz)


def movable(image: ElfImage, sec: Section) -> bool:
    """Whether the writer may move or resize this section."""
    if not sec.has_bytes:
        return False
    if not image.segments:
        return True
    return not sec.is_alloc and not _inside_segment(image, sec.header["sh_offset"], sec.header["sh_size"])


def _fixed_end(image: ElfImage, movables: set[int]) -> int:
    end = max(image.ehsize, image.phdr_range[1] if image.segments else 0)
    size = len(image.data)
    for off, filesz in image.segments:
        if filesz:
            end = max(end, min(off + filesz, size))
    for sec in image.sections:
        if sec.has_bytes and sec.index not in movables:
            end = max(end, sec.header["sh_offset"] + sec.header["sh_size"])
    return end


def _names(image: ElfImage, replace: dict[int, Replacement]) -> tuple[dict[int, int], bytes | None]:
    """sh_name of renamed sections, and the grown .shstrtab if a new name had to be added.

    New names are appended: the string table may be shared with symbol names
    (LLVM's assembler does that), so existing offsets must not move.
    """
    renamed = {i: r.name for i, r in replace.items() if r.name is not None
               and r.name != image.sections[i].name}
    if not renamed:
        return {}, None
    shstr = image.sections[image.shstrndx]
    table = bytearray(image.raw(shstr))
    size = len(table)
    offsets = {}
    for index, name in sorted(renamed.items()):
        encoded = name.encode("utf-8", "surrogateescape") + b"\0"
        at = table.find(encoded)
        while at > 0 and table[at - 1] != 0:  # only a whole string, or a suffix match
            at = table.find(encoded, at + 1)
        if at < 0:
            at = len(table)
            table += encoded
        offsets[index] = at
    return offsets, bytes(table) if len(table) > size else None


def _index_map(image: ElfImage, drop: frozenset[int]) -> dict[int, int]:
    """Old to new section index once ``drop`` is gone; refuses what would break.

    Section indices are stored in more places than headers (symbols, groups);
    those may only point below the first dropped section, where nothing moves.
    """
    if not drop:
        return {s.index: s.index for s in image.sections}
    first = min(drop)
    if len(image.sections) >= SHN_LORESERVE or image.shstrndx in drop or 0 in drop:
        raise LinkpluginError(f"{image.path}: cannot remove sections from this file")
    for index in drop:
        if image.sections[index].is_alloc:
            raise LinkpluginError(f"{image.path}: cannot remove allocated section "
                                  f"{image.sections[index].name}")
    new_index, kept = {}, 0
    for sec in image.sections:
        if sec.index not in drop:
            new_index[sec.index] = kept
            kept += 1
    for sec in image.sections:
        if sec.index in drop:
            continue
        h = sec.header
        linked = [h["sh_link"]] + ([h["sh_info"]] if _info_is_index(h) else [])
        if any(i in drop for i in linked):
            raise LinkpluginError(f"{image.path}: cannot remove a section that {sec.name} refers to")
        if h["sh_type"] in (SHT_SYMTAB, SHT_DYNSYM, SHT_GROUP, SHT_SYMTAB_SHNDX) and \
                any(first <= i < SHN_LORESERVE for i in _stored_indices(image, sec)):
            raise LinkpluginError(f"{image.path}: cannot remove sections: {sec.name} refers to later sections")
    return new_index


def _info_is_index(header: dict[str, int]) -> bool:
    return header["sh_type"] in (SHT_REL, SHT_RELA) or bool(header["sh_flags"] & SHF_INFO_LINK)


def _stored_indices(image: ElfImage, sec: Section) -> list[int]:
    """Section indices held in the contents of a symbol table or group."""
    raw = image.raw(sec)
    order = "<" if image.little_endian else ">"
    if sec.header["sh_type"] == SHT_GROUP:
        return list(struct.unpack(f"{order}{len(raw) // 4}I", raw))[1:]
    if sec.header["sh_type"] == SHT_SYMTAB_SHNDX:
        return list(struct.unpack(f"{order}{len(raw) // 4}I", raw))
    # st_shndx: offset 14 in Elf32_Sym and 6 in Elf64_Sym, entries of sh_entsize.
    at, size = (6, 24) if image.elfclass == 64 else (14, 16)
    return [struct.unpack_from(order + "H", raw, i + at)[0] for i in range(0, len(raw) - size + 1, size)]


def write_elf(image: ElfImage, dst: str | os.PathLike, replace: dict[int, Replacement],
              drop: frozenset[int] = frozenset()) -> int:
    """Write ``image`` with ``replace`` applied and ``drop`` removed to ``dst``.

    Returns the new file size.
    """
    new_index = _index_map(image, drop)
    replace = dict(replace)
    name_offsets, shstrtab = _names(image, replace)
    if shstrtab is not None:
        replace.setdefault(image.shstrndx, Replacement(data=b""))
        replace[image.shstrndx].data = shstrtab
    # After the names: a section name table that must grow is rewritten too (an allocated one
    # cannot be, and skipping it would leave names pointing past its end).
    movables = {sec.index for sec in image.sections if movable(image, sec)}
    for index in replace:
        if index not in movables:
            raise LinkpluginError(f"{image.path}: section {image.sections[index].name} is part of the loaded "
                                  f"program (allocated or inside a segment) and cannot be rewritten")

    return _commit(image, dst, lambda out: _write(image, out, replace, drop, new_index, name_offsets, movables))


def _write(image: ElfImage, out: BinaryIO, replace: dict[int, Replacement], drop: frozenset[int],
           new_index: dict[int, int], name_offsets: dict[int, int], movables: set[int]) -> int:
    """Write the file into ``out`` front to back: the kept prefix, the movable sections each at
    the next offset its alignment allows, the section headers; then the ELF header's fields and
    the zeroed old places. Returns the file's size. A Deferred section's size is known once it
    is written, and what follows is laid out after it then."""
    lay = image.layout
    fixed_end = _fixed_end(image, movables)
    order = [s for s in sorted(image.sections, key=lambda s: (s.header["sh_offset"], s.index))
             if s.index in movables and s.index not in drop]
    # Before a byte is written: the sizes known now (a Deferred section's counted as none) may
    # already pass what the file's offsets hold (a compressed input whose header claims 4 GiB).
    least = fixed_end
    for sec in order:
        rep = replace.get(sec.index)
        if rep is None or not isinstance(rep.data, Deferred):
            least = _align(least, _alignment(image, sec, rep)) + (len(rep.data) if rep else sec.header["sh_size"])
    _check_size(image, least)
    for rep in replace.values():
        if isinstance(rep.data, Deferred):
            rep.data.start()
    _put(image, out, 0, _Span(0, fixed_end))
    holes = []  # old places of moved sections inside the kept prefix: zeroed
    cursor = fixed_end
    new_offsets = {}
    for sec in order:
        old = sec.header["sh_offset"]
        if old < fixed_end:
            holes.append((old, min(fixed_end, old + sec.header["sh_size"])))
        rep = replace.get(sec.index)
        if rep is not None and isinstance(rep.data, Deferred):
            start = _align(cursor, _alignment(image, sec, rep))
            size = _put(image, out, start, rep.data)
            instead = rep.data.settle(size)
            if instead is None:
                new_offsets[sec.index] = (start, size)
                cursor = start + size
                continue
            out.truncate(cursor)  # (nothing after it is written yet)
            if instead is KEEP:
                del replace[sec.index]
                rep = None
            else:
                rep = replace[sec.index] = instead  # type: ignore[assignment]
        data = rep.data if rep is not None else _Span(old, sec.header["sh_size"])
        start = _align(cursor, _alignment(image, sec, rep))
        _put(image, out, start, data)
        new_offsets[sec.index] = (start, len(data))
        cursor = start + len(data)
    _check_size(image, cursor)

    headers = []
    for sec in image.sections:
        if sec.index in drop:
            continue
        h = dict(sec.header)
        h["sh_link"] = new_index.get(h["sh_link"], h["sh_link"])
        if _info_is_index(h):
            h["sh_info"] = new_index.get(h["sh_info"], h["sh_info"])
        rep = replace.get(sec.index)
        if rep is not None:
            h.update(rep.header)
        if sec.index in name_offsets:
            h["sh_name"] = name_offsets[sec.index]
        if sec.index in new_offsets:
            h["sh_offset"], h["sh_size"] = new_offsets[sec.index]
        headers.append(lay.shdr.pack(*(h[f] for f in SHDR_FIELDS)))

    shoff = _align(cursor, lay.word_align)
    table = b"".join(headers)
    _put(image, out, shoff, table)
    _put(image, out, lay.shoff_at, lay.ehdr_tail.pack(shoff))
    if drop:
        _put(image, out, lay.shnum_at, lay.halfwords.pack(lay.shdr.size, len(headers), new_index[image.shstrndx]))
    for start, end in holes:
        _put(image, out, start, bytes(end - start))
    size = max(shoff + len(table), fixed_end)
    out.truncate(size)
    return size


def _check_size(image: ElfImage, end: int) -> None:
    """Refuse sections that end at ``end`` where the file's offsets cannot reach the section
    headers after them."""
    lay = image.layout
    if image.elfclass == 32 and _align(end, lay.word_align) + len(image.sections) * lay.shdr.size > 0xFFFFFFFF:
        # Decompressed (or claimed) section sizes can pass what 32-bit offsets address.
        raise LinkpluginError(f"{image.path}: the output would be larger than the 4 GiB an ELF32 file can address")


def _alignment(image: ElfImage, sec: Section, rep: Replacement | None) -> int:
    align = (rep.header.get("sh_addralign") if rep else None) or sec.header["sh_addralign"]
    if align > MAX_MOVED_ALIGN:
        raise LinkpluginError(f"{image.path}: section {sec.name} asks for alignment {align}; linkplugin "
                              f"moves sections aligned to at most {MAX_MOVED_ALIGN}")
    return align


def _put(image: ElfImage, out: BinaryIO, offset: int, data: bytes | memoryview | Stream | Deferred | _Span) -> int:
    """Write ``data`` at ``offset``; the bytes written."""
    out.seek(offset)
    if isinstance(data, _Span):
        out.flush()
        _copy_span(image, out, data, offset)
        return data.size
    if isinstance(data, (Stream, Deferred)):
        size = 0
        for piece in data.pieces():
            out.write(piece)
            size += len(piece)
        return size
    out.write(data)
    return len(data)


def _commit(image: ElfImage, dst: str | os.PathLike, write: Callable[[BinaryIO], int]) -> int:
    """``write`` the output into a new temporary file beside ``dst``, then rename it to
    ``dst`` with the input's mode; on any failure nothing is left behind."""
    dst = os.fspath(dst)
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise LinkpluginError(f"{dst}: cannot write: folder {folder} does not exist")
    try:
        fd, tmp = _create_temporary(folder)
    except OSError as exc:
        raise LinkpluginError(f"{dst}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            size = write(out)
        os.chmod(tmp, os.stat(image.path).st_mode & 0o7777)
        replace_file(tmp, dst)
    except OSError as exc:
        _unlink(tmp)
        raise LinkpluginError(f"{dst}: cannot write: {exc.strerror}") from None
    except BaseException:
        _unlink(tmp)
        raise
    return size


def replace_file(tmp: str, dst: str) -> None:
    """``os.replace(tmp, dst)``, but over an existing file by exchanging the two names in one step
    (Linux's renameat2 with RENAME_EXCHANGE) and then deleting the old file, now named ``tmp``.

    Why: ext4 (its default auto_da_alloc) and btrfs take a rename over an existing file for an
    application replacing its data without fsync, and write the new file's data out before the
    rename returns: 8 ms (1-14) of every command writing over python3.11d's 14 MB output here,
    a sixth of its zstd compression, and more the larger the file. An exchange is as atomic for
    readers (``dst`` names the old file or the new one at every moment) and takes 0.02 ms; the
    unlink 0.5 ms. What it gives up is the order ext4 would force on a power loss (new data on
    disk before the new name), which objcopy (unlink, then write in place) and lld (the old
    output unlinked first) do not give either. Where the exchange is not available (no
    compiled ``_libc``, another system or file system), a plain rename."""
    try:
        regular = stat.S_ISREG(os.lstat(dst).st_mode)
    except FileNotFoundError:
        regular = False  # nothing to replace: a plain rename starts no writing out
    if regular:
        try:
            from linkplugin._libc import exchange
        except ImportError:
            pass
        else:
            try:
                exchange(tmp, dst)
            except OSError:
                pass  # the system or the file system cannot: rename below
            else:
                _unlink(tmp)
                return
    os.replace(tmp, dst)


def _create_temporary(folder: str) -> tuple[int, str]:
    """A new file of this process in ``folder``, as ``tempfile.mkstemp`` makes one (mode 0600,
    a name no other file has), without loading tempfile: with shutil and random it is 5-9 ms of
    every command's start-up."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = os.path.join(folder, f".linkplugin-{os.urandom(6).hex()}")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


def _copy_span(image: ElfImage, out: BinaryIO, span: _Span, offset: int) -> None:
    """Copy ``span`` of the input to ``offset`` of ``out`` in the kernel (copy_file_range);
    through this process where the system cannot (another kernel, file system or platform)."""
    done = 0
    copy = getattr(os, "copy_file_range", None)
    while copy is not None and done < span.size:
        try:
            n = copy(image.fileno(), out.fileno(), span.size - done, span.start + done, offset + done)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                raise
            break
        if n <= 0:
            break
        done += n
    if done < span.size:
        out.seek(offset + done)
        out.write(image.data[span.start + done:span.start + span.size])


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
