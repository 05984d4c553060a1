"""Phase 2 (serial, cheap): the global hash table. For each hash the copy of the unit gdb expands
first wins (expansion.py), the lowest (unit, DIE) among equals.

Units are taken in that order whatever the number of workers that produced their hashes, so
the winners (and the output bytes) never depend on ``jobs``. The compiled core (_tablecore.pyx)
does it in C with a hash table (glibc's libc.so.6: 32 ms against 105, 3.8 MB less at the merge's
peak); the numpy code here, over all units' roots at once (no Python work per root), is its
reference and the pure path's table.
"""
from __future__ import annotations

from array import array

from linkplugin.compiled import load_compiled
from linkplugin.dwarf.forms import DwarfError
from linkplugin.lazy import np
from linkplugin.merge.expansion import ranks
from linkplugin.merge.hash import UnitAnalysis
from linkplugin.record import NamedTuple

# The compiled table (_tablecore.pyx, this module's numpy code as its reference), or None.
_core = load_compiled("linkplugin.merge._tablecore")


def _groups(rows: np.ndarray, prio: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct value, group of each row) of an (n, 16) uint8 array of
    digests; the first row is the one of lowest ``prio`` (a permutation of the rows; default:
    the row's index).

    Sorting by the first 8 bytes alone is enough unless two rows share them and differ after
    (almost never for digests): only then are all 16 bytes sorted. The sort need not be stable:
    each group's first row is taken by a minimum. Temporaries are dropped as soon as they are
    used: the table phase is one of the merge's memory peaks."""
    n = len(rows)
    # A 16-byte digest as one item, its first and last 8 bytes as numbers: gathering rows of
    # this type is one copy per row (a 2-D gather of (n, 2) words was 14x slower on libjvm.so's
    # 1.6 million roots).
    digests = np.ascontiguousarray(rows).view(np.dtype([("lo", np.uint64), ("hi", np.uint64)])).reshape(n)
    order = np.argsort(digests["lo"])
    # One half at a time in sorted order (the whole rows gathered were twice the memory).
    half = digests["lo"][order]
    same = half[1:] == half[:-1]
    half = digests["hi"][order]
    if (same & (half[1:] != half[:-1])).any():
        order = np.lexsort((digests["hi"], digests["lo"]))
        half = digests["lo"][order]
        same = half[1:] == half[:-1]
        half = digests["hi"][order]
        same &= half[1:] == half[:-1]
    del half
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.logical_not(same, out=new[1:])
    del same
    starts = np.flatnonzero(new)
    if not n:
        first = order
    elif prio is None:
        first = np.minimum.reduceat(order, starts)
    else:
        # The row of lowest ``prio`` in each group, as the low half of the least (prio, row) pair.
        if n >= 1 << 31:  # rows and priorities are below n: they must fit the halves
            raise DwarfError(f"{n} type roots: more than this merger can number")
        pairs = prio[order].astype(np.int64, copy=False)
        pairs <<= 32
        pairs |= order
        first = np.minimum.reduceat(pairs, starts) & 0xFFFFFFFF
        del pairs
    # Group numbers in 32 bits while they fit: half the memory of this phase's largest arrays
    # (the table phase is glibc's peak).
    kind = np.int32 if n < 1 << 31 else np.int64
    at = np.cumsum(new, dtype=kind)
    at -= 1
    group = np.empty(n, dtype=kind)
    group[order] = at
    return first, group


def _name_groups(names: list[np.ndarray], has_name: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(the roots that have a name key, the group of each of those: equal for equal keys), from
    each unit's name keys and flags. Only the named rows are joined: joining every root's row
    first held 4 MB more at glibc's peak, which is here."""
    idx = np.flatnonzero(np.concatenate(has_name).astype(bool, copy=False))
    rows = np.concatenate([n[h.astype(bool, copy=False)] for n, h in zip(names, has_name)])
    return idx, _groups(rows)[1]


def _ambiguous_names(unit: np.ndarray, rank: np.ndarray, hash_group: np.ndarray,
                     named: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Which roots (of all units, end to end) keep their copies because gdb's listings would
    show their name differently depending on the copy, so that gdb shows what it showed for
    the input. ``rank``: each root's unit's place in gdb's expansion order; ``hash_group``: equal
    for roots of equal hashes.

    gdb's `info types` prints one entry per file and name: that of the unit it expanded last
    (expansion.py). When copies under one name and file differ (typedefs of different types
    sharing a name: a template alias such as `__type_identity_t` in <type_traits>, a typedef of
    a source compiled twice with different macros; structs declared on different lines or
    whose nested typedefs differ), removing a unit's copy can change which one gdb prints.
    One holder gdb expands last (the greatest ``rank``) keeps its copy, so that gdb prints it
    whatever order it expands the others in. When those last holders hold different copies,
    which of them gdb printed depends on the order its unstable sort left equal names in (see
    expansion.py), which nothing short of gdb's whole index and std::sort predicts: the copy most
    of them hold is kept (the likeliest to be the one gdb printed; then the copy of the lowest
    unit), by the lowest unit holding it. Keeping all of them would not make that order the
    same either: on a
    program whose units tie (libjvm.so: most units' first function is the same static
    initialiser) it kept 218,000 more roots, 22% of .debug_info, for 4 listing entries of
    libstdc++ (BENCHMARKS.md).
    A name key (hash.py ``_name_key``: namespaces, name, file) stands for the name; the root's
    hash for its contents (all the nested entries gdb lists with it). ``named``: the roots with a
    name key and the groups of their keys (``_name_groups``)."""
    keep = np.zeros(len(unit), dtype=bool)
    idx, key = named
    if not len(idx):
        return keep
    nkeys = int(key.max()) + 1
    h = hash_group[idx]
    r = rank[idx]
    u = unit[idx]
    big = np.iinfo(np.int64).max
    hmin = np.full(nkeys, big, dtype=np.int64)
    hmax = np.full(nkeys, -1, dtype=np.int64)
    np.minimum.at(hmin, key, h)
    np.maximum.at(hmax, key, h)
    last = np.full(nkeys, -1, dtype=np.int64)
    np.maximum.at(last, key, r)
    tail = r == last[key]  # the roots of the holders gdb expands last
    # Among those, the copy most of them hold (then: the one of the lowest unit), and the lowest
    # unit holding it keeps its copy.
    t = np.flatnonzero(tail)
    tk, th, tu = _distinct_triples(key[t], h[t], u[t])  # sorted
    pair_new = np.ones(len(tk), dtype=bool)
    pair_new[1:] = (tk[1:] != tk[:-1]) | (th[1:] != th[:-1])
    starts = np.flatnonzero(pair_new)
    # Each (key, hash) pair: the lowest unit holding it, and how many units hold it.
    pair_key, pair_unit = tk[starts], tu[starts]
    count = np.diff(np.append(starts, len(tk)))
    # Each key's copy: the pair most units hold, then the one of the lowest unit.
    most = np.zeros(nkeys, dtype=np.int64)
    np.maximum.at(most, pair_key, count)
    top = count == most[pair_key]
    chosen = np.full(nkeys, big, dtype=np.int64)
    np.minimum.at(chosen, pair_key[top], pair_unit[top])
    chosen[chosen == big] = -1
    differ = hmin[key] != hmax[key]
    keep[idx] = differ & tail & (u == chosen[key])
    return keep


def _distinct_triples(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of three columns of non-negative integers, in (a, b, c) order: one sort
    of the three packed into an int64 when they fit in 63 bits (a lexsort of the three took 0.18 s
    on libjvm.so; np.unique(axis=0) would also load numpy.ma, ~10 ms of start-up)."""
    widths = [max(int(col.max()), 1).bit_length() if len(col) else 1 for col in (b, c)]
    top = max(int(a.max()), 1).bit_length() if len(a) else 1
    if top + sum(widths) <= 63:
        packed = a.astype(np.int64)
        for col, width in zip((b, c), widths):
            packed <<= width
            packed |= col
        packed.sort()
        new = np.ones(len(packed), dtype=bool)
        new[1:] = packed[1:] != packed[:-1]
        packed = packed[new]
        low = packed & ((1 << widths[1]) - 1)
        packed >>= widths[1]
        mid = packed & ((1 << widths[0]) - 1)
        packed >>= widths[0]
        return packed, mid, low
    order = np.lexsort((c, b, a))
    a, b, c = a[order], b[order], c[order]
    new = np.ones(len(a), dtype=bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (c[1:] != c[:-1])
    return a[new], b[new], c[new]


def _ambiguous_nested(analyses: list[UnitAnalysis], base: np.ndarray, unit: np.ndarray, rank: np.ndarray,
                      hash_group: np.ndarray, named: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Which roots also keep their copies for a type nested in them: gdb lists `Outer::inner` on
    its own, from the last unit holding *it*, and only some copies of a class may hold it (a
    member template instantiated in some units: `__alloc_traits<...>::rebind<char>`). A nested
    name is ambiguous when the classes holding it differ, and its last holder keeps its class
    (``_ambiguous_names`` with the nested names as names) where that holder comes before the
    last holders of the class's own name, which ``_ambiguous_names`` already keeps."""
    keep = np.zeros(len(unit), dtype=bool)
    counts = np.array([len(a.nested_root) for a in analyses], dtype=np.int64)
    if not counts.sum():
        return keep
    rows = np.concatenate([a.nested_root for a in analyses]).astype(np.int64) + np.repeat(base[:-1], counts)
    nested = np.concatenate([a.nested_names for a in analyses])
    kept = _ambiguous_names(unit[rows], rank[rows], hash_group[rows],
                            (np.arange(len(rows), dtype=np.int64), _groups(nested)[1]))
    # The last place gdb expands a holder of each root's own name.
    idx, key = named
    last = np.full(int(key.max()) + 1, -1, dtype=np.int64)
    np.maximum.at(last, key, rank[idx])
    class_last = np.full(len(unit), -1, dtype=np.int64)
    class_last[idx] = last[key]
    kept &= rank[rows] < class_last[rows]
    keep[rows[kept]] = True
    return keep


class Removals(NamedTuple):
    """The roots a unit drops, sorted: first DIE, end DIE, and where the canonical copy is."""
    starts: np.ndarray
    ends: np.ndarray
    canon_unit: np.ndarray
    canon_die: np.ndarray

    def numpy(self) -> Removals:
        """The same columns as numpy arrays (the compiled table's are array('q'))."""
        return Removals(*(np.asarray(x) for x in self))


def choose_winners(analyses: list[UnitAnalysis], keys: list[tuple] | None = None,
                   thread_ranks: list[list[int]] | tuple = ()) -> list[Removals]:
    """The roots each unit drops, and where their canonical copies are.

    The canonical copy of a root is that of the holder gdb 13 expands first (expansion.py; the
    lowest unit among equals). When gdb expands a unit that references a DIE of a unit it has
    not expanded yet, it expands that unit right after (dwarf2/read.c ``follow_die_offset``),
    earlier than for the input, and the unit gdb expands last decides what it lists for an
    ambiguous name (``_ambiguous_names``); with the first holder, gdb has expanded it already
    when it reaches a unit that references it.

    Except a holder that keeps a copy of an ambiguous name: canonical copies go to the first
    holder that keeps none (``_away_from_kept``). A reference expands its target unit earlier
    than gdb's order would, and only a unit that keeps such a copy is listed differently for
    being expanded earlier (it may no longer be the last holder of that name). gdb's order
    depends on the number of threads it indexes with (one index per thread, each over a run of
    units split by their sizes: gdbsupport/parallel-for.h, dwarf2/read.c
    ``dwarf2_build_psymtabs_hard``), and expansion.py models one index: in any other order the
    references still land on units whose place changes no listing. libstdc++ at two threads,
    entries moved and lost: 19 and 9 with the first holder, 5 and 3 with this (BENCHMARKS.md).

    A type that only such units hold has its canonical copy in one of them, which a reference
    may then expand early after all. gdb's order depends on the number of threads it indexes
    on; ``thread_ranks`` are the units' places in the orders of some numbers of threads
    (expansion.thread_ranks): a root of a unit that gdb expands before its canonical copy's
    unit in one of those orders keeps its copy (``_pulling``; among units of equal places the
    lower first, as in the one-index order). libstdc++, entries moved / lost at 0, 2, 4 and 8
    threads: 1 / 1, 5 / 3, 9 / 8, 21 / 19 without; 4 / 4, 0 / 0, 2 / 1, 19 / 17 with the orders
    of 2 and 4 threads, for 9.5 KB (BENCHMARKS.md, session 14).

    ``keys`` (default: each unit's ``gdb_key``) place the units in that order; with a .gdb_index
    gdb walks the index instead (``gdb_index.expansion_keys``). Either way it expands main's
    unit first, follows its references, and answers a lookup from the units it expanded, newest
    first; the rebuilt .gdb_index also names the canonical copies' units (``gdb_index.rewrite``)."""
    n_units = len(analyses)
    rank_list = ranks(keys if keys is not None else [a.gdb_key for a in analyses])
    if _core is not None:
        return [Removals(*r) for r in _core.choose_winners(
            rank_list, [a.roots for a in analyses], [a.root_ends for a in analyses], [a.pinned for a in analyses],
            [a.hashes for a in analyses], [a.names for a in analyses], [a.has_name for a in analyses],
            [a.nested_root for a in analyses], [a.nested_names for a in analyses], list(thread_ranks),
            [a.followed for a in analyses])]
    analyses = [as_numpy(a) for a in analyses]
    unit_rank = np.array(rank_list, dtype=np.int64).reshape(-1)
    counts = np.array([len(a.roots) for a in analyses], dtype=np.int64)
    base = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if base[-1] == 0:
        return no_removals(n_units)
    n = int(base[-1])
    unit = np.repeat(np.arange(n_units, dtype=np.int32 if n_units < 1 << 31 else np.int64), counts)
    # Each root's place when units are taken by (rank, unit) and roots in order within a unit.
    unit_order = np.lexsort((np.arange(n_units), unit_rank))
    sorted_base = np.zeros(n_units, dtype=np.int64)
    sorted_base[unit_order] = np.concatenate([[0], np.cumsum(counts[unit_order])[:-1]])
    prio = np.arange(n, dtype=np.int64)
    prio += (sorted_base - base[:-1])[unit]
    first, group = _groups(np.concatenate([a.hashes for a in analyses]), prio)
    root_rank = unit_rank[unit]
    # The roots' name keys grouped once, for their own names and for the names nested in them.
    named = _name_groups([a.names for a in analyses], [a.has_name for a in analyses])
    keep = _ambiguous_names(unit, root_rank, group, named)
    keep |= _ambiguous_nested(analyses, base, unit, root_rank, group, named)
    del named, root_rank
    keeper = np.zeros(n_units, dtype=bool)  # the units that keep such a copy
    keeper[unit[keep]] = True
    first = _away_from_kept(first, group, prio, unit, keeper)
    del prio
    win = first[group]
    del first, group
    # From here the arrays go as soon as they are used: the end of this phase is the merge's
    # peak on inputs of many small units (glibc's libc.so.6).
    drop = win != np.arange(n)
    drop &= ~np.concatenate([a.pinned for a in analyses]).astype(bool, copy=False)
    drop &= ~keep
    del keep
    drop &= ~_pulling(unit, win, keeper, thread_ranks)
    drop &= ~_followed_rows(analyses, base, n, unit, win)
    # Equal hashes imply equal subtrees; the size check guards the DIE-by-DIE mapping.
    roots = np.concatenate([a.roots for a in analyses], dtype=np.int64)
    size = np.concatenate([a.root_ends for a in analyses], dtype=np.int64)
    size -= roots
    drop &= size[win] == size
    del size
    d = np.flatnonzero(drop)
    del drop
    win = win[d]
    canon_unit, canon_die = unit[win].astype(np.int64), roots[win]
    del win, unit
    starts = roots[d]
    del roots
    # (joined again rather than kept: the sizes alive until here were 0.6 MiB more at glibc's peak)
    stops = np.concatenate([a.root_ends for a in analyses], dtype=np.int64)[d]
    cut = np.searchsorted(d, base).tolist()  # each unit's rows, as d is sorted
    return [Removals(starts[a:b], stops[a:b], canon_unit[a:b], canon_die[a:b]) for a, b in zip(cut, cut[1:])]


def _followed_rows(analyses: list[UnitAnalysis], base: np.ndarray, n: int, unit: np.ndarray, win: np.ndarray
                   ) -> np.ndarray:
    """Which roots keep their copies because a DW_AT_specification or DW_AT_abstract_origin of
    their unit names them (``UnitAnalysis.followed``) and their canonical copy is in a later
    unit: no such reference points forward.

    binutils' addr2line (BFD's dwarf2.c ``find_abstract_instance``) follows such a reference into
    a unit it has not read by reading every unit up to it, and the search for the address never
    looks in the units it read on the way. Asked one address at a time (a fresh process each),
    binutils 2.40 answered 96 of 325 addresses spread over libstdc++'s code differently from the
    input (``??:?``, or a function without its file and line), and 2.44, which reads every unit
    on its way (``comp_unit_may_contain_address``), 256; on glibc's libc.so.6 a unit without
    code, read on the way to any address, named declarations 29 units on. With this, none.
    Moving the canonical copy to the unit instead (to its first unit, or its first that keeps no
    copy for an ambiguous name) cost fewer bytes on libstdc++ (45 KB against 64) but made gdb
    expand those units earlier: 18 entries moved and lost at 0 indexing threads, against 4
    (BENCHMARKS.md, session 31)."""
    followed = np.zeros(n, dtype=bool)
    for u, a in enumerate(analyses):
        followed[base[u] + np.asarray(a.followed, dtype=np.int64)] = True
    return followed & (unit[win] > unit)


def _away_from_kept(first: np.ndarray, group: np.ndarray, prio: np.ndarray, unit: np.ndarray,
                    keeper: np.ndarray) -> np.ndarray:
    """Each group's winner: its first row in ``prio`` order whose unit keeps no copy for an
    ambiguous name (``keeper``: by unit), else ``first`` (see choose_winners)."""
    if not keeper.any():
        return first
    rows = np.empty(len(prio), dtype=np.int64)
    rows[prio] = np.arange(len(prio), dtype=np.int64)  # the rows in prio order
    rows = rows[~keeper[unit[rows]]]
    groups, at = np.unique(group[rows], return_index=True)  # each group's first such row
    first = first.copy()
    first[groups] = rows[at]
    return first


def _pulling(unit: np.ndarray, win: np.ndarray, keeper: np.ndarray, thread_ranks: list[list[int]] | tuple
             ) -> np.ndarray:
    """Which roots keep their copies because their canonical copy (row ``win``) is in another
    unit that keeps a copy for an ambiguous name, and gdb expands theirs before that unit in one
    of the orders ``thread_ranks`` (equal places: the lower unit first): the reference would
    expand it earlier than gdb does for the input (see choose_winners). Counting equal places
    as "may come first" instead kept 82 KB on libstdc++ and 237 KB on libipopt, for listings
    no better over 0, 2 and 4 threads (BENCHMARKS.md, session 14)."""
    out = np.zeros(len(unit), dtype=bool)
    if not len(thread_ranks) or not keeper.any():
        return out
    win_unit = unit[win]
    candidate = keeper[win_unit] & (win_unit != unit)
    for r in thread_ranks:
        r = np.asarray(r, dtype=np.int64)
        out |= candidate & ((r[unit] < r[win_unit]) | ((r[unit] == r[win_unit]) & (unit < win_unit)))
    return out


def as_numpy(a: UnitAnalysis) -> UnitAnalysis:
    """The analysis with numpy columns (the compiled hash phase's are array.array: 16 bytes a
    root for the keys)."""
    def rows(x: object) -> np.ndarray:
        return np.frombuffer(x, dtype=np.uint8).reshape(-1, 16)

    def flags(x: object) -> np.ndarray:  # (b"" for a unit left as it is: np.asarray would make a 0-d array)
        return np.frombuffer(x, dtype=np.uint8)
    return a._replace(offs=np.asarray(a.offs), roots=np.asarray(a.roots), root_ends=np.asarray(a.root_ends),
                      pinned=flags(a.pinned), hashes=rows(a.hashes), names=rows(a.names), has_name=flags(a.has_name),
                      nested_root=np.asarray(a.nested_root), nested_names=rows(a.nested_names))


def no_removals(n_units: int) -> list[Removals]:
    """Every unit keeps all its roots."""
    empty = array("q")
    return [Removals(empty, empty, empty, empty) for _ in range(n_units)]
