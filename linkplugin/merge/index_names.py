"""The names a unit's dropped types take to other units, for the rebuilt .gdb_index.

gdb-add-index names a type under the first unit holding it. Once merged, that may be the unit
of its canonical copy, which the input's index never named: ``index.gdb_index.rewrite`` adds it
to the symbol's vector, from what ``moved_names`` reports of each unit in the rewrite phase
(where the unit is decoded anyway).
"""
from __future__ import annotations

import numpy as np

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.abbrev import form_size
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.read import UnitDies, decode_attrs, die_attrs
from linkplugin.merge.hash import UnitEnv
from linkplugin.merge.table import Removals


def moved_names(secs: dict[str, bytes], ud: UnitDies, rem: Removals) -> dict[str, list[int]]:
    """``{qualified name: units holding the canonical copies}`` of the named roots the unit
    drops, and of the enumerators of the enumerations among them (C++ scopes those in the
    enclosing namespace). Names are spelled as gdb's index spells them, without spaces."""
    if not len(rem.starts):
        return {}
    info = secs[".debug_info"]
    names = _Names(secs, ud, info)
    got: dict[str, set[int]] = {}
    offs, codes, parent, _ = ud.arrays()
    named, enum = _code_flags(ud)
    root_codes = codes[rem.starts]
    pick = np.flatnonzero(named[root_codes] | enum[root_codes])
    starts = rem.starts[pick]
    for r, stop, canon, p, code, up, is_enum in zip(
            starts.tolist(), rem.ends[pick].tolist(), rem.canon_unit[pick].tolist(), offs[starts].tolist(),
            codes[starts].tolist(), parent[starts].tolist(), enum[codes[starts]].tolist()):
        prefix = names.scope(up)
        own = names.name(r, p, code)
        if own is not None:
            got.setdefault(prefix + own, set()).add(canon)
        if is_enum:
            kids = np.flatnonzero(named[codes[r + 1:stop]] & (parent[r + 1:stop] == r)) + r + 1
            for j, q, c in zip(kids.tolist(), offs[kids].tolist(), codes[kids].tolist()):
                own = names.name(j, q, c)  # an enumerator
                if own is not None:
                    got.setdefault(prefix + own, set()).add(canon)
    return {name: sorted(units) for name, units in got.items()}


def _code_flags(ud: UnitDies) -> tuple[np.ndarray, np.ndarray]:
    """Per abbreviation code of the unit: whether it has DW_AT_name, whether it is an enumeration."""
    named = np.zeros(max(ud.abbrevs) + 1, dtype=bool)
    enum = np.zeros(len(named), dtype=bool)
    for code, ab in ud.abbrevs.items():
        named[code] = _has_name(ab.raw, ab.specs)
        enum[code] = ab.tag == F.DW_TAG_enumeration_type
    return named, enum


def _has_name(raw: bytes, specs: tuple) -> bool:
    got = _named.get(raw)
    if got is None:
        if len(_named) > 65536:
            _named.clear()
        got = _named[raw] = any(at == F.DW_AT_name for at, _, _ in specs)
    return got


_named: dict[bytes, bool] = {}
_NONE = (-1, -1)  # _Names._place: the abbreviation has no DW_AT_name
_places: dict[tuple, tuple[int, int] | None] = {}


class _Names:
    """DW_AT_name of a unit's DIEs, without spaces, read where it stands when the attributes
    before it have fixed sizes (the usual case: it comes first), else from all of them."""

    def __init__(self, secs: dict[str, bytes], ud: UnitDies, info: bytes) -> None:
        self.ud, self.info = ud, info
        self.env = UnitEnv(secs, ud, info)
        self.at: dict[int, tuple[int, int] | None] = {}  # code -> (bytes before the name, its form)
        self.scopes: dict[int, str] = {0: ""}  # DIE index -> its scope prefix ("ns::")
        self.parent = ud.arrays()[2]

    def name(self, i: int, p: int | None = None, code: int | None = None) -> str | None:
        """DW_AT_name of DIE ``i`` (at section offset ``p``, of abbreviation ``code``, when known)."""
        if p is None or code is None:
            p, code = self.ud.die(i)
        place = self.at.get(code, False)
        if place is False:
            place = self.at[code] = self._place(code)
        if place is _NONE:
            return None
        if place is None:
            got = die_attrs(self.info, self.ud, i).get(F.DW_AT_name)
            if got is None:
                return None
            form, value = got
        else:
            skip, form = place
            _, p = read_uleb(self.info, p)
            attrs, _ = decode_attrs(self.info, p + skip, ((F.DW_AT_name, form, 0),), self.ud.hdr)
            value = attrs[0][2]
        return self.env.string(form, value).decode("utf-8", "replace").replace(" ", "")

    def _place(self, code: int) -> tuple[int, int] | None:
        """(bytes before DW_AT_name, its form); _NONE: no name; None: not at a fixed place."""
        hdr = self.ud.hdr
        ab = self.ud.abbrevs[code]
        key = (ab.raw, hdr.version, hdr.offset_size, hdr.addr_size)
        got = _places.get(key, False)
        if got is not False:
            return got
        got = _NONE
        skip = 0
        for at, form, _ in ab.specs:
            if at == F.DW_AT_name:
                got = skip, form
                break
            size = form_size(form, hdr.version, hdr.offset_size, hdr.addr_size)
            if size is None:
                got = None if any(at == F.DW_AT_name for at, _, _ in ab.specs) else _NONE
                break
            skip += size
        if len(_places) > 65536:
            _places.clear()
        _places[key] = got
        return got

    def scope(self, j: int) -> str:
        """The ``ns::`` prefix of the names of DIE ``j``'s children (anonymous namespaces as
        gdb spells them)."""
        got = self.scopes.get(j)
        if got is None:
            own = self.name(j)
            got = self.scopes[j] = self.scope(int(self.parent[j])) + (own if own is not None else
                                                                      "(anonymousnamespace)") + "::"
        return got
