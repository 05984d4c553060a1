"""The fast DIE decoder: one unit in, compact per-DIE arrays out.

``decode_unit`` walks the DIE stream with the compiled plans of ``abbrev``; for each DIE it only
appends its offset, abbreviation code, parent and subtree end. References, DIE-naming expression
operands and location-list pointers are collected as tuples (the only per-attribute objects).
``decode_attrs`` is the slow, complete decoder for the few DIEs whose values are needed.
"""
from __future__ import annotations

import struct
from array import array

from linkplugin.arrays import filled, fits_int64, shaped
from linkplugin.dwarf import forms as F
from linkplugin.compiled import load_compiled
from linkplugin.dwarf.abbrev import (OP_SKIP, Abbrev, _expr, code_table_size, compile_plan, form_size,
                                     scan_program)
from linkplugin.dwarf.abbrev import forget_tables as forget_abbrev_tables
from linkplugin.dwarf.expr import REF_OPS
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_sleb, read_uleb
from linkplugin.dwarf.units import UnitHeader
from linkplugin.lazy import np

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Union

    from linkplugin.dwarf.abbrev import Plan
    Value = Union[int, bytes]

_scan = load_compiled("linkplugin.dwarf._scan")
_exprs = load_compiled("linkplugin.dwarf._loclists")


class UnitDies:
    """One decoded unit. The per-DIE columns exist as int64 arrays (``arrays()``: memoryviews of
    the compiled scanner's blocks, or array('q')) and as Python lists (``offs``, ``codes``,
    ``parent``, ``ends``); each form is made from the other on first use only, so compiled code
    that reads the arrays never pays for a Python int per DIE. The reference columns are
    memoryviews from the compiled scanner, numpy arrays from the pure decoder."""

    __slots__ = ("hdr", "abbrevs", "_lists", "ref_pos", "ref_die", "ref_form", "ref_at", "ref_target",
                 "xrefs", "locs", "_arrays", "loc_ops")

    def __init__(self, hdr: UnitHeader, abbrevs: dict[int, Abbrev],
                 lists: tuple[list[int], list[int], list[int], list[int]] | None,
                 ref_pos: np.ndarray, ref_die: np.ndarray, ref_form: np.ndarray, ref_at: np.ndarray,
                 ref_target: np.ndarray, xrefs: list[tuple[int, int, int, str, int]] | None = None,
                 locs: list[tuple[int, int, int, int]] | np.ndarray | None = None,
                 arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        if lists is None and arrays is None:
            raise ValueError("UnitDies needs its DIE columns as lists or as arrays")
        self.hdr = hdr
        self.abbrevs = abbrevs
        # (offs, codes, parent, ends): section offset of each DIE (null entries are not DIEs),
        # abbreviation code, index of the parent DIE (-1 for the unit DIE), offset after the
        # DIE's subtree (its closing null included).
        self._lists = lists
        self._arrays = arrays
        # Every reference attribute, sorted by position: value position, DIE index, form,
        # attribute (-1 for a DW_FORM_ref4 that is not DW_AT_sibling: the decoder does not look
        # it up) and the target as a section offset.
        self.ref_pos, self.ref_die, self.ref_form, self.ref_at, self.ref_target = (
            ref_pos, ref_die, ref_form, ref_at, ref_target)
        # (die, operand position, width, kind 'u'/'f'/'s', target section offset) from expressions
        self.xrefs = xrefs if xrefs is not None else []
        # (die, attribute, form, value) of location-list pointers: tuples, or an (n, 4) int64
        # array from the compiled scanner
        self.locs = locs if locs is not None else []
        # The DIE-naming operands of the unit's location lists once read, as
        # merge.locations.targets makes them of (rows, patches); None until then: the phases
        # after the hash phase read them once.
        self.loc_ops: tuple | None = None

    def _columns(self) -> tuple[list[int], list[int], list[int], list[int]]:
        if self._lists is None:
            self._lists = tuple(a.tolist() for a in self._arrays)  # type: ignore[union-attr,assignment]
        return self._lists  # type: ignore[return-value]

    @property
    def offs(self) -> list[int]:
        return self._columns()[0]

    @property
    def codes(self) -> list[int]:
        return self._columns()[1]

    @property
    def parent(self) -> list[int]:
        return self._columns()[2]

    @property
    def ends(self) -> list[int]:
        return self._columns()[3]

    def die(self, i: int) -> tuple[int, int]:
        """(section offset, abbreviation code) of DIE ``i``, without making the lists."""
        if self._lists is not None:
            return self._lists[0][i], self._lists[1][i]
        return int(self._arrays[0][i]), int(self._arrays[1][i])  # type: ignore[index]

    def __len__(self) -> int:
        """The number of DIEs."""
        return len(self._arrays[0]) if self._arrays is not None else len(self._lists[0])  # type: ignore[index]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``offs``, ``codes``, ``parent`` and ``ends`` as int64 arrays (made once)."""
        if self._arrays is None:
            self._arrays = tuple(array("q", x) for x in self._lists)  # type: ignore[union-attr,assignment]
        return self._arrays  # type: ignore[return-value]

    def numpy_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``arrays()`` seen by numpy, without a copy (for the pure path and the index and ODR
        code, which compute with numpy; the compiled scanner's are memoryviews)."""
        return tuple(np.asarray(a) for a in self.arrays())  # type: ignore[return-value]

    def drop_references(self) -> None:
        """Let go of the reference columns (40 bytes a reference), once a compiled rewrite
        kernel holds what it needs of them; the unit can no longer be rewritten or copied."""
        self.ref_pos = self.ref_die = self.ref_form = self.ref_at = self.ref_target = None  # type: ignore[assignment]

    def attr_end(self, i: int) -> int:
        """Offset after the DIE's own attributes (where its first child or closing null starts)."""
        if i + 1 < len(self.offs) and self.parent[i + 1] == i:
            return self.offs[i + 1]
        if self.abbrevs[self.codes[i]].children:
            return self.ends[i] - 1
        return self.ends[i]


def unit_plans(abbrevs: dict[int, Abbrev], hdr: UnitHeader) -> tuple[list[Plan | None], list[bool]]:
    size = code_table_size(abbrevs)
    plans: list[Plan | None] = [None] * size
    kids = [False] * size
    for code, ab in abbrevs.items():
        plans[code] = compile_plan(ab.specs, hdr.version, hdr.offset_size, hdr.addr_size, ab.raw)
        kids[code] = ab.children
    return plans, kids


def compiled_decoder() -> bool:
    """Whether ``decode_unit`` runs the compiled scanner."""
    return _scan is not None


def _scan_tables(abbrevs: dict[int, Abbrev], hdr: UnitHeader) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The compiled scanner's programs of a unit's table: (ops, start by code, children by code),
    cached per table and unit shape; None if a plan needs the pure-Python decoder."""
    key = (id(abbrevs), hdr.version, hdr.offset_size, hdr.addr_size)
    got = _tables_cache.get(key)
    if got is not None and got[0] is abbrevs:
        return got[1]
    source = getattr(abbrevs, "source", None)
    if _parse is not None and source is not None:
        made = _parse.scan_tables(source[0], source[1], _scan_template(hdr.version, hdr.offset_size, hdr.addr_size),
                                  _AT_CLASS)
        if made is not None:
            _tables_cache[key] = (abbrevs, made)
            return made
    size = code_table_size(abbrevs)  # (a DwarfError: the pure decoder says it)
    start = filled("q", size, -1)
    kids = bytearray(size)
    ops: list[int] = []
    programs: dict[tuple, int] = {}
    tables = None
    if size <= 1 << 16:
        for code, ab in abbrevs.items():
            key2 = (ab.raw, hdr.version, hdr.offset_size, hdr.addr_size)
            at = programs.get(key2)
            if at is None:
                prog = _programs.get(key2, False)
                if prog is False:
                    if len(_programs) > 8192:
                        _programs.clear()
                    prog = _programs[key2] = scan_program(ab.specs, hdr.version, hdr.offset_size, hdr.addr_size)
                if prog is None:
                    break
                at = programs[key2] = len(ops)
                ops += prog
            start[code] = at
            kids[code] = ab.children
        else:
            if fits_int64(ops):  # (else an attribute number past 63 bits: the pure decoder)
                tables = (array("q", ops), start, kids)
    # The entry keeps the table dict alive, so its id is not reused while cached.
    if len(_tables_cache) > 4096:
        _tables_cache.clear()
    _tables_cache[key] = (abbrevs, tables)
    return tables


_tables_cache: dict[tuple, tuple] = {}
_programs: dict[tuple, list[int] | None] = {}  # scan programs by (encoded attribute list, unit shape)


def forget_tables() -> None:
    """Drop the cached scan tables and the parsed abbreviation tables (``abbrev.forget_tables``):
    held to the end of the merge, libjvm.so's 1071 scan tables took 34 MB, glibc's 2063
    abbreviation tables 4.8 MiB. The next phase that reads a unit makes its tables again."""
    _tables_cache.clear()
    forget_abbrev_tables()

# _parse.scan_tables makes the tables in C from the table's bytes, following scan_program by
# construction: what scan_program does with one attribute of each form, for each class of
# attribute it tells apart (DW_AT_sibling, location, other expression, other).
_parse = load_compiled("linkplugin.dwarf._parse")
_AT_CLASS = bytearray([3]) * 0x4000
for _at in F.EXPR_BLOCK_ATTRS:
    if _at < 0x4000:
        _AT_CLASS[_at] = 2
for _at in F.LOCATION_ATTRS:
    if _at < 0x4000:
        _AT_CLASS[_at] = 1
_AT_CLASS[F.DW_AT_sibling] = 0
_templates: dict[tuple, memoryview] = {}


def _scan_template(version: int, offset_size: int, addr_size: int) -> memoryview:
    key = (version, offset_size, addr_size)
    tpl = _templates.get(key)
    if tpl is None:
        flat = filled("q", 4 * F.TPL_SLOTS * 4, -1)  # (class, form row) -> 4 numbers
        for c, at in enumerate((F.DW_AT_sibling, F.DW_AT_location, 0x22, F.DW_AT_name)):
            for form in F.TEMPLATE_FORMS:
                try:
                    prog = scan_program(((at, form, 0),), version, offset_size, addr_size)
                except DwarfError:
                    continue
                if prog is None:
                    continue  # DW_FORM_indirect: only the Python tables say so
                ops = [prog[i:i + 4] for i in range(0, len(prog) - 4, 4)]  # without OP_END
                row = (c * F.TPL_SLOTS + F.form_slot(form)) * 4
                if not ops:
                    flat[row:row + 4] = array("q", (-2, 0, 0, 0))
                elif len(ops) == 1 and ops[0][0] == OP_SKIP:
                    flat[row:row + 4] = array("q", (-2, ops[0][1], 0, 0))
                elif len(ops) == 1 and ops[0][3] in (0, at):
                    flat[row:row + 4] = array("q", (ops[0][0], ops[0][1], ops[0][2], int(ops[0][3] == at)))
        tpl = shaped(flat, 4, F.TPL_SLOTS, 4)
        _templates[key] = tpl
    return tpl


def decode_many(d: bytes, units: list[tuple[UnitHeader, dict[int, Abbrev]]]) -> list[UnitDies | None]:
    """The compiled scanner's decoding of several units, in one stretch without the GIL (see
    ``_scan.scan_many``); None for a unit it does not take (``decode_unit`` runs the pure
    decoder there)."""
    tables: list = []
    for hdr, abbrevs in units:
        try:
            tables.append(_scan_tables(abbrevs, hdr))
        except DwarfError:
            tables.append(None)
    calls = [(hdr.die_off, hdr.end, hdr.off, *t) for (hdr, _), t in zip(units, tables) if t is not None]
    scanned = iter(_scan.scan_many(d, calls, REF_OPS) if calls else ())
    got = [next(scanned) if t is not None else None for t in tables]
    # The few expressions that may name a DIE, of every unit at once: one compiled call (one
    # release of the GIL for the batch), or one by one in Python where that declines for a unit
    # (it decides nothing itself, so the results and errors are the same).
    with_blocks = [k for k, g in enumerate(got) if g is not None and len(g[1])]
    exprs: dict[int, list | None] = {}
    if with_blocks and _exprs is not None:
        exprs = dict(zip(with_blocks, _exprs.scan_expr_blocks_many(d, [
            (got[k][1], units[k][0].off, units[k][0].addr_size, units[k][0].offset_size, units[k][0].version)
            for k in with_blocks])))
    return [_unit_dies(d, hdr, abbrevs, g, exprs.get(k)) for k, ((hdr, abbrevs), g) in enumerate(zip(units, got))]


def _unit_dies(d: bytes, hdr: UnitHeader, abbrevs: dict[int, Abbrev], got: tuple | None, X: list | None
               ) -> UnitDies | None:
    """The UnitDies of a unit the compiled scanner read (``got``: its result, None: declined;
    ``X``: its expressions' operands from the compiled call, None: read here)."""
    if got is None:
        return None
    refs, blocks, locs, arrays = got
    if X is None:
        X = []
        for i, s, e in blocks.tolist():
            _expr(d, s, e, i, hdr.off, X, hdr.addr_size, hdr.offset_size, hdr.version)
    return UnitDies(hdr, abbrevs, None, *refs, X, locs, arrays)


def decode_unit(d: bytes, hdr: UnitHeader, abbrevs: dict[int, Abbrev]) -> UnitDies:
    """All DIEs of one unit; DwarfError on anything that cannot be decoded.

    The compiled scanner does the work when it is built; on anything it does not accept, the
    pure-Python decoder below runs instead (and raises the exact error)."""
    return decode_units(d, [(hdr, abbrevs)])[0]


def decode_units(d: bytes, units: list[tuple[UnitHeader, dict[int, Abbrev]]]) -> list[UnitDies]:
    """``decode_unit`` of each (header, abbreviation table), the compiled scanner's share in one
    call (``decode_many``)."""
    got = decode_many(d, units) if _scan is not None and d else [None] * len(units)
    return [ud if ud is not None else _decode_pure(d, hdr, abbrevs) for ud, (hdr, abbrevs) in zip(got, units)]


def _decode_pure(d: bytes, hdr: UnitHeader, abbrevs: dict[int, Abbrev]) -> UnitDies:
    """decode_unit's pure-Python decoder."""
    try:
        plans, kids = unit_plans(abbrevs, hdr)
    except DwarfError as exc:
        raise DwarfError(f"unit at 0x{hdr.off:x}: {exc}") from None
    nplans = len(plans)
    offs: list[int] = []
    codes: list[int] = []
    par: list[int] = []
    ends: list[int] = []
    R: list[int] = []
    S: list = []
    X: list = []
    L: list = []
    stack = [-1]
    top = -1
    p = hdr.die_off
    end = hdr.end
    u = hdr.off
    oappend, cappend, pappend, eappend = offs.append, codes.append, par.append, ends.append
    try:
        while p < end:
            code = d[p]
            if code == 0:
                p += 1
                if top >= 0:
                    ends[top] = p
                    stack.pop()
                    top = stack[-1]
                continue
            start = p
            p += 1
            if code & 0x80:
                code, p = read_uleb(d, start)
            if top < 0 and offs:
                raise DwarfError(f"unit at 0x{u:x} has a second top-level DIE at 0x{start:x}")
            plan = plans[code] if code < nplans else None
            if plan is None:
                raise DwarfError(f"DIE at 0x{start:x} uses abbreviation code {code} that does not exist")
            i = len(offs)
            oappend(start)
            cappend(code)
            pappend(top)
            p = p + plan if plan.__class__ is int else plan(d, p, i, u, R, S, X, L)  # type: ignore[operator]
            eappend(p)
            if kids[code]:
                stack.append(i)
                top = i
    except (IndexError, ValueError, struct.error):
        raise DwarfError(f"unit at 0x{u:x} is truncated or corrupt") from None
    if p > end:
        raise DwarfError(f"the last DIE of the unit at 0x{u:x} runs past the unit's end")
    if not offs:
        raise DwarfError(f"unit at 0x{u:x} has no DIE")
    for i in stack[1:]:  # producers may omit the trailing nulls
        ends[i] = end
    return UnitDies(hdr, abbrevs, (offs, codes, par, ends), *_gather_refs(d, hdr, offs, R, S), X, L)


def _gather_refs(d: bytes, hdr: UnitHeader, offs: list[int], R: list[int], S: list) -> tuple[np.ndarray, ...]:
    """The pure decoder's reference arrays from the ref4 positions ``R`` and the other references
    ``S`` (tuples of (DIE, position, form, attribute, target))."""
    raw = np.frombuffer(d, dtype=np.uint8)
    rp = np.asarray(R, dtype=np.int64)
    rt = (raw[rp].astype(np.int64) | raw[rp + 1].astype(np.int64) << 8 | raw[rp + 2].astype(np.int64) << 16
          | raw[rp + 3].astype(np.int64) << 24) + hdr.off
    if len(S):
        size = len(d)
        for _, pos, _, _, target in S:
            if target >= size:  # also keeps a ref8 of 2**64 - 1 out of the int64 arrays
                raise DwarfError(f"reference at 0x{pos:x} points past the end of .debug_info")
        sa = np.asarray(S, dtype=np.int64).reshape(-1, 5)
        pos = np.concatenate([rp, sa[:, 1]])
        form = np.concatenate([np.full(len(rp), F.DW_FORM_ref4, np.int64), sa[:, 2]])
        at = np.concatenate([np.full(len(rp), -1, np.int64), sa[:, 3]])
        target = np.concatenate([rt, sa[:, 4]])
        order = np.argsort(pos, kind="stable")
        pos, form, at, target = pos[order], form[order], at[order], target[order]
    else:
        pos, form, at, target = rp, np.full(len(rp), F.DW_FORM_ref4, np.int64), np.full(len(rp), -1, np.int64), rt
    die = np.searchsorted(np.asarray(offs, dtype=np.int64), pos, side="right") - 1
    _check_targets(len(d), hdr, pos, form, at, target)
    return pos, die, form, at, target


def _check_targets(size: int, hdr: UnitHeader, pos: np.ndarray, form: np.ndarray, at: np.ndarray,
                   target: np.ndarray) -> None:
    """DwarfError for a reference past the section or a unit-local one out of its unit (a plain
    ref4, attribute -1, is only checked for the second)."""
    outside = ((target < 0) | (target >= size)) & (at != -1)  # a compiled scanner's int64 may have wrapped
    if outside.any():
        raise DwarfError(f"reference at 0x{int(pos[outside][0]):x} points past the end of .debug_info")
    local = form != F.DW_FORM_ref_addr
    if local.any() and ((target[local] < hdr.off) | (target[local] >= hdr.end)).any():
        bad = int(pos[local][((target[local] < hdr.off) | (target[local] >= hdr.end))][0])
        raise DwarfError(f"reference at 0x{bad:x} points out of its unit")


def decode_attrs(d: bytes, p: int, specs: tuple, hdr: UnitHeader) -> tuple[list[tuple[int, int, Value, int, int]], int]:
    """Complete decode of one DIE's attributes starting after its code.

    Returns ([(attribute, form, value, value start, value end)], end). References are section
    offsets; strings of DW_FORM_string and blocks are bytes; everything else is an int.
    """
    out: list[tuple[int, int, Value, int, int]] = []
    V, O, A = hdr.version, hdr.offset_size, hdr.addr_size
    for at, form, ic in specs:
        while form == F.DW_FORM_indirect:
            form, p = read_uleb(d, p)
        start = p
        size = form_size(form, V, O, A)
        value: Value
        if form == F.DW_FORM_implicit_const:
            value = ic
        elif form == F.DW_FORM_flag_present:
            value = 1
        elif form == F.DW_FORM_data16:
            value = d[p:p + 16]
            p += 16
        elif size is not None:
            value = int.from_bytes(d[p:p + size], "little")
            p += size
        elif form == F.DW_FORM_sdata:
            value, p = read_sleb(d, p)
        elif form in F.ULEB_FORMS:
            value, p = read_uleb(d, p)
        elif form == F.DW_FORM_string:
            q = d.index(0, p)
            value = d[p:q]
            p = q + 1
        elif form in F.BLOCK_FORMS:
            if form == F.DW_FORM_block1:
                n, p = d[p], p + 1
            elif form == F.DW_FORM_block2:
                n, p = int.from_bytes(d[p:p + 2], "little"), p + 2
            elif form == F.DW_FORM_block4:
                n, p = int.from_bytes(d[p:p + 4], "little"), p + 4
            else:
                n, p = read_uleb(d, p)
            value = d[p:p + n]
            p += n
        else:
            raise DwarfError(f"unknown attribute form 0x{form:x}")
        if form in F.UNIT_REF_FORMS:
            value = hdr.off + value  # type: ignore[operator]
        out.append((at, form, value, start, p))
    return out, p


def die_attrs(d: bytes, ud: UnitDies, i: int) -> dict[int, tuple[int, Value]]:
    """{attribute: (form, value)} of DIE ``i`` (cold path, but taken for every unit's DIE: in C
    where the compiled parser takes its forms)."""
    p, code = ud.die(i)
    _, p = read_uleb(d, p)
    specs = ud.abbrevs[code].specs
    hdr = ud.hdr
    if _parse is not None:
        got = _parse.die_values(d, p, specs, hdr.version, hdr.offset_size, hdr.addr_size, hdr.off)
        if got is not None:
            return got
    attrs, _ = decode_attrs(d, p, specs, hdr)
    return {at: (form, value) for at, form, value, _, _ in attrs}
