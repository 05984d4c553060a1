"""Read an ELF file's structure (with pyelftools) and its sections' bytes.

The file is mapped read-only: the input is never modified, and sections are
handed out as memoryviews so that large debug sections are not copied.
"""
from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile

from linkplugin.elf.structs import (SHDR_FIELDS, SHF_ALLOC, SHF_COMPRESSED, SHT_NOBITS,
                                    Layout, layout)
from linkplugin.errors import LinkpluginError


@dataclass
class Section:
    index: int
    name: str
    header: dict[str, int]  # the SHDR_FIELDS of this section

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
        """A DWARF section compressors work on: non-allocated, with bytes."""
        return (self.name.startswith((".debug_", ".zdebug_")) and not self.is_alloc
                and self.has_bytes)


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
            self.data = memoryview(mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ))
            self._parse()
        except BaseException:
            self.close()
            raise

    def _parse(self) -> None:
        if bytes(self.data[:4]) != b"\x7fELF":
            raise LinkpluginError(f"{self.path}: not an ELF file")
        if len(self.data) < (64 if self.data[4] == 2 else 52):
            raise LinkpluginError(f"{self.path}: ELF header is truncated")
        try:
            elf = ELFFile(self._file)
            self.elfclass = elf.elfclass
            self.little_endian = elf.little_endian
            self.e_type = elf.header["e_type"]
            self.machine = elf.header["e_machine"]
            self.ehsize = elf.header["e_ehsize"]
            shoff, shentsize = elf.header["e_shoff"], elf.header["e_shentsize"]
            self.layout: Layout = layout(self.elfclass, self.little_endian)
            if shoff == 0:
                raise LinkpluginError(f"{self.path}: has no section header table")
            if shentsize != self.layout.shdr.size:
                raise LinkpluginError(f"{self.path}: unexpected section header size {shentsize}")
            count = elf.num_sections()
            if shoff + count * shentsize > len(self.data):
                raise LinkpluginError(f"{self.path}: section header table lies past the end of "
                                      f"the file (truncated?)")
            self.phdr_range = (elf.header["e_phoff"],
                               elf.header["e_phoff"] + elf.header["e_phnum"] * elf.header["e_phentsize"])
            self.segments = [(seg["p_offset"], seg["p_filesz"]) for seg in elf.iter_segments()]
            self.shstrndx = elf.get_shstrndx()
            self.sections = []
            for i in range(count):
                header = self.layout.shdr.unpack_from(self.data, shoff + i * shentsize)
                sec = elf.get_section(i)
                self.sections.append(Section(i, sec.name, dict(zip(SHDR_FIELDS, header))))
        except (ELFError, ELFParseError, struct.error, UnicodeDecodeError, ValueError) as exc:
            raise LinkpluginError(f"{self.path}: malformed ELF file: {exc}") from None
        if self.phdr_range[1] > len(self.data):
            raise LinkpluginError(f"{self.path}: program headers lie past the end of the file (truncated?)")
        for sec in self.sections:
            if sec.has_bytes and sec.header["sh_offset"] + sec.header["sh_size"] > len(self.data):
                raise LinkpluginError(f"{self.path}: section {sec.name or sec.index} lies past the "
                                      f"end of the file (truncated?)")

    def raw(self, sec: Section) -> memoryview:
        """The bytes a section holds in the file (compressed or not)."""
        if not sec.has_bytes:
            return self.data[0:0]
        start = sec.header["sh_offset"]
        return self.data[start:start + sec.header["sh_size"]]

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
