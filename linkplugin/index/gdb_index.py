""".gdb_index (versions 7 and 8, as gdb and lld write them): read, and rewrite for new unit offsets.

Layout (all little-endian): a header of six 32-bit offsets (version, CU list,
TU list, address area, symbol table, constant pool), then

- CU list: (offset, length) of every compilation unit, 64-bit each, in .debug_info order;
- TU list: (offset in .debug_types, type offset, signature) of every type unit, 64-bit each;
- address area: (low, high, CU index) as 64, 64, 32 bits;
- symbol table: an open-addressing hash table of (name offset, CU vector offset) pairs into
- the constant pool: CU vectors (count, then values) and the names.

A CU vector value is a unit index (TUs count after the CUs) in bits 0-23,
the symbol kind in bits 28-30 and the static bit in 31. Type merging keeps
every name, its kind and its static bit; only where units start changes (and
new partial units may appear), so the rewrite recomputes the CU and TU lists
and the unit indexes from the merged .debug_info and keeps the hash table,
names and attribute bits as they were.
"""
from __future__ import annotations

import struct

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.units import UnitHeader
from linkplugin.index import CannotRebuild
from linkplugin.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Iterator

VERSIONS = (7, 8)
INDEX_MASK = 0x00FFFFFF


class GdbIndex(NamedTuple):
    version: int
    cus: list[tuple[int, int]]  # (offset, length)
    tus: list[tuple[int, int, int]]  # (offset, type offset, signature)
    addresses: list[tuple[int, int, int]]  # (low, high, unit index)
    symbols: bytes  # the hash table, as it is
    pool: bytes  # the constant pool, as it is
    symbol_off: int  # where the table was, to find CU vectors by their pool offsets


def read(data: bytes) -> GdbIndex:
    if len(data) < 24:
        raise CannotRebuild("shorter than its header")
    version, cu_off, tu_off, addr_off, sym_off, pool_off = struct.unpack_from("<6I", data)
    if version not in VERSIONS:
        raise CannotRebuild(f"version {version} (only 7 and 8 are rebuilt)")
    if not 24 <= cu_off <= tu_off <= addr_off <= sym_off <= pool_off <= len(data):
        raise CannotRebuild("its header offsets are out of order")
    if (tu_off - cu_off) % 16 or (addr_off - tu_off) % 24 or (sym_off - addr_off) % 20 or (pool_off - sym_off) % 8:
        raise CannotRebuild("a table size is not a whole number of entries")
    cus = [struct.unpack_from("<QQ", data, p) for p in range(cu_off, tu_off, 16)]
    tus = [struct.unpack_from("<QQQ", data, p) for p in range(tu_off, addr_off, 24)]
    addresses = [struct.unpack_from("<QQI", data, p) for p in range(addr_off, sym_off, 20)]
    return GdbIndex(version, cus, tus, addresses, data[sym_off:pool_off], data[pool_off:], sym_off)


def _vectors(index: GdbIndex) -> Iterator[tuple[int, int, int, tuple[int, ...]]]:
    """(slot, name offset, CU vector offset, the vector's values) of every used slot of the
    symbol table, in slot order; CannotRebuild for a vector past the constant pool."""
    pool = index.pool
    for slot, (name_off, vec_off) in enumerate(struct.iter_unpack("<II", index.symbols)):
        if name_off == 0 and vec_off == 0:
            continue
        if vec_off + 4 > len(pool):
            raise CannotRebuild(f"a CU vector at 0x{vec_off:x} lies past its constant pool")
        count = struct.unpack_from("<I", pool, vec_off)[0]
        if vec_off + 4 + 4 * count > len(pool):
            raise CannotRebuild(f"a CU vector at 0x{vec_off:x} lies past its constant pool")
        yield slot, name_off, vec_off, struct.unpack_from(f"<{count}I", pool, vec_off + 4)


def cu_vectors(index: GdbIndex) -> list[tuple[str, list[int]]]:
    """Every (name, CU vector) of the symbol table, in slot order (for tests and tools)."""
    out = []
    for _, name_off, _, values in _vectors(index):
        end = index.pool.index(b"\0", name_off)
        out.append((index.pool[name_off:end].decode("utf-8", "replace"), list(values)))
    return out


def rewrite(data: bytes, old_units: list[UnitHeader], new_units: list[UnitHeader], new_off_of: dict[int, int],
            new_types: list[UnitHeader] | None = None, new_types_info: bytes = b"",
            new_info: bytes = b"", moved: dict[int, dict[str, tuple[int, ...]]] | None = None) -> bytes:
    """``data`` (a .gdb_index of the input) for the merged output.

    ``new_off_of`` maps each input unit's offset to its output offset; units
    of the output that no input unit maps to (new partial units) are listed
    too, so gdb can find them when a unit imports them. ``moved`` gives, per
    input unit (its place in ``old_units``), the names of the types it dropped
    and the units holding their canonical copies (``merge.index_names.moved_names``):
    a type or variable entry naming the unit, or naming something inside such a
    type, also names those units, as gdb-add-index of the output does. Raises
    CannotRebuild if the index does not describe the input's units.
    """
    index = read(data)
    if index.tus:
        # Rewritten like the CU list, gdb 13 stops on an internal error (read.h: m_length != 0)
        # when a lookup reaches a type unit, though gdb-add-index writes the same lists.
        raise CannotRebuild("it lists type units")
    old_cu = _cu_places(index, old_units)  # CU index -> place in old_units
    for off, _ in index.cus:
        if off not in new_off_of:
            raise CannotRebuild(f"its CU list names 0x{off:x}, which does not start a unit of .debug_info")
    # The output's units, split as gdb splits them: type units of DWARF 5 .debug_info go to
    # the TU list (after any .debug_types units), everything else is a CU.
    cus = [u for u in new_units if u.unit_type not in (F.DW_UT_type, F.DW_UT_split_type)]
    info_tus = [u for u in new_units if u.unit_type in (F.DW_UT_type, F.DW_UT_split_type)]
    cu_index = {u.off: k for k, u in enumerate(cus)}
    old_to_new: dict[int, int] = {}
    for k, (off, _) in enumerate(index.cus):
        old_to_new[k] = cu_index[new_off_of[off]]
    # Type units: .debug_types is not rewritten, so its entries stay; DWARF 5 type units in
    # .debug_info are found by signature.
    tus: list[tuple[int, int, int]] = []
    by_signature = {_signature(new_info, u): u for u in info_tus} if info_tus else {}
    for k, (off, type_off, sig) in enumerate(index.tus):
        unit = by_signature.get(sig)
        if unit is not None:
            tus.append((unit.off, _type_offset(new_info, unit), sig))
        elif info_tus:
            raise CannotRebuild(f"its TU list names signature 0x{sig:x}, which no type unit has")
        else:
            tus.append((off, type_off, sig))
        old_to_new[len(index.cus) + k] = len(cus) + k

    def remap(value: int) -> int:
        old = value & INDEX_MASK
        if old not in old_to_new:
            raise CannotRebuild(f"a unit index {old} is out of range")
        return (value & ~INDEX_MASK) | old_to_new[old]

    addresses = [(lo, hi, remap(i)) for lo, hi, i in index.addresses]
    pool = bytearray(index.pool)
    symbols = bytearray(index.symbols)
    cu_of = {place: k for k, place in enumerate(old_cu)}
    seen: set[int] = set()
    for slot, name_off, vec_off, values in _vectors(index):
        extra = _followed(index.pool, name_off, values, old_cu, cu_of, moved) if moved else []
        # gdb keeps each vector sorted by its whole 32-bit values.
        if extra:  # a vector of its own, after the pool (others may share the old one)
            new = sorted({remap(v) for v in (*values, *extra)})
            struct.pack_into("<I", symbols, 8 * slot + 4, len(pool))
            pool += struct.pack(f"<{len(new) + 1}I", len(new), *new)
        elif vec_off not in seen:
            seen.add(vec_off)
            struct.pack_into(f"<{len(values)}I", pool, vec_off + 4, *sorted(remap(v) for v in values))
    return _write(index.version, [(u.off, u.end - u.off) for u in cus], tus, addresses, bytes(symbols), bytes(pool))


def _cu_places(index: GdbIndex, old_units: list[UnitHeader]) -> list[int]:
    """The place in ``old_units`` of each unit of the index's CU list; CannotRebuild where an
    entry does not start a compilation unit of .debug_info."""
    position = {u.off: k for k, u in enumerate(old_units) if u.unit_type != F.DW_UT_type}
    for off, _ in index.cus:
        if off not in position:
            raise CannotRebuild(f"its CU list names 0x{off:x}, which does not start a unit of .debug_info")
    return [position[off] for off, _ in index.cus]


_KIND_SHIFT, _KIND_MASK = 28, 7
_KINDS_FOLLOWED = (1, 2)  # GDB_INDEX_SYMBOL_KIND_TYPE and _VARIABLE (enumerators); not functions,
# whose definitions stay in their units


def _followed(pool: bytes, name_off: int, values: tuple[int, ...], old_cu: list[int], cu_of: dict[int, int],
              moved: dict[int, dict[str, tuple[int, ...]]]) -> list[int]:
    """The values (old CU indexes, same attribute bits) to add to a symbol's vector: for each
    type or variable value whose unit dropped the named type, or the type it lies in, the
    units of the canonical copies."""
    name = None
    out = []
    for value in values:
        if (value >> _KIND_SHIFT) & _KIND_MASK not in _KINDS_FOLLOWED:
            continue
        names = moved.get(old_cu[value & INDEX_MASK]) if (value & INDEX_MASK) < len(old_cu) else None
        if not names:
            continue
        if name is None:
            end = pool.find(b"\0", name_off)
            if end < 0:
                raise CannotRebuild(f"a symbol name at 0x{name_off:x} of its constant pool has no end")
            name = pool[name_off:end].decode("utf-8", "replace").replace(" ", "")
        for prefix in _prefixes(name):
            for place in names.get(prefix, ()):
                if place in cu_of:
                    out.append((value & ~INDEX_MASK) | cu_of[place])
    return out


def _prefixes(name: str) -> list[str]:
    """``a::b<c::d>::e`` -> [``a::b<c::d>::e``, ``a::b<c::d>``, ``a``]: the name and the scopes it
    lies in, innermost first, split at ``::`` outside template arguments and parentheses."""
    out = [name]
    if "::" not in name:
        return out
    if "<" not in name and "(" not in name:
        parts = name.split("::")
        return out + ["::".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
    depth = 0
    for k, ch in enumerate(name):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == ":" and depth == 0 and name.startswith("::", k) and k > 0 and name[k - 1] != ":":
            out.append(name[:k])
    return [name, *reversed(out[1:])]


_KIND_PHASE = {0: 1, 3: 1, 2: 2, 1: 3}  # symbol kind -> listing phase (expansion.FUNCTION, VARIABLE, TYPE)


def expansion_keys(data: bytes, old_units: list[UnitHeader], main_units: list[int]) -> list[tuple[int, int, int]]:
    """Each unit's place (``expansion.ranks`` keys) in the order gdb 13 expands them for its
    listings when it reads this index: the units holding ``main`` first (gdb looks main up at
    start), then ``info functions .``, ``info variables .`` and ``info types .`` each walk the
    symbol table by slot (dwarf2/read.c dw2_expand_symtabs_matching_symbol sorts the matches by
    slot) and expand the units of each symbol's vector, in vector order, whose entries are of
    the listed kind (dw2_expand_marked_cus); a unit is placed where it is expanded first. No
    ties, unlike the name order gdb follows without an index. Raises CannotRebuild as
    ``rewrite`` does."""
    index = read(data)
    cu_unit = _cu_places(index, old_units)
    # (phase, slot, place) packed into one int, compared as the tuple would be.
    never = 4 << 56  # expansion.NEVER
    best = [never] * len(cu_unit)
    phase_of = [(_KIND_PHASE.get(kind, 5) << 56) for kind in range(8)]  # 5: "other", never listed
    for slot, _, vec_off, values in _vectors(index):
        if len(values) >= 1 << 24:  # (places are packed in 24 bits below)
            raise CannotRebuild(f"a CU vector at 0x{vec_off:x} lies past its constant pool")
        base = slot << 24
        for place, value in enumerate(values):
            cu = value & INDEX_MASK
            if cu < len(best):  # (not a type unit)
                key = phase_of[(value >> _KIND_SHIFT) & _KIND_MASK] | base | place
                if key < best[cu]:
                    best[cu] = key
    keys = [(4, 0, 0)] * len(old_units)
    for cu, key in enumerate(best):
        if key >> 56 <= 3:
            keys[cu_unit[cu]] = (key >> 56, (key >> 24) & 0xFFFFFFFF, key & 0xFFFFFF)
    for k in main_units:
        keys[k] = (0, 0, 0)  # expansion.MAIN
    return keys


def _signature(info: bytes, unit: UnitHeader) -> int:
    # DWARF 5 type unit header: ... abbrev offset, then the 8-byte signature, then the type offset.
    at = unit.abbrev_field + unit.offset_size
    return int.from_bytes(info[at:at + 8], "little")


def _type_offset(info: bytes, unit: UnitHeader) -> int:
    at = unit.abbrev_field + unit.offset_size + 8
    return int.from_bytes(info[at:at + unit.offset_size], "little")


def _write(version: int, cus: list[tuple[int, int]], tus: list[tuple[int, int, int]],
           addresses: list[tuple[int, int, int]], symbols: bytes, pool: bytes) -> bytes:
    cu_off = 24
    tu_off = cu_off + 16 * len(cus)
    addr_off = tu_off + 24 * len(tus)
    sym_off = addr_off + 20 * len(addresses)
    pool_off = sym_off + len(symbols)
    out = bytearray(struct.pack("<6I", version, cu_off, tu_off, addr_off, sym_off, pool_off))
    for entry in cus:
        out += struct.pack("<QQ", *entry)
    for tu in tus:
        out += struct.pack("<QQQ", *tu)
    for entry in addresses:
        out += struct.pack("<QQI", *entry)
    out += symbols
    out += pool
    return bytes(out)
