"""Compression benchmark: linkplugin at -j1/-j2 against objcopy and eu-elfcompress.

    python3 bench/compress.py [--runs N]

Prints, per input and tool, the median wall time, its ratio to objcopy with
the same codec and level, peak memory, and the debug bytes written.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import all_inputs  # noqa: E402
from timer import side_by_side  # noqa: E402

from linkplugin.api import section_table  # noqa: E402


def debug_bytes(path: Path) -> int:
    return sum(r.size for r in section_table(path) if r.name.startswith((".debug_", ".zdebug_")))


def commands(src: Path, out: Path) -> dict[str, tuple[str, Path, list[str]]]:
    """label -> (codec, output, command); levels are each tool's default: zlib 6, zstd 3."""
    table = {}
    for codec in ["zlib", "zstd"]:
        dst = out / f"objcopy-{codec}"
        table[f"objcopy {codec}"] = (codec, dst, ["objcopy", f"--compress-debug-sections={codec}", str(src), str(dst)])
        for jobs in ["1", "2"]:
            dst = out / f"linkplugin-{codec}-{jobs}"
            table[f"linkplugin {codec} -j{jobs}"] = (codec, dst, [
                sys.executable, "-m", "linkplugin", "compress", str(src), "-o", str(dst), "--type", codec, "-j", jobs])
    if shutil.which("eu-elfcompress"):
        dst = out / "eu-elfcompress-zlib"
        table["eu-elfcompress zlib"] = ("zlib", dst, ["eu-elfcompress", "-t", "zlib", "-o", str(dst), str(src)])
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="counted runs of each command")
    args = parser.parse_args()
    print("| input | tool | median wall s | vs objcopy (same codec) | peak MiB | debug bytes | vs objcopy bytes |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for src in all_inputs():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            table = commands(src, out)
            results = side_by_side({k: cmd for k, (_, _, cmd) in table.items()}, args.runs)
            sizes = {label: debug_bytes(dst) for label, (_, dst, _) in table.items()}
            for label, (codec, _, _) in table.items():
                wall, peak = results[label]
                base_wall = results[f"objcopy {codec}"][0]
                base_size = sizes[f"objcopy {codec}"]
                print(f"| {src.name} ({debug_bytes(src) / 1e6:.1f} MB debug) | {label} | {wall:.3f} | "
                      f"{wall / base_wall:.2f}x | {peak / 2**20:.0f} | {sizes[label]} | "
                      f"{sizes[label] / base_size:.4f} |", flush=True)


if __name__ == "__main__":
    main()
