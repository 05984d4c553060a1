"""What the type mergers leave behind: bytes, gdb's listings, DIEs by tag (ours against dwz).

    python3 bench/quality.py [--tags N] [FILE ...]

For each input (default: the Debian libstdc++ and python3.11d debug files
that bench/inputs.py downloads) runs ``dwz -o`` and ``linkplugin merge-types
-j2`` once, then prints

- .debug_info+.debug_abbrev and all .debug_* bytes after each tool;
- gdb's ``info functions/variables/types .`` entries moved and lost, and the
  complaints gdb prints for the output but not for the input, measured by
  linkplugin.gdblist (see its docstring for the definitions); again with
  ``gdb -readnow`` (every unit expanded at start, in order, so which unit's
  copy gdb shows for a shared file and name no longer follows lookup order);
- the same comparison with gdb indexing on ``--threads`` worker threads (default 2: gdb's
  default on a 2-core machine is one per core, and which copy it lists for a name held by
  several units depends on that number); the "input" row there compares the input's own
  listing at that many threads with its listing at none (gdb's own variation);
- what lldb reads differently (linkplugin.lldblist, when lldb is installed): functions it
  finds no debug info for any more or reads differently, type lookups read differently;
- DIEs by tag, counted from ``readelf --debug-dump=info`` (input, dwz, ours).

With ``--gdb-index`` each input is first given gdb's own index (``gdb-add-index``
on a copy), so gdb expands units through the index rather than lazily by name.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inputs import third_party  # noqa: E402

from linkplugin.api import section_table  # noqa: E402
from linkplugin import lldblist  # noqa: E402
from linkplugin.gdblist import compare, listing  # noqa: E402

_TAG = re.compile(rb"\((DW_TAG_\w+)\)")


def sizes(path: Path) -> tuple[int, int]:
    """(.debug_info + .debug_abbrev, all .debug_*) plain bytes."""
    table = section_table(path)
    return (sum(r.plain_size for r in table if r.name in (".debug_info", ".debug_abbrev")),
            sum(r.plain_size for r in table if r.name.startswith((".debug_", ".zdebug_"))))


def tags(path: Path) -> Counter[str]:
    """DIEs by tag, as readelf prints them (partial units included)."""
    counts: Counter[str] = Counter()
    with subprocess.Popen(["readelf", "--debug-dump=info", str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            m = _TAG.search(line)
            if m:
                counts[m.group(1).decode()] += 1
    return counts


def outputs(src: Path, out: Path) -> dict[str, Path]:
    """Run each tool once; the outputs it made, by tool."""
    made = {}
    dwz = out / "dwz"
    done = subprocess.run(["dwz", "-o", str(dwz), str(src)], capture_output=True, text=True)
    if done.returncode == 0:
        made["dwz"] = dwz
    else:
        print(f"<!-- dwz failed on {src.name}: {done.stderr.strip()[-200:]} -->")
    ours = out / "linkplugin"
    subprocess.run([sys.executable, "-m", "linkplugin", "merge-types", str(src), "-o", str(ours), "-j", "2"],
                   check=True, capture_output=True)
    made["linkplugin -j2"] = ours
    return made


def report(src: Path, tag_rows: int = 25, readnow: bool = True, gdb_threads: tuple[int, ...] = (2,)) -> None:
    """Print the tables for one input (with ``readnow``, also gdb -readnow's listings compared;
    and at each of ``gdb_threads`` indexing threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        made = outputs(src, Path(tmp))
        # gdb and readelf on every file side by side (gdb reads each copied under the input's name).
        with ThreadPoolExecutor(2) as threads:
            listings = dict(zip(["input", *made], threads.map(lambda p: listing(p, src.name),
                                                               [src, *made.values()])))
            counts = dict(zip(["input", *made], threads.map(tags, [src, *made.values()])))
            eager = dict(zip(["input", *made], threads.map(lambda p: listing(p, src.name, readnow=True),
                                                            [src, *made.values()]))) if readnow else {}
            threaded = {n: dict(zip(["input", *made], threads.map(lambda p: listing(p, src.name, threads=n),
                                                                   [src, *made.values()])))
                        for n in gdb_threads}
        base = sizes(made["dwz"])[0] if "dwz" in made else None
        print(f"\n### {src.name}\n")
        print("| tool | .debug_info+abbrev | vs dwz | all .debug_* | gdb entries | moved | lost | new complaints "
              "| moved (-readnow) | lost (-readnow) |"
              + "".join(f" moved, lost ({n} threads) |" for n in gdb_threads))
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(gdb_threads))
        info, total = sizes(src)
        own = [compare(listings["input"], threaded[n]["input"]) for n in gdb_threads]
        print(f"| input | {info} | {info / base if base else float('nan'):.3f} | {total} | "
              f"{len(listings['input'].entries)} | | | | | |"
              + "".join(f" {len(r.moved)}, {len(r.lost)} (vs 0 threads) |" for r in own))
        for label, path in made.items():
            info, total = sizes(path)
            result = compare(listings["input"], listings[label])
            both = compare(eager["input"], eager[label]) if readnow else None
            print(f"| {label} | {info} | {info / base if base else float('nan'):.3f} | {total} | "
                  f"{result.output_entries} | {len(result.moved)} | {len(result.lost)} | "
                  f"{sum(n for _, n in result.new_complaints)} | "
                  f"{len(both.moved) if both else ''} | {len(both.lost) if both else ''} |"
                  + "".join(f" {len(r.moved)}, {len(r.lost)} |" for r in
                            (compare(threaded[n]["input"], threaded[n][label]) for n in gdb_threads)))
            for kind, items in (("moved", result.moved[:3]), ("lost", result.lost[:3]),
                                ("complaint", result.new_complaints[:3])):
                for item in items:
                    print(f"<!-- {label} {kind}: {' '.join(map(str, item))[:160]} -->")
        if shutil.which("lldb"):
            _lldb_table(src, made)
        labels = list(counts)
        print(f"\n| DW_TAG ({src.name}) | " + " | ".join(labels) + " | ours - dwz |")
        print("|---|" + "---:|" * (len(labels) + 1))
        rows = sorted(set().union(*counts.values()), key=lambda t: (-counts["input"][t], t))
        for tag in rows[:tag_rows]:
            diff = counts["linkplugin -j2"][tag] - counts["dwz"][tag] if "dwz" in counts else ""
            print(f"| {tag} | " + " | ".join(str(counts[k][tag]) for k in labels) + f" | {diff} |")
        print("| all | " + " | ".join(str(sum(counts[k].values())) for k in labels) + " | |", flush=True)


def _lldb_table(src: Path, made: dict[str, Path]) -> None:
    """What lldb reads differently in each tool's output (linkplugin.lldblist)."""
    try:
        views = dict(zip(["input", *made], lldblist.views([src, *made.values()], src.name, lldblist.type_names(src))))
    except RuntimeError as error:
        print(f"<!-- lldb: {error} -->")
        return
    if not views["input"].full:
        print("<!-- lldb crashed printing the input's functions in full: their summaries compared -->")
    print(f"\n| lldb ({src.name}) | functions | no debug info any more | read differently | printed differently "
          "(offsets, typedef names) | type lookups | read differently | new complaints |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in made:
        r = lldblist.compare(views["input"], views[label])
        print(f"| {label} | {r.functions} | {_unloaded(views[label])} | {len(r.differ)} | {r.lazy} | {r.types} | "
              f"{len(r.types_differ)} | {sum(n for _, n in r.new_complaints)} |")
        for address, before, after in r.differ[:2]:
            print(f"<!-- {label} function {address}: {before[:2]} -> {after[:2]} -->"[:300])
        for name, lost, new in r.types_differ[:2]:
            print(f"<!-- {label} type {name}: lost {lost[:2]} new {new[:2]} -->"[:300])


def _unloaded(view: lldblist.View) -> int:
    """Functions whose unit lldb did not load (it found no debug info for them)."""
    return sum(1 for lines in view.functions.values() if any('language = "<not loaded>"' in x for x in lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", type=Path, help="inputs (default: libstdc++ and python3.11d)")
    parser.add_argument("--tags", type=int, default=25, help="rows of the per-tag table (most DIEs first)")
    parser.add_argument("--no-readnow", action="store_true", help="skip the gdb -readnow comparison")
    parser.add_argument("--gdb-index", action="store_true", help="inputs with gdb-add-index's .gdb_index")
    parser.add_argument("--threads", type=int, nargs="*", default=[2], metavar="N",
                        help="also compare gdb's listings with N indexing threads (default: 2)")
    args = parser.parse_args()
    for src in args.files or third_party():
        if not args.gdb_index:
            report(src, args.tags, not args.no_readnow, tuple(args.threads))
            continue
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / src.name
            shutil.copyfile(src, copy)
            subprocess.run(["gdb-add-index", str(copy)], check=True, capture_output=True)
            report(copy, args.tags, not args.no_readnow, tuple(args.threads))


if __name__ == "__main__":
    main()
