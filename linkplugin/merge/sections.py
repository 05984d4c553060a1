"""The other sections that hold .debug_info offsets."""
from __future__ import annotations

from array import array

from linkplugin.arrays import flat_rows
from linkplugin.dwarf.forms import DwarfError
from linkplugin.merge import locations
from linkplugin.merge.layout import Resolver, write_patches


def rewrite_aranges(d: bytes, unit_map: dict[int, int]) -> bytes:
    """.debug_aranges with each set's debug_info_offset moved to its unit's new offset."""
    out = bytearray(d)
    p = 0
    while p < len(d):
        length = int.from_bytes(d[p:p + 4], "little")
        q = p + 4
        osize = 4
        if length == 0xFFFFFFFF:
            length = int.from_bytes(d[q:q + 8], "little")
            q += 8
            osize = 8
        end = q + length
        if length == 0 or end > len(d):
            raise DwarfError(f"bad .debug_aranges set at 0x{p:x}")
        q += 2  # version
        old = int.from_bytes(d[q:q + osize], "little")
        if old not in unit_map:
            raise DwarfError(f".debug_aranges names 0x{old:x}, which is not a unit")
        out[q:q + osize] = unit_map[old].to_bytes(osize, "little")
        p = end
    return bytes(out)


def patch_location_lists(sec: bytes, values: list[array], patches: list[tuple[int, int, int]],
                         resolve: Resolver) -> bytearray:
    """The location-list section with its DIE-naming operands rewritten in place: the
    unit-relative ones as each unit's ``values`` rows give them (position, width, new value:
    locations.values_at), the section offsets in ``patches`` (position, width, old target)
    resolved all at once (libjvm has 200,000 of them). Returned as the bytearray it was patched
    in (libjvm's is 51 MB: a bytes copy would be another)."""
    out = bytearray(sec)
    for rows in values:
        if not locations.write(out, rows):
            raise DwarfError("a location-list operand lies past the end of its section")
    if patches:
        if any(pos < 0 or pos + width > len(out) for pos, width, _ in patches):
            raise DwarfError("a location-list operand lies past the end of its section")
        write_patches(out, flat_rows(patches), resolve)
    return out
