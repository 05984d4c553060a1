"""Type merging on real programs: gdb sees the same thing, tools parse the output, bytes are stable."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest_merge import VARIANTS, cached_build, have, load_sections, merge_file
import linkplugin.merge
from linkplugin.merge import merge_sections

GDB_C = ["info types", "info functions", "info variables", "ptype struct node", "ptype struct holder",
         "ptype struct ping", "ptype struct flags", "ptype global_list", "ptype ha", "ptype blend", "ptype gping",
         "ptype sa", "ptype sb", "ptype enum color", "whatis ha.u", "break blend", "break walk", "run", "bt",
         "info args", "info locals", "p a * b", "continue", "info locals", "p *n", "up", "info locals", "p h",
         "p h.fl", "p/x h.arr", "ptype h"]
GDB_CPP = ["info types", "info functions geo", "info variables", "ptype geo::tree", "ptype geo::forest",
           "ptype geo::box<int>", "ptype geo::circle", "ptype geo::point3", "ptype geo::kind", "ptype geo::shape",
           "break count_trees", "run", "bt", "info locals", "p f", "p *f.first", "up", "info locals", "p c", "p t1",
           "p bk", "ptype bk", "break shift", "continue", "info args", "p p", "finish"]


def _gdb_args(prog: Path, commands: list[str]) -> list[str]:
    args = ["gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "set width 0"]
    for c in commands:
        args += ["-ex", c]
    return args + [str(prog)]


def _clean(prog: Path, text: str) -> str:
    # The process id and the program's path are the only things allowed to differ.
    return re.sub(r"process \d+", "process N", text.replace(str(prog), "PROG"))


def gdb_transcripts(progs: list[Path], commands: list[str]) -> list[str]:
    """gdb's output for each program, the sessions run side by side."""
    procs = [subprocess.Popen(_gdb_args(p, commands), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=p.parent) for p in progs]
    return [_clean(p, proc.communicate(timeout=120)[0]) for p, proc in zip(progs, procs)]


def _pair(tmp_path: Path, variant: tuple) -> tuple[Path, Path, object]:
    """The original program and its merged copy, at paths of the same length (same stack layout)."""
    src = cached_build(*variant)
    (tmp_path / "o").mkdir()
    (tmp_path / "m").mkdir()
    orig = tmp_path / "o" / "prog"
    merged = tmp_path / "m" / "prog"
    shutil.copy(src, orig)
    result = merge_file(orig, merged)
    return orig, merged, result


def _dwarfdump_errors(paths: list[Path]) -> list[int]:
    procs = [subprocess.Popen(["llvm-dwarfdump", "--verify", str(p)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for p in paths]
    return [len(re.findall(r"^error:", proc.communicate(timeout=120)[0], re.M)) for proc in procs]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_merged_program(tmp_path, variant):
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    orig, merged, result = _pair(tmp_path, variant)
    assert result.stats["duplicates_removed"] > 0
    assert len(result.replace[".debug_info"]) < len(load_sections(orig)[0][".debug_info"])
    # The program still runs and prints the same.
    run_o = subprocess.run([str(orig)], capture_output=True, text=True, timeout=30)
    run_m = subprocess.run([str(merged)], capture_output=True, text=True, timeout=30)
    assert run_m.returncode == 0 and run_m.stdout == run_o.stdout
    # readelf parses the whole output without complaint.
    rd = subprocess.run(["readelf", "-wi", str(merged)], capture_output=True, text=True, timeout=60)
    assert rd.returncode == 0 and "arning" not in rd.stderr
    # llvm-dwarfdump finds no new errors.
    if have("llvm-dwarfdump"):
        before, after = _dwarfdump_errors([orig, merged])
        assert after <= before
    if have("gdb"):
        before_gdb, after_gdb = gdb_transcripts([orig, merged], GDB_C if variant[1] == "c" else GDB_CPP)
        assert "Breakpoint 1," in before_gdb
        assert after_gdb == before_gdb


# Two units that name C types through the C++ headers' using-declarations (namespace std {
# using ::FILE; }), each holding its own copy of the types.
_USING_UNIT = """#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <cwchar>
#include <cstddef>
int %(other)s(int);
int %(name)s(int x) {
  std::FILE *f = nullptr; std::time_t t = 0; std::size_t s = 1; std::mbstate_t m{}; std::ptrdiff_t p = 2;
  std::div_t d = std::div(x, 2);
  return (int)(s + p + t) + d.quot + (f != nullptr) + (int)sizeof m;
}
"""
_USING_MAIN = """int first(int); int second(int);
int main(int argc, char **) { int a = first(argc); int b = second(argc); return a + b > 1000; }
"""
_USING_QUERIES = ["ptype std::FILE", "whatis std::time_t", "print sizeof(std::size_t)", "ptype std::mbstate_t",
                  "whatis (std::ptrdiff_t)1", "ptype std::div_t", "ptype std::lldiv_t"]


@pytest.mark.parametrize("variant", [("g++", 5, "-O0"), ("g++", 4, "-O2"), ("clang++", 4, "-O0"), ("clang++", 5, "-O2")],
                         ids=lambda v: "-".join(map(str, v)))
def test_using_declared_names_resolve_in_every_unit(tmp_path, variant):
    """gdb reads ``std::FILE`` as ``FILE`` looked up from the unit where the program stopped, and
    finds a typedef only in that unit's own scope: a typedef a using-declaration names stays in
    the unit (merged into another, `ptype std::FILE` failed in one of the two frames)."""
    cxx, dwarf, opt = variant
    if not have(cxx) or not have("gdb"):
        pytest.skip(f"{cxx} or gdb missing")
    sources = []
    for name, other in (("first", "second"), ("second", "first")):
        sources.append(tmp_path / f"{name}.cpp")
        sources[-1].write_text(_USING_UNIT % {"name": name, "other": other})
    sources.append(tmp_path / "main.cpp")
    sources[-1].write_text(_USING_MAIN)
    (tmp_path / "o").mkdir()
    (tmp_path / "m").mkdir()
    orig, merged = tmp_path / "o" / "prog", tmp_path / "m" / "prog"
    subprocess.run([cxx, f"-gdwarf-{dwarf}", opt, *map(str, sources), "-o", str(orig)], check=True, timeout=120)
    result = merge_file(orig, merged)
    assert result.stats["duplicates_removed"] > 0
    commands = ["break first", "break second", "run", *_USING_QUERIES, "continue", *_USING_QUERIES]
    before, after = gdb_transcripts([orig, merged], commands)
    assert "_IO_FILE" in before and "No symbol" not in before
    assert after == before
    # The pure-Python path pins the same roots: the same bytes.
    pure = tmp_path / "m" / "pure"
    subprocess.run([sys.executable, "-m", "linkplugin", "merge-types", str(orig), "-o", str(pure), "--quiet"],
                   env=dict(os.environ, LINKPLUGIN_PURE_PYTHON="1"), check=True, timeout=300)
    assert pure.read_bytes() == merged.read_bytes()


@pytest.mark.parametrize("variant", [("gcc", "c", 5, "-O2"), ("clang", "c++", 5, "-O0"), ("gcc", "c++", 4, "-O2")],
                         ids=lambda v: "-".join(map(str, v)))
@pytest.mark.parametrize("threads", [False, True], ids=["processes", "threads"])
def test_jobs_and_idempotence(variant, threads, monkeypatch):
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    # These programs are small: make the workers run anyway, on threads or on processes whatever
    # the kernels say (the bytes are the same).
    monkeypatch.setattr(linkplugin.merge, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(linkplugin.merge, "MIN_THREAD_PARALLEL_BYTES", 0)
    monkeypatch.setattr(linkplugin.merge, "MIN_THREAD_UNIT_BYTES", 0)
    monkeypatch.setattr(linkplugin.merge, "_kernels_release_gil", lambda: threads)
    secs, little, asize = load_sections(cached_build(*variant))
    results = [merge_sections(secs, little_endian=little, address_size=asize, jobs=j) for j in (1, 2, 3, 1)]
    for r in results[1:]:
        assert r.replace == results[0].replace and r.drop == results[0].drop
    again = dict(secs, **results[0].replace)
    for name in results[0].drop:
        again.pop(name)
    second = merge_sections(again, little_endian=little, address_size=asize, jobs=2)
    assert second.stats["duplicates_removed"] == 0
    for name, data in second.replace.items():
        assert data == again[name], name


@pytest.mark.parametrize("threads", [False, True], ids=["processes", "threads"])
def test_consume_gives_the_same_result_and_lets_go_of_debug_info(threads, monkeypatch):
    """merge_types_file hands its sections over (consume=True): the merge drops the old
    .debug_info once rewritten, so that the layout's memory can reuse it. Same result."""
    variant = ("gcc", "c++", 5, "-O2")
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    monkeypatch.setattr(linkplugin.merge, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(linkplugin.merge, "MIN_THREAD_PARALLEL_BYTES", 0)
    monkeypatch.setattr(linkplugin.merge, "MIN_THREAD_UNIT_BYTES", 0)
    monkeypatch.setattr(linkplugin.merge, "_kernels_release_gil", lambda: threads)
    secs, little, asize = load_sections(cached_build(*variant))
    kept = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=2)
    given = dict(secs)
    consumed = merge_sections(given, little_endian=little, address_size=asize, jobs=2, consume=True)
    assert ".debug_info" not in given and ".debug_abbrev" in given
    assert consumed.replace == kept.replace and consumed.drop == kept.drop and consumed.stats == kept.stats


_TYPED_OP = re.compile(r'(DW_OP_\w+(?: \w+)?) \(0x[0-9a-f]+\) ("[^"]*")')


def _typed_ops(path: Path) -> list[str]:
    """Every expression operand naming a base type, as 'operation "type name"', in file order."""
    proc = subprocess.run(["llvm-dwarfdump", "--debug-info", "--debug-loclists", "--debug-loc", str(path)],
                          capture_output=True, text=True, timeout=60)
    return [f"{m.group(1)} {m.group(2)}" for m in _TYPED_OP.finditer(proc.stdout)]


def _expression_targets(path: Path) -> list[tuple]:
    """What each DIE-naming expression operand (in .debug_info and the location lists) points to,
    in file order, read with our own decoder: (operation kind, tag, attributes of the target)."""
    from linkplugin.dwarf.read import die_attrs
    from linkplugin.dwarf.units import parse_units
    from linkplugin.merge.hash import UnitEnv, decode_with_abbrevs, location_operands
    secs, _, _ = load_sections(path)
    info = secs[".debug_info"]
    out = []
    cache: dict = {}
    for hdr in parse_units(info):
        ud = decode_with_abbrevs(info, secs[".debug_abbrev"], hdr, cache)
        _, ops = location_operands(secs, ud, UnitEnv(secs, ud, info))
        targets = [(kind, t) for _, _, _, kind, t in ud.xrefs]
        targets += [(kind, v + hdr.off if kind != "s" else v) for _, _, kind, v in ops]
        for kind, t in targets:
            d = ud.offs.index(t)
            attrs = {at: v for at, (form, v) in die_attrs(info, ud, d).items() if at not in (0x01, 0x3A, 0x3B)}
            out.append((kind, ud.abbrevs[ud.codes[d]].tag, sorted(attrs.items())))
    return out


@pytest.mark.parametrize("variant", [("gcc", "c", 5, "-O2"), ("gcc", "c", 4, "-O2")], ids=lambda v: "-".join(map(str, v)))
def test_typed_expressions_keep_their_types(tmp_path, variant):
    orig, merged, result = _pair(tmp_path, variant)
    before = _expression_targets(orig)
    assert len(before) >= 10
    assert _expression_targets(merged) == before
    if have("llvm-dwarfdump") and variant[2] == 5:  # version 14 does not decode the GNU operations
        ops = _typed_ops(orig)
        assert any("convert" in op for op in ops) and any("regval_type" in op for op in ops)
        assert _typed_ops(merged) == ops
