""".debug_names (DWARF 5 name index, as clang -gpubnames writes it): read, and write for the merged output.

clang writes one name index per compilation unit and the linker concatenates
them; the output keeps that shape. After merging, a name's DIE may live in
another unit (the canonical copy of a type): the entry moves to that unit's
index, with its DW_IDX_die_offset at the DIE's new place, and entries that now
name the same DIE become one. Hash tables are laid out as LLVM lays them out
(bucket count from the number of names, case-folding DJB hash, names sorted by
hash within their bucket). The names stay where they are in .debug_str.

gdb 13 ignores concatenated per-unit indexes ("does not match section length")
and reads the DWARF itself, for the input and the output alike; a single index
over all units, with DW_IDX_compile_unit, makes gdb 13 stop on an internal
error (read.h: Assertion `m_length != 0'), so it is not written.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.leb import encode_uleb as uleb, read_uleb
from linkplugin.dwarf.units import UnitHeader
from linkplugin.index import CannotRebuild
from linkplugin.lazy import np
from linkplugin.record import NamedTuple

DW_IDX_compile_unit = 1
DW_IDX_die_offset = 3
DW_IDX_parent = 4
DW_IDX_type_hash = 5

_FIXED = {F.DW_FORM_data1: 1, F.DW_FORM_data2: 2, F.DW_FORM_data4: 4, F.DW_FORM_data8: 8,
          F.DW_FORM_ref1: 1, F.DW_FORM_ref2: 2, F.DW_FORM_ref4: 4, F.DW_FORM_ref8: 8,
          F.DW_FORM_flag_present: 0}


class Entry(NamedTuple):
    tag: int
    die: int  # .debug_info offset of the DIE
    type_hash: int | None


class NameIndex(NamedTuple):
    augmentation: bytes
    names: dict[int, list[Entry]]  # .debug_str offset of the name -> its entries, in order


def read(data: bytes, unit_starts: set[int]) -> list[NameIndex]:
    """Every name index of the section, entries with absolute DIE offsets."""
    out = []
    p = 0
    while p < len(data):
        if len(data) - p < 4 or not any(data[p:]):
            break
        length = struct.unpack_from("<I", data, p)[0]
        if length == 0xFFFFFFFF:
            raise CannotRebuild("a DWARF64 name index")
        end = p + 4 + length
        if end > len(data):
            raise CannotRebuild(f"the name index at 0x{p:x} runs past the section")
        out.append(_read_one(data, p + 4, end, unit_starts))
        p = end
    return out


def _read_one(d: bytes, p: int, end: int, unit_starts: set[int]) -> NameIndex:
    version, _, n_cu, n_ltu, n_ftu, n_buckets, n_names, abbrev_size, aug_size = struct.unpack_from("<HHIIIIIII", d, p)
    if version != 5:
        raise CannotRebuild(f"name index version {version}")
    if n_ltu or n_ftu:
        raise CannotRebuild("a name index of type units")
    p += 32
    augmentation = d[p:p + aug_size]
    p += (aug_size + 3) & ~3
    cus = list(struct.unpack_from(f"<{n_cu}I", d, p))
    for off in cus:
        if off not in unit_starts:
            raise CannotRebuild(f"its CU list names 0x{off:x}, which does not start a unit")
    p += 4 * n_cu
    p += 4 * n_buckets + (4 * n_names if n_buckets else 0)
    str_offs = struct.unpack_from(f"<{n_names}I", d, p)
    p += 4 * n_names
    entry_offs = struct.unpack_from(f"<{n_names}I", d, p)
    p += 4 * n_names
    abbrevs = _read_abbrevs(d[p:p + abbrev_size])
    pool = p + abbrev_size
    names: dict[int, list[Entry]] = {}
    for name, q in zip(str_offs, entry_offs):
        q += pool
        entries = names.setdefault(name, [])
        while True:
            if q >= end:
                raise CannotRebuild("an entry runs past its name index")
            code, q = read_uleb(d, q)
            if code == 0:
                break
            if code not in abbrevs:
                raise CannotRebuild(f"entry abbreviation {code} is not defined")
            tag, attrs = abbrevs[code]
            cu = 0 if n_cu == 1 else None
            die = type_hash = None
            for idx, form in attrs:
                if form == F.DW_FORM_udata:
                    value, q = read_uleb(d, q)
                elif form in _FIXED:
                    size = _FIXED[form]
                    value = int.from_bytes(d[q:q + size], "little") if size else 1
                    q += size
                else:
                    raise CannotRebuild(f"entry attribute form 0x{form:x}")
                if idx == DW_IDX_compile_unit:
                    cu = value
                elif idx == DW_IDX_die_offset:
                    die = value
                elif idx == DW_IDX_type_hash:
                    type_hash = value
                elif idx == DW_IDX_parent and form == F.DW_FORM_flag_present:
                    pass  # "no parent in this index": true of the rewritten index too
                else:
                    raise CannotRebuild(f"entry attribute DW_IDX 0x{idx:x}")
            if cu is None or die is None or cu >= n_cu:
                raise CannotRebuild("an entry without its unit or DIE")
            entries.append(Entry(tag, cus[cu] + die, type_hash))
    return NameIndex(augmentation, names)


def _read_abbrevs(d: bytes) -> dict[int, tuple[int, list[tuple[int, int]]]]:
    out = {}
    p = 0
    while p < len(d):
        code, p = read_uleb(d, p)
        if code == 0:
            break
        tag, p = read_uleb(d, p)
        attrs = []
        while True:
            idx, p = read_uleb(d, p)
            form, p = read_uleb(d, p)
            if idx == 0 and form == 0:
                break
            attrs.append((idx, form))
        out[code] = (tag, attrs)
    return out


def case_folding_djb_hash(name: bytes) -> int:
    h = 5381
    for c in name:
        if 65 <= c <= 90:
            c += 32
        h = (h * 33 + c) & 0xFFFFFFFF
    return h


def bucket_count(names: int) -> int:
    # LLVM's choice (getDebugNamesBucketAndHashCount), so our index looks like clang's.
    if names > 1024:
        return names // 4
    if names > 16:
        return names // 2
    return max(names, 1)


def rewrite(data: bytes, strings: bytes, old_units: list[UnitHeader], new_units: list[UnitHeader],
            resolve: Callable[[np.ndarray], np.ndarray]) -> bytes:
    """The input's .debug_names for the merged output: one name index per unit, as clang writes them."""
    indexes = read(data, {u.off for u in old_units})
    if not indexes:
        return b""
    flat = [(name, e) for index in indexes for name, entries in index.names.items() for e in entries]
    new_die = resolve(np.array([e.die for _, e in flat], dtype=np.int64)) if flat else np.zeros(0, np.int64)
    starts = np.array([u.off for u in new_units], dtype=np.int64)
    unit_of = np.searchsorted(starts, new_die, side="right") - 1
    # Each unit's index lists the names of the DIEs it holds now (a removed duplicate's name
    # goes to the unit of its canonical copy, once).
    by_unit: dict[int, dict[int, list[tuple[int, int, int | None]]]] = {}
    seen = set()
    for (name, e), die, unit in zip(flat, new_die.tolist(), unit_of.tolist()):
        item = (e.tag, die - int(starts[unit]), e.type_hash)
        if (unit, name, item) not in seen:
            seen.add((unit, name, item))
            by_unit.setdefault(unit, {}).setdefault(name, []).append(item)
    return b"".join(_write(indexes[0].augmentation, int(starts[unit]), by_unit[unit], strings)
                    for unit in sorted(by_unit))


def _write(augmentation: bytes, cu: int, names: dict[int, list[tuple[int, int, int | None]]],
           strings: bytes) -> bytes:
    def text(off: int) -> bytes:
        end = strings.find(b"\0", off)
        if off >= len(strings) or end < 0:
            raise CannotRebuild(f"a name at .debug_str offset 0x{off:x} is outside .debug_str")
        return strings[off:end]

    hashed = sorted(((case_folding_djb_hash(text(off)), off) for off in names), key=lambda x: x[0])
    n_buckets = bucket_count(len(hashed))
    by_bucket: list[list[tuple[int, int]]] = [[] for _ in range(n_buckets)]
    for h, off in hashed:
        by_bucket[h % n_buckets].append((h, off))
    ordered = [item for bucket in by_bucket for item in bucket]
    buckets = []
    pos = 1
    for bucket in by_bucket:
        buckets.append(pos if bucket else 0)
        pos += len(bucket)
    abbrev_of: dict[tuple[int, bool], int] = {}
    abbrevs = bytearray()
    pool = bytearray()
    entry_offs = []
    for _, off in ordered:
        entry_offs.append(len(pool))
        for tag, die, type_hash in names[off]:
            key = (tag, type_hash is not None)
            code = abbrev_of.get(key)
            if code is None:
                code = abbrev_of[key] = len(abbrev_of) + 1
                abbrevs += uleb(code) + uleb(tag) + uleb(DW_IDX_die_offset) + uleb(F.DW_FORM_ref4)
                if type_hash is not None:
                    abbrevs += uleb(DW_IDX_type_hash) + uleb(F.DW_FORM_data8)
                abbrevs += b"\0\0"
            pool += uleb(code) + die.to_bytes(4, "little")
            if type_hash is not None:
                pool += type_hash.to_bytes(8, "little")
        pool += b"\0"
    abbrevs += b"\0"
    aug = augmentation + b"\0" * (-len(augmentation) % 4)
    body = bytearray(struct.pack("<HHIIIIIII", 5, 0, 1, 0, 0, n_buckets, len(ordered), len(abbrevs), len(aug)))
    body += aug
    body += struct.pack("<I", cu)
    body += struct.pack(f"<{n_buckets}I", *buckets)
    body += struct.pack(f"<{len(ordered)}I", *(h for h, _ in ordered))
    body += struct.pack(f"<{len(ordered)}I", *(off for _, off in ordered))
    body += struct.pack(f"<{len(ordered)}I", *entry_offs)
    body += abbrevs
    body += pool
    return struct.pack("<I", len(body)) + bytes(body)
