"""merge-types --odr (issue 11) against the default mode and dwz.

    python3 bench/odr.py [--runs N] [--no-gdb]

For libstdc++ and python3.11d (bench/inputs.py downloads them) runs, interleaved,
``dwz -o`` and ``linkplugin merge-types -j2`` with and without ``--odr``, and
prints .debug_info+.debug_abbrev bytes after, their ratio to dwz, the median
wall and CPU seconds and the peak memory (summed over processes). Then, unless
``--no-gdb``, gdb's listing entries moved and lost (linkplugin.gdblist) for the
default and the --odr outputs. (llvm-dwarfutil 16, dsymutil's ODR for ELF,
skips both files: it does not read .debug_rnglists.)
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import third_party  # noqa: E402
from merge import info_abbrev, usable  # noqa: E402
from timer import measure  # noqa: E402

from linkplugin.gdblist import compare_listings  # noqa: E402


def commands(src: Path, out: Path) -> dict[str, tuple[Path, list[str]]]:
    table: dict[str, tuple[Path, list[str]]] = {}
    if shutil.which("dwz"):
        table["dwz -o"] = (out / "dwz", ["dwz", "-o", str(out / "dwz"), str(src)])
    for label, extra in [("linkplugin -j2", []), ("linkplugin -j2 --odr", ["--odr"])]:
        dst = out / label.replace(" ", "_")
        table[label] = (dst, [sys.executable, "-m", "linkplugin", "merge-types", str(src), "-o", str(dst),
                              "-j", "2", *extra])
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="counted runs of each command")
    parser.add_argument("--no-gdb", action="store_true", help="skip the gdb listing comparison")
    args = parser.parse_args()
    print("| input | tool | .debug_info+abbrev after | vs dwz | median wall s | median CPU s | peak MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    listings = []
    for src in third_party():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            table = {k: v for k, v in commands(src, out).items() if usable(k, v[1])}
            results = measure({k: cmd for k, (_, cmd) in table.items()}, args.runs,
                              outputs={k: dst for k, (dst, _) in table.items()})
            base = info_abbrev(table["dwz -o"][0]) if "dwz -o" in table else None
            print(f"| {src.name} | input | {info_abbrev(src):,} | "
                  f"{info_abbrev(src) / base if base else float('nan'):.3f} | | | |")
            for label, (dst, _) in table.items():
                r = results[label]
                size = info_abbrev(dst)
                print(f"| {src.name} | {label} | {size:,} | {size / base if base else float('nan'):.3f} | "
                      f"{r.wall:.2f} | {r.cpu:.2f} | {r.peak / 2**20:.0f} |", flush=True)
            if not args.no_gdb:
                for label in ("linkplugin -j2", "linkplugin -j2 --odr"):
                    report = compare_listings(src, table[label][0])
                    listings.append((src.name, label, report))
    if listings:
        print()
        print("| input | tool | gdb entries (input) | moved | lost | new complaints |")
        print("|---|---|---:|---:|---:|---:|")
        for name, label, report in listings:
            print(f"| {name} | {label} | {report.input_entries:,} | {len(report.moved)} | {len(report.lost)} | "
                  f"{sum(n for _, n in report.new_complaints)} |")


if __name__ == "__main__":
    main()
