"""The DIE-naming operands of a unit's location lists, from the hash phase, where they are read,
to the sections phase, where they are written.

``targets`` turns a unit's operands (loclists.scan_lists: (position, width, kind, value) tuples)
into what the rewrite phase needs: the unit-relative ones as array('q') rows of 3 (position,
width (< 0: a fixed size), the target's DIE index, or -unit offset - 1 for an offset that is no
DIE), the section-offset ones as patches (position, width, target). The hash phase keeps only
these for the rewrite phase: libgsl's 78,000 operands were 4 MB of Python tuples until then.
``values_at`` gives the unit-relative ones their new values; ``write`` puts those in the section.
Each runs in the compiled core when it is built; the loops here are the pure path, and the
reference (same rows, same errors).
"""
from __future__ import annotations

from array import array
from bisect import bisect_left

from linkplugin.compiled import load_compiled
from linkplugin.dwarf.leb import encode_uleb

_core = load_compiled("linkplugin.merge._rewritecore")

Patch = tuple[int, int, int]
NO_FIT, NOT_A_DIE = 1, 2  # values_at's failures


def targets(ops: list, offs, unit_off: int) -> tuple[array, list[Patch]]:
    """The unit's operands ``ops`` against its DIE offsets ``offs`` (section offsets, sorted)."""
    if not ops:
        return array("q"), []
    if _core is not None:
        return _core.location_targets(ops, _int64(offs), unit_off)
    rows = array("q")
    patches: list[Patch] = []
    for pos, w, kind, v in ops:
        if kind == "s":
            patches.append((pos, w, v))
            continue
        t = bisect_left(offs, v + unit_off)
        rows += array("q", (pos, w if kind == "u" else -w,
                            t if t < len(offs) and offs[t] == v + unit_off else -unit_off - 1))
    return rows, patches


def values_at(rows: array, new_rel) -> tuple[int, array | int]:
    """(0, rows of 3 (position, width, new value)) for the unit's new DIE offsets ``new_rel``;
    else the first failure: (NO_FIT, 0), a new value too wide for its operand, or (NOT_A_DIE,
    the unit's offset)."""
    if not rows:
        return 0, rows
    if _core is not None:
        return _core.values_at(rows, new_rel)
    out = array("q")
    for k in range(0, len(rows), 3):
        pos, w, t = rows[k:k + 3]
        if t < 0:
            return NOT_A_DIE, -t - 1
        value = int(new_rel[t])
        if not _fits(value, w):
            return NO_FIT, 0
        out += array("q", (pos, w, value))
    return 0, out


def write(out: bytearray, rows: array) -> bool:
    """Each row (position, width, value) into ``out``: a ULEB128 padded to ``width`` bytes, or
    ``-width`` little-endian bytes; False if a row lies outside ``out``."""
    if _core is not None:
        return _core.write_operands(out, rows)
    for k in range(0, len(rows), 3):
        pos, w, _ = rows[k:k + 3]
        if pos < 0 or pos + abs(w) > len(out):
            return False
    for k in range(0, len(rows), 3):
        pos, w, value = rows[k:k + 3]
        out[pos:pos + abs(w)] = encode_uleb(value, w) if w > 0 else value.to_bytes(-w, "little")
    return True


def _fits(value: int, width: int) -> bool:
    if value < 0:
        return False
    if width == 0:
        return value == 0  # (no operand has it: zero bytes hold only 0)
    return value < 1 << (7 * width if width > 0 else -8 * width)


def _int64(column):
    """An offsets column as the kernel takes it (int64); the pure path's may be narrower."""
    if isinstance(column, (memoryview, array)) and column.itemsize == 8:
        return column
    return array("q", column)
