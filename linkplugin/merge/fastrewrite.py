"""The rewrite phase's compiled path: one ``_rewritecore.Unit`` per unit does the reference
analysis, the abbreviation keys and the copy of ``rewrite._rewrite`` in C.

The pure loop in rewrite.py is the reference (a test compares the output bytes of both paths).
Per unit, Python only makes the kernel's input arrays, maps the unit's keys to their shared codes
(a dict lookup per key) and reads location lists.
"""
from __future__ import annotations

import numpy as np

from linkplugin.compiled import load_compiled
from linkplugin.dwarf.read import UnitDies
from linkplugin.merge.table import Removals

_core = load_compiled("linkplugin.merge._rewritecore")
_XKIND = {"s": 3, "u": 4, "f": 5}
# copy() status (as in _rewritecore)
OK, OVERFLOW, NOFIT = 0, 5, 6


def available() -> bool:
    return _core is not None


def entry_order(entry: bytes) -> bytes:
    """A sort key of an abbreviation entry that orders entries like their key tuples."""
    return _core.entry_order(entry)


def table(entries: list[bytes]) -> bytes:
    """rewrite._table in C."""
    return _core.table(entries)


def prepare(info: bytes, abbrev: bytes, ud: UnitDies, rem: Removals):
    """The unit's kernel with its removals applied, or None for a unit the kernel leaves to the
    pure loop."""
    hdr = ud.hdr
    offs, codes, parent, ends = ud.arrays()
    if ud.xrefs:
        xr = np.array([(x[0], x[1], x[2], _XKIND[x[3]], x[4]) for x in ud.xrefs], dtype=np.int64)
        xr = np.ascontiguousarray(xr[np.argsort(xr[:, 1], kind="stable")]).reshape(-1)
    else:
        xr = np.zeros(0, dtype=np.int64)
    c = np.ascontiguousarray
    unit = _core.Unit(info, abbrev, hdr.abbrev_off, hdr.off, hdr.die_off, hdr.end, hdr.version, hdr.addr_size,
                      hdr.offset_size, offs, codes, parent, ends, c(ud.ref_pos, dtype=np.int64),
                      c(ud.ref_die, dtype=np.int64), c(ud.ref_form, dtype=np.int64), c(ud.ref_target, dtype=np.int64),
                      c(rem.starts, dtype=np.int64), c(rem.ends, dtype=np.int64), xr)
    return None if unit.pure else unit


def write_patches(info: bytearray, patches: list[np.ndarray], bases: list[int], resolve) -> tuple[int, int] | None:
    """layout.write_patches's loop in C, on each unit's rows (``patches[u]``, positions from
    ``bases[u]``) as they are, for the layout.Resolver ``resolve``: None, or the first problem as
    (kind, value)."""
    rows = [np.ascontiguousarray(p, dtype=np.int64).reshape(-1, 3) for p in patches]
    return _core.write_patches(info, rows, np.array(bases, dtype=np.int64), resolve.offs, resolve.new,
                               resolve.units[0].off, resolve.units[-1].end)


def new_offsets(rels: list[np.ndarray], bases: np.ndarray, total: int, narrow: bool = False) -> np.ndarray:
    """Every DIE's new section offset (-1: removed), from each unit's new unit-relative ones; with
    ``narrow`` as uint32 (0xFFFFFFFF: removed), for a new section shorter than that."""
    return _core.new_offsets(rels, bases, total, narrow)


def redirect(new: np.ndarray, starts: np.ndarray, lens: np.ndarray, canon: np.ndarray) -> bool:
    """layout.Resolver's removed DIEs following their canonical copies, in C."""
    return _core.redirect(new, starts, lens, canon)
