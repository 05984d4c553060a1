"""The table phase (numpy over every unit's roots) against the plain per-root loop it replaced."""
from __future__ import annotations

import numpy as np

from linkplugin.merge.hash import UnitAnalysis
from linkplugin.merge.table import choose_winners


def _reference(analyses: list[UnitAnalysis]) -> list[tuple[list[int], list[int], list[int], list[int]]]:
    """The winners as the loop over roots chose them: the first (unit, root) of each hash wins;
    pinned roots, roots of a different size and the last unit's copies of an ambiguous name stay."""
    first: dict[bytes, bytes] = {}
    last: dict[bytes, int] = {}
    differ: set[bytes] = set()
    for u, a in enumerate(analyses):
        for k in range(len(a.roots)):
            if not a.has_name[k]:
                continue
            name = a.names[k].tobytes()
            key = name[:16]
            shown = b"\1" + a.hashes[k].tobytes() if name[16] == 1 else name[16:]
            if first.setdefault(key, shown) != shown:
                differ.add(key)
            last[key] = u
    winners: dict[bytes, tuple[int, int]] = {}
    for u, a in enumerate(analyses):
        for k in range(len(a.roots)):
            winners.setdefault(a.hashes[k].tobytes(), (u, k))
    out = []
    for u, a in enumerate(analyses):
        starts, ends, cu, cd = [], [], [], []
        for k in range(len(a.roots)):
            wu, wk = winners[a.hashes[k].tobytes()]
            key = a.names[k].tobytes()[:16]
            if (wu, wk) == (u, k) or a.pinned[k] or (a.has_name[k] and key in differ and last[key] == u):
                continue
            w = analyses[wu]
            if w.root_ends[wk] - w.roots[wk] != a.root_ends[k] - a.roots[k]:
                continue
            starts.append(int(a.roots[k]))
            ends.append(int(a.root_ends[k]))
            cu.append(wu)
            cd.append(int(w.roots[wk]))
        out.append((starts, ends, cu, cd))
    return out


def _analyses(rng: np.random.Generator, shared_prefix: bool) -> list[UnitAnalysis]:
    hashes = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    if shared_prefix:  # digests equal in their first 8 bytes: the slow grouping path
        hashes[:, :8] = hashes[0, :8]
    keys = rng.integers(0, 256, (5, 16), dtype=np.uint8)
    out = []
    for _ in range(int(rng.integers(1, 7))):
        n = int(rng.integers(0, 30))
        roots = np.sort(rng.choice(1000, n, replace=False)).astype(np.int64)
        ends = roots + rng.integers(1, 3, n)
        names = np.zeros((n, 33), dtype=np.uint8)
        names[:, :16] = keys[rng.integers(0, len(keys), n)]
        names[:, 16] = rng.integers(0, 2, n)
        names[names[:, 16] == 0, 17] = rng.integers(0, 2, int((names[:, 16] == 0).sum()))
        out.append(UnitAnalysis("", roots, roots, ends, hashes[rng.integers(0, len(hashes), n)],
                                rng.random(n) < 0.1, names, rng.random(n) < 0.7))
    return out


def test_choose_winners_same_as_the_loop() -> None:
    rng = np.random.default_rng(7)
    for trial in range(300):
        analyses = _analyses(rng, shared_prefix=trial % 3 == 0)
        got = [tuple(x.tolist() for x in r) for r in choose_winners(analyses)]
        assert got == [tuple(r) for r in _reference(analyses)], trial
