"""Phase 2 (serial, cheap): the global hash table. For each hash the lowest (unit, DIE) wins.

Units are inserted in unit order whatever the number of workers that produced their hashes, so
the winners (and the output bytes) never depend on ``jobs``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linkplugin.merge.hash import UnitAnalysis


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
    out = []
    for u, a in enumerate(analyses):
        starts, ends, cu, cd = [], [], [], []
        roots = a.roots.tolist()
        rends = a.root_ends.tolist()
        for k, h in enumerate(a.hashes):
            wu, wk = winners[h]
            if (wu, wk) == (u, k) or a.pinned[k]:
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
