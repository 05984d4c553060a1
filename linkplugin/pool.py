"""One lazily created set of worker processes per process, shared by every job.

SCons runs actions in threads under ``-j``; every action calling ``run_tasks``
draws on the same workers, so their number stays bounded by the largest
``jobs`` asked for. Workers are started with ``forkserver`` (``spawn`` where
that is missing), never ``fork``: forking a threaded SCons deadlocks. The
forkserver preloads our worker modules, not ``__main__`` (under SCons that is
the scons script).

Each worker talks to the parent over a pipe of its own, and the parent keeps
no copy of the worker's end: if a worker dies, the parent reads end-of-file
and reports it. (concurrent.futures shares one result pipe between all
workers; a worker killed in the middle of sending a result leaves the reader
waiting forever for the rest of the message.)
"""
from __future__ import annotations

import itertools
import os
import queue
import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from linkplugin import interrupt, progress
from linkplugin.errors import LinkpluginError

if TYPE_CHECKING:
    import multiprocessing.connection
    import multiprocessing.context

# Modules the forkserver imports once, so each worker starts warm.
_PRELOAD = ["linkplugin.compress.shards", "linkplugin.merge.hash", "linkplugin.merge.rewrite"]

_lock = threading.Lock()
_idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
_started = 0  # live workers, idle or busy
_limit = 0  # the most ever asked for
_POLL_SECONDS = 0.1  # how often a caller waiting for its workers looks for an interrupt


class WorkerDied(LinkpluginError):
    pass


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _context() -> multiprocessing.context.BaseContext:
    # Imported here: a -j1 run does not pay for loading multiprocessing.
    import multiprocessing

    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def serve(conn: multiprocessing.connection.Connection) -> None:
    """A worker's loop: run (function, arguments) until the parent goes away.

    A worker ignores SIGINT: Ctrl-C reaches the whole process group, and only the owner of the
    pool decides what it means (``linkplugin.interrupt``). SIGTERM keeps its default, so the
    owner (and multiprocessing at exit) can always end a worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, fn(*args))
        except Exception as exc:  # handed back to the caller, which re-raises it
            reply = (False, exc)
        conn.send(reply)


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while it starts a process: the mask is inherited through
    fork and exec, so the forkserver (while it still imports, before it can ignore SIGINT
    itself) and the workers it forks never see a Ctrl-C meant for their owner."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Worker:
    def __init__(self) -> None:
        ctx = _context()
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=serve, args=(child,), daemon=True, name="linkplugin-worker")
        # multiprocessing starts its resource tracker on the way and unblocks SIGINT in this
        # thread when that returns: have it started first, then block for our own children.
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        with _sigint_blocked():
            self.process.start()
        child.close()  # only the worker holds its end now: its death is EOF here

    def kill(self) -> None:
        """End the worker now (its task's result is no longer wanted); ``call`` then fails."""
        self.process.kill()

    def call(self, fn: Callable[..., Any], args: tuple) -> Any:
        try:
            self.conn.send((fn, args))
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1)
            code = self.process.exitcode
            raise WorkerDied(f"a worker process died (exit status {code}); try again with -j1") from None
        if not ok:
            raise value
        return value


def _acquire(jobs: int) -> _Worker:
    """An idle worker, a new one while fewer than ``jobs`` run, or the next one freed."""
    global _started, _limit
    try:
        return _idle.get_nowait()
    except queue.Empty:
        pass
    with _lock:
        _limit = max(_limit, jobs)
        start = _started < _limit
        if start:
            _started += 1
    if not start:
        return _idle.get()
    try:
        return _Worker()
    except BaseException:
        with _lock:
            _started -= 1
        raise


def _dead(worker: _Worker) -> None:
    global _started
    worker.conn.close()
    with _lock:
        _started -= 1


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple], jobs: int) -> list[Any]:
    """``[fn(*t) for t in tasks]``, in order, on ``jobs`` processes.

    The calling thread is one of the ``jobs``: it starts on the tasks at once
    while ``jobs - 1`` workers join as soon as they are up, so a short job
    does not wait for worker start-up. Tasks are taken in order from one
    shared counter and each result is stored at its task's index: which
    process ran a task never changes the results.

    ``fn`` must be a top-level function of a module a spawned child can import
    (anything under ``linkplugin``).

    Every task boundary polls ``interrupt.check``, and so does the caller while it waits for
    the workers' last tasks. When the caller's own task fails or it is
    interrupted (KeyboardInterrupt, ``Terminated``, ``Interrupted``), the workers still busy
    with this call are killed rather than waited for: their results are no longer wanted.
    """
    tick = progress.counter(len(tasks))  # counts tasks done for the command line's progress line
    if jobs <= 1 or len(tasks) <= 1:
        results_here = []
        for t in tasks:
            interrupt.check()
            results_here.append(tick(fn(*t)))
        return results_here
    results: list[Any] = [None] * len(tasks)
    counter = itertools.count()
    failures: list[BaseException] = []
    busy: set[_Worker] = set()

    def take() -> int | None:
        interrupt.check()
        i = next(counter)  # atomic under the GIL
        return i if i < len(tasks) and not failures else None

    def drive_worker() -> None:
        # Runs tasks on one worker at a time, holding it only while there is work.
        try:
            while True:
                worker = _acquire(jobs - 1)
                try:
                    i = take()
                except BaseException:
                    _idle.put(worker)
                    raise
                if i is None:
                    _idle.put(worker)
                    return
                busy.add(worker)
                try:
                    results[i] = tick(worker.call(fn, tasks[i]))
                except WorkerDied:
                    _dead(worker)
                    interrupt.check()  # killed by the signal that stops its owner too (kill -TERM -PGID)
                    raise
                except BaseException:
                    _idle.put(worker)
                    raise
                finally:
                    busy.discard(worker)
                _idle.put(worker)
        except BaseException as exc:  # handed to the caller below
            failures.append(exc)

    drivers = [threading.Thread(target=drive_worker, daemon=True) for _ in range(jobs - 1)]
    for t in drivers:
        t.start()
    try:
        while (i := take()) is not None:
            results[i] = tick(fn(*tasks[i]))
        for t in drivers:
            while t.is_alive():  # a worker's task may be long: keep noticing interrupts meanwhile
                t.join(_POLL_SECONDS)
                interrupt.check()
    except BaseException as exc:
        failures.insert(0, exc)  # the caller's own reason comes first
        for worker in list(busy):
            worker.kill()
        for t in drivers:
            t.join()  # quick: their workers are gone or finish no further task
    if failures:
        raise failures[0]
    return results
