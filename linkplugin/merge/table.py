"""Phase 2 (serial, cheap): the global hash table. For each hash the copy of the unit gdb expands
first wins (expansion.py), the lowest (unit, DIE) among equals.

Units are taken in that order whatever the number of workers that produced their hashes, so
the winners (and the output bytes) never depend on ``jobs``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linkplugin.merge.expansion import ranks
from linkplugin.merge.hash import UnitAnalysis


def _ambiguous_names(analyses: list[UnitAnalysis], rank: list[int]) -> dict[bytes, set[int]]:
    """Names of roots that gdb's listings would show differently depending on the copy, and
    the units that keep their copies so that gdb shows what it showed for the input.

    gdb's `info types` prints one entry per file and name: that of the unit it expanded last
    (expansion.py). When copies under one name and file differ (typedefs of different types
    sharing a name: a template alias such as `__type_identity_t` in <type_traits>, a typedef of
    a source compiled twice with different macros; structs declared on different lines or
    whose nested typedefs differ), removing a unit's copy can change which one gdb prints.
    The holders gdb expands last (the greatest ``rank``) keep their copies: one of them when
    they all hold the same copy, so that gdb prints it whatever order it expands them in;
    every one of them when they differ, since which of them gdb expands last depends on the
    order its unstable sort leaves equal names in, in the input as in the output.
    A name key (hash.py ``_name_key``, its first 16 bytes: namespaces, name, file) stands for
    the name; the root's hash for its contents (all the nested entries gdb lists with it)."""
    holders: dict[bytes, list[tuple[int, int, bytes]]] = {}
    for u, a in enumerate(analyses):
        for name, h in zip(a.names, a.hashes):
            if name is not None:
                holders.setdefault(name[:16], []).append((rank[u], u, h))
    keep: dict[bytes, set[int]] = {}
    for key, found in holders.items():
        if len({h for _, _, h in found}) < 2:
            continue
        last = max(r for r, _, _ in found)
        tail = [(u, h) for r, u, h in found if r == last]
        keep[key] = {min(u for u, _ in tail)} if len({h for _, h in tail}) == 1 else {u for u, _ in tail}
    return keep


def _key(name: bytes | None) -> bytes | None:
    return name[:16] if name is not None else None


class Removals(NamedTuple):
    """The roots a unit drops, sorted: first DIE, end DIE, and where the canonical copy is."""
    starts: np.ndarray
    ends: np.ndarray
    canon_unit: np.ndarray
    canon_die: np.ndarray


def choose_winners(analyses: list[UnitAnalysis], indexed: bool = False) -> list[Removals]:
    """The roots each unit drops, and where their canonical copies are.

    The canonical copy of a root is that of the holder gdb 13 expands first (expansion.py; the
    lowest unit among equals). When gdb expands a unit that references a DIE of a unit it has
    not expanded yet, it expands that unit right after (dwarf2/read.c ``follow_die_offset``),
    earlier than for the input, and the unit gdb expands last decides what it lists for an
    ambiguous name (``_ambiguous_names``); with the first holder, gdb has expanded it already
    when it reaches a unit that references it.

    With an ``indexed`` input (.gdb_index, .debug_names) gdb expands the units its index names
    instead, and gdb-add-index names a type under the first unit holding it: the lowest holder
    keeps the canonical copy, so a lookup through the rebuilt index still reaches it."""
    rank = list(range(len(analyses))) if indexed else ranks([a.gdb_key for a in analyses])
    winners: dict[bytes, tuple[int, int]] = {}
    for u in sorted(range(len(analyses)), key=lambda u: (rank[u], u)):
        for k, h in enumerate(analyses[u].hashes):
            winners.setdefault(h, (u, k))
    ambiguous = _ambiguous_names(analyses, rank)
    out = []
    for u, a in enumerate(analyses):
        starts, ends, cu, cd = [], [], [], []
        roots = a.roots.tolist()
        rends = a.root_ends.tolist()
        for k, h in enumerate(a.hashes):
            wu, wk = winners[h]
            if (wu, wk) == (u, k) or a.pinned[k] or u in ambiguous.get(_key(a.names[k]), ()):
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
