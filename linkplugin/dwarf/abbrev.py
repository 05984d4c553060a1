"""Abbreviation tables and their compiled decoding plans.

Every abbreviation becomes a *plan*: either an ``int`` (the DIE has a fixed size and nothing the
merger needs to see, so the decoder just skips it) or a generated Python function
``plan(d, p, i, u, R, S, X, L) -> p`` specialised for that attribute list. Runs of fixed-size
forms collapse into one constant offset. Only what the merger needs is recorded: the position of
each DW_FORM_ref4 reference (``R``, the vast majority), a tuple for any other reference or
DW_AT_sibling (``S``), DIE-naming operands of DWARF expressions (``X``) and location-list pointers
(``L``).
"""
from __future__ import annotations

import struct

from linkplugin.compiled import load_compiled
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.expr import might_ref, scan_expr
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_sleb, read_uleb
from linkplugin.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Callable, Iterable, Union

    from linkplugin.dwarf.units import UnitHeader
    Plan = Union[int, Callable[..., int]]

AttrSpec = tuple[int, int, int]  # (attribute, form, implicit constant)


class Abbrev(NamedTuple):
    tag: int
    children: bool
    specs: tuple[AttrSpec, ...]
    raw: bytes  # the encoded attribute list: a cheap cache key for the compiled plans


class AbbrevTable(dict):
    """{code: Abbrev} of one table; ``indirect``: whether an attribute uses DW_FORM_indirect
    (which only the pure-Python decoder reads); ``source``: (section, offset) it was read from,
    for the compiled code that reads the table's bytes again."""
    indirect: bool = False
    source: tuple[bytes, int] | None = None


def uses_indirect(table: dict[int, Abbrev]) -> bool:
    got = getattr(table, "indirect", None)
    if got is None:
        got = any(form == F.DW_FORM_indirect for ab in table.values() for _, form, _ in ab.specs)
    return got


def codes_with_tag(table: dict[int, Abbrev], tag: int) -> list[int]:
    """The codes of ``table`` whose tag is ``tag``, in the table's order; a LazyTable not yet read
    whole gives them from its bytes in C, making Abbrevs of only those codes."""
    if isinstance(table, LazyTable) and not table._whole:
        return list(table.read_some(want_tag=tag))
    return [code for code, ab in table.items() if ab.tag == tag]


def codes_with(table: dict[int, Abbrev], tags: frozenset[int], attrs: frozenset[int]) -> list[int]:
    """The codes of ``table`` whose tag is one of ``tags`` and that have one of the attributes
    ``attrs``; a LazyTable not yet read whole gives them from its bytes in C, making no Abbrev
    (its bytes were read and checked when it was made)."""
    if isinstance(table, LazyTable) and not table._whole:
        d, off = table.source  # type: ignore[misc]
        return _core.codes_with(d, off, code_flags(tags), code_flags(attrs))
    return [code for code, ab in table.items() if ab.tag in tags and any(at in attrs for at, _, _ in ab.specs)]


def code_flags(codes: Iterable[int]) -> bytes:
    """One byte per number up to the largest of ``codes`` (``code_table_size``: a DwarfError past
    MAX_CODE), 1 for each of them (a negative one left out): what the C parts look codes (or
    tags, attributes) up in."""
    codes = list(codes)
    out = bytearray(code_table_size(dict.fromkeys(codes)))
    for code in codes:
        if code >= 0:
            out[code] = 1
    return bytes(out)


def some_codes(table: dict[int, Abbrev], codes: list[int]) -> dict[int, Abbrev]:
    """{code: Abbrev} of ``codes`` (those the table has), a LazyTable's in one pass over its bytes."""
    if isinstance(table, LazyTable) and not table._whole and codes:
        return table.read_some(wanted=code_flags(codes))
    return {code: table[code] for code in codes if code in table}


def unit_die_entry(info: bytes, abbrev: bytes, hdr: UnitHeader) -> tuple[Abbrev | None, int]:
    """The abbreviation of the unit's first DIE (None: a code its table does not have) and where
    that DIE's attributes start, read without decoding the unit."""
    code, p = read_uleb(info, hdr.die_off)
    return parse_abbrev_table(abbrev, hdr.abbrev_off)[0].get(code), p


def parse_abbrev_table(d: bytes, off: int) -> tuple[dict[int, Abbrev], int]:
    """The table at ``off``: {code: Abbrev} and the offset after its terminating 0 (remembered
    per section and offset: the hash and rewrite phases both read every unit's table)."""
    global _tables_of
    if _tables_of is not d:  # another section (a new job): forget the old one's tables
        _tables.clear()
        _tables_of = d
    got = _tables.get(off)
    if got is None:
        got = _tables[off] = _parse_abbrev_table(d, off)
        got[0].source = (d, off)
    return got


_tables: dict[int, tuple[dict[int, "Abbrev"], int]] = {}


def forget_tables() -> None:
    """Drop the remembered tables (the merge does between phases when they would cost more
    memory than parsing them again costs time)."""
    _tables.clear()

_core = load_compiled("linkplugin.dwarf._parse")  # the same tables, parsed in C
_shared: dict[tuple, "Abbrev"] = {}  # the compiled parser's Abbrev objects by (tag, children, encoding)
_tables_of: bytes | None = None  # the section ``_tables`` belongs to


class LazyTable(AbbrevTable):
    """A table the compiled parser reads from its bytes on first use: ``table[code]`` one code
    at a time (the compiled path reads only the unit DIE's abbreviation, and the scanner and
    kernels read the bytes themselves), anything else the whole table. The Abbrev objects of
    every entry cost glibc's libc.so.6 (2,063 tables) 4% of its merge."""

    def __init__(self, d: bytes, off: int, indirect: bool) -> None:
        super().__init__()
        self.source = (d, off)
        self.indirect = indirect
        self._whole = False

    def _fill(self) -> None:
        if not self._whole:
            d, off = self.source  # type: ignore[misc]
            dict.update(self, _core.parse(d, d, off, Abbrev, AbbrevTable, _shared)[0])
            self._whole = True

    def read_some(self, want_tag: int = -1, wanted: bytes | None = None) -> dict[int, Abbrev]:
        """The entries of tag ``want_tag``, or of the codes ``wanted`` marks, read from the bytes in
        C and kept (codes_with_tag, some_codes)."""
        d, off = self.source  # type: ignore[misc]
        got = _core.parse(d, d, off, Abbrev, AbbrevTable, _shared, -1, want_tag, wanted)[0]
        for code, ab in got.items():
            dict.__setitem__(self, code, ab)
        return got

    def __getitem__(self, code: int) -> Abbrev:
        try:
            return dict.__getitem__(self, code)
        except KeyError:
            if self._whole:
                raise
        if type(code) is not int or not 0 <= code < 1 << 63:  # (not a code the parser takes: a dict's answer)
            self._fill()
            return dict.__getitem__(self, code)
        d, off = self.source  # type: ignore[misc]
        got = _core.parse(d, d, off, Abbrev, AbbrevTable, _shared, code)[0]
        if code not in got:
            raise KeyError(code)
        dict.__setitem__(self, code, got[code])
        return got[code]

    def get(self, code: int, default: object = None) -> object:  # type: ignore[override]
        try:
            return self[code]
        except KeyError:
            return default

    def __contains__(self, code: object) -> bool:
        return self.get(code) is not None  # type: ignore[arg-type]

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def keys(self):  # type: ignore[no-untyped-def]
        self._fill()
        return dict.keys(self)

    def values(self):  # type: ignore[no-untyped-def]
        self._fill()
        return dict.values(self)

    def items(self):  # type: ignore[no-untyped-def]
        self._fill()
        return dict.items(self)

    def __eq__(self, other: object) -> bool:
        self._fill()
        if isinstance(other, LazyTable):
            other._fill()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._fill()
        return dict.__repr__(self)

    def __reversed__(self):  # type: ignore[no-untyped-def]
        self._fill()
        return dict.__reversed__(self)

    def copy(self) -> dict[int, Abbrev]:  # type: ignore[override]
        self._fill()
        return dict(dict.items(self))

    def __or__(self, other: object) -> dict:  # type: ignore[override]
        return self.copy() | other  # type: ignore[operator]

    def __ror__(self, other: object) -> dict:  # type: ignore[override]
        return other | self.copy()  # type: ignore[operator]


def _parse_abbrev_table(d: bytes, off: int) -> tuple[dict[int, Abbrev], int]:
    if _core is not None and 0 <= off < len(d):  # (an offset past the section: the loop's error)
        if len(_shared) > 65536:
            _shared.clear()
        got = _core.parse(d, d, off, Abbrev, AbbrevTable, _shared, -2)  # (read and checked, no entries made)
        if got is not None:
            return LazyTable(d, off, got[0].indirect), got[1]
    table = AbbrevTable()
    p = off
    try:
        while True:
            code = d[p]
            code, p = (code, p + 1) if code < 0x80 else read_uleb(d, p)
            if code == 0:
                table.indirect = any(form == F.DW_FORM_indirect for ab in table.values() for _, form, _ in ab.specs)
                return table, p
            tag = d[p]
            tag, p = (tag, p + 1) if tag < 0x80 else read_uleb(d, p)
            children = d[p] != 0
            p += 1
            spec_start = p
            specs = []
            while True:
                # Attribute and form numbers are nearly always one byte: inline that case.
                at = d[p]
                at, p = (at, p + 1) if at < 0x80 else read_uleb(d, p)
                form = d[p]
                form, p = (form, p + 1) if form < 0x80 else read_uleb(d, p)
                if at == 0 and form == 0:
                    break
                if at >= 1 << 63 or form >= 1 << 63:  # (the decoders' int64 columns hold them)
                    raise DwarfError(f"damaged .debug_abbrev table at 0x{off:x}: attribute {at:#x}, form {form:#x}")
                ic = 0
                if form == F.DW_FORM_implicit_const:
                    ic, p = read_sleb(d, p)
                specs.append((at, form, ic))
            if tag >= 1 << 63:
                raise DwarfError(f"damaged .debug_abbrev table at 0x{off:x}: tag {tag:#x}")
            table[code] = Abbrev(tag, children, tuple(specs), d[spec_start:p])
    except IndexError:
        raise DwarfError(f"truncated .debug_abbrev table at 0x{off:x}") from None


MAX_CODE = 1 << 16  # abbreviation codes past this are refused: tables are indexed by code


def code_table_size(abbrevs: dict[int, Abbrev]) -> int:
    """The length of a table indexed by the codes of ``abbrevs`` (the largest code + 1); a
    DwarfError for a code past MAX_CODE (producers number their codes from 1, and a damaged
    table's code of 2**64 would otherwise size an array)."""
    size = max(abbrevs, default=0) + 1
    if size > MAX_CODE:
        raise DwarfError(f"abbreviation code {size - 1} is too large")
    return size


def form_size(form: int, version: int, offset_size: int, addr_size: int) -> int | None:
    """Byte size of a fixed-size form in this unit, None for variable-size forms."""
    if form == F.DW_FORM_ref_addr:
        return addr_size if version <= 2 else offset_size
    s = F.FIXED_SIZE.get(form)
    if s is None:
        return None
    if s == "A":
        return addr_size
    if s == "O":
        return offset_size
    return s  # type: ignore[return-value]


_UNPACK = {1: "_u8", 2: "_u16", 4: "_u32", 8: "_u64"}
_ENV_BASE = {"_u8": lambda d, p: (d[p],), "_u16": struct.Struct("<H").unpack_from,
             "_u32": struct.Struct("<I").unpack_from, "_u64": struct.Struct("<Q").unpack_from,
             "_uleb": read_uleb, "_might_ref": might_ref}
_plan_cache: dict[tuple, Plan] = {}
_source_cache: dict[str, Callable[..., int]] = {}


def block_length_lines(form: int) -> list[str]:
    """Generated code that reads a block's length into ``n`` and moves ``p`` to its bytes
    (the generated functions have ``_u16``, ``_u32`` and ``_uleb`` in scope)."""
    if form == F.DW_FORM_block1:
        return ["n = d[p]", "p += 1"]
    if form == F.DW_FORM_block2:
        return ["n = _u16(d, p)[0]", "p += 2"]
    if form == F.DW_FORM_block4:
        return ["n = _u32(d, p)[0]", "p += 4"]
    # ULEB length: one byte in the common case. A length past the section ends the block one
    # byte past it (the unit's end check then says so): p + n stays a machine-size integer.
    return ["n = d[p]", "p += 1", "if n & 0x80: n, p = _uleb(d, p - 1); n = min(n, len(d) + 1 - p)"]


def compile_plan(specs: tuple[AttrSpec, ...], version: int, offset_size: int, addr_size: int,
                 raw: bytes | None = None) -> Plan:
    """The decoding plan of one abbreviation in a unit of this shape (cached by ``raw``, the
    encoded attribute list, when given: hashing bytes is much cheaper than hashing ``specs``)."""
    key = (raw if raw is not None else specs, version, offset_size, addr_size)
    plan = _plan_cache.get(key)
    if plan is None:
        plan = _plan_cache[key] = _build_plan(specs, version, offset_size, addr_size)
    return plan


def _build_plan(specs: tuple[AttrSpec, ...], version: int, O: int, A: int) -> Plan:
    lines: list[str] = []
    k = 0  # bytes of fixed-size attributes not yet added to p

    def flush() -> None:
        nonlocal k
        if k:
            lines.append(f"p += {k}")
            k = 0

    simple = True
    for at, form, _ in specs:
        size = form_size(form, version, O, A)
        loc = at in F.LOCATION_ATTRS
        if form == F.DW_FORM_ref4 and at != F.DW_AT_sibling:
            # The common case: only the position; targets are gathered in bulk afterwards.
            simple = False
            lines.append(f"R.append(p + {k})")
            k += size
        elif form in F.UNIT_REF_FORMS and size is not None:
            simple = False
            lines.append(f"S.append((i, p + {k}, {form}, {at}, u + {_UNPACK[size]}(d, p + {k})[0]))")
            k += size
        elif form == F.DW_FORM_ref_addr:
            simple = False
            lines.append(f"S.append((i, p + {k}, {form}, {at}, {_UNPACK[size]}(d, p + {k})[0]))")
            k += size
        elif loc and (form == F.DW_FORM_sec_offset or (version < 4 and form in (F.DW_FORM_data4, F.DW_FORM_data8))):
            simple = False
            lines.append(f"L.append((i, {at}, {form}, {_UNPACK[size]}(d, p + {k})[0]))")
            k += size
        elif size is not None:
            k += size
        elif form == F.DW_FORM_ref_udata:
            simple = False
            flush()
            lines += ["v, q = _uleb(d, p)", f"S.append((i, p, {form}, {at}, u + v))", "p = q"]
        elif form == F.DW_FORM_loclistx and loc:
            simple = False
            flush()
            lines += ["v, p = _uleb(d, p)", f"L.append((i, {at}, {form}, v))"]
        elif form in F.ULEB_FORMS or form == F.DW_FORM_sdata:
            simple = False
            flush()
            lines += ["while d[p] & 0x80: p += 1", "p += 1"]
        elif form == F.DW_FORM_string:
            simple = False
            flush()
            lines.append("p = d.index(0, p) + 1")
        elif form in F.BLOCK_FORMS:
            simple = False
            flush()
            lines += block_length_lines(form)
            if form == F.DW_FORM_exprloc or at in F.EXPR_BLOCK_ATTRS:
                lines.append(f"if _might_ref(d, p, p + n): _expr(d, p, p + n, i, u, X, {A}, {O}, {version})")
            lines.append("p += n")
        elif form == F.DW_FORM_indirect:
            simple = False
            flush()
            lines.append(f"p = _indirect(d, p, i, u, R, S, X, L, {at}, {version}, {O}, {A})")
        else:
            raise DwarfError(f"unknown attribute form 0x{form:x}")
    if simple:
        return k
    flush()
    src = "def plan(d, p, i, u, R, S, X, L):\n" + "".join(f"    {ln}\n" for ln in lines) + "    return p\n"
    # Many attribute lists share a layout (attributes only matter for a few forms): compile each
    # distinct source once.
    fn = _source_cache.get(src)
    if fn is None:
        env = dict(_ENV_BASE, _expr=_expr, _indirect=_indirect)
        exec(compile(src, "<dwarf-plan>", "exec"), env)
        fn = _source_cache[src] = env["plan"]
    return fn


# Op codes of the compiled scanner's programs (the same plans as ``_build_plan``, as data): each
# op is four ints (op, a, b, c); see linkplugin/dwarf/_scan.pyx.
OP_END, OP_SKIP, OP_REF4, OP_UREF, OP_REFADDR, OP_LOC, OP_REFUDATA, OP_LOCLISTX, OP_LEB, OP_STRING, OP_BLOCK = range(11)
_BLOCK_LEN = {F.DW_FORM_block1: 1, F.DW_FORM_block2: 2, F.DW_FORM_block4: 4, F.DW_FORM_block: 0,
              F.DW_FORM_exprloc: 0}


def scan_program(specs: tuple[AttrSpec, ...], version: int, O: int, A: int) -> list[int] | None:
    """The plan of ``_build_plan`` as an op list for the compiled scanner (None: DW_FORM_indirect,
    which only the pure-Python decoder handles)."""
    ops: list[int] = []
    k = 0

    def flush() -> None:
        nonlocal k
        if k:
            ops.extend((OP_SKIP, k, 0, 0))
            k = 0

    for at, form, _ in specs:
        size = form_size(form, version, O, A)
        loc = at in F.LOCATION_ATTRS
        if form == F.DW_FORM_ref4 and at != F.DW_AT_sibling:
            flush()
            ops.extend((OP_REF4, 4, 0, 0))
        elif form in F.UNIT_REF_FORMS and size is not None:
            flush()
            ops.extend((OP_UREF, size, form, at))
        elif form == F.DW_FORM_ref_addr:
            flush()
            ops.extend((OP_REFADDR, size, form, at))
        elif loc and (form == F.DW_FORM_sec_offset or (version < 4 and form in (F.DW_FORM_data4, F.DW_FORM_data8))):
            flush()
            ops.extend((OP_LOC, size, form, at))
        elif size is not None:
            k += size
        elif form == F.DW_FORM_ref_udata:
            flush()
            ops.extend((OP_REFUDATA, 0, form, at))
        elif form == F.DW_FORM_loclistx and loc:
            flush()
            ops.extend((OP_LOCLISTX, 0, form, at))
        elif form in F.ULEB_FORMS or form == F.DW_FORM_sdata:
            flush()
            ops.extend((OP_LEB, 0, 0, 0))
        elif form == F.DW_FORM_string:
            flush()
            ops.extend((OP_STRING, 0, 0, 0))
        elif form in F.BLOCK_FORMS:
            flush()
            ops.extend((OP_BLOCK, _BLOCK_LEN[form], int(form == F.DW_FORM_exprloc or at in F.EXPR_BLOCK_ATTRS), 0))
        elif form == F.DW_FORM_indirect:
            return None
        else:
            raise DwarfError(f"unknown attribute form 0x{form:x}")
    flush()
    ops.extend((OP_END, 0, 0, 0))
    return ops


def _expr(d: bytes, s: int, e: int, i: int, u: int, X: list, A: int, O: int, version: int) -> None:
    for pos, width, kind, value in scan_expr(d, s, e, A, O, version):
        X.append((i, pos, width, kind, value + u if kind != "s" else value))


def _indirect(d: bytes, p: int, i: int, u: int, R: list, S: list, X: list, L: list, at: int, version: int, O: int,
              A: int) -> int:
    """DW_FORM_indirect: the form is in the data; decode that one attribute with a one-off plan."""
    form, p = read_uleb(d, p)
    if form == F.DW_FORM_indirect or form == F.DW_FORM_implicit_const:
        raise DwarfError("DW_FORM_indirect names an impossible form")
    plan = compile_plan(((at, form, 0),), version, O, A)
    return p + plan if isinstance(plan, int) else plan(d, p, i, u, R, S, X, L)
