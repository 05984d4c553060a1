"""Binary layouts of the ELF records linkplugin writes, apart from the logic.

Formats take no byte-order prefix; ``layout(endian)`` prepends ``<`` or ``>``.
"""
from __future__ import annotations

import struct

from linkplugin.record import Value

ET_EXEC = 2  # e_type: a program linked at fixed addresses
ET_DYN = 3  # a shared library or a position-independent program
SHF_ALLOC = 0x2
SHF_INFO_LINK = 0x40
SHF_COMPRESSED = 0x800
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHT_DYNSYM = 11
SHT_GROUP = 17
SHT_SYMTAB_SHNDX = 18
SHT_LOPROC = 0x70000000  # processor-specific types from here (MIPS keeps DWARF in SHT_MIPS_DWARF)
ELFCOMPRESS_ZLIB = 1
ELFCOMPRESS_ZSTD = 2
SHN_LORESERVE = 0xFF00
SHN_XINDEX = 0xFFFF  # e_shstrndx: the index is in section 0's sh_link
PN_XNUM = 0xFFFF  # e_phnum: the count is in section 0's sh_info
# The largest alignment of a section linkplugin moves (real non-allocated sections ask for 1 to 8;
# a damaged header asking for 2**62 would make the writer pad the output to exabytes).
MAX_MOVED_ALIGN = 1 << 16

# Field order of a section header, shared by both classes.
EHDR_FIELDS = ("e_type", "e_machine", "e_version", "e_entry", "e_phoff", "e_shoff", "e_flags", "e_ehsize",
               "e_phentsize", "e_phnum", "e_shentsize", "e_shnum", "e_shstrndx")  # after e_ident
SHDR_FIELDS = ("sh_name", "sh_type", "sh_flags", "sh_addr", "sh_offset", "sh_size",
               "sh_link", "sh_info", "sh_addralign", "sh_entsize")


class Layout(Value):
    """Struct formats of one ELF class and byte order."""

    __slots__ = ("ehdr", "phdr", "phdr_fields", "shdr", "chdr", "ehdr_tail", "shoff_at", "shnum_at", "halfwords",
                 "word_align")

    def __init__(self, *, ehdr: struct.Struct, phdr: struct.Struct, phdr_fields: tuple[str, ...], shdr: struct.Struct,
                 chdr: struct.Struct, ehdr_tail: struct.Struct, shoff_at: int, shnum_at: int,
                 halfwords: struct.Struct, word_align: int) -> None:
        self.ehdr = ehdr  # EHDR_FIELDS, from offset 16 (after e_ident)
        self.phdr = phdr  # the fields of phdr_fields, in this class's order
        self.phdr_fields = phdr_fields
        self.shdr = shdr
        self.chdr = chdr  # fields: ch_type, ch_size, ch_addralign (ELF64 has a reserved word)
        self.ehdr_tail = ehdr_tail  # e_shoff at its offset; e_shentsize/e_shnum/e_shstrndx at theirs
        self.shoff_at = shoff_at
        self.shnum_at = shnum_at  # offset of (e_shentsize, e_shnum, e_shstrndx)
        self.halfwords = halfwords  # those three
        self.word_align = word_align  # alignment of Chdr and the section header table

    def pack_chdr(self, ch_type: int, ch_size: int, ch_addralign: int) -> bytes:
        if self.chdr.size == 24:
            return self.chdr.pack(ch_type, 0, ch_size, ch_addralign)
        return self.chdr.pack(ch_type, ch_size, ch_addralign)

    def unpack_chdr(self, raw: bytes) -> tuple[int, int, int]:
        fields = self.chdr.unpack_from(raw)
        if self.chdr.size == 24:
            return fields[0], fields[2], fields[3]
        return fields


def layout(elfclass: int, little_endian: bool) -> Layout:
    e = "<" if little_endian else ">"
    if elfclass == 64:
        return Layout(ehdr=struct.Struct(e + "HHIQQQIHHHHHH"), phdr=struct.Struct(e + "IIQQQQQQ"),
                      phdr_fields=("p_type", "p_flags", "p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz",
                                   "p_align"),
                      shdr=struct.Struct(e + "IIQQQQIIQQ"), chdr=struct.Struct(e + "IIQQ"),
                      ehdr_tail=struct.Struct(e + "Q"), shoff_at=0x28, shnum_at=0x3A,
                      halfwords=struct.Struct(e + "HHH"), word_align=8)
    return Layout(ehdr=struct.Struct(e + "HHIIIIIHHHHHH"), phdr=struct.Struct(e + "IIIIIIII"),
                  phdr_fields=("p_type", "p_offset", "p_vaddr", "p_paddr", "p_filesz", "p_memsz", "p_flags",
                               "p_align"),
                  shdr=struct.Struct(e + "IIIIIIIIII"), chdr=struct.Struct(e + "III"),
                  ehdr_tail=struct.Struct(e + "I"), shoff_at=0x20, shnum_at=0x2E,
                  halfwords=struct.Struct(e + "HHH"), word_align=4)
