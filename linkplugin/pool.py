"""One lazily created set of worker processes per process, shared by every job.

SCons runs actions in threads under ``-j``; every action calling ``run_tasks``
draws on the same workers, so their number stays bounded by the largest
``jobs`` asked for. Inside a threaded host (SCons) workers are started with
``forkserver`` (``spawn`` where that is missing), never ``fork``: forking a
threaded SCons deadlocks. The forkserver preloads the module of the first job's
task function (the compressor, or the type merger), not ``__main__`` (under
SCons that is the scons script). A command that owns its process
(``allow_fork``) forks its workers before it starts any thread: they start in
milliseconds, with every module the command already imported.

Each worker talks to the parent over a pipe of its own, and the parent keeps
no copy of the worker's end: if a worker dies, the parent reads end-of-file
and reports it. (concurrent.futures shares one result pipe between all
workers; a worker killed in the middle of sending a result leaves the reader
waiting forever for the rest of the message.)
"""
from __future__ import annotations

import os
import _signal as signal  # (why: interrupt.py)
import threading
import time
from _queue import Empty, SimpleQueue  # (queue itself adds heapq and its Queue: 0.4 ms of every start)
from collections.abc import Sized
from contextlib import contextmanager

from linkplugin import interrupt, progress
from linkplugin.errors import LinkpluginError

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any, Callable, Iterable, Iterator

    import multiprocessing.connection
    import multiprocessing.context

_lock = threading.Lock()
_idle: SimpleQueue[_Worker] = SimpleQueue()
_started = 0  # live workers, idle or busy
_limit = 0  # the most ever asked for
_fork_allowed = False  # see allow_fork
_POLL_SECONDS = 0.1  # how often a caller waiting for its workers looks for an interrupt
_ABANDON_SECONDS = 2.0  # how long a failed or interrupted call waits for its driver threads


class WorkerDied(LinkpluginError):
    pass


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def allow_fork() -> None:
    """Let workers be forked while this process runs a single thread.

    Only a command that owns its process (the ``linkplugin`` command) calls
    this; a library call inside a host such as SCons never forks.
    """
    global _fork_allowed
    _fork_allowed = True


def _forking() -> bool:
    return (_fork_allowed and threading.active_count() == 1
            and threading.current_thread() is threading.main_thread())


def _context(preload: str) -> multiprocessing.context.BaseContext:
    # Imported here: a -j1 run does not pay for loading multiprocessing.
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if _forking() and "fork" in methods:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # Only the first job's module counts (the forkserver starts once): a
        # compression job then does not wait for the DWARF engine.
        ctx.set_forkserver_preload([preload])
        return ctx
    return multiprocessing.get_context("spawn")


def serve(conn: multiprocessing.connection.Connection) -> None:
    """A worker's loop: run (function, arguments) until the parent goes away.

    A worker ignores SIGINT: Ctrl-C reaches the whole process group, and only the owner of the
    pool decides what it means (``linkplugin.interrupt``). SIGTERM and SIGHUP take their
    default action, whatever handler a forked worker inherited from the command, so the owner
    (and multiprocessing at exit) can always end a worker, silently.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stop in (signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
        signal.signal(stop, signal.SIG_DFL)
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
    def __init__(self, preload: str) -> None:
        ctx = _context(preload)
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=serve, args=(child,), daemon=True, name="linkplugin-worker")
        if ctx.get_start_method() != "fork":
            # multiprocessing starts its resource tracker on the way and unblocks SIGINT in
            # this thread when that returns: have it started first, then block for our own
            # children. (A forked worker needs no tracker.)
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        try:
            with _sigint_blocked():
                self.process.start()
        except (EOFError, OSError) as exc:
            # The forkserver died (killed, as a worker may be): starting a worker through it
            # fails with EOF or a refused connection. The next job's start makes a new one.
            child.close()
            self.conn.close()
            raise WorkerDied(f"a worker process died before it started ({type(exc).__name__}); "
                             "try again with -j1") from None
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


def _reserve(jobs: int) -> bool:
    """Count one more worker if fewer than ``jobs`` (or the most asked) run."""
    global _started, _limit
    with _lock:
        _limit = max(_limit, jobs)
        start = _started < _limit
        if start:
            _started += 1
    return start


def _start(preload: str) -> _Worker:
    global _started
    try:
        return _Worker(preload)
    except BaseException:
        with _lock:
            _started -= 1
        raise


def _acquire(jobs: int, preload: str, give_up: Callable[[], bool]) -> _Worker | None:
    """An idle worker, a new one while fewer than ``jobs`` run, or the next one freed; None
    once ``give_up()`` says the caller no longer needs one.

    The wait is in short steps: the worker another job holds may die instead of coming back
    (killed, or stopped by the same signal as its owner), and then its place is free for a new
    one; a wait without end here would hang that job, and SCons with it."""
    while not give_up():
        try:
            return _idle.get_nowait()
        except Empty:
            pass
        if _reserve(jobs):
            return _start(preload)
        try:
            return _idle.get(timeout=_POLL_SECONDS)
        except Empty:
            pass
    return None


def warm_up(fn: Callable[..., Any], jobs: int) -> None:
    """Start the ``jobs - 1`` workers of a coming ``run_tasks(fn, ..., jobs)`` now.

    Only where they can be forked (see ``allow_fork``): then they cost
    milliseconds and all take their first task with the calling thread.
    Elsewhere the job starts them in threads beside its own work.
    """
    if not _forking():
        return
    while _reserve(jobs - 1):
        _idle.put(_start(fn.__module__))


def _dead(worker: _Worker) -> None:
    global _started
    worker.conn.close()
    with _lock:
        _started -= 1


def run_threads(fn: Callable[..., Any], tasks: Iterable[tuple], jobs: int) -> list[Any]:
    """``[fn(*t) for t in tasks]``, in order, on ``jobs`` threads of this process.

    For tasks whose bulk runs in compiled code that releases the GIL: no worker start-up, no
    copy of the inputs or results between processes, one interpreter's memory. Tasks are taken
    in order from one shared iterator and each result is stored at its task's index, so the
    thread that ran a task never changes the results. The first failure (or an interrupt, polled
    at every task boundary) stops the others from taking new tasks and is raised here.
    """
    tick = progress.counter(len(tasks) if isinstance(tasks, Sized) else 0)
    if jobs <= 1 or (isinstance(tasks, Sized) and len(tasks) <= 1):
        return run_tasks(fn, tasks, 1)
    results: dict[int, Any] = {}
    source = enumerate(tasks)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def drive() -> None:
        while True:
            with lock:
                if failures:
                    return
                try:
                    interrupt.check()
                    got = next(source, None)
                except BaseException as e:  # an interrupt or the task producer's error: ends the call
                    failures.append(e)
                    return
            if got is None:
                return
            i, t = got
            try:
                results[i] = tick(fn(*t))
            except BaseException as e:  # re-raised by the caller below
                with lock:
                    failures.append(e)
                return

    threads = [threading.Thread(target=drive, name=f"linkplugin-{k}", daemon=True) for k in range(jobs - 1)]
    for th in threads:
        th.start()
    try:
        drive()  # the calling thread is one of the jobs
        for th in threads:
            while th.is_alive():
                th.join(_POLL_SECONDS)
                if interrupt.stopped():
                    with lock:
                        failures.append(interrupt.Interrupted())
    except BaseException as e:  # KeyboardInterrupt while joining: the other threads stop at their next task
        with lock:
            failures.append(e)
        raise
    if failures:
        raise failures[0]
    return [results[i] for i in range(len(results))]


def run_tasks(fn: Callable[..., Any], tasks: Iterable[tuple], jobs: int) -> list[Any]:
    """``[fn(*t) for t in tasks]``, in order, on ``jobs`` processes.

    The calling thread is one of the ``jobs``: it starts on the tasks at once
    while ``jobs - 1`` workers join as soon as they are up, so a short job
    does not wait for worker start-up. Tasks are taken in order from one
    shared iterator and each result is stored at its task's index: which
    process ran a task never changes the results. ``tasks`` may be a lazy
    iterator: a task is made (under a lock, by the thread about to run it)
    only when a process is free, so a producer such as a decompressing stream
    stays at most ``jobs`` tasks ahead of the work.

    ``fn`` must be a top-level function of a module a spawned child can import
    (anything under ``linkplugin``).

    Every task boundary polls ``interrupt.check``, and so does the caller while it waits for
    the workers' last tasks. When the caller's own task fails or it is
    interrupted (KeyboardInterrupt, ``Terminated``, ``Interrupted``), the workers still busy
    with this call are killed rather than waited for: their results are no longer wanted.
    """
    # The progress line counts tasks done of the total, when the total is known up front.
    tick = progress.counter(len(tasks) if isinstance(tasks, Sized) else 0)
    if jobs <= 1 or (isinstance(tasks, Sized) and len(tasks) <= 1):
        results_here = []
        for t in tasks:
            interrupt.check()
            results_here.append(tick(fn(*t)))
        return results_here
    results: dict[int, Any] = {}
    source = enumerate(tasks)
    source_lock = threading.Lock()
    failures: list[BaseException] = []
    busy: set[_Worker] = set()

    def take() -> tuple[int, tuple] | None:
        interrupt.check()
        with source_lock:
            return None if failures else next(source, None)

    def drive_worker() -> None:
        # Runs tasks on one worker at a time, holding it only while there is work.
        try:
            while True:
                worker = _acquire(jobs - 1, fn.__module__, lambda: bool(failures) or interrupt.stopped())
                if worker is None:
                    return
                try:
                    item = take()
                except BaseException:
                    _idle.put(worker)
                    raise
                if item is None:
                    _idle.put(worker)
                    return
                busy.add(worker)
                try:
                    results[item[0]] = tick(worker.call(fn, item[1]))
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
        while (item := take()) is not None:
            results[item[0]] = tick(fn(*item[1]))
        for t in drivers:
            while t.is_alive():  # a worker's task may be long: keep noticing interrupts meanwhile
                t.join(_POLL_SECONDS)
                interrupt.check()
    except BaseException as exc:
        failures.insert(0, exc)  # the caller's own reason comes first
        for worker in list(busy):
            worker.kill()
        # Quick: their workers are gone or finish no further task. Bounded all the same: a
        # driver still waiting for a place in the pool is a daemon thread that gives up on
        # its own, and the caller must not wait for it (under SCons, nothing would end it).
        deadline = time.monotonic() + _ABANDON_SECONDS
        for t in drivers:
            t.join(max(0.0, deadline - time.monotonic()))
    if failures:
        raise failures[0]
    return [results[i] for i in range(len(results))]
