"""Phase 4 (serial, cheap): place the units, resolve every cross-unit reference, assemble
.debug_info and .debug_abbrev."""
from __future__ import annotations

import bisect

import numpy as np

from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.units import UnitHeader
from linkplugin.merge.rewrite import UnitOutput
from linkplugin.merge.table import Removals


class Resolver:
    """Old .debug_info offset of a DIE -> its new offset, following removed duplicates to the
    matching DIE of their canonical copy."""

    def __init__(self, units: list[UnitHeader], offs: list[np.ndarray], removals: list[Removals],
                 outputs: list[UnitOutput], new_unit_off: list[int]) -> None:
        self.starts = [u.off for u in units]
        self.units = units
        self.offs = offs
        self.removals = removals
        self.outputs = outputs
        self.new_unit_off = new_unit_off

    def __call__(self, old: int) -> int:
        u = bisect.bisect_right(self.starts, old) - 1
        if u < 0 or old >= self.units[u].end:
            raise DwarfError(f"a reference to 0x{old:x} is outside .debug_info")
        offs = self.offs[u]
        d = int(np.searchsorted(offs, old))
        if d >= len(offs) or offs[d] != old:
            raise DwarfError(f"a reference to 0x{old:x} does not point to a DIE")
        rel = int(self.outputs[u].new_rel[d])
        if rel < 0:  # inside a removed duplicate: the same DIE of the canonical copy
            rem = self.removals[u]
            k = int(np.searchsorted(rem.starts, d, side="right")) - 1
            cu, cd = int(rem.canon_unit[k]), int(rem.canon_die[k]) + d - int(rem.starts[k])
            u, rel = cu, int(self.outputs[cu].new_rel[cd])
            if rel < 0:
                raise DwarfError("a canonical type was removed (internal error)")
        return self.new_unit_off[u] + rel


def assemble(units: list[UnitHeader], outputs: list[UnitOutput], offs: list[np.ndarray],
             removals: list[Removals], keep_abbrev_prefix: bytes | None
             ) -> tuple[bytes, bytes, list[int], Resolver]:
    """(new .debug_info, new .debug_abbrev, new unit offsets, resolver)."""
    new_unit_off = []
    pos = 0
    for out in outputs:
        new_unit_off.append(pos)
        pos += len(out.body)
    resolve = Resolver(units, offs, removals, outputs, new_unit_off)
    # Identical tables are shared; with .debug_types present the old section stays as a prefix
    # because type units keep their abbreviation offsets.
    abbrev = bytearray(keep_abbrev_prefix or b"")
    table_at: dict[bytes, int] = {}
    info = bytearray(pos)
    for u, out in enumerate(outputs):
        base = new_unit_off[u]
        info[base:base + len(out.body)] = out.body
        at = table_at.get(out.abbrev)
        if at is None:
            at = table_at[out.abbrev] = len(abbrev)
            abbrev += out.abbrev
        hdr = units[u]
        f = base + hdr.abbrev_field - hdr.off
        info[f:f + hdr.offset_size] = at.to_bytes(hdr.offset_size, "little")
        for p, w, old in out.patches:
            info[base + p:base + p + w] = resolve(old).to_bytes(w, "little")
    return bytes(info), bytes(abbrev), new_unit_off, resolve
