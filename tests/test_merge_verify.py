"""verify() accepts every merge of the test programs and catches a broken one."""
from __future__ import annotations

import pytest

from conftest_merge import VARIANTS, cached_build, have, load_sections
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.read import decode_attrs
from linkplugin.dwarf.units import parse_units
from linkplugin.merge import merge_sections
from linkplugin.merge.hash import decode_with_abbrevs
from linkplugin.merge.verify import verify


def _merged(variant):
    secs, little, asize = load_sections(cached_build(*variant))
    result = merge_sections(secs, little_endian=little, address_size=asize)
    new = dict(secs, **result.replace)
    for name in result.drop:
        new.pop(name)
    return secs, new


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v)))
def test_verify_accepts_merge(variant):
    if not have(variant[0]):
        pytest.skip(f"{variant[0]} missing")
    secs, new = _merged(variant)
    assert verify(secs, new) == []


def test_verify_catches_a_wrong_reference():
    secs, new = _merged(("gcc", "c", 5, "-O0"))
    info = bytearray(new[".debug_info"])
    last = parse_units(bytes(info))[0]
    ud = decode_with_abbrevs(bytes(info), new[".debug_abbrev"], last, {})
    # Point the last DW_TAG_member's DW_AT_type (a unit-local reference: ref1, ref2 or ref4 by
    # the unit's size) at the unit's first base type instead.
    width = {F.DW_FORM_ref1: 1, F.DW_FORM_ref2: 2, F.DW_FORM_ref4: 4}
    base = next(i for i, c in enumerate(ud.codes) if ud.abbrevs[c].tag == F.DW_TAG_base_type)
    members = [j for j in range(len(ud.ref_pos))
               if ud.abbrevs[ud.codes[ud.ref_die[j]]].tag == F.DW_TAG_member and int(ud.ref_form[j]) in width]
    j = members[-1]
    assert ud.ref_target[j] != ud.offs[base]
    pos = int(ud.ref_pos[j])
    w = width[int(ud.ref_form[j])]
    info[pos:pos + w] = (ud.offs[base] - last.off).to_bytes(w, "little")
    problems = verify(secs, dict(new, **{".debug_info": bytes(info)}))
    assert problems


def test_verify_catches_a_changed_string():
    secs, new = _merged(("gcc", "c", 4, "-O0"))
    strs = new[".debug_str"].replace(b"where\0", b"wheRe\0")
    assert strs != new[".debug_str"]
    assert verify(secs, dict(new, **{".debug_str": strs}))


def test_verify_catches_a_changed_constant():
    # A struct's DW_AT_byte_size one larger: a plain value, read by the compiled reader when it
    # is built (decode_attrs on the pure path).
    secs, new = _merged(("gcc", "c", 5, "-O0"))
    info = bytearray(new[".debug_info"])
    where = None
    for hdr in parse_units(bytes(info)):
        ud = decode_with_abbrevs(bytes(info), new[".debug_abbrev"], hdr, {})
        for i, code in enumerate(ud.codes):
            if ud.abbrevs[code].tag == F.DW_TAG_structure_type:
                _, p = read_uleb(bytes(info), ud.offs[i])
                attrs, _ = decode_attrs(bytes(info), p, ud.abbrevs[code].specs, hdr)
                where = next((start for at, form, _, start, _ in attrs
                              if at == F.DW_AT_byte_size and form == F.DW_FORM_data1), None)
                if where is not None:
                    break
        if where is not None:
            break
    assert where is not None
    info[where] = (info[where] + 1) & 0xFF
    assert verify(secs, dict(new, **{".debug_info": bytes(info)}))
