"""The hash phase's compiled path: ``_hashcore.analyze_many`` does all of ``hash.analyze_unit``
after decoding, for a batch of units, in C without the GIL; this module lays out its
per-abbreviation tables and its calls.

The pure path (``hash._hash_roots`` with ``tokens.py``) is the reference: the two give different
hash values but the same equalities, hence the same merge and the same output bytes (a test runs
both). ``analyze_call`` is None when the compiled core is missing, and ``analyze_many`` gives None
for a unit it declines.
"""
from __future__ import annotations

import marshal
from array import array

from linkplugin.arrays import filled, fits_int64, shaped
from linkplugin.compiled import load_compiled
from linkplugin.dwarf import forms as F
from linkplugin.dwarf import line as line_module
from linkplugin.dwarf.abbrev import Abbrev, code_table_size
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import encode_uleb
from linkplugin.dwarf.read import UnitDies
from linkplugin.lazy import np
from linkplugin.merge import expansion
from linkplugin.merge.tokens import hash_program
from linkplugin.record import NamedTuple

_core = load_compiled("linkplugin.merge._hashcore")

# Flags of an abbreviation code (_hashcore.F_*)
CODE_TYPE, CODE_DECL, CODE_DECL_PRESENT, CODE_NAMESPACE, CODE_PIN = 1, 2, 4, 8, 32
# Expansion flags of an abbreviation code (_hashcore.X_*): what expansion.expansion_key reads per code
X_SCOPE, X_CLASS, X_HAS_NAME, X_DECLARED, X_SUBPROGRAM, X_VARIABLE, X_TYPE = 1, 2, 4, 8, 16, 32, 64


class Tables(NamedTuple):
    """array.array columns from the compiled core (numpy from ``_tables``, its reference)."""
    prog: array           # tokenizer programs, concatenated
    start: array          # where each code's program starts (-1: no such code)
    heads: bytes          # head tokens, concatenated
    head_off: array       # code's head is heads[head_off[code]:head_off[code + 1]]
    flags: array          # CODE_* of each code
    xflags: array         # X_* of each code


def _code_flags(ab: Abbrev) -> int:
    """hash.find_roots's and analyze_unit's per-DIE decisions that only depend on the abbreviation."""
    decl = next((form for at, form, _ in ab.specs if at == F.DW_AT_declaration), 0)
    ats = {at for at, _, _ in ab.specs}
    flags = 0
    if ab.tag in F.TYPE_TAGS:
        flags |= CODE_TYPE
    if ab.tag in F.DECL_TAGS and decl:
        flags |= CODE_DECL | (CODE_DECL_PRESENT if decl == F.DW_FORM_flag_present else 0)
    if ab.tag == F.DW_TAG_namespace:
        flags |= CODE_NAMESPACE
    if expansion.listed_per_unit(ab):
        flags |= CODE_PIN  # every unit keeps its copy
    return flags


_DECL_TAG = 64        # _hashcore.tables: a tag of F.DECL_TAGS


def _template(version: int, offset_size: int, addr_size: int) -> memoryview:
    """(op, size, class) of tokens.hash_program for every form, for DW_AT_sibling, DW_AT_decl_file
    and any other attribute (the only distinctions it makes): ``_hashcore.tables``'s input, so
    that the compiled tables follow hash_program by construction (cached per unit shape)."""
    key = (version, offset_size, addr_size)
    tpl = _templates.get(key)
    if tpl is None:
        flat = filled("q", 3 * F.TPL_SLOTS * 3, -1)  # (class, form row) -> 3 numbers
        for c, at in enumerate((F.DW_AT_sibling, F.DW_AT_decl_file, F.DW_AT_name)):
            for form in F.TEMPLATE_FORMS:
                try:
                    prog = hash_program(((at, form, 0),), version, offset_size, addr_size)
                except DwarfError:
                    continue
                row = (c * F.TPL_SLOTS + F.form_slot(form)) * 3
                flat[row:row + 3] = array("q", (prog[0], prog[3], prog[4]))
        tpl = _templates[key] = shaped(flat, 3, F.TPL_SLOTS, 3)
    return tpl


_templates: dict[tuple, memoryview] = {}
_TAG_FLAGS = bytearray(256)
for _tag in F.TYPE_TAGS:
    _TAG_FLAGS[_tag] |= CODE_TYPE
for _tag in F.DECL_TAGS:
    _TAG_FLAGS[_tag] |= _DECL_TAG
_TAG_FLAGS[F.DW_TAG_namespace] |= CODE_NAMESPACE


def unit_tables(ud: UnitDies) -> Tables | None:
    """The kernel's tables of the unit's abbreviation table, made in Python, for a unit whose
    table the kernel does not make itself (``_hashcore.make_tables``); None: a form the
    tokenizer does not take."""
    hdr = ud.hdr
    try:
        return _tables(ud.abbrevs, hdr.version, hdr.offset_size, hdr.addr_size)
    except DwarfError:
        return None


def _tag_xflags(tag: int) -> int:
    return ((X_SCOPE if tag in expansion._SCOPES else 0) | (X_CLASS if tag in expansion._CLASSES else 0)
            | (X_SUBPROGRAM if tag == F.DW_TAG_subprogram else 0) | (X_VARIABLE if tag == F.DW_TAG_variable else 0)
            | (X_TYPE if tag in expansion._TYPES else 0))


def _code_xflags(ab: Abbrev) -> int:
    flags = _tag_xflags(ab.tag)
    if any(at == F.DW_AT_name for at, _, _ in ab.specs):
        flags |= X_HAS_NAME
    if any(at == F.DW_AT_declaration and form == F.DW_FORM_flag_present for at, form, _ in ab.specs):
        flags |= X_DECLARED
    return flags


_XTAG_FLAGS = bytes(_tag_xflags(tag) for tag in range(256))


def _tables(abbrevs: dict[int, Abbrev], version: int, offset_size: int, addr_size: int) -> Tables:
    """The kernel's tables of an abbreviation table in a unit of this shape, in Python (the
    reference for ``_hashcore.tables``; cached per table)."""
    key = (id(abbrevs), version, offset_size, addr_size)
    got = _tables_cache.get(key)
    if got is not None and got[0] is abbrevs:
        return got[1]
    size = code_table_size(abbrevs)
    start = np.full(size, -1, dtype=np.int64)
    head_len = np.zeros(size + 1, dtype=np.int64)
    flags = np.zeros(size, dtype=np.uint8)
    xflags = np.zeros(size, dtype=np.uint8)
    heads = [b""] * size
    ops: list[int] = []
    at_of: dict[bytes, int] = {}
    for code, ab in abbrevs.items():
        ent = _abbrevs.get((ab.raw, ab.tag, ab.children, version, offset_size, addr_size))
        if ent is None:
            if len(_abbrevs) > 65536:
                _abbrevs.clear()
            ent = _abbrevs[(ab.raw, ab.tag, ab.children, version, offset_size, addr_size)] = (
                hash_program(ab.specs, version, offset_size, addr_size),
                b"H" + encode_uleb(ab.tag) + (b"\1" if ab.children else b"\0"), _code_flags(ab), _code_xflags(ab))
        prog, head, flag, xflag = ent
        at = at_of.get(ab.raw)
        if at is None:
            at = at_of[ab.raw] = len(ops)
            ops += prog
        start[code] = at
        heads[code] = head
        head_len[code + 1] = len(head)
        flags[code] = flag
        xflags[code] = xflag
    if not fits_int64(ops):  # an attribute number past 63 bits
        raise DwarfError("an abbreviation the kernel does not take")  # (unit_tables: the pure path)
    tables = Tables(np.array(ops, dtype=np.int64), start, b"".join(heads), np.cumsum(head_len), flags, xflags)
    if len(_tables_cache) > 4096:
        _tables_cache.clear()
    _tables_cache[key] = (abbrevs, tables)  # keeps the table alive, so its id is not reused
    return tables


_tables_cache: dict[tuple, tuple] = {}
_abbrevs: dict[tuple, tuple] = {}  # (program, head, flags, xflags) by (attribute list, tag, children, unit shape)


class Analysis(NamedTuple):
    """_hashcore.analyze_many's result for a unit (array.array columns; hashes and names 16 bytes a root)."""
    roots: array
    root_ends: array
    pinned: array
    hashes: array
    names: array
    has_name: array
    phase: int            # expansion.expansion_key: (phase, first name); phase -1: not computed
    first_name: bytes
    nested_root: array        # hash.UnitAnalysis.nested_root / nested_names
    nested_names: array
    offs32: array | None      # the DIE offsets in 32 bits (None: the unit ends past 4 GiB)


def analyze_call(info: bytes, ud: UnitDies, env: object, named: list[int], xref_dies: list[int]) -> tuple | None:
    """The arguments of the kernel's call for the unit (``analyze_many`` runs it), or None (the
    pure path then runs and raises any error). ``named``: section offsets of the DIEs that DWARF
    expressions name; ``xref_dies``: the DIEs holding such expressions."""
    if _core is None:
        return None
    hdr = ud.hdr
    secs = env.secs  # type: ignore[attr-defined]
    abbrev = secs.get(".debug_abbrev", b"")
    try:
        lines = _line_table(env)
        files = env.files() if lines is None else None  # type: ignore[attr-defined]
    except DwarfError:
        return None
    so_base = env.str_offsets_base  # type: ignore[attr-defined]
    if not isinstance(so_base, int):
        return None
    lang = env.top.get(F.DW_AT_language, (0, 0))[1]  # type: ignore[attr-defined]
    key = (lang, hdr.version, hdr.addr_size)
    unit_ctx = _unit_ctx.get(key)
    if unit_ctx is None:
        unit_ctx = _unit_ctx[key] = marshal.dumps(("unit", *key), 2)
    offs, codes, parent, die_ends = ud.arrays()
    # The kernel makes the tables of the unit's abbreviations and reads its file names itself,
    # without the GIL (what ``unit_tables`` and ``line.file_names`` make in C with it held:
    # glibc's 2,063 units); the unit and its env go last, for the tables and names in Python
    # where the kernel does not take them (``analyze_many``).
    rest = (secs.get(".debug_str", b""), secs.get(".debug_str_offsets", b""), so_base, hdr.offset_size,
            secs.get(".debug_line_str", b""), files, unit_ctx,
            named if isinstance(named, array) and named.typecode == "q" else array("q", named), array("q", xref_dies))
    tables: tuple = (None,) * 6
    made: tuple = (abbrev, hdr.abbrev_off, _template(hdr.version, hdr.offset_size, hdr.addr_size), _TAG_FLAGS,
                   _XTAG_FLAGS)
    if not abbrev:  # (the tables in Python)
        tables = unit_tables(ud)  # type: ignore[assignment]
        if tables is None:
            return None
        made = (None, -1, None, None, None)
    return (info, hdr.off, hdr.end, offs, codes, parent, die_ends, *tables, *rest, *made,
            *(lines or (None, -1, None)), (ud, env))


_unit_ctx: dict[tuple, bytes] = {}  # what every root's hash starts with, by (language, version, address size)


def _line_table(env) -> tuple[bytes, int, bytes] | None:
    """(.debug_line, the unit's line table offset, its compilation directory) for the kernel to
    read the file names from, as UnitEnv.files would with the compiled ``file_names``; None
    where UnitEnv.files answers at once (no line table: no names) or takes another way (an
    offset of another form, the Python parser)."""
    sl = env.top.get(F.DW_AT_stmt_list)
    line = env.secs.get(".debug_line")
    if sl is None or not line or not isinstance(sl[1], int) or line_module._core is None:
        return None
    cd = env.top.get(F.DW_AT_comp_dir)
    comp_dir = env.string(*cd) if cd else b""
    return (line, sl[1], comp_dir) if isinstance(comp_dir, bytes) else None


def analyze_many(calls: list[tuple]) -> list[Analysis | None]:
    """The roots, pinned flags, hashes and name keys (see ``hash.UnitAnalysis``) of each unit of
    ``analyze_call``, or None for a unit the kernel declines; one kernel call for all of them,
    and one more for each unit whose abbreviation tables the kernel does not make
    (``unit_tables`` makes them in Python)."""
    if not calls:
        return []
    got = _core.analyze_many([c[:-1] for c in calls])
    for k, result in enumerate(got):
        if result is _core.TABLES:  # (the tables and names in Python: the kernel declined)
            ud, env = calls[k][-1]
            tables = unit_tables(ud)
            try:
                files = env.files()
            except DwarfError:
                tables = None
            if tables is None:
                got[k] = None
                continue
            # (the call's places, as _hashcore._job's arguments: 7-12 the tables, 18 the file
            # names, from 22 what the kernel would read them from)
            call = list(calls[k][:22])
            call[7:13] = tables
            call[18] = files
            got[k] = _core.analyze_many([tuple(call)])[0]
    return [Analysis(*result) if result is not None else None for result in got]


def available() -> bool:
    return _core is not None


def using_targets(offs: Column, codes: Column, ref_die: Column, ref_target: Column, roots: array,
                  is_using: bytes) -> array:
    """hash._using_targets in C (_hashcore.using_targets): the roots a using-declaration names,
    as pairs (root, its abbreviation code)."""
    return _core.using_targets(offs, codes, ref_die, ref_target, roots, is_using)


def followed_roots(offs: Column, codes: Column, ref_die: Column, ref_target: Column, roots: array,
                   root_ends: array, is_source: bytes) -> array:
    """hash._followed_roots in C (_hashcore.followed_roots): the roots a DW_AT_specification or
    DW_AT_abstract_origin names."""
    return _core.followed_roots(offs, codes, ref_die, ref_target, roots, root_ends, is_source)


def select_pairs(pairs: array, keep: bytes) -> array:
    """The roots of ``using_targets``'s pairs whose code ``keep`` marks."""
    return _core.select_pairs(pairs, keep)


__all__ = ["Analysis", "analyze_call", "analyze_many", "available", "followed_roots", "select_pairs",
           "using_targets"]
