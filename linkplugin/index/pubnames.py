""".debug_pubnames, .debug_pubtypes and their GNU forms (gcc -ggnu-pubnames, read by lld --gdb-index).

Each set names one unit (offset and length in .debug_info) and lists
(DIE offset within the unit, [GNU: one byte of kind and static bit], name).
After merging, an entry whose DIE was a removed duplicate names the canonical
DIE, which lives in another unit: the entry moves to that unit's set (once).
A set of a split-DWARF skeleton unit names DIEs of the unit's .dwo file: its
entries stay as they are, and only the unit's offset and length change.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from linkplugin.dwarf.units import UnitHeader
from linkplugin.index import CannotRebuild
from linkplugin.lazy import np


def read(data: bytes, gnu: bool) -> list[tuple[int, list[tuple[int, int, bytes]]]]:
    """[(unit offset, [(absolute DIE offset, GNU flags, name)])] of every set."""
    sets = []
    p = 0
    while p < len(data):
        if len(data) - p < 4 or not any(data[p:]):
            break
        length = struct.unpack_from("<I", data, p)[0]
        size, p = (8, p + 12) if length == 0xFFFFFFFF else (4, p + 4)
        if size == 8:
            length = struct.unpack_from("<Q", data, p - 8)[0]
        end = p + length
        if end > len(data) or length < 2 + 2 * size:
            raise CannotRebuild(f"the set at 0x{p:x} runs past the section")
        unit = int.from_bytes(data[p + 2:p + 2 + size], "little")
        q = p + 2 + 2 * size
        entries = []
        while q < end:
            off = int.from_bytes(data[q:q + size], "little")
            q += size
            if off == 0:
                break
            flags = 0
            if gnu:
                flags = data[q]
                q += 1
            stop = data.find(b"\0", q, end)
            if stop < 0:
                raise CannotRebuild("a name runs past its set")
            entries.append((unit + off, flags, data[q:stop]))
            q = stop + 1
        sets.append((unit, entries))
        p = end
    return sets


def rewrite(data: bytes, gnu: bool, old_units: list[UnitHeader], new_units: list[UnitHeader],
            new_off_of: dict[int, int], resolve: Callable[[np.ndarray], np.ndarray],
            split: frozenset[int] = frozenset()) -> bytes:
    """The section for the merged .debug_info; ``split``: the old offsets of the split-DWARF
    skeleton units (``hash.SPLIT_SKELETON``)."""
    sets = read(data, gnu)
    starts = np.array([u.off for u in new_units], dtype=np.int64)
    by_unit: dict[int, list[tuple[int, int, bytes]]] = {}
    flat: list[tuple[int, int, bytes]] = []
    for unit, entries in sets:
        if unit not in new_off_of:
            raise CannotRebuild(f"a set names 0x{unit:x}, which does not start a unit")
        kept = by_unit.setdefault(int(np.searchsorted(starts, new_off_of[unit])), [])
        if unit in split:
            kept += [(die - unit, flags, name) for die, flags, name in entries]
        else:
            flat += entries
    new = resolve(np.array([e[0] for e in flat], dtype=np.int64)) if flat else np.zeros(0, dtype=np.int64)
    units = np.searchsorted(starts, new, side="right") - 1
    seen = set()
    for (_, flags, name), die, unit in zip(flat, new.tolist(), units.tolist()):
        if (die, flags, name) not in seen:
            seen.add((die, flags, name))
            by_unit.setdefault(unit, []).append((die - int(starts[unit]), flags, name))
    out = bytearray()
    for unit in sorted(by_unit):
        u = new_units[unit]
        size = u.offset_size
        body = bytearray(struct.pack("<H", 2) + u.off.to_bytes(size, "little") + (u.end - u.off).to_bytes(size, "little"))
        for rel, flags, name in by_unit[unit]:
            body += rel.to_bytes(size, "little") + (bytes([flags]) if gnu else b"") + name + b"\0"
        body += bytes(size)
        out += (struct.pack("<I", len(body)) if size == 4 else b"\xff\xff\xff\xff" + struct.pack("<Q", len(body)))
        out += body
    return bytes(out)
