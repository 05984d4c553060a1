"""Unit headers of .debug_info (DWARF 2-5) and .debug_types."""
from __future__ import annotations


from linkplugin.dwarf import forms as F
from linkplugin.dwarf.forms import DwarfError
from linkplugin.record import NamedTuple


class UnitHeader(NamedTuple):
    off: int            # offset of the unit_length field
    end: int            # offset after the unit
    version: int
    unit_type: int      # DW_UT_* (DWARF 2-4: compile, or type for .debug_types)
    offset_size: int    # 4, or 8 for DWARF64
    addr_size: int
    abbrev_off: int
    abbrev_field: int   # offset of the debug_abbrev_offset field (patched on rewrite)
    die_off: int        # offset of the first DIE


def parse_units(d: bytes, *, types_section: bool = False) -> list[UnitHeader]:
    """Every unit header of the section; DwarfError on a header that cannot be read. The last
    section's headers are remembered: every worker task of a job asks for them again."""
    global _last
    if _last is not None and _last[0] is d and _last[1] == types_section:
        return list(_last[2])
    units = _parse_units(d, types_section)
    _last = (d, types_section, tuple(units))
    return units


_last: tuple[bytes, bool, tuple[UnitHeader, ...]] | None = None


def unit_header(d: bytes, u: int) -> UnitHeader:
    """Header ``u`` of ``parse_units(d)``, without the copy of the whole list that a caller
    asking once per unit would pay (glibc's libc.so.6: 2063 units, twice each)."""
    if _last is None or _last[0] is not d or _last[1]:
        parse_units(d)
    return _last[2][u]  # type: ignore[index]


def forget_units() -> None:
    """Let go of the remembered section (a merge drops its input .debug_info once rewritten)."""
    global _last
    _last = None


def _parse_units(d: bytes, types_section: bool) -> list[UnitHeader]:
    units: list[UnitHeader] = []
    p = 0
    n = len(d)
    while p < n:
        off = p
        if n - p < 11:
            # Trailing padding after the last unit is allowed if it is all zero.
            if not any(d[p:]):
                break
            raise DwarfError(f"truncated unit header at 0x{off:x}")
        length = int.from_bytes(d[p:p + 4], "little")
        p += 4
        offset_size = 4
        if length == 0xFFFFFFFF:
            length = int.from_bytes(d[p:p + 8], "little")
            p += 8
            offset_size = 8
        elif length >= 0xFFFFFFF0:
            raise DwarfError(f"reserved unit length 0x{length:x} at 0x{off:x}")
        end = p + length
        if end > n:
            raise DwarfError(f"unit at 0x{off:x} runs past the end of the section")
        version = int.from_bytes(d[p:p + 2], "little")
        p += 2
        if version < 2 or version > 5:
            raise DwarfError(f"unit at 0x{off:x} has unsupported DWARF version {version}")
        if version == 5:
            unit_type = d[p]
            addr_size = d[p + 1]
            abbrev_field = p + 2
            abbrev_off = int.from_bytes(d[p + 2:p + 2 + offset_size], "little")
            p += 2 + offset_size
            if unit_type in (F.DW_UT_skeleton, F.DW_UT_split_compile):
                p += 8
            elif unit_type in (F.DW_UT_type, F.DW_UT_split_type):
                p += 8 + offset_size
            elif unit_type not in (F.DW_UT_compile, F.DW_UT_partial):
                raise DwarfError(f"unit at 0x{off:x} has unknown unit type 0x{unit_type:x}")
        else:
            abbrev_field = p
            abbrev_off = int.from_bytes(d[p:p + offset_size], "little")
            p += offset_size
            addr_size = d[p]
            p += 1
            unit_type = F.DW_UT_compile
            if types_section:
                unit_type = F.DW_UT_type
                p += 8 + offset_size
        if p > end:
            raise DwarfError(f"unit header at 0x{off:x} is longer than the unit")
        units.append(UnitHeader(off, end, version, unit_type, offset_size, addr_size, abbrev_off,
                                abbrev_field, p))
        p = end
    return units
