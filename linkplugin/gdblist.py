"""Does gdb list the same program after merging? gdb's whole symbol listings compared.

    python3 -m linkplugin.gdblist INPUT OUTPUT [--examples N] [--readnow] [--order]

gdb prints ``info functions .``, ``info variables .`` and ``info types .`` as
entries (kind, source file, line, text) grouped under ``File X:`` headings,
then the ELF symbols without debug info. gdb lists a type once per unit that
holds a copy, so a merge may rightly drop an entity's extra listings under
other files. What it must not do:

- *moved*: list an entry the input never showed (an entity under a file, or at
  a line, it was not listed at before);
- *lost*: list under no file at all an entity (kind, text) the input listed.

Also compared: the non-debugging symbols (a function whose debug info is lost
shows up there) and gdb's complaints and warnings (all of them: ``set
complaints 1000000``), counted by their text with numbers (offsets, lengths,
indexes) and the file's path masked, since merging rightly moves DIEs and
resizes sections.

Both files are copied under one basename (the input's) into fresh directories
and the copy's path is masked in gdb's messages; gdb names source files from
the DWARF (DW_AT_name, DW_AT_comp_dir, the line table), never from the object
file's directory, so both listings read as if taken at one path.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

COMMANDS = ("info functions .", "info variables .", "info types .")
# Settings that keep anything but the file itself out of the listing: no
# separate debug files found by build-id, no debuginfod, no auto-loaded scripts.
QUIET = ("set debuginfod enabled off", "set auto-load off", "set debug-file-directory /nonexistent")
# gdb 13 indexes the units in one index per worker thread, each over a run of units split by
# their sizes, and expands units index by index: where several units hold one name, which copy
# it lists depends on that split, so on the thread count (its default is the machine's number of
# cores: libstdc++'s own listing differs by 10 entries between 0 and 2 threads). Comparisons
# fix it; 0 (one index, built on the main thread) is also the most repeatable (a dwz output
# listed 13,499 or 13,500 entries from run to run with worker threads).
THREADS = 0

_HEADER = re.compile(r"^All (functions|variables|types|defined functions|defined variables|defined types)"
                     r" matching regular expression")
_ENTRY = re.compile(r"^(\d*):?\t(.*)$")
_NONDEBUG = re.compile(r"^(0x[0-9a-f]+)\s+(.*)$")
_NUMBER = re.compile(r"\b(0x[0-9a-fA-F]+|\d+)\b")


class Entry(NamedTuple):
    kind: str  # functions, variables or types
    file: str
    line: str  # "" when gdb prints none (base types, some typedefs)
    text: str


class Symbol(NamedTuple):
    kind: str
    address: str
    name: str


@dataclass
class Listing:
    entries: set[Entry] = field(default_factory=set)
    nondebug: set[Symbol] = field(default_factory=set)
    complaints: Counter[str] = field(default_factory=Counter)
    raw_entries: int = 0  # lines gdb printed under File headings, duplicates included


@dataclass
class Report:
    moved: list[Entry]
    lost: list[tuple[str, str]]  # (kind, text)
    dropped: list[Entry]  # input entries no longer printed, their entity still listed elsewhere: allowed
    new_nondebug: list[Symbol]
    new_complaints: list[tuple[str, int]]  # (masked text, how many more times than for the input)
    input_entries: int
    output_entries: int

    @property
    def ok(self) -> bool:
        return not (self.moved or self.lost or self.new_nondebug or self.new_complaints)

    def summary(self, examples: int = 5) -> str:
        lines = [f"entries: input {self.input_entries}, output {self.output_entries}; "
                 f"moved {len(self.moved)}, lost {len(self.lost)}, dropped (allowed) {len(self.dropped)}, "
                 f"new non-debugging symbols {len(self.new_nondebug)}, "
                 f"new complaints {sum(n for _, n in self.new_complaints)} "
                 f"({len(self.new_complaints)} kinds)"]
        for title, items in (("moved", self.moved), ("lost", self.lost), ("new non-debugging", self.new_nondebug),
                             ("new complaint", self.new_complaints)):
            for item in items[:examples]:
                lines.append(f"  {title}: {_show(item)}")
        return "\n".join(lines)


def _show(item: tuple) -> str:
    if isinstance(item, Entry):
        return f"[{item.kind}] {item.file}:{item.line} {item.text}"
    if isinstance(item, Symbol):
        return f"[{item.kind}] {item.address} {item.name}"
    return " ".join(str(x) for x in item)


def parse(stdout: str, stderr: str, mask: str = "") -> Listing:
    """gdb's printed listings and messages as a Listing."""
    result = Listing()
    kind = ""
    file: str | None = None
    nondebug = False
    for line in stdout.splitlines():
        header = _HEADER.match(line)
        if header:
            kind = header.group(1).split()[-1]
            file, nondebug = None, False
        elif line.startswith("File ") and line.endswith(":"):
            file, nondebug = line[5:-1], False
        elif line == "Non-debugging symbols:":
            file, nondebug = None, True
        elif not line:
            continue
        elif nondebug:
            symbol = _NONDEBUG.match(line)
            if symbol:
                result.nondebug.add(Symbol(kind, symbol.group(1), symbol.group(2)))
        elif file is not None:
            entry = _ENTRY.match(line)
            if entry:
                result.entries.add(Entry(kind, file, entry.group(1), entry.group(2)))
                result.raw_entries += 1
    for line in stderr.splitlines():
        line = line.strip()
        if line:
            result.complaints[masked(line, mask)] += 1
    return result


def masked(message: str, mask: str = "") -> str:
    """A complaint's text with the file's path (``mask``) and its numbers (offsets, lengths,
    indexes: merging rightly changes them) masked, as complaints are counted."""
    if mask:
        message = message.replace(mask, "FILE")
    return _NUMBER.sub("N", message)


def more_complaints(before: Counter[str], after: Counter[str]) -> list[tuple[str, int]]:
    """(text, how many more times) of each complaint ``after`` counts more often than ``before``."""
    return sorted((text, n - before.get(text, 0)) for text, n in after.items() if n > before.get(text, 0))


def listing(path: str | os.PathLike, name: str | None = None, gdb: str = "gdb", readnow: bool = False,
            threads: int = THREADS) -> Listing:
    """gdb's listings of ``path``, read from a copy named ``name`` (default: its own basename).

    With ``readnow``, gdb expands every unit at start, in order (``-readnow``):
    where several units hold an entity under one file and name, gdb prints the
    copy of the unit it expanded last, and lazily that order follows lookups.
    """
    # Every complaint, not the first 1000 of each kind: which ones come first depends on the
    # order gdb reads units in, so a cap makes different (equally true) complaints "new".
    done, copy = _gdb(path, name, gdb, ["-readnow"] if readnow else [], ["set complaints 1000000", *COMMANDS],
                      threads)
    return parse(done.stdout, done.stderr, mask=copy)


def expansion_order(path: str | os.PathLike, name: str | None = None, gdb: str = "gdb",
                    threads: int = THREADS) -> list[str]:
    """The units (their DW_AT_name) in the order gdb expanded them for its listings of ``path``,
    first expanded first: where several units hold an entity under one file and name, gdb lists
    the copy of the last (``maint info symtabs`` names them newest first)."""
    done, _ = _gdb(path, name, gdb, [], [*COMMANDS, "maint info symtabs"], threads)
    units: list[str] = []
    in_unit = False
    for line in done.stdout.splitlines():
        if line.startswith("  { ((struct compunit_symtab *)"):
            in_unit = True
        elif in_unit and line.startswith("    name "):
            units.append(line[len("    name "):])
            in_unit = False
    return units[::-1]


def _gdb(path: str | os.PathLike, name: str | None, gdb: str, options: list[str],
         commands: list[str], threads: int = THREADS) -> tuple[subprocess.CompletedProcess, str]:
    """``gdb -batch`` with ``commands`` on a copy of ``path`` named ``name`` (default: its own
    basename), quiet, in the C locale, indexing on ``threads`` worker threads: (the run, the
    copy's path, which its output names)."""
    if shutil.which(gdb) is None:
        raise FileNotFoundError(f"{gdb} is not installed")
    with tempfile.TemporaryDirectory(prefix="gdblist-") as tmp:
        copy = Path(tmp) / (name or Path(path).name)
        shutil.copyfile(path, copy)
        args = [gdb, "-batch", "-nx", *options]
        for command in (*QUIET, f"maint set worker-threads {threads}"):
            args += ["-iex", command]
        for command in commands:
            args += ["-ex", command]
        env = dict(os.environ, LC_ALL="C")
        # (stdin closed: gdb run from a background job of a shell would otherwise wait on the terminal)
        done = subprocess.run(args + [str(copy)], capture_output=True, text=True, errors="replace", env=env,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"gdb failed on {path}: {_failure(done.stderr)}")
    return done, str(copy)


def _failure(stderr: str) -> str:
    """The line that says why gdb stopped (not the backtrace after it)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "internal-error" in line or "Fatal signal" in line:
            return line
    return lines[-1] if lines else "no message"


def compare(before: Listing, after: Listing) -> Report:
    """What ``after`` lists differently from ``before`` (see the module docstring)."""
    entities_after = {(e.kind, e.text) for e in after.entries}
    lost = sorted({(e.kind, e.text) for e in before.entries} - entities_after)
    moved = sorted(after.entries - before.entries)
    lost_set = set(lost)
    dropped = sorted(e for e in before.entries - after.entries if (e.kind, e.text) not in lost_set)
    new_nondebug = sorted(after.nondebug - before.nondebug)
    return Report(moved, lost, dropped, new_nondebug, more_complaints(before.complaints, after.complaints),
                  len(before.entries), len(after.entries))


def compare_listings(input: str | os.PathLike, output: str | os.PathLike, gdb: str = "gdb",
                     readnow: bool = False, threads: int = THREADS) -> Report:
    """Run gdb on both files (side by side) and compare their listings, gdb indexing on
    ``threads`` worker threads."""
    with ThreadPoolExecutor(2) as pool:
        name = Path(input).name
        before, after = pool.map(lambda p: listing(p, name, gdb, readnow, threads), (input, output))
    return compare(before, after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m linkplugin.gdblist",
                                     description="Compare gdb's info functions/variables/types listings "
                                                 "of an input and its merged output.")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--examples", type=int, default=5, help="examples printed of each difference")
    parser.add_argument("--readnow", action="store_true", help="gdb -readnow: every unit expanded at start, in order")
    parser.add_argument("--threads", type=int, default=THREADS, metavar="N",
                        help=f"gdb's indexing worker threads (maint set worker-threads; default {THREADS}); "
                             "gdb's own default is the number of cores, and the listing depends on it")
    parser.add_argument("--order", action="store_true",
                        help="also print where the order gdb expanded the units in for its listings differs")
    args = parser.parse_args(argv)
    for path in (args.input, args.output):
        if not os.path.isfile(path):
            print(f"gdblist: {path}: no such file", file=sys.stderr)
            return 2
    try:
        report = compare_listings(args.input, args.output, readnow=args.readnow, threads=args.threads)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"gdblist: {error}", file=sys.stderr)
        return 2
    print(report.summary(args.examples))
    if args.order:
        try:
            with ThreadPoolExecutor(2) as threads:
                name = Path(args.input).name
                before, after = threads.map(lambda p: expansion_order(p, name, threads=args.threads),
                                            (args.input, args.output))
        except (FileNotFoundError, RuntimeError) as error:
            print(f"gdblist: {error}", file=sys.stderr)
            return 2
        moved = [(k, b, a) for k, (b, a) in enumerate(zip(before, after)) if a != b]
        print(f"units expanded: input {len(before)}, output {len(after)}; at a different place {len(moved)}")
        for k, b, a in moved[:args.examples]:
            print(f"  #{k}: input {b}, output {a}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
