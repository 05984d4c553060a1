"""Per-job state of the worker tasks: the section bytes, sent once per job instead of once per
task, and what a later pass takes over from an earlier one (the units' location-list operands
from the hash phase; the pure decoder's decoded units, from one pass for the next).

Pickling every section (15 MB and more) into each chunk task of each parallel phase cost more
than some phases themselves. ``shared_sections`` writes them once into one temporary file (in
``/dev/shm`` where there is one, so it stays in memory); a task carries only a small
``SharedSections`` handle, and ``worker_sections`` reads the file once per process and job. The
calling process registers the original dict under the same key, so its own tasks never read the
file (with one job there is no file at all). A temporary file rather than
``multiprocessing.shared_memory``: on Python < 3.13 every process that attaches a segment also
registers it with a resource tracker, which then warns about (or unlinks) segments it does not own.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from linkplugin.dwarf.read import UnitDies, compiled_decoder
from linkplugin.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Iterator


class SharedSections(NamedTuple):
    key: str                               # unique per job: the worker cache's key
    path: str                              # the file holding every section back to back ('': none)
    layout: tuple[tuple[str, int, int], ...]  # (section name, offset, size)


class _JobState:
    """What the tasks of one job share in one process."""

    __slots__ = ("sections", "units", "locations", "drafts")

    def __init__(self, sections: dict[str, bytes]) -> None:
        self.sections = sections
        # Decoded units by index, left by one pass for the next (see keep_unit)
        self.units: dict[int, UnitDies] = {}
        # each unit's location-list operands, for the rewrite phase (``keep_locations``)
        self.locations: dict[int, tuple] = {}
        # The first rewrite pass's copies of units, for the second (see keep_draft)
        self.drafts: dict[int, object] = {}


# State of the current jobs by key: in the calling process the caller's own dict, in a worker the
# copy it read. A worker keeps only its latest job's state (the next job's first task drops it;
# jobs of concurrent SCons actions sharing the pool just read their file again).
_cache: dict[str, _JobState] = {}


def _shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@contextmanager
def shared_sections(secs: dict[str, bytes], workers: bool) -> Iterator[SharedSections]:
    """A handle to ``secs`` for the tasks of one job; with ``workers``, other processes can read
    them too. The state and the file are dropped when the block exits."""
    handle = SharedSections(os.urandom(16).hex(), "", ())  # as uuid4, without loading uuid (libuuid)
    try:
        _cache[handle.key] = _JobState(secs)
        if workers:
            import tempfile  # only worker processes need the file: threads share ``secs``

            fd, path = tempfile.mkstemp(prefix="linkplugin-merge-", dir=_shm_dir())
            handle = handle._replace(path=path)
            layout = []
            with os.fdopen(fd, "wb") as f:
                pos = 0
                for name, data in secs.items():
                    f.write(data)
                    layout.append((name, pos, len(data)))
                    pos += len(data)
            handle = handle._replace(layout=tuple(layout))
        yield handle
    finally:
        _cache.pop(handle.key, None)
        if handle.path:
            os.unlink(handle.path)


def _state(src: SharedSections) -> _JobState:
    got = _cache.get(src.key)
    if got is None:
        secs: dict[str, bytes] = {}
        with open(src.path, "rb") as f:
            for name, off, size in src.layout:
                f.seek(off)
                secs[name] = f.read(size)
        for key in [k for k in _cache if k != src.key]:
            del _cache[key]  # an earlier job's copy in a worker: not needed any more
        got = _cache[src.key] = _JobState(secs)
    return got


def worker_sections(src: SharedSections) -> dict[str, bytes]:
    """The section bytes behind ``src``."""
    return _state(src).sections


# Inputs with at most KEEP_INFO_BYTES of .debug_info keep every unit's location-list operands
# from the hash phase for the rewrite phase (and the scanner's tables, dwarf/read.py): a few
# hundred KiB that save python3.11d's merge 4-8% of its time; with them the rewrite's first
# pass scans, plans and copies a batch of units in one compiled call, and keeps the copies for
# the second (``drafts_kept``), where the decoding path decodes every unit twice, one call each.
# Up to 64 MiB: inputs of 16-64 MiB gain 3-17% of their time for 3-4 MiB (libipopt, cupt, Qt's
# plume-creator), and one of many small units 43% (PETSc's debug file as Debian ships it, 7,609
# units, most of them dwz's partial units: 2.9 s -> 1.7 s, 136 -> 185 MiB; BENCHMARKS.md,
# session 28). Larger inputs read them again (their memory would grow with the input; their
# time is in kernels that run in parallel).
# The compiled decoder's units are decoded again by each pass rather than kept: keeping them
# (narrowed to int32, within a 12 MiB budget) saved no time at -j2 on libstdc++ or python3.11d
# and held 6-9 MiB more at the peak (BENCHMARKS.md, session 6).
KEEP_INFO_BYTES = 64 << 20
KEEP_ABBREV_BYTES = 2 << 20  # and at most this much .debug_abbrev for the scanner's tables


def _keeps(state: _JobState) -> bool:
    return len(state.sections.get(".debug_info", b"")) <= KEEP_INFO_BYTES


def keep_unit(src: SharedSections, u: int, ud: UnitDies) -> None:
    """Keep unit ``u`` decoded for a later pass of the job in this process: only a unit of the
    pure decoder, which costs more to decode again than to keep (the compiled decoder's units are
    decoded again). The output never depends on it."""
    if not compiled_decoder():
        _state(src).units[u] = ud


def kept_unit(src: SharedSections, u: int, keep: bool) -> UnitDies | None:
    """Unit ``u`` as ``keep_unit`` left it (taken out unless ``keep``), or None."""
    state = _state(src)
    return state.units.get(u) if keep else state.units.pop(u, None)


def keeps_locations(src: SharedSections) -> bool:
    """Whether the hash phase keeps each unit's location-list operands for the rewrite phase
    (``keep_locations``): for inputs of at most KEEP_INFO_BYTES."""
    return _keeps(_state(src))


def keep_locations(src: SharedSections, u: int, targets: tuple) -> None:
    """Unit ``u``'s location-list operands as ``locations.targets`` makes them of
    hash.location_operands (compact rows, not a tuple per operand), for the rewrite phase in
    this process."""
    _state(src).locations[u] = targets


def kept_locations(src: SharedSections, u: int) -> tuple | None:
    """What ``keep_locations`` left for unit ``u`` (None: read them again)."""
    return _state(src).locations.get(u)


def drafts_kept(src: SharedSections) -> bool:
    """Whether the first rewrite pass keeps its copies of units for the second (``keep_draft``):
    where every task of both passes runs in the calling process (threads, or one job: no
    worker has the sections' file), for inputs of at most KEEP_INFO_BYTES (the copies take
    about the output's size until the second pass). With worker processes a unit's two passes
    may run in different processes, and a copy left in one would only wait for the job's end."""
    state = _state(src)
    return not src.path and _keeps(state)


def keep_draft(src: SharedSections, u: int, draft: object) -> None:
    """A copy of unit ``u`` from the first rewrite pass (``rewrite.Draft``), for the second."""
    _state(src).drafts[u] = draft


def kept_draft(src: SharedSections, u: int) -> object | None:
    """What ``keep_draft`` left for unit ``u``, taken out (None: none)."""
    return _state(src).drafts.pop(u, None)
