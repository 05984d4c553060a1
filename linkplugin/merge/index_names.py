"""The names a unit's dropped types take to other units, for the rebuilt .gdb_index.

gdb-add-index names a type under the first unit holding it. Once merged, that may be the unit
of its canonical copy, which the input's index never named: ``index.gdb_index.rewrite`` adds it
to the symbol's vector, from what ``moved_names`` reports of each unit in the rewrite phase
(where the unit is decoded anyway).
"""
from __future__ import annotations

import sys

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.abbrev import code_table_size, form_size
from linkplugin.dwarf.leb import read_uleb
from linkplugin.dwarf.read import UnitDies, decode_attrs, die_attrs
from linkplugin.lazy import np
from linkplugin.merge.hash import UnitEnv
from linkplugin.merge.table import Removals


def moved_names(secs: dict[str, bytes], ud: UnitDies, rem: Removals, text: dict[int, str] | None = None
                ) -> dict[str, tuple[int, ...]]:
    """``{qualified name: units holding the canonical copies}`` of the named roots the unit
    drops, and of the enumerators of the enumerations among them (C++ scopes those in the
    enclosing namespace). Names are spelled as gdb's index spells them, without spaces;
    ``text`` keeps the names read by .debug_str offset, for the next units of the same input."""
    if not len(rem.starts):
        return {}
    names = _Names(secs, ud, secs[".debug_info"], text)
    got: dict[str, tuple[int, ...]] = {}  # names interned, units in tuples: every unit's wait for the index
    _, codes, parent, _ = ud.numpy_arrays()
    rem = rem.numpy()
    root_codes = codes[rem.starts]
    pick = np.flatnonzero(names.named[root_codes] | names.enum[root_codes])
    starts = rem.starts[pick]
    scopes = names.scopes
    for r, stop, canon, own, up, is_enum in zip(
            starts.tolist(), rem.ends[pick].tolist(), rem.canon_unit[pick].tolist(), names.many(starts),
            parent[starts].tolist(), names.enum[codes[starts]].tolist()):
        prefix = scopes.get(up)
        if prefix is None:
            prefix = names.scope(up)
        if own is not None:
            _add(got, prefix + own, canon)
        if is_enum:
            kids = np.flatnonzero(names.named[codes[r + 1:stop]] & (parent[r + 1:stop] == r)) + r + 1
            for own in names.many(kids):  # its enumerators
                if own is not None:
                    _add(got, prefix + own, canon)
    return got


def _add(got: dict[str, tuple[int, ...]], name: str, unit: int) -> None:
    units = got.get(name)
    if units is None:
        got[sys.intern(name)] = (unit,)
    elif unit not in units:
        got[name] = (*units, unit)


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
    before it have fixed sizes (the usual case: it comes first), else from all of them; ``many``
    gathers the DW_FORM_strp offsets of many DIEs at once and reads each string once."""

    def __init__(self, secs: dict[str, bytes], ud: UnitDies, info: bytes, text: dict[int, str] | None = None
                 ) -> None:
        self.ud, self.info = ud, info
        self.env = UnitEnv(secs, ud, info)
        self.scopes: dict[int, str] = {0: ""}  # DIE index -> its scope prefix ("ns::")
        self.offs, self.codes, self.parent, _ = ud.numpy_arrays()
        self.text = text if text is not None else {}  # DW_FORM_strp names by offset, as returned
        # Per abbreviation code: has DW_AT_name; is an enumeration; where a DW_FORM_strp name
        # lies after a one-byte code (-1: elsewhere, or another form).
        size = code_table_size(ud.abbrevs)
        self.named = np.zeros(size, dtype=bool)
        self.enum = np.zeros(size, dtype=bool)
        self.strp_at = np.full(size, -1, dtype=np.int64)
        for code, ab in ud.abbrevs.items():
            self.named[code] = _has_name(ab.raw, ab.specs)
            self.enum[code] = ab.tag == F.DW_TAG_enumeration_type
            if self.named[code] and code < 0x80 and ud.hdr.offset_size == 4:
                place = self._place(code)
                if place not in (None, _NONE) and place[1] == F.DW_FORM_strp:
                    self.strp_at[code] = 1 + place[0]

    def many(self, dies: np.ndarray) -> list[str | None]:
        """``name`` of each of ``dies``: the DW_FORM_strp offsets at a fixed place gathered at once."""
        codes = self.codes[dies]
        at = self.strp_at[codes]
        pos = self.offs[dies] + at
        data = np.frombuffer(self.info, dtype=np.uint8)
        fast = (at >= 0) & (pos + 4 <= len(data))
        fast[fast] &= data[self.offs[dies[fast]]] == codes[fast]  # the code in one byte
        p = pos[fast]
        strp = (data[p].astype(np.int64) | data[p + 1].astype(np.int64) << 8 | data[p + 2].astype(np.int64) << 16
                | data[p + 3].astype(np.int64) << 24).tolist()
        out: list[str | None] = []
        k = 0
        text = self.text
        for i, quick in zip(dies.tolist(), fast.tolist()):
            if quick:
                value = strp[k]
                k += 1
                got = text.get(value)
                if got is None:
                    got = text[value] = self.env.strp(value).decode("utf-8", "replace").replace(" ", "")
                out.append(got)
            else:
                out.append(self.name(i))
        return out

    def name(self, i: int) -> str | None:
        """DW_AT_name of DIE ``i`` (None: it has none)."""
        p, code = self.ud.die(i)
        place = self._place(code)
        if place is _NONE:
            return None
        if place is None:  # after an attribute of variable size: all of them decoded
            got = die_attrs(self.info, self.ud, i).get(F.DW_AT_name)
            if got is None:
                return None
            form, value = got
        else:
            skip, form = place
            _, p = read_uleb(self.info, p)  # the code
            attrs, _ = decode_attrs(self.info, p + skip, ((F.DW_AT_name, form, 0),), self.ud.hdr)
            value = attrs[0][2]
        return self.env.string(form, value).decode("utf-8", "replace").replace(" ", "")

    def _place(self, code: int) -> tuple[int, int] | None:
        """(bytes after the code before DW_AT_name, its form); _NONE: no name; None: not at a
        fixed place (cached by attribute list and unit shape)."""
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
