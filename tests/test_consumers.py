"""Tools other than the debuggers read the merged program as they read the input.

- Valgrind's memcheck: its reports name the variable, the member and the declaring line of a bad
  byte from the DWARF types (``--read-var-info=yes``); they are the same line for line. Valgrind
  has a DWARF reader of its own, run on exactly the ``-g`` builds the merge is for.
- addr2line (binutils' and elfutils'): the function, file and line of an address and the frames
  inlined there (``-f -i``), which reach the inlined function's name through
  DW_AT_abstract_origin, now often a reference into another unit; the same for every address.
  (binutils' loses inlined frames of dwz's output: 2,708 of 27,838 lines differ on libstdc++;
  BENCHMARKS.md.)
- pahole: the layout of every struct and union.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import linkplugin, need
from conftest_merge import C_FILES, have
from test_gdb_listings import COUNTER_FILES
from test_gdb_listings import CPP_FILES as LISTING_CPP_FILES
from test_gdb_listings import build as build_listing

# Two units sharing a header of C++ types: uninitialised padding written from a member array
# of a local and of a static object, from a local struct, and a read past a heap block.
HEADER = r"""
#include <string>
#include <vector>
namespace geo {
struct pad { char c; long l; short s; };
struct holder { std::string name; pad p[2]; std::vector<int> v; };
int fill(holder &h);
}
"""
FILL = r"""
#include "shapes.h"
#include <unistd.h>
namespace geo {
int fill(holder &h) { h.p[0].c = 'a'; h.p[0].l = 1; h.p[1].c = 'b'; h.v.push_back(3);
                      return write(1, &h.p, sizeof h.p) > 0; }
}
"""
MAIN = r"""
#include "shapes.h"
#include <unistd.h>
#include <cstdio>
static geo::holder keep;
int main() {
  geo::holder h; h.name = "x";
  geo::pad local; local.c = 1;
  int r = geo::fill(h) + geo::fill(keep);
  r += write(1, &local, sizeof local) > 0;
  int *p = new int[3]; r += p[3]; delete[] p;
  std::printf("\n%d\n", r);
  return 0;
}
"""


def _two_unit_program(tmp_path: Path, cc: str, flags: list[str]) -> tuple[Path, Path]:
    """The program above built by ``cc`` and its merged copy, at paths of one length (valgrind
    names both; the stack layout is the same)."""
    src = tmp_path / "src"
    src.mkdir()
    for name, text in (("shapes.h", HEADER), ("a.cpp", FILL), ("b.cpp", MAIN)):
        (src / name).write_text(text)
    (tmp_path / "o").mkdir()
    (tmp_path / "m").mkdir()
    orig, merged = tmp_path / "o" / "prog", tmp_path / "m" / "prog"
    subprocess.run([cc, *flags, "-o", str(orig), "a.cpp", "b.cpp"], cwd=src, check=True)
    linkplugin("merge-types", orig, "-o", merged, "-j", "2")
    return orig, merged


def _memcheck(prog: Path) -> str:
    done = subprocess.run(["valgrind", "--read-var-info=yes", "--track-origins=yes", str(prog)],
                          capture_output=True, text=True, cwd=prog.parent, timeout=300)
    # The process id and the program's path are the only things allowed to differ; where valgrind
    # gives up on the DWARF (clang's DWARF 5, valgrind 3.19), it names offsets and sizes too.
    text = re.sub(r"(==|--)\d+(==|--)", "==N==", done.stderr.replace(str(prog), "PROG"))
    return re.sub(r"request for range \[\d+, \+\d+\) exceeds|valid image size of \d+", "N", text)


@pytest.mark.parametrize("variant", [("g++", 4, "-O0"), ("g++", 5, "-O0"), ("g++", 5, "-O2"), ("clang++", 4, "-O0"),
                                     ("clang++", 4, "-O2"), ("clang++", 5, "-O0")],
                         ids=lambda v: "-".join(map(str, v)))
def test_memcheck_names_the_same_variables(tmp_path, variant):
    cc, dwarf, opt = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("valgrind")
    orig, merged = _two_unit_program(tmp_path, cc, [f"-gdwarf-{dwarf}", opt])
    before, after = _memcheck(orig), _memcheck(merged)
    if "I can't recover" not in before:
        # (gcc's and clang's DWARF 4; valgrind 3.19 cannot read clang's DWARF 5, input or output)
        assert 'inside local var "local"' in before and "declared at b.cpp:8" in before  # (gcc: "inside h.p[0]" too)
    assert after == before


def _text_range(prog: Path) -> range:
    for line in subprocess.run(["readelf", "-SW", str(prog)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        if " .text " in line:
            fields = line.split("]", 1)[1].split()
            start = int(fields[2], 16)
            return range(start, start + int(fields[4], 16))
    raise AssertionError("no .text")


@pytest.mark.parametrize("tool", ["addr2line", "eu-addr2line"])
@pytest.mark.parametrize("variant", [("g++", 5, "-O2"), ("g++", 4, "-O3"), ("clang++", 5, "-O2"), ("clang++", 4, "-O3")],
                         ids=lambda v: "-".join(map(str, v)))
def test_addr2line_finds_the_same_frames(tmp_path, variant, tool):
    cc, dwarf, opt = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need(tool)
    orig, merged = _two_unit_program(tmp_path, cc, [f"-gdwarf-{dwarf}", opt])
    addresses = "".join(f"{a:#x}\n" for a in _text_range(orig))  # every byte of the code
    # (eu-addr2line says so, and exits 1, for the padding between clang's functions: compared too)
    before, after = ((done.returncode, done.stdout, done.stderr.replace(str(p), "PROG")) for p, done in
                     ((p, subprocess.run([tool, "-f", "-i", "-C", "-e", str(p)], input=addresses, capture_output=True,
                                         text=True)) for p in (orig, merged)))
    assert before[0] in (0, 1)
    assert "geo::fill(" in before[1]
    if tool == "addr2line":  # (elfutils 0.188 finds no line of clang's programs here: "??:0", input and output)
        assert "b.cpp:" in before[1] and len(before[1].splitlines()) > 2 * len(addresses.splitlines())  # (inlines)
    assert after == before


def _pahole_blocks(prog: Path) -> set[str]:
    """pahole's printed structs and unions (its layout of each: members, offsets, sizes, holes).
    pahole prints them in the order of the units it meets them in, and a struct once per unit
    that it does not take for a copy of one printed already; merging rightly changes both (a
    file with references between units, pahole 1.24 reads as one unit): the set of layouts is
    compared."""
    done = subprocess.run(["pahole", str(prog)], capture_output=True, text=True, check=True)
    blocks: set[str] = set()
    block: list[str] = []
    for line in done.stdout.splitlines():
        block.append(line)
        if line.startswith("}"):
            blocks.add("\n".join(block))
            block = []
    return blocks


@pytest.mark.parametrize("variant", [(cc, dw, opt) for cc in ("gcc", "clang") for dw in (4, 5) for opt in ("-O0", "-O2")],
                         ids=lambda v: "-".join(map(str, v)))
def test_pahole_lays_out_the_same_structs(tmp_path, variant):
    """pahole (dwarves), which the Linux kernel's build runs on vmlinux's DWARF to make its BTF:
    the C programs of the gdb listing tests (structs, unions, enums shared by several units)."""
    cc, dwarf, opt = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("pahole")
    prog = build_listing(tmp_path / "src", C_FILES, cc, [f"-gdwarf-{dwarf}", opt])
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    before = _pahole_blocks(prog)
    assert len(before) >= 3
    assert _pahole_blocks(merged) == before


# A unit without code (only the definitions of variables that a header declares) ahead of the
# units that use them: gcc gives each definition a DW_AT_specification naming the declaration,
# and gdb's order puts the canonical copy of that declaration in main's unit, the last.
FORWARD_FILES = {
    "common.h": "struct stats { int hits; long total; const char *name; };\n"
                "extern int shared_counter;\nextern struct stats shared_stats;\nint step_b(int); int step_c(int);\n",
    "a.c": '#include "common.h"\nint shared_counter = 3;\nstruct stats shared_stats = { 1, 2, "s" };\n',
    "b.c": '#include "common.h"\nint step_b(int x) { shared_stats.hits += x; return shared_counter + x; }\n',
    "c.c": '#include "common.h"\nint step_c(int x) { shared_stats.total += x; return shared_counter * x; }\n',
    "main.c": '#include <stdio.h>\n#include "common.h"\n'
              'int main(void) { shared_counter++; printf("%d %ld\\n", step_b(1) + step_c(2), shared_stats.total); '
              'return 0; }\n',
}


@pytest.mark.parametrize("variant", [("forward", cc, dw) for cc in ("gcc", "clang") for dw in (4, 5)] +
                         [(files, cc, 5) for files in ("listing", "counter") for cc in ("g++", "clang++")],
                         ids=lambda v: "-".join(map(str, v)))
def test_addr2line_finds_each_function_alone(tmp_path, variant):
    """binutils' addr2line asked for one address (a fresh process, as a crash report's
    symbolizer asks) names every function of the program as for the input. BFD follows a
    DW_AT_specification or DW_AT_abstract_origin into a unit it has not read by reading every
    unit up to it, and then never looks in those for the address: a reference into a later unit
    (a unit without code naming a declaration further on, or a C++ member function naming its
    class's canonical copy in main's unit) lost the file and line ("??:?") of every function in
    between (the C program of gcc: all three; clang's C++: 4 of 17 and 1 of 12; with binutils
    2.44, which reads every unit on its way, more). None points forward (table._backward)."""
    files, cc, dwarf = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("addr2line", "nm")
    sources = {"forward": FORWARD_FILES, "listing": LISTING_CPP_FILES, "counter": COUNTER_FILES}[files]
    flags = [f"-gdwarf-{dwarf}", "-O0"] if files == "forward" else [f"-gdwarf-{dwarf}", "-O2", "-std=c++17"]
    prog = build_listing(tmp_path / "src", sources, cc, flags)
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    functions = [line.split()[0] for line in
                 subprocess.run(["nm", "--defined-only", str(prog)], capture_output=True, text=True,
                                check=True).stdout.splitlines()
                 if len(line.split()) == 3 and line.split()[1] in "Tt"]
    assert len(functions) >= 3
    named = 0
    for address in functions:
        before, after = (subprocess.run(["addr2line", "-f", "-e", str(p), "0x" + address], capture_output=True,
                                        text=True, check=True).stdout for p in (prog, merged))
        assert after == before, address
        named += "?" not in before
    assert named >= 3
