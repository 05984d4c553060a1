"""Run commands side by side, several times in turn, and report medians.

Wall time comes from the clock around each run; CPU time is user + system
of the command and every descendant it waited for (wait4). Peak memory is the largest
sum, over the command's whole process tree (the parent, a forkserver, every
worker), of resident sizes, sampled every 20 ms from /proc, and never less
than the largest single process that the kernel reports at the end (wait4).
Pages that forked processes share are counted in each of them, so the sum
errs high.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from typing import NamedTuple

_PAGE = os.sysconf("SC_PAGE_SIZE")
_EVERY = 0.02


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, now."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # it ended while we looked
    return total


class Result(NamedTuple):
    wall: float  # seconds
    peak: int  # bytes
    cpu: float  # seconds


def run_once(cmd: list[str]) -> Result:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(_EVERY):
            peak[0] = max(peak[0], tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return Result(wall, max(peak[0], usage.ru_maxrss * 1024), usage.ru_utime + usage.ru_stime)


def measure(commands: dict[str, list[str]], runs: int, warm_up: bool = True) -> dict[str, Result]:
    """name -> (median wall, largest peak, median CPU); one warm-up, then rounds A B C A B C ..."""
    done: dict[str, list[Result]] = {name: [] for name in commands}
    if warm_up:
        for cmd in commands.values():
            run_once(cmd)
    for _ in range(runs):
        for name, cmd in commands.items():
            done[name].append(run_once(cmd))
    return {name: Result(statistics.median(r.wall for r in rs), max(r.peak for r in rs),
                         statistics.median(r.cpu for r in rs)) for name, rs in done.items()}


def side_by_side(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, int]]:
    """name -> (median wall seconds, peak bytes)."""
    return {name: (r.wall, r.peak) for name, r in measure(commands, runs).items()}
