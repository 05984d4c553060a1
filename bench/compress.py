"""Compression benchmark: linkplugin at -j1/-j2 against objcopy and eu-elfcompress.

    python3 bench/compress.py [--runs N] [--large-runs N] [--only NAME ...] [--no-large]

Per input, every command runs once as warm-up, then the commands take turns
(A B C A B C ...) for N rounds. Printed per input and tool: the median wall
time and its ratio to objcopy with the same codec, the same for CPU time
(user + system of all processes: on a loaded machine the fairer view of the
work done, though not of the time parallel workers save), the peak memory summed
over the process tree (see timer.py) and its ratio to the input's largest
plain debug section, and the debug bytes written with their ratio to objcopy's.

Inputs: the examples, libstdc++ and python3.11d (plain, as shipped), the
libjvm.so debug file of openjdk-17-dbg made plain with objcopy (the large
case), and recompression rows for compressed inputs: python3.11d compressed
by objcopy, and libjvm.so's debug file as shipped (zlib). objcopy cannot
recompress in one step, so its recompression is
``objcopy --decompress-debug-sections`` then ``objcopy --compress-debug-sections``.
Levels are each tool's default (zlib 6, zstd 3); the ``zlib:1`` rows are
ours at zlib level 1 (lld's, mold's and Go's default), for the default-level
question.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import ROOT, all_inputs, large  # noqa: E402
from timer import measure  # noqa: E402

from linkplugin.api import section_table  # noqa: E402

CODECS = ["zlib", "zstd"]
SLOW_EU = 100e6  # eu-elfcompress takes minutes on more plain bytes than this: not run there


def debug_rows(path: Path) -> list:
    return [r for r in section_table(path) if r.name.startswith((".debug_", ".zdebug_"))]


def ours(src: Path, dst: Path, codec: str, jobs: str, level: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "linkplugin", "compress", str(src), "-o", str(dst), "--type", codec, "-j", jobs]
    return cmd + (["--level", level] if level else [])


def commands(src: Path, out: Path, compressed_input: bool, plain_bytes: int
             ) -> dict[str, tuple[str, Path, list[str]]]:
    """label -> (codec, output, command)."""
    table = {}
    for codec in CODECS:
        dst = out / f"objcopy-{codec}"
        if compressed_input:
            mid = out / "objcopy-plain"
            table[f"objcopy {codec} (decompress, then compress)"] = (codec, dst, [
                "sh", "-c", f"objcopy --decompress-debug-sections '{src}' '{mid}' && "
                            f"objcopy --compress-debug-sections={codec} '{mid}' '{dst}'"])
        else:
            table[f"objcopy {codec}"] = (codec, dst, ["objcopy", f"--compress-debug-sections={codec}", str(src), str(dst)])
        for jobs in ["1", "2"]:
            dst = out / f"linkplugin-{codec}-{jobs}"
            table[f"linkplugin {codec} -j{jobs}"] = (codec, dst, ours(src, dst, codec, jobs))
    for jobs in ["1", "2"]:
        dst = out / f"linkplugin-zlib1-{jobs}"
        table[f"linkplugin zlib:1 -j{jobs}"] = ("zlib", dst, ours(src, dst, "zlib", jobs, "1"))
    if shutil.which("eu-elfcompress") and not compressed_input and plain_bytes < SLOW_EU:
        dst = out / "eu-elfcompress-zlib"
        table["eu-elfcompress zlib"] = ("zlib", dst, ["eu-elfcompress", "-t", "zlib", "-o", str(dst), str(src)])
    return table


def bench(title: str, src: Path, runs: int, compressed_input: bool, warm_up: bool) -> None:
    rows = debug_rows(src)
    plain_bytes = sum(r.plain_size for r in rows)
    largest = max(r.plain_size for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        table = commands(src, out, compressed_input, plain_bytes)
        results = measure({k: cmd for k, (_, _, cmd) in table.items()}, runs, warm_up,
                          {k: dst for k, (_, dst, _) in table.items()})
        sizes = {label: sum(r.size for r in debug_rows(dst)) for label, (_, dst, _) in table.items()}
    base = {codec: next(label for label, (c, _, cmd) in table.items() if c == codec and label.startswith("objcopy"))
            for codec in CODECS}
    for label, (codec, _, _) in table.items():
        r, b = results[label], results[base[codec]]
        print(f"| {title} ({plain_bytes / 1e6:.1f} MB plain debug) | {label} | {r.wall:.3f} | "
              f"{r.wall / b.wall:.2f}x | {r.cpu:.2f} | {r.cpu / b.cpu:.2f}x | {r.peak / 2**20:.0f} | "
              f"{r.peak / largest:.2f} | {sizes[label]} | {sizes[label] / sizes[base[codec]]:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each command")
    parser.add_argument("--only", nargs="*", help="only inputs whose title contains one of these")
    parser.add_argument("--large-runs", type=int, help="counted runs on libjvm.so's debug file "
                        "(default: --runs); its page cache is warm from making it plain, so no warm-up")
    parser.add_argument("--no-large", action="store_true", help="leave out libjvm.so's debug file")
    args = parser.parse_args()
    # Bytecode as an installed package has it: without it (PYTHONDONTWRITEBYTECODE,
    # a read-only tree) every run compiles linkplugin again, a tenth of a second.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "linkplugin")], check=True)
    print("| input | tool | median wall s | vs objcopy (same codec) | median CPU s | CPU vs objcopy "
          "| peak MiB (all processes) | peak / largest plain section | debug bytes | vs objcopy bytes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp)
        inputs = [(src.name, src, False, args.runs, True) for src in all_inputs()]
        python = next(src for _, src, *_ in inputs if src.name == "python3.11d")
        zpython = made / "python3.11d.zlib"
        subprocess.run(["objcopy", "--compress-debug-sections=zlib", str(python), str(zpython)], check=True)
        inputs.append(("python3.11d, objcopy zlib", zpython, True, args.runs, True))
        large_runs, large_warm_up = args.large_runs or args.runs, args.large_runs is None
        if not args.no_large:
            shipped = large()
            plain = made / "libjvm.so.debug"
            subprocess.run(["objcopy", "--decompress-debug-sections", str(shipped), str(plain)], check=True)
            inputs += [("libjvm.so debug, made plain", plain, False, large_runs, large_warm_up),
                       ("libjvm.so debug, zlib as shipped", shipped, True, large_runs, large_warm_up)]
        for title, src, compressed_input, runs, warm_up in inputs:
            if args.only and not any(word in title for word in args.only):
                continue
            bench(title, src, runs, compressed_input, warm_up)


if __name__ == "__main__":
    main()
