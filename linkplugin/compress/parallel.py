"""The threads of a compression job: decompress input sections and compress shards.

zlib and libzstd release the GIL while they work, so threads compress in
parallel as processes would, without their costs: nothing to start (a thread
is up in microseconds, a process in tens of milliseconds, the whole run on a
16 MB input in half a second), nothing to import in a worker, no shard copied
through a pipe, and nothing forked inside SCons's threads. The Python left
around each call (a slice, a dict entry) is small against the call itself.

A job has plain shards (their bytes known up front) and streams (compressed
input sections, each decoded by one thread at a time into shards). A thread
takes, in this order: a decoded shard while half the backlog or more waits
(they hold memory, and draining them keeps the decoding threads decoding), a
stream nobody decodes yet (largest first: the longest serial work starts
first), any decoded shard, a plain shard. A thread decoding a stream
compresses waiting shards itself while the backlog is full, so memory stays
bounded by the backlog whatever the other threads do. Results are stored by
their task's key: which thread ran a task never changes the bytes.

Every thread counts against one limit shared by all jobs of the process (SCons
runs several at once): helpers in all jobs together stay under the largest
``jobs`` asked for; the calling thread always works too.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator

from linkplugin import interrupt, progress

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any, Callable, Hashable, Protocol

    class Task(Protocol):
        key: Hashable


_BACKLOG = 2  # decoded shards waiting per thread, at most
_POLL_SECONDS = 0.1  # how often a waiting thread looks for an interrupt
_ABANDON_SECONDS = 2.0  # how long a failed job waits for its helpers' current shards

_lock = threading.Lock()
_helpers = 0  # helper threads running, all jobs together
_limit = 0  # the most jobs ever asked for, less the calling thread


def run(plain: list[Task], streams: list[Iterator[Task]], kernel: Callable[[], Callable[[Task], Any]],
        jobs: int, total: int) -> dict[Hashable, Any]:
    """``{task.key: compress(task)}`` for every plain task and every task the
    streams yield, on ``jobs`` threads (the caller's included). ``kernel()``
    makes one thread's compress function (a codec context of its own).
    ``total`` is how many tasks there will be, for the progress line."""
    return _Job(plain, streams, kernel, jobs, total).run()


class _Job:
    def __init__(self, plain: list[Task], streams: list[Iterator[Task]],
                 kernel: Callable[[], Callable[[Task], Any]], jobs: int, total: int) -> None:
        self.plain = deque(plain)
        self.streams = deque(streams)
        self.decoded: deque[Task] = deque()
        self.decoding = 0  # streams being decoded now
        self.backlog = _BACKLOG * jobs
        self.kernel = kernel
        self.jobs = jobs
        self.total = total
        self.results: dict[Hashable, Any] = {}
        self.failure: BaseException | None = None
        self.cond = threading.Condition()
        self.tick = progress.counter(total)

    def run(self) -> dict[Hashable, Any]:
        helpers = []
        reserved = _reserve(self.jobs - 1, self.total - 1)
        for started in range(reserved):
            t = threading.Thread(target=self._helper, daemon=True, name="linkplugin-compress")
            try:
                t.start()
            except RuntimeError:  # no more threads to be had: those running do the work
                _release(reserved - started)
                break
            helpers.append(t)
        try:
            self._work()
            for t in helpers:
                while t.is_alive():  # a helper's shard may be long: keep noticing interrupts meanwhile
                    t.join(_POLL_SECONDS)
                    interrupt.check()
        except BaseException as exc:
            self._fail(exc, first=True)
            # Quick: a helper finishes the shard it has and takes no other.
            # Bounded all the same (daemons: they end with the process).
            deadline = time.monotonic() + _ABANDON_SECONDS
            for t in helpers:
                t.join(max(0.0, deadline - time.monotonic()))
            raise
        if self.failure is not None:
            raise self.failure
        return self.results

    def _fail(self, exc: BaseException, first: bool = False) -> None:
        with self.cond:
            if first or self.failure is None:  # the caller's own reason comes first
                self.failure = exc
            self.cond.notify_all()

    def _helper(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # handed to the calling thread, which raises it
            self._fail(exc)
        finally:
            _release(1)

    def _work(self) -> None:
        compress = self.kernel()
        while (item := self._next()) is not None:
            if isinstance(item, Iterator):
                self._decode(item, compress)
            else:
                self.results[item.key] = self.tick(compress(item))

    def _next(self) -> Task | Iterator[Task] | None:
        interrupt.check()
        with self.cond:
            while self.failure is None:
                # Half the backlog waiting: drain it before starting another stream, so that the
                # threads decoding never stop to compress (the largest stream's decoding is the
                # longest serial work of the job).
                if len(self.decoded) >= max(1, self.backlog // 2):
                    return self.decoded.popleft()
                if self.streams:
                    self.decoding += 1
                    return self.streams.popleft()
                if self.decoded:
                    return self.decoded.popleft()
                if self.plain:
                    return self.plain.popleft()
                if not self.decoding:
                    return None
                self.cond.wait(_POLL_SECONDS)  # for another thread's decoded shards
                interrupt.check()
        return None

    def _decode(self, stream: Iterator[Task], compress: Callable[[Task], Any]) -> None:
        try:
            for task in stream:
                with self.cond:
                    self.decoded.append(task)
                    self.cond.notify()
                while True:  # the backlog full: compress rather than decode more
                    interrupt.check()
                    with self.cond:
                        if self.failure is not None:
                            return
                        if len(self.decoded) < self.backlog:
                            break
                        task = self.decoded.popleft()
                    self.results[task.key] = self.tick(compress(task))
        finally:
            with self.cond:
                self.decoding -= 1
                self.cond.notify_all()


def _reserve(wanted: int, useful: int) -> int:
    """How many helper threads a job may start now (it asked for ``wanted``;
    more than ``useful`` would find nothing to do)."""
    global _helpers, _limit
    with _lock:
        _limit = max(_limit, wanted)
        count = max(0, min(wanted, useful, _limit - _helpers))
        _helpers += count
    return count


def _release(count: int) -> None:
    global _helpers
    with _lock:
        _helpers -= count
