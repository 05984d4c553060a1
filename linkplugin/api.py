"""Task-level API: whole-file jobs built from the ELF and codec layers.

These are what the command line and the SCons tool call.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from linkplugin.compress.codec import (Plain, Settings, ch_type, compress_all, decompress,
                                       describe)
from linkplugin.elf.read import ElfImage, Section
from linkplugin.elf.structs import SHF_COMPRESSED
from linkplugin.elf.write import Replacement, movable, write_elf
from linkplugin.pool import default_jobs
from linkplugin.timing import PhaseTimer


@dataclass
class SectionInfo:
    index: int
    name: str
    size: int  # bytes in the file
    plain_size: int  # bytes once decompressed
    compression: str  # "none", "zlib", "zstd" or "zdebug" (legacy GNU)
    alloc: bool


@dataclass
class Report:
    """What a job did to the debug sections, for tables and tests."""

    before: list[SectionInfo] = field(default_factory=list)
    after: list[SectionInfo] = field(default_factory=list)

    @property
    def debug_before(self) -> int:
        return sum(s.size for s in self.before)

    @property
    def debug_after(self) -> int:
        return sum(s.size for s in self.after)


def plain_name(name: str) -> str:
    return ".debug_" + name[len(".zdebug_"):] if name.startswith(".zdebug_") else name


def _info(image: ElfImage, sec: Section) -> SectionInfo:
    size = len(image.raw(sec)) if sec.has_bytes else 0
    plain, kind = size, "none"
    if sec.has_bytes and sec.is_compressed:
        kind, plain, _ = describe(image.raw(sec), sec.name, bool(sec.flags & SHF_COMPRESSED),
                                  image.layout)
    return SectionInfo(sec.index, sec.name, size, plain, kind, sec.is_alloc)


def section_table(path: str | os.PathLike) -> list[SectionInfo]:
    """Every section of ``path`` with its size and compression state."""
    with ElfImage(path) as image:
        return [_info(image, sec) for sec in image.sections[1:]]


def _debug_sections(image: ElfImage) -> list[Section]:
    return [s for s in image.sections if s.is_debug and movable(image, s)]


def _plain(image: ElfImage, sec: Section) -> tuple[Plain, int]:
    """Where the plain bytes of a debug section are, and their alignment."""
    if sec.is_compressed:
        data, align = decompress(image.raw(sec), sec.name, bool(sec.flags & SHF_COMPRESSED),
                                 image.layout)
        return Plain(len(data), data=data), align
    return Plain(sec.header["sh_size"], path=image.path, offset=sec.header["sh_offset"]), \
        sec.header["sh_addralign"]


def _plain_replacement(image: ElfImage, sec: Section, plain: Plain, align: int) -> Replacement:
    data = plain.data if plain.data is not None else image.raw(sec)
    return Replacement(data=data, name=plain_name(sec.name),
                       header={"sh_flags": sec.flags & ~SHF_COMPRESSED, "sh_addralign": align})


def compress_file(src: str | os.PathLike, dst: str | os.PathLike, settings: Settings | None = None,
                  jobs: int | None = None, timer: PhaseTimer | None = None) -> Report:
    """Write ``src`` to ``dst`` with every debug section compressed.

    Sections already compressed are decompressed and compressed again with
    ``settings``; a section that would not shrink is stored plain.
    """
    settings = settings or Settings()
    jobs = jobs or default_jobs()
    timer = timer or PhaseTimer()
    with timer.phase("read"):
        image = ElfImage(src)
    with image:
        report = Report(before=[_info(image, s) for s in _debug_sections(image)])
        with timer.phase("read"):
            targets = _debug_sections(image)
            plains = [_plain(image, s) for s in targets]
        with timer.phase("compress"):
            payloads = compress_all([p for p, _ in plains], settings, jobs)
        lay = image.layout
        replace = {}
        for sec, (plain, align), payload in zip(targets, plains, payloads):
            chdr = lay.pack_chdr(ch_type(settings.codec), plain.size, max(align, 1))
            if len(chdr) + len(payload) < plain.size:
                replace[sec.index] = Replacement(
                    data=chdr + payload, name=plain_name(sec.name),
                    header={"sh_flags": sec.flags | SHF_COMPRESSED, "sh_addralign": lay.word_align})
            elif sec.is_compressed:
                replace[sec.index] = _plain_replacement(image, sec, plain, align)
        with timer.phase("write"):
            write_elf(image, dst, replace)
    report.after = [_after(s, replace, settings.codec) for s in report.before]
    return report


def _after(before: SectionInfo, replace: dict[int, Replacement], codec: str) -> SectionInfo:
    rep = replace.get(before.index)
    if rep is None:
        return before
    compressed = bool(rep.header["sh_flags"] & SHF_COMPRESSED)
    return SectionInfo(before.index, rep.name or before.name, len(rep.data), before.plain_size,
                       codec if compressed else "none", before.alloc)


def decompress_file(src: str | os.PathLike, dst: str | os.PathLike,
                    timer: PhaseTimer | None = None) -> Report:
    """Write ``src`` to ``dst`` with every compressed debug section plain again."""
    timer = timer or PhaseTimer()
    with timer.phase("read"):
        image = ElfImage(src)
    with image:
        targets = [s for s in _debug_sections(image) if s.is_compressed]
        report = Report(before=[_info(image, s) for s in targets])
        with timer.phase("decompress"):
            replace = {s.index: _plain_replacement(image, s, *_plain(image, s)) for s in targets}
        with timer.phase("write"):
            write_elf(image, dst, replace)
    report.after = [_after(s, replace, "none") for s in report.before]
    return report
