"""Shared helpers: compile real programs, run real tools, run our command."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

C_PROGRAM = {
    "shapes.h": """
struct point { double x, y; };
struct shape { const char *name; struct point corner[4]; unsigned flags : 3, kind : 5; };
double area(const struct shape *s);
""",
    "area.c": """
#include "shapes.h"
double area(const struct shape *s) {
    double w = s->corner[1].x - s->corner[0].x, h = s->corner[2].y - s->corner[0].y;
    return w * h;
}
""",
    "main.c": """
#include <stdio.h>
#include "shapes.h"
struct shape global_shape = {"square", {{0, 0}, {2, 0}, {2, 2}, {0, 2}}, 1, 2};
int main(void) {
    struct shape local = global_shape;
    double a = area(&local);
    printf("%s %.1f\\n", local.name, a);
    return a == 4.0 ? 0 : 1;
}
""",
}

CXX_PROGRAM = {
    "main.cpp": """
#include <iostream>
#include <map>
#include <string>
#include <vector>
template <typename T> struct Box { T value; Box *next; };
struct Account { std::string owner; std::vector<int> history; };
int total(const std::map<std::string, Account> &accounts) {
    int sum = 0;
    for (const auto &[name, account] : accounts)
        for (int h : account.history) sum += h;
    return sum;
}
Box<double> global_box{2.5, nullptr};
int main() {
    std::map<std::string, Account> accounts;
    accounts["ann"] = Account{"ann", {1, 2, 3}};
    accounts["bob"] = Account{"bob", {4}};
    Box<int> box{total(accounts), nullptr};
    std::cout << box.value << std::endl;
    return box.value == 10 ? 0 : 1;
}
""",
}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def need(*tools: str) -> None:
    for tool in tools:
        if not have(tool):
            pytest.skip(f"{tool} is not installed")


def run(*cmd: str | os.PathLike, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=check, capture_output=True, text=True, **kw)


def linkplugin(*args: str | os.PathLike, check: bool = True) -> subprocess.CompletedProcess:
    """Our command, as a user runs it."""
    return run(sys.executable, "-m", "linkplugin", *args, check=check, cwd=ROOT)


def build(folder: Path, sources: dict[str, str], compiler: str = "gcc",
          flags: tuple[str, ...] = ("-g", "-O2"), name: str = "prog", link: bool = True) -> Path:
    """Write ``sources`` into ``folder`` and compile them; returns the output."""
    need(compiler)
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in sources.items():
        (folder / file).write_text(text)
    units = [folder / f for f in sources if f.endswith((".c", ".cpp"))]
    out = folder / name
    if link:
        run(compiler, *flags, "-o", out, *units, cwd=folder)
    else:
        run(compiler, *flags, "-c", "-o", out, *units, cwd=folder)
    return out


def gdb(path: Path, *commands: str) -> str:
    """What gdb prints for ``commands`` on ``path``, with the path itself masked."""
    need("gdb")
    args = ["gdb", "-batch", "-nx"]
    for c in commands:
        args += ["-ex", c]
    result = run(*args, path)
    return (result.stdout + result.stderr).replace(str(path), "FILE")


def debug_sections(path: Path) -> dict[str, bytes]:
    """Plain contents of every .debug_* section, read by objcopy (not by us)."""
    plain = path.with_name(path.name + ".plain")
    run("objcopy", "--decompress-debug-sections", path, plain)
    from elftools.elf.elffile import ELFFile

    with open(plain, "rb") as f:
        elf = ELFFile(f)
        result = {s.name: s.data() for s in elf.iter_sections() if s.name.startswith(".debug_")}
    plain.unlink()
    return result


@pytest.fixture(scope="session")
def c_program(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("c"), C_PROGRAM)


@pytest.fixture(scope="session")
def cxx_program(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("cxx"), CXX_PROGRAM, compiler="g++")
