"""Location lists (.debug_loc for DWARF 2-4, .debug_loclists for DWARF 5): find the DIE-naming
operands of their expressions so that the merger keeps those DIEs and rewrites the operands in
place (the lists never change size)."""
from __future__ import annotations

from array import array

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.expr import _core, might_ref, scan_expr
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_uleb, skip_leb
from linkplugin.dwarf.units import UnitHeader

# DW_LLE_* entries: the operands before the expression ('u' uleb, 'A' address), whether one follows.
_LLE: dict[int, tuple[str, bool]] = {
    0x01: ("u", False),   # base_addressx
    0x02: ("uu", True),   # startx_endx
    0x03: ("uu", True),   # startx_length
    0x04: ("uu", True),   # offset_pair
    0x05: ("", True),     # default_location
    0x06: ("A", False),   # base_address
    0x07: ("AA", True),   # start_end
    0x08: ("Au", True),   # start_length
    0x09: ("uu", False),  # GNU_view_pair
}

Operand = tuple[int, int, str, int]  # (position in the section, width, kind, value)


def list_offsets(hdr: UnitHeader, locs: list[tuple[int, int, int, int]] | memoryview, loclists: bytes,
                 loclists_base: int | None) -> list[int] | array:
    """Section offsets of the lists named by the unit's location-list attributes, sorted, each
    once: a list, or an array('q') when the compiled core read the compiled scanner's rows."""
    if not len(locs):
        return []
    if hdr.offset_size == 4 and _core is not None and isinstance(locs, memoryview):
        known = isinstance(loclists_base, int)  # (a damaged unit may give it another form's value)
        got = _core.list_offsets(locs, loclists, loclists_base if known else 0, known, hdr.offset_size)
        if got is not None:
            return got
    return _list_offsets(hdr, locs, loclists, loclists_base)


def _list_offsets(hdr: UnitHeader, locs: list[tuple[int, int, int, int]] | memoryview, loclists: bytes,
                  loclists_base: int | None) -> list[int]:
    if isinstance(locs, memoryview):  # the compiled scanner's rows
        locs = locs.tolist()
    out = []
    for _, _, form, value in locs:
        if form == F.DW_FORM_loclistx:
            if not isinstance(loclists_base, int):
                raise DwarfError(f"unit at 0x{hdr.off:x} uses DW_FORM_loclistx without DW_AT_loclists_base"
                                 + ("" if loclists_base is None else " of a constant form"))
            p = loclists_base + value * hdr.offset_size
            out.append(loclists_base + int.from_bytes(loclists[p:p + hdr.offset_size], "little"))
        else:
            out.append(value)
    return sorted(set(out))


def scan_lists(sec: bytes, offsets: list[int] | array, hdr: UnitHeader) -> list[Operand]:
    """The DIE-naming operands of every expression in the lists at ``offsets`` (of .debug_loc when
    the unit is DWARF 2-4, of .debug_loclists for DWARF 5)."""
    if _core is not None and len(offsets):
        got = _core.scan_lists(sec, offsets if isinstance(offsets, array) else array("q", offsets), hdr.addr_size,
                               hdr.offset_size, hdr.version)
        if got is not None:
            return got
    if isinstance(offsets, array):
        offsets = offsets.tolist()
    out: list[Operand] = []
    A, O, V = hdr.addr_size, hdr.offset_size, hdr.version
    try:
        for p in offsets:
            if V < 5:
                ones = (1 << (8 * A)) - 1
                while True:
                    lo = int.from_bytes(sec[p:p + A], "little")
                    hi = int.from_bytes(sec[p + A:p + 2 * A], "little")
                    p += 2 * A
                    if lo == 0 and hi == 0:
                        break
                    if lo == ones:
                        continue
                    n = int.from_bytes(sec[p:p + 2], "little")
                    p += 2
                    if might_ref(sec, p, p + n):
                        out += scan_expr(sec, p, p + n, A, O, V)
                    p += n
                continue
            while True:
                kind = sec[p]
                p += 1
                if kind == 0:
                    break
                spec = _LLE.get(kind)
                if spec is None:
                    raise DwarfError(f"unknown location list entry 0x{kind:x} at 0x{p - 1:x}")
                for c in spec[0]:
                    p = skip_leb(sec, p) if c == "u" else p + A
                if spec[1]:
                    n, p = read_uleb(sec, p)
                    n = min(n, len(sec) + 1 - p)  # (past the section: p + n stays a machine-size integer)
                    if might_ref(sec, p, p + n):
                        out += scan_expr(sec, p, p + n, A, O, V)
                    p += n
    except IndexError:
        raise DwarfError("truncated location list") from None
    return out


if _core is not None:
    _core._init_lle(_LLE)
