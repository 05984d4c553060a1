"""Valgrind reads the merged program as it reads the input: memcheck's reports, which name the
variable, the member and the declaring line of a bad byte from the DWARF types
(``--read-var-info=yes``), are the same line for line.

Valgrind has a DWARF reader of its own (it follows DW_FORM_ref_addr across units and dwz's
partial units); it is a consumer C and C++ teams run on exactly the ``-g`` builds the merge is for.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import linkplugin, need
from conftest_merge import have

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
    src = tmp_path / "src"
    src.mkdir()
    for name, text in (("shapes.h", HEADER), ("a.cpp", FILL), ("b.cpp", MAIN)):
        (src / name).write_text(text)
    (tmp_path / "o").mkdir()
    (tmp_path / "m").mkdir()
    orig, merged = tmp_path / "o" / "prog", tmp_path / "m" / "prog"  # (paths of one length)
    subprocess.run([cc, f"-gdwarf-{dwarf}", opt, "-o", str(orig), "a.cpp", "b.cpp"], cwd=src, check=True)
    result = linkplugin("merge-types", orig, "-o", merged, "-j", "2")
    assert result.returncode == 0
    before, after = _memcheck(orig), _memcheck(merged)
    if "I can't recover" not in before:
        # (gcc's and clang's DWARF 4; valgrind 3.19 cannot read clang's DWARF 5, input or output)
        assert 'inside local var "local"' in before and "declared at b.cpp:8" in before  # (gcc: "inside h.p[0]" too)
    assert after == before
