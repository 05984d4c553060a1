"""Run commands side by side, several times in turn, and report medians.

Wall time comes from the clock around each run; CPU time is user + system
of the command and every descendant it waited for (wait4). Peak memory is the largest
sum, over the command's whole process tree (the parent, a forkserver, every
worker), of resident sizes, sampled every 20 ms from /proc, and never less
than the largest single process that the kernel reports at the end (wait4).
Pages that forked processes share are counted in each of them, so the sum
errs high.

The commands are started by a small launcher process, not by the benchmark itself: a process
starts as a copy of the one that forked it, and the kernel's peak (ru_maxrss) keeps that copy's
size across exec, so a command forked from a benchmark holding 51 MiB reported at least 51 MiB
(dwz on libgsl: 93 MiB from a parent of 80 MiB, 45 MiB from a small one). The launcher holds
about 9 MiB, the floor of what can be measured here.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
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


# The launcher: reads [command, stderr path] as a JSON line, starts the command (stdin and
# stdout /dev/null), writes its pid, waits, writes [exit status, ru_maxrss KiB, CPU seconds,
# why it could not start]; a command that cannot start has pid -1.
_LAUNCHER = r"""
import json, os, sys
for line in sys.stdin:
    cmd, err = json.loads(line)
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    try:
        pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=actions)
    except OSError as exc:
        print(-1, json.dumps([127, 0, 0.0, f"{cmd[0]}: {exc.strerror}"]), sep="\n", flush=True)
        continue
    print(pid, flush=True)
    _, status, usage = os.wait4(pid, 0)
    print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime, ""]),
          flush=True)
"""
_launcher: subprocess.Popen | None = None


def _launch() -> subprocess.Popen:
    global _launcher
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
    return _launcher


def run_once(cmd: list[str], output: Path | None = None) -> Result:
    """One run of ``cmd``; ``output``, the file it writes, is removed first (before the clock
    starts)."""
    if output is not None:
        output.unlink(missing_ok=True)
    launcher = _launch()
    assert launcher.stdin is not None and launcher.stdout is not None
    with tempfile.NamedTemporaryFile("r", suffix=".stderr") as err:
        t0 = time.perf_counter()
        launcher.stdin.write(json.dumps([cmd, err.name]) + "\n")
        line = launcher.stdout.readline()
        if not line:
            raise SystemExit(f"the launcher ended: cannot run {' '.join(cmd)}")
        pid = int(line)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while pid > 0 and not done.wait(_EVERY):
                peak[0] = max(peak[0], tree_rss(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode, maxrss_kib, cpu, why = json.loads(launcher.stdout.readline())
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        if returncode != 0:
            raise SystemExit(f"failed ({returncode}): {' '.join(cmd)}\n{why or err.read()}")
    return Result(wall, max(peak[0], maxrss_kib * 1024), cpu)


def measure(commands: dict[str, list[str]], runs: int, warm_up: bool = True,
            outputs: dict[str, Path] | None = None) -> dict[str, Result]:
    """name -> (median wall, largest peak, median CPU); one warm-up, then rounds A B C A B C ...

    ``outputs``: the file each command writes, removed before each of its runs, outside the
    clock. Every run then makes a new file, as in a build that removes its targets first (SCons)
    or writes fresh output trees (Bazel): the tools replace an existing file in ways that cost
    differently (dwz truncates it and writes it again in place; linkplugin and objcopy write a
    new file and rename it over the old one, whose pages the kernel then frees: 6 ms of a 7.5 MB
    output), a cost of the build's choice to keep old outputs, not of making the new one. The
    removed files' pages are not written back either, which steadies the times."""
    outputs = outputs or {}
    done: dict[str, list[Result]] = {name: [] for name in commands}
    if warm_up:
        for name, cmd in commands.items():
            run_once(cmd, outputs.get(name))
    for _ in range(runs):
        for name, cmd in commands.items():
            done[name].append(run_once(cmd, outputs.get(name)))
    return {name: Result(statistics.median(r.wall for r in rs), max(r.peak for r in rs),
                         statistics.median(r.cpu for r in rs)) for name, rs in done.items()}


def side_by_side(commands: dict[str, list[str]], runs: int, outputs: dict[str, Path] | None = None
                 ) -> dict[str, tuple[float, int]]:
    """name -> (median wall seconds, peak bytes); ``outputs`` as ``measure`` takes them."""
    return {name: (r.wall, r.peak) for name, r in measure(commands, runs, outputs=outputs).items()}
