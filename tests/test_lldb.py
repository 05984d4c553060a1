"""lldb reads the merged program as it reads the input: its record of every function (declaration,
type, parameters, locals) and every type gdb lists, compared by linkplugin.lldblist, and a session
on the running program (breakpoints, frames, variables, expressions) compared line by line.

gdb is the debugger the output is shaped for (tests/test_gdb_listings.py); lldb has a DWARF
reader of its own, and it is what many users of clang run. (It cannot read dwz's partial units:
after dwz it finds no debug info for 6,683 of libstdc++'s 8,216 functions; BENCHMARKS.md.)
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import linkplugin, need
from conftest_merge import C_FILES, have
from conftest_merge import build as build_example
from linkplugin.lldblist import compare_views
from test_gdb_listings import CPP_FILES as LISTING_CPP_FILES
from test_gdb_listings import DRIVER, VARIANTS, build

# What a user does in lldb with the example programs of tests/conftest_merge.py: stop in a
# function of each unit, walk the stack, print locals, arguments, globals and expressions.
SESSION_C = ["breakpoint set -n blend", "breakpoint set -n walk", "run", "bt", "frame variable", "p a * b",
             "continue", "frame variable", "p *n", "up", "frame variable", "p h", "p h.fl", "p/x h.arr",
             "target variable global_list", "type lookup struct holder", "type lookup enum color"]
SESSION_CPP = ["breakpoint set -n count_trees", "run", "bt", "frame variable", "p f", "p *f.first", "up",
               "frame variable", "p c", "p t1", "p bk", "breakpoint set -n shift", "continue", "frame variable",
               "p p", "finish", "type lookup geo::tree", "type lookup geo::box<int>", "type lookup geo::circle"]


def _session(prog: Path, commands: list[str]) -> str:
    args = ["lldb", "-b", "--no-lldbinit"]
    for command in commands:
        args += ["-o", command]
    out = subprocess.run(args + [str(prog)], capture_output=True, text=True, cwd=prog.parent, timeout=120).stdout
    # The process id and the program's path are the only things allowed to differ.
    return re.sub(r"[Pp]rocess \d+", "process N", out.replace(str(prog), "PROG"))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_lldb_reads_every_function_and_type_the_same(tmp_path, variant):
    """The programs of the gdb listing tests: several units sharing headers, static members,
    member functions declared in a header and defined in one unit, templates, using
    declarations (C: shared structs, enums, typedefs)."""
    cc, lang, dwarf, opt = variant
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("lldb", "gdb")
    files = C_FILES if lang == "c" else LISTING_CPP_FILES
    prog = build(tmp_path / "src", files, DRIVER[cc, lang], [f"-gdwarf-{dwarf}", opt])
    merged = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    report = compare_views(prog, merged)
    assert report.functions > 3 and report.types > 10
    assert report.ok, report.summary(examples=10)


@pytest.mark.parametrize("variant", [(cc, lang, dw, "-O2" if dw == 5 else "-O0") for cc in ("gcc", "clang")
                                     for lang in ("c", "c++") for dw in (4, 5)],
                         ids=lambda v: "-".join(map(str, v)))
def test_lldb_session_on_the_running_program(tmp_path, variant):
    cc, lang = variant[:2]
    if not have(cc):
        pytest.skip(f"{cc} missing")
    need("lldb")
    src = build_example(tmp_path, *variant)
    (tmp_path / "o").mkdir()
    (tmp_path / "m").mkdir()
    orig, merged = tmp_path / "o" / "prog", tmp_path / "m" / "prog"  # (paths of one length: same stack layout)
    shutil.copy(src, orig)
    linkplugin("merge-types", orig, "-o", merged, "-j", "2")
    commands = SESSION_C if lang == "c" else SESSION_CPP
    before, after = _session(orig, commands), _session(merged, commands)
    assert "stop reason = breakpoint 1.1" in before
    assert after == before


def test_comparison_sees_a_function_read_differently(tmp_path):
    """The comparison is not blind: a program whose one function has a local more reads
    differently."""
    need("lldb", "gdb")
    a = build(tmp_path / "a", C_FILES, "gcc", ["-gdwarf-5", "-O0"])
    other = dict(C_FILES, **{"main.c": C_FILES["main.c"].replace("{", "{ int spare = 0; (void)spare;", 1)})
    b = build(tmp_path / "b", other, "gcc", ["-gdwarf-5", "-O0"])
    assert compare_views(a, a).ok
    report = compare_views(a, b)
    assert not report.ok and (report.differ or report.missing)
