"""Does lldb read the program the same after merging? lldb's view of every function and type compared.

    python3 -m linkplugin.lldblist INPUT OUTPUT [--examples N]

gdb is the debugger the merge is made for (linkplugin.gdblist); lldb is the
other one C and C++ users run, with a DWARF reader of its own. Compared:

- *functions*: ``image lookup -v -r -F .``, lldb's record of every function
  with debug info, by address: its name, compile unit, declaration (file and
  line), type, line entry and every parameter and local variable (name, type,
  location, declaration). A record that differs, or an address lldb no longer
  finds in the debug info, is a difference. The DIE ids lldb prints are masked:
  merging rightly moves DIEs.
- *types*: ``type lookup NAME`` for every type gdb lists in the input (``info
  types .``; lldb has no command that lists them all). lldb prints one copy of
  a type per unit holding it, so the lines printed are compared as sets:
  merging rightly drops copies. The access labels (``private:``) are left out:
  lldb builds a class as it meets its members (a member function's
  definition adds it), so their order, and where a label falls, follows the
  order lldb read the functions in, and a set of lines cannot say which
  members a label covers anyway.
- lldb's warnings and errors, counted by their text with numbers, the file's
  path and the unit a warning says to report against masked (as gdblist does
  with gdb's complaints; a merged type is read from its canonical copy's unit).

Both files are read from copies under one basename in fresh directories.
Two ways a record can differ although the DWARF means the same are counted
apart (``lazy``), not as differences:

- lldb prints a DIE offset as if it were a value: the count of an array whose
  bound is a reference (a VLA), the operands of ``DW_OP_GNU_parameter_ref`` or
  ``DW_OP_implicit_pointer`` in a location it cannot decode, the base type of
  ``DW_OP_convert`` and the other typed operations (an offset in its unit);
- lldb names a typedef by its own name (``size_t``) until it has made the
  typedef's type, and by its qualified name (``std::size_t``) after
  (``Type::ResolveCompilerType`` clears the name): one copy of a typedef that
  many functions share is made sooner than each unit's own copy was.
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

from linkplugin import gdblist

_ID = re.compile(r"id = \{0x[0-9a-f]+\}")
# What lldb prints of a DIE offset: the count of an array whose bound is a reference (a VLA),
# and the undecoded bytes of a location whose operands name DIEs.
_OFFSET_TEXT = re.compile(r"\[\d+\]|<decoding error>[ 0-9a-f]*"
                          r"|(?<=DW_OP_)(?:GNU_)?(?:convert|reinterpret|deref_type|const_type|regval_type) 0x[0-9a-f]+")
# The unit a complaint names: lldb names the one it read the type from, and a merged type's one
# copy is in one unit (its canonical copy's) where each unit had its own.
_UNIT_NAMED = re.compile(r"(preprocessed output for ).*$")
# A type's name in a record, and the scopes that qualify a name in it (``std::``, ``a::b<>::``).
_TYPE = re.compile(r'type = "([^"]*)"')
_SCOPE = re.compile(r"(?:[A-Za-z_][\w]*(?:<[^\"]*?>)?::)+")
_RECORD = re.compile(r"[ \t]+(?=Address: )")
_ACCESS = ("public:", "protected:", "private:")
# Lines of lldb's own start-up, not of the file (Debian's lldb without python3-lldb).
_NOISE = ("Traceback (most recent call last):", 'File "<string>"', "ModuleNotFoundError:")


@dataclass
class View:
    functions: dict[str, list[str]] = field(default_factory=dict)  # by address: the record's lines
    types: dict[str, set[str]] = field(default_factory=dict)  # by name: the lines printed
    complaints: Counter[str] = field(default_factory=Counter)
    full: bool = True  # whole records of the functions (else their summaries: ``views``)


@dataclass
class Report:
    functions: int
    missing: list[str]                      # addresses lldb finds no function at any more
    differ: list[tuple[str, list[str], list[str]]]  # (address, input's lines, output's lines)
    lazy: int                               # records that differ only as the module docstring allows
    types: int
    types_differ: list[tuple[str, list[str], list[str]]]  # (name, lines lost, lines new)
    new_complaints: list[tuple[str, int]]
    full: bool = True  # the functions' whole records compared (else their summaries)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.differ or self.types_differ or self.new_complaints)

    def summary(self, examples: int = 5) -> str:
        lines = [f"functions{'' if self.full else ' (summaries: lldb crashed printing the input in full)'}: "
                 f"{self.functions}; missing {len(self.missing)}, read differently {len(self.differ)} "
                 f"(and {self.lazy} printed differently: DIE offsets, typedef names made sooner); type lookups: "
                 f"{self.types}, read differently "
                 f"{len(self.types_differ)}; new complaints {sum(n for _, n in self.new_complaints)}"]
        lines += [f"  missing: {a}" for a in self.missing[:examples]]
        for address, before, after in self.differ[:examples]:
            lines.append(f"  function {address}: input {before[:3]} output {after[:3]}")
        for name, lost, new in self.types_differ[:examples]:
            lines.append(f"  type {name}: lost {lost[:3]} new {new[:3]}")
        lines += [f"  new complaint: {text} (+{n})" for text, n in self.new_complaints[:examples]]
        return "\n".join(lines)


def _lldb(copy: Path, commands: list[str], lldb: str) -> str:
    """lldb -b's output of ``commands`` on ``copy`` (from a command file: the type names hold
    characters a shell or lldb's option parser would take)."""
    script = copy.parent / "commands.lldb"
    script.write_text("".join(c + "\n" for c in commands))
    done = subprocess.run([lldb, "-b", "--no-lldbinit", "-s", str(script), str(copy)], capture_output=True,
                          text=True, errors="replace", env=dict(os.environ, LC_ALL="C"), cwd=copy.parent,
                          stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = [line.strip() for line in done.stderr.splitlines() if line.strip() and not line.strip().startswith(_NOISE)]
        error = Crashed if done.returncode < 0 or done.returncode > 128 else RuntimeError  # (a signal)
        raise error(f"lldb failed on {copy.name} (exit status {done.returncode}): {said[0] if said else 'no message'}")
    return done.stdout + "\n" + done.stderr


def parse(text: str, mask: str) -> View:
    """lldb's printed records and messages as a View."""
    view = View()
    record: list[str] | None = None
    lines: set[str] | None = None
    # (the summaries of ``image lookup`` without -v run on: "Summary: ...   Address: ...")
    for raw in _RECORD.sub("\n", text).splitlines():
        line = raw.strip()
        if line.startswith(("warning:", "error:")):
            view.complaints[_UNIT_NAMED.sub(r"\1UNIT", gdblist.masked(line, mask))] += 1
            continue
        if not line or line.startswith(_NOISE):
            continue
        if line.startswith("(lldb) "):
            record = None
            command = line[len("(lldb) "):]
            lines = view.types.setdefault(command[len("type lookup "):], set()) \
                if command.startswith("type lookup ") else None
        elif line.startswith("Address: "):
            record = view.functions.setdefault(line, [])
        elif record is not None:
            if not line.startswith("Module: "):
                record.append(_ID.sub("id", line))
        elif lines is not None and line not in _ACCESS:
            lines.add(line)
    return view


def type_names(path: str | os.PathLike, gdb: str = "gdb") -> list[str]:
    """The types gdb lists for ``path`` (``info types .``), by the names lldb looks them up by:
    typedefs by their own name; none of an anonymous type."""
    names = set()
    for entry in gdblist.listing(path, gdb=gdb).entries:
        if entry.kind != "types":
            continue
        text = entry.text.rstrip(";")
        if text.startswith("typedef "):
            text = text.rsplit(" ", 1)[-1]
        if "(anonymous" in text or "{" in text or "(" in text:
            continue
        names.add(text)
    return sorted(names)


class Crashed(RuntimeError):
    """lldb died of a signal."""


def view(path: str | os.PathLike, name: str, names: list[str], lldb: str = "lldb", full: bool = True) -> View:
    """lldb's view of ``path``, read from a copy named ``name``: with ``full`` its whole record of
    each function, else the one-line summaries (``image lookup -r -F .``)."""
    if shutil.which(lldb) is None:
        raise FileNotFoundError(f"{lldb} is not installed")
    with tempfile.TemporaryDirectory(prefix="lldblist-") as tmp:
        copy = Path(tmp) / name
        shutil.copyfile(path, copy)
        # Two sessions, so that a crash in one leaves the other's answer (see ``views``).
        text = _lldb(copy, ["image lookup -v -r -F ." if full else "image lookup -r -F ."], lldb) + \
            _lldb(copy, [f"type lookup {n}" for n in names], lldb)
    got = parse(text, str(copy))
    got.full = full
    return got


def views(paths: list[str | os.PathLike], name: str, names: list[str], lldb: str = "lldb") -> list[View]:
    """``view`` of each file (two at a time), the first being the input: lldb 14 crashes printing
    some locations in its whole records (python3.11d's, the input's), and where it does so on the
    input every file gets the summaries instead. A crash on any other file is an error."""
    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(view, p, name, names, lldb) for p in paths]
        try:
            first = jobs[0].result()
        except Crashed:
            for job in jobs[1:]:
                job.cancel()
            for job in jobs[1:]:
                if not job.cancelled():
                    job.exception()  # (waited for; its answer is not wanted)
            return list(pool.map(lambda p: view(p, name, names, lldb, full=False), paths))
        return [first, *(job.result() for job in jobs[1:])]


def compare(before: View, after: View) -> Report:
    """What lldb reads differently in ``after`` than in ``before`` (see the module docstring)."""
    missing = sorted(set(before.functions) - set(after.functions))
    differ = []
    lazy = 0
    for a, lines in sorted(before.functions.items()):
        got = after.functions.get(a)
        if got is None or got == lines:
            continue
        if [_printed(x) for x in got] == [_printed(x) for x in lines]:
            lazy += 1
        else:
            differ.append((a, [x for x in lines if x not in got], [x for x in got if x not in lines]))
    types_differ = [(n, sorted(lines - after.types.get(n, set())), sorted(after.types.get(n, set()) - lines))
                    for n, lines in sorted(before.types.items()) if after.types.get(n, set()) != lines]
    return Report(len(before.functions), missing, differ, lazy, len(before.types), types_differ,
                  gdblist.more_complaints(before.complaints, after.complaints), before.full and after.full)


def _printed(line: str) -> str:
    """A record's line without what lldb prints differently of the same DWARF (the module
    docstring): DIE offsets, and the scopes of type names."""
    return _TYPE.sub(lambda m: 'type = "' + _SCOPE.sub("", m.group(1)) + '"', _OFFSET_TEXT.sub("#", line))


def compare_views(input: str | os.PathLike, output: str | os.PathLike, lldb: str = "lldb", gdb: str = "gdb"
                  ) -> Report:
    """Run lldb on both files (side by side) and compare what it reads."""
    before, after = views([input, output], Path(input).name, type_names(input, gdb), lldb)
    return compare(before, after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m linkplugin.lldblist",
                                     description="Compare lldb's view of every function and type of an input and "
                                                 "its merged output.")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--examples", type=int, default=5, help="examples printed of each difference")
    args = parser.parse_args(argv)
    for path in (args.input, args.output):
        if not os.path.isfile(path):
            print(f"lldblist: {path}: no such file", file=sys.stderr)
            return 2
    try:
        report = compare_views(args.input, args.output)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"lldblist: {error}", file=sys.stderr)
        return 2
    print(report.summary(args.examples))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
