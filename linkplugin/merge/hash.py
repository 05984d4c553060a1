"""Phase 1 (parallel per unit): decode a unit, find its mergeable roots and give each a global hash.

A *root* is a type DIE (or a DW_AT_declaration function or variable) that is a child of the unit
DIE or of a namespace; it is merged together with its whole subtree. Its hash covers, for every
DIE of the subtree in order: tag, children flag, shape, and each attribute except DW_AT_sibling,
with strings by content, DW_AT_decl_file by path, references inside the subtree by relative DIE
index, references to other roots by *their* hash, plus the unit context a debugger shows (the
language, the enclosing namespaces). Anything whose meaning depends on the unit (a reference to a
non-root DIE, an index into a per-unit table, an expression naming a DIE, an unresolvable file)
adds the unit's offset, so such a root never merges with another unit's.

Roots that reference each other in a cycle form a strongly connected component (SCC). Their
hashes must not depend on where the cycle is entered, so the whole SCC is serialised once from a
canonical entry (the member whose DFS serialisation is smallest among those with the smallest
content hash), numbering members in DFS order, and each member's hash is (SCC hash, its number).
Equal hashes therefore mean equal unfoldings: the same type in every detail a debugger shows.
"""
from __future__ import annotations

import marshal
from array import array

from linkplugin.arrays import fits_int64
from linkplugin.compiled import load_compiled
from linkplugin.dwarf import forms as F, read
from linkplugin.dwarf.abbrev import (Abbrev, code_flags, code_table_size, codes_with, codes_with_tag,
                                     parse_abbrev_table, some_codes, uses_indirect)
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.line import file_names
from linkplugin.dwarf.loclists import list_offsets, scan_lists
from linkplugin.dwarf.read import UnitDies, die_attrs
from linkplugin.dwarf.units import UnitHeader, parse_units
from linkplugin.lazy import np
from linkplugin.merge import expansion, fasthash, locations
from linkplugin.merge.expansion import NEVER, expansion_key
from linkplugin.merge.nogc import no_gc
from linkplugin.merge.shared import SharedSections, keep_locations, keep_unit, keeps_locations, worker_sections
from linkplugin.merge.tokens import compile_tokenizer
from linkplugin.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Callable, Iterator

_loclists_core = load_compiled("linkplugin.dwarf._loclists")

# A column of numbers or of 16-byte keys: array.array, memoryview, bytes or a numpy array.
Column = "array | memoryview | bytes | np.ndarray"

try:  # hashlib's blake2b is this one; importing hashlib also loads OpenSSL (+3.5 MiB, a few ms)
    from _blake2 import blake2b
except ImportError:
    from hashlib import blake2b




class UnitAnalysis(NamedTuple):
    """A unit's analysis. The columns are typed arrays: array.array and memoryviews from the
    compiled core, numpy arrays from the pure path; the consumers take either (buffers)."""
    verbatim: str             # why the unit is copied as it is ('' when it is merged)
    offs: Column              # section offset of every DIE
    roots: Column             # DIE index of each mergeable root
    root_ends: Column         # DIE index after each root's subtree
    hashes: Column            # 16 bytes a root (numpy: (roots, 16) uint8): 128-bit hash of each root
    pinned: Column            # roots that must stay (named by unit-relative expression operands,
                              # or listed per unit by gdb)
    names: Column             # 16 bytes a root: name key of each named root (hash._name_key)
    has_name: Column          # which roots have a name key
    gdb_key: tuple[int, bytes]  # when gdb 13 expands the unit for its listings (expansion.py)
    # Types nested directly in a named class root, which gdb lists under their own names: the
    # root each is in and its name key (_name_key with the root's key as scope).
    nested_root: Column = array("q")
    nested_names: Column = b""
    python: bool = False      # hashed by the pure-Python path where the compiled core is built
    partial: bool = False     # a partial unit (dwz output: shared by the units importing it)
    # Roots (indexes into ``roots``, ascending) that hold a DIE another DIE of the unit names by
    # DW_AT_specification or DW_AT_abstract_origin (_followed_roots; table._followed_rows)
    followed: Column = array("q")


def _digest(obj: object) -> bytes:
    # marshal version 2 writes no back-references, so equal contents give equal bytes whatever
    # the object identities; it is injective on the tuples, lists, ints, bytes and str used here.
    return blake2b(marshal.dumps(obj, 2), digest_size=16).digest()


def sup_string(offset: int) -> bytes:
    """A string of a supplementary file (dwz -m puts what programs share in one, as Debian's debug
    packages have: DW_FORM_GNU_strp_alt, or DW_FORM_strp_sup with -5), which is not read: it
    stands for itself by its offset there, after a NUL that no string of .debug_str holds. An
    input names one supplementary file, so equal offsets are equal strings, and copies that name
    a string alike still merge. The compiled core (_hashcore tok_sup) makes the same bytes."""
    return b"\0" + offset.to_bytes(8, "little")


def _cstr(d: bytes, p: int, section: str = ".debug_str") -> bytes:
    """The string at ``p``; an offset past the section, or a string without its terminator, is
    a DwarfError (not the ValueError of ``bytes.index``)."""
    end = d.find(0, p) if 0 <= p < len(d) else -1
    if end < 0:
        raise DwarfError(f"string offset 0x{p:x} lies past the end of {section} or its last string")
    return d[p:end]


class UnitEnv:
    """What a unit's attribute values need to be read: strings, file names, list bases."""

    def __init__(self, secs: dict[str, bytes], ud: UnitDies, info: bytes,
                 strp_cache: dict[int, bytes] | None = None) -> None:
        self.secs = secs
        self.strp_cache = strp_cache if strp_cache is not None else {}  # shared by a chunk's units
        self.hdr = ud.hdr
        self.top = die_attrs(info, ud, 0)
        self.str = secs.get(".debug_str", b"")
        base = self.top.get(F.DW_AT_str_offsets_base)
        self.str_offsets_base = base[1] if base else 8
        lb = self.top.get(F.DW_AT_loclists_base)
        self.loclists_base = lb[1] if lb else None
        self._files: list[bytes | None] | None = None

    def string(self, form: int, value: object) -> bytes:
        if form == F.DW_FORM_string:
            return value  # type: ignore[return-value]
        if form == F.DW_FORM_strp:
            return self.strp(value)  # type: ignore[arg-type]
        if form == F.DW_FORM_line_strp:
            return _cstr(self.secs.get(".debug_line_str", b""), value, ".debug_line_str")  # type: ignore[arg-type]
        if form in F.STRX_FORMS:
            o = self.hdr.offset_size
            p = self.str_offsets_base + value * o  # type: ignore[operator]
            so = self.secs.get(".debug_str_offsets", b"")
            if p + o > len(so):
                raise DwarfError(f"string index {value} is past .debug_str_offsets")
            return _cstr(self.str, int.from_bytes(so[p:p + o], "little"))
        if form in (F.DW_FORM_GNU_strp_alt, F.DW_FORM_strp_sup):
            return sup_string(value)  # type: ignore[arg-type]
        raise DwarfError(f"form 0x{form:x} is not a string")

    def strp(self, value: int) -> bytes:
        """The DW_FORM_strp string at ``value`` (the tokenizers' most frequent string form)."""
        got = self.strp_cache.get(value)
        if got is None:
            got = self.strp_cache[value] = _cstr(self.str, value)
        return got

    def files(self) -> list[bytes | None]:
        if self._files is None:
            files: list[bytes | None] = []
            sl = self.top.get(F.DW_AT_stmt_list)
            line = self.secs.get(".debug_line")
            if sl is not None and line is not None:
                cd = self.top.get(F.DW_AT_comp_dir)
                files = file_names(line, sl[1], strs=self.str,  # type: ignore[arg-type]
                                   line_strs=self.secs.get(".debug_line_str", b""),
                                   comp_dir=self.string(*cd) if cd else b"")
            self._files = files  # only once read: a DwarfError raises again on the next call
        return self._files


# The reason a split-DWARF skeleton unit is copied as it is (gcc and clang -gsplit-dwarf: DWARF
# 5's DW_UT_skeleton, or DWARF 4's unit DIE with DW_AT_GNU_dwo_name): its pubnames sets name
# DIEs of its .dwo file (index.pubnames).
SPLIT_SKELETON = "split-DWARF skeleton"


def split_skeletons(units: list[UnitHeader], copied: list) -> frozenset[int]:
    """The offsets of the split-DWARF skeletons among ``units``, by the reasons (``verbatim``) of
    their analyses or outputs ``copied``."""
    return frozenset(u.off for u, c in zip(units, copied) if c.verbatim == SPLIT_SKELETON)


def _verbatim_reason(ud: UnitDies, env: UnitEnv) -> str:
    hdr = ud.hdr
    if hdr.offset_size == 8:
        return "64-bit DWARF"
    if hdr.unit_type in (F.DW_UT_skeleton, F.DW_UT_split_compile):
        return SPLIT_SKELETON
    if hdr.unit_type not in (F.DW_UT_compile, F.DW_UT_partial):
        return f"unit type 0x{hdr.unit_type:x}"
    if ud.abbrevs[int(ud.arrays()[1][0])].tag not in (F.DW_TAG_compile_unit, F.DW_TAG_partial_unit):
        return "not a compile or partial unit"
    if F.DW_AT_GNU_dwo_id in env.top or F.DW_AT_dwo_name in env.top or F.DW_AT_GNU_dwo_name in env.top:
        return SPLIT_SKELETON
    if uses_indirect(ud.abbrevs):
        return "DW_FORM_indirect"
    return ""


def list_call(secs: dict[str, bytes], ud: UnitDies, env: UnitEnv) -> tuple | None:
    """The arguments of the compiled call that reads the unit's location lists and their
    operands (``_loclists.unit_list_targets_many`` takes a batch's), or None: the unit has none,
    or the Python code reads them (``location_targets``)."""
    hdr = ud.hdr
    offs = ud.arrays()[0]
    if not (len(ud.locs) and _loclists_core is not None and isinstance(ud.locs, memoryview) and hdr.offset_size == 4
            and isinstance(offs, (array, memoryview)) and offs.itemsize == 8):
        return None
    sec = secs.get(".debug_loclists" if hdr.version >= 5 else ".debug_loc")
    if sec is None:
        return None
    base = env.loclists_base
    return (ud.locs, sec, base if isinstance(base, int) else 0, isinstance(base, int), hdr.addr_size,
            hdr.offset_size, hdr.version, offs, hdr.off)


def location_targets(secs: dict[str, bytes], ud: UnitDies, env: UnitEnv, keep: bool, got: tuple | None = None
                     ) -> tuple[list[int] | array, tuple[array, list] | None]:
    """(section offsets of the DIEs that the unit's location lists name by unit offset, in
    operand order; with ``keep``, ``locations.targets`` of the operands, for the rewrite phase):
    what ``location_operands`` gives made into both. ``got``: the compiled call's result for
    the unit's ``list_call``, which makes them without a tuple per operand (libgsl: 78,000
    operands); where it declines (None), so would its parts, and the Python code decides."""
    hdr = ud.hdr
    if got is not None:
        return got[1], (got[0] if keep else None)
    ops: list = []
    if len(ud.locs):
        _, sec, offsets = _location_lists(secs, ud, env)
        ops = scan_lists(sec, offsets, hdr)
    named = [v + hdr.off for _, _, kind, v in ops if kind != "s"]
    return named, (locations.targets(ops, ud.arrays()[0], hdr.off) if keep else None)


def list_targets_many(calls: list[tuple]) -> list[tuple | None]:
    """The compiled results of the units' ``list_call``s, in one stretch without the GIL."""
    return _loclists_core.unit_list_targets_many(calls) if calls else []


def location_operands(secs: dict[str, bytes], ud: UnitDies, env: UnitEnv) -> tuple[str, list]:
    """(section name, operands) of the DIE-naming operands in the unit's location lists."""
    if not len(ud.locs):
        return "", []
    name, sec, offsets = _location_lists(secs, ud, env)
    return name, scan_lists(sec, offsets, ud.hdr)


def _location_lists(secs: dict[str, bytes], ud: UnitDies, env: UnitEnv) -> tuple[str, bytes, list[int] | array]:
    """(section name, section, offsets of the lists) that a unit with location-list attributes
    names."""
    name = ".debug_loclists" if ud.hdr.version >= 5 else ".debug_loc"
    sec = secs.get(name)
    if sec is None:
        raise DwarfError(f"unit at 0x{ud.hdr.off:x} names location lists but {name} is missing")
    return name, sec, list_offsets(ud.hdr, ud.locs, sec, env.loclists_base)


def decode_with_abbrevs(info: bytes, abbrev: bytes, hdr: UnitHeader, cache: dict[int, dict[int, Abbrev]]
                        ) -> UnitDies:
    """The unit decoded with its abbreviation table (parsed once per offset into ``cache``)."""
    return decode_all(info, abbrev, [hdr], cache)[0]


def find_roots(ud: UnitDies, env: UnitEnv, info: bytes) -> tuple[np.ndarray, np.ndarray]:
    """DIE indexes of the unit's mergeable roots and of the end of their subtrees."""
    size = code_table_size(ud.abbrevs)
    tag_of = np.zeros(size, dtype=np.int64)
    decl_of = np.zeros(size, dtype=np.int64)  # form of DW_AT_declaration (0: none)
    for code, ab in ud.abbrevs.items():
        tag_of[code] = ab.tag
        decl_of[code] = next((form for at, form, _ in ab.specs if at == F.DW_AT_declaration), 0)
    offs, codes, par, ends_a = ud.numpy_arrays()
    tags = tag_of[codes]
    # Namespaces at unit or namespace level (parents come before their children).
    ns_ok = {0}
    for j in np.flatnonzero(tags == F.DW_TAG_namespace).tolist():
        if ud.parent[j] in ns_ok:
            ns_ok.add(j)
    level = np.isin(par, np.fromiter(ns_ok, dtype=np.int64))
    level[0] = False
    roots = level & np.isin(tags, np.fromiter(F.TYPE_TAGS, dtype=np.int64))
    decls = level & np.isin(tags, np.fromiter(F.DECL_TAGS, dtype=np.int64)) & (decl_of[codes] != 0)
    roots |= decls & (decl_of[codes] == F.DW_FORM_flag_present)
    for j in np.flatnonzero(decls & (decl_of[codes] != F.DW_FORM_flag_present)).tolist():
        roots[j] = bool(die_attrs(info, ud, j)[F.DW_AT_declaration][1])
    r = np.flatnonzero(roots).astype(np.int64)
    ends = np.searchsorted(offs, ends_a[r], side="left")
    return r, ends.astype(np.int64)


def analyze_chunk(src: SharedSections, unit_ids: list[int], hash_types: bool = True) -> list[UnitAnalysis]:
    """Worker entry: analyse the units ``unit_ids`` of the sections' ``.debug_info``; their
    location-list operands (and the pure decoder's units) stay in this process for the rewrite
    phase (``shared.keep_locations``, ``shared.keep_unit``). The compiled kernels take the units
    in batches (``batches``): each kernel lets go of the GIL once per batch. Without
    ``hash_types`` (an input nothing is removed from: dwz's output) the units are decoded and
    their offsets and kinds read, and their types are neither hashed nor named."""
    with no_gc():
        secs = worker_sections(src)
        info = secs[".debug_info"]
        abbrev = secs.get(".debug_abbrev", b"")
        units = parse_units(info)
        cache: dict[int, dict[int, Abbrev]] = {}
        strp_cache: dict[int, bytes] = {}
        keep = keeps_locations(src)
        out = []
        for batch in batches(unit_ids, units):
            uds = decode_all(info, abbrev, [units[u] for u in batch], cache)
            pending = [_Pending(secs, ud, strp_cache, hash_types) for ud in uds]
            lists = iter(list_targets_many([p.lists for p in pending if p.lists is not None]))
            for p in pending:
                p.prepare(keep, next(lists) if p.lists is not None else None)
            got = iter(fasthash.analyze_many([p.call for p in pending if p.call is not None]))
            for u, ud, p in zip(batch, uds, pending):
                a = p.finish(next(got) if p.call is not None else None)
                # The offsets wait for the layout phase, the roots for the table and rewrite phases:
                # half the memory in 32 bits (glibc's libc.so.6: 589,000 DIEs, 253,000 roots). The
                # compiled core's offsets and roots come in 32 bits already.
                if units[u].end <= 0xFFFFFFFF and not (isinstance(a.offs, array) and a.offs.typecode == "I"):
                    a = a._replace(offs=_uint32(a.offs))
                if not isinstance(a.roots, array):
                    a = a._replace(roots=np.asarray(a.roots).astype(np.uint32),
                                   root_ends=np.asarray(a.root_ends).astype(np.uint32))
                if not a.verbatim:
                    keep_unit(src, u, ud)  # the pure decoder's
                    if p.targets is not None:
                        keep_locations(src, u, p.targets)
                out.append(a)
        return out


# A batch of units for the compiled kernels holds at most this many bytes of .debug_info (or
# one unit): its decoded columns and kernel arrays are alive together, about 40 times its bytes.
BATCH_BYTES = 64 << 10


def batches(items: list, units: list[UnitHeader], unit_of: Callable[[object], int] = int,
            limit: int = BATCH_BYTES) -> Iterator[list]:
    """``items`` in runs of at most ``limit`` bytes of their units (``units[unit_of(item)]``),
    or of one unit: what the compiled kernels take in one call."""
    batch: list = []
    size = 0
    for item in items:
        hdr = units[unit_of(item)]
        n = hdr.end - hdr.off
        if batch and size + n > limit:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def decode_all(info: bytes, abbrev: bytes, hdrs: list[UnitHeader], cache: dict[int, dict[int, Abbrev]]
               ) -> list[UnitDies]:
    """``decode_with_abbrevs`` of each unit, the compiled scanner's share in one call
    (``read.decode_units``)."""
    tables = []
    for hdr in hdrs:
        table = cache.get(hdr.abbrev_off)
        if table is None:
            table = cache[hdr.abbrev_off] = parse_abbrev_table(abbrev, hdr.abbrev_off)[0]
        tables.append(table)
    return read.decode_units(info, list(zip(hdrs, tables)))


def _uint32(offs: Column) -> Column:
    """A unit's DIE offsets in 32 bits (the unit ends below 4 GiB)."""
    if isinstance(offs, (memoryview, array)) and read._scan is not None:
        got = read._scan.to_uint32(offs)
        if got is not None:
            return got
    return np.asarray(offs).astype(np.uint32)


def analyze_unit(secs: dict[str, bytes], ud: UnitDies, strp_cache: dict[int, bytes] | None = None
                 ) -> UnitAnalysis:
    """The unit's analysis."""
    p = _Pending(secs, ud, strp_cache)
    p.prepare(False, list_targets_many([p.lists])[0] if p.lists is not None else None)
    return p.finish(fasthash.analyze_many([p.call])[0] if p.call is not None else None)


class _Pending:
    """A unit's analysis up to the compiled kernels' calls, which take a batch of units each:
    ``lists`` holds the arguments of the call reading its location lists (None: no call), then
    ``prepare`` takes that call's result and makes ``call``, the hash kernel's arguments (None:
    no call, the unit is copied as it is or the pure path hashes it), and ``finish`` takes the
    kernel's result and makes the UnitAnalysis. Split so that a batch of units lets go of the
    GIL once per kernel rather than once per unit."""

    __slots__ = ("secs", "ud", "env", "named", "call", "done", "targets", "lists", "hash_types")

    def __init__(self, secs: dict[str, bytes], ud: UnitDies, strp_cache: dict[int, bytes] | None,
                 hash_types: bool = True) -> None:
        self.secs, self.ud, self.hash_types = secs, ud, hash_types
        self.env = env = UnitEnv(secs, ud, secs[".debug_info"], strp_cache)
        self.call: tuple | None = None
        self.lists: tuple | None = None
        self.named: list[int] | array = []
        self.targets: tuple[array, list] | None = None
        reason = _verbatim_reason(ud, env)
        if reason:
            self.done: UnitAnalysis | None = UnitAnalysis(reason, ud.arrays()[0], array("I"), array("I"), b"", b"",
                                                          b"", b"", (NEVER, b""))
            return
        self.done = None
        self.lists = list_call(secs, ud, env)

    def prepare(self, keep: bool, lists: tuple | None) -> None:
        """``lists``: the result of the unit's ``lists`` call; ``keep``: make ``targets``, the
        unit's location-list operands as the rewrite phase takes them (``location_targets``)."""
        if self.done is not None:
            return
        if not self.hash_types and not keep:
            return  # nothing to hash, and the rewrite reads the operands itself
        secs, ud, env = self.secs, self.ud, self.env
        loc_named, self.targets = location_targets(secs, ud, env, keep, lists)
        if not self.hash_types:
            return  # read for the rewrite only
        named: list[int] | array = [t for _, _, _, kind, t in ud.xrefs if kind != "s"] if ud.xrefs else []
        if not isinstance(loc_named, array):
            named += loc_named
        if named and not fits_int64(named):  # past 63 bits (the Python scanners read any size): no DIE
            raise DwarfError(f"a DWARF expression in the unit at 0x{ud.hdr.off:x} names a non-DIE offset")
        if isinstance(loc_named, array):
            named = array("q", named) + loc_named if named else loc_named
        self.named = named
        if fasthash.available():  # the whole unit in C (fasthash.py); None: the pure path
            self.call = fasthash.analyze_call(secs[".debug_info"], ud, env, named, [x[0] for x in ud.xrefs])

    def finish(self, got: fasthash.Analysis | None) -> UnitAnalysis:
        ud, env = self.ud, self.env
        if self.done is not None:
            a = self.done
        elif not self.hash_types:
            a = UnitAnalysis("", ud.arrays()[0], array("I"), array("I"), b"", b"", b"", b"", (NEVER, b""))
        elif got is not None:
            info = self.secs[".debug_info"]
            gdb_key = (got.phase, got.first_name) if got.phase >= 0 else expansion_key(info, ud, env.string)
            a = UnitAnalysis("", ud.arrays()[0] if got.offs32 is None else got.offs32, got.roots, got.root_ends,
                             got.hashes, got.pinned, got.names, got.has_name, gdb_key, got.nested_root,
                             got.nested_names)
        else:
            a = _analyze_pure(self.secs, ud, env, self.named)
        if len(a.offs) and ud.abbrevs[int(ud.arrays()[1][0])].tag == F.DW_TAG_partial_unit:
            a = a._replace(partial=True)
        language = env.top.get(F.DW_AT_language, (0, 0))[1]
        if len(a.roots) and language == _DW_LANG_RUST:
            held = _holding_abstract_instances(ud, np.asarray(a.roots), np.asarray(a.root_ends))
            a = a._replace(pinned=_with_pins(a.pinned, np.flatnonzero(held)))
        if len(a.roots):
            used = _using_targets(ud, a.roots, language)
            if used is not None:
                a = a._replace(pinned=_with_pins(a.pinned, used))
            followed = _followed_roots(ud, a.roots, a.root_ends)
            if followed is not None:
                a = a._replace(followed=followed)
        return a


_DW_LANG_RUST = 0x1C


def _holding_abstract_instances(ud: UnitDies, roots: np.ndarray, root_ends: np.ndarray) -> np.ndarray:
    """Which roots hold the abstract instance of an inlined function: in a Rust unit these stay
    (pinned). rustc puts a method's abstract instance in its struct or union (C and C++ compilers
    at unit or namespace level, by a DW_AT_specification), so the unit's inlined calls name a DIE
    inside a type by DW_AT_abstract_origin; merged, that is the canonical copy's in another unit,
    and gdb reads the abstract instance's children with that unit (dwarf2/read.c
    inherit_abstract_dies), before it has read its line table when gdb's order of expanding
    units differs from expansion.py's, which models gdb's ordering of C and C++ names: "file
    index out of range" complaints (16 on a small Rust program), parameters without a file."""
    codes = [code for code, ab in ud.abbrevs.items() if expansion.abstract_instance(ab)]
    held = np.zeros(len(roots), dtype=bool)
    if codes:
        dies = np.flatnonzero(np.isin(ud.arrays()[1], codes))
        k = np.searchsorted(roots, dies, side="right") - 1
        inside = (k >= 0) & (dies < root_ends[np.maximum(k, 0)])
        held[k[inside]] = True
    return held


# Tags whose symbol gdb 13 puts in the unit's own static block (dwarf2/read.c new_symbol: the
# file-scope list_in_scope): typedefs and the types without a tag name; the tagged types of C++
# go to the global block, which every unit's lookups search.
_UNIT_SCOPE_TAGS = frozenset({F.DW_TAG_typedef, F.DW_TAG_array_type, F.DW_TAG_base_type, F.DW_TAG_subrange_type,
                              F.DW_TAG_generic_subrange, F.DW_TAG_unspecified_type})
_OBJECTS = frozenset({F.DW_TAG_variable, F.DW_TAG_subprogram, F.DW_TAG_constant})


def _unit_scope(ab: Abbrev) -> bool:
    """Whether gdb gives a file-scope DIE of abbreviation ``ab`` of a C++ unit a symbol of the
    unit's static block (an object: without DW_AT_external in DW_FORM_flag_present; the value
    of a DW_FORM_flag is not read here, so such an object counts as static: a copy kept)."""
    if ab.tag in _UNIT_SCOPE_TAGS:
        return True
    return ab.tag in _OBJECTS and not any(at == F.DW_AT_external and form == F.DW_FORM_flag_present
                                          for at, form, _ in ab.specs)


def _using_targets(ud: UnitDies, roots: Column, language: int) -> Column | None:
    """The roots (their indexes, ascending) that a using-declaration of a C++ unit names
    (``namespace std { using ::FILE; }``: DW_TAG_imported_declaration's DW_AT_import) where gdb
    looks the target up in this unit's static block: these stay (pinned). gdb reads
    ``std::FILE`` through the declaration as ``FILE`` looked up from the unit where the program
    stopped (cp-namespace.c, cp_lookup_symbol_via_imports: the current static block, then the
    global one); with the typedef merged into another unit, ``ptype std::FILE``, ``whatis
    std::time_t`` or a cast to ``std::size_t`` failed there ("No symbol "FILE" in namespace
    "std"") where the input answered. None: nothing to pin. Only C++ units: C has no
    using-declarations, and Fortran's (``use``) are looked up otherwise.

    In C where the compiled core is built (numpy stays unloaded; the abbreviations read are the
    using-declarations' and their targets' only), else with numpy; the same roots either way."""
    if language not in F.CPP_LANGUAGES or ud.ref_die is None or not len(ud.ref_die):
        return None
    abbrevs = ud.abbrevs
    using = codes_with_tag(abbrevs, F.DW_TAG_imported_declaration)  # (not the whole table: see LazyTable)
    if not using:
        return None
    offs, codes = ud.arrays()[:2]
    is_using = code_flags(using)  # (a DwarfError past MAX_CODE)
    if fasthash.available() and isinstance(roots, array) and roots.typecode == "I":
        pairs = fasthash.using_targets(offs, codes, ud.ref_die, ud.ref_target, roots, is_using)
        if not len(pairs):
            return None
        targets = some_codes(abbrevs, list(set(pairs[1::2])))
        keep = bytearray(code_table_size(targets) if targets else 0)
        for code, ab in targets.items():
            keep[code] = _unit_scope(ab)
        hit = fasthash.select_pairs(pairs, bytes(keep))
        return hit if len(hit) else None
    stays_flag = np.zeros(code_table_size(abbrevs), dtype=bool)
    for code, ab in abbrevs.items():
        stays_flag[code] = _unit_scope(ab)
    offs, codes, roots = np.asarray(offs), np.asarray(codes), np.asarray(roots, dtype=np.int64)
    is_source = np.frombuffer(is_using, dtype=np.uint8).astype(bool)
    last = len(is_source) - 1
    source = codes[np.asarray(ud.ref_die)]
    named = np.asarray(ud.ref_target)[(source >= 0) & (source <= last) & is_source[np.clip(source, 0, last)]]
    last = len(stays_flag) - 1
    die = np.searchsorted(offs, named)
    die = die[(die < len(offs)) & (offs[np.minimum(die, len(offs) - 1)] == named)]
    target = codes[die]
    die = die[(target >= 0) & (target <= last) & stays_flag[np.clip(target, 0, last)]]
    k = np.searchsorted(roots, die)
    k, die = k[k < len(roots)], die[k < len(roots)]
    hit = np.unique(k[roots[k] == die])
    return hit if len(hit) else None


# The DIEs whose DW_AT_specification or DW_AT_abstract_origin binutils follows (BFD's dwarf2.c
# scan_unit_for_symbols: those of functions, inlined calls and variables).
_FOLLOWING_TAGS = frozenset({F.DW_TAG_subprogram, F.DW_TAG_inlined_subroutine, F.DW_TAG_entry_point,
                             F.DW_TAG_variable})
_FOLLOWED_ATTRS = frozenset({F.DW_AT_specification, F.DW_AT_abstract_origin})


def _followed_roots(ud: UnitDies, roots: Column, root_ends: Column) -> Column | None:
    """The roots (their indexes, ascending) holding a DIE that a DW_AT_specification or
    DW_AT_abstract_origin of a DIE outside them names (any reference of such a DIE counts: its
    DW_AT_type too, rarely there): table.choose_winners points no such reference to a later unit
    (table._followed_rows). None: none.

    In C where the compiled core is built, else with numpy; the same roots either way."""
    if ud.ref_die is None or not len(ud.ref_die):
        return None
    sources = codes_with(ud.abbrevs, _FOLLOWING_TAGS, _FOLLOWED_ATTRS)
    if not sources:
        return None
    is_source = code_flags(sources)
    offs, codes = ud.arrays()[:2]
    if (fasthash.available() and isinstance(roots, array) and roots.typecode == "I" and isinstance(root_ends, array)
            and root_ends.typecode == "I"):
        hit = fasthash.followed_roots(offs, codes, ud.ref_die, ud.ref_target, roots, root_ends, is_source)
        return hit if len(hit) else None
    offs, codes = np.asarray(offs), np.asarray(codes)
    roots, root_ends = np.asarray(roots, dtype=np.int64), np.asarray(root_ends, dtype=np.int64)
    flags = np.frombuffer(is_source, dtype=np.uint8).astype(bool)
    die = np.asarray(ud.ref_die, dtype=np.int64)
    source = codes[die]
    last = len(flags) - 1
    use = (source >= 0) & (source <= last) & flags[np.clip(source, 0, last)]
    die, named = die[use], np.asarray(ud.ref_target, dtype=np.int64)[use]
    t = np.searchsorted(offs, named)
    found = (t < len(offs)) & (offs[np.minimum(t, len(offs) - 1)] == named)
    die, t = die[found], t[found]
    k = np.searchsorted(roots, t, side="right") - 1
    ok = k >= 0
    k, die, t = k[ok], die[ok], t[ok]
    inside = (t < root_ends[k]) & ~((roots[k] <= die) & (die < root_ends[k]))
    hit = np.unique(k[inside])
    return hit.astype(np.int64) if len(hit) else None


def _with_pins(pinned: Column, hit: Column) -> Column:
    """A copy of the pinned flags ``pinned`` (numpy's bool or the compiled core's bytes) with
    the roots ``hit`` pinned as well."""
    if isinstance(pinned, array):
        out = array(pinned.typecode, pinned)
        for k in hit:
            out[k] = 1
        return out
    out = np.asarray(pinned).astype(bool)
    out[np.asarray(hit, dtype=np.int64)] = True
    return out


def _analyze_pure(secs: dict[str, bytes], ud: UnitDies, env: UnitEnv, named: list[int]) -> UnitAnalysis:
    """The analysis of a unit the compiled core is not built for, or declined (a form or shape
    it does not take: --stats counts these units, which would otherwise only show as a slow
    merge)."""
    info = secs[".debug_info"]
    hdr = ud.hdr
    offs = ud.arrays()[0]
    offs = np.asarray(offs)
    roots, root_ends = find_roots(ud, env, info)
    n = len(ud.offs)
    root_of = np.full(n, -1, dtype=np.int64)
    for k in range(len(roots)):
        root_of[roots[k]:root_ends[k]] = k
    pinned = np.zeros(len(roots), dtype=bool)
    unique = np.zeros(len(roots), dtype=bool)
    if named:
        idx = np.searchsorted(offs, np.array(named, dtype=np.int64))
        if (idx >= n).any() or (offs[np.minimum(idx, n - 1)] != np.array(named)).any():
            raise DwarfError(f"a DWARF expression in the unit at 0x{hdr.off:x} names a non-DIE offset")
        ks = root_of[idx]
        pinned[ks[ks >= 0]] = True
    for i, *_ in ud.xrefs:
        if root_of[i] >= 0:
            unique[root_of[i]] = True
    for k, r in enumerate(roots.tolist()):
        if expansion.listed_per_unit(ud.abbrevs[ud.codes[r]]):
            pinned[k] = True  # every unit keeps its copy, so gdb's listing stays the same
    hashes, names, nested = _hash_roots(info, ud, env, roots, root_ends, root_of, unique)
    return UnitAnalysis("", offs, roots, root_ends, np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 16),
                        pinned, np.frombuffer(b"".join(n or bytes(16) for n in names), dtype=np.uint8).reshape(-1, 16),
                        np.array([n is not None for n in names], dtype=bool), expansion_key(info, ud, env.string),
                        np.array([k for k, _ in nested], dtype=np.int64),
                        np.frombuffer(b"".join(key for _, key in nested), dtype=np.uint8).reshape(-1, 16),
                        fasthash.available())


def _namespaces(info: bytes, ud: UnitDies, env: UnitEnv, j: int, memo: dict[int, tuple]) -> tuple:
    p = ud.parent[j]
    if p <= 0:
        return ()
    if p not in memo:
        name = die_attrs(info, ud, p).get(F.DW_AT_name)
        memo[p] = _namespaces(info, ud, env, p, memo) + (env.string(*name) if name else b"(anonymous)",)
    return memo[p]


class _RefCtx:
    """What a tokenizer needs to resolve references, files and strings of one unit; ``k`` and
    ``r`` are the root being tokenised, ``edges`` collects its references to other roots."""

    __slots__ = ("u", "end", "index", "root_of", "roots", "k", "r", "edges", "files", "file_list", "string", "strp")

    def __init__(self, ud: UnitDies, env: UnitEnv, root_of: list[int], roots: list[int]) -> None:
        self.u = ud.hdr.off
        self.end = ud.hdr.end
        self.index = {o: k for k, o in enumerate(ud.offs)}
        self.root_of = root_of
        self.roots = roots
        self.k = self.r = 0
        self.edges: list[int] = []
        self.files = env.files
        self.file_list: list[bytes | None] | None = None
        self.string = env.string
        self.strp = env.strp

    def ref(self, at: int, value: int) -> tuple:
        t = self.index.get(value)
        if t is None:
            if self.u <= value < self.end:
                raise DwarfError(f"reference to 0x{value:x} is not a DIE")
            return (at, "G", value)  # another unit's DIE: its offset identifies it
        s = self.root_of[t]
        if s == self.k:
            return (at, "L", t - self.r)
        if s >= 0:
            self.edges.append(s)
            return (at, "R", s, t - self.roots[s])
        return (at, "U", self.u, value)

    def file(self, at: int, value: int) -> tuple:
        files = self.file_list
        if files is None:
            files = self.file_list = self.files()
        # A negative index (a corrupt DW_FORM_sdata / implicit_const) names no file, as in the kernel.
        name = files[value] if 0 <= value < len(files) else None
        return (at, "f", name) if name is not None else (at, "U", self.u, value)


def _hash_roots(info: bytes, ud: UnitDies, env: UnitEnv, roots: np.ndarray, root_ends: np.ndarray,
                root_of: np.ndarray, unique: np.ndarray
                ) -> tuple[list[bytes], list[bytes | None], list[tuple[int, bytes]]]:
    hdr = ud.hdr
    n_roots = len(roots)
    offs, codes, parent = ud.offs, ud.codes, ud.parent
    lang = env.top.get(F.DW_AT_language, (0, 0))[1]
    base_ctx = ("unit", lang, hdr.version, hdr.addr_size)
    ns_memo: dict[int, tuple] = {}
    roots_l = roots.tolist()
    ends_l = root_ends.tolist()
    ctx = _RefCtx(ud, env, root_of.tolist(), roots_l)
    # Per code: head token, tokenizer, attribute numbers, implicit constants (one lookup per DIE).
    per_code = {code: _code_tokens(ab, hdr) for code, ab in ud.abbrevs.items()}
    # Pass 1: each root's tokens, with references to other roots left as ('R', root, rel).
    toks: list[list] = []
    edges: list[list[int]] = []
    names: list[bytes | None] = []
    nested: list[tuple[int, bytes]] = []
    for k in range(n_roots):
        r, e = roots_l[k], ends_l[k]
        out: list = [base_ctx, _namespaces(info, ud, env, r, ns_memo)]
        if unique[k]:
            out.append(("U", hdr.off))
        ctx.k, ctx.r, ctx.edges = k, r, []
        for j in range(r, e):
            head, tok, attrs, consts = per_code[codes[j]]
            o = offs[j]
            p = o + 1 if info[o] < 0x80 else read_uleb(info, o)[1]
            out.append((head, parent[j] - r if j > r else -1))
            first = len(out)
            tok(info, p, ctx, out, attrs, consts)
            if j == r:
                names.append(_name_key(out, first))
                in_class = head[0] in expansion._CLASSES and names[k] is not None
            elif in_class and parent[j] == r and head[0] in expansion._TYPES:
                key = _name_key(out, first, names[k])
                if key is not None:
                    nested.append((k, key))
        toks.append(out)
        edges.append(ctx.edges)
    hashes: list[bytes] = [b""] * n_roots
    for scc in _sccs(edges):
        if len(scc) == 1:
            k = scc[0]
            # Only a root with edges has ('R', ...) tokens to replace by the referenced hash.
            hashes[k] = _digest([t if t[1:2] != ("R",) else (t[0], "T", hashes[t[2]], t[3]) for t in toks[k]]
                                if edges[k] else toks[k])
        else:
            _hash_scc(scc, toks, edges, hashes)
    return hashes, names, nested


def _code_tokens(ab: Abbrev, hdr: UnitHeader) -> tuple:
    """Head token, tokenizer, attribute numbers and implicit constants of an abbreviation."""
    return ((ab.tag, ab.children), compile_tokenizer(ab.specs, hdr.version, hdr.offset_size, hdr.addr_size, ab.raw),
            tuple(at for at, _, _ in ab.specs), tuple(ic for _, _, ic in ab.specs))


def _name_key(out: list, first: int, scope: object = None) -> bytes | None:
    """What gdb's symbol listings tell a root apart by: its name (with the namespaces, out[1]) and
    declaring file, from the root DIE's tokens ``out[first:]``; None for an unnamed root.
    With ``scope`` (the name key of the class a type is nested in, the DIE's tokens from
    ``first``), the key of that nested type: gdb lists it on its own (`Outer::inner`), and only
    some copies of a class may hold it (a member template instantiated in some units).
    _hashcore.name_keys and nested_keys make the same keys from the compiled token stream: change
    them together (tests/test_compiled_core.py, tests/test_gdb_listings.py)."""
    name = file = None
    for t in out[first:]:
        if t[0] == F.DW_AT_name:
            name = t
        elif t[0] == F.DW_AT_decl_file:
            file = t
    if name is None:
        return None
    return _digest((out[1] if scope is None else scope, name, file))


def _hash_scc(scc: list[int], toks: list[list], edges: list[list[int]], hashes: list[bytes]) -> None:
    members = set(scc)
    local: dict[int, bytes] = {}
    for k in scc:
        local[k] = _digest([
            t if t[1:2] != ("R",) else ((t[0], "C", t[3]) if t[2] in members else (t[0], "T", hashes[t[2]], t[3]))
            for t in toks[k]])
    _finish_scc(scc, local, edges, hashes)


def _finish_scc(scc: list[int], local: dict[int, bytes], edges: list[list[int]], hashes: list[bytes]) -> None:
    """The SCC's member hashes from each member's ``local`` digest (its tokens with references to
    members as their relative position only)."""
    members = set(scc)
    inner = {k: [e for e in edges[k] if e in members] for k in scc}

    def serial(entry: int) -> tuple[bytes, dict[int, int]]:
        num = {entry: 0}
        order = [entry]
        stack = [(entry, 0)]
        while stack:  # iterative pre-order DFS following references in content order
            k, pos = stack.pop()
            out = inner[k]
            if pos < len(out):
                stack.append((k, pos + 1))
                e = out[pos]
                if e not in num:
                    num[e] = len(order)
                    order.append(e)
                    stack.append((e, 0))
        body = [(local[k], [num[e] for e in inner[k]]) for k in order]
        return _digest(body), num

    low = min(local.values())
    best: tuple[bytes, dict[int, int]] | None = None
    for k in sorted(scc):
        if local[k] == low:
            cand = serial(k)
            if best is None or cand[0] < best[0]:
                best = cand
    assert best is not None
    for k in scc:
        hashes[k] = _digest(("scc", best[0], best[1][k]))


def _sccs(edges: list[list[int]]) -> list[list[int]]:
    """Tarjan's SCCs (iterative), each emitted after every SCC it references."""
    n = len(edges)
    index = [-1] * n
    low = [0] * n
    on = [False] * n
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for s in range(n):
        if index[s] >= 0:
            continue
        work = [(s, 0)]
        index[s] = low[s] = counter
        counter += 1
        stack.append(s)
        on[s] = True
        while work:
            v, pos = work[-1]
            if pos < len(edges[v]):
                work[-1] = (v, pos + 1)
                w = edges[v][pos]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on[w] = True
                    work.append((w, 0))
                elif on[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on[w] = False
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out
