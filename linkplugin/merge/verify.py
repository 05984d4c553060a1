"""Semantic check of a merge: every DIE of the original that is still there (everything but the
removed duplicate types) has, in the new file, the same attributes, and every reference from it
leads to an equivalent DIE, compared structurally and cycle-safe (coinductively: a pair of DIEs
under comparison is assumed equal, as in a bisimulation). Slow and simple on purpose."""
from __future__ import annotations

import bisect

from linkplugin.dwarf import forms as F
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
_ATTRS_KEPT = 1 << 20


def _pair(x: Die, y: Die) -> int:
    """A pair of DIEs as one integer: the set of pairs assumed equivalent holds up to one per DIE,
    and nested tuples cost it about 4x the memory."""
    return (((x[0] << 40) | x[1]) << 64) | (y[0] << 40) | y[1]


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
        self._attrs: dict[Die, list] = {}

    def locate(self, off: int) -> Die:
        u = bisect.bisect_right(self.starts, off) - 1
        offs = self.units[u].offs
        d = bisect.bisect_left(offs, off)
        if u < 0 or d >= len(offs) or offs[d] != off:
            raise DwarfError(f"reference to 0x{off:x} is not a DIE")
        return u, d

    def tag(self, die: Die) -> int:
        ud = self.units[die[0]]
        return ud.abbrevs[ud.codes[die[1]]].tag

    def children(self, die: Die) -> list[Die]:
        ud = self.units[die[0]]
        i = die[1]
        out = []
        j = i + 1
        while j < len(ud.offs) and ud.parent[j] == i:
            out.append((die[0], j))
            j = bisect.bisect_left(ud.offs, ud.ends[j])
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
        _, p = read_uleb(self.info, ud.offs[i])
        raw, _ = decode_attrs(self.info, p, ud.abbrevs[ud.codes[i]].specs, hdr)
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
        ud = self.units[die[0]]
        out = []
        i = die[1]
        while i >= 0:
            out.append(next((v for at, k, v in self.attrs((die[0], i)) if at == F.DW_AT_name), b""))
            i = ud.parent[i]
        return tuple(out)

    def describe(self, die: Die) -> str:
        name = next((v for at, k, v in self.attrs(die) if at == F.DW_AT_name), b"")
        ud = self.units[die[0]]
        # DW_AT_name in a non-string form (a damaged abbreviation) still describes the DIE.
        text = name.decode(errors="replace") if isinstance(name, bytes) else repr(name)
        return f"DIE 0x{ud.offs[die[1]]:x} (tag 0x{self.tag(die):x} {text})"


def _equivalent(a: _File, b: _File, start: tuple[Die, Die], assumed: set, problems: list[str],
                base: frozenset | set = frozenset()) -> bool:
    """Whether the DIEs are equivalent, assuming the pairs in ``base`` and ``assumed`` are; every
    pair taken as equal is added to ``assumed``."""
    work = [start]
    while work:
        x, y = work.pop()
        pair = _pair(x, y)
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
    assumed: set[int] = set()  # pairs of DIEs (_pair) taken as equivalent
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
                        trial: set = set()
                        if _equivalent(a, b, (cx, cy[j]), trial, [], assumed):
                            assumed |= trial
                            j += 1
                            continue
                if not _removable(a, cx):
                    problems.append(f"{a.describe(cx)} is missing or not the same in the new file")
            if j != len(cy):
                problems.append(f"{b.describe(y)} has {len(cy) - j} unexpected children")
    return problems[:limit]


def _key(f: _File, die: Die) -> tuple:
    return tuple((at, k, v) for at, k, v in f.attrs(die) if at in (F.DW_AT_name, 0x3B, 0x6E, 0x2007))


def _same_attrs(a: _File, b: _File, x: Die, y: Die, assumed: set, problems: list[str]) -> bool:
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
