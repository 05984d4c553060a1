"""The rewrite phase's compiled path: one ``_rewritecore.Unit`` per unit does the reference
analysis, the abbreviation keys and the copy of ``rewrite._rewrite`` in C.

The pure loop in rewrite.py is the reference (a test compares the output bytes of both paths).
Per unit, Python only makes the kernel's input arrays, maps the unit's keys to their shared codes
(a dict lookup per key) and reads location lists.
"""
from __future__ import annotations

from array import array

from linkplugin.compiled import load_compiled
from linkplugin.dwarf.expr import REF_OPS
from linkplugin.dwarf.read import UnitDies
from linkplugin.lazy import np
from linkplugin.merge.table import Removals

_core = load_compiled("linkplugin.merge._rewritecore")
_XKIND = {"s": 3, "u": 4, "f": 5}
# copy() status (as in _rewritecore)
OK, PURE, OVERFLOW, NOFIT = 0, 4, 5, 6


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
    # DIE-naming expression operands, by position: (DIE, position, width, kind, target)
    xr = _xref_rows(ud.xrefs)
    unit = _core.Unit(info, abbrev, hdr.abbrev_off, hdr.off, hdr.die_off, hdr.end, hdr.version, hdr.addr_size,
                      hdr.offset_size, offs, codes, parent, ends, _int64(ud.ref_pos), _int64(ud.ref_die),
                      _int64(ud.ref_form), _int64(ud.ref_target), _int64(rem.starts), _int64(rem.ends), xr)
    return None if unit.pure else unit


def planned_call(info: bytes, abbrev: bytes, hdr, tables: tuple, rem: Removals, width: int) -> tuple:
    """The arguments of the first rewrite pass of a unit the kernel scans (``planned_many``
    takes a batch's), with the scanner's ``tables`` (read._scan_tables) at ``width`` (1 or 2)."""
    prog, start, kids = tables
    return (info, abbrev, hdr.abbrev_off, hdr.off, hdr.die_off, hdr.end, hdr.version, hdr.addr_size,
            hdr.offset_size, prog, start, kids, rem.starts, rem.ends, width)


def planned_many(calls: list[tuple], intern: dict) -> list:
    """The first rewrite pass (_rewritecore.plan_units) of each unit of ``planned_call``, in one
    stretch without the GIL: for each, (kernel, DIEs, references, whether an expression names
    a DIE, keys, draft copy, tag rows), or None where the unit takes the decoding path: the
    scanner or the compiled expression scanner declines (the decoder reads what they do not),
    or the kernel leaves the unit to the pure loop. The expressions' operands are those the
    decoder finds (read._unit_dies scans them with the same loop)."""
    return _core.plan_units(calls, REF_OPS, intern) if calls else []


def _xref_rows(xrefs: list) -> array:
    """DIE-naming expression operands (DIE, position, width, kind, target), as the kernel
    takes them: rows of 5 by position, the kind as a number."""
    return array("q", [v for x in sorted(xrefs, key=lambda x: x[1]) for v in (x[0], x[1], x[2], _XKIND[x[3]], x[4])])


def as_data(entry: bytes, attrs: bytes) -> tuple[bytes, bytes, array] | None:
    """rewrite._as_data's reading of one entry, in C (_rewritecore.as_data)."""
    return _core.as_data(entry, attrs)


def as_data_all(total: dict[bytes, int], attrs: bytes) -> dict[bytes, tuple[bytes, bytes, array]]:
    """rewrite._as_data's first step over every entry, in C (_rewritecore.as_data_all)."""
    return _core.as_data_all(total, attrs)


def use_counts(plans: list) -> dict[bytes, int]:
    """rewrite.shared_table's sum of the plans' counts by entry, in C."""
    return _core.use_counts(plans)


def tag_sums(rows_of: list[array]) -> dict[int, list[int]]:
    """merge._tag_table's sums of the units' tag rows (array('q'), rows of 3 end to end), in C."""
    return _core.tag_sums(rows_of)


def recode(body: bytes, rel: array, keys: list[bytes], codes: dict[bytes, int], locs: array, fixes: array,
           patches: array, width: int, rows: dict[bytes, array] | None = None,
           sizes: tuple[int, int, int] = (4, 8, 4)) -> tuple[int, bytes | None, array, array]:
    """_rewritecore.recode: a unit's first-pass copy with its keys' shared codes (and, by
    ``rows``, implicit constants written into its DIEs; ``sizes``: the unit's offset, address
    and DW_FORM_ref_addr sizes)."""
    return _core.recode(body, rel, keys, codes, locs, fixes, patches, width, rows, *sizes)


def _int64(column):
    """A column as the kernel takes it: 64-bit integers, contiguous (the compiled scanner's and
    table's are; the pure path's numpy arrays may be narrower)."""
    if isinstance(column, (memoryview, array)) and column.itemsize == 8:
        return column
    return np.ascontiguousarray(column, dtype=np.int64)


def write_patches(info: bytearray, patches: list, bases: list[int], resolve) -> tuple[int, int] | None:
    """layout.write_patches's loop in C, on each unit's rows (``patches[u]``: int64, rows of 3
    end to end; positions from ``bases[u]``) as they are, for the layout.Resolver ``resolve``:
    None, or the first problem as (kind, value)."""
    return _core.write_patches(info, patches, array("q", bases), resolve.offs, resolve.new,
                               resolve.units[0].off, resolve.units[-1].end)


def new_offsets(rels: list, bases: array, total: int, narrow: bool = False) -> array:
    """Every DIE's new section offset (-1: removed), from each unit's new unit-relative ones; with
    ``narrow`` as array('I') (0xFFFFFFFF: removed), for a new section shorter than that."""
    return _core.new_offsets(rels, bases, total, narrow)


def redirect(new: array, starts: array, lens: array, canon: array) -> bool:
    """layout.Resolver's removed DIEs following their canonical copies, in C."""
    return _core.redirect(new, starts, lens, canon)


def removal_rows(removals: list, first: array) -> tuple[array, array, array]:
    """``redirect``'s (starts, lens, canon) from every unit's table.Removals."""
    return _core.removal_rows([r.starts for r in removals], [r.ends for r in removals],
                              [r.canon_unit for r in removals], [r.canon_die for r in removals], first)
