# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The table phase's compiled core: ``table.choose_winners`` over every unit's roots in C.

table.py (numpy) is the reference: the same winners and kept copies, so the same output
bytes (tests/test_table.py runs both). Where the reference sorts the 16-byte digests to group
equal ones, this groups them in a hash table in the order the winners are chosen (units by gdb's
expansion rank, then unit, roots in order), so each group's first row is its winner: no sort,
and no numpy (whose import is 14 MiB and 60 ms of a small input's run). Group numbers differ
from the reference's; only their equality is used.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort
from libc.string cimport memcpy, memset
from cpython.array cimport array, clone
from cpython.buffer cimport PyBUF_FORMAT, PyBuffer_Release, PyObject_GetBuffer

from linkplugin.dwarf.forms import DwarfError

cdef array _INT64 = array("q")


cdef inline uint64_t _slot_hash(uint64_t lo, uint64_t hi) nogil:
    return (lo ^ (hi * 0x9E3779B97F4A7C15ULL) ^ (lo >> 31)) * 0xBF58476D1CE4E5B9ULL


cdef class _Groups:
    """Equal 16-byte digests numbered in the order they are added, and each group's first row.
    The table itself (``slots``, the groups' digests) goes with ``done``; ``first`` stays."""
    cdef int32_t* slots
    cdef uint64_t* digests  # two words per group
    cdef uint64_t mask
    cdef int bits
    cdef int32_t* first    # group -> its first row
    cdef Py_ssize_t n      # groups so far

    def __cinit__(self, Py_ssize_t rows):
        cdef Py_ssize_t cap = 16
        self.bits = 4
        while cap < rows + rows // 2:
            cap <<= 1
            self.bits += 1
        self.mask = cap - 1
        self.slots = <int32_t*> malloc(cap * sizeof(int32_t))
        self.digests = <uint64_t*> malloc((2 * rows + 2) * sizeof(uint64_t))
        self.first = <int32_t*> malloc((rows + 1) * sizeof(int32_t))
        if self.slots == NULL or self.first == NULL or self.digests == NULL:
            raise MemoryError()
        memset(self.slots, 0xFF, cap * sizeof(int32_t))
        self.n = 0

    def __dealloc__(self):
        self.done()
        free(self.first)

    cdef void done(self) noexcept nogil:
        free(self.slots)
        free(self.digests)
        self.slots = NULL
        self.digests = NULL

    cdef inline int32_t add(self, int32_t row, const uint8_t* digest) noexcept nogil:
        """The group of ``row``, whose digest is the 16 bytes at ``digest``."""
        cdef uint64_t lo, hi
        memcpy(&lo, digest, 8)
        memcpy(&hi, digest + 8, 8)
        cdef uint64_t at = _slot_hash(lo, hi) >> (64 - self.bits)
        cdef int32_t g
        while True:
            g = self.slots[at]
            if g < 0:
                g = <int32_t> self.n
                self.slots[at] = g
                self.first[g] = row
                self.digests[2 * g] = lo
                self.digests[2 * g + 1] = hi
                self.n += 1
                return g
            if self.digests[2 * g] == lo and self.digests[2 * g + 1] == hi:
                return g
            at = (at + 1) & self.mask


# A unit's inputs, one buffer view each (views[V_COUNT * unit + V_*]).
DEF V_ROOTS = 0
DEF V_ENDS = 1
DEF V_PINNED = 2
DEF V_HASHES = 3
DEF V_NAMES = 4
DEF V_HAS_NAME = 5
DEF V_NESTED_ROOT = 6
DEF V_NESTED_NAMES = 7
DEF V_COUNT = 8


cdef int _view(object obj, Py_buffer* view, Py_ssize_t count, Py_ssize_t size, uint8_t* held) except -1:
    """``obj``'s buffer in ``view`` (``held`` set: the caller releases it): ``count`` items of
    ``size`` bytes (size 0: integers of 4 or 8 bytes, the kind then returned: 8, 4 for int32,
    -4 for uint32)."""
    cdef bytes fmt
    PyObject_GetBuffer(obj, view, PyBUF_FORMAT)
    held[0] = 1
    if size:
        if view.len != count * size:
            raise ValueError(f"a table input of {view.len} bytes where {count * size} were expected")
        return size
    fmt = view.format if view.format != NULL else b"B"
    fmt = fmt[len(fmt) - 1:]  # the type code after any byte-order mark
    if view.len != count * view.itemsize or view.itemsize not in (4, 8) or fmt not in b"qQlLiI":
        raise ValueError(f"a table input of {view.len} bytes ({fmt!r}) for {count} integers")
    return -4 if fmt == b"I" else view.itemsize


cdef inline int64_t _int(const Py_buffer* view, int kind, Py_ssize_t k) noexcept nogil:
    if kind == 8:
        return (<const int64_t*> view.buf)[k]
    if kind == 4:
        return (<const int32_t*> view.buf)[k]
    return (<const uint32_t*> view.buf)[k]


cdef int _cmp_u64(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t*> a)[0], y = (<const uint64_t*> b)[0]
    return (x > y) - (x < y)


cdef int _ambiguous(Py_ssize_t nrows, const int32_t* row_unit, const int64_t* unit_rank, const int32_t* row_group,
                    const int32_t* row_key, Py_ssize_t nkeys, uint8_t* keep, int64_t* key_last) except -1:
    """table._ambiguous_names over ``nrows`` rows (unit, hash group, name key or -1; the rank is
    the unit's): each kept row's flag set in ``keep``; ``key_last`` (if not NULL) receives each
    key's last rank."""
    cdef int32_t* start = <int32_t*> malloc((nkeys + 1) * sizeof(int32_t))
    cdef int32_t* members = <int32_t*> malloc((nrows + 1) * sizeof(int32_t))
    cdef uint64_t* pairs = <uint64_t*> malloc((nrows + 1) * sizeof(uint64_t))
    cdef Py_ssize_t r, k, j, a, b, c, npairs, d
    cdef int32_t g, hmin, hmax, chosen, low, best_low
    cdef int64_t last
    cdef Py_ssize_t count, best
    try:
        if start == NULL or members == NULL or pairs == NULL:
            raise MemoryError()
        with nogil:
            memset(start, 0, (nkeys + 1) * sizeof(int32_t))
            for r in range(nrows):
                if row_key[r] >= 0:
                    start[row_key[r] + 1] += 1
            for k in range(nkeys):
                start[k + 1] += start[k]
            # members of key k: members[start[k]:start[k + 1]], in row order
            for r in range(nrows):
                k = row_key[r]
                if k >= 0:
                    members[start[k]] = <int32_t> r
                    start[k] += 1
            for k in range(nkeys - 1, -1, -1):
                start[k + 1] = start[k]
            start[0] = 0
            for k in range(nkeys):
                a, b = start[k], start[k + 1]
                last = -1
                hmin = hmax = row_group[members[a]]
                for j in range(a, b):
                    g = row_group[members[j]]
                    if g < hmin:
                        hmin = g
                    if g > hmax:
                        hmax = g
                    if unit_rank[row_unit[members[j]]] > last:
                        last = unit_rank[row_unit[members[j]]]
                if key_last != NULL:
                    key_last[k] = last
                if hmin == hmax:
                    continue
                # The holders gdb expands last: the copy most of them hold (then the one of the
                # lowest unit), kept by the lowest unit holding it.
                npairs = 0
                for j in range(a, b):
                    r = members[j]
                    if unit_rank[row_unit[r]] == last:
                        pairs[npairs] = (<uint64_t> row_group[r]) << 32 | <uint64_t> row_unit[r]
                        npairs += 1
                qsort(pairs, npairs, sizeof(uint64_t), _cmp_u64)
                best, best_low = -1, -1
                j = 0
                while j < npairs:
                    c = j
                    count = 0
                    while c < npairs and (pairs[c] >> 32) == (pairs[j] >> 32):
                        if c == j or pairs[c] != pairs[c - 1]:
                            count += 1
                        c += 1
                    low = <int32_t> ((pairs[j] << 32) >> 32)
                    if count > best or (count == best and low < best_low):
                        best, best_low = count, low
                    j = c
                chosen = best_low
                for j in range(a, b):
                    r = members[j]
                    if unit_rank[row_unit[r]] == last and row_unit[r] == chosen:
                        keep[r] = 1
    finally:
        free(start)
        free(members)
        free(pairs)
    return 0


def choose_winners(list unit_rank, list roots, list root_ends, list pinned, list hashes, list names,
                   list has_name, list nested_root, list nested_names, list thread_ranks, list followed):
    """table.choose_winners's result for units whose roots, root ends (integers), pinned flags
    (bytes), 16-byte hashes, 16-byte name keys, name flags (bytes), nested roots (integers) and
    nested name keys (16 bytes) are given per unit, as numpy arrays, array.array or bytes, and
    for the units' places in other orders (``thread_ranks``: lists of integers, a place per
    unit), and the roots (indexes) of each unit that its DW_AT_specification or
    DW_AT_abstract_origin name (``followed``): a list of (starts, ends, canon_unit, canon_die)
    of array('q') per unit.

    Nothing per root is copied but what the choice needs (unit, group, name key, flags: 13
    bytes a root) and, while it is built, the hash table: this phase is the merge's peak on
    inputs of many small units."""
    cdef Py_ssize_t n_units = len(roots), u, k, n = 0, m = 0, cnt, row, j, w, b0
    cdef Py_buffer* views = NULL
    cdef uint8_t* held = NULL       # which views are held
    cdef int8_t* kinds = NULL        # _view's kind of each unit's roots and root ends, and nested roots
    cdef int64_t* base = NULL
    cdef int64_t* rank_of_unit = NULL
    cdef int32_t* row_unit = NULL
    cdef int32_t* row_group = NULL
    cdef int32_t* name_key = NULL   # per row: its name key, or -1
    cdef uint8_t* keep = NULL       # per row: 1 pinned, 2 kept for a name
    cdef int64_t* key_last = NULL
    cdef int32_t* nest_row = NULL
    cdef int32_t* nest_unit = NULL
    cdef int32_t* nest_group = NULL
    cdef int32_t* nest_key = NULL
    cdef uint8_t* nest_keep = NULL
    cdef uint8_t* keeper = NULL     # per unit: it keeps a copy for an ambiguous name
    cdef uint8_t* fixed = NULL      # per group: its winner is away from those units
    cdef uint8_t* row_followed = NULL  # per row: a DW_AT_specification or DW_AT_abstract_origin of its unit names it
    cdef int64_t* other_rank = NULL  # per order of thread_ranks, per unit: its place
    cdef Py_ssize_t n_orders = len(thread_ranks), o
    cdef bint pulled
    cdef int32_t g
    cdef const uint8_t* p
    cdef const uint8_t* flags
    cdef _Groups groups, keys, nested
    cdef int pass_, nkind
    cdef int64_t r_root, r_end, w_root, w_end
    cdef Py_ssize_t wu, at
    cdef array a_st, a_en, a_cu, a_cd
    if not (len(unit_rank) == len(root_ends) == len(pinned) == len(hashes) == len(names) == len(has_name)
            == len(nested_root) == len(nested_names) == len(followed) == n_units) or \
            any(len(r) != n_units for r in thread_ranks):
        raise ValueError("table inputs of different unit counts")
    try:
        views = <Py_buffer*> calloc(V_COUNT * n_units + 1, sizeof(Py_buffer))
        kinds = <int8_t*> calloc(3 * n_units + 1, 1)
        held = <uint8_t*> calloc(V_COUNT * n_units + 1, 1)
        base = <int64_t*> malloc((n_units + 1) * sizeof(int64_t))
        rank_of_unit = <int64_t*> malloc((n_units + 1) * sizeof(int64_t))
        other_rank = <int64_t*> malloc((n_orders * n_units + 1) * sizeof(int64_t))
        if views == NULL or kinds == NULL or held == NULL or base == NULL or rank_of_unit == NULL or other_rank == NULL:
            raise MemoryError()
        for o in range(n_orders):
            for u in range(n_units):
                other_rank[o * n_units + u] = thread_ranks[o][u]
        for u in range(n_units):
            base[u] = n
            cnt = len(roots[u])
            n += cnt
            rank_of_unit[u] = unit_rank[u]
            at = V_COUNT * u
            kinds[3 * u] = _view(roots[u], &views[at + V_ROOTS], cnt, 0, &held[at + V_ROOTS])
            kinds[3 * u + 1] = _view(root_ends[u], &views[at + V_ENDS], cnt, 0, &held[at + V_ENDS])
            _view(pinned[u], &views[at + V_PINNED], cnt, 1, &held[at + V_PINNED])
            _view(hashes[u], &views[at + V_HASHES], cnt, 16, &held[at + V_HASHES])
            _view(names[u], &views[at + V_NAMES], cnt, 16, &held[at + V_NAMES])
            _view(has_name[u], &views[at + V_HAS_NAME], cnt, 1, &held[at + V_HAS_NAME])
            k = len(nested_root[u])
            m += k
            kinds[3 * u + 2] = _view(nested_root[u], &views[at + V_NESTED_ROOT], k, 0, &held[at + V_NESTED_ROOT])
            _view(nested_names[u], &views[at + V_NESTED_NAMES], k, 16, &held[at + V_NESTED_NAMES])
        base[n_units] = n
        if n >= (1 << 31) or m >= (1 << 31):
            raise DwarfError(f"{n} type roots: more than this merger can number")
        if n == 0:
            return [(clone(_INT64, 0, False),) * 4 for u in range(n_units)]
        row_unit = <int32_t*> malloc((n + 1) * sizeof(int32_t))
        row_group = <int32_t*> malloc((n + 1) * sizeof(int32_t))
        name_key = <int32_t*> malloc((n + 1) * sizeof(int32_t))
        keep = <uint8_t*> malloc(n + 1)
        if row_unit == NULL or row_group == NULL or name_key == NULL or keep == NULL:
            raise MemoryError()

        # Hash groups, rows added in the winners' order: units by (rank, unit), roots in order.
        order = sorted(range(n_units), key=lambda x: (unit_rank[x], x))
        groups = _Groups(n)
        for u in order:
            b0 = base[u]
            p = <const uint8_t*> views[V_COUNT * u + V_HASHES].buf
            flags = <const uint8_t*> views[V_COUNT * u + V_PINNED].buf
            for k in range(base[u + 1] - b0):
                row_unit[b0 + k] = <int32_t> u
                row_group[b0 + k] = groups.add(<int32_t> (b0 + k), p + 16 * k)
                keep[b0 + k] = 1 if flags[k] else 0
        groups.done()

        # Ambiguous names: their last holders keep a copy (table._ambiguous_names).
        keys = _Groups(n)
        for u in range(n_units):
            b0 = base[u]
            p = <const uint8_t*> views[V_COUNT * u + V_NAMES].buf
            flags = <const uint8_t*> views[V_COUNT * u + V_HAS_NAME].buf
            for k in range(base[u + 1] - b0):
                name_key[b0 + k] = keys.add(<int32_t> (b0 + k), p + 16 * k) if flags[k] else -1
        keys.done()
        key_last = <int64_t*> malloc((keys.n + 1) * sizeof(int64_t))
        nest_keep = <uint8_t*> calloc(max(n, m) + 1, 1)
        if key_last == NULL or nest_keep == NULL:
            raise MemoryError()
        _ambiguous(n, row_unit, rank_of_unit, row_group, name_key, keys.n, nest_keep, key_last)
        for row in range(n):
            if nest_keep[row]:
                keep[row] |= 2

        # Names nested in a class root (table._ambiguous_nested): kept where that holder comes
        # before the last holders of the class's own name.
        if m:
            nest_row = <int32_t*> malloc((m + 1) * sizeof(int32_t))
            nest_unit = <int32_t*> malloc((m + 1) * sizeof(int32_t))
            nest_group = <int32_t*> malloc((m + 1) * sizeof(int32_t))
            nest_key = <int32_t*> malloc((m + 1) * sizeof(int32_t))
            if nest_row == NULL or nest_unit == NULL or nest_group == NULL or nest_key == NULL:
                raise MemoryError()
            memset(nest_keep, 0, m)
            nested = _Groups(m)
            j = 0
            for u in range(n_units):
                cnt = views[V_COUNT * u + V_NESTED_ROOT].len // (8 if kinds[3 * u + 2] == 8 else 4)
                p = <const uint8_t*> views[V_COUNT * u + V_NESTED_NAMES].buf
                for k in range(cnt):
                    w = _int(&views[V_COUNT * u + V_NESTED_ROOT], kinds[3 * u + 2], k)
                    if w < 0 or w >= base[u + 1] - base[u]:
                        raise ValueError("a nested name's root is not one of its unit's roots")
                    row = base[u] + w
                    nest_row[j] = <int32_t> row
                    nest_unit[j] = row_unit[row]
                    nest_group[j] = row_group[row]
                    nest_key[j] = nested.add(<int32_t> j, p + 16 * k)
                    j += 1
            nested.done()
            _ambiguous(m, nest_unit, rank_of_unit, nest_group, nest_key, nested.n, nest_keep, NULL)
            for j in range(m):
                row = nest_row[j]
                if nest_keep[j] and name_key[row] >= 0 and rank_of_unit[row_unit[row]] < key_last[name_key[row]]:
                    keep[row] |= 2

        # Canonical copies away from the units that keep a copy for an ambiguous name: each
        # group's first row in the same order whose unit keeps none, where there is one
        # (table._away_from_kept).
        keeper = <uint8_t*> calloc(n_units + 1, 1)
        fixed = <uint8_t*> calloc(groups.n + 1, 1)
        if keeper == NULL or fixed == NULL:
            raise MemoryError()
        for row in range(n):
            if keep[row] & 2:
                keeper[row_unit[row]] = 1
        for u in order:
            if keeper[u]:
                continue
            b0 = base[u]
            for k in range(base[u + 1] - b0):
                g = row_group[b0 + k]
                if not fixed[g]:
                    fixed[g] = 1
                    groups.first[g] = <int32_t> (b0 + k)

        # Rows that a DW_AT_specification or DW_AT_abstract_origin of their unit names
        # (table._followed_rows): kept where their winner is in a later unit.
        row_followed = <uint8_t*> calloc(n + 1, 1)
        if row_followed == NULL:
            raise MemoryError()
        for u in range(n_units):
            for w in followed[u]:
                if w < 0 or w >= base[u + 1] - base[u]:
                    raise ValueError("a followed root is not one of its unit's roots")
                row_followed[base[u] + w] = 1

        # Each root's winner: the first row of its group; a root goes unless it is its own
        # winner, pinned, kept, or of another size (the DIE-by-DIE mapping needs equal sizes).
        result = []
        for u in range(n_units):
            b0 = base[u]
            for pass_ in range(2):
                j = 0
                for k in range(base[u + 1] - b0):
                    row = b0 + k
                    w = groups.first[row_group[row]]
                    if w == row or keep[row]:
                        continue
                    wu = row_unit[w]
                    if row_followed[row] and wu > u:
                        continue  # (table._followed_rows)
                    if keeper[wu] and wu != u:
                        # (table._pulling) kept where another order expands this unit first
                        pulled = False
                        for o in range(n_orders):
                            if (other_rank[o * n_units + u] < other_rank[o * n_units + wu] or
                                    (other_rank[o * n_units + u] == other_rank[o * n_units + wu] and u < wu)):
                                pulled = True
                                break
                        if pulled:
                            continue
                    r_root = _int(&views[V_COUNT * u + V_ROOTS], kinds[3 * u], k)
                    r_end = _int(&views[V_COUNT * u + V_ENDS], kinds[3 * u + 1], k)
                    w_root = _int(&views[V_COUNT * wu + V_ROOTS], kinds[3 * wu], w - base[wu])
                    w_end = _int(&views[V_COUNT * wu + V_ENDS], kinds[3 * wu + 1], w - base[wu])
                    if w_end - w_root != r_end - r_root:
                        continue
                    if pass_:
                        (<int64_t*> a_st.data.as_voidptr)[j] = r_root
                        (<int64_t*> a_en.data.as_voidptr)[j] = r_end
                        (<int64_t*> a_cu.data.as_voidptr)[j] = wu
                        (<int64_t*> a_cd.data.as_voidptr)[j] = w_root
                    j += 1
                if not pass_:
                    a_st, a_en = clone(_INT64, j, False), clone(_INT64, j, False)
                    a_cu, a_cd = clone(_INT64, j, False), clone(_INT64, j, False)
            result.append((a_st, a_en, a_cu, a_cd))
        return result
    finally:
        if held != NULL:
            for k in range(V_COUNT * n_units):
                if held[k]:
                    PyBuffer_Release(&views[k])
        free(held)
        free(views)
        free(kinds)
        free(base)
        free(rank_of_unit)
        free(row_unit)
        free(row_group)
        free(name_key)
        free(keep)
        free(key_last)
        free(nest_row)
        free(nest_unit)
        free(nest_group)
        free(nest_key)
        free(nest_keep)
        free(keeper)
        free(fixed)
        free(row_followed)
        free(other_rank)
