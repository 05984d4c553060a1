"""The compiled core (Cython kernels) and the pure-Python engine give the same bytes.

Each kernel has a pure-Python twin; ``LINKPLUGIN_PURE_PYTHON=1`` runs the twins. These tests run
both on programs compiled here (gcc and clang, C and C++, DWARF 4 and 5, -O0 and -O2) and on the
merged output of one of them, and check the one-line notice when the core is missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from array import array
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from conftest_merge import VARIANTS, cached_build, have
from linkplugin.compiled import PURE_ENV
from linkplugin.dwarf import read
from linkplugin.dwarf.abbrev import parse_abbrev_table
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.units import parse_units

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ("linkplugin.dwarf._scan", "linkplugin.dwarf._parse", "linkplugin.dwarf._loclists",
           "linkplugin.merge._hashcore", "linkplugin.merge._rewritecore", "linkplugin.merge._tablecore",
           "linkplugin._libc")


def _built() -> bool:
    try:
        for name in KERNELS:
            __import__(name)
    except ImportError:
        return False
    return True


# .ci/run checks that the install built the core, so these only skip on a machine without it.
needs_core = pytest.mark.skipif(not _built(), reason="compiled core not built (pip install -e . builds it)")


def _merge(src: Path, dst: Path, jobs: int, pure: bool, extra: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop(PURE_ENV, None)
    if pure:
        env[PURE_ENV] = "1"
    code = (extra + "import sys; from linkplugin.cli import main; "
            f"sys.exit(main(['merge-types', {str(src)!r}, '-o', {str(dst)!r}, '-j', '{jobs}']))")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def _info_abbrev(variant: tuple) -> tuple[bytes, bytes]:
    """.debug_info and .debug_abbrev of a test program (the test skips without its compiler)."""
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    with open(cached_build(*variant), "rb") as f:
        elf = ELFFile(f)
        return elf.get_section_by_name(".debug_info").data(), elf.get_section_by_name(".debug_abbrev").data()


@needs_core
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_decoder_same_as_pure(variant) -> None:
    info, abbrev = _info_abbrev(variant)
    scan = read._scan
    try:
        for hdr in parse_units(info):
            table, _ = parse_abbrev_table(abbrev, hdr.abbrev_off)
            read._scan = scan
            fast = read.decode_unit(info, hdr, table)
            read._scan = None
            pure = read.decode_unit(info, hdr, table)
            assert (fast.offs, fast.codes, fast.parent, fast.ends) == (pure.offs, pure.codes, pure.parent, pure.ends)
            for name in ("ref_pos", "ref_die", "ref_form", "ref_at", "ref_target"):
                assert np.array_equal(getattr(fast, name), getattr(pure, name)), name
            assert fast.xrefs == pure.xrefs and [tuple(x) for x in np.asarray(fast.locs).tolist()] == pure.locs
    finally:
        read._scan = scan


@needs_core
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_die_values_same_as_pure(variant) -> None:
    """The compiled reader of one DIE's attributes (``_parse.die_values``, behind
    ``read.die_attrs``) gives decode_attrs's values on every DIE it takes, and takes every unit
    DIE; on truncated bytes it declines."""
    from linkplugin.dwarf.leb import read_uleb

    info, abbrev = _info_abbrev(variant)
    taken = 0
    for hdr in parse_units(info):
        table, _ = parse_abbrev_table(abbrev, hdr.abbrev_off)
        ud = read.decode_unit(info, hdr, table)
        for i in range(len(ud)):
            p, code = ud.die(i)
            _, p = read_uleb(info, p)
            specs = table[code].specs
            got = read._parse.die_values(info, p, specs, hdr.version, hdr.offset_size, hdr.addr_size, hdr.off)
            attrs, end = read.decode_attrs(info, p, specs, hdr)
            if got is not None:
                assert got == {at: (form, value) for at, form, value, _, _ in attrs}, (hdr.off, i)
                taken += 1
                assert read._parse.die_values(info[:end - 1], p, specs, hdr.version, hdr.offset_size,
                                              hdr.addr_size, hdr.off) is None or end == p
            elif i == 0:
                pytest.fail(f"the unit DIE at 0x{hdr.off:x} was declined")
    assert taken


@needs_core
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_file_names_same_as_pure(variant) -> None:
    """The compiled reading of a unit's file names (``dwarf/_lines.pxd``: ``_parse.file_names``,
    and the hash kernel's, without the GIL) gives the pure parser's paths on every unit, clang's
    DWARF 5 MD5 columns included, and declines where the table is cut (the pure parser then
    says what is wrong)."""
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    from linkplugin.dwarf import forms as F, line as line_mod
    from linkplugin.merge.hash import UnitEnv

    with open(cached_build(*variant), "rb") as f:
        elf = ELFFile(f)
        secs = {s.name: s.data() for s in elf.iter_sections() if s.name.startswith(".debug")}
    info, line = secs[".debug_info"], secs[".debug_line"]
    strs, line_strs = secs.get(".debug_str", b""), secs.get(".debug_line_str", b"")
    for hdr in parse_units(info):
        ud = read.decode_unit(info, hdr, parse_abbrev_table(secs[".debug_abbrev"], hdr.abbrev_off)[0])
        env = UnitEnv(secs, ud, info)
        off = env.top[F.DW_AT_stmt_list][1]
        cd = env.top.get(F.DW_AT_comp_dir)
        comp = env.string(*cd) if cd else b""
        want = line_mod._file_names(line, off, strs, line_strs, comp)
        assert read._parse.file_names(line, off, strs, line_strs, comp) == want
        for cut in (off + 3, off + 20):
            assert read._parse.file_names(line[:cut], off, strs, line_strs, comp) is None


@needs_core
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_tables_same_as_pure(variant) -> None:
    """The compiled parsers of abbreviation tables and line-table file names, the scanner's and
    hash kernel's per-code tables made in C, and the kernel's expansion key equal their
    pure-Python references."""
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    from linkplugin.dwarf import abbrev as abbrev_mod, line
    from linkplugin.merge import fasthash
    from linkplugin.merge.expansion import expansion_key
    from linkplugin.merge.hash import UnitEnv, _verbatim_reason
    from linkplugin.merge.tokens import TOP_END

    def per_code(t: fasthash.Tables) -> dict:
        t = t._replace(prog=np.asarray(t.prog), start=np.asarray(t.start), head_off=np.asarray(t.head_off),
                       flags=np.asarray(t.flags), xflags=np.asarray(t.xflags))  # (compiled: array.array)
        out = {}
        for code in np.flatnonzero(t.start >= 0).tolist():
            pc, ops = t.start[code], []
            while not ops or ops[-1][0] != TOP_END:
                ops.append(t.prog[pc:pc + 6].tolist())
                pc += 6
            out[code] = (ops, t.heads[t.head_off[code]:t.head_off[code + 1]], int(t.flags[code]), int(t.xflags[code]))
        return out

    def per_scan_code(t: tuple) -> dict:
        ops, start, kids = map(np.asarray, t)
        out = {}
        for code in np.flatnonzero(start >= 0).tolist():
            pc, prog = start[code], []
            while not prog or prog[-1][0] != 0:  # OP_END
                prog.append(ops[pc:pc + 4].tolist())
                pc += 4
            out[code] = (prog, int(kids[code]))
        return out

    with open(cached_build(*variant), "rb") as f:
        secs = {s.name: s.data() for s in ELFFile(f).iter_sections() if s.name.startswith(".debug_")}
    info, abbrev = secs[".debug_info"], secs[".debug_abbrev"]
    for hdr in parse_units(info):
        fast = abbrev_mod._core.parse(abbrev, abbrev, hdr.abbrev_off, abbrev_mod.Abbrev, abbrev_mod.AbbrevTable, {})
        assert fast is not None
        core, abbrev_mod._core = abbrev_mod._core, None
        try:
            pure = abbrev_mod._parse_abbrev_table(abbrev, hdr.abbrev_off)
        finally:
            abbrev_mod._core = core
        assert fast == pure and fast[0].indirect == pure[0].indirect
        got = fasthash._core.tables(abbrev, hdr.abbrev_off, fasthash._template(hdr.version, hdr.offset_size,
                                    hdr.addr_size), fasthash._TAG_FLAGS, fasthash._XTAG_FLAGS)
        assert got is not None
        ref = fasthash._tables(pure[0], hdr.version, hdr.offset_size, hdr.addr_size)
        assert per_code(fasthash.Tables(*got)) == per_code(ref)
        scan_made = read._parse.scan_tables(abbrev, hdr.abbrev_off, read._scan_template(
            hdr.version, hdr.offset_size, hdr.addr_size), read._AT_CLASS)
        assert scan_made is not None
        parse, read._parse = read._parse, None
        try:
            read._tables_cache.clear()
            scan_ref = read._scan_tables(pure[0], hdr)
        finally:
            read._parse = parse
            read._tables_cache.clear()
        assert scan_ref is not None and per_scan_code(scan_made) == per_scan_code(scan_ref)
        ud = read.decode_unit(info, hdr, pure[0])
        env = UnitEnv(secs, ud, info)
        # the kernel's expansion key (gdb's expansion order) equals expansion.expansion_key's
        if not _verbatim_reason(ud, env):
            call = fasthash.analyze_call(info, ud, env, [], [])
            made = fasthash.analyze_many([call])[0]
            assert made is not None and made.phase >= 0
            assert (made.phase, made.first_name) == expansion_key(info, ud, env.string)
            # where the kernel does not make the tables itself (a template it cannot follow), the
            # Python tables give the same analysis
            refused = memoryview(array("q", [-1]) * len(call[24].cast("B").cast("q"))).cast("B").cast(
                "q", call[24].shape)
            again = fasthash.analyze_many([call[:24] + (refused,) + call[25:]])[0]
            assert [bytes(x) if isinstance(x, (array, memoryview)) else x for x in again] == \
                [bytes(x) if isinstance(x, (array, memoryview)) else x for x in made]
        files = env.files()
        core, line._core = line._core, None
        try:
            env._files = None
            assert env.files() == files
        finally:
            line._core = core


def _many_directories(tmp: Path, cc: str) -> Path:
    """Two units of C (DWARF 5) compiled in a long compilation directory with 60 short include
    directories: their line tables hold over 12 KiB of directory paths, each taken from directory
    0, which the compiled reader copies within its own growing buffer (Ceph's librbd, where it
    once read the copy from freed memory)."""
    base = tmp.joinpath(*["a_long_directory_name_as_a_distribution_build_tree_has_it"] * 4)
    header = "struct s{k} {{ int a{k}; long b{k}; }};\nstatic inline int f{k}(struct s{k} *p) {{ return p->a{k}; }}\n"
    for k in range(60):
        (base / f"i{k:02d}").mkdir(parents=True)
        (base / f"i{k:02d}" / f"h{k}.h").write_text(header.format(k=k))
    includes = "".join(f'#include "h{k}.h"\n' for k in range(60))
    for unit in ("a", "b"):
        body = "".join(f"  {{ struct s{k} v = {{{k}, {k}}}; t += f{k}(&v); }}\n" for k in range(60))
        (base / f"{unit}.c").write_text(f"{includes}int use_{unit}(void) {{\n  int t = 0;\n{body}  return t;\n}}\n")
    (base / "main.c").write_text("int use_a(void), use_b(void);\nint main(void) { return use_a() + use_b() == 0; }\n")
    out = tmp / f"many-directories-{cc}"
    subprocess.run([cc, "-gdwarf-5", "-O0", *(f"-Ii{k:02d}" for k in range(60)), "a.c", "b.c", "main.c", "-o",
                    str(out)], cwd=base, check=True, capture_output=True)
    return out


@needs_core
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_file_names_of_many_directories_same_as_pure(cc: str, tmp_path: Path) -> None:
    """Line tables with more directory paths than the compiled reader's first buffer (4 KiB): its
    file names are the pure parser's, and so are the merge's bytes (the hash kernel reads them
    too), and ``verify`` (which reads them with the compiled parser) passes."""
    if not have(cc):
        pytest.skip(f"{cc} missing")
    from linkplugin.dwarf import forms as F, line as line_mod
    from linkplugin.merge.hash import UnitEnv

    src = _many_directories(tmp_path, cc)
    with open(src, "rb") as f:
        secs = {s.name: s.data() for s in ELFFile(f).iter_sections() if s.name.startswith(".debug")}
    info, line = secs[".debug_info"], secs[".debug_line"]
    strs, line_strs = secs.get(".debug_str", b""), secs.get(".debug_line_str", b"")
    longest = 0
    for hdr in parse_units(info):
        env = UnitEnv(secs, read.decode_unit(info, hdr, parse_abbrev_table(secs[".debug_abbrev"], hdr.abbrev_off)[0]),
                      info)
        off = env.top[F.DW_AT_stmt_list][1]
        comp = env.string(*env.top[F.DW_AT_comp_dir])
        want = line_mod._file_names(line, off, strs, line_strs, comp)
        assert read._parse.file_names(line, off, strs, line_strs, comp) == want
        longest = max(longest, sum(len(name) for name in want if name))
    assert longest > 12 << 10
    outs = {}
    for label, jobs, pure in (("pure", 1, True), ("compiled", 1, False), ("compiled-j2", 2, False)):
        done = _merge(src, tmp_path / label, jobs, pure)
        assert done.returncode == 0, done.stderr
        outs[label] = (tmp_path / label).read_bytes()
    assert outs["compiled"] == outs["pure"] and outs["compiled-j2"] == outs["pure"]
    from linkplugin.api import verify_files
    assert verify_files(src, tmp_path / "compiled") == []


@needs_core
def test_hash_kernel_batch_same_as_unit_by_unit(tmp_path: Path) -> None:
    """``analyze_many`` keeps its working buffers from one unit of a batch to the next
    (``_hashcore.Scratch``), and units of a batch that name one abbreviation table or line table
    share the tables made of it (dwz's output: ``share_tables``, ``share_files``): every unit
    of several programs, one of them through dwz, in one call, in reverse, and with the largest
    unit first, gives what each unit gives in a call of its own."""
    from linkplugin.merge import fasthash
    from linkplugin.merge.hash import UnitEnv, _verbatim_reason

    def plain(got):
        return None if got is None else [bytes(x) if isinstance(x, (array, memoryview)) else x for x in got]

    programs = [cached_build(*v) for v in [v for v in VARIANTS if have(v[0])][:8]]
    if have("dwz") and have("gcc"):
        shared = tmp_path / "dwz-output"
        shutil.copy(cached_build("gcc", "c++", 4, "-O0"), shared)
        subprocess.run(["dwz", str(shared)], check=True, capture_output=True)
        programs.append(shared)
    calls = []
    for prog in programs:
        with open(prog, "rb") as f:
            elf = ELFFile(f)
            secs = {s.name: s.data() for s in elf.iter_sections() if s.name.startswith(".debug_")}
        info, abbrev = secs[".debug_info"], secs[".debug_abbrev"]
        hdrs = parse_units(info)
        if prog.name == "dwz-output":  # its partial units and units share abbreviation tables
            assert len({h.abbrev_off for h in hdrs}) < len(hdrs)
        for hdr in hdrs:
            ud = read.decode_unit(info, hdr, parse_abbrev_table(abbrev, hdr.abbrev_off)[0])
            env = UnitEnv(secs, ud, info)
            if not _verbatim_reason(ud, env):
                calls.append(fasthash.analyze_call(info, ud, env, [], [x[0] for x in ud.xrefs]))
    assert len(calls) > 8
    alone = [plain(fasthash.analyze_many([c])[0]) for c in calls]
    assert all(a is not None for a in alone)
    assert [plain(a) for a in fasthash.analyze_many(calls)] == alone
    assert [plain(a) for a in fasthash.analyze_many(calls[::-1])] == alone[::-1]
    big = max(range(len(calls)), key=lambda k: calls[k][2] - calls[k][1])  # (hdr.end - hdr.off)
    order = [big] + [k for k in range(len(calls)) if k != big]
    assert [plain(a) for a in fasthash.analyze_many([calls[k] for k in order])] == [alone[k] for k in order]


@needs_core
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v[3] == "-O2"], ids=lambda v: "-".join(map(str, v)))
def test_merge_same_bytes_compiled_and_pure(variant, tmp_path: Path) -> None:
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    src = cached_build(*variant)
    outs = {}
    for label, jobs, pure in (("pure", 1, True), ("compiled", 1, False), ("compiled-j2", 2, False)):
        dst = tmp_path / label
        done = _merge(src, dst, jobs, pure)
        assert done.returncode == 0, done.stderr
        assert "compiled core" not in done.stderr
        outs[label] = dst.read_bytes()
    assert outs["compiled"] == outs["pure"]
    assert outs["compiled-j2"] == outs["pure"]
    # and on an already merged input (every type now canonical, cross-unit references)
    again = {}
    for label, pure in (("pure", True), ("compiled", False)):
        dst = tmp_path / f"again-{label}"
        assert _merge(tmp_path / "pure", dst, 1, pure).returncode == 0
        again[label] = dst.read_bytes()
    assert again["compiled"] == again["pure"]
    # and with gdb's own index (gdb's index order, the names dropped copies take elsewhere)
    if variant[1] == "c++" and shutil.which("gdb-add-index"):
        indexed = tmp_path / "indexed"
        shutil.copyfile(src, indexed)
        subprocess.run(["gdb-add-index", str(indexed)], check=True, capture_output=True)
        both = {}
        for label, jobs, pure in (("pure", 1, True), ("compiled-j2", 2, False)):
            dst = tmp_path / f"indexed-{label}"
            assert _merge(indexed, dst, jobs, pure).returncode == 0
            both[label] = dst.read_bytes()
        assert both["compiled-j2"] == both["pure"]


@needs_core
def test_compiled_merge_leaves_numpy_unloaded(tmp_path: Path) -> None:
    """The compiled path passes its arrays as array.array and memoryviews: numpy, 60 ms and 14 MiB
    of a small input's merge, stays unloaded (without name indexes to rebuild and without --odr,
    which compute with it); the pure path loads it. Nor does it load ctypes (4 ms): glibc's
    malloc_trim comes from the compiled ``_libc``."""
    variant = ("gcc", "c++", 5, "-O2")
    if not have(variant[0]):
        pytest.skip("gcc missing")
    src = cached_build(*variant)
    for jobs, pure in ((1, False), (2, False), (1, True)):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop(PURE_ENV, None)
        if pure:
            env[PURE_ENV] = "1"
        code = ("import sys; from linkplugin.cli import main; "
                f"rc = main(['merge-types', {str(src)!r}, '-o', {str(tmp_path / 'out')!r}, '-j', '{jobs}']); "
                "print('numpy' in sys.modules, 'ctypes' in sys.modules); sys.exit(rc)")
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        numpy_loaded, ctypes_loaded = done.stdout.split()[-2:]
        assert numpy_loaded == str(pure), (jobs, pure)
        if not pure:  # (numpy itself imports ctypes)
            assert ctypes_loaded == "False", jobs


@needs_core
def test_units_left_as_they_are_same_bytes_compiled_and_pure(tmp_path: Path) -> None:
    """A program whose DWARF 5 type units (in .debug_info) are copied as they are, beside
    merged compile units: the pure path (numpy's table over the compiled path's empty columns
    of such units) and the compiled one give the same bytes."""
    if not have("g++"):
        pytest.skip("g++ missing")
    (tmp_path / "a.cc").write_text("struct S { int a; double b; };\nint f(S *s) { return s->a; }\n")
    (tmp_path / "b.cc").write_text("struct S { int a; double b; };\nint f(S *s);\n"
                                   "int main() { S s{1, 2}; return f(&s); }\n")
    src = tmp_path / "tu"
    subprocess.run(["g++", "-g", "-gdwarf-5", "-fdebug-types-section", "-O0", str(tmp_path / "a.cc"),
                    str(tmp_path / "b.cc"), "-o", str(src)], check=True)
    outs = {}
    for label, jobs, pure in (("pure", 1, True), ("compiled", 2, False)):
        done = _merge(src, tmp_path / label, jobs, pure)
        assert done.returncode == 0, done.stderr
        assert "left as it is: unit type 0x2" in done.stderr  # (a type unit)
        outs[label] = (tmp_path / label).read_bytes()
    assert outs["compiled"] == outs["pure"]


@needs_core
@pytest.mark.parametrize("dwarf", [4, 5])
def test_large_units_same_bytes_compiled_and_pure(dwarf, tmp_path: Path) -> None:
    """Units of 64 KiB and more (DW_FORM_ref_udata local references, sized by counting passes)
    come out the same from the kernel, the pure loop and -j2."""
    if not have("g++"):
        pytest.skip("g++ missing")
    from test_gdb_listings import CPP_FILES, build
    src = build(tmp_path / "src", CPP_FILES, "g++", [f"-gdwarf-{dwarf}", "-O2"])
    outs = {}
    for label, jobs, pure in (("pure", 1, True), ("compiled", 1, False), ("compiled-j2", 2, False)):
        done = _merge(src, tmp_path / label, jobs, pure)
        assert done.returncode == 0, done.stderr
        assert "compiled core" not in done.stderr
        outs[label] = (tmp_path / label).read_bytes()
    assert outs["compiled"] == outs["pure"] == outs["compiled-j2"]
    assert b"DW_FORM_ref_udata" in subprocess.run(["readelf", "--debug-dump=abbrev", str(tmp_path / "pure")],
                                                  capture_output=True, check=True).stdout
    # and on that output (ref_udata and ref_addr references as input)
    again = {}
    for label, pure in (("pure", True), ("compiled", False)):
        assert _merge(tmp_path / "pure", tmp_path / f"again-{label}", 1, pure).returncode == 0
        again[label] = (tmp_path / f"again-{label}").read_bytes()
    assert again["compiled"] == again["pure"]


@needs_core
def test_first_pass_without_copy_same_as_with(tmp_path: Path, monkeypatch) -> None:
    """The first rewrite pass learns a unit's abbreviation uses from its keys alone
    (``_rewritecore.Unit.uses``) when its width is certain (a large unit, or a small one that a
    bound on its growth proves fits) and nothing can fail to fit: the output is that of the pass
    that copies every unit to count them."""
    if not have("g++"):
        pytest.skip("g++ missing")
    from conftest_merge import load_sections
    from linkplugin.merge import merge_sections, rewrite
    from test_gdb_listings import CPP_FILES, build

    secs, little, asize = load_sections(build(tmp_path / "src", CPP_FILES, "g++", ["-gdwarf-5", "-O2"]))
    assert any(u.end - u.off >= 1 << 16 for u in parse_units(secs[".debug_info"]))
    seen: list[bool] = []
    operands = rewrite._unit_operands
    monkeypatch.setattr(rewrite, "_unit_operands", lambda *a: seen.append(operands(*a)) or seen[-1])
    fast = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    assert False in seen  # a large unit took the keys-only pass
    monkeypatch.setattr(rewrite, "_unit_operands", lambda *a: True)
    copied = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    assert fast.replace == copied.replace


@needs_core
@pytest.mark.parametrize("variant", [("gcc", "c++", 5, "-O2"), ("clang", "c++", 4, "-O0"), ("gcc", "c", 4, "-O2")])
def test_second_pass_from_drafts_same_as_from_the_units(variant, monkeypatch) -> None:
    """The second rewrite pass gives a unit the first pass copied (``rewrite.Draft``) the shared
    codes with ``_rewritecore.recode``, without decoding it again, and the first pass scans and
    prepares most units in one kernel call (``rewrite._scanned_plan``): the bytes are those of
    the passes that decode every unit, at -j1 and -j2."""
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    from conftest_merge import load_sections
    from linkplugin.merge import merge_sections, rewrite

    secs, little, asize = load_sections(cached_build(*variant))
    from linkplugin.merge import fastrewrite

    recoded: list[int] = []
    scanned: list[bool] = []
    named: list[bool] = []
    written: list[bool] = []  # drafts whose DIEs take implicit constants as data (rewrite._as_data)
    recode, plan_scanned, plan = rewrite._recoded, rewrite._scanned_plan, fastrewrite.planned_many
    monkeypatch.setattr(rewrite, "_recoded", lambda draft, codes, hdr: recoded.append(1) or written.append(
        rewrite._writes_consts(codes, draft.keys)) or recode(draft, codes, hdr))
    monkeypatch.setattr(rewrite, "_scanned_plan", lambda *a: scanned.append((got := plan_scanned(*a)) is not None) or got)

    def planned_many(*a):
        got = plan(*a)
        named.extend(bool(g and g[3]) for g in got)
        return got
    monkeypatch.setattr(fastrewrite, "planned_many", planned_many)
    drafted = [merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=j) for j in (1, 2)]
    assert recoded  # units of 1- and 2-byte references took the drafts
    assert True in scanned  # and were scanned by the kernel
    if variant[3] == "-O2":
        assert True in named  # with expressions that name DIEs (DW_OP_convert, DW_OP_implicit_pointer, ...)
    assert (True in written) == (variant[:3] == ("gcc", "c++", 5))  # (gcc's DWARF 5 has implicit constants)
    monkeypatch.setattr(rewrite, "drafts_kept", lambda src: False)
    decoded = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    for got in drafted:
        assert got.replace == decoded.replace
        assert got.stats == decoded.stats


@needs_core
@pytest.mark.parametrize("variant", [("gcc", "c++", 5, "-O2"), ("gcc", "c", 5, "-O0")])
def test_implicit_constants_as_data_same_as_pure(variant, monkeypatch) -> None:
    """_rewritecore.as_data reads every entry of the shared table of a gcc DWARF 5 program (and
    variants of them: other attributes, values past 255 and 65,535, an attribute twice) as its
    twin rewrite._as_data_pure does."""
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    from conftest_merge import load_sections
    from linkplugin.merge import fastrewrite, merge_sections, rewrite

    totals: list[dict] = []
    as_data = rewrite._as_data
    monkeypatch.setattr(rewrite, "_as_data", lambda total: totals.append(total) or as_data(total))
    secs, little, asize = load_sections(cached_build(*variant))
    merge_sections(secs, little_endian=little, address_size=asize, jobs=1)
    entries = list(totals[0])
    F = rewrite.F
    for tag, children, specs in [rewrite._entry_key(e) for e in entries[:200]]:
        for ic in (0, 255, 256, 65535, 65536, -1):
            entries.append(rewrite._entry((tag, children, specs + ((0x3B, F.DW_FORM_implicit_const, ic),))))  # decl_line
        entries.append(rewrite._entry((tag, children, specs + specs[:1])))
    flags = rewrite._AS_DATA_FLAGS
    got = [fastrewrite.as_data(e, flags) for e in entries]
    assert got == [rewrite._as_data_pure(e, flags) for e in entries]
    assert sum(g is not None for g in got) > 20


@needs_core
def test_first_pass_operand_that_no_longer_fits_scanned_or_decoded(monkeypatch) -> None:
    """Location-list operands that would not fit after the move (``_NoFit``, here for every
    unit), found by the first pass of a unit whose expressions name DIEs, which the kernel
    scanned (its draft's copy) or decoded (its smallest-width copy), or by the second pass of
    the others: the units are copied as they are, with the same bytes either way."""
    if not have("gcc"):
        pytest.skip("gcc missing")
    from conftest_merge import load_sections
    from linkplugin.merge import merge_sections, rewrite

    secs, little, asize = load_sections(cached_build("gcc", "c++", 5, "-O2"))
    def no_fit(rows, new_rel):
        raise rewrite._NoFit()

    monkeypatch.setattr(rewrite, "_values_at", no_fit)
    scanned = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    assert any("would not fit" in w for w in scanned.warnings)
    monkeypatch.setattr(rewrite, "drafts_kept", lambda src: False)
    decoded = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    assert scanned.replace == decoded.replace
    assert scanned.warnings == decoded.warnings


@needs_core
@pytest.mark.parametrize("variant", [("gcc", "c++", 5, "-O2"), ("gcc", "c", 4, "-O2"), ("clang", "c", 4, "-O2")],
                         ids=lambda v: "-".join(map(str, v)))
def test_plan_unit_equals_the_kernel_of_the_decoded_unit(variant) -> None:
    """``plan_unit`` (scan, operands, prepare, keys, draft copy and tag rows in one call) gives
    what the kernel of the decoded unit gives step by step, with removals, at width 1 and 2,
    for units whose expressions name DIEs (DW_OP_convert, DW_OP_implicit_pointer, ...) too."""
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    from conftest_merge import load_sections
    from linkplugin.dwarf.expr import REF_OPS
    from linkplugin.merge import _rewritecore as core, fastrewrite
    from linkplugin.merge.table import Removals

    secs, _, _ = load_sections(cached_build(*variant))
    info, abbrev = secs[".debug_info"], secs[".debug_abbrev"]
    compared = named = 0
    calls: list[tuple] = []  # every unit with its removals, at both widths (for plan_units below)
    for hdr in parse_units(info):
        abbrevs = parse_abbrev_table(abbrev, hdr.abbrev_off)[0]
        tables = read._scan_tables(abbrevs, hdr)
        ud = read.decode_unit(info, hdr, abbrevs)
        n = len(ud)
        # the second quarter of the top DIE's children removed (each with its subtree)
        offs, _, parent, ends = (np.asarray(c) for c in ud.arrays())
        kids = np.flatnonzero(parent == 0)
        drop = kids[len(kids) // 4:len(kids) // 2]
        ends_idx = np.searchsorted(offs, ends[drop])
        rem = Removals(drop.astype(np.int64), ends_idx.astype(np.int64), np.zeros(len(drop), np.int64),
                       np.zeros(len(drop), np.int64))
        for width in (1, 2):
            calls.append((info, abbrev, hdr.abbrev_off, hdr.off, hdr.die_off, hdr.end, hdr.version, hdr.addr_size,
                          hdr.offset_size, *tables, rem.starts, rem.ends, width))
            got = core.plan_unit(info, abbrev, hdr.abbrev_off, hdr.off, hdr.die_off, hdr.end, hdr.version,
                                 hdr.addr_size, hdr.offset_size, *tables, REF_OPS, rem.starts, rem.ends, width, {})
            want = fastrewrite.prepare(info, abbrev, read.decode_unit(info, hdr, abbrevs), rem)
            assert (got is None) == (want is None)
            if got is None:
                continue
            unit, dies, refs, is_named, keys, copied, tags = got
            assert dies == n and refs == len(ud.ref_pos)
            assert is_named == any(x[3] != "s" for x in ud.xrefs)
            assert keys == want.keys(width)
            assert copied[0] == want.copy(width, None, want.kept, True, True)[0]
            if copied[0] == fastrewrite.OK:
                assert [bytes(x) if isinstance(x, array) else x for x in copied] == \
                    [bytes(x) if isinstance(x, array) else x for x in want.copy(width, None, want.kept, True, True)]
            assert tags == want.tag_counts(True)
            # the unit goes on to other widths as the decoded one does
            assert unit.keys(4) == want.keys(4)
            assert unit.copy(4, None, unit.kept, False)[2] == want.copy(4, None, want.kept, False)[2]
            compared += 1
            named += is_named
    assert compared and (named or variant[0] == "clang")  # (clang's expressions here name no DIE)
    # Every unit in one call (plan_units, as the first pass takes a batch): each unit's result
    # as on its own (each unit's second call, at the other width, copies the abbreviation table
    # its first read, as a unit of dwz's output copies its neighbour's).
    def plain(got):
        return None if got is None else (got[1:5], [bytes(x) if isinstance(x, array) else x for x in got[5]],
                                         got[6].tolist())
    together = core.plan_units(calls, REF_OPS, {})
    assert len(together) == len(calls) and any(g is not None for g in together)
    assert [plain(g) for g in together] == [plain(core.plan_unit(*c[:12], REF_OPS, *c[12:], {})) for c in calls]
    # An error in one unit's arguments (here the last's width) raises before any unit runs.
    with pytest.raises(ValueError):
        core.plan_units(calls + [calls[0][:-1] + (3,)], REF_OPS, {})


@needs_core
def test_recode_checks_its_draft() -> None:
    """``recode`` reports a draft whose rows do not match its bytes as an internal error, and
    says when the new codes make the unit outgrow its width."""
    from linkplugin.merge import _rewritecore as core

    # a header of 11 bytes, then two DIEs: code 1 with a 1-byte local reference to DIE 1, code 2
    body = bytes([0, 0, 0, 0, 5, 0, 1, 0, 0, 0, 8]) + bytes([1, 0]) + bytes([2, 0])
    rel = array("i", [11, 13])
    keys, codes = [b"a", b"b"], {b"a": 3, b"b": 4}
    none = array("q")
    st, out, new_rel, _ = core.recode(body, rel, keys, codes, array("i", [12, 1]), none, none, 1)
    assert st == 0 and out[11:] == bytes([3, 13, 4, 0]) and list(new_rel) == [11, 13]
    assert int.from_bytes(out[:4], "little") == len(out) - 4
    with pytest.raises(DwarfError):
        core.recode(body, rel, keys, codes, array("i", [99, 1]), none, none, 1)
    with pytest.raises(DwarfError):
        core.recode(body, rel, keys[:1], codes, array("i", [12, 1]), none, none, 1)  # code 2 has no key
    big = body[:11] + bytes([1]) + bytes(300)
    st, *_ = core.recode(big, array("i", [11]), keys[:1], {b"a": 1}, array("i"), none, none, 1)
    assert st == 5  # 312 bytes do not fit 1-byte references


@needs_core
def test_udata_constants_agree() -> None:
    """The kernel's ref_udata width code and pass cap are the pure loop's."""
    from linkplugin.merge import _rewritecore, rewrite

    assert (_rewritecore.UDATA, _rewritecore.PASSES) == (rewrite.UDATA, rewrite._UDATA_PASSES)


def test_missing_core_says_so_once(tmp_path: Path) -> None:
    src = cached_build("gcc", "c++", 5, "-O2")
    block = "".join(f"sys.modules[{name!r}] = None; " for name in KERNELS)
    done = _merge(src, tmp_path / "out", 2, False, extra=f"import sys; {block}")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "compiled core" in line]
    assert len(notes) == 1, done.stderr
    assert "pip install" in notes[0]
    ref = _merge(src, tmp_path / "pure", 1, True)
    assert ref.returncode == 0 and ref.stderr.count("compiled core") == 0
    assert (tmp_path / "out").read_bytes() == (tmp_path / "pure").read_bytes()


def test_missing_core_adds_no_line_to_an_error(tmp_path: Path) -> None:
    """Bad input gets exactly one line on stderr, core or no core: the note comes only after a
    job that succeeded."""
    src = cached_build("gcc", "c++", 5, "-O2")
    with open(src, "rb") as f:
        info = bytearray(ELFFile(f).get_section_by_name(".debug_info").data())
    info[12:40] = b"\x7f" * 28  # the first unit's header stays, its DIEs name an abbreviation code it lacks
    junk = tmp_path / "junk"
    junk.write_bytes(info)
    bad = tmp_path / "bad"
    subprocess.run(["objcopy", f"--update-section=.debug_info={junk}", str(src), str(bad)], check=True)
    block = "".join(f"sys.modules[{name!r}] = None; " for name in KERNELS)
    done = _merge(bad, tmp_path / "out", 1, False, extra=f"import sys; {block}")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()


@needs_core
def test_expression_and_location_list_scanners_same_as_pure() -> None:
    """The compiled scan_expr / scan_lists give the Python functions' operands, or None (then the
    Python code runs): on every expression and list of real programs and on random bytes made of
    DIE-naming opcodes and their operands."""
    import random

    from linkplugin.dwarf import expr, loclists
    from linkplugin.dwarf.expr import REF_OPS

    core = expr._core
    rng = random.Random(7)
    ops = list(REF_OPS) + [0x03, 0x08, 0x0A, 0x10, 0x11, 0x23, 0x30, 0x70, 0x92, 0x9E, 0xA3, 0xF3, 0x9F, 0xE0, 0x00,
                           0xFF, 0x80]
    checked = 0
    for _ in range(20000):
        d = bytes(rng.choice(ops) if rng.random() < 0.5 else rng.randrange(256) for _ in range(rng.randrange(1, 24)))
        end = rng.choice((len(d), len(d) - 1, len(d) + 2, rng.randrange(0, len(d) + 1)))
        args = (d, 0, end, rng.choice((4, 8)), rng.choice((4, 8)), rng.choice((2, 4, 5)))
        got = core.scan_expr(*args)
        try:
            want = expr._scan_expr(*args)
        except DwarfError as exc:  # the Python code's error: the compiled one must have declined
            assert got is None, (args, exc)
            continue
        if got is not None:
            assert got == want, args
            checked += 1
    assert checked > 1000
    from linkplugin.merge import hash as hash_phase

    fused_checked = 0
    batch: list[tuple] = []
    for variant in [v for v in VARIANTS if v[3] == "-O2" and have(v[0])]:
        with open(cached_build(*variant), "rb") as f:
            elf = ELFFile(f)
            info = elf.get_section_by_name(".debug_info").data()
            abbrev = elf.get_section_by_name(".debug_abbrev").data()
            secs = {s.name: s.data() for s in elf.iter_sections() if s.name in (".debug_loc", ".debug_loclists")}
        for hdr in parse_units(info):
            ud = read.decode_unit(info, hdr, parse_abbrev_table(abbrev, hdr.abbrev_off)[0])
            name = ".debug_loclists" if hdr.version >= 5 else ".debug_loc"
            if not len(ud.locs) or name not in secs:
                continue
            env = __import__("linkplugin.merge.hash", fromlist=["UnitEnv"]).UnitEnv(secs, ud, info)
            offsets = loclists.list_offsets(hdr, ud.locs, secs[name], env.loclists_base)
            assert list(offsets) == loclists._list_offsets(hdr, ud.locs, secs[name], env.loclists_base)
            got = core.scan_lists(secs[name], np.asarray(offsets, dtype=np.int64), hdr.addr_size, hdr.offset_size,
                                  hdr.version)
            assert got is not None
            saved, loclists._core = loclists._core, None
            try:
                assert got == loclists.scan_lists(secs[name], list(offsets), hdr)
            finally:
                loclists._core = saved
            # What the hash phase makes of them in one call: the rewrite phase's rows and the
            # named offsets, as locations.targets and the operands give them.
            call = hash_phase.list_call(secs, ud, env)
            assert call is not None
            fused = hash_phase.location_targets(secs, ud, env, True, hash_phase.list_targets_many([call])[0])
            assert isinstance(fused[0], array)
            batch.append((call, fused))
            composed = hash_phase.location_targets(secs, ud, env, True)  # (no compiled result: Python)
            assert fused[0].tolist() == composed[0] and fused[1] == composed[1]
            fused_checked += 1
            base = env.loclists_base
            known = isinstance(base, int)
            if hdr.offset_size == 4:  # the compiled call itself, against the composed Python path
                one = core.unit_list_targets(ud.locs, secs[name], base if known else 0, known, hdr.addr_size,
                                             hdr.offset_size, hdr.version, ud.arrays()[0], hdr.off)
                assert one is not None
                assert (one[0][0].tolist(), one[0][1], one[1].tolist()) == \
                    (composed[1][0].tolist(), composed[1][1], composed[0])
            if any(kind != "s" for _, _, kind, _ in got):  # an offset past 63 bits: the Python code decides
                assert core.unit_list_targets(ud.locs, secs[name], base if known else 0, known, hdr.addr_size,
                                              hdr.offset_size, hdr.version, ud.arrays()[0], (1 << 63) - 2) is None
        # A batch in one call (as the hash phase makes it) gives each unit's result.
        together = hash_phase.list_targets_many([call for call, _ in batch])
        assert len(together) == len(batch) and None not in together
        for (_, fused), got_one in zip(batch, together):
            assert (got_one[0][0].tolist(), got_one[0][1], got_one[1].tolist()) == \
                (fused[1][0].tolist(), fused[1][1], fused[0].tolist())
        batch.clear()
    assert fused_checked


@needs_core
def test_abbreviation_entries_sort_like_their_keys() -> None:
    """The shared table's tie order: the compiled sort key of an entry orders entries as the
    pure path orders their (tag, children, specs) tuples."""
    import random

    from linkplugin.merge import fastrewrite, rewrite

    rng = random.Random(11)
    keys = set()
    while len(keys) < 3000:
        specs = tuple((rng.choice((1, 3, 0x3A, 0x49, 0x2007, 200)), form,
                       rng.choice((0, 1, -1, 300, -70000, 2**40)) if form == 0x21 else 0)
                      for form in (rng.choice((0x0B, 0x13, 0x21, 0x0E, 0x1F01)) for _ in range(rng.randrange(4))))
        keys.add((rng.choice((0x11, 0x13, 0x24, 0x4107, 300)), rng.random() < 0.5, specs))
    entries = [rewrite._entry(k) for k in keys]
    assert all(rewrite._entry_key(e) == k for e, k in zip(entries, keys))
    assert sorted(entries, key=fastrewrite.entry_order) == sorted(entries, key=rewrite._entry_key)


@needs_core
def test_expression_blocks_batch_same_as_pure() -> None:
    """_loclists.scan_expr_blocks gives what abbrev._expr gives block by block, or None; as
    rows, what fastrewrite._xref_rows makes of that; scan_expr_blocks_many, what it gives unit
    by unit."""
    import random

    from linkplugin.dwarf import expr
    from linkplugin.merge import fastrewrite
    from linkplugin.dwarf.abbrev import _expr
    from linkplugin.dwarf.expr import REF_OPS

    rng = random.Random(5)
    ops = list(REF_OPS) + [0x03, 0x08, 0x10, 0x11, 0x30, 0x9E, 0xA3, 0xF3, 0x9F, 0xFF]
    agreed = in_rows = 0
    for _ in range(3000):
        d = bytes(rng.choice(ops) if rng.random() < 0.5 else rng.randrange(256) for _ in range(rng.randrange(8, 64)))
        blocks = []
        for _ in range(rng.randrange(1, 5)):
            s = rng.randrange(len(d))
            blocks.append((rng.randrange(100), s, min(len(d), s + rng.randrange(1, 8))))
        blocks.sort(key=lambda b: b[1])
        got = expr._core.scan_expr_blocks(d, np.array(blocks, dtype=np.int64).reshape(-1, 3), 0x100, 8, 4, 5)
        # several units' blocks in one call (the decoder's batch), each as on its own
        parts = [np.array(blocks[:1], dtype=np.int64).reshape(-1, 3), np.array(blocks, dtype=np.int64).reshape(-1, 3)]
        assert expr._core.scan_expr_blocks_many(d, [(parts[0], 0x200, 8, 4, 5), (parts[1], 0x100, 8, 4, 5)]) == \
            [expr._core.scan_expr_blocks(d, parts[0], 0x200, 8, 4, 5), got]
        want: list = []
        try:
            for i, s, e in blocks:
                _expr(d, s, e, i, 0x100, want, 8, 4, 5)
        except DwarfError:
            assert got is None
            continue
        if got is not None:
            assert got == want
            agreed += 1
            rows = expr._core.scan_expr_blocks(d, np.array(blocks, dtype=np.int64).reshape(-1, 3), 0x100, 8, 4, 5,
                                               True)
            if len({x[1] for x in want}) == len(want):  # (a unit's blocks never overlap)
                assert rows == (fastrewrite._xref_rows(want), any(x[3] != "s" for x in want))
                in_rows += 1
    assert agreed > 100 and in_rows > 100


@needs_core
def test_narrow_new_offsets_same_as_wide() -> None:
    """The layout keeps every DIE's new offset as uint32 when the new .debug_info allows (half the
    memory on a large program): the offsets it resolves and the patches it writes are those of
    the int64 array, removed DIEs included."""
    from linkplugin.merge import _rewritecore as core

    rng = np.random.default_rng(7)
    rels = []
    for n in rng.integers(1, 200, size=20):
        rel = np.cumsum(rng.integers(1, 9, size=n)).astype(np.int32)
        rel[rng.random(n) < 0.3] = -1  # removed DIEs
        rels.append(rel)
    sizes = [int(r.max(initial=0)) + 10 for r in rels]
    bases = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    total = sum(len(r) for r in rels)
    wide = core.new_offsets(rels, bases, total, False)
    narrow = core.new_offsets(rels, bases, total, True)
    assert (wide.typecode, narrow.typecode) == ("q", "I")  # array.array: no numpy on the compiled path
    wide, narrow = np.asarray(wide), np.asarray(narrow)  # (numpy sees the same memory)
    assert np.array_equal(np.where(wide < 0, 0xFFFFFFFF, wide), narrow.astype(np.int64))
    # each removed DIE follows a kept DIE elsewhere (its "canonical copy")
    gone = np.flatnonzero(wide < 0)
    kept = np.flatnonzero(wide >= 0)
    canon = rng.choice(kept, size=len(gone)).astype(np.int64)
    ones = np.ones(len(gone), dtype=np.int64)
    assert core.redirect(wide, gone.astype(np.int64), ones, canon)
    assert core.redirect(narrow, gone.astype(np.int64), ones, canon)
    assert np.array_equal(wide, narrow.astype(np.int64))
    # a canonical DIE that is removed too is refused the same way
    assert not core.redirect(core.new_offsets(rels, bases, total, True), gone[:1].astype(np.int64), ones[:1],
                             gone[1:2].astype(np.int64) if len(gone) > 1 else gone[:1].astype(np.int64))
    offs = np.arange(total, dtype=np.uint32) * 4 + 100  # old offsets of the DIEs
    rows = np.array([[8 * k, 4, int(offs[k])] for k in range(0, total, 3)], dtype=np.int64)
    infos = []
    for new in (wide, narrow):
        info = bytearray(8 * total + 8)
        assert core.write_patches(info, [rows.reshape(-1)], np.zeros(1, dtype=np.int64), offs, new, 100,
                                  100 + 4 * total) is None
        infos.append(bytes(info))
    assert infos[0] == infos[1]


@needs_core
def test_rewrite_kernel_finds_dies_by_offset() -> None:
    """The rewrite kernel finds each reference's target DIE by its offset (a bitmap of DIE starts
    with ranks): every in-unit reference of a real program resolves to the DIE the decoder says
    it names, and one moved into the middle of a DIE is refused as not naming a DIE."""
    from linkplugin.merge import fastrewrite
    from linkplugin.merge.table import Removals

    info, abbrev = _info_abbrev(("gcc", "c++", 5, "-O0"))
    empty = np.zeros(0, dtype=np.int64)
    none = Removals(empty, empty, empty, empty)
    checked = 0
    for hdr in parse_units(info):
        ud = read.decode_unit(info, hdr, parse_abbrev_table(abbrev, hdr.abbrev_off)[0])
        assert fastrewrite.prepare(info, abbrev, ud, none) is not None
        offs = np.asarray(ud.arrays()[0])
        target = np.asarray(ud.ref_target)
        local = np.flatnonzero((target >= hdr.off) & (target < hdr.end))
        if not len(local):
            continue
        # every target the decoder gives is a DIE start (what the kernel's map must agree with)
        assert np.isin(target[local], offs).all()
        # a target one byte into a DIE of more than one byte: not a DIE
        sizes = np.diff(np.append(offs, hdr.end))
        k = int(np.flatnonzero(sizes > 1)[-1])
        bad = target.copy()
        bad[local[0]] = offs[k] + 1
        moved = read.UnitDies(ud.hdr, ud.abbrevs, None, ud.ref_pos, ud.ref_die, ud.ref_form, ud.ref_at, bad,
                              ud.xrefs, ud.locs, ud.arrays())
        with pytest.raises(DwarfError, match="not to a DIE"):
            fastrewrite.prepare(info, abbrev, moved, none)
        checked += 1
    assert checked


def test_tasks_started_largest_first_keep_their_order() -> None:
    """merge._run_phase hands the tasks to the runner heaviest first (ties in task order)
    and gives the results back in task order, so the output never depends on the order run."""
    from linkplugin.merge import _run_phase

    seen: list[list[tuple]] = []

    def runner(fn, tasks, jobs):
        seen.append(list(tasks))
        return [fn(*t) for t in tasks]

    tasks = [(k,) for k in range(6)]
    weights = [5, 9, 1, 9, 3, 7]
    got = _run_phase(runner, lambda k: k * 10, tasks, weights, 2)
    assert got == [0, 10, 20, 30, 40, 50]
    # (a runner other than run_threads gets each task wrapped as (fn, k): worker processes trim)
    assert [t[-1] for t in seen[0]] == [1, 3, 5, 0, 4, 2]
    assert _run_phase(runner, lambda k: k * 10, tasks, weights, 1) == got
    assert [t[-1] for t in seen[1]] == list(range(6))  # one job: as given



def test_missing_core_note_to_a_closed_stderr(tmp_path: Path) -> None:
    """The note goes through the command's writer: with stderr's reader gone (``2>&1 | head``)
    the command ends as for a closed stdout (status 141), with no traceback."""
    src = cached_build("gcc", "c++", 5, "-O2")
    block = "".join(f"sys.modules[{name!r}] = None; " for name in KERNELS)
    code = (f"import sys; {block}from linkplugin.cli import command; "
            f"sys.argv[1:] = ['merge-types', {str(src)!r}, '-o', {str(tmp_path / 'out')!r}]; command()")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop(PURE_ENV, None)
    read, write = os.pipe()
    os.close(read)  # stderr's reader is gone before the command writes
    done = subprocess.run([sys.executable, "-c", code], env=env, stderr=write, stdout=subprocess.PIPE)
    os.close(write)
    assert done.returncode == 141, done.returncode
    assert (tmp_path / "out").exists()


@needs_core
def test_units_left_to_python_are_counted(monkeypatch) -> None:
    """A unit the compiled core declines runs the pure path (same bytes, slower): --stats counts
    them, or a slow merge would have no visible cause (dwz -m output did that, 10x slower)."""
    from conftest_merge import load_sections
    from linkplugin.merge import fastrewrite, fasthash, merge_sections

    if not have("gcc"):
        pytest.skip("gcc missing")
    secs, little, asize = load_sections(cached_build("gcc", "c", 5, "-O0"))
    stats: dict = {}
    whole = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1, stats=stats)
    assert stats["python_units"] == (0, 0)
    monkeypatch.setattr(fasthash, "analyze_many", lambda calls: [None] * len(calls))
    monkeypatch.setattr(fastrewrite, "prepare", lambda *args: None)
    monkeypatch.setattr(fastrewrite, "planned_many", lambda calls, intern: [None] * len(calls))  # (the first pass's other way in)
    stats = {}
    declined = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1, stats=stats)
    assert stats["python_units"] == (stats["units"], stats["units"])
    assert declined.replace == whole.replace


@needs_core
def test_lazy_abbreviation_tables_same_as_pure() -> None:
    """The compiled parser's tables, read one code at a time (abbrev.LazyTable), give the pure
    parser's Abbrevs code by code and whole, its end offset and its DW_FORM_indirect flag."""
    from linkplugin.dwarf import abbrev as A

    info, abbrev = _info_abbrev(("gcc", "c++", 5, "-O2"))
    for hdr in parse_units(info):
        lazy, end = A._parse_abbrev_table(abbrev, hdr.abbrev_off)
        assert isinstance(lazy, A.LazyTable)
        core, A._core = A._core, None
        try:
            pure, pure_end = A._parse_abbrev_table(abbrev, hdr.abbrev_off)
        finally:
            A._core = core
        assert (end, lazy.indirect) == (pure_end, pure.indirect)
        codes = sorted(pure)
        assert lazy[codes[-1]] == pure[codes[-1]]  # one code, before the whole table is made
        assert lazy.get(codes[-1] + 1) is None and codes[-1] + 1 not in lazy
        with pytest.raises(KeyError):
            lazy[codes[-1] + 1]
        assert len(lazy) == len(pure) and dict(lazy.items()) == dict(pure.items()) and lazy == pure


def test_lazy_abbreviation_table_as_a_dict() -> None:
    """A LazyTable answers every dict question as its whole table would, filled or not."""
    from linkplugin.dwarf import abbrev as A

    if A._core is None:
        pytest.skip("compiled core not built")
    _, abbrev = _info_abbrev(("gcc", "c++", 5, "-O2"))
    core, A._core = A._core, None
    try:
        pure = A._parse_abbrev_table(abbrev, 0)[0]
    finally:
        A._core = core
    fresh = lambda: A._parse_abbrev_table(abbrev, 0)[0]  # noqa: E731
    assert not fresh() != pure and fresh() == fresh() and fresh().copy() == pure
    assert (fresh() | {}) == pure and ({} | fresh()) == pure and list(reversed(fresh())) == list(reversed(pure))
    assert dict(fresh()) == pure and {**fresh()} == pure and sorted(fresh()) == sorted(pure)
    for odd in ("x", -1, 1 << 70):
        assert fresh().get(odd) is None and odd not in fresh()
        with pytest.raises(KeyError):
            fresh()[odd]


def test_location_operand_kernels_match_their_twins(monkeypatch) -> None:
    """merge.locations on both paths: the same rows, failures and bytes, for every kind and width
    of operand (ULEB128 of 1 to 11 bytes, fixed sizes 1 to 8), values that fit exactly, one
    past, removed DIEs and offsets that are no DIE."""
    import random

    from linkplugin.merge import locations

    if locations._core is None:
        pytest.skip("the compiled core is not built")
    rng = random.Random(7)
    offs = array("q", sorted(rng.sample(range(0x100, 0x100000), 500)))
    unit_off = 0x80
    for _ in range(300):
        ops = []
        for _ in range(rng.randrange(0, 12)):
            kind = rng.choice("suf")
            w = rng.choice([1, 2, 4, 8]) if kind == "f" else rng.randrange(1, 12)
            die = rng.random() < 0.95
            v = (offs[rng.randrange(len(offs))] - unit_off) if die else rng.randrange(1 << 20)
            ops.append((rng.randrange(1 << 16), w, kind, v))
        new_rel = array("i" if rng.random() < 0.5 else "q",
                        (rng.choice([-1, 0, 127, 128, 16383, 16384, 255, 256, 65535, 65536, 1 << 28])
                         for _ in offs))
        got = []
        for core in (locations._core, None):
            monkeypatch.setattr(locations, "_core", core)
            rows, patches = locations.targets(ops, offs, unit_off)
            status, values = locations.values_at(rows, new_rel)
            out = bytearray(1 << 16)
            wrote = locations.write(out, values) if status == 0 else None
            got.append((rows.tolist(), patches, status, values if status else values.tolist(), wrote, bytes(out)))
        assert got[0] == got[1]


def test_location_operand_kernels_at_the_edges(monkeypatch) -> None:
    """The values no compiler writes but a damaged file may hold: an operand of 2**63 and more,
    a row whose end overflows, a fixed size past 8 bytes, width 0."""
    from linkplugin.merge import locations

    if locations._core is None:
        pytest.skip("the compiled core is not built")
    offs = array("q", [0x10, 0x20])
    cases = [
        ("targets", ([(1, 10, "u", 2 ** 63), (2, 10, "u", 2 ** 64 - 1), (3, 1, "u", 0x14)], offs, 0xC)),
        ("write", (bytearray(4), array("q", [2 ** 63 - 2, 4, 1]))),
        ("write", (bytearray(20), array("q", [0, -16, 5, 17, 3, 1]))),
        ("values_at", (array("q", [0, 0, 0]), array("q", [0]))),
        ("values_at", (array("q", [0, 0, 0]), array("q", [5]))),
    ]
    for name, args in cases:
        got = []
        for core in (locations._core, None):
            monkeypatch.setattr(locations, "_core", core)
            fresh = [bytearray(a) if isinstance(a, bytearray) else a for a in args]
            result = getattr(locations, name)(*fresh)
            got.append((repr(result), [bytes(a) for a in fresh if isinstance(a, bytearray)]))
        assert got[0] == got[1], name
