"""Task-level API: whole-file jobs built from the ELF and codec layers.

These are what the command line and the SCons tool call.
"""
from __future__ import annotations

import os
import struct
import sys
import threading
from contextlib import ExitStack, contextmanager

from linkplugin.compress.codec import CompressJob, Plain, Settings, ch_type, describe, packed, plain_chunks
from linkplugin.elf.read import ElfImage, Section
from linkplugin.elf.structs import ET_DYN, ET_EXEC, SHF_COMPRESSED, SHT_REL, SHT_RELA
from linkplugin.errors import LinkpluginError
from linkplugin.elf.write import KEEP, Deferred, Replacement, Stream, movable, replace_file, write_elf
from linkplugin.pool import default_jobs
from linkplugin.record import Record
from linkplugin.timing import PhaseTimer

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Iterator


class SectionInfo(Record):
    __slots__ = ("index", "name", "size", "plain_size", "compression", "alloc")

    def __init__(self, index: int, name: str, size: int, plain_size: int, compression: str, alloc: bool) -> None:
        self.index, self.name = index, name
        self.size = size  # bytes in the file
        self.plain_size = plain_size  # bytes once decompressed
        self.compression = compression  # "none", "zlib", "zstd" or "zdebug" (legacy GNU)
        self.alloc = alloc


class Report(Record):
    """What a job did to the debug sections, for tables and tests. Reports keep an instance
    dict: a split's report is made from the merge's (``vars``)."""

    _fields = ("before", "after")

    def __init__(self, before: list[SectionInfo] | None = None, after: list[SectionInfo] | None = None) -> None:
        self.before: list[SectionInfo] = [] if before is None else before
        self.after: list[SectionInfo] = [] if after is None else after

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
    with ElfImage(path) as image, _naming(image.path):
        return [_info(image, sec) for sec in image.sections[1:]]


def _debug_sections(image: ElfImage) -> list[Section]:
    found = [s for s in image.sections if s.is_debug and movable(image, s)]
    seen: dict[str, Section] = {}
    for sec in found:
        # Two copies of one section (say .debug_info and .zdebug_info): which one a debugger
        # reads is undefined, and the jobs key sections by name.
        other = seen.setdefault(plain_name(sec.name), sec)
        if other is not sec:
            raise LinkpluginError(f"{image.path}: sections [{other.index}] and [{sec.index}] are both "
                                  f"{plain_name(sec.name)}")
    return found


def _plain(image: ElfImage, sec: Section) -> tuple[Plain, int]:
    """Where the plain bytes of a debug section are, and their alignment.

    A compressed section is not decompressed here: compression and the
    decompress command stream it, and only jobs that need it whole (the type
    merger) decompress it, after checking it can fit.
    """
    if sec.is_compressed:
        return packed(image.raw(sec), sec.name, bool(sec.flags & SHF_COMPRESSED), image.layout,
                      image.path, sec.header["sh_offset"])
    return Plain(sec.header["sh_size"], path=image.path, offset=sec.header["sh_offset"]), \
        sec.header["sh_addralign"]


@contextmanager
def _naming(path: str) -> Iterator[None]:
    """Errors about a file's contents name the file (section and DWARF errors do not know it)."""
    try:
        yield
    except LinkpluginError as exc:
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path}: {exc}") from None


@contextmanager
def _debug_job(src: str | os.PathLike, timer: PhaseTimer, report_type: type[Report]
               ) -> Iterator[tuple[ElfImage, list[Section], list[tuple[Plain, int]], Report]]:
    """The opened input, its debug sections, where their plain bytes are, and
    a report of their state before the job."""
    with timer.phase("read"):
        image = ElfImage(src)
    with image:
        with timer.phase("read"), _naming(image.path):
            targets = _debug_sections(image)
            report = report_type(before=[_info(image, s) for s in targets])
            plains = [_plain(image, s) for s in targets]
        yield image, targets, plains, report


def _contents(image: ElfImage, targets: list[Section], plains: list[tuple[Plain, int]]) -> dict[str, bytes]:
    """Plain bytes of each debug section by its plain name, for the DWARF engine."""
    _check_memory(image, targets, plains)
    contents = {}
    for sec, (plain, _) in zip(targets, plains):
        if plain.packed is not None:
            data = b"".join(plain_chunks(plain.packed, plain.size))
        elif plain.data is not None:
            data = bytes(plain.data)
        else:
            data = image.read(sec)
        contents[plain_name(sec.name)] = data
    return contents


def _check_memory(image: ElfImage, targets: list[Section], plains: list[tuple[Plain, int]]) -> None:
    """Refuse up front a job whose plain sections cannot all be held in memory.

    The sizes are the compression headers' claims: a small file may claim
    terabytes, and finding out by decompressing would exhaust the machine.
    """
    need = sum(plain.size for plain, _ in plains)
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if targets and need > have:
        sec, (plain, _) = max(zip(targets, plains), key=lambda pair: pair[1][0].size)
        raise LinkpluginError(f"{image.path}: section {sec.name}: {plain.size} bytes once decompressed ({need} "
                              f"for all debug sections), more than this machine's memory ({have} bytes)")


def _plain_replacement(image: ElfImage, sec: Section, plain: Plain, align: int) -> Replacement:
    """Store a section plain: its new bytes (``plain.data``), or decompressed as it is written."""
    data: bytes | memoryview | Stream
    if plain.data is not None:
        data = plain.data
    elif plain.packed is not None:
        data = Stream(plain.size, lambda: plain_chunks(plain.packed, plain.size))
    else:
        data = image.raw(sec)
    return Replacement(data=data, name=plain_name(sec.name),
                       header={"sh_flags": sec.flags & ~SHF_COMPRESSED, "sh_addralign": align})


def _compressed(image: ElfImage, targets: list[Section], plains: list[tuple[Plain, int]],
                settings: Settings, jobs: int, stack: ExitStack) -> dict[int, Replacement]:
    """Replacements that store ``targets`` compressed (or plain where that is not smaller), made
    by one compression job (closed with ``stack``) while ``write_elf`` writes them."""
    lay = image.layout
    # The job makes the shards in the order the writer asks for them: the sections' file order.
    order = sorted(range(len(targets)), key=lambda k: (targets[k].header["sh_offset"], targets[k].index))
    job = stack.enter_context(CompressJob([plains[k][0] for k in order], settings, jobs))
    replace = {}
    for i, k in enumerate(order):
        sec, (plain, align) = targets[k], plains[k]
        if image.elfclass == 32 and plain.size > 0xFFFFFFFF:  # (a .zdebug header's size has 64 bits)
            raise LinkpluginError(f"{image.path}: section {sec.name}: {plain.size} bytes once decompressed, "
                                  f"more than the 4 GiB an ELF32 file can address")
        head = lay.pack_chdr(ch_type(settings.codec), plain.size, max(align, 1))
        # Not smaller compressed: stored plain (decompressed, or the new bytes), else kept as it is.
        fallback = _plain_replacement(image, sec, plain, align) if sec.is_compressed or plain.data is not None \
            else None
        header = {"sh_flags": sec.flags | SHF_COMPRESSED, "sh_addralign": lay.word_align}
        replace[sec.index] = Replacement(data=_Compressing(job, i, head, plain.size, fallback),
                                         name=plain_name(sec.name), header=header)
    return replace


class _Compressing(Deferred):
    """One section of a compression job, as the writer writes it: the Chdr, then the shards as
    they are made; ``written``, once written: its size (``_written`` tells what the file holds)."""

    def __init__(self, job: CompressJob, i: int, head: bytes, plain_size: int, fallback: Replacement | None) -> None:
        self.job, self.i, self.head, self.plain_size, self.fallback = job, i, head, plain_size, fallback
        self.written = 0

    def start(self) -> None:
        self.job.start()

    def pieces(self) -> Iterator[bytes]:
        yield self.head
        yield from self.job.pieces(self.i)

    def settle(self, size: int) -> Replacement | object | None:
        self.written = size
        if size < self.plain_size:
            return None
        return KEEP if self.fallback is None else self.fallback


def _written(rep: Replacement | None) -> Replacement | None:
    """What was written for ``rep`` (a compressed section: itself with its size, its bytes
    written and gone; or the plain fallback; None: the input's section kept)."""
    if rep is None or not isinstance(rep.data, _Compressing):
        return rep
    if rep.data.written < rep.data.plain_size:
        return Replacement(data=Stream(rep.data.written, tuple), name=rep.name, header=rep.header)
    return rep.data.fallback


def compress_file(src: str | os.PathLike, dst: str | os.PathLike, settings: Settings | None = None,
                  jobs: int | None = None, timer: PhaseTimer | None = None) -> Report:
    """Write ``src`` to ``dst`` with every debug section compressed.

    Sections already compressed are decompressed and compressed again with
    ``settings``; a section that would not shrink is stored plain.
    """
    settings = settings or Settings()
    jobs = jobs or default_jobs()
    timer = timer or PhaseTimer()
    with _debug_job(src, timer, Report) as (image, targets, plains, report), ExitStack() as stack:
        replace = _compressed(image, targets, plains, settings, jobs, stack)
        with timer.phase("compress+write"):  # one pass: each shard written once it is made
            write_elf(image, dst, replace)
    report.after = [_after(s, replace, settings.codec) for s in report.before]
    return report


def _after(before: SectionInfo, replace: dict[int, Replacement], codec: str,
           dropped: frozenset[int] = frozenset()) -> SectionInfo:
    if before.index in dropped:
        return SectionInfo(before.index, before.name, 0, 0, "removed", before.alloc)
    rep = _written(replace.get(before.index))
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
        with _naming(image.path):
            targets = [s for s in _debug_sections(image) if s.is_compressed]
            report = Report(before=[_info(image, s) for s in targets])
            replace = {s.index: _plain_replacement(image, s, *_plain(image, s)) for s in targets}
        with timer.phase("decompress+write"):  # one streamed pass; its errors name the file
            write_elf(image, dst, replace)
    report.after = [_after(s, replace, "none") for s in report.before]
    return report


class MergeReport(Report):
    _fields = (*Report._fields, "stats", "warnings")

    def __init__(self, before: list[SectionInfo] | None = None, after: list[SectionInfo] | None = None,
                 stats: dict | None = None, warnings: list[str] | None = None) -> None:
        super().__init__(before, after)
        self.stats: dict = {} if stats is None else stats
        self.warnings: list[str] = [] if warnings is None else warnings


def merge_types_file(src: str | os.PathLike, dst: str | os.PathLike, jobs: int | None = None,
                     timer: PhaseTimer | None = None, compress: Settings | None = None,
                     odr: bool = False) -> MergeReport:
    """Write ``src`` to ``dst`` with duplicate DWARF types merged.

    With ``compress``, every debug section is then compressed too: one read,
    one write. Without it, every section keeps its compression state.
    ``odr``: C++ types of one qualified name and size are one type (merge/odr.py).
    """
    jobs = jobs or default_jobs()
    timer = timer or PhaseTimer()
    loader = _engine_loader()
    try:
        with _debug_job(src, timer, MergeReport) as (image, targets, plains, report):
            return _merge_types(image, targets, plains, report, dst, jobs, timer, compress, odr, loader)
    finally:
        if loader is not None:
            loader.join()


def _engine_loader() -> threading.Thread | None:
    """The DWARF engine (only loaded for a merge: 40 modules, 12 ms) importing on a thread of
    its own while the caller reads the input, whose reads wait on the kernel without the GIL;
    None once it is loaded."""
    if "linkplugin.merge" in sys.modules:
        return None
    loader = threading.Thread(target=_load_engine, name="linkplugin-import")
    loader.start()
    return loader


def _load_engine() -> None:
    try:
        import linkplugin.merge  # noqa: F401
    except ImportError:
        pass  # (the caller's own import raises it again, where it is reported)


def _merge_types(image: ElfImage, targets: list[Section], plains: list[tuple[Plain, int]], report: MergeReport,
                 dst: str | os.PathLike, jobs: int, timer: PhaseTimer, compress: Settings | None, odr: bool,
                 loader: threading.Thread | None) -> MergeReport:
    """``merge_types_file`` once the input is open (``_debug_job``)."""
    relocations = _debug_relocations(image, targets)
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
    # Decompressed once: compression below reads these bytes.
    plains = [(Plain(plain.size, data=contents[plain_name(sec.name)]), align)
              if plain.packed is not None else (plain, align)
              for sec, (plain, align) in zip(targets, plains)]
    with timer.phase("import"):  # (what the loader has not loaded yet)
        if loader is not None:
            loader.join()
        from linkplugin.merge import merge_sections
    with _naming(image.path):
        result = merge_sections(contents, little_endian=image.little_endian,
                                address_size=8 if image.elfclass == 64 else 4, jobs=jobs,
                                timings=timer, odr=odr, consume=True)
    report.stats, report.warnings = result.stats, result.warnings
    index_of = {plain_name(s.name): s.index for s in targets}
    dropped = frozenset(index_of[n] for n in result.drop if n in index_of)
    new_plains = []
    for sec, (plain, align) in zip(targets, plains):
        data = result.replace.get(plain_name(sec.name))
        new_plains.append((Plain(len(data), data=data), align) if data is not None else (plain, align))
    kept = [i for i, sec in enumerate(targets) if sec.index not in dropped]
    emptied, warning = _emptied_relocations(
        relocations, {sec.index for sec in targets if sec.index in dropped or plain_name(sec.name) in result.replace})
    if warning:
        report.warnings.append(warning)
    with ExitStack() as stack:
        if compress is not None:
            replace = _compressed(image, [targets[i] for i in kept], [new_plains[i] for i in kept],
                                  compress, jobs, stack)
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
                                           Settings(codec=codec), jobs, stack))
        for sec, (_, align) in zip(indexes, index_plains):
            data = result.replace.get(sec.name)
            if data is not None:
                replace[sec.index] = _plain_replacement(image, sec, Plain(len(data), data=data), align)
            elif sec.name in result.drop or ".debug_info" in result.replace:
                dropped |= {sec.index}
            # else .debug_info was left as it was, and the index with it
        replace.update(emptied)
        # Compressed sections are made as they are written (each shard written once it is made).
        compressing = any(isinstance(rep.data, Deferred) for rep in replace.values())
        with timer.phase("compress+write" if compressing else "write"):
            write_elf(image, dst, replace, drop=dropped)
    report.after = [_after(s, replace, compress.codec if compress else s.compression, dropped)
                    for s in report.before]
    return report


def _debug_relocations(image: ElfImage, targets: list[Section]) -> list[Section]:
    """The relocation sections of the debug sections. A ``.o``'s are refused: moving DIEs would
    leave them pointing at the old offsets. A linked program's (a Linux kernel linked with
    --emit-relocs keeps them) were applied when it was linked and no debugger applies them
    again (gdb and libdw apply relocations to debug sections of ET_REL files only)."""
    debug = {s.index for s in targets}
    found = [sec for sec in image.sections
             if sec.header["sh_type"] in (SHT_REL, SHT_RELA) and sec.header["sh_info"] in debug]
    if found and image.e_type not in (ET_EXEC, ET_DYN):
        raise LinkpluginError(f"{image.path}: debug sections have relocations ({found[0].name}): "
                              f"merge-types works on linked programs and libraries, not on .o files")
    for sec in found:
        if not movable(image, sec):
            raise LinkpluginError(f"{image.path}: {sec.name} is loaded with the program and cannot be emptied")
    return found


def _emptied_relocations(relocations: list[Section], rewritten: set[int]) -> tuple[dict[int, Replacement], str]:
    """Empty relocation sections for the debug sections the merge rewrote (those of the others
    stay: their offsets still hold), and the warning that says so (empty: none). Emptied, not
    removed: the symbol table's section symbols would have to be renumbered (dwz keeps them
    as they were, pointing at the old offsets)."""
    emptied = [sec for sec in relocations if sec.header["sh_info"] in rewritten]
    if not emptied:
        return {}, ""
    names = ", ".join(sec.name for sec in emptied)
    return ({sec.index: Replacement(data=b"") for sec in emptied},
            f"emptied {names}: relocations that the link already applied, which would point at "
            f"the old offsets of the rewritten sections")


def verify_files(original: str | os.PathLike, merged: str | os.PathLike, limit: int = 20) -> list[str]:
    """Differences a debugger could see between two files' DWARF (empty: none)."""
    from linkplugin.merge.verify import verify

    def contents(path: str | os.PathLike) -> dict[str, bytes]:
        with _debug_job(path, PhaseTimer(), Report) as (image, targets, plains, _):
            secs = _contents(image, targets, plains)
        if not secs.get(".debug_info"):
            raise LinkpluginError(f"{os.fspath(path)}: has no .debug_info to compare")
        return secs

    return verify(contents(original), contents(merged), limit=limit)


class SplitReport(MergeReport):
    _fields = (*MergeReport._fields, "debug_file", "build_id")

    def __init__(self, before: list[SectionInfo] | None = None, after: list[SectionInfo] | None = None,
                 stats: dict | None = None, warnings: list[str] | None = None, debug_file: str = "",
                 build_id: str = "") -> None:
        super().__init__(before, after, stats, warnings)
        self.debug_file = debug_file
        self.build_id = build_id  # hex, "" when the program has none


NT_GNU_BUILD_ID = 3
SHT_NOTE = 7
PT_INTERP = 3


def _has_debug_info(image: ElfImage) -> bool:
    return image.section(".debug_info") is not None or image.section(".zdebug_info") is not None


def has_debug_info(path: str | os.PathLike) -> bool:
    """Whether a file has DWARF units (a .debug_info section)."""
    with ElfImage(path) as image:
        return _has_debug_info(image)


def build_id(image: ElfImage) -> str:
    """The GNU build ID of a file, in hex ("" when it has none)."""
    order = "<" if image.little_endian else ">"
    for sec in image.sections:
        if sec.header["sh_type"] != SHT_NOTE or not sec.has_bytes:
            continue
        raw = bytes(image.raw(sec))
        at = 0
        while at + 12 <= len(raw):
            namesz, descsz, kind = struct.unpack_from(order + "III", raw, at)
            name_at = at + 12
            desc_at = name_at + (namesz + 3) // 4 * 4
            if desc_at + descsz > len(raw):
                break
            if kind == NT_GNU_BUILD_ID and raw[name_at:name_at + namesz] == b"GNU\0" and descsz:
                return raw[desc_at:desc_at + descsz].hex()
            at = desc_at + (descsz + 3) // 4 * 4
    return ""


def debug_file_path(stripped: str | os.PathLike, debug_dir: str | os.PathLike, build: str) -> str:
    """Where a split debug file goes under ``debug_dir``: ``.build-id/xx/yyyy.debug``
    when the program has a build ID (gdb finds it by ``set debug-file-directory``
    alone, as in /usr/lib/debug), else ``<program name>.debug``."""
    if len(build) > 2:
        return os.path.join(os.fspath(debug_dir), ".build-id", build[:2], build[2:] + ".debug")
    return os.path.join(os.fspath(debug_dir), os.path.basename(os.fspath(stripped)) + ".debug")


def _objcopy(*args: str) -> None:
    import shutil
    import subprocess  # only split runs a tool: the other commands do not load it

    tool = shutil.which("objcopy")
    if tool is None:
        raise LinkpluginError("objcopy not found: split needs it (binutils)")
    result = subprocess.run([tool, *args], capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise LinkpluginError(f"objcopy failed: {message}")


def split_file(src: str | os.PathLike, stripped: str | os.PathLike, *, debug_file: str | os.PathLike | None = None,
               debug_dir: str | os.PathLike | None = None, merge: bool = True,
               compress: Settings | None = None, jobs: int | None = None,
               timer: PhaseTimer | None = None, odr: bool = False) -> SplitReport:
    """Write a stripped copy of ``src`` and a separate debug file, as Debian's dh_strip does.

    The debug file is ``objcopy --only-keep-debug`` of ``src`` (symbols, notes
    with the build ID, debug sections), its types merged (``merge``) and its
    debug sections compressed (``compress``; None keeps them plain). The
    stripped program has no ``.debug_*`` sections and no symbol table
    (``--strip-all`` for programs, ``--strip-unneeded`` for shared libraries,
    ``.comment`` and ``.note`` removed) and a ``.gnu_debuglink`` with the debug
    file's name and CRC32. Give ``debug_file``, or ``debug_dir`` for the
    build-ID layout (see ``debug_file_path``). Both outputs are renamed into
    place only when both are complete; ``stripped`` may be ``src``.
    """
    import shutil
    import tempfile  # only split makes a work folder: the other commands do not load these

    timer = timer or PhaseTimer()
    with timer.phase("read"):
        with ElfImage(src) as image:
            build = build_id(image)
            # A shared library keeps the symbols its relocations need; a
            # program (with an interpreter, PIE or not) needs none.
            library = image.e_type == ET_DYN and not any(
                p_type == PT_INTERP for p_type in _segment_types(image))
            # Without DWARF (linked without -g) the debug file holds the symbols only.
            merge = merge and _has_debug_info(image)
    if (debug_file is None) == (debug_dir is None):
        raise LinkpluginError("split: give either a debug file or a debug folder")
    stripped = os.fspath(stripped)
    if not os.path.isdir(os.path.dirname(os.path.abspath(stripped))):
        raise LinkpluginError(f"{stripped}: cannot write: folder {os.path.dirname(stripped)} does not exist")
    target = os.fspath(debug_file) if debug_file is not None else debug_file_path(stripped, debug_dir, build)
    folder = os.path.dirname(os.path.abspath(target))
    if debug_dir is not None:  # the build-ID tree is made as needed, as dh_strip does
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise LinkpluginError(f"{folder}: cannot create: {exc.strerror}") from None
    elif not os.path.isdir(folder):
        raise LinkpluginError(f"{target}: cannot write: folder {folder} does not exist")
    try:
        work = tempfile.mkdtemp(prefix=".linkplugin-", dir=folder)
    except OSError as exc:
        raise LinkpluginError(f"{target}: cannot write: {exc.strerror}") from None
    # The debug file is made under its final name inside ``work``: objcopy
    # records that name in the program's .gnu_debuglink.
    kept = os.path.join(work, "keep")
    debug = os.path.join(work, os.path.basename(target))
    tmp_stripped = None
    try:
        with timer.phase("keep-debug"):
            _objcopy("--only-keep-debug", os.fspath(src), kept)
        if merge:
            report = merge_types_file(kept, debug, jobs=jobs, timer=timer, compress=compress, odr=odr)
        elif compress is not None:
            report = compress_file(kept, debug, compress, jobs=jobs, timer=timer)
        else:
            report = decompress_file(kept, debug, timer=timer)
        if merge and compress is None and any(s.compression != "none" for s in report.before):
            decompress_file(debug, debug, timer=timer)  # merging keeps each section's state; none asked
        os.chmod(debug, 0o644)  # data, not a program (as dh_strip installs it)
        fd, tmp_stripped = tempfile.mkstemp(prefix=".linkplugin-", dir=os.path.dirname(os.path.abspath(stripped)))
        os.close(fd)
        with timer.phase("strip"):
            _objcopy("--strip-unneeded" if library else "--strip-all", "--remove-section=.comment",
                     "--remove-section=.note", "--remove-section=.gnu_debuglink",
                     f"--add-gnu-debuglink={debug}", os.fspath(src), tmp_stripped)
        # objcopy writing over mkstemp's 0600 file leaves 0711: give the program its input's mode, as strip does.
        os.chmod(tmp_stripped, os.stat(src).st_mode & 0o7777)
        replace_file(debug, target)
        replace_file(tmp_stripped, stripped)
        tmp_stripped = None
    except OSError as exc:
        raise LinkpluginError(f"{stripped}: cannot write: {exc.strerror}") from None
    finally:
        if tmp_stripped is not None:
            _remove(tmp_stripped)
        shutil.rmtree(work, ignore_errors=True)
    result = SplitReport(**vars(report))
    result.debug_file, result.build_id = target, build
    return result


def _segment_types(image: ElfImage) -> list[int]:
    order = "<" if image.little_endian else ">"
    start, end = image.phdr_range
    size = 56 if image.elfclass == 64 else 32
    return [struct.unpack_from(order + "I", image.data, at)[0] for at in range(start, end - size + 1, size)]


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
