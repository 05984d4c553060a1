"""Fuzzing: a short deterministic run of the harness (tests/fuzzlib.py), the harness's own
classification, and one regression test per kind of bug the harness found.

The long runs are ``python3 bench/fuzz.py`` (see BENCHMARKS.md).
"""
from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path

import fuzzlib
import pytest
from conftest import linkplugin

FUZZ_SEED = 2026
CI_CASES = 2500


@pytest.fixture(scope="session")
def seed_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    if not fuzzlib.prepare(folder):
        pytest.skip("no compiler built a seed program")
    return folder


@pytest.fixture(scope="session")
def seeds(seed_dir: Path) -> dict[str, fuzzlib.SeedMap]:
    return fuzzlib.load_seeds(seed_dir)


def test_short_fuzz_run_is_clean(seed_dir: Path) -> None:
    """A few thousand mutated files through every command: no traceback, hang, leftover file,
    changed input or output our own reader rejects."""
    summary = fuzzlib.run(seed_dir, range(CI_CASES), FUZZ_SEED, jobs=2, timeout=30)
    assert sum(summary.counts.values()) == CI_CASES
    assert summary.bad == 0, summary.report()
    # The mutations must reach past the first checks: both outcomes are common.
    assert summary.counts["success"] > CI_CASES // 5 and summary.counts["clean-error"] > CI_CASES // 5, \
        summary.report()


# --- the harness classifies what it sees ------------------------------------------------------

def _fake_case(seeds: dict[str, fuzzlib.SeedMap], argv: list[str]) -> fuzzlib.Case:
    seed = seeds[sorted(seeds)[0]]
    return fuzzlib.Case(0, seed.name, ["none"], argv, seed.data)


@pytest.mark.parametrize("behaviour, outcome", [
    ("raise", "traceback"), ("loop", "hang"), ("leave", "leftover"), ("touch", "input-changed"),
    ("two-lines", "traceback"), ("ok", "success"), ("error", "clean-error"),
])
def test_harness_classifies(seeds: dict, seed_dir: Path, tmp_path: Path, monkeypatch, behaviour: str,
                            outcome: str) -> None:
    from linkplugin import cli

    def fake_main(argv: list[str]) -> int:
        src, out = Path(argv[1]), Path(argv[3])
        if behaviour == "raise":
            raise KeyError(".debug_info")
        if behaviour == "loop":
            while True:
                time.sleep(0.01)
        if behaviour == "leave":
            (out.parent / ".linkplugin-tmp").write_bytes(b"x")
        if behaviour == "touch":
            with open(src, "ab") as f:
                f.write(b"\0")
        if behaviour == "ok":
            out.write_bytes(src.read_bytes())
            return 0
        import sys
        print("linkplugin: error: bad", file=sys.stderr)
        if behaviour == "two-lines":
            print("more", file=sys.stderr)
        return 2

    monkeypatch.setattr(cli, "main", fake_main)
    case = _fake_case(seeds, ["compress", "IN", "-o", "OUT"])
    result = fuzzlib.run_case(case, tmp_path, seed_dir / case.seed, timeout=0.5)
    assert result["outcome"] == outcome, result


# --- regression tests: one per kind of bug the harness found -----------------------------------

def rejected(src: Path, data: bytes | bytearray, *args: str, says: str) -> None:
    """``linkplugin ARGS`` on ``data`` (written to ``src``): one line, exit 2, nothing left
    next to the output, input unchanged. ``OUT`` in ``args`` is the output."""
    src.write_bytes(bytes(data))
    out = src.parent / "out"
    folder = out.parent
    before_files = sorted(p.name for p in folder.iterdir())
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    result = linkplugin(*[str(out) if a == "OUT" else str(src) if a == "IN" else a for a in args], check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("linkplugin: error: "), result.stderr
    assert says in lines[0], lines[0]
    assert sorted(p.name for p in folder.iterdir()) == before_files
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


COMMANDS = [("compress", "IN", "-o", "OUT", "-j", "1"), ("decompress", "IN", "-o", "OUT"),
            ("merge-types", "IN", "-o", "OUT", "-j", "1"), ("info", "IN")]


def _seed(seeds: dict, name: str) -> fuzzlib.SeedMap:
    if name not in seeds:
        pytest.skip(f"seed {name} was not built here")
    return seeds[name]


def _shdr(seed: fuzzlib.SeedMap, data: bytearray, section: str, fname: str, value: int) -> None:
    sec = next(s for s in seed.sections if s.name == section)
    at, width = seed.shdr[fname]
    data[sec.header_at + at:sec.header_at + at + width] = value.to_bytes(width, "little")


def test_header_offsets_far_past_the_end(seeds: dict, tmp_path: Path) -> None:
    """pyelftools raised OSError [Errno 22] seeking to them; the reader checks every table."""
    seed = _seed(seeds, "gcc-c-dwarf5")
    data = bytearray(seed.data)
    struct.pack_into("<Q", data, 32, 0x5EF7EE8791707417)  # e_phoff
    for args in COMMANDS:
        rejected(tmp_path / "in", data, *args, says="program headers lie past the end")
    data = bytearray(seed.data)
    _shdr(seed, data, ".debug_str", "sh_offset", (1 << 64) - 1)
    for args in COMMANDS:
        rejected(tmp_path / "in", data, *args, says="lies past the end of the file")


@pytest.mark.parametrize("align, says", [(0xD30D4DF77B5B9454, "not a power of two"), (1 << 62, "alignment")])
def test_alignment_that_does_not_fit(seeds: dict, tmp_path: Path, align: int, says: str) -> None:
    """The writer padded to the alignment and failed in seek() or struct.pack (ValueError:
    cannot fit 'int' into an offset-sized integer)."""
    seed = _seed(seeds, "gcc-c-dwarf4")
    data = bytearray(seed.data)
    _shdr(seed, data, ".debug_aranges", "sh_addralign", align)
    # (compress succeeds with 2**62: the compressed section is aligned as its header, to 8)
    for args in COMMANDS[:3] if says != "alignment" else COMMANDS[1:3]:
        rejected(tmp_path / "in", data, *args, says=says)


def test_compression_header_alignment_that_does_not_fit(seeds: dict, tmp_path: Path) -> None:
    seed = _seed(seeds, "gcc-c-dwarf5-zlib")
    data = bytearray(seed.data)
    sec = next(s for s in seed.sections if s.name == ".debug_info")
    struct.pack_into("<Q", data, sec.offset + 16, 1 << 40)  # Elf64_Chdr.ch_addralign
    rejected(tmp_path / "in", data, "decompress", "IN", "-o", "OUT", says="compression header has alignment")


def test_section_tables_that_do_not_add_up(seeds: dict, tmp_path: Path) -> None:
    """e_shstrndx past the sections (IndexError in the writer), a name outside the name table,
    two sections of one name (the second silently ignored)."""
    seed = _seed(seeds, "gcc-c-dwarf4")
    data = bytearray(seed.data)
    struct.pack_into("<H", data, 62, len(seed.sections) + 100)
    rejected(tmp_path / "in", data, *COMMANDS[2], says="no section name table")
    data = bytearray(seed.data)
    _shdr(seed, data, ".debug_str", "sh_name", 1 << 20)
    rejected(tmp_path / "in", data, *COMMANDS[0], says="outside the section name table")
    data = bytearray(seed.data)
    info = next(s for s in seed.sections if s.name == ".debug_info")
    name_at = seed.shdr["sh_name"][0]
    _shdr(seed, data, ".debug_str", "sh_name", int.from_bytes(data[info.header_at + name_at:][:4], "little"))
    rejected(tmp_path / "in", data, *COMMANDS[2], says="are both .debug_info")


def _plain_edit(seed: fuzzlib.SeedMap, name: str, edit) -> bytes:
    m = fuzzlib.Mutant(seed, None)  # type: ignore[arg-type]
    assert m.edit_plain(name, lambda plain: edit(plain) or "edited")
    return bytes(m.data)


@pytest.mark.parametrize("name", ["gcc-c-dwarf4", "gcc-cxx-dwarf4-zstd"])
def test_string_offset_past_the_last_string(seeds: dict, tmp_path: Path, name: str) -> None:
    """DW_FORM_strp past .debug_str's end: ValueError 'subsection not found' before."""
    seed = _seed(seeds, name)
    size = len(seed.plain[".debug_str"])

    def edit(plain: bytearray) -> None:
        for pos, width, _ in (s for s in seed.dwarf.strs if s[2] == ".debug_str"):
            plain[pos:pos + width] = size.to_bytes(width, "little")

    data = _plain_edit(seed, ".debug_info", edit)
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says="string offset")
    rejected(tmp_path / "in", data, "verify", str(seed_path(seeds, name, tmp_path)), "IN", says="string offset")


def seed_path(seeds: dict, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"seed-{name}"
    path.write_bytes(seeds[name].data)
    return path


def test_string_index_past_a_terminator(seeds: dict, tmp_path: Path) -> None:
    """A .debug_str_offsets entry pointing past the last terminator (clang's DW_FORM_strx1)."""
    seed = _seed(seeds, "clang-cxx-dwarf5")
    size = len(seed.plain[".debug_str"])
    data = _plain_edit(seed, ".debug_str_offsets",
                       lambda p: p.__setitem__(slice(8, len(p)), size.to_bytes(4, "little") * ((len(p) - 8) // 4)))
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says="string offset")
    # and the strings losing their terminators
    data = _plain_edit(seed, ".debug_str", lambda p: p.__setitem__(slice(0, len(p)), p.replace(b"\0", b"A")))
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says="string offset")


def test_verify_decl_file_number_below_zero(seeds: dict, tmp_path: Path) -> None:
    """A DW_AT_decl_file that reads as -64 (seed 122, case 5494 of the long run: bit flips in
    .debug_abbrev gave -62): IndexError in ``verify`` before, which looked up ``files[value]``
    for any value below the table's length."""
    seed = _seed(seeds, "gcc-c-dwarf5")

    def edit(plain: bytearray) -> None:
        const = plain.find(b"\x3a\x21")  # a DW_AT_decl_file of DW_FORM_implicit_const
        assert const > 0
        plain[const + 2] = 0x40  # SLEB128 -64
    data = _plain_edit(seed, ".debug_abbrev", edit)
    (tmp_path / "in").write_bytes(data)
    result = linkplugin("verify", str(seed_path(seeds, "gcc-c-dwarf5", tmp_path)), str(tmp_path / "in"), check=False)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_verify_with_a_damaged_section_name(seeds: dict, tmp_path: Path) -> None:
    """KeyError '.debug_info' before."""
    seed = _seed(seeds, "gcc-c-dwarf5")
    data = bytearray(seed.data)
    shstr = seed.sections[seed.shstrndx]
    info = next(s for s in seed.sections if s.name == ".debug_info")
    name_at = int.from_bytes(data[info.header_at:info.header_at + 4], "little")
    data[shstr.offset + name_at + len(".debug_i")] = ord("X")  # .debug_iXfo
    orig = seed_path(seeds, "gcc-c-dwarf5", tmp_path)
    rejected(tmp_path / "in", data, "verify", str(orig), "IN", says="has no .debug_info")
    rejected(tmp_path / "in", data, "verify", "IN", str(orig), says="has no .debug_info")


def test_reference_past_the_section_in_64_bit_dwarf(seeds: dict, tmp_path: Path) -> None:
    """A DW_FORM_ref8 of 2**64 - 1: OverflowError converting it to an int64 array before."""
    seed = _seed(seeds, "gcc-c-dwarf64")
    refs = [r for r in seed.dwarf.refs if r[1] == 8]
    if not refs:
        pytest.skip("this gcc writes no DW_FORM_ref8")
    pos = refs[0][0]
    data = _plain_edit(seed, ".debug_info", lambda p: p.__setitem__(slice(pos, pos + 8), b"\xff" * 8))
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says="reference")


def test_abbreviation_offset_past_63_bits_in_64_bit_dwarf(seeds: dict, tmp_path: Path) -> None:
    """A DWARF64 unit's 8-byte abbreviation offset past 2**63: OverflowError handing it to the
    compiled abbreviation parser before (fuzz seed 161)."""
    seed = _seed(seeds, "gcc-c-dwarf64")
    info = seed.plain[".debug_info"]
    at = 14 if int.from_bytes(info[12:14], "little") < 5 else 16  # (after unit_type, address_size)
    data = _plain_edit(seed, ".debug_info", lambda p: p.__setitem__(slice(at, at + 8), b"\x80" * 7 + b"\x90"))
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says=".debug_abbrev")


@pytest.mark.parametrize("command", [["merge-types", "IN", "-o", "OUT", "-j", "1"], ["verify", "ORIG", "IN"]])
def test_attribute_number_past_63_bits(seeds: dict, tmp_path: Path, command: list[str]) -> None:
    """An abbreviation's attribute number of 2**70 (a ULEB128 the compiled parser refuses):
    OverflowError filling the pure decoder's int64 columns before (fuzz seed 161)."""
    from linkplugin.dwarf.leb import encode_uleb
    seed = _seed(seeds, "gcc-cxx-dwarf4")
    abbrev = seed.plain[".debug_abbrev"]
    assert abbrev[0] < 0x80 and abbrev[1] < 0x80  # code, tag: one byte each; then the children flag
    data = _plain_edit(seed, ".debug_abbrev", lambda p: p.__setitem__(slice(3, 4), encode_uleb(1 << 70)))
    orig = seed_path(seeds, "gcc-cxx-dwarf4", tmp_path)
    rejected(tmp_path / "in", data, *[str(orig) if a == "ORIG" else a for a in command], says=".debug_abbrev")


def test_line_table_path_in_a_number_form(seeds: dict, tmp_path: Path) -> None:
    """DWARF 5 .debug_line giving DW_LNCT_path as DW_FORM_data4: AttributeError before."""
    seed = _seed(seeds, "gcc-cxx-dwarf5")
    off = seed.dwarf.lines[0]
    line = seed.plain[".debug_line"]
    opcode_base = line[off + 17]
    formats = off + 18 + opcode_base - 1  # directory_entry_format_count, then (type, form) pairs
    assert line[formats] >= 1 and line[formats + 1] == 1 and line[formats + 2] in (0x1F, 0x0E)
    data = _plain_edit(seed, ".debug_line", lambda p: p.__setitem__(formats + 2, 0x06))
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says=".debug_line")


# --- every structure boundary, exhaustively ------------------------------------------------------

def _outcomes(seed: fuzzlib.SeedMap, seed_dir: Path, tmp_path: Path, inputs: list[tuple[str, bytes]],
              commands: list[list[str]]) -> list[dict]:
    bad = []
    for note, data in inputs:
        for argv in commands:
            result = fuzzlib.run_case(fuzzlib.Case(0, seed.name, [note], argv, data), tmp_path, seed_dir / seed.name,
                                      timeout=30)
            if result["outcome"] not in ("success", "clean-error"):
                bad.append(result)
    return bad


@pytest.mark.parametrize("name", ["gcc-c-dwarf5", "clang-cxx-dwarf5-zlib"])
def test_truncation_at_every_boundary(seeds: dict, seed_dir: Path, tmp_path: Path, name: str) -> None:
    """The file cut at every place a structure starts or ends (ELF header fields, section headers,
    compression headers, sections, unit headers, abbreviation tables), and .debug_info and
    .debug_abbrev cut at each of their units, header fields and declarations."""
    seed = _seed(seeds, name)
    files = [(f"file cut at {at}", seed.data[:at]) for at in seed.boundaries]
    d = seed.dwarf
    cuts = {".debug_info": sorted({u["off"] for u in d.units} | {u["die_off"] for u in d.units}
                                  | {p + w for u in d.units for p, w in u["fields"].values()}),
            ".debug_abbrev": sorted({a["end"] - 1 for a in d.abbrevs} | {x["end"] for a in d.abbrevs
                                                                          for x in a["decls"]})}
    sections = []
    for sec, offsets in cuts.items():
        for at in offsets:
            m = fuzzlib.Mutant(seed, None)  # type: ignore[arg-type]
            if m.edit_plain(sec, lambda plain: plain.__delitem__(slice(at, None)) or f"cut at {at}"):
                sections.append((f"{sec} cut at {at}", bytes(m.data)))
    compress = ["compress", "IN", "-o", "OUT", "-j", "1"]
    merge = ["merge-types", "IN", "-o", "OUT", "-j", "1"]
    bad = _outcomes(seed, seed_dir, tmp_path, files, [compress, ["info", "IN"]])
    bad += _outcomes(seed, seed_dir, tmp_path, sections, [merge, ["verify", "ORIG", "IN"]])
    assert not bad, bad[:5]
    assert len(files) > 50 and len(sections) > 20


def test_section_over_the_elf_header(seeds: dict, tmp_path: Path) -> None:
    """A debug section of a .o moved to offset 0: the writer zeroed its old place, the ELF
    header, and wrote a file that is not ELF any more (exit 0)."""
    seed = _seed(seeds, "gcc-c-m32-object")
    data = bytearray(seed.data)
    _shdr(seed, data, ".debug_line", "sh_offset", 0)
    rejected(tmp_path / "in", data, "compress", "IN", "-o", "OUT", "-j", "1", says="overlaps the ELF")


def test_table_of_section_indices_with_a_partial_entry(seeds: dict, tmp_path: Path) -> None:
    """.strtab retyped SHT_SYMTAB_SHNDX with a size not a multiple of 4: struct.error in the
    writer reading the section indices it holds (merge-types, which removes sections)."""
    seed = _seed(seeds, "gcc-cxx-dwarf4-pubnames")
    data = bytearray(seed.data)
    strtab = next(s for s in seed.sections if s.name == ".strtab")
    _shdr(seed, data, ".strtab", "sh_type", 18)
    _shdr(seed, data, ".strtab", "sh_size", strtab.size | 1 if strtab.size % 4 == 0 else strtab.size)
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says="whole number")


def test_debug_named_table_is_not_compressed(seeds: dict, tmp_path: Path) -> None:
    """.debug_aranges retyped SHT_SYMTAB_SHNDX: compress made its size a non-multiple of the
    entry size (an output our reader and readelf refuse); a .debug_* section of a type that is
    not DWARF's is now left as it is."""
    from conftest import run

    seed = _seed(seeds, "gcc-c-dwarf5")
    data = bytearray(seed.data)
    _shdr(seed, data, ".debug_aranges", "sh_type", 18)
    src, out = tmp_path / "in", tmp_path / "out"
    src.write_bytes(bytes(data))
    linkplugin("compress", src, "-o", out, "-j", "1")
    linkplugin("info", out)
    listing = run("readelf", "-S", "-W", out).stdout
    line = next(ln for ln in listing.splitlines() if ".debug_aranges" in ln)
    assert "SYMTAB SECTION INDICES" in line and " C " not in line, line


@pytest.mark.parametrize("name, field", [("gcc-c-dwarf5-zlib", "chdr"), ("gcc-c-dwarf4-zdebug", "zdebug")])
def test_compressed_size_past_any_file(seeds: dict, tmp_path: Path, name: str, field: str) -> None:
    """A compression header claiming 2**64 - 1 plain bytes: OverflowError laying out the output
    before (the claim is checked against the data only as it decodes)."""
    seed = _seed(seeds, name)
    data = bytearray(seed.data)
    sec = next(s for s in seed.sections if s.name in (".debug_abbrev", ".zdebug_abbrev"))
    if field == "chdr":
        struct.pack_into("<Q", data, sec.offset + 8, (1 << 64) - 1)  # Elf64_Chdr.ch_size
    else:
        struct.pack_into(">Q", data, sec.offset + 4, (1 << 64) - 1)  # "ZLIB", then the big-endian size
    for args in COMMANDS[:3]:
        rejected(tmp_path / "in", data, *args, says="compression header claims")


def test_negative_decl_file_in_the_pure_path(seeds: dict, tmp_path: Path, monkeypatch) -> None:
    """DW_AT_decl_file as a DW_FORM_implicit_const of -64 (more negative than the file table is
    long): IndexError in the pure hash path before; now it names no file, as in the kernel."""
    seed = _seed(seeds, "gcc-c-dwarf5")
    at = seed.plain[".debug_abbrev"].find(b"\x3a\x21")  # DW_AT_decl_file, DW_FORM_implicit_const
    if at < 0 or seed.plain[".debug_abbrev"][at + 2] >= 0x40:
        pytest.skip("this gcc gives no one-byte implicit_const decl_file")
    data = _plain_edit(seed, ".debug_abbrev", lambda p: p.__setitem__(at + 2, 0x40))  # SLEB128 -64
    src, out = tmp_path / "in", tmp_path / "out"
    src.write_bytes(data)
    for pure in ("1", ""):
        monkeypatch.setenv("LINKPLUGIN_PURE_PYTHON", pure)
        result = linkplugin("merge-types", str(src), "-o", str(out), "-j", "1", check=False)
        assert result.returncode in (0, 2) and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) <= 1, result.stderr


def test_allocated_section_name_table_that_must_grow(seeds: dict, tmp_path: Path) -> None:
    """.shstrtab flagged SHF_ALLOC while .zdebug_* sections are renamed .debug_*: the grown
    table was skipped as unmovable and the output's names pointed past its end."""
    seed = _seed(seeds, "gcc-c-dwarf4-zdebug")
    data = bytearray(seed.data)
    _shdr(seed, data, ".shstrtab", "sh_flags", 0x2)  # SHF_ALLOC
    rejected(tmp_path / "in", data, "merge-types", "IN", "-o", "OUT", "-j", "1", says="part of the loaded program")
    rejected(tmp_path / "in", data, "decompress", "IN", "-o", "OUT", says="part of the loaded program")


def test_index_rebuild_with_numpy_offsets_and_compiled_new_offsets() -> None:
    """A unit the compiled decoder declines (bit flips in .debug_abbrev) makes the joined DIE
    offsets a numpy array while the compiled layout's new offsets stay an array.array; a name
    index (.debug_pubnames) then looked its entries up in both: TypeError (fuzz seed 130, case
    24886). Each is now seen by numpy on its own."""
    from array import array
    from types import SimpleNamespace

    import numpy as np

    from linkplugin.merge.layout import Resolver
    resolve = Resolver.__new__(Resolver)
    resolve.units = [SimpleNamespace(off=0, end=100)]
    resolve.offs = np.array([11, 20, 35], dtype=np.uint32)
    resolve.new = array("q", [11, 15, 27])
    assert resolve.many(np.array([35, 11], dtype=np.int64)).tolist() == [27, 11]
