"""The threads of a compression job: decompress input sections and compress shards.

libdeflate, zlib and libzstd release the GIL while they work, so threads
compress in parallel as processes would (as far as the machine lets them:
zstd's large tables scale about 1.5x on two cores here), without their costs: nothing to start (a thread
is up in microseconds, a process in tens of milliseconds, the whole run on a
16 MB input in half a second), nothing to import in a worker, no shard copied
through a pipe, and nothing forked inside SCons's threads. The Python left
around each call (a slice, a dict entry) is small against the call itself.

A job has plain shards (their bytes known up front, queued in the order the
writer wants them) and streams (compressed input sections, each decoded by one
thread at a time into shards). The writer, the thread that asked for the job,
takes the results in its order (``take``) as soon as each is made, and writes
them: no more than a few compressed shards are held at once, not the whole
output. It also works: what it waits for and nobody has started yet, it makes
itself, so ``jobs`` threads work in all, and with one job no thread is started
(everything is made in the writer's order, as it is written).

A helper thread takes, in this order: a decoded shard while half the backlog
or more waits (they hold memory, and draining them keeps the decoding threads
decoding), a stream nobody decodes yet (largest first: the longest serial work
starts first), any decoded shard, the first plain shard the writer has not
taken, unless a few results a thread already wait to be written. A thread
decoding a stream compresses waiting shards itself while the backlog is full,
and stops once 32 MiB of results wait unless the writer is at its section.
Shards and streams under 16 KiB are the writer's alone (handing one over costs
more than making it). Results are stored by their task's key: which thread ran
a task never changes the bytes.

Every helper counts against one limit shared by all jobs of the process (SCons
runs several at once): helpers in all jobs together stay under the largest
``jobs`` asked for; the writer always works too.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from itertools import islice

from linkplugin import interrupt, progress

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any, Callable, Hashable, Protocol

    class Task(Protocol):
        key: Hashable
        length: int  # plain bytes


_BACKLOG = 2  # decoded shards waiting per thread, at most
_AHEAD = 4  # results made and not yet written, per thread, past which helpers wait
# Plain shards smaller than this are left to the writer: handing one to another thread and its
# result back costs more than compressing it (a file of 5,000 sections of 2.7 KB: 0.34 s at
# -j2 with every shard handed over, 0.27 s without).
_MIN_HANDED_BYTES = 16 << 10
# Results a helper decoding a stream may leave unwritten before it waits for the writer to come
# to that stream's section (unless the writer is there): a large compressed section after
# another is not held whole, and the decoding, often the job's longest serial work, still
# runs ahead of the writer by this much.
_STREAM_AHEAD_BYTES = 32 << 20
_POLL_SECONDS = 0.1  # how often a waiting thread looks for an interrupt
_ABANDON_SECONDS = 2.0  # how long a failed job waits for its helpers' current shards


class _Closed(Exception):
    """What a closed job's helpers see: take no more work."""


_lock = threading.Lock()
_helpers = 0  # helper threads running, all jobs together
_limit = 0  # the most jobs ever asked for, less the calling thread


def start(plain: list[Task], streams: list[tuple[int, int, Iterator[Task]]],
          kernel: Callable[[], Callable[[Task], Any]], jobs: int, total: int,
          weight: Callable[[Any], int] = len) -> Job:
    """A job making ``compress(task)`` of every plain task and of every task the streams yield
    (``streams``: (section number, plain bytes, its tasks in order), largest first), started on
    ``jobs - 1`` helper threads; the caller takes the results with ``Job.take`` and ends the
    job with ``Job.close``. ``kernel()`` makes one thread's compress function (a codec context
    of its own). ``total`` is how many tasks there will be, for the progress line; ``weight``
    gives a result's bytes."""
    job = Job(plain, streams, kernel, jobs, total, weight)
    job.start()
    return job


_MISSING = object()


class Job:
    def __init__(self, plain: list[Task], streams: list[tuple[int, int, Iterator[Task]]],
                 kernel: Callable[[], Callable[[Task], Any]], jobs: int, total: int,
                 weight: Callable[[Any], int] = len) -> None:
        # Queued work by key, and the order helpers take it in: an entry the writer took first is
        # gone from the dict, and a helper skips it (no scan of the queue per shard: a file may
        # have tens of thousands of small sections).
        self.plain: dict[Hashable, Task] = {t.key: t for t in plain}
        # What helpers may take, in the caller's order; smaller shards are the writer's.
        self.plain_order = deque(t for t in plain if t.length >= _MIN_HANDED_BYTES)
        self.streams = {section: tasks for section, _, tasks in streams}  # not started yet
        # What helpers may start, largest first; smaller streams are the writer's.
        self.stream_order = deque(section for section, size, _ in streams if size >= _MIN_HANDED_BYTES)
        self.own: dict[int, Iterator[Task]] = {}  # streams the writer decodes itself, as it needs them
        self.decoded: deque[Task] = deque()
        self.decoding = 0  # streams being decoded by helpers now
        self.backlog = _BACKLOG * jobs
        # Results made but not yet taken, at most (helpers wait rather than take new plain shards):
        # what the job holds stays a few shards whatever the writer is doing.
        self.ahead = _AHEAD * jobs
        self.kernel = kernel
        self.compress: Callable[[Task], Any] | None = None  # the writer's own, made when it first works
        self.jobs = jobs
        self.total = total
        self.results: dict[Hashable, Any] = {}
        self.weight = weight
        self.held = 0  # bytes of the results not yet taken
        # While waiting for a large shard, the writer goes on making small ones as long as their
        # results hold less than that shard's plain bytes, however many they are.
        self.largest = max((t.length for t in plain), default=0)
        self.wanted = -1  # the section the writer takes shards of now
        self.failure: BaseException | None = None
        self.cond = threading.Condition()
        self.tick = progress.counter(total)
        self.helpers: list[threading.Thread] = []

    def start(self) -> None:
        reserved = _reserve(self.jobs - 1, self.total - 1)
        for started in range(reserved):
            t = threading.Thread(target=self._helper, daemon=True, name="linkplugin-compress")
            try:
                t.start()
            except RuntimeError:  # no more threads to be had: those running do the work
                _release(reserved - started)
                break
            self.helpers.append(t)

    def take(self, key: Hashable) -> Any:
        """The result of the task ``key``: made by a helper, or here if nobody has started it."""
        while True:
            interrupt.check()
            with self.cond:
                if self.wanted != key[0]:  # type: ignore[index]
                    self.wanted = key[0]  # type: ignore[index]
                    self.cond.notify_all()  # a helper may wait for the writer to come to its stream
                got = self.results.pop(key, _MISSING)
                if got is not _MISSING:
                    self.held -= self.weight(got)
                    self.cond.notify_all()  # a helper may wait for room
                    return got
                if self.failure is not None:
                    raise self.failure
                task = self._claim(key)
                stream = self._own_stream(key[0]) if task is None else None  # type: ignore[index]
                other = self._ahead() if task is None and stream is None else None
                if task is None and stream is None and other is None:
                    self.cond.wait(_POLL_SECONDS)  # a helper is making it
                    continue
            if self.compress is None:
                self.compress = self.kernel()
            if other is not None:  # a helper is making ``key``: meanwhile, the next shard
                self._store(other.key, self.tick(self.compress(other)))
                continue
            if task is None:  # decoded here, outside the lock: only this thread reads its own streams
                task = next(stream)  # type: ignore[arg-type]
                if task.key != key:  # the writer asks in order, so the stream's next shard is ``key``
                    raise RuntimeError(f"shard {task.key} came where {key} was asked for")
                if task.last:  # (yielded once the stream's end was checked: nothing more to read)
                    del self.own[key[0]]  # type: ignore[index]
            return self.tick(self.compress(task))

    def _claim(self, key: Hashable) -> Task | None:
        """The task ``key`` taken from the queues, if no helper has it (under the lock)."""
        task = self.plain.pop(key, None)
        if task is None:
            for queued in self.decoded:  # (at most the backlog)
                if queued.key == key:
                    self.decoded.remove(queued)
                    return queued
        return task

    def _next_plain(self) -> Task | None:
        """The largest of the next few plain tasks in the writer's order that no thread has taken
        yet (under the lock). A shard far larger than its neighbours is the job's longest task
        (libstdc++'s one 4 MiB zstd shard of .debug_info among sections of a few hundred KB:
        19 ms of a 30 ms job): started first, it ends while the other threads make the rest.
        Only within ``ahead`` tasks of the writer's next, so that helpers still make what the
        writer comes to next (a file of many one-shard sections)."""
        if not self._plain_for_helpers():
            return None
        best, size = 0, -1
        for k, task in enumerate(islice(self.plain_order, self.ahead)):
            if task.length > size and task.key in self.plain:
                best, size = k, task.length
        task = self.plain_order[best]
        del self.plain_order[best]
        return self.plain.pop(task.key)

    def _plain_for_helpers(self) -> bool:
        """Whether plain tasks a helper may take remain (under the lock): those the writer took
        first are dropped from the front of the queue."""
        while self.plain_order and self.plain_order[0].key not in self.plain:
            self.plain_order.popleft()
        return bool(self.plain_order)

    def _ahead(self) -> Task | None:
        """A task for the writer to make while a helper makes the one it waits for: the next
        decoded or plain shard, unless as many results as the backlog already wait to be
        written and hold the bytes of the job's largest shard (under the lock)."""
        if len(self.results) >= self.backlog and self.held >= self.largest:
            return None
        if self.decoded:
            return self.decoded.popleft()
        return self._next_plain()

    def _own_stream(self, section: int) -> Iterator[Task] | None:
        """The stream of ``section`` if the writer decodes it: already, or from now on because no
        helper has started it (under the lock)."""
        stream = self.own.get(section)
        if stream is None:
            stream = self.streams.pop(section, None)
            if stream is not None:
                self.own[section] = stream
        return stream

    def close(self) -> None:
        """End the job: helpers still at work finish their shard and take no other (quick;
        bounded all the same: they are daemons and end with the process)."""
        with self.cond:
            if self.failure is None:
                self.failure = _Closed()
            self.cond.notify_all()
        deadline = time.monotonic() + _ABANDON_SECONDS
        for t in self.helpers:
            t.join(max(0.0, deadline - time.monotonic()))
        for stream in (*self.own.values(), *self.streams.values()):  # their files, now
            getattr(stream, "close", lambda: None)()
        # What a failed job still holds goes now, not when a cyclic collection finds it (a
        # failure's traceback holds a helper's frame, which holds the job): its results, its
        # queues, the writer's codec context and read buffer (a long SCons build with -k).
        self.own.clear()
        self.streams.clear()
        self.results.clear()
        self.decoded.clear()
        self.plain.clear()
        self.plain_order.clear()
        self.compress = None
        self.failure = _Closed()  # (the job no longer holds the exception that holds the job)

    def _fail(self, exc: BaseException) -> None:
        with self.cond:
            if self.failure is None:
                self.failure = exc
            self.cond.notify_all()

    def _store(self, key: Hashable, value: Any) -> None:
        with self.cond:
            self.results[key] = value
            self.held += self.weight(value)
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
                self._store(item.key, self.tick(compress(item)))

    def _next(self) -> Task | Iterator[Task] | None:
        interrupt.check()
        with self.cond:
            while self.failure is None:
                # Half the backlog waiting: drain it before starting another stream, so that the
                # threads decoding never stop to compress (the largest stream's decoding is the
                # longest serial work of the job).
                if len(self.decoded) >= max(1, self.backlog // 2):
                    return self.decoded.popleft()
                while self.stream_order:
                    stream = self.streams.pop(self.stream_order.popleft(), None)
                    if stream is not None:  # (else the writer decodes it)
                        self.decoding += 1
                        return stream
                if self.decoded:
                    return self.decoded.popleft()
                if len(self.results) < self.ahead:
                    task = self._next_plain()
                    if task is not None:
                        return task
                if not self.decoding and not self._plain_for_helpers():
                    return None
                self.cond.wait(_POLL_SECONDS)  # for decoded shards, or for room for results
                interrupt.check()
        return None

    def _decode(self, stream: Iterator[Task], compress: Callable[[Task], Any]) -> None:
        try:
            for task in stream:
                section = task.key[0]  # type: ignore[index]
                with self.cond:
                    self.decoded.append(task)
                    self.cond.notify_all()  # the writer may be waiting for this one
                while True:  # the backlog full: compress rather than decode more
                    interrupt.check()
                    with self.cond:
                        if self.failure is not None:
                            return
                        if len(self.decoded) < self.backlog:
                            break
                        task = self.decoded.popleft()
                    self._store(task.key, self.tick(compress(task)))
                with self.cond:  # far ahead of the writer: wait for it before decoding more
                    # (``section``, not ``task``'s: the backlog's shards may be other streams')
                    while self.failure is None and self.held >= _STREAM_AHEAD_BYTES and self.wanted != section:
                        self.cond.wait(_POLL_SECONDS)
                        interrupt.check()
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
