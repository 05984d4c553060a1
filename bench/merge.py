"""Type-merging benchmark: linkplugin merge-types at -j1/-j2 against dwz and llvm-dwarfutil.

    python3 bench/merge.py [--runs N] [--only WORD...] [--no-quality] [--also DIR...]

Prints, per input and tool, .debug_info + .debug_abbrev bytes after, the
median wall time, its ratio to dwz, peak memory summed over the process tree
(parent, forkserver and workers) and its ratio to dwz, and (for linkplugin) the
DIEs per second of its reader on one core. Then, for libstdc++ and
python3.11d, what ours and dwz leave behind (bench/quality.py): bytes, gdb
listing entries moved and lost, DIEs by tag.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import ROOT, all_inputs, third_party  # noqa: E402
from quality import report as quality_report  # noqa: E402
from timer import side_by_side  # noqa: E402

from linkplugin.api import section_table  # noqa: E402


def info_abbrev(path: Path) -> int:
    return sum(r.plain_size for r in section_table(path) if r.name in (".debug_info", ".debug_abbrev"))


def commands(src: Path, out: Path, also: list[Path] | None = None) -> dict[str, tuple[Path, list[str]]]:
    table = {}
    if shutil.which("dwz"):
        table["dwz -o"] = (out / "dwz", ["dwz", "-o", str(out / "dwz"), str(src)])
    for jobs in ["1", "2"]:
        dst = out / f"linkplugin-{jobs}"
        table[f"linkplugin -j{jobs}"] = (dst, [sys.executable, "-m", "linkplugin", "merge-types", str(src),
                                              "-o", str(dst), "-j", jobs])
        for k, tree in enumerate(also or []):  # another checkout, in the same interleaved rounds
            dst = out / f"also{k}-{jobs}"
            table[f"{tree.name} -j{jobs}"] = (dst, ["env", f"PYTHONPATH={tree}", sys.executable, "-m", "linkplugin",
                                                   "merge-types", str(src), "-o", str(dst), "-j", jobs])
    dwarfutil = shutil.which("llvm-dwarfutil-16") or shutil.which("llvm-dwarfutil")
    if dwarfutil:
        table["llvm-dwarfutil (gc+odr)"] = (out / "dwarfutil", [dwarfutil, "--garbage-collection", str(src),
                                                                str(out / "dwarfutil")])
    return table


def _ratio(value: float, base: float | None, spec: str, unit: str = "") -> str:
    """``value / base`` formatted, or "-" where dwz refused the input (dwz -m output)."""
    return format(value / base, spec) + unit if base else "-"


def usable(label: str, cmd: list[str]) -> bool:
    """dwz refuses some inputs (clang's DWARF 5, files it finds nothing in); llvm-dwarfutil 16
    exits 0 but writes no DWARF at all for inputs with DWARF 5 range lists ("file will be
    skipped"), which would show as a 1-byte result."""
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or "will be skipped" in result.stderr:
        print(f"<!-- {label} skipped: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode} -->")
        return False
    return True


def reader_rate(src: Path) -> tuple[int, float]:
    """(DIEs, DIEs per second) of our DWARF decoder alone, on one core."""
    from elftools.elf.elffile import ELFFile

    from linkplugin.dwarf.units import parse_units
    from linkplugin.merge.hash import decode_with_abbrevs

    with open(src, "rb") as f:
        elf = ELFFile(f)
        info = elf.get_section_by_name(".debug_info").data()
        abbrev = elf.get_section_by_name(".debug_abbrev").data()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        cache: dict = {}
        count = sum(len(decode_with_abbrevs(info, abbrev, unit, cache)) for unit in parse_units(info))
        best = min(best, time.perf_counter() - t0)
    return count, count / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each command")
    parser.add_argument("--only", nargs="+", metavar="WORD",
                        help="only the Debian inputs whose package name contains WORD (libstdc++, python, "
                             "openjdk; librados: Ceph's librados.so.2 and libceph-common.so.2; binutils: gold's debug "
                             "file as Debian ships it, dwz -m output, which dwz refuses; libc6: glibc's libc.so.6, "
                             "C in 2,063 small units; gsl, graphicsmagick, stimfit, ipopt, cupt, libdb, krb5 (dwz "
                             "output), syslog, structure, itpp (dwz output), uwsgi, mono, ns2, 6-11 (gcc 11's libstdc++; "
                             "libstdc takes it too), dibbler, workbench (Connectome Workbench: 368 MB of .debug_info, "
                             "minutes and 2 GB for dwz), plume, petsc, valgrind, psurface, nam, rbd (Ceph's librbd: "
                             "238 MB, 1.4 GB for dwz), lib32stdc, libx32stdc (32-bit libstdc++): bench/inputs.py MORE; gdbserver (-clang, -gcc): built here from gdb-source; "
                             "gold-clang: gold built here by clang++ from binutils-source; vmlinux: the Linux kernel "
                             "(Debian's cloud kernel, 164 MB of .debug_info, C); all these but the first "
                             "three not in the default run)")
    parser.add_argument("--no-quality", action="store_true", help="skip the gdb listing and per-tag tables")
    parser.add_argument("--also", nargs="+", type=Path, default=[], metavar="DIR",
                        help="other checkouts of linkplugin (built in place) to time in the same rounds, e.g. "
                             "the main branch's for a before/after table")
    args = parser.parse_args()
    # Bytecode as an installed package has it: without it (PYTHONDONTWRITEBYTECODE,
    # a read-only tree) every run compiles linkplugin again, a tenth of a second.
    for tree in [ROOT, *args.also]:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "linkplugin")], check=True)
    print("| input | tool | .debug_info+abbrev after | vs dwz | median wall s | vs dwz | peak MiB (sum of processes) "
          "| vs dwz |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for src in all_inputs(args.only, with_large=True):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            table = {k: v for k, v in commands(src, out, [d.resolve() for d in args.also]).items()
                     if usable(k, v[1])}
            results = side_by_side({k: cmd for k, (_, cmd) in table.items()}, args.runs,
                                   {k: dst for k, (dst, _) in table.items()})
            before = info_abbrev(src)
            base = table.get("dwz -o")
            base_size = info_abbrev(base[0]) if base else None
            base_wall, base_peak = results["dwz -o"] if base else (None, None)
            print(f"| {src.name} | input | {before} | {_ratio(before, base_size, '.3f')} | | | | |")
            dies, rate = reader_rate(src)
            print(f"| {src.name} | linkplugin reader | {dies} DIEs | | {dies / rate:.3f} | | "
                  f"{rate / 1e6:.2f} M DIEs/s | |")
            for label, (dst, _) in table.items():
                wall, peak = results[label]
                size = info_abbrev(dst)
                print(f"| {src.name} | {label} | {size} | {_ratio(size, base_size, '.3f')} | {wall:.3f} | "
                      f"{_ratio(wall, base_wall, '.2f', 'x')} | {peak / 2**20:.0f} | "
                      f"{_ratio(peak, base_peak, '.2f', 'x')} |", flush=True)

    if not args.no_quality:
        for src in third_party():
            quality_report(src)

if __name__ == "__main__":
    main()
