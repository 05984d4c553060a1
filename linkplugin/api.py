"""Task-level API: whole-file jobs built from the ELF and codec layers.

These are what the command line and the SCons tool call.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from linkplugin.compress.codec import (Plain, Settings, ch_type, compress_all, decompress,
                                       describe)
from linkplugin.elf.read import ElfImage, Section
from linkplugin.elf.structs import SHF_COMPRESSED, SHT_REL, SHT_RELA
from linkplugin.errors import LinkpluginError
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


@contextmanager
def _debug_job(src: str | os.PathLike, timer: PhaseTimer, report_type: type[Report]
               ) -> Iterator[tuple[ElfImage, list[Section], list[tuple[Plain, int]], Report]]:
    """The opened input, its debug sections, where their plain bytes are, and
    a report of their state before the job."""
    with timer.phase("read"):
        image = ElfImage(src)
    with image:
        with timer.phase("read"):
            targets = _debug_sections(image)
            report = report_type(before=[_info(image, s) for s in targets])
            plains = [_plain(image, s) for s in targets]
        yield image, targets, plains, report


def _contents(image: ElfImage, targets: list[Section], plains: list[tuple[Plain, int]]) -> dict[str, bytes]:
    """Plain bytes of each debug section by its plain name, for the DWARF engine."""
    return {plain_name(s.name): bytes(p.data if p.data is not None else image.raw(s))
            for s, (p, _) in zip(targets, plains)}


def _plain_replacement(image: ElfImage, sec: Section, plain: Plain, align: int) -> Replacement:
    """Store a section plain: its decompressed or new bytes (``plain.data``)."""
    data = plain.data if plain.data is not None else image.raw(sec)
    return Replacement(data=data, name=plain_name(sec.name),
                       header={"sh_flags": sec.flags & ~SHF_COMPRESSED, "sh_addralign": align})


def _compressed(image: ElfImage, targets: list[Section], plains: list[tuple[Plain, int]],
                settings: Settings, jobs: int, timer: PhaseTimer) -> dict[int, Replacement]:
    """Replacements that store ``targets`` compressed (or plain where that is smaller)."""
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
        elif sec.is_compressed or plain.data is not None:
            replace[sec.index] = _plain_replacement(image, sec, plain, align)
    return replace


def compress_file(src: str | os.PathLike, dst: str | os.PathLike, settings: Settings | None = None,
                  jobs: int | None = None, timer: PhaseTimer | None = None) -> Report:
    """Write ``src`` to ``dst`` with every debug section compressed.

    Sections already compressed are decompressed and compressed again with
    ``settings``; a section that would not shrink is stored plain.
    """
    settings = settings or Settings()
    jobs = jobs or default_jobs()
    timer = timer or PhaseTimer()
    with _debug_job(src, timer, Report) as (image, targets, plains, report):
        replace = _compressed(image, targets, plains, settings, jobs, timer)
        with timer.phase("write"):
            write_elf(image, dst, replace)
    report.after = [_after(s, replace, settings.codec) for s in report.before]
    return report


def _after(before: SectionInfo, replace: dict[int, Replacement], codec: str,
           dropped: frozenset[int] = frozenset()) -> SectionInfo:
    if before.index in dropped:
        return SectionInfo(before.index, before.name, 0, 0, "removed", before.alloc)
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


@dataclass
class MergeReport(Report):
    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def merge_types_file(src: str | os.PathLike, dst: str | os.PathLike, jobs: int | None = None,
                     timer: PhaseTimer | None = None, compress: Settings | None = None) -> MergeReport:
    """Write ``src`` to ``dst`` with duplicate DWARF types merged.

    With ``compress``, every debug section is then compressed too: one read,
    one write. Without it, every section keeps its compression state.
    """
    from linkplugin.merge import merge_sections  # the DWARF engine is only loaded for this job

    jobs = jobs or default_jobs()
    timer = timer or PhaseTimer()
    with _debug_job(src, timer, MergeReport) as (image, targets, plains, report):
        _refuse_relocated_debug_info(image, targets)
        with timer.phase("read"):
            contents = _contents(image, targets, plains)
            # .gdb_index is no .debug_* section but holds .debug_info offsets: rewritten too.
            indexes = [s for s in image.sections if s.name == ".gdb_index" and s.has_bytes]
            for sec in indexes:
                if not movable(image, sec):
                    raise LinkpluginError(f"{image.path}: .gdb_index is loaded with the program and cannot be "
                                          f"rewritten for the merged offsets (remove it first)")
            index_plains = [_plain(image, s) for s in indexes]
            contents.update(_contents(image, indexes, index_plains))
        result = merge_sections(contents, little_endian=image.little_endian,
                                address_size=8 if image.elfclass == 64 else 4, jobs=jobs,
                                timings=timer)
        report.stats, report.warnings = result.stats, result.warnings
        index_of = {plain_name(s.name): s.index for s in targets}
        dropped = frozenset(index_of[n] for n in result.drop if n in index_of)
        new_plains = []
        for sec, (plain, align) in zip(targets, plains):
            data = result.replace.get(plain_name(sec.name))
            new_plains.append((Plain(len(data), data=data), align) if data is not None else (plain, align))
        kept = [i for i, sec in enumerate(targets) if sec.index not in dropped]
        if compress is not None:
            replace = _compressed(image, [targets[i] for i in kept], [new_plains[i] for i in kept],
                                  compress, jobs, timer)
        else:
            # Changed sections keep the state they had: plain stays plain, and
            # compressed is compressed again with its own codec.
            changed = [i for i in kept if new_plains[i][0] is not plains[i][0]]
            replace = {targets[i].index: _plain_replacement(image, targets[i], *new_plains[i])
                       for i in changed if not targets[i].is_compressed}
            groups: dict[str, list[int]] = {}
            for i in changed:
                kind = report.before[i].compression
                if kind != "none":
                    groups.setdefault("zlib" if kind == "zdebug" else kind, []).append(i)
            for codec, again in sorted(groups.items()):
                replace.update(_compressed(image, [targets[i] for i in again], [new_plains[i] for i in again],
                                           Settings(codec=codec), jobs, timer))
        for sec, (_, align) in zip(indexes, index_plains):
            data = result.replace.get(sec.name)
            if data is not None:
                replace[sec.index] = _plain_replacement(image, sec, Plain(len(data), data=data), align)
            elif sec.name in result.drop or ".debug_info" in result.replace:
                dropped |= {sec.index}
            # else .debug_info was left as it was, and the index with it
        with timer.phase("write"):
            write_elf(image, dst, replace, drop=dropped)
    report.after = [_after(s, replace, compress.codec if compress else s.compression, dropped)
                    for s in report.before]
    return report


def _refuse_relocated_debug_info(image: ElfImage, targets: list[Section]) -> None:
    """Moving DIEs would leave relocations (of a ``.o``) pointing at the old offsets."""
    debug = {s.index for s in targets}
    for sec in image.sections:
        if sec.header["sh_type"] in (SHT_REL, SHT_RELA) and sec.header["sh_info"] in debug:
            raise LinkpluginError(f"{image.path}: debug sections have relocations ({sec.name}): "
                                  f"merge-types works on linked programs and libraries, not on .o files")


def verify_files(original: str | os.PathLike, merged: str | os.PathLike, limit: int = 20) -> list[str]:
    """Differences a debugger could see between two files' DWARF (empty: none)."""
    from linkplugin.merge.verify import verify

    def contents(path: str | os.PathLike) -> dict[str, bytes]:
        with _debug_job(path, PhaseTimer(), Report) as (image, targets, plains, _):
            return _contents(image, targets, plains)

    return verify(contents(original), contents(merged), limit=limit)
