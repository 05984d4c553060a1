"""Semantic check of a merge: every DIE of the original that is still there (everything but the
removed duplicate types) has, in the new file, the same attributes, and every reference from it
leads to an equivalent DIE, compared structurally and cycle-safe (coinductively: a pair of DIEs
under comparison is assumed equal, as in a bisimulation). Slow and simple on purpose."""
from __future__ import annotations

import bisect
from array import array

from linkplugin.dwarf import forms as F
from linkplugin.dwarf import read
from linkplugin.dwarf.abbrev import Abbrev
from linkplugin.dwarf.expr import scan_expr
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.read import UnitDies, decode_attrs
from linkplugin.dwarf.units import parse_units
from linkplugin.merge.hash import UnitEnv, decode_with_abbrevs

Die = tuple[int, int]  # (unit index, DIE index)
_IGNORED = {F.DW_AT_sibling}
_CONTAINERS = (F.DW_TAG_namespace, F.DW_TAG_compile_unit, F.DW_TAG_partial_unit)
_FOLLOWED = (0x47, 0x31)  # DW_AT_specification, DW_AT_abstract_origin
# Decoded attribute lists a file keeps at most (about 0.6 KB each): a cache, emptied when full.
# Unbounded, a program of 31.6 million DIEs (Connectome Workbench) took the check past 24 GB.
_ATTRS_KEPT = 1 << 18


def _pair(a: "_File", b: "_File", x: Die, y: Die) -> int:
    """A pair of DIEs as one integer, each DIE by its number in its file (``_File.first``)."""
    return ((a.first[x[0]] + x[1]) << 32) | (b.first[y[0]] + y[1])


class _Pairs:
    """The pairs of DIEs taken as equivalent for the whole check (``_pair`` integers). A DIE of
    the original is nearly always paired with one DIE of the new file: that partner is kept in an
    array by the original DIE's number (4 bytes a DIE), any other in a set. A set of every pair
    held 2 GB on Connectome Workbench (31.6 million DIEs a file)."""

    __slots__ = ("partner", "more")

    def __init__(self, a: "_File") -> None:
        self.partner = array("I", bytes(4 * a.first[-1]))  # the partner's number + 1; 0: none
        self.more: set[int] = set()

    def __contains__(self, pair: int) -> bool:
        return self.partner[pair >> 32] == (pair & 0xFFFFFFFF) + 1 or pair in self.more

    def add(self, pair: int) -> None:
        x, y = pair >> 32, (pair & 0xFFFFFFFF) + 1
        if not self.partner[x]:
            self.partner[x] = y
        elif self.partner[x] != y:
            self.more.add(pair)

    def update(self, pairs: set[int]) -> None:
        for pair in pairs:
            self.add(pair)


def _aligned(a: "_File", b: "_File", x: Die, y: Die) -> tuple[list, list]:
    """The attributes of ``x`` and ``y`` to compare: a DW_AT_decl_file the merge gave ``y``
    (because its specification or abstract origin moved to another unit, rewrite.py) is dropped
    when it names the file ``x`` reached through that reference."""
    ax, by = a.attrs(x), b.attrs(y)
    if (len(by) == len(ax) + 1 and by[-1][0] == F.DW_AT_decl_file
            and all(at != F.DW_AT_decl_file for at, _, _ in ax) and a.followed_file(x) == by[-1][2]):
        by = by[:-1]
    return ax, by


class _File:
    def __init__(self, secs: dict[str, bytes]) -> None:
        self.secs = secs
        self.info = secs[".debug_info"]
        cache: dict[int, dict[int, Abbrev]] = {}
        self.units: list[UnitDies] = [decode_with_abbrevs(self.info, secs.get(".debug_abbrev", b""), h, cache)
                                      for h in parse_units(self.info)]
        self.envs = [UnitEnv(secs, ud, self.info) for ud in self.units]
        self.starts = [ud.hdr.off for ud in self.units]
        # Each unit's DIE columns (offs, codes, parent, ends) as the int64 arrays the decoder made,
        # never as lists: a Python int a DIE and column took the check on Connectome Workbench
        # (31.6 million DIEs a file) to 16 GB. The references the decoder listed are not used.
        self.columns: list[tuple] = []
        for ud in self.units:
            self.columns.append(ud.arrays())
            ud.drop_references()
        self.first = [0]  # the file's number of each unit's first DIE
        for offs, *_ in self.columns:
            self.first.append(self.first[-1] + len(offs))
        if self.first[-1] >= (1 << 32) - 1:  # (_Pairs keeps a number + 1 in 32 bits)
            raise DwarfError(f"{self.first[-1]} DIEs: more than the check can number")
        self._attrs: dict[Die, list] = {}
        self._unique: dict[int, bool] = {}  # id(Abbrev): no attribute twice

    def _distinct(self, ab: Abbrev) -> bool:
        got = self._unique.get(id(ab))
        if got is None:
            got = self._unique[id(ab)] = len({at for at, _, _ in ab.specs}) == len(ab.specs)
        return got

    def locate(self, off: int) -> Die:
        u = bisect.bisect_right(self.starts, off) - 1
        offs = self.columns[u][0]
        d = bisect.bisect_left(offs, off)
        if u < 0 or d >= len(offs) or offs[d] != off:
            raise DwarfError(f"reference to 0x{off:x} is not a DIE")
        return u, d

    def tag(self, die: Die) -> int:
        return self.units[die[0]].abbrevs[self.columns[die[0]][1][die[1]]].tag

    def children(self, die: Die) -> list[Die]:
        offs, _, parent, ends = self.columns[die[0]]
        i = die[1]
        out = []
        j = i + 1
        while j < len(offs) and parent[j] == i:
            out.append((die[0], j))
            j = bisect.bisect_left(offs, ends[j])
        return out

    def attrs(self, die: Die) -> list:
        """[(attribute, kind, value)] with kind 'ref' (value: Die), 'expr' (bytes with the
        DIE-naming operands blanked, their targets), or a plain comparable value."""
        got = self._attrs.get(die)
        if got is not None:
            return got
        u, i = die
        ud = self.units[u]
        env = self.envs[u]
        hdr = ud.hdr
        offs, codes, _, _ = self.columns[u]
        _, p = read_uleb(self.info, offs[i])
        ab = ud.abbrevs[codes[i]]
        # The compiled reader's values where it reads them all (no block or expression among them)
        # and no attribute repeats (its dict would keep one): decode_attrs in Python was a quarter
        # of the check's time under a profiler.
        raw = None
        if read._parse is not None and self._distinct(ab):
            got = read._parse.die_values(self.info, p, ab.specs, hdr.version, hdr.offset_size, hdr.addr_size,
                                         hdr.off)
            if got is not None:
                raw = [(at, form, value, 0, 0) for at, (form, value) in got.items()]
        if raw is None:
            raw, _ = decode_attrs(self.info, p, ab.specs, hdr)
        out = []
        for at, form, value, start, end in raw:
            if at in _IGNORED:
                continue
            if form in F.REF_FORMS:
                out.append((at, "ref", self.locate(value)))  # type: ignore[arg-type]
            elif form in F.STR_FORMS:
                out.append((at, "str", env.string(form, value)))
            elif at in (F.DW_AT_decl_file, 0x58) and isinstance(value, int):  # decl_file, call_file
                files = env.files()
                out.append((at, "file", files[value] if 0 <= value < len(files) else value))
            elif form == F.DW_FORM_exprloc or (form in F.BLOCK_FORMS and at in F.EXPR_BLOCK_ATTRS):
                blob = bytearray(value)  # type: ignore[arg-type]
                base = end - len(blob)
                targets = []
                for pos, w, kind, v in scan_expr(self.info, base, end, hdr.addr_size, hdr.offset_size,
                                                 hdr.version):
                    blob[pos - base:pos - base + w] = bytes(w)
                    targets.append(self.locate(v if kind == "s" else v + hdr.off))
                out.append((at, "expr", (bytes(blob), tuple(targets))))
            elif form in (F.DW_FORM_flag_present, F.DW_FORM_flag):
                out.append((at, "flag", bool(value)))
            else:
                out.append((at, "val", value))
        if len(self._attrs) >= _ATTRS_KEPT:
            self._attrs.clear()
        self._attrs[die] = out
        return out

    def followed_file(self, die: Die) -> object:
        """The DW_AT_decl_file value gdb finds for the DIE, following DW_AT_specification and
        DW_AT_abstract_origin as it does (None if there is none)."""
        for _ in range(16):
            attrs = self.attrs(die)
            got = next((v for at, k, v in attrs if at == F.DW_AT_decl_file), None)
            if got is not None:
                return got
            nxt = next((v for at, k, v in attrs if at in _FOLLOWED and k == "ref"), None)
            if nxt is None:
                return None
            die = nxt
        return None

    def qualified(self, die: Die) -> tuple:
        """The names of the DIE and its enclosing DIEs, up to its unit's name."""
        parent = self.columns[die[0]][2]
        out = []
        i = die[1]
        while i >= 0:
            out.append(next((v for at, k, v in self.attrs((die[0], i)) if at == F.DW_AT_name), b""))
            i = parent[i]
        return tuple(out)

    def describe(self, die: Die) -> str:
        name = next((v for at, k, v in self.attrs(die) if at == F.DW_AT_name), b"")
        # DW_AT_name in a non-string form (a damaged abbreviation) still describes the DIE.
        text = name.decode(errors="replace") if isinstance(name, bytes) else repr(name)
        return f"DIE 0x{self.columns[die[0]][0][die[1]]:x} (tag 0x{self.tag(die):x} {text})"


def _equivalent(a: _File, b: _File, start: tuple[Die, Die], assumed: set[int] | _Pairs, problems: list[str],
                base: frozenset[int] | _Pairs = frozenset()) -> bool:
    """Whether the DIEs are equivalent, assuming the pairs in ``base`` and ``assumed`` are; every
    pair taken as equal is added to ``assumed``."""
    work = [start]
    while work:
        x, y = work.pop()
        pair = _pair(a, b, x, y)
        if pair in assumed or pair in base:
            continue
        assumed.add(pair)
        if a.tag(x) != b.tag(y):
            problems.append(f"{a.describe(x)} became {b.describe(y)}")
            return False
        if a.tag(x) in _CONTAINERS:
            # A namespace (or unit) is named, not compared by contents: merging removes some of
            # its children by design, and those are checked where they are referenced.
            if a.qualified(x) != b.qualified(y):
                problems.append(f"{a.describe(x)} became {b.describe(y)}")
                return False
            continue
        ax, by = _aligned(a, b, x, y)
        if [(at, k) for at, k, _ in ax] != [(at, k) for at, k, _ in by]:
            problems.append(f"{a.describe(x)}: attributes differ")
            return False
        for (at, kind, v), (_, _, w) in zip(ax, by):
            if kind == "ref":
                work.append((v, w))
            elif kind == "expr":
                if v[0] != w[0] or len(v[1]) != len(w[1]):
                    problems.append(f"{a.describe(x)}: expression of attribute 0x{at:x} differs")
                    return False
                work.extend(zip(v[1], w[1]))
            elif v != w:
                problems.append(f"{a.describe(x)}: attribute 0x{at:x} is {v!r}, was {w!r}"
                                .replace(f"is {v!r}, was {w!r}", f"was {v!r}, now {w!r}"))
                return False
        cx, cy = a.children(x), b.children(y)
        if len(cx) != len(cy):
            problems.append(f"{a.describe(x)}: {len(cx)} children became {len(cy)}")
            return False
        work.extend(zip(cx, cy))
    return True


def _removable(f: _File, die: Die) -> bool:
    tag = f.tag(die)
    if tag in F.TYPE_TAGS:
        return True
    return tag in F.DECL_TAGS and any(at == F.DW_AT_declaration and v for at, _, v in f.attrs(die))


def verify(orig_sections: dict[str, bytes], new_sections: dict[str, bytes], *, limit: int = 20) -> list[str]:
    """Differences a debugger could see between ORIG and NEW (empty when the merge is sound)."""
    a, b = _File(orig_sections), _File(new_sections)
    problems: list[str] = []
    if len(a.units) != len(b.units):
        return [f"{len(a.units)} units became {len(b.units)}"]
    assumed = _Pairs(a)  # pairs of DIEs taken as equivalent
    for u in range(len(a.units)):
        # Walk the unit and namespace levels, where duplicates may have been removed; below them
        # the comparison is the structural one.
        level = [((u, 0), (u, 0))]
        while level and len(problems) < limit:
            x, y = level.pop()
            if a.tag(x) != b.tag(y) or not _same_attrs(a, b, x, y, assumed, problems):
                problems.append(f"{a.describe(x)} differs from {b.describe(y)}")
                continue
            cy = b.children(y)
            j = 0
            for cx in a.children(x):
                # The new children are the old ones less removed duplicates, in order: pair each old
                # child with the next new one if they are equivalent (a tentative comparison, so a
                # failed try does not pollute the assumptions), else it must have been removable.
                if j < len(cy) and a.tag(cx) == b.tag(cy[j]):
                    if a.tag(cx) == F.DW_TAG_namespace:
                        if _key(a, cx) == _key(b, cy[j]):
                            level.append((cx, cy[j]))
                            j += 1
                            continue
                    else:
                        trial: set[int] = set()
                        if _equivalent(a, b, (cx, cy[j]), trial, [], assumed):
                            assumed.update(trial)
                            j += 1
                            continue
                if not _removable(a, cx):
                    problems.append(f"{a.describe(cx)} is missing or not the same in the new file")
            if j != len(cy):
                problems.append(f"{b.describe(y)} has {len(cy) - j} unexpected children")
    return problems[:limit]


def _key(f: _File, die: Die) -> tuple:
    return tuple((at, k, v) for at, k, v in f.attrs(die) if at in (F.DW_AT_name, 0x3B, 0x6E, 0x2007))


def _same_attrs(a: _File, b: _File, x: Die, y: Die, assumed: _Pairs, problems: list[str]) -> bool:
    ax, by = _aligned(a, b, x, y)
    if [(at, k) for at, k, _ in ax] != [(at, k) for at, k, _ in by]:
        return False
    for (at, kind, v), (_, _, w) in zip(ax, by):
        if kind == "ref":
            if not _equivalent(a, b, (v, w), assumed, problems):
                return False
        elif v != w:
            return False
    return True
