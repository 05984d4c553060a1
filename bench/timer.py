"""Run commands side by side, several times in turn, and report medians.

Wall time comes from the clock around each run; peak memory is the largest
resident size of the process or any descendant it waited for (wait4).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import time


def run_once(cmd: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, usage.ru_maxrss * 1024


def side_by_side(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, int]]:
    """name -> (median wall seconds, peak bytes); one warm-up, then rounds A B C A B C ..."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, int] = {name: 0 for name in commands}
    for name, cmd in commands.items():
        run_once(cmd)
    for _ in range(runs):
        for name, cmd in commands.items():
            wall, peak = run_once(cmd)
            walls[name].append(wall)
            peaks[name] = max(peaks[name], peak)
    return {name: (statistics.median(walls[name]), peaks[name]) for name in commands}
