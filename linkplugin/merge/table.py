"""Phase 2 (serial, cheap): the global hash table. For each hash the lowest (unit, DIE) wins.

Units are inserted in unit order whatever the number of workers that produced their hashes, so
the winners (and the output bytes) never depend on ``jobs``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linkplugin.merge.hash import UnitAnalysis


def _ambiguous_names(analyses: list[UnitAnalysis]) -> dict[bytes, int]:
    """Names of roots that gdb's listings would show differently depending on the copy.

    gdb's `info types` prints one entry per file and name: that of the unit it expanded last.
    When typedefs of different types share a name and file (a template alias such as
    `__type_identity_t` in <type_traits>, a typedef of a source compiled twice with different
    macros), or structs of one name are declared on different lines, removing one unit's copy
    changes which one gdb prints. gdb lists the copy of the last unit holding the name (it
    expands units in order and searches the newest first): that unit keeps its copies, and the
    result maps each such name to that unit. A name key (hash.py ``_name_key``)
    (16 bytes: namespaces, name, file; gdb does not tell a C struct from a typedef of the same
    name apart there) is followed by 1 for a typedef, whose text is its type (compared by hash),
    or by 0 and the declaring line for any other type (all gdb shows of it)."""
    first: dict[bytes, bytes] = {}
    last: dict[bytes, int] = {}
    differ: set[bytes] = set()
    for u, a in enumerate(analyses):
        for name, h in zip(a.names, a.hashes):
            if name is None:
                continue
            key = name[:16]
            shown = b"\1" + h if name[16] == 1 else name[16:]
            if first.setdefault(key, shown) != shown:
                differ.add(key)
            last[key] = u
    return {key: last[key] for key in differ}


def _key(name: bytes | None) -> bytes | None:
    return name[:16] if name is not None else None


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
            if (wu, wk) == (u, k) or a.pinned[k] or ambiguous.get(_key(a.names[k])) == u:
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
