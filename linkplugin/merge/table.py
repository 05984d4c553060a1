"""Phase 2 (serial, cheap): the global hash table. For each hash the lowest (unit, DIE) wins.

Units are inserted in unit order whatever the number of workers that produced their hashes, so
the winners (and the output bytes) never depend on ``jobs``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linkplugin.merge.hash import UnitAnalysis


def _ambiguous_names(analyses: list[UnitAnalysis]) -> set[bytes]:
    """Names (with namespaces and declaring file) that different types share.

    gdb's `info types/functions/variables` print one entry per file and name: that of the unit
    it expanded last. When different types share a name and file (a template alias such as
    `__type_identity_t` in <type_traits>, a typedef of one source compiled twice with different
    macros), removing one unit's copy changes which one gdb prints; every unit keeps its own."""
    first: dict[bytes, bytes] = {}
    out: set[bytes] = set()
    for a in analyses:
        for name, h in zip(a.names, a.hashes):
            if name is not None and first.setdefault(name, h) != h:
                out.add(name)
    return out


class Removals(NamedTuple):
    """The roots a unit drops, sorted: first DIE, end DIE, and where the canonical copy is."""
    starts: np.ndarray
    ends: np.ndarray
    canon_unit: np.ndarray
    canon_die: np.ndarray


def choose_winners(analyses: list[UnitAnalysis]) -> list[Removals]:
    winners: dict[bytes, tuple[int, int]] = {}
    for u, a in enumerate(analyses):
        for k, h in enumerate(a.hashes):
            winners.setdefault(h, (u, k))
    ambiguous = _ambiguous_names(analyses)
    out = []
    for u, a in enumerate(analyses):
        starts, ends, cu, cd = [], [], [], []
        roots = a.roots.tolist()
        rends = a.root_ends.tolist()
        for k, h in enumerate(a.hashes):
            wu, wk = winners[h]
            if (wu, wk) == (u, k) or a.pinned[k] or a.names[k] in ambiguous:
                continue
            w = analyses[wu]
            # Equal hashes imply equal subtrees; the size check guards the DIE-by-DIE mapping.
            if w.root_ends[wk] - w.roots[wk] != rends[k] - roots[k]:
                continue
            starts.append(roots[k])
            ends.append(rends[k])
            cu.append(wu)
            cd.append(int(w.roots[wk]))
        out.append(Removals(*(np.array(x, dtype=np.int64) for x in (starts, ends, cu, cd))))
    return out
