"""merge-types --odr: C++ types merged by qualified name (issue 11's optional ODR mode).

The program below defines one class in several units with different member sets (member
templates instantiated in some units only, an implicit copy constructor used in one), a class
with a key function (clang gives the other units a declaration only), a declaration-only class,
nested types with out-of-class members and static members. After --odr: llvm-dwarfdump --verify
finds no new error, readelf reads it, the program runs, gdb breaks in and prints the member
functions as before, the bytes are the same for any -j and for the compiled and pure paths,
and the output is smaller than without --odr. gdb's listings are compared too; entries may
move or be lost in this mode (opt-in), so the test prints the counts and checks only what
must hold (no new complaints, no new non-debugging symbols).
"""
from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, linkplugin, need, run
from linkplugin.compiled import PURE_ENV
from linkplugin.gdblist import compare_listings

SHAPE_H = r"""
#pragma once
namespace geo {
struct Shape {
  int id;
  static int count;
  explicit Shape(int i);
  int area() const;
  template <class T> T scaled(T f) const { return id * f; }
  struct Inner { int v; int get() const; static int made; };
  Inner inner;
};
class Base {                      // key function Base::name() in shapes.cpp
 public:
  virtual ~Base();
  virtual const char *name() const;
  int tag = 7;
};
class Holder;                     // defined in shapes.cpp only
Holder *make_holder(int n);
int holder_total(const Holder *h);
}
"""

SHAPES_CPP = r"""
#include "shape.h"
namespace geo {
int Shape::count = 0;
int Shape::Inner::made = 0;
Shape::Shape(int i) : id(i), inner{i} { ++count; ++Inner::made; }
int Shape::area() const { return id * id; }
int Shape::Inner::get() const { return v; }
Base::~Base() {}
const char *Base::name() const { return "base"; }
class Holder { public: Shape s; int n; int total() const; };
int Holder::total() const { return s.area() * n; }
Holder *make_holder(int n) { return new Holder{Shape(n), n}; }
int holder_total(const Holder *h) { return h->total(); }
}
int use_shapes(int x) { geo::Shape s(x); return s.scaled<int>(2) + s.area(); }
"""

SCALE_CPP = r"""
#include "shape.h"
struct Square : geo::Base { const char *name() const override { return "square"; } };
int use_scale(double x) {
  geo::Shape s((int)x);
  geo::Shape copy = s;
  Square q;
  return (int)copy.scaled<double>(1.5) + s.inner.get() + q.tag + (q.name()[0] == 's');
}
"""

HOLD_CPP = r"""
#include "shape.h"
geo::Holder *held;
geo::Shape *seen;
int use_hold(int n) { held = geo::make_holder(n); return geo::holder_total(held) + (seen ? seen->id : 0); }
"""

MAIN_CPP = r"""
#include "shape.h"
int use_shapes(int); int use_scale(double); int use_hold(int);
int main() { return use_shapes(3) + use_scale(2.0) + use_hold(2) == 15 + 5 + 7 + 1 + 8 ? 0 : 1; }
"""

FILES = {"shape.h": SHAPE_H, "shapes.cpp": SHAPES_CPP, "scale.cpp": SCALE_CPP, "hold.cpp": HOLD_CPP,
         "main.cpp": MAIN_CPP}
VARIANTS = [("g++", 4), ("g++", 5), ("clang++", 4), ("clang++", 5)]
# What a user asks gdb about the classes and their member functions.
GDB_COMMANDS = [
    "ptype geo::Shape::Inner", "ptype geo::Holder", "ptype geo::Base", "ptype held", "ptype seen",
    "break geo::Shape::area", "break geo::Shape::Inner::get", "break geo::Holder::total",
    "break geo::Base::~Base", "info line geo::Shape::Shape", "run", "p geo::Shape::count",
    "p geo::Shape::Inner::made", *["bt", "p *this", "continue"] * 4, "p *held", "p held->s.inner", "bt",
    "p *this", "continue",
]


def build(folder: Path, compiler: str, dwarf: int) -> Path:
    need(compiler)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (folder / name).write_text(text)
    sources = [f for f in FILES if f.endswith(".cpp")]
    run(compiler, f"-gdwarf-{dwarf}", "-O0", "-o", "prog", *sources, cwd=folder)
    return folder / "prog"


def debug_bytes(path: Path) -> int:
    """.debug_info + .debug_abbrev bytes, as readelf reports the section sizes."""
    total = 0
    for line in run("readelf", "-SW", path).stdout.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 6 and parts[1] in (".debug_info", ".debug_abbrev"):
            total += int(parts[5], 16)
    return total


def verify_errors(path: Path) -> int:
    result = run("llvm-dwarfdump", "--verify", path, check=False)
    return len(re.findall(r"^error:", result.stdout + result.stderr, re.M))


def gdb_transcript(path: Path) -> str:
    """gdb's answers to GDB_COMMANDS, addresses masked (a stack address depends on the file's path)."""
    args = ["gdb", "-batch", "-nx", "-iex", "set debuginfod enabled off"]
    for c in GDB_COMMANDS:
        args += ["-ex", c]
    result = subprocess.run([*args, str(path)], capture_output=True, text=True, cwd=path.parent)
    text = (result.stdout + result.stderr).replace(str(path), "FILE")
    return re.sub(r"0x[0-9a-f]+|process [0-9]+", "?", text)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v[0]}-dwarf{v[1]}")
def test_odr_output_is_read_as_before_and_smaller(tmp_path: Path, variant) -> None:
    compiler, dwarf = variant
    need("gdb", "llvm-dwarfdump", "readelf")
    prog = build(tmp_path / "src", compiler, dwarf)
    plain = tmp_path / "plain" / "prog"
    odr = tmp_path / "odr" / "prog"  # the same basename: gdb's messages name the file
    plain.parent.mkdir()
    odr.parent.mkdir()
    linkplugin("merge-types", prog, "-o", plain, "-j", "2")
    linkplugin("merge-types", prog, "-o", odr, "-j", "2", "--odr")
    assert debug_bytes(odr) < debug_bytes(plain)
    assert verify_errors(odr) <= verify_errors(prog)
    readelf = run("readelf", "--debug-dump=info", odr)
    assert not readelf.stderr.strip()
    assert run(odr).returncode == 0
    before, after = gdb_transcript(prog), gdb_transcript(odr)
    assert "geo::Base::~Base (this=" in after and "exited normally" in after
    # A class gdb printed from a unit's copy may now print from the canonical copy, which can
    # declare more members (static members, template instances of other units): only such
    # lines may be new, and nothing may go.
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    assert not [d for d in diff if d.startswith("- ")], "\n".join(diff)
    assert all(re.fullmatch(r"\+     \S.*;", d) for d in diff if d.startswith("+ ")), "\n".join(diff)
    report = compare_listings(prog, odr)
    print(f"{compiler} DWARF {dwarf} --odr: {report.summary(examples=5)}")
    assert not report.new_complaints and not report.new_nondebug, report.summary(examples=10)


@pytest.mark.parametrize("variant", [("g++", 5), ("clang++", 4)], ids=lambda v: f"{v[0]}-dwarf{v[1]}")
def test_odr_bytes_same_for_any_jobs_and_path(tmp_path: Path, variant) -> None:
    prog = build(tmp_path / "src", *variant)
    outputs = []
    for jobs, pure in [(1, False), (2, False), (3, False), (1, True), (2, True)]:
        out = tmp_path / f"out-{jobs}-{int(pure)}"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop(PURE_ENV, None)
        if pure:
            env[PURE_ENV] = "1"
        subprocess.run([sys.executable, "-m", "linkplugin", "merge-types", str(prog), "-o", str(out),
                        "-j", str(jobs), "--odr"], env=env, check=True, capture_output=True)
        outputs.append(out.read_bytes())
    assert all(o == outputs[0] for o in outputs[1:])
    # and again: the same bytes
    again = tmp_path / "again"
    linkplugin("merge-types", prog, "-o", again, "--odr")
    assert again.read_bytes() == outputs[0]


def test_odr_leaves_c_programs_alone(tmp_path: Path) -> None:
    """Only C++ units take part: a C program's output is that of the default mode."""
    need("gcc")
    src = tmp_path / "src"
    src.mkdir()
    (src / "p.h").write_text("struct point { int x, y; };\nint norm(struct point *p);\n")
    (src / "a.c").write_text('#include "p.h"\nint norm(struct point *p) { return p->x * p->x + p->y * p->y; }\n')
    (src / "main.c").write_text('#include "p.h"\nint main(void) { struct point p = {0, 0}; return norm(&p); }\n')
    run("gcc", "-g", "-o", "prog", "a.c", "main.c", cwd=src)
    linkplugin("merge-types", src / "prog", "-o", tmp_path / "plain")
    linkplugin("merge-types", src / "prog", "-o", tmp_path / "odr", "--odr")
    assert (tmp_path / "plain").read_bytes() == (tmp_path / "odr").read_bytes()


SCONSTRUCT = """
import linkplugin.scons
env = Environment(tools=['default', 'debuginfo'], toolpath=[linkplugin.scons.toolpath()],
                  CXXFLAGS=['-g', '-O0'], DEBUGINFO_JOBS=1,
                  DEBUGINFO_MERGE_ODR=ARGUMENTS.get('odr', 'no'))
prog = env.Program('prog', Glob('*.cpp'))
env.DebugMergeTypes('prog.merged', prog)
"""


def test_scons_setting_is_part_of_the_signature(tmp_path: Path) -> None:
    need("g++")
    prog = build(tmp_path / "p", "g++", 5)
    (prog.parent / "SConstruct").write_text(SCONSTRUCT)

    def scons(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=prog.parent,
                                capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert "DebugMergeTypes prog.merged" in scons()
    plain = tmp_path / "plain"
    plain.write_bytes((prog.parent / "prog.merged").read_bytes())
    assert "DebugMergeTypes" not in scons("odr=no")
    assert "DebugMergeTypes prog.merged" in scons("odr=yes")  # a new setting: built again
    assert debug_bytes(prog.parent / "prog.merged") < debug_bytes(plain)
    assert "DebugMergeTypes" not in scons("odr=yes")  # up to date
