"""DWARF type merging: drop duplicate type DIEs across units, deterministically and in parallel.

The phases (ported from lld's parallel PDB type merging with global hashes):
read + hash (parallel, ``hash``), table (serial, ``table``), rewrite (parallel, ``rewrite``),
layout (serial, ``layout``), other sections (``sections``). The output bytes never depend on the
number of jobs: every parallel phase works on whole units and results are combined in unit order.
"""
from __future__ import annotations

import struct
import time
from array import array
from contextlib import contextmanager

from linkplugin.errors import LinkpluginError
from linkplugin.index import CannotRebuild, rebuild_indexes
from linkplugin.dwarf.read import forget_tables
from linkplugin.dwarf.abbrev import unit_die_entry
from linkplugin.dwarf.forms import DW_TAG_partial_unit, DW_UT_partial, DwarfError
from linkplugin.dwarf.units import UnitHeader, forget_units, parse_units
from linkplugin.merge.expansion import MAIN, THREAD_MODELS, thread_ranks
from linkplugin.merge.hash import UnitAnalysis, analyze_chunk, split_skeletons
from linkplugin.memory import map_large_blocks, release_freed_memory
from linkplugin.merge.layout import assemble, offsets
from linkplugin.merge.nogc import no_gc
from linkplugin.merge import fastrewrite
from linkplugin.merge.rewrite import UnitOutput, UnitPlan, plan_chunk, rewrite_chunk, shared_table
from linkplugin.merge.shared import KEEP_ABBREV_BYTES, KEEP_INFO_BYTES, SharedSections, shared_sections, worker_sections
from linkplugin.merge.sections import patch_location_lists, rewrite_aranges
from linkplugin.merge.table import choose_winners, no_removals
from linkplugin.pool import run_tasks, run_threads, warm_up
from linkplugin.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Any, Callable, Iterator

# Sections the workers read.
_WORKER_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line_str", ".debug_str_offsets",
                    ".debug_line", ".debug_loc", ".debug_loclists")
# Below this much .debug_info, starting worker processes costs more than they save: one process.
MIN_PARALLEL_BYTES = 1 << 20
# Threads start in microseconds: with the compiled kernels a second one gains a little from here (nam, 1 MB
# of C++: -j2 0.85-0.99x the time of one thread, 0.5 MB of dwz output 0.92x, for under 1.3 MiB more;
# runs of 21, paired or interleaved, session 28; the machine was noisy).
MIN_THREAD_PARALLEL_BYTES = 256 << 10
# Threads help where the units' compiled kernels (which release the GIL) outweigh the Python
# around each unit (which holds it). The hash phase's kernels and the rewrite's first pass take
# the units in batches (hash.batches, _rewritecore.plan_units), one GIL release per batch: both
# gain on threads whatever the units' size (libgsl, 5.7 KB a unit: rewrite phase 44 -> 37 ms on
# two with one release per unit, 35 with batches). The ODR step (several kernel calls per unit)
# and the rewrite's second pass (a recode of a few microseconds per unit, the rest Python) lose
# on threads below this many bytes per unit on average: two threads there only take the GIL
# from each other, so they run on one. The second pass on one thread: libgsl's rewrite phase
# 38.5 -> 34.7 ms and glibc's (3.3 KB) 77 -> 68; libstdc++ (24 KB) 45 -> 55 and python3.11d 69
# -> 90, which keep two. -j2 against -j1 on 2 cores, all phases on threads, one call each
# (session 7): glibc's libc.so.6 1.49x the time, libbinutils 1.28x, binutils' ld.bfd (15 KB)
# 1.00x, libstdc++ (24 KB) 0.86x, gold (30 KB) 0.68x.
MIN_THREAD_UNIT_BYTES = 16 << 10
# Units smaller than this are left out of that average: a unit of a few DIEs costs the second
# pass little Python, and dwz's output holds hundreds of them (its partial units). IT++'s debug
# file (libitpp8v5-dbg, dwz output: 1,067 units, 914 under 1 KiB, median 54 bytes) averaged
# 12.6 KB a unit and had its second pass on one thread: 110-114 ms, 73-82 on two. Counting the
# 153 units of 1 KiB and more, 87 KB; every other input keeps its choice (glibc 4.3 KB, libgsl
# 6.1, syslog-ng 9.4; all those at 16 KB and over stay there).
MIN_COUNTED_UNIT_BYTES = 1 << 10
# Below this much .debug_info the rewrite's second pass runs on one thread too: a second one holds
# a second chunk's kernels and copies at once, a cost about the same at any size, for a gain in
# proportion to the size. clang's gdbserver (1.85 MB): peak 29.0 -> 27.2 MB, 87.5 -> 89.0 ms at
# -j2; above it the time wins: graphicsmagick (3.7 MB) -1.1 MB for +1.6% of its time, libstdc++
# (4.3 MB) -1.3 MB for +6%, stimfit -2.2 MB for +14% (8 interleaved runs each, session 24).
MIN_SECOND_PASS_THREAD_BYTES = 2 << 20


class MergeResult(Record):
    __slots__ = ("replace", "drop", "warnings", "stats")

    def __init__(self, warnings: list[str] | None = None) -> None:
        self.replace: dict[str, bytes] = {}  # new contents of changed sections
        self.drop: list[str] = []  # sections to remove
        self.warnings: list[str] = [] if warnings is None else warnings
        self.stats: dict[str, Any] = {}


@contextmanager
def _phase(timings: Any, name: str) -> Iterator[None]:
    """Time a phase into a PhaseTimer-like object (``.phase(name)``) or a dict of seconds."""
    if timings is not None and hasattr(timings, "phase"):
        with timings.phase(name):
            yield
        return
    t0 = time.perf_counter()
    yield
    if isinstance(timings, dict):
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0


def _chunks(sizes: list[int], jobs: int, per_job: int = 3) -> list[list[int]]:
    """Contiguous groups of unit indexes of similar byte size (``per_job`` per worker, for
    balance: the last chunk taken decides when the phase ends)."""
    if jobs <= 1:
        return [list(range(len(sizes)))]
    target = max(1, sum(sizes) // (jobs * per_job))
    out: list[list[int]] = [[]]
    acc = 0
    for u, s in enumerate(sizes):
        if acc >= target:
            out.append([])
            acc = 0
        out[-1].append(u)
        acc += s
    return [c for c in out if c]


def _run_phase(run: Callable[..., list], fn: Callable[..., Any], tasks: list[tuple], weights: list[int],
                   jobs: int) -> list:
    """One parallel phase: ``run(fn, tasks, jobs)`` with the tasks started heaviest first, results
    in task order, and on worker processes each task followed by a release of what it freed.

    The last task taken decides when a phase ends: a large unit started last keeps one job busy
    while the others wait. Started first, the large units also do their work (their largest
    temporary blocks) while little of the phase's results is held yet: a lower peak."""
    if jobs <= 1:
        return run(fn, tasks, jobs)
    if run is not run_threads:  # worker processes: each hands back what its chunk freed
        fn, tasks = _then_release, [(fn, *t) for t in tasks]
    order = sorted(range(len(tasks)), key=lambda k: (-weights[k], k))
    out: list = [None] * len(tasks)
    for k, got in zip(order, run(fn, [tasks[k] for k in order], jobs)):
        out[k] = got
    return out


def _then_release(fn: Callable[..., Any], *args: Any) -> Any:
    """A worker process's task ``fn(*args)``, then the memory it freed handed back to the
    system: its chunk's decoded units are garbage once the results are sent, and the peak that
    counts is summed over all processes. (Threads do not do this: trimming every heap after each
    chunk contends with the other threads; ``memory.map_large_blocks`` serves them instead.)"""
    got = fn(*args)
    release_freed_memory()
    return got


def merge_sections(sections: dict[str, bytes], *, little_endian: bool, address_size: int, jobs: int = 1,
                   stats: dict | None = None, timings: Any = None, odr: bool = False,
                   consume: bool = False) -> MergeResult:
    """Merge duplicate types of ``sections`` (decompressed .debug_* contents by name).

    ``address_size`` is the ELF class's; each unit's own header is what the decoder uses.
    ``jobs`` worker processes share the read, hash and rewrite phases; the result is the same
    bytes for any value. ``stats`` (if given) is updated with the counters of ``MergeResult.stats``;
    ``timings`` is a PhaseTimer-like object (``.phase(name)`` context manager) or a dict that
    receives seconds per phase. Undecodable input raises LinkpluginError (DwarfError) with a
    one-line message; units that are understood but not merged are copied and reported in
    ``warnings``. ``odr``: also merge C++ types by qualified name (odr.py). With ``consume`` the
    caller gives ``sections`` up: the merge removes .debug_info from it once the rewrite has read
    it for the last time, so that its memory is free for the layout (the caller must hold no
    other reference to those bytes).
    """
    if not little_endian:
        raise LinkpluginError("big-endian DWARF is not supported by merge-types")
    if not sections.get(".debug_info"):
        raise LinkpluginError("the file has no .debug_info to merge")
    unmerged = ""
    if ".debug_types" in sections:
        # gdb 13 crashes reading a file that has DWARF 4 type units (.debug_types) and
        # references between .debug_info units (dwz's output of such a file too): we do not
        # write that construct.
        unmerged = ("the file has DWARF 4 type units (.debug_types): gdb cannot follow references between units "
                    "in such a file; .debug_info left unmerged")
    elif _supplementary(sections, parse_units(sections[".debug_info"])):
        unmerged = ("the file is a supplementary debug file (dwz -m): the files that point at it name its DIEs "
                    "and strings by offset; left unmerged")
    if unmerged:
        n_units = len(parse_units(sections[".debug_info"]))
        result = MergeResult(warnings=[unmerged])
        result.stats = {"units": n_units, "verbatim_units": n_units, "bytes": {}}
        if stats is not None:
            stats.update(result.stats)
        return result
    with no_gc():
        return _merge(sections, jobs, stats, timings, odr, consume)


def _merge(sections: dict[str, bytes], jobs: int, stats: dict | None, timings: Any, odr: bool,
           consume: bool) -> MergeResult:
    secs = {k: sections[k] for k in _WORKER_SECTIONS if k in sections}
    threads = jobs > 1 and _kernels_release_gil()
    if len(secs[".debug_info"]) < (MIN_THREAD_PARALLEL_BYTES if threads else MIN_PARALLEL_BYTES):
        jobs = 1
        threads = False
    python_jobs = jobs
    if threads and _small_units(secs[".debug_info"]):
        # Small units: the ODR step and the rewrite's second pass on one thread (the output is the
        # same for any number), and the allocator as it is: its mapping threshold, there for threads' large blocks, cost
        # glibc's libc.so.6 4% of its time (the page faults of the table and layout phases' large
        # arrays), for 0.6 MiB less.
        python_jobs = 1
    elif threads:
        map_large_blocks()
        if len(secs[".debug_info"]) < MIN_SECOND_PASS_THREAD_BYTES:
            python_jobs = 1
    with shared_sections(secs, workers=jobs > 1 and not threads) as handle:
        if jobs > 1 and not threads:
            # In the command, workers forked now inherit the engine's modules and the sections
            # (no forkserver start-up, no reading the sections again); elsewhere this does nothing.
            warm_up(analyze_chunk, jobs)
        return _merge_with(sections, handle, jobs, stats, timings, run_threads if threads else run_tasks, odr,
                           consume, python_jobs=python_jobs)


def _small_units(info: bytes) -> bool:
    """Whether the units of at least MIN_COUNTED_UNIT_BYTES average under MIN_THREAD_UNIT_BYTES
    (or there are none)."""
    counted = [size for size in (u.end - u.off for u in parse_units(info)) if size >= MIN_COUNTED_UNIT_BYTES]
    return sum(counted) < MIN_THREAD_UNIT_BYTES * max(1, len(counted))


def _kernels_release_gil() -> bool:
    """Whether every per-unit phase runs its bulk in compiled code that releases the GIL: then
    the units are spread over threads of this process rather than worker processes (no start-up,
    no copy of the sections or of the results, one interpreter's memory)."""
    from linkplugin.dwarf import read
    from linkplugin.merge import fasthash, fastrewrite

    # Each kernel module says so itself (NOGIL = True); a missing kernel means the pure path.
    return all(getattr(core, "NOGIL", False) for core in (read._scan, fasthash._core, fastrewrite._core))


def _merge_with(sections: dict[str, bytes], src: SharedSections, jobs: int, stats: dict | None, timings: Any,
                run_tasks: Callable[..., list] = run_tasks, odr: bool = False, consume: bool = False, *,
                python_jobs: int) -> MergeResult:
    """The phases, with the worker tasks (run by ``run_tasks``: processes or threads) reading the
    sections through ``src``: the hash phase and the rewrite's first pass on ``jobs``, --odr's
    step and the rewrite's second pass on ``python_jobs``."""
    result = MergeResult()
    sizes = {name: len(data) for name, data in sections.items()}
    units = parse_units(sections[".debug_info"])
    # Threads take small chunks (a chunk costs them nothing but its own caches); worker
    # processes fewer (each task sends its results through a pipe).
    chunks = _chunks([u.end - u.off for u in units], jobs, 8 if run_tasks is run_threads else 3)
    weights = [units[c[-1]].end - units[c[0]].off for c in chunks]
    # Each phase that decodes units makes the scanner's tables of their abbreviations again once
    # they are forgotten: small inputs keep them to the end of the rewrite (python3.11d: 1.8 MB,
    # 540 makes -> 180), large ones drop them between phases (libjvm.so: 34 MB).
    # A table's kept forms take about 6 times its bytes (glibc's libc.so.6: 983 KB of
    # abbreviations, 5.5 MiB kept, for 2-4% of its time: 2,063 tables not made again for the
    # rewrite): an input with more abbreviation bytes drops them at the end of the hash phase,
    # before the table phase's peak, and makes them again once for both rewrite passes.
    keep_tables = sizes[".debug_info"] <= KEEP_INFO_BYTES and sizes.get(".debug_abbrev", 0) <= KEEP_ABBREV_BYTES

    with _phase(timings, "read+hash"):
        # An input with partial units loses no DIE (below): its types are not hashed. Xen's shim
        # symbols as Debian ships them (1,958 units, 1,693 of them partial): 0.83x the time at
        # -j1, 0.85x at -j2, 1.2 MiB less; PETSc's 0.85x (BENCHMARKS.md, session 30). Same bytes.
        dwz_output = _holds_partial_units(sections, units)
        analyses: list[UnitAnalysis] = [a for part in _run_phase(run_tasks, analyze_chunk,
                                                                 [(src, c, not dwz_output) for c in chunks], weights,
                                                                 jobs)
                                        for a in part]
    with _phase(timings, "table"):
        if not keep_tables:
            forget_tables()
        release_freed_memory()  # what the hash phase left in the heaps, before the table's arrays
        partial = dwz_output or any(a.partial for a in analyses)
        if partial:
            # gdb reads a partial unit's DIEs as part of each unit that imports it: a copy moved
            # across that boundary lists under other files (libstdc++ after dwz -o: 268 of 13,503
            # entries moved). dwz removed the duplicates already; the units are only re-encoded.
            removals = no_removals(len(analyses))
            result.warnings.append("the input holds partial units (dwz output): its duplicates are shared "
                                   "already, so no DIE is removed (abbreviations and reference forms are "
                                   "still rewritten)")
        else:
            keys, orders = _expansion_keys(sections, units, analyses)
            removals = choose_winners(analyses, keys, orders)
        redirects = removals  # what the layout's Resolver follows; the ODR step's differ
        if odr and not partial:
            from linkplugin.merge.odr import odr_removals  # C++ only, and it loads OpenSSL (hashlib)

            # (on ``python_jobs``: its Python per unit loses on threads where the units are small)
            removals, redirects = odr_removals(analyses, removals, units, sections, src, chunks, python_jobs,
                                               run_tasks, keys)
        # Only these outlive the table phase: the hashes and name keys are dropped here, and the
        # DIE offsets joined into the one array the layout searches.
        verbatim = [a.verbatim for a in analyses]
        hashed_in_python = sum(1 for a in analyses if a.python)
        counts = [len(a.offs) for a in analyses]
        n_types = sum(len(a.roots) for a in analyses)
        offs = offsets([a.offs for a in analyses])
        del analyses
        release_freed_memory()
    with _phase(timings, "rewrite"):
        # Two passes: the first learns each unit's reference width and abbreviation uses, from
        # which one abbreviation table shared by every rewritten unit is numbered (most used
        # first); the second writes the units with it.
        # .gdb_index names a type under its holders: those of dropped copies add the canonical ones'.
        indexed = ".gdb_index" in sections
        jobs_of = [[(u, verbatim[u], removals[u]) for u in c] for c in chunks]
        plans: list[UnitPlan] = [p for part in _run_phase(run_tasks, plan_chunk, [(src, j, indexed) for j in jobs_of],
                                                          weights, jobs)
                                 for p in part]
        codes, table = shared_table(plans)
        widths = [p.local_width for p in plans]
        del plans  # their abbreviation uses (glibc's libc.so.6: 42,000 entries, 5 MB)
        if sizes[".debug_info"] > KEEP_INFO_BYTES:
            forget_tables()
        release_freed_memory()  # what the first pass left in the threads' heaps, before the outputs pile up
        jobs_of2 = [[(u, verbatim[u], removals[u], widths[u]) for u in c] for c in chunks]
        outputs: list[UnitOutput] = [o for part in _run_phase(run_tasks, rewrite_chunk,
                                                              [(src, j, codes, indexed) for j in jobs_of2], weights,
                                                              python_jobs)
                                     for o in part]
        if consume:  # nothing reads the old .debug_info after this (libjvm.so: 257 MB)
            del sections[".debug_info"], worker_sections(src)[".debug_info"]
            forget_units()
    with _phase(timings, "layout"):
        forget_tables()
        release_freed_memory()  # what the rewrite's decoded units left in the threads' heaps
        new_info, new_abbrev, new_unit_off, resolve = assemble(units, outputs, offs, counts, redirects, table)
        del offs
    with _phase(timings, "sections"):
        result.replace[".debug_info"] = new_info
        result.replace[".debug_abbrev"] = new_abbrev
        if ".debug_aranges" in sections:
            unit_map = {u.off: new_unit_off[k] for k, u in enumerate(units)}
            result.replace[".debug_aranges"] = rewrite_aranges(sections[".debug_aranges"], unit_map)
        for name in (".debug_loc", ".debug_loclists"):
            version_ok = (lambda v: v < 5) if name == ".debug_loc" else (lambda v: v >= 5)
            values = [o.loc_values for u, o in zip(units, outputs) if version_ok(u.version) and o.loc_values]
            patches = [p for u, o in zip(units, outputs) if version_ok(u.version) for p in o.loc_patches]
            if values or patches:
                result.replace[name] = patch_location_lists(sections[name], values, patches, resolve)
        # Name indexes hold unit and DIE offsets: rewritten for the new ones, or dropped.
        moved = {u: o.moved for u, o in enumerate(outputs) if o.moved}
        rebuilt = rebuild_indexes(sections, new_info, units, new_unit_off, resolve.many, set(result.replace),
                                  moved, split_skeletons(units, outputs))
        result.replace.update(rebuilt.replace)
        result.drop += rebuilt.drop
        result.warnings += rebuilt.warnings
    # One line per reason (a program with type units has hundreds of them).
    left: dict[str, list[int]] = {}
    for u, o in zip(units, outputs):
        if o.verbatim:
            left.setdefault(o.verbatim, []).append(u.off)
    for reason, starts in left.items():
        result.warnings.append(f"unit at 0x{starts[0]:x} left as it is: {reason}" if len(starts) == 1 else
                               f"{len(starts)} units left as they are (the first at 0x{starts[0]:x}): {reason}")

    removed = sum(len(r.starts) for r, o in zip(removals, outputs) if not o.verbatim)
    result.stats = {
        "units": len(units),
        "dies": sum(counts),
        "dies_after": sum(o.dies_out for o in outputs),
        "types": n_types,
        "duplicates_removed": removed,
        "verbatim_units": sum(1 for o in outputs if o.verbatim),
        # units the compiled core (when built) left to the pure-Python path, phase by phase
        "python_units": (hashed_in_python, sum(1 for o in outputs if o.python)),
        "tags": _tag_table(outputs),
        # (before, after) of every section changed or dropped
        "bytes": {**{name: (sizes[name], len(data)) for name, data in result.replace.items()},
                  **{name: (sizes[name], 0) for name in result.drop}},
    }
    if stats is not None:
        stats.update(result.stats)
    return result


def _holds_partial_units(sections: dict[str, bytes], units: list[UnitHeader]) -> bool:
    """Whether a unit's first DIE is a DW_TAG_partial_unit, as the hash phase finds it
    (``UnitAnalysis.partial``), read before it: in DWARF 5 only the units whose header says
    DW_UT_partial are looked at (a partial unit under another header is still found by the
    hash phase, which then hashes). A unit this cannot read counts as not partial: the hash
    phase decodes it and says what is wrong."""
    return any(_partial(sections, hdr) for hdr in units)


def _supplementary(sections: dict[str, bytes], units: list[UnitHeader]) -> bool:
    """Whether the file is a supplementary debug file (``dwz -m``'s common file: only partial
    units, or a .debug_sup section whose is_supplementary flag is set). The files that point at
    it (.gnu_debugaltlink, .debug_sup) name its DIEs and strings by offset
    (DW_FORM_GNU_ref_alt, DW_FORM_GNU_strp_alt), and its build id stays: rewritten, it would
    break every one of them (gdb: "Dwarf Error: Cannot find DIE")."""
    sup = sections.get(".debug_sup")
    if sup is not None and len(sup) > 2 and sup[2] == 1:
        return True
    return bool(units) and all(_partial(sections, hdr) for hdr in units)


def _partial(sections: dict[str, bytes], hdr: UnitHeader) -> bool:
    """Whether the unit's first DIE is a DW_TAG_partial_unit (see _holds_partial_units)."""
    info, abbrev = sections[".debug_info"], sections.get(".debug_abbrev", b"")
    if hdr.version >= 5 and hdr.unit_type != DW_UT_partial:
        return False
    if not hdr.die_off < hdr.end <= len(info) or not 0 <= hdr.abbrev_off < len(abbrev):
        return False
    try:
        entry = unit_die_entry(info, abbrev, hdr)[0]
    except (IndexError, DwarfError):
        return False
    return entry is not None and entry.tag == DW_TAG_partial_unit


def _expansion_keys(sections: dict[str, bytes], units: list, analyses: list[UnitAnalysis]
                    ) -> tuple[list[tuple], list[list[int]]]:
    """Where gdb expands each unit: as it reads the input's .gdb_index, or without one (or with
    one the rebuild will drop) in its own name order, ``UnitAnalysis.gdb_key``; and, in the
    second case only, the units' places when gdb indexes on the threads of THREAD_MODELS (with
    an index it walks the index whatever its threads)."""
    lazy = [a.gdb_key for a in analyses]
    if ".gdb_index" in sections:
        from linkplugin.index import gdb_index  # only for a file with the index

        main = [k for k, key in enumerate(lazy) if key[0] == MAIN]
        try:
            return gdb_index.expansion_keys(sections[".gdb_index"], units, main), []
        except (CannotRebuild, struct.error):
            pass  # rebuild_indexes drops the index and says why
    sizes = [u.end - u.off for u in units]
    return lazy, [thread_ranks(lazy, sizes, threads) for threads in THREAD_MODELS]


def _tag_table(outputs: list[UnitOutput]) -> dict[int, tuple[int, int]]:
    """{DW_TAG: (DIEs before, DIEs after)} over every unit, by tag."""
    # (a draft's rows come end to end in an array('q'), the other paths' as tuples)
    rows_of = [o.tags if isinstance(o.tags, array) else array("q", [v for row in o.tags for v in row])
               for o in outputs]
    if fastrewrite.available():
        table = fastrewrite.tag_sums(rows_of)
    else:
        table = {}
        for flat in rows_of:
            for k in range(0, len(flat), 3):
                got = table.setdefault(flat[k], [0, 0])
                got[0] += flat[k + 1]
                got[1] += flat[k + 2]
    return {tag: (b, a) for tag, (b, a) in sorted(table.items())}


__all__ = ["MergeResult", "merge_sections"]
