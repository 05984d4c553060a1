"""Phase 4 (serial, cheap): place the units, resolve every cross-unit reference, assemble
.debug_info and .debug_abbrev."""
from __future__ import annotations

from array import array

from linkplugin.arrays import flat_rows
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.units import UnitHeader
from linkplugin.lazy import np
from linkplugin.memory import release_freed_memory
from linkplugin.merge import fastrewrite
from linkplugin.merge.rewrite import UnitOutput
from linkplugin.merge.table import Removals


def offsets(per_unit: list) -> array | np.ndarray:
    """The old offsets of every unit's DIEs in one array, as the hash phase keeps them (uint32
    when they fit, else int64) and without a copy at the Resolver: made once the per-unit arrays
    are the only other holders, so that they can go (on libjvm.so each copy is 84 MB)."""
    if all(isinstance(o, array) and o.typecode == "I" for o in per_unit):
        out = array("I", [0]) * sum(len(o) for o in per_unit)
        at = 0
        for o in per_unit:
            out[at:at + len(o)] = o
            at += len(o)
        return out
    if all(o.dtype == np.uint32 for o in map(np.asarray, per_unit)):
        return np.concatenate([np.asarray(o) for o in per_unit]) if per_unit else np.zeros(0, dtype=np.uint32)
    return (np.concatenate([np.asarray(o).astype(np.int64, copy=False) for o in per_unit]) if per_unit
            else np.zeros(0, np.int64))


class Resolver:
    """Old .debug_info offset of a DIE -> its new offset, following removed duplicates to the
    matching DIE of their canonical copy. Every DIE's new offset is computed once, in C (or with
    numpy on the pure path): resolving the references one by one was most of the layout phase."""

    def __init__(self, units: list[UnitHeader], offs: np.ndarray, counts: list[int], removals: list[Removals],
                 outputs: list[UnitOutput], new_unit_off: list[int]) -> None:
        """``offs``: every DIE's old offset, unit after unit (``counts[u]`` DIEs in unit ``u``), as
        ``offsets`` makes them."""
        self.units = units
        self.offs = offs
        if fastrewrite.available():
            # -1 for a removed DIE, without a program-sized temporary per step; uint32 when the
            # new section allows (half the memory: libjvm.so has 21 million DIEs)
            narrow = sum(len(o.body) for o in outputs) < 0xFFFFFFFF
            new = fastrewrite.new_offsets([o.new_rel for o in outputs], array("q", new_unit_off), len(offs), narrow)
            # A DIE inside a removed duplicate: the same DIE of the canonical copy.
            if any(len(rem.starts) for rem in removals):
                first = array("q", [0]) * len(counts)  # global index of each unit's DIE 0
                for u in range(1, len(counts)):
                    first[u] = first[u - 1] + counts[u - 1]
                if not fastrewrite.redirect(new, *fastrewrite.removal_rows(removals, first)):
                    raise DwarfError("a canonical type was removed (internal error)")
            self.new = new
            return
        counts_a = np.array(counts, dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(counts_a)[:-1]]).astype(np.int64)  # global index of each unit's DIE 0
        rel = np.concatenate([np.asarray(o.new_rel) for o in outputs]).astype(np.int64)
        new = np.repeat(np.array(new_unit_off, dtype=np.int64), counts_a) + rel
        # A DIE inside a removed duplicate: the same DIE of the canonical copy (a unit copied
        # verbatim removed nothing: its DIEs all have rel >= 0 and keep their own place). All
        # units' removals at once: numpy calls per unit were most of this phase.
        nrem = np.array([len(rem.starts) for rem in removals], dtype=np.int64)
        if nrem.sum():
            starts = np.concatenate([np.asarray(rem.starts) for rem in removals], dtype=np.int64)
            lens = np.concatenate([np.asarray(rem.ends) for rem in removals], dtype=np.int64)
            lens -= starts
            starts += first[np.repeat(np.arange(len(removals), dtype=np.int64), nrem)]
            canon = first[np.concatenate([np.asarray(rem.canon_unit) for rem in removals], dtype=np.int64)]
            canon += np.concatenate([np.asarray(rem.canon_die) for rem in removals], dtype=np.int64)
            step = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
            s = np.repeat(starts, lens) + step
            d = np.repeat(canon, lens) + step
            moved = rel[s] < 0
            s, d = s[moved], d[moved]
            if (rel[d] < 0).any():
                raise DwarfError("a canonical type was removed (internal error)")
            new[s] = new[d]
        self.new = new

    def many(self, old: np.ndarray) -> np.ndarray:
        """New offsets of the DIEs at the old offsets ``old`` (numpy: the index rebuilds')."""
        if not len(old):
            return old
        # The compiled path's arrays, seen by numpy: each on its own, since the offsets are
        # numpy already where one unit took the pure decoder and the new offsets came from C.
        if not isinstance(self.offs, np.ndarray):
            self.offs = np.asarray(self.offs)
        if not isinstance(self.new, np.ndarray):
            self.new = np.asarray(self.new)
        lo, hi = self.units[0].off, self.units[-1].end
        outside = (old < lo) | (old >= hi)
        if outside.any():
            raise DwarfError(f"a reference to 0x{int(old[outside][0]):x} is outside .debug_info")
        # a needle of the offsets' own type: searchsorted would otherwise convert the whole array
        d = np.minimum(np.searchsorted(self.offs, old.astype(self.offs.dtype)), len(self.offs) - 1)
        bad = self.offs[d] != old
        if bad.any():
            raise DwarfError(f"a reference to 0x{int(old[bad][0]):x} does not point to a DIE")
        return self.new[d].astype(np.int64)

    def __call__(self, old: int) -> int:
        return int(self.many(np.array([old], dtype=np.int64))[0])


def assemble(units: list[UnitHeader], outputs: list[UnitOutput], offs: np.ndarray, counts: list[int],
             removals: list[Removals], shared_abbrev: bytes = b""
             ) -> tuple[bytearray, bytes, list[int], Resolver]:
    """(new .debug_info, new .debug_abbrev, new unit offsets, resolver). A unit output with an
    empty ``abbrev`` uses ``shared_abbrev``, the table shared by the rewritten units; ``offs`` and
    ``counts`` are the old DIE offsets as ``offsets`` joins them and the DIEs per unit.

    ``outputs`` is consumed: each unit's new offsets go once the resolver holds them all, and its
    body once copied. The new .debug_info grows as the bodies are appended (a buffer of its final
    size made at once would be zeroed, all of it resident before the first body is freed), and is
    returned as the bytearray it was built in: on a large program the bodies and a bytes copy of
    the result would otherwise each hold another .debug_info in memory."""
    new_unit_off = []
    pos = 0
    for out in outputs:
        new_unit_off.append(pos)
        pos += len(out.body)
    resolve = Resolver(units, offs, counts, removals, outputs, new_unit_off)
    release_freed_memory()  # the resolver's temporaries
    # Identical tables (the shared one, those of units copied as they are) are written once.
    abbrev = bytearray()
    table_at: dict[bytes, int] = {}
    info = bytearray()
    patches: list[array] = []  # (position in the unit, width, old target) rows, end to end
    bases: list[int] = []
    # Bytes of bodies copied between two releases of their memory: a release walks the whole heap.
    step = max(_RELEASE_STEP, pos // 8)
    released = 0
    for u, out in enumerate(outputs):
        base = new_unit_off[u]
        info += out.body
        outputs[u] = out = out._replace(body=b"", new_rel=_NO_DIES)
        own = out.abbrev or shared_abbrev
        at = table_at.get(own)
        if at is None:
            at = table_at[own] = len(abbrev)
            abbrev += own
        hdr = units[u]
        f = base + hdr.abbrev_field - hdr.off
        info[f:f + hdr.offset_size] = at.to_bytes(hdr.offset_size, "little")
        if len(out.patches):  # a list of tuples, or array('q') rows of 3 from the compiled copy loop
            patches.append(out.patches if isinstance(out.patches, array) else flat_rows(out.patches))
            bases.append(base)
        if len(info) - released >= step:  # the copied bodies' memory, back to the system
            release_freed_memory()
            released = len(info)
    if patches and fastrewrite.available():
        bad = fastrewrite.write_patches(info, patches, bases, resolve)
        if bad is not None:
            raise _patch_error(*bad)
    elif patches:
        rows = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1, 3) for p in patches])
        rows[:, 0] += np.repeat(np.array(bases, dtype=np.int64), [len(p) // 3 for p in patches])
        write_patches(info, rows, resolve)
    return info, bytes(abbrev), new_unit_off, resolve


_NO_DIES = array("i")
_RELEASE_STEP = 1 << 20


def write_patches(info: bytearray, patches: array | np.ndarray, resolve: Resolver) -> None:
    """Write the new offsets of the (position, width, old offset) rows of ``patches`` into
    ``info``: in C (fastrewrite.write_patches) on rows end to end in an array('q'), or, on the
    pure path, one numpy scatter per width (a merged program has a million of them) on an (n, 3)
    array or the same flat rows."""
    if fastrewrite.available():
        bad = fastrewrite.write_patches(info, [patches], [0], resolve)
        if bad is not None:
            raise _patch_error(*bad)
        return
    patches = np.asarray(patches, dtype=np.int64).reshape(-1, 3)
    new = resolve.many(patches[:, 2])
    buf = np.frombuffer(info, dtype=np.uint8)
    for w in np.unique(patches[:, 1]).tolist():
        sel = patches[:, 1] == w
        vals = new[sel]
        if w < 8 and (vals >> (8 * w)).any():
            raise DwarfError(f"a new .debug_info offset does not fit in {w} bytes")
        le = vals.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :w]
        buf[patches[sel, 0][:, None] + np.arange(w)] = le


def _patch_error(kind: int, value: int) -> DwarfError:
    """The DwarfError of a problem found by fastrewrite.write_patches (as write_patches says it)."""
    if kind == 1:
        return DwarfError(f"a reference to 0x{value:x} is outside .debug_info")
    if kind == 2:
        return DwarfError(f"a reference to 0x{value:x} does not point to a DIE")
    if kind == 3:
        return DwarfError(f"a new .debug_info offset does not fit in {value} bytes")
    return DwarfError("a patch lies outside the new .debug_info (internal error)")
