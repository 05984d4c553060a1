"""Phase timing, printed like a linker's /time table.

Every phase start is also where a job notices an interrupt (``interrupt.check``), and where the
tests can hold a job: with ``LINKPLUGIN_TEST_PAUSE=NAME`` in the environment, the phase NAME
says ``linkplugin: paused at NAME`` on stderr and waits up to 30 s, so that a test can send a
signal while the job is in that phase (as git's GIT_TEST_* variables do).
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

from linkplugin import interrupt, progress

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Iterator

_PAUSE_SECONDS = 30.0


def _test_pause(name: str) -> None:
    if os.environ.get("LINKPLUGIN_TEST_PAUSE") != name:
        return
    # One write, newline included: print() writes the text and the newline apart, and the test's
    # signal, sent when the text shows, could come between them.
    sys.stderr.write(f"linkplugin: paused at {name}\n")
    sys.stderr.flush()
    deadline = time.monotonic() + _PAUSE_SECONDS
    while time.monotonic() < deadline:
        interrupt.check()
        time.sleep(0.05)


class PhaseTimer:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}  # in first-seen order; a phase may recur
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        interrupt.check()
        _test_pause(name)
        t0 = time.perf_counter()
        progress.phase(name)
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0

    def table(self) -> str:
        total = time.perf_counter() - self._start
        width = max([len(n) for n in self.phases] + [5])
        lines = [f"{name + ':':<{width + 1}} {seconds * 1000:9.1f} ms" for name, seconds in self.phases.items()]
        lines.append(f"{'Total:':<{width + 1}} {total * 1000:9.1f} ms")
        return "\n".join(lines)
