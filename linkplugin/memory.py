"""Peak memory of this process and of the worker processes under it, for ``--stats``."""
from __future__ import annotations

import os
import resource
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Callable


def _hwm(pid: int | str) -> int | None:
    """Peak resident bytes (VmHWM) of a live process, None if unknown."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return sorted(out)


def peak_memory() -> tuple[int, list[int]]:
    """(peak bytes of this process, peak bytes of each live process below it: the pool's
    forkserver and workers)."""
    own = _hwm("self")
    if own is None:  # not Linux: ru_maxrss is in KiB there too, except on macOS (bytes)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return own, [h for h in (_hwm(p) for p in _descendants(os.getpid())) if h is not None]


_trim: Callable[[int], int] | None | bool = False  # glibc's malloc_trim, None without it; False: not looked up


def release_freed_memory() -> None:
    """Give the memory this process has freed back to the system, where the C library allows it
    (glibc's ``malloc_trim``; elsewhere nothing happens). glibc keeps freed blocks for reuse: the
    many mid-sized buffers of a phase (one per unit, allocated on worker threads in arenas of
    their own) stay resident after they are freed, and the next phase's memory comes on top."""
    global _trim
    if _trim is False:
        _trim = _glibc("malloc_trim")
    if _trim is not None:
        _trim(0)


def _glibc(name: str) -> Callable[..., int] | None:
    """A function of the process's C library on Linux, None elsewhere or where that library
    has none (musl has neither malloc_trim nor glibc's mallopt parameters): from the compiled
    ``_libc`` when it was built (no ctypes to import), else through ctypes."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        from linkplugin import _libc
    except ImportError:
        pass
    else:
        return getattr(_libc, name) if _libc.GLIBC else None
    import ctypes

    return getattr(ctypes.CDLL(None), name, None)


_MMAP_THRESHOLD = 512 << 10
_mapped_large = False


def own_heap() -> None:
    """Let ``map_large_blocks`` change this process's allocator. Only a command that owns its
    process (the ``linkplugin`` command) calls this: a library call inside a host such as SCons
    leaves the host's allocator as it is for the rest of its life."""
    global _heap_ours
    _heap_ours = True


_heap_ours = False  # see own_heap


def map_large_blocks() -> None:
    """Have glibc give blocks of 512 KiB and more mappings of their own, returned to the system
    as soon as they are freed (once per process, and only in a process the command owns, see
    ``own_heap``; nothing elsewhere, nor when the user set MALLOC_MMAP_THRESHOLD_ or a
    glibc.malloc tunable).

    The per-unit kernels on threads allocate and free blocks of up to a few MiB per unit. By
    default glibc raises its mapping threshold to the largest block freed so far, so these come
    from each thread's heap, where what is freed stays resident between the live results of
    other units: python3.11d's merge held up to 8 MiB more at its peak. Trimming the heaps after
    every chunk (malloc_trim) also gets it back, but walks every free block of every heap each
    time, and the pages it gives back fault in again. The setting is the process's from then on
    (glibc has no way back to its adaptive threshold)."""
    global _mapped_large
    if _mapped_large or not _heap_ours:
        return
    _mapped_large = True
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(-3, _MMAP_THRESHOLD)  # M_MMAP_THRESHOLD


def describe_peak() -> str:
    own, workers = peak_memory()
    mib = 1 << 20
    if not workers:
        return f"peak memory: {own / mib:.0f} MiB (one process)"
    return (f"peak memory: parent {own / mib:.0f} MiB, {len(workers)} pool processes "
            f"{' + '.join(f'{w / mib:.0f}' for w in workers)} MiB, sum {(own + sum(workers)) / mib:.0f} MiB")
