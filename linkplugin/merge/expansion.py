"""Where gdb 13 expands a unit when it prints ``info functions/variables/types .``.

For each source file and name held by several units, gdb prints one entry: the copy of the unit
it expanded *last* (symtab.c, ``global_symbol_searcher::add_matching_symbols``: it walks the
units newest first and keeps the first symbol of each file, block and name). Which unit that is
decides what a listing shows for a typedef or struct whose copies differ, so the merger keeps
copies where gdb looks last and puts canonical copies where gdb looks first.

gdb 13 without an index section expands units lazily. Before any command it looks up ``main``,
expanding main's unit. A listing then walks gdb's name index sorted by name, compared with
strcasecmp (dwarf2/read.c, ``cooked_index_functions::expand_symtabs_matching``), and expands the
unit of every entry of the listed kind not expanded yet. ``info functions .`` comes first, so a
unit is expanded at its first function name in that order; a unit without functions at its
first variable name, then at its first type name. So a unit's place is the key (phase, first
name): ``expansion_key``.

What this does not model: names gdb canonicalises differently from DWARF's spelling (``char
const`` and ``const char``); units with equal keys, which gdb expands in the order its
std::sort (not stable) leaves equal names in, and that order changes whenever the index loses
or gains an entry. And a unit is expanded earlier when a unit being expanded references one of
its DIEs (``follow_die_offset`` queues the target unit): merging avoids that by putting each
canonical copy in the holder gdb expands first that keeps no copy for an ambiguous name
(table.choose_winners). Nor gdb's worker threads (``maint set worker-threads``, by default one
per core): gdb then builds one index per thread, each over a run of units cut by their sizes
(gdbsupport/parallel-for.h), and expands units index by index: ``expansion_key`` gives the
order of 0 or 1 worker threads, ``thread_ranks`` that of more, which the merge checks for 2 and 4
(THREAD_MODELS; BENCHMARKS.md, sessions 13 and 14, has the listings at 2, 4 and 8).
"""
from __future__ import annotations

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.abbrev import Abbrev, code_table_size, form_size
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.read import UnitDies, die_attrs
from linkplugin.dwarf.units import UnitHeader
from linkplugin.lazy import np

# Phases, in gdb's order: the unit holding main, then by first function, variable, type name;
# a unit with none of these is never expanded by the listings.
MAIN, FUNCTION, VARIABLE, TYPE, NEVER = range(5)

_DW_AT_linkage_name = 0x6E
_DW_AT_MIPS_linkage_name = 0x2007
_DW_AT_external = 0x3F
_DW_AT_inline = 0x20
_SCOPES = (F.DW_TAG_namespace, F.DW_TAG_class_type, F.DW_TAG_structure_type, F.DW_TAG_union_type,
           F.DW_TAG_enumeration_type)
_CLASSES = (F.DW_TAG_class_type, F.DW_TAG_structure_type, F.DW_TAG_union_type)


def abstract_instance(ab: Abbrev) -> bool:
    """Whether a DIE of abbreviation ``ab`` is the abstract instance of an inlined function
    (DW_TAG_subprogram with DW_AT_inline), which the unit's inlined and out-of-line instances
    name by DW_AT_abstract_origin (see hash.analyze_unit for where that pins a root)."""
    return ab.tag == F.DW_TAG_subprogram and any(at == _DW_AT_inline for at, _, _ in ab.specs)


def listed_per_unit(ab: Abbrev) -> bool:
    """Whether gdb lists a DIE of abbreviation ``ab`` under each unit holding a copy, so that every
    unit keeps its copy (the root is pinned): a named DIE without DW_AT_decl_file (base types,
    decltype(nullptr)) is listed in `info types` under the file of each unit that has one.

    Not an opaque struct, class or union declaration (DW_AT_declaration, no DW_AT_byte_size, no
    DW_AT_signature): gdb gives that no symbol (dwarf2/read.c process_structure_scope: "Do not
    consider external references"), so it is in no listing and merges as any other type (a C++
    library has one in every unit for each class template it names: librados's 11 units kept
    5,600 of them). A declaration with DW_AT_signature stands for a type unit's type, which gdb
    lists."""
    ats = {at for at, _, _ in ab.specs}
    if F.DW_AT_name not in ats or F.DW_AT_decl_file in ats:
        return False
    declared = any(at == F.DW_AT_declaration and form == F.DW_FORM_flag_present for at, form, _ in ab.specs)
    return not (ab.tag in _CLASSES and declared and F.DW_AT_byte_size not in ats and F.DW_AT_signature not in ats)


# Tags gdb lists with `info types`.
_TYPES = (F.DW_TAG_base_type, F.DW_TAG_class_type, F.DW_TAG_structure_type, F.DW_TAG_union_type,
          F.DW_TAG_enumeration_type, F.DW_TAG_typedef, F.DW_TAG_unspecified_type, F.DW_TAG_subrange_type)


# Name forms read here; a name in another (a dwz supplementary file's DW_FORM_GNU_strp_alt) is
# left out of the key rather than stopping the merge.
_STRING_FORMS = frozenset({F.DW_FORM_string, F.DW_FORM_strp, F.DW_FORM_line_strp, *F.STRX_FORMS})
_WANTED = (F.DW_AT_name, _DW_AT_linkage_name, _DW_AT_MIPS_linkage_name, F.DW_AT_specification,
           F.DW_AT_abstract_origin, F.DW_AT_declaration, _DW_AT_external)
# Forms read where they stand: strings by offset or index, in-unit references, flags.
_DIRECT = {F.DW_FORM_strp: 0, F.DW_FORM_line_strp: 0, F.DW_FORM_strx1: 1, F.DW_FORM_strx2: 2,
           F.DW_FORM_strx3: 3, F.DW_FORM_strx4: 4, F.DW_FORM_ref1: 1, F.DW_FORM_ref2: 2, F.DW_FORM_ref4: 4,
           F.DW_FORM_ref8: 8, F.DW_FORM_flag: 1, F.DW_FORM_string: -1}


_plans: dict[tuple, tuple | None] = {}


def _plan(ab: Abbrev, hdr: UnitHeader) -> tuple | None:
    """((attribute, form, offset after the code, implicit constant), ...) of the wanted
    attributes, or None when one of them is not at a fixed place or in a form read here."""
    key = (ab.raw, hdr.version, hdr.offset_size, hdr.addr_size)
    if key not in _plans:
        _plans[key] = _make_plan(ab, hdr)
    return _plans[key]


def _make_plan(ab: Abbrev, hdr: UnitHeader) -> tuple | None:
    out = []
    at_ = 0
    for at, form, const in ab.specs:
        if at in _WANTED:
            if form in (F.DW_FORM_flag_present, F.DW_FORM_implicit_const):
                out.append((at, form, 0, const))
            elif form in _DIRECT and at_ is not None:
                out.append((at, form, at_, 0))
            else:
                return None
        size = form_size(form, hdr.version, hdr.offset_size, hdr.addr_size)
        at_ = at_ + size if size is not None and at_ is not None else None
    return tuple(out)


def expansion_key(info: bytes, ud: UnitDies, string) -> tuple[int, bytes]:
    """(phase, lower-cased first name) of the unit: gdb 13 expands units with smaller keys first.
    ``string(form, value)`` reads a string attribute of the unit."""
    size = code_table_size(ud.abbrevs)
    tag_of = np.zeros(size, dtype=np.int64)
    declared = np.zeros(size, dtype=bool)  # DW_AT_declaration as DW_FORM_flag_present: known without reading
    for code, ab in ud.abbrevs.items():
        tag_of[code] = ab.tag
        declared[code] = any(at == F.DW_AT_declaration and form == F.DW_FORM_flag_present for at, form, _ in ab.specs)
    offs, codes, parent, _ = ud.numpy_arrays()
    tags = tag_of[codes]
    code_list = codes.tolist()
    # gdb's indexer reads the children of the unit, of namespaces, of enumerations and of named
    # classes; not those of functions (dwarf2/read.c, cooked_indexer::index_dies).
    scope = np.zeros(len(offs), dtype=bool)
    scope[0] = True
    for j in np.flatnonzero(np.isin(tags, _SCOPES)).tolist():
        if scope[parent[j]]:
            specs = ud.abbrevs[code_list[j]].specs
            scope[j] = tags[j] not in _CLASSES or any(at == F.DW_AT_name for at, _, _ in specs)
    listed = scope[np.maximum(parent, 0)]
    listed[0] = False
    defined = listed & ~declared[codes]
    memo: dict[int, dict] = {}
    plans = {code: _plan(ab, ud.hdr) for code, ab in ud.abbrevs.items()}
    base = ud.hdr.off
    offset_size = ud.hdr.offset_size

    def attrs(j: int) -> dict:
        """{attribute: (form, value)} of the wanted attributes (all of them where they are not
        at a fixed place: the decoder's slow path)."""
        got = memo.get(j)
        if got is None:
            plan = plans[code_list[j]]
            if plan is None:
                got = die_attrs(info, ud, j)
            else:
                o = int(offs[j])
                p = o + 1 if info[o] < 0x80 else read_uleb(info, o)[1]
                got = {}
                for at, form, where, const in plan:
                    q = p + where
                    if form == F.DW_FORM_flag_present:
                        got[at] = (form, 1)
                    elif form == F.DW_FORM_implicit_const:
                        got[at] = (form, const)
                    elif form == F.DW_FORM_string:
                        end = info.find(0, q, ud.hdr.end)
                        if end < 0:
                            raise DwarfError(f"unterminated string in the DIE at 0x{o:x}")
                        got[at] = (form, info[q:end])
                    else:
                        n = _DIRECT[form] or offset_size
                        value = int.from_bytes(info[q:q + n], "little")
                        got[at] = (form, base + value if form in F.UNIT_REF_FORMS else value)
            memo[j] = got
        return got

    def names(j: int, depth: int = 0) -> list[bytes]:
        """The DIE's name and linkage name, from its specification or origin where it has none."""
        a = attrs(j)
        out = [string(*a[at]) for at in (F.DW_AT_name, _DW_AT_linkage_name, _DW_AT_MIPS_linkage_name)
               if at in a and a[at][0] in _STRING_FORMS]
        if len(out) < 2 and depth < 4:
            for at in (F.DW_AT_specification, F.DW_AT_abstract_origin):
                if at in a and (a[at][0] in F.UNIT_REF_FORMS or a[at][0] == F.DW_FORM_ref_addr):
                    k = int(np.searchsorted(offs, a[at][1]))
                    if k < len(offs) and offs[k] == a[at][1]:
                        out += names(k, depth + 1)
                    break
        return out

    def declaration(j: int) -> bool:
        value = attrs(j).get(F.DW_AT_declaration)
        return bool(value and value[1])

    first: list[bytes] = []
    for j in np.flatnonzero(defined & (tags == F.DW_TAG_subprogram)).tolist():
        if not declaration(j):
            got = names(j)
            if parent[j] == 0 and b"main" in got[:1]:
                return MAIN, b""
            first += got
    if first:
        return FUNCTION, min(n.lower() for n in first)
    for j in np.flatnonzero(listed & (tags == F.DW_TAG_variable)).tolist():
        # gdb indexes an external variable's declaration too (minimal symbols resolve it).
        if not declaration(j) or attrs(j).get(_DW_AT_external, (0, 0))[1]:
            first += names(j)
    if first:
        return VARIABLE, min(n.lower() for n in first)
    for j in np.flatnonzero(defined & np.isin(tags, _TYPES)).tolist():
        if not declaration(j):
            name = attrs(j).get(F.DW_AT_name)
            if name is not None and name[0] in _STRING_FORMS:
                first.append(string(*name))
    if first:
        return TYPE, min(n.lower() for n in first)
    return NEVER, b""


def ranks(keys: list[tuple]) -> list[int]:
    """Each unit's place in gdb's expansion order; units with equal keys share a place."""
    order = {key: r for r, key in enumerate(sorted(set(keys)))}
    return [order[key] for key in keys]


# The numbers of worker threads whose expansion orders the merge respects too (table.choose_winners):
# 2, gdb's default on a 2-core machine, and 4. With 8 as well libstdc++ listed worse at 0 threads
# (13 entries moved against 4) and no better at 8, for 8 KB more; with 2 alone, worse at 0 and 4
# threads (BENCHMARKS.md, session 14).
THREAD_MODELS = (2, 4)


def thread_indexes(sizes: list[int], threads: int) -> list[int]:
    """Which of gdb's indexes each unit is in when gdb indexes on ``threads`` worker threads: one
    index per worker over a run of consecutive units, each run closed once it holds a
    ``threads``-th of all the units' bytes, and the rest on the main thread, whose index comes
    last (gdbsupport/parallel-for.h ``parallel_for_each``, sized by each unit's length in
    dwarf2/read.c ``dwarf2_build_psymtabs_hard``). gdb cuts by the output's sizes; these are the
    input's, which the merge knows when it chooses."""
    out = [threads - 1] * len(sizes)
    per = sum(sizes) // threads
    first = 0
    for index in range(threads - 1):
        end, chunk = first, 0
        while end < len(sizes) and chunk < per:
            chunk += sizes[end]
            end += 1
        if end == len(sizes):
            break
        out[first:end] = [index] * (end - first)
        first = end
    return out


def thread_ranks(keys: list[tuple[int, bytes]], sizes: list[int], threads: int) -> list[int]:
    """Each unit's place in gdb's expansion order (``ranks``) when gdb indexes on ``threads``
    worker threads: main's unit first, then for each listing index after index, by first name
    within each (cooked_index_vector::find walks the indexes in turn)."""
    index = thread_indexes(sizes, threads)
    return ranks([(phase, 0 if phase == MAIN else index[u], name) for u, (phase, name) in enumerate(keys)])
