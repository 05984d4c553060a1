"""Run commands side by side, several times in turn, and report medians.

Wall time comes from the clock around each run. Peak memory is that of the whole process tree:
the largest sum, over time, of the resident sizes of the command and every process below it
(worker pools included), sampled from /proc every few milliseconds, and never less than the
largest single process's peak (wait4's ru_maxrss), which catches a one-process spike between
samples.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc/*/stat parent links."""
    parent: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        parent.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parent.get(pid, [])
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def run_once(cmd: list[str], interval: float = 0.005) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    tree: list[int] = [proc.pid]
    rounds = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if rounds % 10 == 0:  # new workers appear rarely: rescan the tree now and then
            tree = _tree(proc.pid)
        rounds += 1
        peak = max(peak, sum(_rss(p) for p in tree))
        time.sleep(interval)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, max(peak, usage.ru_maxrss * 1024)


def side_by_side(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, int]]:
    """name -> (median wall seconds, peak bytes summed over the process tree); one warm-up, then
    rounds A B C A B C ..."""
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
