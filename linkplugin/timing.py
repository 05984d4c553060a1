"""Phase timing, printed like a linker's /time table."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from linkplugin import progress


class PhaseTimer:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}  # in first-seen order; a phase may recur
        self._start = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
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
