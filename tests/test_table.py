"""The table phase against the plain per-root loops it replaced: the numpy code (table.py, the
pure path's) and the compiled core (_tablecore.pyx) give the same winners."""
from __future__ import annotations

import numpy as np
import pytest

from linkplugin.merge.expansion import ranks
from linkplugin.merge.hash import UnitAnalysis
from linkplugin.merge import table
from linkplugin.merge.table import _distinct_triples, choose_winners

# Each test runs the table as numpy computes it and, where it is built, as the compiled core does.
PATHS = ["numpy", pytest.param("compiled", marks=pytest.mark.skipif(table._core is None,
                                                                     reason="compiled core not built"))]


@pytest.fixture(params=PATHS)
def path(request, monkeypatch) -> str:
    if request.param == "numpy":
        monkeypatch.setattr(table, "_core", None)
    return request.param


def _reference(analyses: list[UnitAnalysis], keys: list[tuple] | None,
               thread_ranks: list[list[int]] = ()) -> list[tuple[list[int], ...]]:
    """The winners as the loops over roots chose them: the first holder of each hash in gdb's
    expansion order (the lowest unit among equals) that keeps no copy of an ambiguous name, else
    the first holder, wins; pinned roots, roots of a different size
    and the copy of an ambiguous name that most holders gdb expands last hold, kept by the
    lowest of them, stays; so does a root whose winner is in another unit that keeps such a copy
    and that one of ``thread_ranks`` places after the root's unit (the lower unit first among
    equal places)."""
    rank = ranks(keys if keys is not None else [a.gdb_key for a in analyses])
    holders: dict[bytes, list[tuple[int, int, bytes]]] = {}
    for u, a in enumerate(analyses):
        for k in range(len(a.roots)):
            if a.has_name[k]:
                holders.setdefault(a.names[k].tobytes(), []).append((rank[u], u, a.hashes[k].tobytes()))
    keep: dict[bytes, set[int]] = {}
    for key, found in holders.items():
        if len({h for _, _, h in found}) < 2:
            continue
        last = max(r for r, _, _ in found)
        tail = [(u, h) for r, u, h in found if r == last]
        units_of = {h: {u for u, x in tail if x == h} for _, h in tail}
        best = min(units_of, key=lambda h: (-len(units_of[h]), min(units_of[h])))
        keep[key] = {min(units_of[best])}
    # The first holder that keeps no copy of an ambiguous name, else the first holder.
    keepers = set().union(*keep.values())
    winners: dict[bytes, tuple[int, int]] = {}
    for u in sorted(range(len(analyses)), key=lambda u: (u in keepers, rank[u], u)):
        for k in range(len(analyses[u].roots)):
            winners.setdefault(analyses[u].hashes[k].tobytes(), (u, k))
    out = []
    for u, a in enumerate(analyses):
        starts, ends, cu, cd = [], [], [], []
        for k in range(len(a.roots)):
            wu, wk = winners[a.hashes[k].tobytes()]
            kept = a.has_name[k] and u in keep.get(a.names[k].tobytes(), ())
            if (wu, wk) == (u, k) or a.pinned[k] or kept:
                continue
            if wu in keepers and wu != u and any((r[u], u) < (r[wu], wu) for r in thread_ranks):
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
        names = keys[rng.integers(0, len(keys), n)]
        gdb_key = (int(rng.integers(0, 3)), bytes([int(rng.integers(97, 100))]))
        out.append(UnitAnalysis("", roots, roots, ends, hashes[rng.integers(0, len(hashes), n)],
                                rng.random(n) < 0.1, names, rng.random(n) < 0.7, gdb_key))
    return out


def test_choose_winners_same_as_the_loops(path: str) -> None:
    rng = np.random.default_rng(7)
    for trial in range(400):
        analyses = _analyses(rng, shared_prefix=trial % 3 == 0)
        # Keys as a .gdb_index gives them (gdb_index.expansion_keys): no ties, any order.
        keys = [(int(k), 0, 0) for k in rng.permutation(len(analyses))] if trial % 4 == 1 else None
        orders = _orders(rng, len(analyses)) if trial % 5 < 3 else []
        got = [tuple(list(x) for x in r) for r in choose_winners(analyses, keys, orders)]
        assert got == [tuple(r) for r in _reference(analyses, keys, orders)], trial


def _orders(rng: np.random.Generator, n_units: int) -> list[list[int]]:
    """Places of the units in one or two other orders, ties included (expansion.thread_ranks)."""
    return [rng.integers(0, max(1, n_units - 1), n_units).tolist() for _ in range(int(rng.integers(1, 3)))]


def test_tied_last_holders_keep_the_copy_most_of_them_hold(path: str) -> None:
    """gdb prints an ambiguous name from the holder it expands last; among holders it expands at
    the same place (equal first names: the order its sort leaves them in is not predictable) the
    likeliest is a holder of the copy most of them hold, so that copy is the one kept."""
    wide, narrow = np.full((1, 16), 1, np.uint8), np.full((1, 16), 2, np.uint8)
    key = np.full((1, 16), 9, np.uint8)

    def unit(copy: np.ndarray, first_name: bytes) -> UnitAnalysis:
        roots = np.array([10], dtype=np.int64)
        return UnitAnalysis("", roots, roots, roots + 1, copy, np.zeros(1, bool), key, np.ones(1, bool),
                            (1, first_name))

    # Units 0 and 1 are expanded first (the canonical copies); units 2, 3 and 4 tie at the end,
    # the lowest of them holding the copy only it holds there.
    analyses = [unit(narrow, b"a"), unit(wide, b"b"), unit(wide, b"z"), unit(narrow, b"z"), unit(narrow, b"z")]
    dropped = [len(r.starts) for r in choose_winners(analyses)]
    assert dropped == [0, 0, 1, 0, 1]  # unit 3 keeps its narrow copy; unit 2's wide one goes to unit 1


def test_canonical_copies_avoid_units_that_keep_an_ambiguous_name(path: str) -> None:
    """A reference makes gdb expand its target unit early; a unit that keeps the copy of an
    ambiguous name gdb should list from it (its last holder) must not be expanded early, so
    canonical copies go to the first holder that keeps no such copy."""
    narrow, wide, other = (np.full((1, 16), v, np.uint8) for v in (1, 2, 3))
    k_name, j_name = np.full((1, 16), 8, np.uint8), np.full((1, 16), 9, np.uint8)

    def unit(first_name: bytes, *rows: tuple[np.ndarray, np.ndarray]) -> UnitAnalysis:
        roots = np.arange(10, 10 + 2 * len(rows), 2, dtype=np.int64)
        return UnitAnalysis("", roots, roots, roots + 1, np.concatenate([h for h, _ in rows]),
                            np.zeros(len(rows), bool), np.concatenate([n for _, n in rows]),
                            np.ones(len(rows), bool), (1, first_name))

    # Unit 1 is the last holder of name K (its wide copy stays) and the first holder of the
    # other type, which unit 2 also holds: the canonical copy of that type is unit 2's.
    analyses = [unit(b"a", (narrow, k_name)), unit(b"b", (wide, k_name), (other, j_name)),
                unit(b"c", (other, j_name))]
    got = [tuple(list(x) for x in r) for r in choose_winners(analyses)]
    assert got == [([], [], [], []), ([12], [13], [2], [10]), ([], [], [], [])]


def test_keepers_keep_a_type_they_alone_hold_where_gdb_may_expand_them_first(path: str) -> None:
    """A type that only units keeping an ambiguous name's copy hold has its canonical copy in
    one of them; a holder that gdb, on some number of threads, expands before that unit keeps
    its own copy: its reference would make gdb expand the canonical unit earlier than for the
    input, and that unit might then no longer be the last holder of the name it keeps."""
    narrow, wide, other, x, y = (np.full((1, 16), v, np.uint8) for v in (1, 2, 3, 4, 5))
    k_name, j_name, l_name = (np.full((1, 16), v, np.uint8) for v in (7, 8, 9))

    def unit(first_name: bytes, *rows: tuple[np.ndarray, np.ndarray]) -> UnitAnalysis:
        roots = np.arange(10, 10 + 2 * len(rows), 2, dtype=np.int64)
        return UnitAnalysis("", roots, roots, roots + 1, np.concatenate([h for h, _ in rows]),
                            np.zeros(len(rows), bool), np.concatenate([n for _, n in rows]),
                            np.ones(len(rows), bool), (1, first_name))

    # Unit 0 is the last holder of name L, unit 1 of name K: both keep a copy. The type of name
    # J only they hold, and its canonical copy is unit 0's, which gdb expands first in one index.
    analyses = [unit(b"b", (narrow, k_name), (other, j_name), (x, l_name)),
                unit(b"c", (wide, k_name), (other, j_name)),
                unit(b"a", (y, l_name))]
    one_index = [tuple(list(x) for x in r) for r in choose_winners(analyses)]
    assert one_index == [([], [], [], []), ([12], [13], [0], [12]), ([], [], [], [])]
    assert [tuple(list(x) for x in r) for r in choose_winners(analyses, None, [[1, 2, 0]])] == one_index
    # With two indexes gdb may expand unit 1 first: its reference would expand unit 0 early.
    kept = [tuple(list(x) for x in r) for r in choose_winners(analyses, None, [[1, 2, 0], [1, 0, 2]])]
    assert kept == [([], [], [], [])] * 3


def test_compiled_same_as_numpy_with_nested_names(monkeypatch) -> None:
    """Names nested in class roots (``_ambiguous_nested``), integers of 4 and 8 bytes and flags
    as bool or uint8: the compiled table chooses as the numpy one does."""
    if table._core is None:
        pytest.skip("compiled core not built")
    rng = np.random.default_rng(11)
    core = table._core
    for trial in range(300):
        analyses = []
        for a in _analyses(rng, shared_prefix=trial % 3 == 0):
            named = np.flatnonzero(a.has_name)  # types nest in named classes
            k = int(rng.integers(0, 2 * len(named) + 1)) if len(named) else 0
            nested_root = np.sort(rng.choice(named, k)).astype(np.int64) if k else np.zeros(0, np.int64)
            nested_names = np.repeat(rng.integers(0, 3, (k, 1), dtype=np.uint8), 16, axis=1)
            if trial % 2:  # the narrow arrays of a small unit, and uint8 flags
                a = a._replace(roots=a.roots.astype(np.uint32), root_ends=a.root_ends.astype(np.int32),
                               pinned=a.pinned.astype(np.uint8), has_name=a.has_name.astype(np.uint8))
            analyses.append(a._replace(nested_root=nested_root, nested_names=nested_names))
        keys = [(int(k), 0, 0) for k in rng.permutation(len(analyses))] if trial % 4 == 1 else None
        orders = _orders(rng, len(analyses)) if trial % 3 else []
        compiled = [tuple(list(x) for x in r) for r in choose_winners(analyses, keys, orders)]
        monkeypatch.setattr(table, "_core", None)
        reference = [tuple(x.tolist() for x in r) for r in choose_winners(analyses, keys, orders)]
        monkeypatch.setattr(table, "_core", core)
        assert compiled == reference, trial


def test_distinct_triples_packed_and_too_wide_to_pack() -> None:
    """One sort of the three columns packed into an int64, or a lexsort when they need more than
    63 bits: the same sorted distinct rows."""
    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(0, 40))
        a, b, c = (rng.integers(0, int(rng.integers(1, 6)), n).astype(np.int64) for _ in range(3))
        # Small values: one packed sort; a of 41 bits with b of 31: the lexsort.
        for cols in ((a, b, c), (a + (1 << 40), b + (1 << 30), c)):
            got = list(zip(*[col.tolist() for col in _distinct_triples(*cols)]))
            assert got == sorted(set(zip(*[col.tolist() for col in cols]))), trial
