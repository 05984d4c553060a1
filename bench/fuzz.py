"""Long fuzzing runs: mutated real ELF files through every linkplugin command.

    python3 bench/fuzz.py --cases 100000 --seed 1 -j 2           # prints counts per outcome
    python3 bench/fuzz.py --seed 1 --replay 4711                  # one case again, with its traceback

The harness lives in tests/fuzzlib.py (shared with tests/test_fuzz.py). Seed programs are compiled
once into --work (default bench/.fuzz, not committed); every case is replayable from --seed and
its number. Results go to --log as JSON lines, one per case.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import fuzzlib  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=10000)
    p.add_argument("--start", type=int, default=0, help="first case number")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-j", "--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    p.add_argument("--memory-mb", type=int, default=2048, help="address-space limit of a worker")
    p.add_argument("--work", type=Path, default=ROOT / "bench" / ".fuzz")
    p.add_argument("--log", type=Path, help="JSON lines, one per case (default WORK/run-SEED.jsonl)")
    p.add_argument("--replay", type=int, metavar="CASE", help="run one case in this process and show it")
    args = p.parse_args()

    if args.replay is not None:
        return replay(args)
    log_path = args.log or args.work / f"run-{args.seed}.jsonl"
    args.work.mkdir(parents=True, exist_ok=True)
    last = [0.0]

    def progress(summary: fuzzlib.Summary) -> None:
        now = time.time()
        if now - last[0] > 30:
            last[0] = now
            done = sum(summary.counts.values())
            print(f"[{time.strftime('%H:%M:%S')}] {done}/{args.cases} " +
                  " ".join(f"{o}={summary.counts[o]}" for o in fuzzlib.OUTCOMES), flush=True)

    with open(log_path, "w") as log:
        summary = fuzzlib.run(args.work, range(args.start, args.start + args.cases), args.seed, jobs=args.jobs,
                              timeout=args.timeout, memory_mb=args.memory_mb, log=log, progress=progress)
    print(f"python3 bench/fuzz.py --cases {args.cases} --start {args.start} --seed {args.seed} -j {args.jobs}")
    print(summary.report())
    print("by command:")
    for command in sorted({c for c, _ in summary.by_command}):
        print(f"  {command:<12} " + " ".join(f"{o}={summary.by_command[(command, o)]}" for o in fuzzlib.OUTCOMES
                                            if summary.by_command[(command, o)]))
    return 1 if summary.bad else 0


def replay(args: argparse.Namespace) -> int:
    """Write the case's input to WORK/replay/input and run the command here, tracebacks shown."""
    from linkplugin import cli

    fuzzlib.prepare(args.work)
    seeds = fuzzlib.load_seeds(args.work)
    case = fuzzlib.make_case(seeds, args.seed, args.replay)
    folder = args.work / "replay"
    folder.mkdir(exist_ok=True)
    src = folder / "input"
    src.write_bytes(case.data)
    out = folder / "output"
    if out.exists():
        out.unlink()
    argv = [str(src) if a == "IN" else str(out) if a == "OUT" else str(args.work / case.seed) if a == "ORIG" else a
            for a in case.argv]
    print(f"seed {case.seed}; mutation {'; '.join(case.notes)}")
    print("linkplugin " + " ".join(argv), flush=True)
    return cli.run(argv)


if __name__ == "__main__":
    sys.exit(main())
