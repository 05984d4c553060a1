"""Optional C++ ODR step (``--odr``, issue 11), run after the table phase: C++ types that share a
fully qualified name are taken to be one type, as dsymutil's ODR uniquing does.

The table phase removes only exact duplicates (equal hashes). In C++ the same class is often
emitted differently by different units (implicit members, member templates instantiated in some
units only, a declaration where the unit did not need the definition): those copies differ in
hash and all stay. Here, in C++ units only, every named structure, class, union or enumeration
at unit or namespace level (outside any anonymous namespace) is keyed by its kind (class and
struct are one kind) and qualified name:

- among the definitions of one name, size and place (declaring file and line: where gdb lists
  it), the copy with the most DIEs is canonical (the first in gdb's expansion order among
  equals, as in the table phase), and the others are removed;
- declarations of a name whose definitions all have one size are replaced by a canonical
  definition (by the canonical declaration when no unit defines it);
- then pointers, references and cv-qualified types fold when their attributes agree and their
  DW_AT_type reaches the same canonical type (``_fold_wrappers``).

A removed copy's DIEs that something references from outside its subtree (the
DW_AT_specification of an out-of-class member function definition, a static member, a nested
type) are redirected to the canonical copy's DIE of the same path (tag, name, linkage name,
declaration flag, byte size, line, type spelling and constant value at every level), and so
must the typedefs and static members declared in the class (gdb lists them). When one of them
has no such DIE, or more than one, the copy stays: no reference ever lands on a different
entity.

Only roots the table phase kept (its canonical copies) take part; the exact duplicates of a
removed copy follow it through the same DIE-by-DIE map. Units are scanned by the runner of the
other phases (whole units, results in unit order) and the choice is made serially, so the output
does not depend on ``jobs``.
"""
from __future__ import annotations

import hashlib
import marshal
import struct
from bisect import bisect_left, bisect_right
from typing import Callable, NamedTuple

import numpy as np

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.abbrev import Abbrev, form_size, unit_die_entry
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.read import UnitDies, decode_attrs, die_attrs
from linkplugin.dwarf.units import UnitHeader, unit_header
from linkplugin.merge.expansion import ranks
from linkplugin.merge.hash import UnitAnalysis, UnitEnv, decode_with_abbrevs, location_operands, split_skeletons
from linkplugin.merge.nogc import no_gc
from linkplugin.merge.shared import SharedSections, kept_unit, worker_sections
from linkplugin.merge.table import Removals, as_numpy

# Tags whose copies are one type when their names agree; class and struct are one kind in C++.
_KIND = {F.DW_TAG_class_type: 1, F.DW_TAG_structure_type: 1, F.DW_TAG_union_type: 2,
         F.DW_TAG_enumeration_type: 3}
DW_AT_linkage_name = 0x6E
DW_AT_MIPS_linkage_name = 0x2007
NO_PATH = bytes(8)  # subtree_paths: a DIE that is never matched
# Types that only qualify, point to or rename another type: equal when their attributes are equal
# and their DW_AT_type reaches the same canonical type, so a wrapper of a type folded here (a
# pointer to one of the removed copies of a class) folds too.
# (Not typedefs: gdb lists them, and which copy it prints for a name depends on the order it
# expands units in, which the folds change.)
_WRAPPERS = frozenset({F.DW_TAG_pointer_type, F.DW_TAG_reference_type, F.DW_TAG_rvalue_reference_type,
                       F.DW_TAG_const_type, F.DW_TAG_volatile_type, F.DW_TAG_restrict_type,
                       F.DW_TAG_atomic_type})
# Members gdb lists on their own (`info types`, `info variables`): a copy folds only when the
# canonical copy has each of them the same (subtree_paths).
_LISTED = np.array([F.DW_TAG_typedef, F.DW_TAG_variable], dtype=np.int64)
DW_AT_const_value = 0x1C
DW_AT_decl_line = 0x3B
DW_AT_decl_column = 0x39
_PATH_ATTRS = frozenset({F.DW_AT_name, DW_AT_linkage_name, DW_AT_MIPS_linkage_name, F.DW_AT_declaration,
                         F.DW_AT_byte_size, DW_AT_decl_line, F.DW_AT_type, DW_AT_const_value})
_ROOT_ATTRS = _PATH_ATTRS | {F.DW_AT_specification, F.DW_AT_signature, F.DW_AT_type, F.DW_AT_decl_file,
                             DW_AT_decl_line, DW_AT_decl_column}
_WRAPPER_ATTRS = frozenset({F.DW_AT_sibling, F.DW_AT_name, F.DW_AT_byte_size, F.DW_AT_type, F.DW_AT_decl_file,
                            DW_AT_decl_line, DW_AT_decl_column})


class Candidate(NamedTuple):
    root: int         # index of the root in its unit's UnitAnalysis.roots
    key: bytes        # kind + qualified name
    size: int         # DW_AT_byte_size, -1 if none
    decl: bool        # DW_AT_declaration
    place: bytes      # DW_AT_decl_file (by path) and DW_AT_decl_line: where gdb lists it
    listed: tuple[int, ...]  # its typedefs and static members (relative DIE indexes), which gdb lists


class UnitScan(NamedTuple):
    candidates: list[Candidate]
    inner_refs: np.ndarray    # DIE indexes of this unit referenced from outside their root's subtree
    outer_refs: np.ndarray    # section offsets of this unit's references into other units
    fixed: np.ndarray         # roots named by a unit-relative expression operand: they stay
    wrappers: list[tuple[int, bytes, int]] = []  # (root, attributes but DW_AT_type, its target or -1)


def _string(env: UnitEnv, attrs: dict, at: int) -> bytes | None:
    got = attrs.get(at)
    return env.string(*got) if got is not None else None


def _flag(attrs: dict, at: int) -> bool:
    got = attrs.get(at)
    return bool(got[1]) if got is not None else False


def _size(attrs: dict) -> int:
    got = attrs.get(F.DW_AT_byte_size)
    return got[1] if got is not None and isinstance(got[1], int) else -1


def scan_unit(secs: dict[str, bytes], ud: UnitDies, roots: np.ndarray, root_ends: np.ndarray,
              verbatim: bool) -> UnitScan:
    """What the ODR choice needs of one unit: its candidate roots (C++ units only) and which DIEs
    inside roots are referenced from outside them (from any unit)."""
    info = secs[".debug_info"]
    hdr = ud.hdr
    offs, codes, parent, _ = ud.numpy_arrays()
    n = len(offs)
    root_of = np.full(n, -1, dtype=np.int64)
    for k, (r, e) in enumerate(zip(roots.tolist(), root_ends.tolist())):
        root_of[r:e] = k
    # Every DIE-naming value: reference attributes, expression operands, location lists.
    src = np.asarray(ud.ref_die, dtype=np.int64)
    target = np.asarray(ud.ref_target, dtype=np.int64)
    extra_src: list[int] = []
    extra_target: list[int] = []
    relative: list[int] = []  # targets of unit-relative operands (DW_OP_convert, ...)
    for die, _, _, kind, t in ud.xrefs:
        extra_src.append(die)
        extra_target.append(t)
        if kind != "s":
            relative.append(t)
    if not verbatim:
        env = UnitEnv(secs, ud, info)
        for _, _, kind, v in location_operands(secs, ud, env)[1]:
            extra_src.append(-1)  # a location list belongs to no root
            extra_target.append(v if kind == "s" else v + hdr.off)
            if kind != "s":
                relative.append(v + hdr.off)
    fixed = np.zeros(len(roots), dtype=bool)
    if relative:
        t = np.minimum(np.searchsorted(offs, np.array(relative, dtype=np.int64)), n - 1)
        k = root_of[t]
        fixed[k[k >= 0]] = True
    if extra_src:
        src = np.concatenate([src, np.array(extra_src, dtype=np.int64)])
        target = np.concatenate([target, np.array(extra_target, dtype=np.int64)])
    inside = (target >= hdr.off) & (target < hdr.end)
    outer = np.unique(target[~inside])
    t_in = np.searchsorted(offs, target[inside])
    s_in = src[inside]
    ok = t_in < n
    t_in, s_in = t_in[ok], s_in[ok]
    hit = offs[t_in] == target[inside][ok]
    t_in, s_in = t_in[hit], s_in[hit]
    t_root = root_of[t_in]
    s_root = np.where(s_in >= 0, root_of[np.maximum(s_in, 0)], -1)
    crossing = (t_root >= 0) & (t_root != s_root)
    inner = np.unique(t_in[crossing])
    if verbatim:
        return UnitScan([], inner, outer, fixed)
    top = die_attrs(info, ud, 0)
    lang = top.get(F.DW_AT_language)
    if lang is None or lang[1] not in F.CPP_LANGUAGES:
        return UnitScan([], inner, outer, fixed)
    tag_of = {code: ab.tag for code, ab in ud.abbrevs.items()}
    tag_arr = np.zeros(max(tag_of) + 1, dtype=np.int64)
    tag_arr[list(tag_of)] = list(tag_of.values())
    tags = tag_arr[codes]
    attrs_of = _Reader(info, ud, _ROOT_ATTRS)
    ns_name: dict[int, tuple | None] = {0: ()}  # qualified name of a namespace (None: anonymous)

    def scope(p: int) -> tuple | None:
        # A loop, not recursion: a recursive closure is a reference cycle, and with the
        # collector off during the merge (nogc.py) it would keep the decoded unit alive.
        chain = []
        while p not in ns_name:
            chain.append(p)
            p = int(parent[p])
        got = ns_name[p]
        for q in reversed(chain):
            name = _string(env, attrs_of(q), F.DW_AT_name)
            got = ns_name[q] = None if got is None or name is None else got + (name,)
        return got

    cands: list[Candidate] = []
    wrappers: list[tuple[int, bytes, int]] = []
    for k, (r, e) in enumerate(zip(roots.tolist(), root_ends.tolist())):
        tag = tag_of[int(codes[r])]
        if tag in _WRAPPERS:
            specs = ud.abbrevs[int(codes[r])].specs
            if e == r + 1 and not fixed[k] and all(at in _WRAPPER_ATTRS for at, _, _ in specs):
                wrappers.append(_wrapper(env, attrs_of(r), k, tag))
            continue
        kind = _KIND.get(tag)
        if kind is None:
            continue
        attrs = attrs_of(r)
        name = _string(env, attrs, F.DW_AT_name)
        if name is None or F.DW_AT_specification in attrs or F.DW_AT_signature in attrs:
            continue
        where = scope(int(parent[r]))
        if where is None:  # anonymous namespace: a type of this unit only
            continue
        line = attrs.get(DW_AT_decl_line)
        listed = np.flatnonzero((parent[r + 1:e] == r) & np.isin(tags[r + 1:e], _LISTED)) + 1
        cands.append(Candidate(k, marshal.dumps((kind, where, name), 2), _size(attrs),
                               _flag(attrs, F.DW_AT_declaration),
                               marshal.dumps((_file(env, attrs), line[1] if line else None), 2),
                               tuple(listed.tolist())))
    return UnitScan(cands, inner, outer, fixed, wrappers)


def _file(env: UnitEnv, attrs: dict) -> object:
    """DW_AT_decl_file by path (None if absent; a number not in the table: this unit's own)."""
    file = attrs.get(F.DW_AT_decl_file)
    if file is None:
        return None
    files = env.files()
    path = files[file[1]] if 0 <= file[1] < len(files) else None
    return path if path is not None else ("unit", env.hdr.off, file[1])


def _wrapper(env: UnitEnv, attrs: dict, k: int, tag: int) -> tuple[int, bytes, int]:
    """(root, key of the attributes other than DW_AT_type, DW_AT_type target or -1)."""
    file = _file(env, attrs)
    line, column = attrs.get(DW_AT_decl_line), attrs.get(DW_AT_decl_column)
    key = (tag, _string(env, attrs, F.DW_AT_name), _size(attrs), file, line[1] if line else None,
           column[1] if column else None)
    target = attrs.get(F.DW_AT_type)
    return k, marshal.dumps(key, 2), target[1] if target is not None else -1


def subtree_paths(secs: dict[str, bytes], ud: UnitDies, spans: list[tuple[int, int]]) -> list[bytes]:
    """For each subtree [r, e) of ``spans``, an 8-byte digest of the path of every DIE after its
    root, in order:
    the (tag, name, linkage name, declaration flag, byte size, line, spelling of its type, constant
    value) of the DIE and of each parent up to the root's child. The line and the type's spelling
    are what gdb reads through a DW_AT_specification (a function's line and return type in its
    listings), so a member declared differently in two copies (an ODR violation, a typedef in one
    and not in the other) never matches. The DIEs inside a member function (its parameters: most
    of a class's DIEs, and nothing outside the class names them) get ``NO_PATH``: never matched."""
    info = secs[".debug_info"]
    env = UnitEnv(secs, ud, info)
    offs, codes, parent = ud.numpy_arrays()[:3]
    tag_of = {code: ab.tag for code, ab in ud.abbrevs.items()}
    attrs_of = _Reader(info, ud, _PATH_ATTRS)
    spelled: dict[int, tuple] = {}

    def spelling(t: int) -> tuple:
        """The tags up to the first named type from DIE offset ``t`` on, and its name."""
        got = spelled.get(t)
        if got is None:
            chain: list = []
            at = t
            for _ in range(8):
                if not ud.hdr.off <= at < ud.hdr.end:
                    chain.append(("elsewhere", at))  # another unit's DIE: only itself matches
                    break
                k = int(np.searchsorted(offs, at))
                if k >= len(offs) or offs[k] != at:
                    chain.append(("no DIE", at))
                    break
                a = attrs_of(k)
                name = _string(env, a, F.DW_AT_name)
                chain.append((tag_of[int(codes[k])], name))
                nxt = a.get(F.DW_AT_type)
                if name is not None or nxt is None:
                    break
                at = nxt[1]
            got = spelled[t] = tuple(chain)
        return got
    result = []
    for r, e in spans:
        paths = {r: b""}
        out = bytearray()
        for d in range(r + 1, e):
            up = paths[int(parent[d])]
            code = int(codes[d])
            tag = tag_of[code]
            if up == NO_PATH or tag_of[int(codes[int(parent[d])])] == F.DW_TAG_subprogram:
                digest = NO_PATH
            else:
                a = attrs_of(d)
                line, typ, const = a.get(DW_AT_decl_line), a.get(F.DW_AT_type), a.get(DW_AT_const_value)
                elem = (tag, _string(env, a, F.DW_AT_name),
                        _string(env, a, DW_AT_linkage_name) or _string(env, a, DW_AT_MIPS_linkage_name),
                        _flag(a, F.DW_AT_declaration), _size(a), line[1] if line else None,
                        spelling(typ[1]) if typ else None, const[1] if const else None)
                digest = hashlib.blake2b(up + marshal.dumps(elem, 2), digest_size=8).digest()
            paths[d] = digest
            out += digest
        result.append(bytes(out))
    return result




def _plan(ab: Abbrev, hdr: UnitHeader, wanted: frozenset[int] = _PATH_ATTRS) -> dict[int, tuple[int, int, int]] | None:
    """{attribute: (form, offset after the DIE's code, size)} of the ``wanted`` attributes, when
    each lies at a fixed offset (only fixed-size values before it); None otherwise."""
    plan: dict[int, tuple[int, int, int]] = {}
    at_off = 0
    for at, form, ic in ab.specs:
        if form == F.DW_FORM_implicit_const:
            size = 0
        elif form == F.DW_FORM_flag_present:
            size = 0
        else:
            size = form_size(form, hdr.version, hdr.offset_size, hdr.addr_size)  # type: ignore[assignment]
        if at in wanted:
            if size is None or form == F.DW_FORM_data16:
                return None
            plan[at] = (form, at_off, size if form != F.DW_FORM_implicit_const else ic)
        if size is None:
            break  # later attributes move with this value: fine if none of ours is after it
        at_off += size
    if not all(at in plan for at, _, _ in ab.specs if at in wanted):
        return None
    return plan


_plans: dict[tuple, dict[int, tuple[int, int, int]] | None] = {}  # _plan by abbreviation and unit kind


class _Reader:
    """die_attrs for the ``wanted`` attributes only: read at their fixed offsets when the
    abbreviation allows (most DIEs), else by the full decoder."""

    def __init__(self, info: bytes, ud: UnitDies, wanted: frozenset[int]) -> None:
        self.info, self.ud, self.wanted = info, ud, wanted
        self.plans: dict[int, dict[int, tuple[int, int, int]] | None] = {}

    def __call__(self, d: int) -> dict:
        code = self.ud.die(d)[1]
        plan = self.plans.get(code, False)
        if plan is False:
            ab, hdr = self.ud.abbrevs[code], self.ud.hdr
            key = (ab.specs, hdr.version, hdr.offset_size, hdr.addr_size, self.wanted)
            plan = _plans.get(key, False)
            if plan is False:
                plan = _plans[key] = _plan(ab, hdr, self.wanted)
            self.plans[code] = plan
        return die_attrs(self.info, self.ud, d) if plan is None else _read_planned(self.info, self.ud, d, plan)


def _read_planned(info: bytes, ud: UnitDies, d: int, plan: dict[int, tuple[int, int, int]]) -> dict:
    """die_attrs's {attribute: (form, value)} of the planned attributes of DIE ``d``."""
    off, _ = ud.die(d)
    p = read_uleb(info, off)[1]
    out = {}
    for at, (form, at_off, size) in plan.items():
        if form == F.DW_FORM_flag_present:
            out[at] = (form, 1)
        elif form == F.DW_FORM_implicit_const:
            out[at] = (form, size)
        else:
            value = int.from_bytes(info[p + at_off:p + at_off + size], "little")
            if form in F.UNIT_REF_FORMS:
                value += ud.hdr.off
            out[at] = (form, value)
    return out


def _decoded(src: SharedSections, secs: dict[str, bytes], u: int) -> UnitDies:
    info = secs[".debug_info"]
    ud = kept_unit(src, u, keep=True)
    return ud if ud is not None else decode_with_abbrevs(info, secs.get(".debug_abbrev", b""),
                                                          unit_header(info, u), {})


def scan_chunk(src: SharedSections, jobs: list[tuple[int, bool, np.ndarray, np.ndarray]]) -> list[UnitScan]:
    """Worker entry: ``scan_unit`` of each (unit index, copied verbatim, roots, root ends)."""
    with no_gc():
        secs = worker_sections(src)
        return [scan_unit(secs, _decoded(src, secs, u), roots, ends, verbatim) for u, verbatim, roots, ends in jobs]


def paths_chunk(src: SharedSections, jobs: list[tuple[int, list[tuple[int, int]]]]) -> list[list[bytes]]:
    """Worker entry: ``subtree_paths`` of each (unit index, [(root DIE, end DIE)])."""
    with no_gc():
        secs = worker_sections(src)
        out = []
        for u, spans in jobs:
            ud = _decoded(src, secs, u)
            out.append(subtree_paths(secs, ud, spans))
        return out


def _language(sections: dict[str, bytes], hdr: UnitHeader) -> int | None:
    """DW_AT_language of the unit DIE, read without decoding the unit."""
    info = sections[".debug_info"]
    ab, p = unit_die_entry(info, sections.get(".debug_abbrev", b""), hdr)
    if ab is None:
        return None
    attrs, _ = decode_attrs(info, p, ab.specs, hdr)
    return next((value for at, _, value, _, _ in attrs if at == F.DW_AT_language), None)  # type: ignore[misc]


def _index_targets(sections: dict[str, bytes], units: list[UnitHeader], split: frozenset[int]) -> list[int]:
    """The DIE offsets that .debug_names and the pubnames/pubtypes sections name: references
    too (an index that cannot be read is dropped by the index phase anyway). ``split``: the
    split-DWARF skeleton units, whose sets name DIEs of their .dwo files."""
    from linkplugin.index import PUBNAMES, CannotRebuild, debug_names, pubnames

    out: list[int] = []
    try:
        if ".debug_names" in sections:
            for index in debug_names.read(sections[".debug_names"], {u.off for u in units}):
                out += [e.die for entries in index.names.values() for e in entries]
        for name, gnu in PUBNAMES.items():
            if name in sections:
                out += [die for unit, entries in pubnames.read(sections[name], gnu) if unit not in split
                        for die, _, _ in entries]
    except (CannotRebuild, DwarfError, struct.error, IndexError):
        pass
    return out


def _fold_wrappers(scans: list[UnitScan], analyses: list[UnitAnalysis], removed_to: dict, odr_map: dict,
                   offs: list[np.ndarray], starts: np.ndarray, unit_rank: list[int]) -> None:
    """Fold the wrappers (_WRAPPERS) whose attributes agree and whose DW_AT_type reaches the same
    canonical DIE, in rounds until none folds (a const of a pointer folds once the pointers
    have). The first in gdb's order is canonical; ``odr_map`` gains the others, each mapped to
    the wrapper it finally folds into."""
    items = [(u, int(analyses[u].roots[k]), key, target) for u, scan in enumerate(scans)
             for k, key, target in scan.wrappers]
    items = [it for it in items if (it[0], it[1]) not in removed_to]
    if not items:
        return
    # Each target as (unit, DIE), found once for all rounds with numpy; (-2, offset) for a
    # target that is no DIE, (-1, -1) for none (void).
    targets = np.array([it[3] for it in items], dtype=np.int64)
    where = [(-1, -1)] * len(items)
    tu = np.searchsorted(starts, targets, side="right") - 1
    for u in np.unique(tu[(targets >= 0) & (tu >= 0)]).tolist():
        sel = np.flatnonzero((tu == u) & (targets >= 0))
        t = targets[sel]
        d = np.minimum(np.searchsorted(offs[u], t.astype(offs[u].dtype)), len(offs[u]) - 1)
        hit = offs[u][d] == t
        for i, k, h, o in zip(sel.tolist(), d.tolist(), hit.tolist(), t.tolist()):
            where[i] = (u, k) if h else (-2, o)
    for i in np.flatnonzero((targets >= 0) & (tu < 0)).tolist():
        where[i] = (-2, int(targets[i]))
    # Python lists: bisect on them costs far less than a numpy call per lookup.
    roots = [a.roots.tolist() for a in analyses]
    root_ends = [a.root_ends.tolist() for a in analyses]

    def final(at: tuple[int, int]) -> tuple[int, int]:
        """Where references to the DIE ``at`` (unit, DIE) end up after the folds so far."""
        u, d = at
        if u < 0:
            return at
        for _ in range(8):
            k = bisect_right(roots[u], d) - 1
            if k < 0 or d >= root_ends[u][k]:
                break
            r = int(roots[u][k])
            if (u, r) in removed_to:
                cu, cd = removed_to[(u, r)]
                u, d = cu, cd + d - r
            elif (u, r) in odr_map:
                cu, mapping = odr_map[(u, r)]
                got = mapping.get(d - r)
                if got is None:
                    break
                u, d = cu, got
            else:
                break
        return (u, d)

    while True:
        groups: dict[tuple, list[tuple[int, int]]] = {}
        for (u, r, key, _), at in zip(items, where):
            if (u, r) not in odr_map:
                groups.setdefault((key, final(at)), []).append((u, r))
        folded = 0
        for members in groups.values():
            if len(members) < 2:
                continue
            cu, cd = min(members, key=lambda m: (unit_rank[m[0]], m[0], m[1]))
            for m in members:
                if m != (cu, cd):
                    odr_map[m] = (cu, {0: cd})
                    folded += 1
        if not folded:
            break
    # A canonical wrapper of one round may have folded in a later one: map to the last.
    for m, (cu, mapping) in list(odr_map.items()):
        if len(mapping) == 1 and (cu, mapping[0]) in odr_map:
            u, d = cu, mapping[0]
            while (u, d) in odr_map:
                u, nxt = odr_map[(u, d)]
                d = nxt[0]
            odr_map[m] = (u, {0: d})


def _kinds(defs: list) -> dict[tuple[int, bytes], list]:
    """The definitions of one name by size and place (gdb lists a type at its file and line):
    only copies of one group fold together."""
    out: dict[tuple[int, bytes], list] = {}
    for c in defs:
        out.setdefault((c.cand.size, c.cand.place), []).append(c)
    return dict(sorted(out.items()))


def odr_removals(analyses: list[UnitAnalysis], removals: list[Removals], units: list[UnitHeader],
                 sections: dict[str, bytes], src: SharedSections, chunks: list[list[int]], jobs: int,
                 run_tasks: Callable[..., list], keys: list[tuple]) -> tuple[list[Removals], list[Removals]]:
    """(removals for the rewrite phase, redirections for the layout's Resolver): the table
    phase's ``removals`` plus the ODR ones. The rewrite drops whole subtrees; the Resolver maps
    the removed DIEs of an ODR copy one by one (one-DIE entries), since its subtree is not the
    canonical one's DIE for DIE. ``keys``: each unit's place in gdb's expansion order, as the
    table phase took them."""
    if not any(_language(sections, u) in F.CPP_LANGUAGES for u, a in zip(units, analyses) if not a.verbatim):
        return removals, removals  # no C++ unit: nothing to scan
    analyses = [as_numpy(a) for a in analyses]  # (the compiled hash phase's columns are array.array)
    tasks = [(src, [(u, bool(analyses[u].verbatim), analyses[u].roots, analyses[u].root_ends) for u in c])
             for c in chunks]
    scans: list[UnitScan] = [s for part in run_tasks(scan_chunk, tasks, jobs) for s in part]
    n_units = len(analyses)
    unit_rank = ranks(keys)  # gdb's expansion order, as choose_winners
    offs = [a.offs for a in analyses]  # int64 or uint32
    starts = np.array([u.off for u in units], dtype=np.int64)

    # Where each root went in the table phase: (unit, root DIE) -> (canonical unit, canonical DIE).
    removed_to: dict[tuple[int, int], tuple[int, int]] = {}
    for u, rem in enumerate(removals):
        for s, cu, cd in zip(rem.starts.tolist(), rem.canon_unit.tolist(), rem.canon_die.tolist()):
            removed_to[(u, s)] = (cu, cd)

    # DIEs referenced from outside their root: each unit's DIE indexes, sorted.
    found: list[list[np.ndarray]] = [[s.inner_refs] for s in scans]
    outer = np.unique(np.concatenate([s.outer_refs for s in scans]
                                     + [np.array(_index_targets(sections, units, split_skeletons(units, analyses)),
                                                 dtype=np.int64)]))
    tu = np.searchsorted(starts, outer, side="right") - 1
    for u in np.unique(tu[tu >= 0]).tolist():
        t = outer[tu == u]
        d = np.minimum(np.searchsorted(offs[u], t.astype(offs[u].dtype)), len(offs[u]) - 1)
        found[u].append(d[offs[u][d] == t])
    referenced = [np.unique(np.concatenate(f)).tolist() for f in found]

    # Candidates the table phase kept, each with the relative positions referenced from outside
    # in it or in any of its exact copies (which follow it).
    class Copy(NamedTuple):
        unit: int
        die: int
        end: int
        cand: Candidate
        paths: list  # [bytes] once read: subtree_paths
        fixed: bool  # must stay where it is

    kept: dict[tuple[int, int], Copy] = {}
    refs_of: dict[tuple[int, int], set[int]] = {}
    for u, s in enumerate(scans):
        a = analyses[u]
        for c in s.candidates:
            r, e = int(a.roots[c.root]), int(a.root_ends[c.root])
            owner = removed_to.get((u, r), (u, r))
            refs = referenced[u]
            rel = {d - r for d in refs[bisect_right(refs, r):bisect_left(refs, e)]}
            refs_of.setdefault(owner, set()).update(rel)
            if owner == (u, r):
                kept[(u, r)] = Copy(u, r, e, c, [], bool(s.fixed[c.root]))

    groups: dict[bytes, list[Copy]] = {}
    for key in sorted(kept):
        c = kept[key]
        groups.setdefault(c.cand.key, []).append(c)
    groups = {key: copies for key, copies in groups.items() if len(copies) > 1}

    def order(c: Copy) -> tuple:
        # most DIEs first (the likeliest superset of the others' members), then gdb's order
        return (-(c.end - c.die), unit_rank[c.unit], c.unit, c.die)

    # The paths of the copies whose DIEs something references from outside, and of those that
    # may be canonical for them, read in a second pass over their units only; a copy that
    # nothing references inside needs no path to fold (only its root is ever reached).
    wanted: dict[int, list[Copy]] = {}
    for copies in groups.values():
        defs = [c for c in copies if not c.cand.decl]
        firsts = [min(same, key=order) for same in _kinds(defs).values()] if defs else [min(copies, key=order)]
        for c in copies:
            if c in firsts or refs_of.get((c.unit, c.die)) or c.cand.listed:
                wanted.setdefault(c.unit, []).append(c)
    wanted = {u: sorted(cs, key=lambda c: c.die) for u, cs in wanted.items()}
    want_units = sorted(wanted)
    path_jobs = [[(u, [(c.die, c.end) for c in wanted[u]]) for u in chunk if u in wanted] for chunk in chunks]
    got = [p for part in run_tasks(paths_chunk, [(src, j) for j in path_jobs if j], jobs) for p in part]
    for u, per_unit in zip(want_units, got):
        for c, p in zip(wanted[u], per_unit):
            c.paths.append(p)

    # odr_map[(unit, root)] = (canonical unit, {relative DIE: canonical DIE index}) for removed copies
    odr_map: dict[tuple[int, int], tuple[int, dict[int, int]]] = {}
    path_index: dict[tuple[int, int], dict[bytes, int]] = {}

    def index_of(c: Copy) -> dict[bytes, int]:
        got = path_index.get((c.unit, c.die))
        if got is None:
            got = {}
            p = c.paths[0] if c.paths else b""
            for j in range(len(p) // 8):
                h = p[8 * j:8 * j + 8]
                if h != NO_PATH:
                    got[h] = -1 if h in got else c.die + 1 + j  # -1: more than one DIE on that path
            path_index[(c.unit, c.die)] = got
        return got

    def fold(copies: list[Copy], canon: Copy) -> list[Copy]:
        """Map the ``copies`` that can be onto ``canon``; the others are returned."""
        target = index_of(canon)
        left = []
        for c in copies:
            if c is canon:
                continue
            if c.fixed:
                left.append(c)
                continue
            # Only the root and the DIEs referenced from outside are ever reached.
            mapping = {0: canon.die}
            p = c.paths[0] if c.paths else b""
            for rel in sorted(refs_of.get((c.unit, c.die), set()) | set(c.cand.listed)):
                t = target.get(p[8 * rel - 8:8 * rel], -1)
                if t < 0:
                    left.append(c)
                    break
                mapping[rel] = t
            else:
                odr_map[(c.unit, c.die)] = (canon.unit, mapping)
        return left

    def fold_all(copies: list[Copy]) -> Copy | None:
        """Fold ``copies`` onto the best of them; those a canonical copy cannot take (it lacks
        a DIE they need) are folded onto the best of the rest, and so on. The first canonical
        copy is returned (None if there are no copies)."""
        first = None
        while copies:
            canon = min(copies, key=order)
            first = first or canon
            copies = [c for c in fold(copies, canon) if not c.fixed]
        return first

    for copies in groups.values():
        defs = [c for c in copies if not c.cand.decl]
        decls = [c for c in copies if c.cand.decl]
        firsts = [fold_all(same) for same in _kinds(defs).values()]
        if len({c.cand.size for c in defs}) == 1:
            left = fold(decls, min(firsts, key=order))  # type: ignore[arg-type]
            fold_all([c for c in left if not c.fixed])
        elif not defs:
            fold_all(decls)
    _fold_wrappers(scans, analyses, removed_to, odr_map, offs, starts, unit_rank)

    if not odr_map:
        return removals, removals
    # The rewrite drops the ODR copies' subtrees too; the Resolver gets one-DIE entries for every
    # DIE of an ODR copy (or of an exact copy of one) that has a place in the canonical copy.
    rewrite_out: list[Removals] = []
    resolve_out: list[Removals] = []
    for u, rem in enumerate(removals):
        a = analyses[u]
        rem = rem.numpy()
        extra = [(r, e) for r, e in zip(a.roots.tolist(), a.root_ends.tolist()) if (u, r) in odr_map]
        if extra:
            s = np.concatenate([rem.starts, np.array([r for r, _ in extra], dtype=rem.starts.dtype)])
            o = np.argsort(s, kind="stable")
            zero = np.zeros(len(extra), dtype=np.int64)
            rewrite_out.append(Removals(s[o], np.concatenate([rem.ends, [e for _, e in extra]]).astype(
                rem.ends.dtype)[o], np.concatenate([rem.canon_unit, zero]).astype(rem.canon_unit.dtype)[o],
                np.concatenate([rem.canon_die, zero]).astype(rem.canon_die.dtype)[o]))
        else:
            rewrite_out.append(rem)
        keep = [k for k, (cu, cd) in enumerate(zip(rem.canon_unit.tolist(), rem.canon_die.tolist()))
                if (cu, cd) not in odr_map]
        rows: list[tuple[int, int, int]] = []  # (DIE, canonical unit, canonical DIE)
        for k in range(len(rem.starts)):
            owner = (int(rem.canon_unit[k]), int(rem.canon_die[k]))
            if owner in odr_map:
                cu, mapping = odr_map[owner]
                r = int(rem.starts[k])
                rows += [(r + rel, cu, t) for rel, t in mapping.items()]
        for r, _ in extra:
            cu, mapping = odr_map[(u, r)]
            rows += [(r + rel, cu, t) for rel, t in mapping.items()]
        rows.sort()
        idx = np.array(keep, dtype=np.int64)
        st = np.concatenate([rem.starts[idx].astype(np.int64), np.array([x[0] for x in rows], dtype=np.int64)])
        en = np.concatenate([rem.ends[idx].astype(np.int64), np.array([x[0] + 1 for x in rows], dtype=np.int64)])
        cu = np.concatenate([rem.canon_unit[idx].astype(np.int64), np.array([x[1] for x in rows], dtype=np.int64)])
        cd = np.concatenate([rem.canon_die[idx].astype(np.int64), np.array([x[2] for x in rows], dtype=np.int64)])
        resolve_out.append(Removals(st, en, cu, cd))
    return rewrite_out, resolve_out
