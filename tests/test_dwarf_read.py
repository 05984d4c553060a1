"""The fast DIE decoder agrees with pyelftools on every DIE of real compiler output."""
from __future__ import annotations

import pytest
from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_FORM
from elftools.elf.elffile import ELFFile

from conftest_merge import VARIANTS, cached_build, have
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.abbrev import parse_abbrev_table
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import encode_uleb, read_uleb
from linkplugin.dwarf.read import decode_attrs, decode_unit
from linkplugin.dwarf.units import parse_units


def _decode_all(info: bytes, abbrev: bytes):
    for hdr in parse_units(info):
        table, _ = parse_abbrev_table(abbrev, hdr.abbrev_off)
        yield decode_unit(info, hdr, table)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_decoder_matches_pyelftools(variant):
    cc = variant[0]
    if not have(cc):
        pytest.skip(f"{cc} missing")
    path = cached_build(*variant)
    with open(path, "rb") as f:
        elf = ELFFile(f)
        dw = elf.get_dwarf_info()
        info = elf.get_section_by_name(".debug_info").data()
        abbrev = elf.get_section_by_name(".debug_abbrev").data()
        units = list(_decode_all(info, abbrev))
        cus = list(dw.iter_CUs())
        assert len(units) == len(cus)
        for ud, cu in zip(units, cus):
            dies = [d for d in cu.iter_DIEs() if not d.is_null()]
            assert ud.offs == [d.offset for d in dies]
            assert ud.codes == [d.abbrev_code for d in dies]
            index = {o: k for k, o in enumerate(ud.offs)}
            oracle_refs = set()
            for k, die in enumerate(dies):
                parent = die.get_parent()
                assert ud.parent[k] == (index[parent.offset] if parent is not None else -1)
                ab = ud.abbrevs[ud.codes[k]]
                _, p = read_uleb(info, die.offset)
                attrs, end = decode_attrs(info, p, ab.specs, ud.hdr)
                assert end == ud.attr_end(k)
                assert end == die.offset + die.size
                assert len(attrs) == len(die.attributes)
                for (at, form, value, start, _), ref in zip(attrs, die.attributes.values()):
                    assert at == (ENUM_DW_AT.get(ref.name, ref.name))
                    assert form == ENUM_DW_FORM[ref.form]
                    raw = ref.raw_value
                    if isinstance(raw, list):
                        raw = bytes(raw)
                    if form == F.DW_FORM_flag_present:
                        raw = 1
                    if form in F.UNIT_REF_FORMS:
                        raw += cu.cu_offset
                    assert value == raw, (hex(die.offset), ref)
                    assert start == ref.offset
                    if form in F.REF_FORMS:
                        oracle_refs.add((start, value))
            ours = set(zip(ud.ref_pos.tolist(), ud.ref_target.tolist()))
            assert ours == oracle_refs
            assert all(ud.ref_die[j] == index[max(o for o in ud.offs if o < ud.ref_pos[j])]
                       for j in range(0, len(ud.ref_pos), 97))


def _tiny_unit(abbrev_code: int = 2, ref: int = 0x0C) -> tuple[bytes, bytes]:
    """A DWARF 4 unit: a compile_unit DIE with one child base type holding a ref4."""
    abbrev = bytes([1, F.DW_TAG_compile_unit, 1, 0, 0, 2, F.DW_TAG_base_type, 0, F.DW_AT_type, F.DW_FORM_ref4,
                    0, 0, 0])
    body = encode_uleb(1) + encode_uleb(abbrev_code) + ref.to_bytes(4, "little") + b"\0"
    header = (2 + 4 + 1 + len(body)).to_bytes(4, "little") + (4).to_bytes(2, "little") + bytes(4) + b"\x08"
    return header + body, abbrev


def test_tiny_unit_decodes():
    info, abbrev = _tiny_unit()
    (ud,) = _decode_all(info, abbrev)
    assert ud.offs == [11, 12] and ud.parent == [-1, 0]
    assert ud.ref_target.tolist() == [12] and ud.ref_die.tolist() == [1]


def test_bad_abbrev_code():
    info, abbrev = _tiny_unit(abbrev_code=9)
    with pytest.raises(DwarfError, match="abbreviation code 9"):
        list(_decode_all(info, abbrev))


def test_reference_out_of_unit():
    info, abbrev = _tiny_unit(ref=0x400)
    with pytest.raises(DwarfError, match="out of its unit"):
        list(_decode_all(info, abbrev))


def test_truncated_info():
    info, abbrev = _tiny_unit()
    with pytest.raises(DwarfError):
        parse_units(info[:-3])
    bad = bytearray(info)
    bad[0] += 0  # same length, but cut the abbreviation table
    with pytest.raises(DwarfError):
        list(_decode_all(bytes(bad), abbrev[:4]))


def test_dwarf64_header():
    info, _ = _tiny_unit()
    body = info[11:]
    hdr64 = b"\xff\xff\xff\xff" + (2 + 8 + 1 + len(body)).to_bytes(8, "little") + (4).to_bytes(2, "little") \
        + bytes(8) + b"\x08"
    (u,) = parse_units(hdr64 + body)
    assert u.offset_size == 8 and u.die_off == 23


def test_a_code_defined_twice_means_its_last_entry_for_every_reader() -> None:
    """A damaged table that defines a code twice: the whole table, one code, the codes of one tag
    (abbrev.codes_with_tag, which the using-declaration pins read) and a set of codes all take
    its last entry (the pins once took the first, and the compiled merge's bytes then differed
    from the pure path's)."""
    from linkplugin.dwarf.abbrev import LazyTable, codes_with_tag, some_codes

    def entry(code: int, tag: int, specs: list[tuple[int, int]]) -> bytes:
        b = encode_uleb(code) + encode_uleb(tag) + b"\0"
        for at, form in specs:
            b += encode_uleb(at) + encode_uleb(form)
        return b + b"\0\0"

    table = (entry(1, F.DW_TAG_imported_declaration, [(0x18, 0x13)]) + entry(1, F.DW_TAG_typedef, [(3, 8)])
             + entry(2, F.DW_TAG_typedef, [(3, 8)]) + entry(2, F.DW_TAG_imported_declaration, [(0x18, 0x13)]) + b"\0")
    from linkplugin.dwarf import abbrev
    if abbrev._core is None:  # (LazyTable is the compiled parser's)
        pytest.skip("compiled parser not built")
    lazy = LazyTable(table, 0, False)
    assert codes_with_tag(lazy, F.DW_TAG_imported_declaration) == [2]
    assert lazy[1].tag == F.DW_TAG_typedef and lazy[2].tag == F.DW_TAG_imported_declaration
    assert {c: a.tag for c, a in some_codes(LazyTable(table, 0, False), [1, 2]).items()} == {
        1: F.DW_TAG_typedef, 2: F.DW_TAG_imported_declaration}
    assert {c: a.tag for c, a in LazyTable(table, 0, False).items()} == {
        1: F.DW_TAG_typedef, 2: F.DW_TAG_imported_declaration}
