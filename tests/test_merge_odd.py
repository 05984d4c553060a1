"""Odd and bad inputs: clear errors, cleanly skipped units, never a corrupt output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest_merge import build, have, load_sections, merge_file
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.leb import encode_uleb
from linkplugin.errors import LinkpluginError
from linkplugin.merge import merge_sections
from linkplugin.merge.verify import verify

# A tiny DWARF 4 producer: abbreviations 1 unit, 2 typedef, 3 base type, 4 variable.
ABBREV = b"".join([
    encode_uleb(1) + encode_uleb(F.DW_TAG_compile_unit) + b"\1"
    + bytes([F.DW_AT_name, F.DW_FORM_string, F.DW_AT_language, F.DW_FORM_data1, F.DW_AT_stmt_list,
             F.DW_FORM_sec_offset, 0, 0]),
    encode_uleb(2) + encode_uleb(F.DW_TAG_typedef) + b"\0"
    + bytes([F.DW_AT_name, F.DW_FORM_string, F.DW_AT_decl_file, F.DW_FORM_data1, F.DW_AT_type, F.DW_FORM_ref4,
             0, 0]),
    encode_uleb(3) + encode_uleb(F.DW_TAG_base_type) + b"\0"
    + bytes([F.DW_AT_name, F.DW_FORM_string, F.DW_AT_byte_size, F.DW_FORM_data1, 0x3E, F.DW_FORM_data1, 0, 0]),
    encode_uleb(4) + encode_uleb(F.DW_TAG_variable) + b"\0"
    + bytes([F.DW_AT_name, F.DW_FORM_string, F.DW_AT_type, F.DW_FORM_ref4, 0, 0]),
    b"\0",
])
# A DWARF 4 line table header naming one file, for DW_AT_decl_file 1.
_LINE_BODY = (b"\4\0" + (6 + 12 + 1 + 8).to_bytes(4, "little") + bytes([1, 1, 1, 0xFB, 14, 13])
              + bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]) + b"\0" + b"cu.h\0\0\0\0" + b"\0")
LINE = len(_LINE_BODY).to_bytes(4, "little") + _LINE_BODY


def unit(dies: list[tuple], *, dwarf64: bool = False) -> bytes:
    """A unit from [(code, name, extra)] where extra is a DIE index to reference (codes 2 and 4)
    or the byte size (code 3). DIE offsets are computed for the references."""
    header_len = 23 if dwarf64 else 11
    body = [b"\1" + b"cu.c\0" + b"\x0c" + bytes(4 if not dwarf64 else 8)]
    sizes = [len(body[0])]
    for code, name, _ in dies:
        sizes.append(1 + len(name) + 1 + {2: 5, 3: 2, 4: 4}[code])
    starts = [header_len]
    for s in sizes:
        starts.append(starts[-1] + s)
    for code, name, extra in dies:
        if code == 3:
            rest = bytes([extra, 5])
        else:
            ref = starts[extra + 1].to_bytes(4, "little")
            rest = b"\1" + ref if code == 2 else ref
        body.append(bytes([code]) + name.encode() + b"\0" + rest)
    data = b"".join(body) + b"\0"
    if dwarf64:
        return b"\xff\xff\xff\xff" + (2 + 8 + 1 + len(data)).to_bytes(8, "little") + b"\4\0" + bytes(8) + b"\x08" + data
    return (2 + 4 + 1 + len(data)).to_bytes(4, "little") + b"\4\0" + bytes(4) + b"\x08" + data


CYCLE = [(2, "A", 1), (2, "B", 0), (3, "int", 4), (4, "v", 0)]


def _merge(info: bytes, **extra: bytes):
    return merge_sections({".debug_info": info, ".debug_abbrev": ABBREV, ".debug_line": LINE, **extra},
                          little_endian=True, address_size=8)


def test_typedef_cycle_merges_and_verifies():
    info = unit(CYCLE) + unit(CYCLE)
    result = _merge(info)
    assert result.stats["duplicates_removed"] == 2  # A and B of the second unit (int stays: no file)
    new = {".debug_info": result.replace[".debug_info"], ".debug_abbrev": result.replace[".debug_abbrev"],
           ".debug_line": LINE}
    assert verify({".debug_info": info, ".debug_abbrev": ABBREV, ".debug_line": LINE}, new) == []


def test_cycle_entered_elsewhere_still_merges():
    other = [(2, "B", 1), (2, "A", 0), (3, "int", 4), (4, "v", 1)]  # same types, other order
    info = unit(CYCLE) + unit(other)
    result = _merge(info)
    assert result.stats["duplicates_removed"] == 2
    new = {".debug_info": result.replace[".debug_info"], ".debug_abbrev": result.replace[".debug_abbrev"],
           ".debug_line": LINE}
    assert verify({".debug_info": info, ".debug_abbrev": ABBREV, ".debug_line": LINE}, new) == []


def test_different_types_do_not_merge():
    info = unit(CYCLE) + unit([(2, "A", 2), (2, "B", 0), (3, "int", 8), (4, "v", 0)])
    assert _merge(info).stats["duplicates_removed"] == 0


def test_dwarf64_unit_is_left_alone():
    info = unit(CYCLE) + unit(CYCLE, dwarf64=True) + unit(CYCLE)
    result = _merge(info)
    assert any("64-bit DWARF" in w for w in result.warnings)
    assert result.stats["duplicates_removed"] == 2
    new_info = result.replace[".debug_info"]
    d64 = unit(CYCLE, dwarf64=True)
    assert d64[23:] in new_info  # its DIEs are copied as they are
    new = {".debug_info": new_info, ".debug_abbrev": result.replace[".debug_abbrev"], ".debug_line": LINE}
    assert verify({".debug_info": info, ".debug_abbrev": ABBREV, ".debug_line": LINE}, new) == []


def test_no_debug_info():
    with pytest.raises(LinkpluginError, match="no .debug_info"):
        merge_sections({".debug_abbrev": ABBREV}, little_endian=True, address_size=8)


def test_truncated_info():
    info = unit(CYCLE) + unit(CYCLE)
    with pytest.raises(LinkpluginError, match="past the end|truncated"):
        _merge(info[:-5])


def test_missing_abbreviation():
    bad = bytearray(unit(CYCLE))
    bad[11 + 11] = 9  # the first typedef's abbreviation code
    with pytest.raises(LinkpluginError, match="abbreviation code 9"):
        _merge(bytes(bad))


def test_reference_out_of_unit():
    bad = bytearray(unit(CYCLE))
    at = 11 + 11 + 4  # the first typedef's DW_AT_type
    bad[at:at + 4] = (0x999).to_bytes(4, "little")
    with pytest.raises(LinkpluginError, match="out of its unit"):
        _merge(bytes(bad))


def test_partial_units_are_found_before_the_hash_phase():
    """merge._holds_partial_units reads each unit's first DIE (DWARF 4): a partial unit anywhere
    means nothing is removed, and the types are not hashed; a unit it cannot read counts as
    not partial, and the hash phase says what is wrong with it, as before."""
    import linkplugin.merge
    from linkplugin.dwarf.units import parse_units

    partial = ABBREV.replace(encode_uleb(1) + encode_uleb(F.DW_TAG_compile_unit),
                             encode_uleb(1) + encode_uleb(F.DW_TAG_partial_unit))
    info = unit(CYCLE) + unit(CYCLE)
    second = bytearray(unit(CYCLE))  # a partial unit after a compile unit
    second[6:10] = len(ABBREV).to_bytes(4, "little")
    for abbrev, data, found in ((ABBREV, info, False), (ABBREV + partial, unit(CYCLE) + bytes(second), True)):
        secs = {".debug_info": data, ".debug_abbrev": abbrev, ".debug_line": LINE}
        assert linkplugin.merge._holds_partial_units(secs, parse_units(data)) is found
        assert not linkplugin.merge._supplementary(secs, parse_units(data))
        result = merge_sections(secs, little_endian=True, address_size=8)
        assert (result.stats["duplicates_removed"] == 0) is found
        assert result.stats["types"] == (0 if found else 6)
    # Only partial units: a supplementary file (dwz -m), left as it is.
    secs = {".debug_info": info, ".debug_abbrev": partial, ".debug_line": LINE}
    assert linkplugin.merge._supplementary(secs, parse_units(info))
    result = merge_sections(secs, little_endian=True, address_size=8)
    assert not result.replace and [w for w in result.warnings if "supplementary" in w]
    # A unit whose abbreviations are past the end of .debug_abbrev: not found, and a clear error.
    bad = bytearray(unit(CYCLE))
    bad[6:10] = (len(ABBREV) + 100).to_bytes(4, "little")
    secs = {".debug_info": bytes(bad), ".debug_abbrev": partial, ".debug_line": LINE}
    assert not linkplugin.merge._holds_partial_units(secs, parse_units(bytes(bad)))
    with pytest.raises(LinkpluginError):
        merge_sections(secs, little_endian=True, address_size=8)


@pytest.mark.skipif(not (have("gcc") and have("dwz")), reason="gcc or dwz missing")
def test_dwz_output_and_compressed_input(tmp_path: Path):
    """dwz's partial units and imported units (DWARF 4), and zlib-compressed sections, merge."""
    prog = build(tmp_path, "gcc", "c", 4, "-O0")
    subprocess.run(["dwz", str(prog)], check=True, capture_output=True)
    secs, _, _ = load_sections(prog)
    assert b"\x3c" in secs[".debug_abbrev"]  # DW_TAG_partial_unit is there
    packed = tmp_path / "packed"
    subprocess.run(["objcopy", "--compress-debug-sections=zlib", str(prog), str(packed)], check=True)
    out = tmp_path / "out"
    result = merge_file(packed, out)
    assert not any("left as it is" in w for w in result.warnings)
    # dwz shared the duplicates in partial units already: gdb reads those as part of each unit
    # importing them, so nothing is removed (libstdc++ after dwz -o: 268 entries moved otherwise)
    assert any("partial units" in w for w in result.warnings) and result.stats["duplicates_removed"] == 0
    if have("gdb"):
        from linkplugin.gdblist import compare_listings
        report = compare_listings(prog, out)
        assert report.ok and report.input_entries > 0, report.summary(5)
    assert verify(secs, load_sections(out)[0]) == []
    run = subprocess.run([str(out)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and run.stdout == subprocess.run([str(prog)], capture_output=True, text=True).stdout


@pytest.mark.skipif(not (have("g++") and have("dwz")), reason="g++ or dwz missing")
@pytest.mark.parametrize("dwarf", [4, 5])
def test_dwz_output_is_not_hashed_and_merges_to_the_same_bytes(tmp_path: Path, monkeypatch, dwarf: int):
    """An input with partial units loses no DIE, so its types are not hashed: the partial units
    are found before the hash phase (the DWARF 5 unit header, or the first DIE's tag), and the
    sections are those made when every unit is hashed."""
    import linkplugin.merge
    from linkplugin.dwarf.units import parse_units

    prog = build(tmp_path, "gcc", "c++", dwarf, "-O2")
    subprocess.run(["dwz", str(prog)], check=True, capture_output=True)
    secs, little, asize = load_sections(prog)
    assert linkplugin.merge._holds_partial_units(secs, parse_units(secs[".debug_info"]))
    skipped = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=2)
    monkeypatch.setattr(linkplugin.merge, "_holds_partial_units", lambda *args: False)
    hashed = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=2)
    assert skipped.replace == hashed.replace and skipped.drop == hashed.drop
    assert skipped.stats["duplicates_removed"] == hashed.stats["duplicates_removed"] == 0
    assert skipped.stats["types"] == 0 < hashed.stats["types"]
    assert any("partial units" in w for w in skipped.warnings)


@pytest.mark.skipif(not (have("g++") and have("dwz")), reason="g++ or dwz missing")
@pytest.mark.parametrize("dwarf5", [False, True], ids=["gnu-altlink", "dwarf5-sup"])
def test_dwz_multifile_output(tmp_path: Path, dwarf5: bool):
    """Debian's debug files went through dwz -m: what programs share sits in a supplementary file
    (.gnu_debugaltlink; .debug_sup with -5) that their DIEs name with DW_FORM_GNU_strp_alt and
    ref_alt (strp_sup, ref_sup4), namespace names included. They merge without reading it, the
    compiled core and the pure path to the same bytes; gdb, which reads it (not the DWARF 5 forms:
    "Cannot handle DW_FORM_ref_sup4"), lists the same program; llvm-dwarfdump (which reads the
    DWARF 5 forms) finds no new error."""
    from linkplugin.compiled import PURE_ENV
    from linkplugin.gdblist import compare_listings

    dwarf = 5 if dwarf5 else 4
    progs = [build(tmp_path, "gcc", "c++", dwarf, opt) for opt in ("-O0", "-O2")]
    common = tmp_path / "common.debug"
    subprocess.run(["dwz", *(["-5"] if dwarf5 else []), "-m", str(common), "-M", str(common), *map(str, progs)],
                   check=True, capture_output=True)
    for prog in progs:
        assert (b".debug_sup" if dwarf5 else b".gnu_debugaltlink") in prog.read_bytes()
        outs = []
        for pure in ("", "1"):
            out = tmp_path / f"{prog.name}.merged{pure}"
            env = dict(os.environ, **{PURE_ENV: pure})
            subprocess.run([sys.executable, "-m", "linkplugin", "merge-types", str(prog), "-o", str(out), "-j2"],
                           env=env, check=True, capture_output=True)
            outs.append(out)
        assert outs[0].read_bytes() == outs[1].read_bytes()
        out = outs[0]
        run = subprocess.run([str(out)], capture_output=True, text=True, timeout=30)
        assert run.returncode == 0 and run.stdout == subprocess.run([str(prog)], capture_output=True,
                                                                    text=True).stdout
        if have("gdb") and not dwarf5:
            report = compare_listings(prog, out)
            assert report.ok and report.input_entries > 0, report.summary(5)
        if have("llvm-dwarfdump") and dwarf5:  # (it takes DW_FORM_GNU_ref_alt for a DIE of this file)
            def errors(path: Path) -> int:
                text = subprocess.run(["llvm-dwarfdump", "--verify", str(path)], capture_output=True,
                                      text=True).stdout
                return text.count("error:")
            assert errors(out) <= errors(prog)
    # The supplementary file itself is left as it is: the programs name its DIEs and strings by
    # offset, and its build id would stay (merged, gdb read the programs' DIEs at old offsets:
    # "Dwarf Error: Cannot find DIE", on Debian's liblua5.4-0-dbg).
    kept = tmp_path / "common.merged"
    done = subprocess.run([sys.executable, "-m", "linkplugin", "merge-types", str(common), "-o", str(kept), "-j2"],
                          check=True, capture_output=True, text=True)
    assert "supplementary debug file" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert load_sections(kept) == load_sections(common)


def test_unknown_form_is_a_clear_error():
    odd = ABBREV.replace(bytes([F.DW_AT_byte_size, F.DW_FORM_data1]), bytes([F.DW_AT_byte_size, 0x7F]))
    with pytest.raises(LinkpluginError, match="unit at 0x0: unknown attribute form 0x7f"):
        merge_sections({".debug_info": unit(CYCLE), ".debug_abbrev": odd, ".debug_line": LINE},
                       little_endian=True, address_size=8)


def test_unit_whose_operand_no_longer_fits_is_copied_as_it_is(monkeypatch):
    """A unit the second rewrite pass gives up on (an expression operand that would not fit after
    the move) is copied as it is, after the kernel let go of the unit's reference columns: the
    fallback decodes the unit again."""
    from conftest_merge import cached_build
    from linkplugin.dwarf.units import parse_units
    from linkplugin.merge import rewrite
    from linkplugin.merge.hash import decode_with_abbrevs

    if not have("g++"):
        pytest.skip("g++ missing")
    secs, little, asize = load_sections(cached_build("gcc", "c++", 5, "-O2"))

    def gives_up(secs, ud, rem, width, codes):
        rewrite._kernel(secs, ud, rem, release=True)
        raise rewrite._NoFit()

    def draft_gives_up(draft, codes, hdr):
        raise rewrite._NoFit()

    monkeypatch.setattr(rewrite, "_rewrite_any", gives_up)
    monkeypatch.setattr(rewrite, "_recoded", draft_gives_up)  # (a unit the first pass copied already)
    result = merge_sections(dict(secs), little_endian=little, address_size=asize, jobs=1)
    assert any("would not fit" in w for w in result.warnings)
    info, abbrev = result.replace[".debug_info"], result.replace[".debug_abbrev"]
    units = parse_units(info)
    assert len(units) == len(parse_units(secs[".debug_info"])) == result.stats["verbatim_units"]
    assert sum(len(decode_with_abbrevs(info, abbrev, u, {})) for u in units) == result.stats["dies"]


def _variable_with_location(expr_field: bytes) -> tuple[bytes, bytes]:
    """(.debug_info, .debug_abbrev) of one unit holding a variable whose DW_AT_location
    (DW_FORM_exprloc) is ``expr_field``: the block's ULEB128 length, then its bytes."""
    abbrev = ABBREV[:-1] + (encode_uleb(5) + encode_uleb(F.DW_TAG_variable) + b"\0"
                            + bytes([F.DW_AT_location, F.DW_FORM_exprloc, 0, 0])) + b"\0"
    data = b"\1" + b"cu.c\0" + b"\x0c" + bytes(4) + b"\5" + expr_field + b"\0"
    return (2 + 4 + 1 + len(data)).to_bytes(4, "little") + b"\4\0" + bytes(4) + b"\x08" + data, abbrev


@pytest.mark.parametrize("expr_field", [
    encode_uleb((1 << 63) - 1),  # a block "longer" than any section: its end overflows 64 bits
    encode_uleb(1 << 62) + b"\x9f",
], ids=["length-2**63-1", "length-2**62"])
def test_expression_block_of_absurd_length_is_a_clean_error(expr_field):
    """A block length near 2**63 is refused as reading past the unit (the compiled scanner's
    bound once overflowed and read out of the section)."""
    info, abbrev = _variable_with_location(expr_field)
    with pytest.raises(LinkpluginError):
        merge_sections({".debug_info": info, ".debug_abbrev": abbrev, ".debug_line": LINE},
                       little_endian=True, address_size=8)


def test_expression_naming_an_offset_past_63_bits_is_a_clean_error():
    """DW_OP_convert names a base type by unit offset; an offset of 2**70 (which the compiled
    scanner declines, and the Python one reads) names no DIE: a DwarfError, as for any offset
    that is no DIE, not an overflow of the offsets' 64-bit arrays."""
    expr = b"\xa8" + encode_uleb(1 << 70)
    info, abbrev = _variable_with_location(encode_uleb(len(expr)) + expr)
    with pytest.raises(LinkpluginError, match="names a non-DIE offset"):
        merge_sections({".debug_info": info, ".debug_abbrev": abbrev, ".debug_line": LINE},
                       little_endian=True, address_size=8)


def test_abbreviation_code_past_64_bits_is_a_clean_error():
    """Tables are indexed by abbreviation code: a code of 2**64 - 1 in a unit's table (even one
    no DIE uses) is refused as too large on every path, not sized into an array."""
    abbrev = ABBREV[:-1] + encode_uleb((1 << 64) - 1) + encode_uleb(F.DW_TAG_base_type) + b"\0\0\0" + b"\0"
    with pytest.raises(LinkpluginError, match="abbreviation code .* is too large"):
        merge_sections({".debug_info": unit(CYCLE) + unit(CYCLE), ".debug_abbrev": abbrev, ".debug_line": LINE},
                       little_endian=True, address_size=8)


def test_attribute_number_past_63_bits_merges_or_is_a_clean_error():
    """An attribute number of 2**63 does not fit the compiled tables' 64-bit numbers: those
    units take the Python code, which merges them or says what is wrong, never an overflow."""
    abbrev = ABBREV[:-1] + (encode_uleb(5) + encode_uleb(F.DW_TAG_variable) + b"\0" + encode_uleb(1 << 63)
                            + bytes([F.DW_FORM_data1, 0, 0])) + b"\0"
    data = b"\1" + b"cu.c\0" + b"\x0c" + bytes(4) + b"\5\x2a" + b"\0"
    info = (2 + 4 + 1 + len(data)).to_bytes(4, "little") + b"\4\0" + bytes(4) + b"\x08" + data
    try:
        merge_sections({".debug_info": info + info, ".debug_abbrev": abbrev, ".debug_line": LINE},
                       little_endian=True, address_size=8)
    except LinkpluginError:
        pass
