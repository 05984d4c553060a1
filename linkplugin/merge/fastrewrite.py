"""The rewrite phase's compiled path: the per-DIE events of ``rewrite._rewrite`` built with numpy,
and its copy loop run by ``_rewritecore.copy_unit`` in C.

The pure loop in rewrite.py is the reference (a test compares the output bytes of both paths).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from linkplugin.compiled import load_compiled
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.read import UnitDies

_core = load_compiled("linkplugin.merge._rewritecore")
_XKIND = {"s": 3, "u": 4, "f": 5}


def _ref_attr_table(abbrevs: dict) -> np.ndarray:
    """[code, k]: the attribute of the k-th reference of each abbreviation (kept for the last
    table: both rewrite passes of a unit get the same table object from parse_abbrev_table)."""
    global _last_table
    if _last_table is not None and _last_table[0] is abbrevs:
        return _last_table[1]
    ref_attrs = {c: [at for at, form, _ in ab.specs if form in F.REF_FORMS] for c, ab in abbrevs.items()}
    width_k = max((len(v) for v in ref_attrs.values()), default=0)
    table = np.zeros((max(abbrevs) + 1, max(width_k, 1)), dtype=np.int64)
    for c, ats in ref_attrs.items():
        table[c, :len(ats)] = ats
    _last_table = (abbrevs, table)
    return table


_last_table: tuple[dict, np.ndarray] | None = None


def available() -> bool:
    return _core is not None


def copy_dies(info: bytes, ud: UnitDies, keep: np.ndarray, local: np.ndarray, inside: np.ndarray,
              sib: np.ndarray, tidx: np.ndarray, widths: dict[int, int], followed: tuple[int, ...],
              own_attrs: Callable[[list[tuple[int, int]]], dict], new_form: tuple[int, int, int],
              local_width: int, margin: int, assign: Callable[..., int] | None = None,
              uses: list[int] | None = None
              ) -> tuple[bytearray, list[int], list[tuple], list, np.ndarray] | None:
    """(unit bytes, new offsets, new abbreviation keys in first-use order, operands to fix,
    patches as int64 rows (position, width, old target): cheaper to send back than tuples): what the pure copy loop of ``_rewrite`` makes, given its reference analysis
    (``keep``, ``local``, ``inside``, ``sib``, ``tidx``) and ``own_attrs(moved_spec)``; None if
    the unit (plus ``margin`` bytes) does not fit ``local_width``-byte local references.
    ``assign(code, forms, added)``
    gives each new key its code (default: numbers in first-use order); ``uses`` receives the
    number of DIEs of each key, in the order of the keys."""
    hdr = ud.hdr
    n = len(ud.offs)
    offs, codes, parent, ends = ud.arrays()
    rp, rd, rf, tgt = ud.ref_pos, ud.ref_die, ud.ref_form, ud.ref_target
    kind = np.where(sib, 0, np.where(local, 1, 2)).astype(np.int64)
    w = np.zeros(len(rp), dtype=np.int64)
    for form, width in widths.items():
        w[rf == form] = width
    for j in np.flatnonzero(rf == F.DW_FORM_ref_udata).tolist():
        w[j] = read_uleb(info, int(rp[j]))[1] - int(rp[j])
    b = np.where(kind == 1, tidx, tgt)
    kept = keep[rd] if len(rd) else np.zeros(0, dtype=bool)
    # A specification / abstract origin that now points out of the unit: the k-th reference
    # attribute of the DIE's abbreviation (references are in attribute order within a DIE).
    moved_spec: list[tuple[int, int]] = []
    cand = (kind == 2) & inside & kept
    if cand.any():
        table = _ref_attr_table(ud.abbrevs)
        kth = np.arange(len(rd)) - np.searchsorted(rd, rd, side="left")
        attr = table[codes[rd], kth]
        sel = cand & np.isin(attr, followed)
        moved_spec = list(zip(rd[sel].tolist(), tidx[sel].tolist()))
    extra = own_attrs(moved_spec)
    pos, die, kd, wd, bd = rp[kept], rd[kept], kind[kept], w[kept], b[kept]
    xr = [x for x in ud.xrefs if keep[x[0]]]
    if xr:
        xpos = np.array([x[1] for x in xr], dtype=np.int64)
        xdie = np.array([x[0] for x in xr], dtype=np.int64)
        xkind = np.array([_XKIND[x[3]] for x in xr], dtype=np.int64)
        xw = np.array([x[2] for x in xr], dtype=np.int64)
        xt = np.array([x[4] for x in xr], dtype=np.int64)
        xb = np.where(xkind == 3, xt, np.searchsorted(offs, xt))
        pos, die, kd, wd, bd = (np.concatenate(a) for a in ((pos, xpos), (die, xdie), (kd, xkind), (wd, xw),
                                                             (bd, xb)))
        order = np.argsort(pos, kind="stable")
        pos, die, kd, wd, bd = pos[order], die[order], kd[order], wd[order], bd[order]
    kids = np.zeros(max(ud.abbrevs) + 1, dtype=np.uint8)
    for c, ab in ud.abbrevs.items():
        kids[c] = ab.children
    got = _core.copy_unit(
        info, hdr.off, hdr.die_off, hdr.end, widths[F.DW_FORM_ref_addr], offs, codes, parent, ends, kids,
        keep.astype(np.uint8), *(np.ascontiguousarray(a, dtype=np.int64) for a in (pos, die, kd, wd, bd)),
        extra, new_form, local_width, margin, assign)
    if got is None:
        return None
    body, new_rel, keys, fix_operand, patches, counts = got
    if uses is not None:
        uses[:] = counts
    return bytearray(body), new_rel.tolist(), keys, fix_operand, patches
