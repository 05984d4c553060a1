"""A progress line on stderr for long command-line jobs.

Only the command line turns it on, and only when stderr is a terminal: one
line, redrawn in place a few times a second (phase, tasks done of total,
elapsed seconds), erased when the job ends so that nothing of it is left
between the lines a command prints on stdout. The library and the SCons tool
never show it.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any, Callable, Iterator, TextIO
# What the pool's tasks are in each phase, for the line ("12/40 shards").
_TASK_NAMES = {"compress+write": "shards", "read+hash": "unit groups", "rewrite": "unit groups"}
_REDRAW_SECONDS = 0.25


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.perf_counter()
        self.phase = "start"
        self.done = self.total = 0
        self._lock = threading.Lock()  # the counts
        self._draw_lock = threading.Lock()  # the terminal: the job's thread and the redraw thread
        self._stop = threading.Event()
        self._width = 0
        self._thread = threading.Thread(target=self._redraw, daemon=True)

    def set_phase(self, name: str) -> None:
        with self._lock:
            self.phase, self.done, self.total = name, 0, 0
        self._draw(self.line())  # at once: a short job shows its phases too

    def add_tasks(self, count: int) -> None:
        with self._lock:
            self.total += count

    def task_done(self) -> None:
        with self._lock:
            self.done += 1

    def line(self) -> str:
        with self._lock:
            tasks = f" {self.done}/{self.total} {_TASK_NAMES.get(self.phase, 'tasks')}" if self.total else ""
            return f"linkplugin: {self.phase}{tasks}  {time.perf_counter() - self.start:.1f}s"

    def _draw(self, text: str) -> None:
        # \r and padding rather than terminal escapes: works on any terminal.
        with self._draw_lock:
            self.stream.write("\r" + text.ljust(self._width))
            self.stream.flush()
            self._width = len(text)

    def _redraw(self) -> None:
        while not self._stop.wait(_REDRAW_SECONDS):
            self._draw(self.line())

    def __enter__(self) -> "Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._width:
            self._draw("")
            self.stream.write("\r")
            self.stream.flush()


_current: Progress | None = None


@contextmanager
def shown(stream: TextIO, enabled: bool) -> Iterator[Progress | None]:
    """Show progress on ``stream`` for the duration of a job, when ``enabled``."""
    global _current
    if not enabled:
        yield None
        return
    with Progress(stream) as progress:
        _current = progress
        try:
            yield progress
        finally:
            _current = None


def phase(name: str) -> None:
    if _current is not None:
        _current.set_phase(name)


def counter(count: int) -> Callable[[Any], Any]:
    """A function that counts one task done and hands back its argument:
    ``results[i] = tick(fn(*task))``. Does nothing when no progress is shown."""
    progress = _current
    if progress is None:
        return _same
    progress.add_tasks(count)

    def tick(result: Any) -> Any:
        progress.task_done()
        return result
    return tick


def _same(result: Any) -> Any:
    return result
