"""The shape of merge-types' output: one shared abbreviation table numbered by use, the smallest
unit-local reference forms, DW_AT_decl_file given to DIEs whose specification moved, --stats by
tag. Checked with readelf and llvm-dwarfdump on programs compiled here."""
from __future__ import annotations

import re
import shutil

import pytest

from conftest import linkplugin, need, run
from conftest_merge import cached_build, have, load_sections
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.abbrev import parse_abbrev_table
from linkplugin.dwarf.units import parse_units
from linkplugin.merge.hash import decode_with_abbrevs

CXX_VARIANTS = [(cc, "c++", dw, opt) for cc in ("gcc", "clang") for dw in (4, 5) for opt in ("-O0", "-O2")]


def _merged(tmp_path, variant):
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    src = cached_build(*variant)
    out = tmp_path / "merged"
    linkplugin("merge-types", src, "-o", out)
    return src, out


@pytest.mark.parametrize("variant", CXX_VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_one_abbreviation_table_most_used_first(tmp_path, variant):
    _, out = _merged(tmp_path, variant)
    secs, _, _ = load_sections(out)
    info, abbrev = secs[".debug_info"], secs[".debug_abbrev"]
    units = parse_units(info)
    assert len(units) > 1
    assert {u.abbrev_off for u in units} == {0}  # every unit reads the one table
    table, end = parse_abbrev_table(abbrev, 0)
    assert end == len(abbrev)
    uses = dict.fromkeys(table, 0)
    for u in units:
        for code in decode_with_abbrevs(info, abbrev, u, {}).codes:
            uses[code] += 1
    counts = [uses[c] for c in sorted(table)]
    assert counts == sorted(counts, reverse=True), "codes are numbered by use, most used first"
    assert min(counts) > 0


@pytest.mark.parametrize("variant", CXX_VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_smallest_local_reference_forms(tmp_path, variant):
    src, out = _merged(tmp_path, variant)
    secs, _, _ = load_sections(out)
    forms = {form for ab in parse_abbrev_table(secs[".debug_abbrev"], 0)[0].values() for _, form, _ in ab.specs}
    # The test program's units are far below 64 KiB: no unit-local reference needs 4 bytes.
    assert F.DW_FORM_ref4 not in forms
    assert forms & {F.DW_FORM_ref1, F.DW_FORM_ref2}
    assert len(secs[".debug_info"]) + len(secs[".debug_abbrev"]) < sum(
        len(load_sections(src)[0][n]) for n in (".debug_info", ".debug_abbrev"))
    if shutil.which("readelf"):
        assert "Warning" not in run("readelf", "--debug-dump=info", out).stderr
    dump = shutil.which("llvm-dwarfdump") or shutil.which("llvm-dwarfdump-16")
    if dump:
        def errors(path) -> int:
            text = run(dump, "--verify", path, check=False).stdout
            m = re.search(r"Errors detected:\s*(\d+)", text) or re.search(r"found (\d+) errors", text)
            return int(m.group(1)) if m else 0
        assert errors(out) <= errors(src)


def test_moved_specification_gets_its_own_decl_file(tmp_path):
    """An out-of-line member function whose in-class declaration merges into another unit names
    its file itself, in its own unit's numbering (gdb reads a followed DW_AT_decl_file with the
    file table of the unit it started from)."""
    need("g++", "readelf")
    (tmp_path / "s.h").write_text("struct S { int f(); int g(); static int n; };\n")
    (tmp_path / "a.cpp").write_text('#include <cstdio>\n#include "s.h"\nint S::f() { return n; }\n')
    (tmp_path / "b.cpp").write_text('#include <vector>\n#include "s.h"\nint S::n = 1;\nint S::g() { return 2; }\n'
                                    "int main() { S s; return s.f() + s.g(); }\n")
    prog = tmp_path / "prog"
    run("g++", "-g", "-O0", "-o", prog, tmp_path / "a.cpp", tmp_path / "b.cpp", cwd=tmp_path)
    out = tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", out)
    text = run("readelf", "--debug-dump=info", out).stdout
    # The DIEs of the second unit that point at a specification in the first one.
    units = text.split("Compilation Unit @")[1:]
    assert len(units) == 2
    specs = re.findall(r"DW_TAG_(?:subprogram|variable)\)\n((?:\s+<[0-9a-f]+>\s+DW_AT_.*\n)+)", units[1])
    moved = [s for s in specs if "DW_AT_specification" in s]
    assert moved, "the second unit refers to the first one's declarations"
    for attrs in moved:
        assert "DW_AT_decl_file" in attrs
    need("gdb")
    from linkplugin.gdblist import compare_listings
    report = compare_listings(prog, out)
    assert report.ok, report.summary(examples=10)


def test_stats_prints_dies_by_tag(tmp_path):
    src = cached_build("gcc", "c++", 5, "-O0")
    got = linkplugin("merge-types", src, "-o", tmp_path / "merged", "--stats").stdout
    rows = dict(re.findall(r"^(DW_TAG_\w+)\s+(\d+\s+\d+)$", got, re.M))
    assert "DW_TAG_compile_unit" in rows and "DW_TAG_structure_type" in rows
    # (the structs stay: their member functions, defined in units before main's, name them by
    # DW_AT_specification, which points to no later unit: table._followed_rows)
    before, after = map(int, rows["DW_TAG_member"].split())
    assert after < before


def _forms_of(path, attribute: int) -> set[int]:
    secs, _, _ = load_sections(path)
    tables = {u.abbrev_off for u in parse_units(secs[".debug_info"])}
    return {form for off in tables for ab in parse_abbrev_table(secs[".debug_abbrev"], off)[0].values()
            for at, form, _ in ab.specs if at == attribute}


@pytest.mark.parametrize("variant", CXX_VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_high_pc_as_udata(tmp_path, variant):
    """DW_AT_high_pc, the code's length from DW_AT_low_pc (8 bytes from gcc, 4 from clang), is
    written as DW_FORM_udata: 1 or 2 bytes for most functions and blocks; so is gcc's
    DW_AT_GNU_entry_view (2 bytes, where it is). Every range reads the same: verify compares the
    values, test_merged_program's gdb sessions stop, go up, print the backtrace and finish in
    the merged program, and llvm-dwarfdump --verify (which checks that each block's range lies
    within its function's) finds no error in clang's output (in g++'s it takes minutes)."""
    src, out = _merged(tmp_path, variant)
    assert _forms_of(src, F.DW_AT_high_pc) & {F.DW_FORM_data4, F.DW_FORM_data8}
    assert _forms_of(out, F.DW_AT_high_pc) == {F.DW_FORM_udata}
    views = _forms_of(src, F.DW_AT_GNU_entry_view)
    assert _forms_of(out, F.DW_AT_GNU_entry_view) == (views - {F.DW_FORM_data2}) | (
        {F.DW_FORM_udata} if F.DW_FORM_data2 in views else set())
    linkplugin("verify", src, out)
    if shutil.which("readelf"):
        assert "Warning" not in run("readelf", "--debug-dump=info", out).stderr
    dump = shutil.which("llvm-dwarfdump-16") or shutil.which("llvm-dwarfdump")
    if dump and variant[0] == "clang":
        assert "No errors." in run(dump, "--verify", out, check=False).stdout


@pytest.mark.parametrize("dwarf", [4, 5])
def test_large_units_use_ref_udata(tmp_path, dwarf):
    """A unit of 64 KiB and more writes its unit-local references as DW_FORM_ref_udata, each in
    the fewest bytes of its target's offset, as dwz does (rather than ref4); readelf and
    our verify read every reference back (llvm-dwarfdump's --verify takes minutes on g++'s C++:
    test_large_units_read_by_llvm_dwarfdump_and_gdb runs it on clang's), gdb lists the same
    program (test_gdb_listings), and the pure loop writes the same bytes (test_compiled_core)."""
    need("g++")
    from test_gdb_listings import CPP_FILES, build
    src = build(tmp_path / "src", CPP_FILES, "g++", [f"-gdwarf-{dwarf}", "-O2"])
    before, _, _ = load_sections(src)
    assert max(u.end - u.off for u in parse_units(before[".debug_info"])) >= 1 << 16
    out = tmp_path / "merged"
    linkplugin("merge-types", src, "-o", out)
    secs, _, _ = load_sections(out)
    forms = {form for ab in parse_abbrev_table(secs[".debug_abbrev"], 0)[0].values() for _, form, _ in ab.specs}
    assert F.DW_FORM_ref_udata in forms and F.DW_FORM_ref4 not in forms
    # every reference reads back: to a DIE of its unit, the same DIEs as the input's (verify)
    linkplugin("verify", src, out)
    if shutil.which("readelf"):
        assert "Warning" not in run("readelf", "--debug-dump=info", out).stderr


# A unit of 64 KiB and more (b.cc: 68-70 KB at -O0) that drops its copies of the header's types.
_SHRINKING_UNIT = {
    "hdr.h": """#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>
struct Registry {
  std::map<std::string, std::vector<std::shared_ptr<int>>> items;
  std::function<int(int)> hook;
};
int fill(Registry &r, const std::string &key);
""",
    "a.cc": """#include "hdr.h"
int main() {
  Registry r;
  std::ostringstream os;
  os << fill(r, "a") << r.items.size();
  return os.str().size() > 100;
}
""",
    "b.cc": """#include "hdr.h"
int fill(Registry &r, const std::string &key) {
  std::ostringstream os;
  r.items[key].push_back(std::make_shared<int>(1));
  os << r.items.size() << key;
  return int(os.str().size());
}
""",
}


@pytest.mark.parametrize("dwarf", [4, 5])
def test_unit_that_drops_under_64k_uses_ref2(tmp_path, dwarf):
    """A unit of 64 KiB or more whose dropped copies bring it under 64 KiB writes its
    unit-local references as DW_FORM_ref2, as a unit that was that small from the start (2
    bytes a reference, where ref_udata takes 3 for every target past 16 KiB); every reference
    reads back (verify, readelf, llvm-dwarfdump --verify), gdb lists the same program, and it
    runs. (clang's units of this program stay under 64 KiB.)"""
    need("g++", "gdb")
    from test_gdb_listings import build
    src = build(tmp_path / "src", _SHRINKING_UNIT, "g++", [f"-gdwarf-{dwarf}", "-O0"])
    out = tmp_path / "merged"
    linkplugin("merge-types", src, "-o", out)
    before, _, _ = load_sections(src)
    secs, _, _ = load_sections(out)
    info, abbrev = secs[".debug_info"], secs[".debug_abbrev"]
    table = parse_abbrev_table(abbrev, 0)[0]
    sizes = zip(parse_units(before[".debug_info"]), parse_units(info), strict=True)
    shrunk = [u for old, u in sizes if old.end - old.off >= 1 << 16 > u.end - u.off]
    assert shrunk, "the test program has no unit that drops under 64 KiB"
    for u in shrunk:
        forms = {form for code in set(decode_with_abbrevs(info, abbrev, u, {}).codes)
                 for _, form, _ in table[code].specs}
        assert F.DW_FORM_ref2 in forms
        assert not forms & {F.DW_FORM_ref_udata, F.DW_FORM_ref4, F.DW_FORM_ref8}
    linkplugin("verify", src, out)
    if shutil.which("readelf"):
        assert "Warning" not in run("readelf", "--debug-dump=info", out).stderr
    _read_alike(src, out)


def _read_alike(src, out) -> None:
    """llvm-dwarfdump --verify finds no error in ``out``, gdb lists it as ``src``, and it runs the same."""
    from linkplugin.gdblist import compare_listings
    dump = shutil.which("llvm-dwarfdump-16") or shutil.which("llvm-dwarfdump")
    if dump:
        assert "No errors." in run(dump, "--verify", out, check=False).stdout
    report = compare_listings(src, out)
    assert report.ok, report.summary(examples=10)
    assert run(out).stdout == run(src).stdout


@pytest.mark.parametrize("dwarf", [4, 5])
def test_large_units_read_by_llvm_dwarfdump_and_gdb(tmp_path, dwarf):
    """The ref_udata units pass llvm-dwarfdump --verify (fast on clang's output), gdb lists the
    same program, and it still runs."""
    need("clang++", "gdb")
    from fuzzlib import BIG_CPP
    from test_gdb_listings import build
    src = build(tmp_path / "src", BIG_CPP, "clang++", [f"-gdwarf-{dwarf}", "-O2", "-fstandalone-debug"])
    out = tmp_path / "merged"
    linkplugin("merge-types", src, "-o", out)
    assert "DW_FORM_ref_udata" in run("readelf", "--debug-dump=abbrev", out).stdout
    _read_alike(src, out)


def _implicit_constants(abbrev: bytes) -> int:
    """Specs of the table at 0 that are implicit constants of rewrite._AS_DATA's attributes."""
    from linkplugin.merge.rewrite import _AS_DATA

    return sum(1 for ab in parse_abbrev_table(abbrev, 0)[0].values() for at, form, _ in ab.specs
               if form == F.DW_FORM_implicit_const and at in _AS_DATA)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_rare_implicit_constants_written_as_data(tmp_path, cc, monkeypatch):
    """gcc's DWARF 5 gives a unit's abbreviation an implicit constant (DW_AT_decl_file of the
    unit's main file, a column) where all its DIEs share the value, so each unit brings its own
    variants of the same abbreviation into the one shared table, most used by a few DIEs. Those
    DIEs hold the value instead (DW_FORM_data1/data2, in place) where that takes fewer bytes than
    the entry (rewrite._as_data): fewer entries, smaller output, every entity reads the same
    (verify: the values, not their forms), readelf reads it without a warning. Compiled, pure and
    -j2 give the same bytes (test_compiled_core.test_merge_same_bytes_compiled_and_pure); gdb's
    listings, test_gdb_listings. clang's DWARF 5 has no implicit constants: nothing changes."""
    import linkplugin.merge.rewrite as rewrite
    from linkplugin.merge import merge_sections

    if not have(cc):
        pytest.skip(f"{cc} missing")
    src = cached_build(cc, "c++", 5, "-O2")
    secs, little, asize = load_sections(src)
    made = []
    as_data = rewrite._as_data
    monkeypatch.setattr(rewrite, "_as_data", lambda total: made.append(as_data(total)) or made[-1])
    now = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    monkeypatch.setattr(rewrite, "_as_data", lambda total: {})
    before = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    size = {r: sum(len(x.replace[n]) for n in (".debug_info", ".debug_abbrev")) for r, x in (("now", now), ("before", before))}
    if cc == "clang":
        assert made == [{}] and size["now"] == size["before"]
        return
    assert made and made[0], "the program's units bring rare variants of their abbreviations"
    for entry, (data, widths, _) in made[0].items():
        assert any(widths) and F.DW_FORM_implicit_const in entry and len(data) < len(entry) + 2
    assert _implicit_constants(now.replace[".debug_abbrev"]) < _implicit_constants(before.replace[".debug_abbrev"])
    assert size["now"] < size["before"]
    out = tmp_path / "merged"
    linkplugin("merge-types", src, "-o", out)
    assert load_sections(out)[0][".debug_info"] == now.replace[".debug_info"]
    linkplugin("verify", src, out)
    if shutil.which("readelf"):
        assert "Warning" not in run("readelf", "--debug-dump=info,abbrev", out).stderr


@pytest.mark.parametrize("path", ["draft", "copy"])
def test_unit_that_outgrows_its_width_is_copied_as_it_is(tmp_path, monkeypatch, path):
    """A unit whose DIEs, holding implicit constants as data, would no longer fit the local
    reference width its first pass chose (which leaves a byte a DIE for codes growing, so this
    is not expected) is copied as it is, with its own table, whether its second pass starts from
    its draft or copies it again: the merge goes on and every entity reads the same."""
    import linkplugin.merge.rewrite as rewrite
    from linkplugin.api import merge_types_file
    from linkplugin.merge import fastrewrite

    if not have("gcc"):
        pytest.skip("gcc missing")
    src = cached_build("gcc", "c++", 5, "-O2")
    grew = []
    if path == "draft":
        recode = fastrewrite.recode

        def outgrown(*a):
            got = recode(*a)
            if a[8] and any(k in a[8] for k in a[2]) and not grew:  # (the draft writes implicit constants)
                grew.append(1)
                return (fastrewrite.OVERFLOW, None) + got[2:]
            return got
        monkeypatch.setattr(fastrewrite, "recode", outgrown)
    else:
        real = rewrite._rewrite_any

        def outgrown(secs, ud, rem, width, codes):  # type: ignore[misc]
            if codes is not None and not grew:
                grew.append(1)
                raise rewrite._Grew()
            return real(secs, ud, rem, width, codes)
        monkeypatch.setattr(rewrite, "_rewrite_any", outgrown)
        monkeypatch.setattr(rewrite, "_recoded", lambda draft, codes, hdr: None)  # (no unit takes its draft)
    out = tmp_path / "merged"
    merge_types_file(src, out, jobs=1)
    assert grew
    units = parse_units(load_sections(out)[0][".debug_info"])
    assert len({u.abbrev_off for u in units}) == 2  # the shared table, and that unit's own
    linkplugin("verify", src, out)


def test_draft_the_kernel_cannot_walk_is_copied_to_the_same_bytes(monkeypatch):
    """A draft whose DIEs that hold implicit constants as data have a form recode does not walk
    (status PURE) is copied again from its unit: the same bytes."""
    from linkplugin.merge import fastrewrite, merge_sections

    if not have("gcc"):
        pytest.skip("gcc missing")
    secs, little, asize = load_sections(cached_build("gcc", "c++", 5, "-O2"))
    want = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    recode = fastrewrite.recode
    refused = []

    def unwalkable(*a):
        got = recode(*a)
        if a[8] and any(k in a[8] for k in a[2]):  # (the draft writes implicit constants)
            refused.append(1)
            return (fastrewrite.PURE, None) + got[2:]
        return got
    monkeypatch.setattr(fastrewrite, "recode", unwalkable)
    got = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    assert refused
    assert got.replace == want.replace and got.stats == want.stats
