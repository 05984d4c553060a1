"""Read an ELF file's structure and its sections' bytes: the one place where input enters.

Every header value later code relies on is checked here, once: the header tables and every
section with bytes lie inside the file, indices point at sections that exist, alignments are
powers of two, names are terminated inside the section name table. Anything else is a
LinkpluginError naming the file, so the layers above can trust what they are given.

The file is mapped read-only: the input is never modified, and sections are
handed out as memoryviews so that large debug sections are not copied.
"""
from __future__ import annotations

import mmap
import os

from linkplugin.elf.structs import (EHDR_FIELDS, PN_XNUM, SHDR_FIELDS, SHF_ALLOC, SHF_COMPRESSED, SHN_XINDEX,
                                    SHT_DYNSYM, SHT_GROUP, SHT_LOPROC, SHT_NOBITS, SHT_PROGBITS, SHT_SYMTAB,
                                    SHT_SYMTAB_SHNDX, Layout, layout)
from linkplugin.errors import LinkpluginError
from linkplugin.record import Record

# Entry sizes (by ELF class) of the tables whose contents the writer reads.
_ENTRY_SIZE = {SHT_SYMTAB: {64: 24, 32: 16}, SHT_DYNSYM: {64: 24, 32: 16}, SHT_GROUP: {64: 4, 32: 4},
               SHT_SYMTAB_SHNDX: {64: 4, 32: 4}}


class Section(Record):
    __slots__ = ("index", "name", "header")

    def __init__(self, index: int, name: str, header: dict[str, int]) -> None:
        self.index, self.name = index, name
        self.header = header  # the SHDR_FIELDS of this section

    @property
    def flags(self) -> int:
        return self.header["sh_flags"]

    @property
    def is_alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def has_bytes(self) -> bool:
        return self.header["sh_type"] != SHT_NOBITS and self.index != 0

    @property
    def is_compressed(self) -> bool:
        return bool(self.flags & SHF_COMPRESSED) or self.name.startswith(".zdebug_")

    @property
    def is_debug(self) -> bool:
        """A DWARF section compressors work on: non-allocated, with bytes, of the type DWARF is
        kept in (a ``.debug_*`` symbol table or group is left alone)."""
        return (self.name.startswith((".debug_", ".zdebug_")) and not self.is_alloc
                and self.has_bytes and (self.header["sh_type"] == SHT_PROGBITS
                                        or self.header["sh_type"] >= SHT_LOPROC))


class ElfImage:
    """An opened ELF file: header facts, section and segment tables, raw bytes."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as exc:
            raise LinkpluginError(f"{self.path}: cannot open: {exc.strerror}") from None
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size == 0:
                raise LinkpluginError(f"{self.path}: not an ELF file (empty)")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self.data = memoryview(self._map)
            self._parse()
        except BaseException:
            self.close()
            raise

    def _parse(self) -> None:
        data, size = self.data, len(self.data)
        if size < 16 or bytes(data[:4]) != b"\x7fELF":
            raise LinkpluginError(f"{self.path}: not an ELF file")
        if data[4] not in (1, 2) or data[5] not in (1, 2):
            raise LinkpluginError(f"{self.path}: not an ELF file (unknown class {data[4]} or byte order {data[5]})")
        self.elfclass = 64 if data[4] == 2 else 32
        self.little_endian = data[5] == 1
        self.layout: Layout = layout(self.elfclass, self.little_endian)
        lay = self.layout
        ehdr_size = 16 + lay.ehdr.size
        if size < ehdr_size:
            raise LinkpluginError(f"{self.path}: ELF header is truncated")
        h = dict(zip(EHDR_FIELDS, lay.ehdr.unpack_from(data, 16)))
        self.e_type, self.machine, self.ehsize = h["e_type"], h["e_machine"], h["e_ehsize"]
        if self.ehsize != ehdr_size:
            raise LinkpluginError(f"{self.path}: malformed ELF header (e_ehsize {self.ehsize}, not {ehdr_size})")
        shoff, shentsize = h["e_shoff"], h["e_shentsize"]
        if shoff == 0:
            raise LinkpluginError(f"{self.path}: has no section header table")
        if shentsize != lay.shdr.size:
            raise LinkpluginError(f"{self.path}: unexpected section header size {shentsize}")
        if shoff + shentsize > size:
            raise LinkpluginError(f"{self.path}: section header table lies past the end of the file (truncated?)")
        first = dict(zip(SHDR_FIELDS, lay.shdr.unpack_from(data, shoff)))
        # Extended numbering: counts that do not fit the ELF header live in section 0.
        count = h["e_shnum"] or first["sh_size"]
        if count == 0 or shoff + count * shentsize > size:
            raise LinkpluginError(f"{self.path}: section header table lies past the end of the file (truncated?)")
        self.shstrndx = first["sh_link"] if h["e_shstrndx"] == SHN_XINDEX else h["e_shstrndx"]
        phnum = first["sh_info"] if h["e_phnum"] == PN_XNUM else h["e_phnum"]
        phoff = h["e_phoff"]
        if phnum and h["e_phentsize"] != lay.phdr.size:
            raise LinkpluginError(f"{self.path}: unexpected program header size {h['e_phentsize']}")
        self.phdr_range = (phoff, phoff + phnum * lay.phdr.size) if phnum else (0, 0)
        if self.phdr_range[1] > size:
            raise LinkpluginError(f"{self.path}: program headers lie past the end of the file (truncated?)")
        self.segments = []
        for i in range(phnum):
            ph = dict(zip(lay.phdr_fields, lay.phdr.unpack_from(data, phoff + i * lay.phdr.size)))
            if ph["p_filesz"] and ph["p_offset"] + ph["p_filesz"] > size:
                raise LinkpluginError(f"{self.path}: segment {i} lies past the end of the file (truncated?)")
            self.segments.append((ph["p_offset"], ph["p_filesz"]))
        headers = [first] + [dict(zip(SHDR_FIELDS, lay.shdr.unpack_from(data, shoff + i * shentsize)))
                             for i in range(1, count)]
        if self.shstrndx >= count or headers[self.shstrndx]["sh_type"] == SHT_NOBITS or self.shstrndx == 0:
            raise LinkpluginError(f"{self.path}: malformed ELF file: no section name table "
                                  f"(index {self.shstrndx} of {count} sections)")
        for i, sh in enumerate(headers[1:], 1):
            align = sh["sh_addralign"]
            if align & (align - 1):
                raise LinkpluginError(f"{self.path}: section [{i}] has alignment {align}, not a power of two")
            entry = _ENTRY_SIZE.get(sh["sh_type"], {}).get(self.elfclass, 1)
            if sh["sh_type"] != SHT_NOBITS and sh["sh_size"] % entry:
                # The writer reads the section indices these tables hold.
                raise LinkpluginError(f"{self.path}: section [{i}] of type {sh['sh_type']} is not a whole "
                                      f"number of {entry}-byte entries")
            start, end = sh["sh_offset"], sh["sh_offset"] + sh["sh_size"]
            if sh["sh_type"] == SHT_NOBITS or start == end:
                continue
            if end > size:
                raise LinkpluginError(f"{self.path}: section [{i}] lies past the end of the file (truncated?)")
            # The writer zeroes the old place of a section it moves: that place must not hold
            # the headers or part of a segment.
            if start < ehdr_size or (phnum and start < self.phdr_range[1] and end > self.phdr_range[0]):
                raise LinkpluginError(f"{self.path}: section [{i}] overlaps the ELF or program headers")
            if not sh["sh_flags"] & SHF_ALLOC and any(
                    filesz and start < off + filesz and end > off and not (off <= start and end <= off + filesz)
                    for off, filesz in self.segments):
                raise LinkpluginError(f"{self.path}: section [{i}] lies partly inside a segment")
        names = headers[self.shstrndx]
        table = bytes(data[names["sh_offset"]:names["sh_offset"] + names["sh_size"]])
        self.sections = [Section(i, self._name(table, sh["sh_name"], i), sh) for i, sh in enumerate(headers)]

    def _name(self, table: bytes, at: int, index: int) -> str:
        if index == 0:
            return ""
        end = table.find(b"\0", at) if at < len(table) else -1
        if end < 0:
            raise LinkpluginError(f"{self.path}: malformed ELF file: the name of section [{index}] lies outside "
                                  f"the section name table")
        # Names are compared and written back, never shown as text only: keep every byte.
        return table[at:end].decode("utf-8", "surrogateescape")

    def raw(self, sec: Section) -> memoryview:
        """The bytes a section holds in the file (compressed or not)."""
        if not sec.has_bytes:
            return self.data[0:0]
        start = sec.header["sh_offset"]
        return self.data[start:start + sec.header["sh_size"]]

    def read(self, sec: Section) -> bytes:
        """A copy of the bytes a section holds in the file, read with ``pread`` rather than
        through the map: the kernel copies them from its page cache into the new bytes at once,
        and the map's pages for them never become part of this process (each would cost a page
        fault, and count twice in the resident size with the copy)."""
        if not sec.has_bytes:
            return b""
        start, size = sec.header["sh_offset"], sec.header["sh_size"]
        pieces: list[bytes] = []  # one, but Linux reads at most 2 GiB at a time
        done = 0
        try:
            while done < size:
                piece = os.pread(self._file.fileno(), size - done, start + done)
                if not piece:
                    raise LinkpluginError(f"{self.path}: section {sec.name} lies past the end of the file "
                                          f"(the file shrank while it was read)")
                pieces.append(piece)
                done += len(piece)
        except OSError as exc:
            raise LinkpluginError(f"{self.path}: cannot read: {exc.strerror}") from None
        return b"".join(pieces)  # the piece itself when there is one

    def fileno(self) -> int:
        return self._file.fileno()

    def section(self, name: str) -> Section | None:
        for sec in self.sections:
            if sec.name == name:
                return sec
        return None

    def close(self) -> None:
        data = getattr(self, "data", None)
        if data is not None:
            obj = data.obj
            try:
                data.release()
                obj.close()
            except BufferError:
                # A caller still holds a slice; the map is freed when it goes.
                pass
            self.data = None
        self._file.close()

    def __enter__(self) -> "ElfImage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
