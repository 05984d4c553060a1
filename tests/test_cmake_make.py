"""The README's CMake and Make recipes, built for real: the program is linked,
then optimized in place by the linkplugin command found on PATH."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import ROOT, need, run

SOURCES = ROOT / "examples" / "bazel" / "words"

# The README's snippets (section "In Bazel, CMake and Make") with this program's names.
CMAKE_LISTS = """
cmake_minimum_required(VERSION 3.18)
project(words CXX)
set(CMAKE_CXX_STANDARD 17)
find_program(LINKPLUGIN linkplugin REQUIRED)
add_executable(words main.cpp count.cpp)
target_compile_options(words PRIVATE -g -O2)
add_custom_command(TARGET words POST_BUILD
  COMMAND ${LINKPLUGIN} merge-types $<TARGET_FILE:words> -o $<TARGET_FILE:words> --compress zlib
  VERBATIM)
"""

MAKEFILE = """
CXXFLAGS = -g -O2 -std=c++17
.DELETE_ON_ERROR:

words: main.o count.o
\t$(CXX) $(LDFLAGS) -o $@ $^
\tlinkplugin merge-types $@ -o $@ --compress zlib
"""

TRANSCRIPT = ("ptype struct Count", "info functions most_frequent", "info types Count")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example sources, and `linkplugin` on PATH running this checkout."""
    need("g++", "gdb", "readelf")
    src = tmp_path / "src"
    shutil.copytree(SOURCES, src)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "linkplugin"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m linkplugin "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return src


def plain_link(objects: list[Path], out: Path) -> Path:
    """The same objects linked without linkplugin, to compare with."""
    assert len(objects) == 2, objects
    run("g++", "-o", out, *objects)
    return out


def listing(program: Path) -> str:
    # gdb's answers, without the line naming the file read.
    args = [a for command in TRANSCRIPT for a in ("-ex", command)]
    out = run("gdb", "-nx", "-batch", *args, program).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("Reading symbols"))


def check(program: Path, plain: Path) -> None:
    assert run(program, "a", "b", "a").stdout == "a 2\nb 1\n"
    info = [line for line in run("readelf", "-SW", program).stdout.splitlines() if " .debug_info " in line]
    assert info and info[0].split("]", 1)[1].split()[6] == "C", info
    shown = listing(plain)
    assert "int times;" in shown and listing(program) == shown


def test_cmake_post_build(project: Path, tmp_path: Path) -> None:
    need("cmake", "make")
    (project / "CMakeLists.txt").write_text(CMAKE_LISTS)
    build = tmp_path / "build"
    run("cmake", "-S", project, "-B", build, "-G", "Unix Makefiles")
    run("cmake", "--build", build)
    program = build / "words"
    check(program, plain_link(sorted(build.glob("CMakeFiles/words.dir/*.o")), tmp_path / "plain"))
    # Up to date: no relink, so linkplugin does not run on its own output.
    optimized = program.read_bytes()
    assert "linkplugin" not in run("cmake", "--build", build, "--verbose").stdout
    assert program.read_bytes() == optimized


def test_make_recipe(project: Path, tmp_path: Path) -> None:
    need("make")
    (project / "Makefile").write_text(MAKEFILE)
    run("make", cwd=project)
    check(project / "words", plain_link(sorted(project.glob("*.o")), tmp_path / "plain"))
    assert "linkplugin" not in run("make", cwd=project).stdout
