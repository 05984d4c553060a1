"""Per-job state of the worker tasks: the section bytes, sent once per job instead of once per
task, and a cache of decoded units that the rewrite phase takes over from the hash phase.

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
import tempfile
import uuid
from contextlib import contextmanager
from typing import Iterator, NamedTuple

from linkplugin.dwarf.read import UnitDies, compiled_decoder


class SharedSections(NamedTuple):
    key: str                               # unique per job: the worker cache's key
    path: str                              # the file holding every section back to back ('': none)
    layout: tuple[tuple[str, int, int], ...]  # (section name, offset, size)


class _JobState(NamedTuple):
    sections: dict[str, bytes]
    units: dict[int, UnitDies]  # decoded units by index, left by the hash phase for the rewrite phase


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
    handle = SharedSections(uuid.uuid4().hex, "", ())
    try:
        _cache[handle.key] = _JobState(secs, {})
        if workers:
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
        got = _cache[src.key] = _JobState(secs, {})
    return got


def worker_sections(src: SharedSections) -> dict[str, bytes]:
    """The section bytes behind ``src``."""
    return _state(src).sections


class _NoCache(dict):
    """A unit cache that keeps nothing: with the compiled scanner, decoding a unit again costs
    less than keeping every DIE of the chunk in Python lists between the phases (the largest
    share of the peak memory)."""

    def __setitem__(self, key: int, value: UnitDies) -> None:
        pass


def unit_cache(src: SharedSections) -> dict[int, UnitDies]:
    """This process's decoded units of the job, by unit index: what the hash phase decoded, the
    rewrite phase takes (``pop``) instead of decoding again, when the same process runs both
    (always with one job) and the decoder is pure Python. A miss only costs a decode: the output
    never depends on it."""
    return _NO_CACHE if compiled_decoder() else _state(src).units


_NO_CACHE = _NoCache()
