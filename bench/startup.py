"""Start-up of the command: from process start to its first phase of work, and its resident size then.

    python3 bench/startup.py [--runs N] [--tree DIR ...] [INPUT]

For ``merge-types`` and ``compress`` of INPUT (default: libstdc++ from bench/.cache), each run
starts ``python -m linkplugin`` (the interpreter itself, ``sys.executable``: not a shim) with
``LINKPLUGIN_TEST_PAUSE=read``, which makes the command stop at the start of its ``read`` phase
(every module it needs loaded, the input not read yet) and say so on stderr. The time from
starting the process to that line, the CPU time the process used until then (all its threads,
from /proc/PID/task/*/schedstat: the steadier figure on a busy machine) and its resident size
(VmRSS) at that moment are its start-up; the run is then ended with SIGTERM. With several ``--tree`` folders (checkouts of
linkplugin, each with its compiled core built), the trees are run in turn, run by run, and each
is printed with its medians.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import ROOT, third_party  # noqa: E402


def cpu_ms(pid: int) -> float:
    """CPU time used so far by every thread of a live process."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])  # nanoseconds on a CPU
    return total / 1e6


def one_run(tree: Path, command: list[str]) -> tuple[float, float, float]:
    """(milliseconds from start to the read phase, CPU milliseconds until then, MiB resident then)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "LINKPLUGIN_TEST_PAUSE": "read"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "linkplugin", *command], env=env, cwd=tree,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        elapsed = time.perf_counter() - start
        if "paused at read" not in line:
            raise SystemExit(f"{tree}: {' '.join(command)}: {line.strip() or 'no pause'}")
        cpu = cpu_ms(proc.pid)
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(int(row.split()[1]) for row in f if row.startswith("VmRSS:"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate()
    return elapsed * 1000, cpu, rss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("input", nargs="?", help="an ELF file with DWARF (default: libstdc++ of bench/.cache)")
    p.add_argument("--runs", type=int, default=11)
    p.add_argument("--tree", action="append", type=Path, help="a linkplugin checkout (default: this one)")
    args = p.parse_args()
    src = args.input or str(third_party()[0])
    trees = args.tree or [ROOT]
    with tempfile.TemporaryDirectory(prefix="linkplugin-startup-") as folder:
        table(args.runs, trees, src, str(Path(folder) / "out"))


def table(runs: int, trees: list[Path], src: str, out: str) -> None:
    commands = {"merge-types": ["merge-types", src, "-o", out, "-j2"],
                "compress": ["compress", src, "-o", out, "-j2"]}
    print(f"start-up to the read phase, medians of {runs} runs ({sys.executable})")
    print("| command | tree | wall ms to first phase | CPU ms until then | MiB resident then |")
    print("|---|---|---:|---:|---:|")
    for name, command in commands.items():
        got: dict[Path, list[tuple[float, float, float]]] = {t: [] for t in trees}
        for _ in range(runs):
            for tree in trees:
                got[tree].append(one_run(tree, command))
        for tree in trees:
            ms, cpu, mib = zip(*got[tree])
            print(f"| {name} | {tree} | {statistics.median(ms):.1f} | {statistics.median(cpu):.1f} | "
                  f"{statistics.median(mib):.1f} |")


if __name__ == "__main__":
    main()
