"""Phase 3 (parallel per unit, two passes): the units' new bytes and their abbreviation table.

Surviving DIEs are copied; DW_AT_sibling is dropped; a reference to a surviving DIE of the same
unit becomes DW_FORM_ref1 or ref2 when that holds every new offset of the unit (ref1 tried for a
unit under 256 bytes, ref2 for one under 64 KiB once its dropped subtrees are taken away), else
DW_FORM_ref_udata in the fewest bytes of its target's new offset (``UDATA``); any other reference
(to a removed duplicate, to a DIE inside one, to another unit) becomes DW_FORM_ref_addr with a
placeholder that the serial layout phase fills once every unit's place is known. DIE-naming
operands of expressions keep their width (ULEB128 is padded), so expressions and location lists
never change size; if a new value does not fit, the unit is copied verbatim instead. A DIE
whose DW_AT_specification / DW_AT_abstract_origin target moved to another unit gets its own
DW_AT_decl_file (see ``_own_decl_files``). DW_AT_high_pc and DW_AT_GNU_entry_view constants
take DW_FORM_udata (``udata_specs``).

The first pass (``plan_chunk``) rewrites each unit with its own table to learn its reference
width and how many DIEs use each abbreviation; ``shared_table`` numbers the union of the
abbreviations, most used first, and the second pass (``rewrite_chunk`` with ``codes``) writes
every unit with that one shared table. An abbreviation travels between the passes as its table
entry without the code (``_entry``): bytes, cheap to send, hash and compare. A rare entry whose
implicit constants make it differ from another (gcc's DWARF 5: a unit's own file or column)
is dropped from the table: its DIEs hold those values as data instead (``_as_data``).

With the compiled core, ``_rewritecore.Unit`` (driven by ``_plan`` and ``_rewrite_any``) does the
per-DIE and per-reference work of both passes; the first pass only counts bytes and keys (no
copy).
"""
from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from operator import itemgetter

from linkplugin.dwarf import forms as F
from linkplugin.dwarf import read
from linkplugin.dwarf.abbrev import Abbrev, code_table_size, form_size, parse_abbrev_table
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import encode_sleb, encode_uleb, read_sleb, read_uleb
from linkplugin.dwarf.read import UnitDies, compiled_decoder, decode_attrs, die_attrs
from linkplugin.dwarf.units import UnitHeader, parse_units, unit_header
from linkplugin.lazy import np
from linkplugin.merge import fastrewrite, locations
from linkplugin.merge.nogc import no_gc
from linkplugin.merge.hash import batches, decode_with_abbrevs, location_operands
from linkplugin.merge.index_names import moved_names
from linkplugin.merge.shared import (SharedSections, drafts_kept, keep_draft, keep_unit, kept_draft, kept_locations,
                                     kept_unit, worker_sections)
from linkplugin.merge.table import Removals
from linkplugin.record import NamedTuple

Patch = tuple[int, int, int]  # (position, width, old target section offset) to resolve later
_put_u32 = struct.Struct("<I").pack_into
_FOLLOWED = (F.DW_AT_specification, F.DW_AT_abstract_origin)


class UnitOutput(NamedTuple):
    verbatim: str             # why the unit was copied as it is ('' when rewritten)
    body: bytes               # the whole unit, header included, placeholders for ``patches``
    abbrev: bytes             # its abbreviation table
    new_rel: np.ndarray       # new unit-relative offset of every old DIE, -1 if removed
    patches: list[Patch]      # positions in ``body`` of references to resolve
    loc_values: array         # rows of 3 (position in the location-list section, width, new value)
    loc_patches: list[Patch]  # positions in the location-list section to resolve
    dies_out: int
    local_width: int = 4      # width of the unit-local references
    uses: list[tuple[bytes, int]] = []  # DIEs per entry (``_entry``) of ``abbrev`` (own table only)
    tags: list[tuple[int, int, int]] | array = []   # (tag, DIEs before, DIEs after) for --stats (or end to end)
    python: bool = False      # rewritten by the pure-Python loop where the compiled core is built
    moved: dict[str, tuple[int, ...]] = {}  # for .gdb_index: index_names.moved_names


class _NoFit(Exception):
    """A rewritten expression operand does not fit its old width."""


class _Grew(Exception):
    """A unit written with the shared table's implicit constants as data (``_as_data``) no
    longer fits the local reference width its first pass chose."""


_GREW = "its local references would not fit once its implicit constants were written"
_NOFIT = "an expression operand would not fit after the move"


AbbrevKey = tuple  # (tag, children, specs) of an abbreviation, the same in every unit


class Codes(NamedTuple):
    """The shared table as the second pass writes with it: the code of every first-pass entry
    (``_entry``), and for an entry the table has with some implicit constants written as data
    (``_as_data``), the width of each of its DW_FORM_implicit_const values in the DIE, in spec
    order (0: left implicit), and its specs as ``recode`` walks a draft's DIEs with them."""
    codes: dict[bytes, int]
    consts: dict[bytes, bytes]
    rows: dict[bytes, array]  # rows of 3: (form, width, value) a spec


class UnitPlan(NamedTuple):
    """What the first rewrite pass learns of a unit: the width of its unit-local references and
    how many of its DIEs use each abbreviation (empty for a unit copied as it is)."""
    local_width: int
    keys: list[bytes]   # its entries (``_entry``), one object for equal ones (``_interned``)
    counts: list[int]   # DIEs using each


class Draft(NamedTuple):
    """A unit as the first pass copied it, with its own codes (key k: code k + 1), and what
    ``_rewritecore.recode`` needs to give it the shared table's codes in the second pass: only
    the codes change size, so the second pass neither decodes the unit nor prepares its kernel
    again (glibc's libc.so.6: a third of the rewrite phase)."""
    width: int                # of the local references: 1 or 2
    keys: list[bytes]         # the unit's entries (``_entry``), by own code
    body: bytes
    rel: array                # new unit-relative offset of every DIE (-1: removed)
    patches: array            # rows of 3 (position, width, old target)
    locs: array               # the local references: rows of 2 (position, target DIE)
    fixes: array              # the DIE-naming operands: rows of 3 (position, width, target DIE)
    loc_targets: array        # unit-relative location-list operands (``locations.targets``)
    loc_patches: list[Patch]
    kept: int
    tags: array               # rows of 3 (tag, DIEs before, DIEs after)
    moved: dict[str, tuple[int, ...]]


def plan_chunk(src: SharedSections, jobs: list[tuple[int, str, Removals]], names: bool = False) -> list[UnitPlan]:
    """Worker entry, first pass: each job is (unit index, verbatim reason, removals). Where the
    passes share a process (``drafts_kept``), a unit with 1- or 2-byte local references is
    copied here with its own codes (``Draft``, with its ``moved`` names if ``names``) for the
    second pass."""
    with no_gc():
        secs = worker_sections(src)
        drafts = drafts_kept(src)
        text: dict[int, str] = {}  # the units' names by .debug_str offset (for ``names``)
        out = []
        scan = drafts and not names  # (units then take the scanned path where they can)
        for batch in batches(jobs, parse_units(secs[".debug_info"]), itemgetter(0), PLAN_BATCH_BYTES):
            ready = [_scanned_call(src, secs, u, rem) if scan and not reason else None for u, reason, rem in batch]
            got = fastrewrite.planned_many([r[0] for r in ready if r is not None], _entries_now())
            got.reverse()  # (popped in unit order: each unit's kernel goes once its plan is made)
            for (u, reason, rem), r in zip(batch, ready):
                plan = UnitPlan(0, [], [])
                if r is not None:
                    result = got.pop()
                    try:
                        done = _scanned_plan(r, result)
                    except _NoFit:  # the second pass copies it as it is
                        out.append(plan)
                        continue
                    if done is not None:
                        if done[1] is not None:
                            keep_draft(src, u, done[1])
                        out.append(done[0])
                        continue
                if not reason:
                    ud = _unit(src, secs, u, keep=True)
                    try:
                        plan, draft = _plan(secs, ud, rem, drafts)
                        if draft is not None:
                            keep_draft(src, u, draft._replace(moved=moved_names(secs, ud, rem, text)) if names
                                       else draft)
                    except _NoFit:
                        pass  # the second pass copies it as it is
                    keep_unit(src, u, ud)  # for the second pass
                out.append(plan)
        return out


def rewrite_chunk(src: SharedSections, jobs: list[tuple[int, str, Removals, int]],
                  codes: Codes | None = None, names: bool = False) -> list[UnitOutput]:
    """Worker entry: rewrite units; each job is (unit index, verbatim reason, removals, width of
    the unit-local references (0: the smallest that fits)). With ``codes`` (the code of every
    key of the shared table) units use the shared table, and their ``abbrev`` is empty. With
    ``names`` each output says which names its dropped types take elsewhere (``moved``)."""
    with no_gc():
        secs = worker_sections(src)
        out = []
        text: dict[int, str] = {}  # the units' names by .debug_str offset (for ``names``)
        for u, reason, rem, width in jobs:
            draft = kept_draft(src, u)
            if draft is not None and not reason and codes is not None and width == draft.width:
                try:
                    got = _recoded(draft, codes, unit_header(secs[".debug_info"], u))
                    if got is not None:
                        out.append(got)
                        continue
                except _NoFit:
                    reason = _NOFIT
                except _Grew:
                    reason = _GREW
            ud = _unit(src, secs, u, keep=False)
            if not reason:
                try:
                    got = _rewrite_any(secs, ud, rem, width, codes)
                    out.append(got._replace(moved=moved_names(secs, ud, rem, text)) if names else got)
                    continue
                except (_NoFit, _Grew) as exc:
                    reason = _NOFIT if isinstance(exc, _NoFit) else _GREW
                    if ud.ref_pos is None:  # the kernel let go of its references: decoded again
                        ud = _unit(src, secs, u, keep=False)
            out.append(_verbatim(secs, ud, reason))
        return out


def _unit(src: SharedSections, secs: dict[str, bytes], u: int, keep: bool) -> UnitDies:
    """Unit ``u`` decoded: as an earlier pass left it in this process (taken out unless ``keep``)
    or decoded again, with its location-list operands when the hash phase left those."""
    ud = kept_unit(src, u, keep)
    if ud is None:
        info = secs[".debug_info"]
        ud = decode_with_abbrevs(info, secs.get(".debug_abbrev", b""), unit_header(info, u), {})
    ud.loc_ops = kept_locations(src, u)
    return ud


def shared_table(plans: list[UnitPlan]) -> tuple[Codes, bytes]:
    """One abbreviation table for every rewritten unit: its keys numbered by how many DIEs use
    them, most used first (so most DIEs take a one-byte code), ties by key (tag, children,
    specs), after the rare entries of implicit constants have become entries of data
    (``_as_data``); (code of every entry, the table's bytes). The counts are summed in unit
    order: the same for any -j."""
    if fastrewrite.available():
        total = fastrewrite.use_counts(plans)
    else:
        total = {}
        for plan in plans:
            for entry, n in zip(plan.keys, plan.counts):
                total[entry] = total.get(entry, 0) + n
    as_data = _as_data(total)
    merged = total
    if as_data:
        merged = {}
        for e, n in total.items():
            t = as_data[e][0] if e in as_data else e
            merged[t] = merged.get(t, 0) + n
    key_of = fastrewrite.entry_order if fastrewrite.available() else _entry_key
    order = sorted(merged, key=lambda e: (-merged[e], key_of(e)))
    code = {e: c for c, e in enumerate(order, 1)}
    codes = {e: code[as_data[e][0]] for e in as_data}
    codes.update((e, code[e]) for e in total if e not in as_data)
    return (Codes(codes, {e: w for e, (_, w, _) in as_data.items()}, {e: r for e, (_, _, r) in as_data.items()}),
            _table(order))


# Attributes whose DWARF 5 implicit constants the shared table may have the DIEs hold instead:
# DW_AT_decl_file, decl_line, decl_column, call_file, call_line, call_column. gcc gives a unit's
# abbreviation an implicit constant where all its DIEs share a value (the unit's main file, a
# column), so each unit brings its own variants of the same abbreviation into the shared table,
# most of them used by a few DIEs (libstdc++: 1,379 of 2,905 entries leave the table). Their values are
# non-negative numbers, read the same in DW_FORM_data1/data2.
_AS_DATA = frozenset({F.DW_AT_decl_file, 0x3B, 0x39, 0x58, 0x59, 0x57})
_AS_DATA_FLAGS = bytes(at in _AS_DATA for at in range(256))


def _as_data(total: dict[bytes, int]) -> dict[bytes, tuple[bytes, bytes, array]]:
    """The entries (of ``total``: DIEs per entry) whose DIEs are better off holding their
    implicit constants of ``_AS_DATA`` (values under 65,536) in DW_FORM_data1/data2: where the
    bytes the DIEs take so are fewer than the entry's own (with a 1-byte code), and the entry
    so made is one the table has anyway or one that two or more entries become. Entry ->
    (that entry, the width of each implicit constant in spec order: 0 left as it is, and the
    entry's specs as rows of (form, width, value) for ``recode``)."""
    if fastrewrite.available():
        found = fastrewrite.as_data_all(total, _AS_DATA_FLAGS)
    else:
        found = {}
        for e, n in total.items():
            # (cheaply first: the DIEs take a byte or more each, so most entries are used too often)
            if n > len(e) or F.DW_FORM_implicit_const not in e:
                continue
            got = _as_data_pure(e, _AS_DATA_FLAGS)
            if got is not None and n * sum(got[0]) < len(e) + 1:
                found[e] = (got[1], got[0], got[2])
    made: dict[bytes, int] = {}
    for t, _, _ in found.values():
        made[t] = made.get(t, 0) + 1
    return {e: v for e, v in found.items() if (v[0] in total and v[0] not in found) or made[v[0]] > 1}


def _as_data_pure(entry: bytes, flags: bytes) -> tuple[bytes, bytes, array] | None:
    """_rewritecore.as_data's twin: (widths, the entry with those constants as data, rows of
    (form, width, value)), or None."""
    tag, children, specs = _entry_key(entry)
    if len({at for at, _, _ in specs}) != len(specs) or len(specs) > 64:
        return None  # (an attribute twice: left as it is)
    widths = bytes(0 if at >= len(flags) or not flags[at] or not 0 <= ic < 1 << 16 else 1 if ic < 256 else 2
                   for at, form, ic in specs if form == F.DW_FORM_implicit_const)
    if not any(widths):
        return None
    it = iter(widths)
    new = []
    rows = array("q")
    for at, form, ic in specs:
        w = next(it) if form == F.DW_FORM_implicit_const else 0
        new.append((at, F.DW_FORM_data1 if w == 1 else F.DW_FORM_data2, 0) if w else (at, form, ic))
        rows.extend((form, w, ic if w else 0))
    return widths, _entry((tag, children, tuple(new))), rows


def _writes_consts(codes: Codes, keys: list[bytes]) -> bool:
    """Whether a unit of entries ``keys`` writes an implicit constant as data (``_as_data``)."""
    return bool(codes.consts) and any(k in codes.consts for k in keys)


def _table(entries: list[bytes]) -> bytes:
    """An abbreviation table numbering ``entries`` from 1."""
    if fastrewrite.available():
        return fastrewrite.table(entries)
    return b"".join([encode_uleb(c) + e for c, e in enumerate(entries, 1)]) + b"\0"


def _entry(key: AbbrevKey) -> bytes:
    """The table entry of an abbreviation, without its code."""
    tag, children, specs = key
    out = bytearray(encode_uleb(tag) + (b"\1" if children else b"\0"))
    for at, form, ic in specs:
        out += encode_uleb(at) + encode_uleb(form)
        if form == F.DW_FORM_implicit_const:
            out += encode_sleb(ic)
    return bytes(out + b"\0\0")


def _entry_key(entry: bytes) -> AbbrevKey:
    """The key of an entry (``_entry`` undone): what shared_table orders entries by."""
    tag, p = read_uleb(entry, 0)
    children = entry[p] != 0
    p += 1
    specs = []
    while True:
        at, p = read_uleb(entry, p)
        form, p = read_uleb(entry, p)
        if at == 0 and form == 0:
            return (tag, children, tuple(specs))
        ic = 0
        if form == F.DW_FORM_implicit_const:
            ic, p = read_sleb(entry, p)
        specs.append((at, form, ic))


def _table_bytes(abbrev: bytes, off: int) -> bytes:
    return abbrev[off:parse_abbrev_table(abbrev, off)[1]]


def _ref_width(form: int, hdr: UnitHeader) -> int:
    if form == F.DW_FORM_ref_addr:
        return hdr.addr_size if hdr.version <= 2 else hdr.offset_size
    return {F.DW_FORM_ref1: 1, F.DW_FORM_ref2: 2, F.DW_FORM_ref4: 4, F.DW_FORM_ref8: 8}[form]


def _verbatim(secs: dict[str, bytes], ud: UnitDies, reason: str) -> UnitOutput:
    """The unit as it is; only values holding .debug_info offsets are resolved again."""
    hdr = ud.hdr
    info = secs[".debug_info"]
    patches: list[Patch] = []
    for pos, form, target in zip(ud.ref_pos.tolist(), ud.ref_form.tolist(), ud.ref_target.tolist()):
        if form == F.DW_FORM_ref_addr:
            patches.append((pos - hdr.off, _ref_width(form, hdr), target))
    patches += [(pos - hdr.off, w, t) for _, pos, w, kind, t in ud.xrefs if kind == "s"]
    loc_patches = _locations(secs, ud)[1]
    new_rel = np.array(ud.offs, dtype=np.int64) - hdr.off
    return UnitOutput(reason, info[hdr.off:hdr.end], _table_bytes(secs[".debug_abbrev"], hdr.abbrev_off),
                      new_rel, patches, array("q"), loc_patches, len(ud.offs),
                      tags=_tag_counts(ud, np.ones(len(ud.offs), dtype=bool)))


class _Overflow(Exception):
    """A unit-local reference does not fit the width chosen for the unit."""


# The ``width`` of unit-local references written as DW_FORM_ref_udata, each in the fewest bytes
# that hold its target's offset (as dwz writes them); other widths are bytes (ref1, ref2, ref4).
UDATA = 16
_LOCAL_FORM = {1: F.DW_FORM_ref1, 2: F.DW_FORM_ref2, 4: F.DW_FORM_ref4, UDATA: F.DW_FORM_ref_udata}
# A unit of at least 16 MiB keeps 4-byte references: its new size may pass 2^28 (a 1-byte ref1
# becomes a 4-byte ref_addr), where an offset takes 5 ULEB128 bytes, more than the 4 bytes the
# counting passes start from.
_UDATA_LIMIT = 1 << 24
# Counting passes of a UDATA rewrite at most (_rewritecore.UDATA_PASSES; a test checks both).
_UDATA_PASSES = 16


def _widths(size: int, after: int | None = None) -> tuple[int, ...]:
    """The local reference widths to try, smallest first, for a unit of ``size`` bytes: ref1 or
    ref2 while a small unit may fit them (the new size is only known after the copy), else
    ref_udata, which takes at most the 4 bytes of ref4 and fewer for every target in the unit's
    first 2 MiB (librados.so.2's units of 0.5 to 6.5 MB: 7% of its .debug_info).

    ``after``: the unit's size without the subtrees it drops (``_unit_widths``). A unit of 64 KiB
    or more that drops enough to come under it tries ref2 first as well: 2 bytes a reference
    where ref_udata takes 3 for every target past 16 KiB."""
    small = size if after is None else after
    return tuple(w for w, fits in ((1, size < 1 << 8), (2, small < 1 << 16)) if fits) + \
        ((UDATA,) if size < _UDATA_LIMIT else (4,))


def _unit_widths(ud: UnitDies, rem: Removals) -> tuple[int, ...]:
    """``_widths`` of the unit, with its size less the subtrees it drops (counted only for a unit
    of 64 KiB or more: a smaller one tries ref2 anyway)."""
    size = ud.hdr.end - ud.hdr.off
    if size < 1 << 16 or not len(rem.starts):
        return _widths(size)
    offs, _, _, ends = ud.arrays()
    return _widths(size, size - sum([ends[s] - offs[s] for s in rem.starts]))


def _rewrite_smallest(secs: dict[str, bytes], ud: UnitDies, rem: Removals) -> UnitOutput:
    """The unit rewritten with the smallest form for its unit-local references that holds every
    new offset (``_widths``)."""
    widths = _unit_widths(ud, rem)
    for width in widths[:-1]:
        try:
            return _rewrite_at(secs, ud, rem, width)
        except _Overflow:
            pass
    return _rewrite_at(secs, ud, rem, widths[-1])


def _rewrite_at(secs: dict[str, bytes], ud: UnitDies, rem: Removals, width: int,
                shared_codes: Codes | None = None) -> UnitOutput:
    """``_rewrite`` at ``width``; at UDATA, after the counting passes that size each reference
    (as _rewritecore.Unit.copy: from 4 bytes each, each pass's offsets giving the next one's
    sizes until they stay)."""
    if width != UDATA:
        return _rewrite(secs, ud, rem, width, shared_codes)
    prev = _rewrite(secs, ud, rem, UDATA, shared_codes, counting=True).new_rel.tolist()
    for _ in range(_UDATA_PASSES - 1):
        rel = _rewrite(secs, ud, rem, UDATA, shared_codes, prev, counting=True).new_rel.tolist()
        if rel == prev:
            break
        prev = rel
    return _rewrite(secs, ud, rem, UDATA, shared_codes, prev)


def _rewrite(secs: dict[str, bytes], ud: UnitDies, rem: Removals, local_width: int = 4,
             shared_codes: Codes | None = None, sizes_of: list[int] | None = None,
             counting: bool = False) -> UnitOutput:
    """The unit rewritten by the pure loop (the reference of the compiled one). At UDATA a local
    reference takes the ULEB128 size of ``sizes_of`` at its target, 4 bytes without it
    (``_rewrite_at``, whose counting passes set ``counting``: their bytes are not used)."""
    hdr = ud.hdr
    info = secs[".debug_info"]
    mv = memoryview(info)
    n = len(ud.offs)
    offs_np = np.array(ud.offs, dtype=np.int64)
    keep = np.ones(n, dtype=bool)
    for s, e in zip(rem.starts.tolist(), rem.ends.tolist()):
        keep[s:e] = False
    # Where each reference goes: a surviving DIE of this unit (local) or anywhere else (external).
    tgt = np.asarray(ud.ref_target)  # (the compiled scanner's columns are memoryviews)
    tidx = np.searchsorted(offs_np, tgt)
    inside = (tgt >= hdr.off) & (tgt < hdr.end)
    tidx_c = np.minimum(tidx, n - 1)
    if (inside & (offs_np[tidx_c] != tgt)).any():
        raise _bad_ref(ud, tgt[inside & (offs_np[tidx_c] != tgt)][0])
    local = inside & keep[tidx_c]
    sib = np.asarray(ud.ref_at) == F.DW_AT_sibling
    # Per-DIE events, in position order: references (kind 0 drop DW_AT_sibling, 1 local, 2
    # external; with the old value's width) and DIE-naming expression operands (3 section offset,
    # 4 ULEB, 5 fixed width; with their width). ``ref_forms`` holds each DIE's new reference forms
    # (0: dropped), which with its code select its new abbreviation.
    new_form = (0, _LOCAL_FORM[local_width], F.DW_FORM_ref_addr)
    widths = {f: _ref_width(f, hdr) for f in (F.DW_FORM_ref1, F.DW_FORM_ref2, F.DW_FORM_ref4, F.DW_FORM_ref8,
                                             F.DW_FORM_ref_addr)}
    events: dict[int, list] = {}
    ref_forms: dict[int, list[int]] = {}
    rp, rd, rf = ud.ref_pos.tolist(), ud.ref_die.tolist(), ud.ref_form.tolist()
    loc_l, sib_l, tidx_l, tgt_l = local.tolist(), sib.tolist(), tidx_c.tolist(), tgt.tolist()
    inside_l = inside.tolist()
    keep_l = keep.tolist()
    codes = ud.codes
    abbrevs = ud.abbrevs
    ref_attrs = {c: [at for at, form, _ in ab.specs if form in F.REF_FORMS] for c, ab in abbrevs.items()}
    moved_spec: list[tuple[int, int]] = []  # (DIE, old target DIE) of a specification that left the unit
    prev, k = -1, 0
    for j in range(len(rp)):
        i = rd[j]
        k = k + 1 if i == prev else 0
        prev = i
        if keep_l[i]:
            kind = 0 if sib_l[j] else 1 if loc_l[j] else 2
            if kind == 2 and inside_l[j] and ref_attrs[codes[i]][k] in _FOLLOWED:
                moved_spec.append((i, tidx_l[j]))
            form = rf[j]
            w = widths[form] if form != F.DW_FORM_ref_udata else read_uleb(info, rp[j])[1] - rp[j]
            ev = events.get(i)
            if ev is None:
                ev = events[i] = []
                ref_forms[i] = []
            ev.append((rp[j], kind, w, tidx_l[j] if kind == 1 else tgt_l[j]))
            ref_forms[i].append(new_form[kind])
    xkind = {"s": 3, "u": 4, "f": 5}
    for i, pos, w, kind, t in ud.xrefs:
        if keep_l[i]:
            ev = events.setdefault(i, [])
            ev.append((pos, xkind[kind], w, t if kind == "s" else int(np.searchsorted(offs_np, t))))
            ev.sort()
    # Values written as DW_FORM_udata (event kind 6, with the value)
    conv = {c: qs for c, ab in abbrevs.items() if (qs := udata_specs(ab, hdr.version))}
    if conv:
        for i in (i for i, c in enumerate(codes) if c in conv and keep_l[i]):
            attrs = decode_attrs(info, read_uleb(info, ud.offs[i])[1], abbrevs[codes[i]].specs, hdr)[0]
            ev = events.setdefault(i, [])
            for q in conv[codes[i]]:
                _, _, value, start, end = attrs[q]
                ev.append((start, 6, end - start, value))
            ev.sort()
    extra = {i: _decl_file_attr(*v) for i, v in _own_decl_files(info, ud, moved_spec).items()}
    parent, ends, offs = ud.parent, ud.ends, ud.offs
    kids = {c: ab.children for c, ab in abbrevs.items()}
    new_codes: dict[tuple, bytes] = {}
    plain_codes: dict[int, bytes] = {}  # new code of a DIE without events, by old code
    # the implicit constants a key writes as data: (spec, value bytes) (``_as_data``)
    consts_of: dict[tuple, list[tuple[int, bytes]]] = {}
    consts_plain: dict[int, list[tuple[int, bytes]]] = {}
    table: list[tuple[int, bool, tuple]] = []
    out = bytearray(mv[hdr.off:hdr.die_off])
    new_rel_l = [-1] * n
    fix_local: list[tuple[int, int]] = []  # (position, DIE index) of a local reference
    fix_operand: list[tuple[int, int, int]] = []  # (position, width (< 0: fixed size), DIE index)
    patches: list[Patch] = []
    open_ends = [hdr.end + 1]  # subtree ends of the open DIEs with children, above a sentinel
    ref_addr_w = widths[F.DW_FORM_ref_addr]
    zeros = bytes(8)
    grew = False  # an implicit constant written as data (``_Grew`` rather than an internal error)

    def new_code(code: int, forms: tuple[int, ...], added: tuple = ()) -> bytes:
        key = (code, forms, added)
        cb = new_codes.get(key)
        if cb is None:
            ab = abbrevs[code]
            full = (ab.tag, ab.children, _new_specs(ab, forms, conv.get(code, ())) + added)
            if shared_codes is not None:
                entry = _entry(full)
                cb = new_codes[key] = encode_uleb(shared_codes.codes[entry])
                widths = shared_codes.consts.get(entry)
                if widths:
                    ics = [q for q, (_, form, _) in enumerate(ab.specs) if form == F.DW_FORM_implicit_const]
                    consts_of[key] = [(q, ab.specs[q][2].to_bytes(w, "little")) for q, w in zip(ics, widths) if w]
            else:
                cb = new_codes[key] = encode_uleb(len(new_codes) + 1)
                table.append(full)
        return cb

    # The surviving DIEs: the ranges between the removed subtrees.
    bounds = [0] + [x for se in zip(rem.starts.tolist(), rem.ends.tolist()) for x in se] + [n]
    for i in (i for a, b in zip(bounds[::2], bounds[1::2]) for i in range(a, b)):
        start = offs[i]
        while open_ends[-1] <= start:
            out.append(0)
            open_ends.pop()
        code = codes[i]
        evs = events.get(i)
        if evs is None:
            cb = plain_codes.get(code)
            if cb is None:
                cb = plain_codes[code] = new_code(code, ())
                consts_plain[code] = consts_of.get((code, (), ()), [])
            written = consts_plain[code]
        else:
            add = extra.get(i)
            key = (code, tuple(ref_forms.get(i, ())), add[0] if add else ())
            cb = new_code(*key)
            written = consts_of.get(key, [])
        if written:  # implicit constants written as data, in place: events of kind -1 (first at a place)
            attrs = decode_attrs(info, read_uleb(info, start)[1], abbrevs[code].specs, hdr)[0]
            evs = sorted((evs or []) + [(attrs[q][3], -1, 0, value) for q, value in written], key=itemgetter(0, 1))
            grew = True
        new_rel_l[i] = len(out)
        out += cb
        src = start + 1 if info[start] < 0x80 else read_uleb(info, start)[1]
        if evs:
            for pos, kind, w, b in evs:
                out += mv[src:pos]
                src = pos + w
                if kind == 1:
                    fix_local.append((len(out), b))
                    out += zeros[:local_width if local_width != UDATA else
                                 4 if sizes_of is None else _uleb_len(sizes_of[b])]
                elif kind == 2:
                    patches.append((len(out), ref_addr_w, b))
                    out += zeros[:ref_addr_w]
                elif kind == 6:
                    out += encode_uleb(b)
                elif kind == -1:
                    out += b
                elif kind >= 3:  # expression operand: same width, value resolved below
                    if kind == 3:
                        patches.append((len(out), w, b))
                    else:
                        fix_operand.append((len(out), w if kind == 4 else -w, b))
                    out += mv[pos:src]
        # The DIE's own bytes end where its first child or its closing null starts.
        if kids[code]:
            attr_end = offs[i + 1] if i + 1 < n and parent[i + 1] == i else ends[i] - 1
            out += mv[src:attr_end]
            open_ends.append(ends[i])
        else:
            out += mv[src:ends[i]]
        if evs and i in extra:
            out += extra[i][1]
    out += bytes(len(open_ends) - 1)
    if local_width == 4:
        for pos, t in fix_local:
            _put_u32(out, pos, new_rel_l[t])
    elif local_width == UDATA:
        for pos, t in fix_local if not counting else ():
            size = _uleb_len(sizes_of[t])  # type: ignore[index]
            if _uleb_len(new_rel_l[t]) > size:
                raise DwarfError(f"unit at 0x{hdr.off:x} outgrew its reference width (internal error)")
            out[pos:pos + size] = _operand(new_rel_l[t], size)
    else:
        # With its own table the unit must leave room for its codes growing a byte each in the
        # shared table (second pass, same width).
        margin = int(keep.sum()) if shared_codes is None else 0
        if len(out) + margin > 1 << (8 * local_width):
            if grew:
                raise _Grew()
            if shared_codes is not None:
                raise DwarfError(f"unit at 0x{hdr.off:x} outgrew its reference width (internal error)")
            raise _Overflow()
        for pos, t in fix_local:
            out[pos:pos + local_width] = new_rel_l[t].to_bytes(local_width, "little")
    for pos, w, t in fix_operand:
        out[pos:pos + abs(w)] = _operand(new_rel_l[t], w)
    out[0:4] = (len(out) - 4).to_bytes(4, "little")
    new_rel = np.array(new_rel_l, dtype=np.int64)
    # (a counting pass of _rewrite_at reads no location lists: their operands are checked with
    # the final offsets, as the compiled copy does)
    loc_values, loc_patches = (array("q"), []) if counting else _location_values(secs, ud, new_rel)
    tags = _tag_counts(ud, keep)
    if shared_codes is not None:  # the shared table (layout.py places it)
        return UnitOutput("", bytes(out), b"", new_rel, patches, loc_values, loc_patches, int(keep.sum()),
                          local_width, tags=tags, python=fastrewrite.available())
    entries = [_entry(key) for key in table]
    return UnitOutput("", bytes(out), _table(entries), new_rel, patches, loc_values, loc_patches,
                      int(keep.sum()), local_width, list(zip(entries, _code_uses(out, new_rel, len(table)))), tags,
                      fastrewrite.available())


def _plan(secs: dict[str, bytes], ud: UnitDies, rem: Removals, drafts: bool = False
          ) -> tuple[UnitPlan, Draft | None]:
    """First pass of a unit: its local reference width and DIEs per abbreviation entry, and
    with ``drafts`` its ``Draft`` where it has one."""
    widths = _unit_widths(ud, rem)
    sure = len(widths) == 1 or _surely_fits(ud, widths[0])  # (before the kernel lets go of the references)
    unit = _kernel(secs, ud, rem, release=compiled_decoder())  # (the pure decoder's unit is kept)
    if unit is None:
        got = _rewrite_smallest(secs, ud, rem)
        return UnitPlan(got.local_width, _interned([e for e, _ in got.uses]), [n for _, n in got.uses]), None
    return _plan_kernel(ud.hdr, widths, unit, sure, _unit_operands(secs, ud), _locations(secs, ud), drafts)


def _plan_kernel(hdr: UnitHeader, widths: tuple[int, ...], unit, sure: bool, operands: bool,
                 locs: tuple[array, list[Patch]], drafts: bool) -> tuple[UnitPlan, Draft | None]:
    """``_plan`` once the unit has its kernel: ``sure`` whether the first width surely fits
    (``_surely_fits``), ``operands`` whether it has DIE-naming operands (``_unit_operands``),
    ``locs`` its location-list operands (``_locations``), ``widths`` its ``_widths``."""
    uses = None
    draft = None
    if sure and not operands:
        # The first width fits and no operand could fail to (``_NoFit``): the keys and their
        # uses are all the pass learns, without the copy's passes over the unit's bytes
        # (python3.11d: a quarter of the copies' time; glibc: 1,970 of 2,063 units), unless
        # the copy is kept for the second pass.
        width = widths[0]
        keys = unit.keys(width, _entries_now())
    elif drafts and widths[0] in (1, 2):
        # The draft's copy is the one _smallest_compiled makes first (same width, codes and
        # margin), written: its status and offsets decide as that one's would.
        width = widths[0]
        keys = unit.keys(width, _entries_now())
        draft = _draft(unit, width, keys, *locs, check=True)
        if draft is None:  # (the width overflowed)
            width, keys, uses = _smallest_compiled(hdr, widths, unit, locs[0])
    else:
        width, keys, uses = _smallest_compiled(hdr, widths, unit, locs[0])
    if drafts and draft is None:
        draft = _draft(unit, width, keys, *locs)
    if draft is not None:
        return UnitPlan(width, keys, draft[1]), draft[0]
    return UnitPlan(width, keys, uses if uses is not None else unit.uses().tolist()), None


# A batch of the first pass's kernel holds each unit's whole kernel state at once (its columns,
# keys and copy): at hash.BATCH_BYTES (64 KiB) libgsl's peak went 44 -> 47.5 MiB; at this size
# it stays 44.3, and the phase takes the same time (libgsl -j2: 30.5 ms against 33.1 with a
# release of the GIL per unit).
PLAN_BATCH_BYTES = 32 << 10


def _scanned_call(src: SharedSections, secs: dict[str, bytes], u: int, rem: Removals) -> tuple | None:
    """(the kernel's arguments, what ``_scanned_plan`` needs) of a unit that the kernel scans,
    prepares and copies in one call (``fastrewrite.planned_many``): no Python columns of its
    DIEs. None: the unit takes the decoding path (a unit whose references may be wider than 2
    bytes, or one the scanners decline)."""
    kept = kept_locations(src, u)
    if kept is None:
        return None
    info = secs[".debug_info"]
    abbrev = secs.get(".debug_abbrev", b"")
    hdr = unit_header(info, u)
    widths = _widths(hdr.end - hdr.off)
    width = widths[0]
    if width not in (1, 2) or not compiled_decoder() or not fastrewrite.available():
        return None
    tables = read._scan_tables(parse_abbrev_table(abbrev, hdr.abbrev_off)[0], hdr)
    if tables is None:
        return None
    return fastrewrite.planned_call(info, abbrev, hdr, tables, rem, width), (hdr, widths, kept)


def _scanned_plan(ready: tuple, got: tuple | None) -> tuple[UnitPlan, Draft | None] | None:
    """``_plan`` with drafts of a unit from ``_scanned_call``'s ``ready`` and the kernel's
    result ``got`` (None: the unit takes the decoding path)."""
    if got is None:
        return None
    hdr, widths, kept = ready[1]
    width = widths[0]
    unit, dies, refs, named, keys, copied, tags = got
    # As _plan_kernel: where the width may not hold the unit or an operand may not fit, the
    # draft's copy decides as _smallest_compiled's first one would (same width, codes, margin).
    check = not (len(widths) == 1 or _bound_fits(hdr, dies, refs, width)) or named or len(kept[0]) > 0
    draft = _draft_of(unit, width, keys, copied, *kept, check, tags)
    if draft is None:
        if not check:  # (not expected: the width surely holds the unit)
            return UnitPlan(width, keys, unit.uses().tolist()), None
        width, keys, uses = _smallest_compiled(hdr, widths, unit, kept[0])
        draft = _draft(unit, width, keys, *kept)
        if draft is None:
            return UnitPlan(width, keys, uses), None
    return UnitPlan(width, keys, draft[1]), draft[0]


def _draft(unit, width: int, keys: list[bytes], loc_targets: array, loc_patches: list[Patch], check: bool = False
           ) -> tuple[Draft, list[int]] | None:
    """The unit's ``Draft`` at ``width`` (its kernel's keys ``keys`` made, its location-list
    operands given), with the DIEs per key; None where recode does not apply (references wider
    than 2 bytes) or the unit does not fit the width. With ``check``, _NoFit as
    ``_smallest_compiled`` raises it at this width."""
    if width not in (1, 2):
        return None
    return _draft_of(unit, width, keys, unit.copy(width, None, unit.kept, True, True), loc_targets, loc_patches,
                     check)


def _draft_of(unit, width: int, keys: list[bytes], copied: tuple, loc_targets: array, loc_patches: list[Patch],
              check: bool, tags: array | None = None) -> tuple[Draft, list[int]] | None:
    """``_draft`` from the draft copy ``copied`` (and the unit's tag rows ``tags``, made here
    when not given)."""
    status, body, rel, patches, uses, locs, fixes = copied
    if status == fastrewrite.NOFIT and check:
        raise _NoFit()
    if status != fastrewrite.OK:
        return None  # (without ``check``, the width was chosen by the same copy: not expected)
    if check:
        _values_at(loc_targets, rel)  # its _NoFit
    if tags is None:
        tags = unit.tag_counts(True)  # (rows of 3 end to end)
    return Draft(width, keys, body, rel, patches, locs, fixes, loc_targets, loc_patches, unit.kept, tags,
                 {}), uses.tolist()


def _recoded(draft: Draft, codes: Codes, hdr: UnitHeader) -> UnitOutput | None:
    """The second pass of unit ``hdr`` from its ``Draft``: the output ``_rewrite_any`` makes with
    the shared table ``codes`` at the draft's width (None: a draft whose DIEs that hold implicit
    constants as data the kernel cannot walk; the unit is copied instead)."""
    rows = codes.rows or None  # (the kernel looks up the draft's keys)
    sizes = (hdr.offset_size, hdr.addr_size, form_size(F.DW_FORM_ref_addr, hdr.version, hdr.offset_size,
                                                       hdr.addr_size))
    status, body, new_rel, patches = fastrewrite.recode(draft.body, draft.rel, draft.keys, codes.codes, draft.locs,
                                                        draft.fixes, draft.patches, draft.width, rows, sizes)
    if status == fastrewrite.PURE:
        return None
    if status == fastrewrite.OVERFLOW:
        if rows is not None and _writes_consts(codes, draft.keys):
            raise _Grew()
        raise DwarfError(f"a unit of {len(draft.body)} bytes outgrew its reference width (internal error)")
    if status == fastrewrite.NOFIT:
        raise _NoFit()
    return UnitOutput("", body, b"", new_rel, patches, _values_at(draft.loc_targets, new_rel), draft.loc_patches,
                      draft.kept, draft.width, [], draft.tags, moved=draft.moved)


def _surely_fits(ud: UnitDies, width: int) -> bool:
    """Whether the unit rewritten with its own table fits ``width``-byte local references
    whatever it drops: a DIE grows by at most 2 bytes of code, a closing null and 10 bytes of its
    own DW_AT_decl_file (a ULEB128 of any 64-bit value), a reference by at most 7 (a 1-byte form
    becoming an 8-byte DW_FORM_ref_addr), and the check leaves a byte a kept DIE for the shared
    codes (``_rewrite``'s margin). glibc's units of 3 KB never come near ref2's 64 KiB."""
    return _bound_fits(ud.hdr, len(ud), len(ud.ref_pos), width)  # (len(ud): no DIE lists made)


def _bound_fits(hdr: UnitHeader, dies: int, refs: int, width: int) -> bool:
    """``_surely_fits`` for a unit of ``dies`` DIEs and ``refs`` references."""
    return width in (1, 2) and (hdr.end - hdr.off) + 14 * dies + 7 * refs <= 1 << (8 * width)


def _unit_operands(secs: dict[str, bytes], ud: UnitDies) -> bool:
    """Whether the unit has DIE-naming operands in unit-relative form, in its DIEs' expressions or
    its location lists: once the width holds the unit's references, the only values of its
    rewrite that may not fit (``_NoFit``)."""
    return any(x[3] != "s" for x in ud.xrefs) or len(_locations(secs, ud)[0]) > 0


def _interned(keys: list[bytes]) -> list[bytes]:
    """The entries with one object for equal ones: the plans of all units wait for the shared
    table, and most units use the same entries (glibc's libc.so.6: 42,000 uses of 2,481
    entries). (The kernel's keys intern them as it makes them, ``_entries_now``.)"""
    one = _entries_now().setdefault
    return [one(e, e) for e in keys]


def _entries_now() -> dict[bytes, bytes]:
    """The entries seen so far (``_interned``), forgotten past 65,536."""
    if len(_entries) > 65536:
        _entries.clear()
    return _entries


_entries: dict[bytes, bytes] = {}


def _rewrite_any(secs: dict[str, bytes], ud: UnitDies, rem: Removals, width: int, codes: Codes | None
                 ) -> UnitOutput:
    """Second pass of a unit: with the shared table ``codes`` at ``width`` when both are given,
    else with its own table (at the smallest width when ``width`` is 0)."""
    unit = _kernel(secs, ud, rem, release=True)
    own = codes is None or not width
    if unit is None:
        if not width:
            return _rewrite_smallest(secs, ud, rem)
        return _rewrite_at(secs, ud, rem, width, None if own else codes)
    targets, loc_patches = _locations(secs, ud)
    if not width:
        width, keys, _ = _smallest_compiled(ud.hdr, _unit_widths(ud, rem), unit, targets)
    else:
        keys = unit.keys(width)
    new_codes = None if own else array("q", [codes.codes[e] for e in keys])  # type: ignore[union-attr]
    consts = [codes.consts.get(e) for e in keys] if not own and _writes_consts(codes, keys) else None  # type: ignore[union-attr,arg-type]
    status, body, new_rel, patches, uses = unit.copy(width, new_codes, unit.kept if own else 0, True, False, consts)
    if status == fastrewrite.OVERFLOW:
        if consts is not None:
            raise _Grew()
        raise DwarfError(f"unit at 0x{ud.hdr.off:x} outgrew its reference width (internal error)")
    if status == fastrewrite.NOFIT:
        raise _NoFit()
    return UnitOutput("", body, _table(keys) if own else b"", new_rel, patches, _values_at(targets, new_rel),
                      loc_patches, unit.kept, width, list(zip(keys, uses.tolist())) if own else [], unit.tag_counts())


def _kernel(secs: dict[str, bytes], ud: UnitDies, rem: Removals, release: bool = False):
    """The compiled kernel of the unit (fastrewrite.prepare), None for the pure loop. With
    ``release`` the unit lets go of its reference columns once the kernel holds what it needs of
    them: two large units on two threads held both at once (librados.so.2: 24 MB each)."""
    if not fastrewrite.available():
        return None
    unit = fastrewrite.prepare(secs[".debug_info"], secs.get(".debug_abbrev", b""), ud, rem)
    if unit is not None and release:
        ud.drop_references()
    return unit


def _smallest_compiled(hdr: UnitHeader, widths: tuple[int, ...], unit, loc_targets: array
                       ) -> tuple[int, list[bytes], list[int]]:
    """``_rewrite_smallest`` on the kernel, counting bytes only: (width, entries (``_interned``),
    DIEs per entry) with the unit's own table; _NoFit as the pure loop raises it (for the
    location lists' ``loc_targets`` too)."""
    for width in widths:
        keys = unit.keys(width, _entries_now())
        status, _, new_rel, _, uses = unit.copy(width, None, unit.kept, False)
        if status == fastrewrite.OVERFLOW:
            continue
        if status == fastrewrite.NOFIT:
            raise _NoFit()
        _values_at(loc_targets, new_rel)  # its _NoFit, as in the pure loop
        return width, keys, uses.tolist()
    # (the last width always fits: its status is OVERFLOW only past _UDATA_LIMIT's bound)
    raise DwarfError(f"unit at 0x{hdr.off:x} outgrew its reference width (internal error)")


class _LocEnv(NamedTuple):
    loclists_base: int | None  # all location_operands reads of a hash.UnitEnv


def _locations(secs: dict[str, bytes], ud: UnitDies) -> tuple[array, list[Patch]]:
    """The unit's location-list operands as ``locations.targets`` gives them: as the hash phase
    kept them (``ud.loc_ops``) or read now, once per unit."""
    if ud.loc_ops is None:
        ud.loc_ops = locations.targets(_location_operands(secs, ud), ud.arrays()[0], ud.hdr.off)
    return ud.loc_ops


def _location_operands(secs: dict[str, bytes], ud: UnitDies) -> list:
    """hash.location_operands without a UnitEnv: that one decodes the unit DIE through the
    per-DIE Python lists, which the compiled path never makes otherwise."""
    if not len(ud.locs):
        return []
    info = secs[".debug_info"]
    offs, codes = ud.arrays()[:2]
    attrs, _ = decode_attrs(info, read_uleb(info, int(offs[0]))[1], ud.abbrevs[int(codes[0])].specs, ud.hdr)
    base = None
    for at, _, value, _, _ in attrs:
        if at == F.DW_AT_loclists_base:
            base = value  # the last one, as UnitEnv's dict
    return location_operands(secs, ud, _LocEnv(base))[1]  # type: ignore[arg-type]


def _location_values(secs: dict[str, bytes], ud: UnitDies, new_rel: np.ndarray) -> tuple[array, list[Patch]]:
    """Location lists: unit-relative operands get their new values now (_NoFit if one does not
    fit), the others later: rows of (position, width, new value), patches."""
    rows, loc_patches = _locations(secs, ud)
    return _values_at(rows, new_rel), loc_patches


def _values_at(rows: array, new_rel) -> array:
    """``locations.values_at``, its failures raised: _NoFit, or DwarfError for an operand that
    names no DIE."""
    status, got = locations.values_at(rows, new_rel)
    if status == locations.NO_FIT:
        raise _NoFit()
    if status == locations.NOT_A_DIE:
        raise DwarfError(f"a location list of the unit at 0x{got:x} names a non-DIE offset")
    return got  # type: ignore[return-value]


def _tag_counts(ud: UnitDies, keep: np.ndarray) -> list[tuple[int, int, int]]:
    """(tag, DIEs of the unit, DIEs kept) for every tag of the unit."""
    tag_of = np.zeros(code_table_size(ud.abbrevs), dtype=np.int64)
    for code, ab in ud.abbrevs.items():
        tag_of[code] = ab.tag
    tags, inv = np.unique(tag_of[np.asarray(ud.codes, dtype=np.int64)], return_inverse=True)
    before = np.bincount(inv, minlength=len(tags))
    after = np.bincount(inv, weights=keep.astype(np.int64), minlength=len(tags)).astype(np.int64)
    return list(zip(tags.tolist(), before.tolist(), after.tolist()))


def _code_uses(out: bytearray, new_rel: np.ndarray, n_codes: int) -> list[int]:
    """How many DIEs of the rewritten unit ``out`` use each of its codes 1..n_codes (read back
    from the DIEs' first bytes, so the pure and compiled copy loops share it)."""
    pos = new_rel[new_rel >= 0]
    first = np.frombuffer(bytes(out), dtype=np.uint8)[pos].astype(np.int64)
    long = first >= 0x80
    if long.any():
        first[long] = [read_uleb(out, int(p))[0] for p in pos[long].tolist()]
    return np.bincount(first, minlength=n_codes + 1)[1:n_codes + 1].tolist()


def _own_decl_files(info: bytes, ud: UnitDies, moved_spec: list[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """{DIE: (form, value) of its own DW_AT_decl_file} for the DIEs whose DW_AT_specification or
    DW_AT_abstract_origin target was removed here (its canonical copy is in another unit) and
    that take their DW_AT_decl_file from it.

    gdb reads a DW_AT_decl_file found by following those references with the file table of the
    unit it started from, so a target in another unit would name the wrong file (or one past
    the table: "file index out of range"). The removed duplicate was in this unit, so its value,
    in this unit's numbering, is the one the DIE gets as its own attribute. DW_AT_decl_line and
    the other attributes read through the reference mean the same in every unit."""
    out: dict[int, tuple[int, int]] = {}
    for i, t in moved_spec:
        ab = ud.abbrevs[ud.codes[i]]
        if ab.tag == F.DW_TAG_inlined_subroutine or any(at == F.DW_AT_decl_file for at, _, _ in ab.specs):
            continue  # an inlined call is placed by its own DW_AT_call_file
        value = _followed_decl_file(info, ud, t)
        if value is None:
            continue
        out[i] = (F.DW_FORM_data1 if value < 0x100 else F.DW_FORM_data2 if value < 0x10000 else F.DW_FORM_udata,
                  value)
    return out


def _decl_file_attr(form: int, value: int) -> tuple[tuple, bytes]:
    """(attribute specs, bytes) of an own DW_AT_decl_file of ``_own_decl_files``."""
    data = encode_uleb(value) if form == F.DW_FORM_udata else value.to_bytes(1 if form == F.DW_FORM_data1 else 2,
                                                                                "little")
    return ((F.DW_AT_decl_file, form, 0),), data


def _followed_decl_file(info: bytes, ud: UnitDies, t: int) -> int | None:
    """DW_AT_decl_file of DIE ``t`` or of what its specification / abstract origin chain reaches
    inside the unit, as gdb looks it up (None if there is none)."""
    hdr = ud.hdr
    for _ in range(16):  # a chain longer than this is a loop
        attrs = die_attrs(info, ud, t)
        got = attrs.get(F.DW_AT_decl_file)
        if got is not None:
            return int(got[1])  # type: ignore[arg-type]
        nxt = next((attrs[a][1] for a in _FOLLOWED if a in attrs), None)
        if nxt is None or not hdr.off <= nxt < hdr.end:  # type: ignore[operator]
            return None
        t = bisect_left(ud.offs, nxt)
        if t >= len(ud.offs) or ud.offs[t] != nxt:
            return None
    return None


def _uleb_len(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _operand(value: int, width: int) -> bytes:
    """A unit-relative operand: ``width`` > 0 is a padded ULEB128, < 0 a fixed-size integer."""
    if value < 0:
        raise _NoFit()
    try:
        return encode_uleb(value, width) if width > 0 else value.to_bytes(-width, "little")
    except (ValueError, OverflowError):
        raise _NoFit() from None


def _new_specs(ab: Abbrev, forms: tuple[int, ...], udata: tuple[int, ...] = ()) -> tuple:
    """``ab``'s specs with its references in ``forms`` (0: dropped) and the specs ``udata``
    (``udata_specs``) in DW_FORM_udata."""
    specs = []
    k = 0
    for q, (at, form, ic) in enumerate(ab.specs):
        if form in F.REF_FORMS:
            form = forms[k]
            k += 1
            if form == 0:
                continue
        elif q in udata:
            form = F.DW_FORM_udata
        specs.append((at, form, ic))
    return tuple(specs)


# Constants the rewrite writes as DW_FORM_udata in a DWARF 4 or later unit, with the forms they
# are taken from. DW_AT_high_pc is the length of the code from DW_AT_low_pc (DWARF 2 and 3 have
# it as an address): gcc writes it in 8 bytes, clang in 4, for every function, inlined call and
# block, where a ULEB128 takes 1 or 2 (python3.11d: 248 KB, 4% of its merged .debug_info; dwz
# writes it so too). DW_AT_GNU_entry_view, gcc's view number of an inlined call's entry, mostly
# below 128, comes in 2 bytes (stimfit: 65,000 of them).
_UDATA = {F.DW_AT_high_pc: (F.DW_FORM_data4, F.DW_FORM_data8),
          F.DW_AT_GNU_entry_view: (F.DW_FORM_data2, F.DW_FORM_data4, F.DW_FORM_data8)}


def udata_specs(ab: Abbrev, version: int) -> tuple[int, ...]:
    """The specs of ``ab`` (ascending) whose values the rewrite writes as DW_FORM_udata: those of
    ``_UDATA`` an abbreviation holds once, in one of the forms listed. (_rewritecore
    ``_udata_values`` does the same.)"""
    if version < 4:
        return ()
    found = [(q, at, form) for q, (at, form, _) in enumerate(ab.specs) if at in _UDATA]
    ats = [at for _, at, _ in found]
    return tuple(q for q, at, form in found if ats.count(at) == 1 and form in _UDATA[at])


def _bad_ref(ud: UnitDies, target: int) -> DwarfError:
    return DwarfError(f"a reference in the unit at 0x{ud.hdr.off:x} points to 0x{int(target):x}, not to a DIE")
