"""One lazily created process pool per process, shared by every job.

SCons runs actions in threads under ``-j``; each action calling ``run_tasks``
shares this pool, so the total number of worker processes stays bounded by the
largest ``jobs`` asked for. Workers are started with ``forkserver`` (``spawn``
where that is missing), never ``fork``: forking a threaded SCons deadlocks.
The forkserver preloads only our worker modules, not ``__main__`` (which under
SCons is the scons script itself).
"""
from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import os
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Sequence

from linkplugin.errors import LinkpluginError

_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_size = 0

# Modules the forkserver imports once, so each worker starts warm.
_PRELOAD = ["concurrent.futures.process", "linkplugin.compress.shards"]


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def get_pool(jobs: int) -> concurrent.futures.ProcessPoolExecutor:
    """The shared pool, grown (never shrunk) to at least ``jobs`` workers."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < jobs:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=False)
            _pool = concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=_context())
            _pool_size = jobs
        return _pool


def _discard_pool() -> None:
    global _pool, _pool_size
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
        _pool, _pool_size = None, 0


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple], jobs: int) -> list[Any]:
    """``[fn(*t) for t in tasks]``, in order, on ``jobs`` processes.

    The calling thread is one of the ``jobs``: it starts on the tasks at once
    while ``jobs - 1`` pool workers join as soon as they are up, so a short job
    does not wait for worker start-up. Tasks are taken in order from one
    shared counter and each result is stored at its task's index: which
    process ran a task never changes the results.

    ``fn`` must be a top-level function of a module a spawned child can import
    (anything under ``linkplugin``).
    """
    if jobs <= 1 or len(tasks) <= 1:
        return [fn(*t) for t in tasks]
    pool = get_pool(jobs - 1)
    results: list[Any] = [None] * len(tasks)
    counter = itertools.count()
    failures: list[BaseException] = []

    def take() -> int | None:
        i = next(counter)  # atomic under the GIL
        return i if i < len(tasks) and not failures else None

    def drive_worker() -> None:
        # Keeps one task in flight on one pool worker.
        try:
            while (i := take()) is not None:
                results[i] = pool.submit(fn, *tasks[i]).result()
        except BaseException as exc:  # handed to the caller below
            failures.append(exc)

    drivers = [threading.Thread(target=drive_worker, daemon=True) for _ in range(jobs - 1)]
    for t in drivers:
        t.start()
    try:
        while (i := take()) is not None:
            results[i] = fn(*tasks[i])
    except BaseException as exc:
        failures.append(exc)
    for t in drivers:
        t.join()
    if failures:
        exc = failures[0]
        if isinstance(exc, BrokenProcessPool):
            _discard_pool()
            raise LinkpluginError(f"a worker process died ({exc}); try again with -j1") from None
        raise exc
    return results
