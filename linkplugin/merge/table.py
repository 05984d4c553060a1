"""Phase 2 (serial, cheap): the global hash table. For each hash the lowest (unit, DIE) wins.

Units are laid end to end in unit order whatever the number of workers that produced their
hashes, so the winners (and the output bytes) never depend on ``jobs``. Everything is numpy over
all units' roots at once: no Python work per root.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linkplugin.merge.hash import UnitAnalysis


def _groups(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lowest row of each distinct value, group of each row) of an (n, 16) uint8 array of digests.

    Sorting by the first 8 bytes alone is enough unless two rows share them and differ after
    (almost never for digests): only then are all 16 bytes sorted. The sort need not be stable:
    each group's lowest row is taken by a minimum."""
    words = np.ascontiguousarray(rows).view(np.uint64)
    order = np.argsort(words[:, 0])
    w0 = words[order, 0]
    w1 = words[order, 1]
    same = w0[1:] == w0[:-1]
    if (same & (w1[1:] != w1[:-1])).any():
        order = np.lexsort((words[:, 1], words[:, 0]))
        w0 = words[order, 0]
        w1 = words[order, 1]
        same = (w0[1:] == w0[:-1]) & (w1[1:] == w1[:-1])
    new = np.empty(len(order), dtype=bool)
    new[:1] = True
    new[1:] = ~same
    starts = np.flatnonzero(new)
    first = np.minimum.reduceat(order, starts) if len(order) else order
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    return first, group


def _ambiguous_names(unit: np.ndarray, hashes: np.ndarray, names: np.ndarray, has_name: np.ndarray) -> np.ndarray:
    """Which roots (of all units, end to end) keep their copy because gdb's listings would show
    their name differently depending on the copy.

    gdb's `info types` prints one entry per file and name: that of the unit it expanded last.
    When typedefs of different types share a name and file (a template alias such as
    `__type_identity_t` in <type_traits>, a typedef of a source compiled twice with different
    macros), or structs of one name are declared on different lines, removing one unit's copy
    changes which one gdb prints. gdb lists the copy of the last unit holding the name (it
    expands units in order and searches the newest first): that unit keeps its copies of such
    names. A name key (hash.py ``_name_key``) (16 bytes: namespaces, name, file; gdb does not tell
    a C struct from a typedef of the same name apart there) is followed by 1 for a typedef, whose
    text is its type (compared by hash), or by 0 and the declaring line for any other type (all
    gdb shows of it)."""
    keep = np.zeros(len(unit), dtype=bool)
    idx = np.flatnonzero(has_name)
    if not len(idx):
        return keep
    shown = names[idx, 16:].copy()
    typedef = shown[:, 0] == 1
    shown[typedef, 1:] = hashes[idx[typedef]]
    first, group = _groups(names[idx, :16])
    differ = np.zeros(len(first), dtype=bool)
    differ[group[(shown != shown[first[group]]).any(axis=1)]] = True
    last = np.full(len(first), -1, dtype=np.int64)
    np.maximum.at(last, group, unit[idx])
    keep[idx] = differ[group] & (last[group] == unit[idx])
    return keep


class Removals(NamedTuple):
    """The roots a unit drops, sorted: first DIE, end DIE, and where the canonical copy is."""
    starts: np.ndarray
    ends: np.ndarray
    canon_unit: np.ndarray
    canon_die: np.ndarray


def choose_winners(analyses: list[UnitAnalysis]) -> list[Removals]:
    counts = [len(a.roots) for a in analyses]
    base = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if base[-1] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return [Removals(empty, empty, empty, empty) for _ in analyses]
    unit = np.repeat(np.arange(len(analyses), dtype=np.int64), counts)
    roots = np.concatenate([a.roots for a in analyses]).astype(np.int64)
    ends = np.concatenate([a.root_ends for a in analyses]).astype(np.int64)
    hashes = np.concatenate([a.hashes for a in analyses])
    pinned = np.concatenate([a.pinned for a in analyses]).astype(bool)
    keep = _ambiguous_names(unit, hashes, np.concatenate([a.names for a in analyses]),
                            np.concatenate([a.has_name for a in analyses]).astype(bool))
    first, group = _groups(hashes)
    win = first[group]
    size = ends - roots
    # Equal hashes imply equal subtrees; the size check guards the DIE-by-DIE mapping.
    drop = (win != np.arange(len(win))) & ~pinned & ~keep & (size[win] == size)
    out = []
    for u in range(len(analyses)):
        sl = slice(base[u], base[u + 1])
        d = np.flatnonzero(drop[sl]) + base[u]
        out.append(Removals(roots[d], ends[d], unit[win[d]], roots[win[d]]))
    return out
