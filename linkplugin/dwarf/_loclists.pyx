# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled twins of ``expr.scan_expr`` and ``loclists.scan_lists``: the DIE-naming operands of
DWARF expressions and location lists, in C.

They never decide anything on their own: on input they do not accept (an unknown operation or
list entry, a read past the section or the block, a number over 63 bits) they return None and
the caller runs the Python code, which gives the exact result or error. The loops run without
the GIL; Python objects are made after them.
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t, INT64_MAX
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.string cimport memcpy, memset
from cpython.array cimport array, clone, resize

NOGIL = True

DEF DW_FORM_loclistx = 0x22
cdef array _INT64 = array("q")
cdef int64_t[3] _XKIND = [4, 5, 3]  # Ops kinds 'u', 'f', 's' as the rewrite kernel numbers them

# Operand layouts of the operations that name no DIE (expr._SIMPLE): per opcode a short string
# of 'u' uleb, 's' sleb, digits fixed bytes, 'A' address, 'O' offset; 0xFF: not simple.
cdef uint8_t LAYOUT[256][3]
cdef uint8_t SIMPLE[256]
cdef uint8_t REF_OP[256]


def _init(dict simple, bytes ref_ops):
    cdef int op, k
    for op in range(256):
        SIMPLE[op] = 0
        REF_OP[op] = 0
        for k in range(3):
            LAYOUT[op][k] = 0
    for op, spec in simple.items():
        if len(spec) > 2:
            raise ValueError("operand layout too long")
        SIMPLE[op] = 1
        for k, c in enumerate(spec.encode()):
            LAYOUT[op][k] = c
    for op in list(ref_ops):  # as Python ints: iterating ``bytes`` here would give signed chars
        REF_OP[op] = 1


cdef struct Ops:
    int64_t *p   # rows of 4: position, width, kind (0 'u', 1 'f', 2 's'), value
    Py_ssize_t n
    Py_ssize_t cap


cdef int push(Ops *o, int64_t pos, int64_t w, int64_t kind, int64_t v) noexcept nogil:
    cdef int64_t *q
    if o.n == o.cap:
        o.cap = o.cap * 2 if o.cap else 64
        q = <int64_t *> realloc(o.p, o.cap * 4 * sizeof(int64_t))
        if q == NULL:
            return -1
        o.p = q
    o.p[4 * o.n] = pos
    o.p[4 * o.n + 1] = w
    o.p[4 * o.n + 2] = kind
    o.p[4 * o.n + 3] = v
    o.n += 1
    return 0


cdef inline Py_ssize_t skip_leb(const uint8_t *d, Py_ssize_t p, Py_ssize_t n) noexcept nogil:
    while p < n and d[p] & 0x80:
        p += 1
    return p + 1 if p < n else -1


cdef inline Py_ssize_t uleb(const uint8_t *d, Py_ssize_t p, Py_ssize_t n, int64_t *v) noexcept nogil:
    """Position after the ULEB128 at ``p``, -1 past ``n`` or over 63 bits."""
    cdef int shift = 0
    cdef uint64_t r = 0, b
    while True:
        if p >= n:
            return -1
        b = d[p] & 0x7F
        if shift > 49:  # a value of 2**56 or more (or a long run of padding): the Python code
            return -1
        r |= b << shift
        p += 1
        if not d[p - 1] & 0x80:
            v[0] = <int64_t> r
            return p
        shift += 7


cdef inline int raw(const uint8_t *d, Py_ssize_t p, Py_ssize_t n, int w, uint64_t *v) noexcept nogil:
    cdef int k
    cdef uint64_t r = 0
    if p < 0 or p + w > n or w > 8:
        return -1
    for k in range(w):
        r |= (<uint64_t> d[p + k]) << (8 * k)
    v[0] = r
    return 0


cdef inline int fixed(const uint8_t *d, Py_ssize_t p, Py_ssize_t n, int w, int64_t *v) noexcept nogil:
    """``raw`` as an int64: -1 for a value over 63 bits too."""
    cdef uint64_t r
    if raw(d, p, n, w, &r) < 0 or r >> 63:
        return -1
    v[0] = <int64_t> r
    return 0


cdef int scan(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, Py_ssize_t end, int A, int O, int V, Ops *o,
              int depth) noexcept nogil:
    """expr.scan_expr on d[p:end] into ``o``; -1: leave it to the Python code."""
    cdef int op, k, c, w
    cdef Py_ssize_t q
    cdef int64_t v, m
    if end > n or depth > 8:
        return -1
    while p < end:
        op = d[p]
        p += 1
        if SIMPLE[op]:
            for k in range(2):
                c = LAYOUT[op][k]
                if c == 0:
                    break
                if c == 117 or c == 115:  # 'u', 's'
                    p = skip_leb(d, p, n)
                    if p < 0:
                        return -1
                elif c == 65:  # 'A'
                    p += A
                elif c == 79:  # 'O'
                    p += O
                else:
                    p += c - 48
            continue
        if op == 0x98 or op == 0x99 or op == 0xFA:  # call2, call4, GNU_parameter_ref
            w = 2 if op == 0x98 else 4
            if fixed(d, p, n, w, &v) < 0 or push(o, p, w, 1, v) < 0:
                return -1
            p += w
        elif op == 0x9A or op == 0xFD or op == 0xA0 or op == 0xF2:  # call_ref, GNU_variable_value, implicit_pointer
            w = O if V > 2 else A
            if fixed(d, p, n, w, &v) < 0 or push(o, p, w, 2, v) < 0:
                return -1
            p += w
            if op == 0xA0 or op == 0xF2:
                p = skip_leb(d, p, n)
                if p < 0:
                    return -1
        elif op == 0xA3 or op == 0xF3:  # entry_value: a nested expression
            p = uleb(d, p, n, &m)
            if p < 0 or m > n - p:
                return -1
            if scan(d, n, p, p + m, A, O, V, o, depth + 1) < 0:
                return -1
            p += m
        elif op == 0xA4 or op == 0xF4 or op == 0xA5 or op == 0xF5 or op == 0xA6 or op == 0xF6 or op == 0xA7 \
                or op == 0xA8 or op == 0xF7 or op == 0xA9 or op == 0xF9:
            if op == 0xA5 or op == 0xF5:  # regval_type: register first
                p = skip_leb(d, p, n)
                if p < 0:
                    return -1
            elif op == 0xA6 or op == 0xF6 or op == 0xA7:  # deref_type, xderef_type: size first
                p += 1
            q = uleb(d, p, n, &v)
            if q < 0:
                return -1
            if not ((op == 0xA8 or op == 0xF7 or op == 0xA9 or op == 0xF9) and v == 0):
                if push(o, p, q - p, 0, v) < 0:
                    return -1
            if op == 0xA4 or op == 0xF4:  # const_type: size and bytes follow
                if q >= n:
                    return -1
                p = q + 1 + d[q]
            else:
                p = q
        elif op == 0x9E:  # implicit_value
            p = uleb(d, p, n, &m)
            if p < 0 or m > n:
                return -1
            p += m
        else:
            return -1
    return 0 if p == end else -1


cdef object result(Ops *o):
    cdef Py_ssize_t k
    cdef list out = []
    kinds = ("u", "f", "s")
    for k in range(o.n):
        out.append((o.p[4 * k], o.p[4 * k + 1], kinds[o.p[4 * k + 2]], o.p[4 * k + 3]))
    return out


def scan_expr(const uint8_t[::1] d, Py_ssize_t p, Py_ssize_t end, int addr_size, int offset_size, int version):
    """expr.scan_expr, or None."""
    cdef Ops o
    cdef int st
    o.p = NULL
    o.n = o.cap = 0
    try:
        with nogil:
            st = scan(&d[0] if d.shape[0] else NULL, d.shape[0], p, end, addr_size, offset_size, version, &o, 0) \
                if 0 <= p <= end else -1
        return result(&o) if st == 0 else None
    finally:
        free(o.p)


cdef int lists(const uint8_t *d, Py_ssize_t n, const int64_t *offsets, Py_ssize_t noff, int A, int O, int V,
               Ops *o) noexcept nogil:
    cdef Py_ssize_t k, p, q
    cdef int64_t m
    cdef uint64_t lo, hi, ones
    cdef int c, j
    cdef uint8_t kind
    ones = ~(<uint64_t> 0) if A == 8 else ((<uint64_t> 1) << (8 * A)) - 1
    for k in range(noff):
        p = offsets[k]
        if p < 0 or p > n:
            return -1
        if V < 5:
            while True:
                # a pair past the section reads as the end of the list in the Python code: leave
                # that to it
                if raw(d, p, n, A, &lo) < 0 or raw(d, p + A, n, A, &hi) < 0:
                    return -1
                p += 2 * A
                if lo == 0 and hi == 0:
                    break
                if lo == ones:
                    continue
                if fixed(d, p, n, 2, &m) < 0:
                    return -1
                p += 2
                if expr_at(d, n, p, p + m, A, O, V, o) < 0:
                    return -1
                p += m
            continue
        while True:
            if p >= n:
                return -1
            kind = d[p]
            p += 1
            if kind == 0:
                break
            if kind > 9:
                return -1
            # DW_LLE_* operands before the expression ('u' uleb, 'A' address), whether one follows
            for j in range(2):
                c = LLE[kind][j]
                if c == 117:
                    p = skip_leb(d, p, n)
                    if p < 0:
                        return -1
                elif c == 65:
                    p += A
            if LLE_EXPR[kind]:
                p = uleb(d, p, n, &m)
                if p < 0:
                    return -1
                if expr_at(d, n, p, p + m, A, O, V, o) < 0:
                    return -1
                p += m
    return 0


cdef inline int expr_at(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, Py_ssize_t end, int A, int O, int V,
                        Ops *o) noexcept nogil:
    """The operands of the expression d[p:end] if it may name a DIE (a byte of a DIE-naming
    opcode anywhere in it, as expr.might_ref)."""
    cdef Py_ssize_t q, e = end if end < n else n
    if p > n:
        return -1
    for q in range(p, e):
        if REF_OP[d[q]]:
            return scan(d, n, p, end, A, O, V, o, 0)
    return 0


cdef uint8_t LLE[10][2]
cdef uint8_t LLE_EXPR[10]


def _init_lle(dict lle):
    cdef int k, j
    for k in range(10):
        LLE[k][0] = LLE[k][1] = 0
        LLE_EXPR[k] = 0
    for k, (spec, has_expr) in lle.items():
        if k >= 10 or len(spec) > 2:
            raise ValueError("bad DW_LLE layout")
        for j, c in enumerate(spec.encode()):
            LLE[k][j] = c
        LLE_EXPR[k] = 1 if has_expr else 0


def scan_lists(const uint8_t[::1] sec, const int64_t[::1] offsets, int addr_size, int offset_size, int version):
    """loclists.scan_lists, or None."""
    cdef Ops o
    cdef int st
    o.p = NULL
    o.n = o.cap = 0
    if addr_size not in (1, 2, 4, 8) or offset_size not in (4, 8):
        return None
    try:
        with nogil:
            st = lists(&sec[0] if sec.shape[0] else NULL, sec.shape[0], &offsets[0] if offsets.shape[0] else NULL,
                       offsets.shape[0], addr_size, offset_size, version, &o)
        return result(&o) if st == 0 else None
    finally:
        free(o.p)


cdef struct Targets:  # what the merge makes of a unit's location-list operands (unit_list_targets)
    int64_t *rows    # rows of 3: position, width (< 0: fixed size), DIE index (or -unit_off - 1)
    int64_t *named   # the section offset each unit-relative operand names
    Py_ssize_t m     # unit-relative operands
    int64_t *patches  # rows of 3: position, width, value of each section-offset operand
    Py_ssize_t np


cdef int targets_of(Ops *o, const int64_t *offs, Py_ssize_t n, int64_t unit_off, Targets *t) noexcept nogil:
    """The Targets of the operands ``o`` against the unit's sorted DIE offsets ``offs`` (buffers
    malloc'ed, the caller frees them): 0, -1 for a value the caller's loops must take (past 63
    bits with the unit's offset), -2 without memory."""
    cdef Py_ssize_t k, j = 0, p = 0, lo, hi, mid
    cdef int64_t v, x, w
    t.m = t.np = 0
    for k in range(o.n):
        if o.p[4 * k + 2] != 2:
            if o.p[4 * k + 3] > INT64_MAX - unit_off:  # (a Python int: the caller's loops)
                return -1
            t.m += 1
    t.rows = <int64_t *> malloc((3 * t.m + 1) * sizeof(int64_t))
    t.named = <int64_t *> malloc((t.m + 1) * sizeof(int64_t))
    t.patches = <int64_t *> malloc((3 * (o.n - t.m) + 1) * sizeof(int64_t))
    if t.rows == NULL or t.named == NULL or t.patches == NULL:
        return -2
    for k in range(o.n):
        w = o.p[4 * k + 1]
        v = o.p[4 * k + 3]
        if o.p[4 * k + 2] == 2:
            t.patches[3 * p] = o.p[4 * k]
            t.patches[3 * p + 1] = w
            t.patches[3 * p + 2] = v
            p += 1
            continue
        x = v + unit_off
        lo, hi = 0, n
        while lo < hi:  # (locations.targets's bisect_left)
            mid = (lo + hi) >> 1
            if offs[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        t.rows[3 * j] = o.p[4 * k]
        t.rows[3 * j + 1] = w if o.p[4 * k + 2] == 0 else -w
        t.rows[3 * j + 2] = lo if lo < n and offs[lo] == x else -unit_off - 1
        t.named[j] = x
        j += 1
    t.np = p
    return 0


cdef object targets_result(Targets *t):
    """((rows, patches), named) of unit_list_targets from ``t``."""
    cdef array rows = clone(_INT64, 3 * t.m, False), named = clone(_INT64, t.m, False)
    cdef Py_ssize_t k
    if t.m:
        memcpy(rows.data.as_voidptr, t.rows, 3 * t.m * sizeof(int64_t))
        memcpy(named.data.as_voidptr, t.named, t.m * sizeof(int64_t))
    patches = [(t.patches[3 * k], t.patches[3 * k + 1], t.patches[3 * k + 2]) for k in range(t.np)]
    return (rows, patches), named


cdef void free_targets(Targets *t) noexcept nogil:
    free(t.rows)
    free(t.named)
    free(t.patches)


def unit_list_targets(locs, sec, int64_t base, bint has_base, int addr_size, int offset_size, int version, offs,
                      int64_t unit_off):
    """``list_offsets`` of the rows (DIE, attribute, form, value) of a unit with 4-byte offsets,
    ``scan_lists`` of those lists and what the merge makes of their operands, without the GIL
    and without a tuple per operand (a unit of libgsl has 125; ``unit_list_targets_many`` of one
    unit): (locations.targets's rows and patches against the unit's DIE offsets ``offs`` (sorted), the section offsets the
    unit-relative operands name, in operand order, as array('q')), or None (the caller runs
    list_offsets, scan_lists and locations.targets, which decide)."""
    return unit_list_targets_many([(locs, sec, base, has_base, addr_size, offset_size, version, offs, unit_off)])[0]


cdef struct ListJob:  # one unit of unit_list_targets_many
    const int64_t *locs
    Py_ssize_t nlocs
    const uint8_t *sec
    Py_ssize_t nsec
    int64_t base
    bint has_base
    int addr_size
    int version
    const int64_t *offs
    Py_ssize_t noffs
    int64_t unit_off
    int64_t *q
    Ops o
    Targets t
    int st


def unit_list_targets_many(list calls):
    """``unit_list_targets`` of each tuple of its arguments in ``calls``, all in one stretch
    without the GIL (libgsl: 629 units of 5.7 KB, each call let go of the GIL and took it back
    while the other thread ran Python); its result or None for each."""
    cdef Py_ssize_t k, n = len(calls), m
    cdef ListJob *jobs = <ListJob *> calloc(n + 1, sizeof(ListJob))
    cdef ListJob *j
    cdef const int64_t[:, ::1] locs
    cdef const uint8_t[::1] sec
    cdef const int64_t[::1] offs
    if jobs == NULL:
        raise MemoryError()
    views = []  # (the buffers stay acquired for the call)
    try:
        for k in range(n):
            j = &jobs[k]
            j.st = 1  # declined unless set up below
            locs, sec, base, has_base, addr_size, offset_size, version, offs, unit_off = calls[k]
            if locs.shape[1] != 4:
                raise ValueError("location-list rows are rows of 4")
            if addr_size not in (1, 2, 4, 8) or offset_size != 4 or unit_off < 0:
                continue
            views.append((locs, sec, offs))
            j.locs = &locs[0, 0] if locs.shape[0] else NULL
            j.nlocs = locs.shape[0]
            j.sec = &sec[0] if sec.shape[0] else NULL
            j.nsec = sec.shape[0]
            j.base, j.has_base, j.addr_size, j.version = base, has_base, addr_size, version
            j.offs = &offs[0] if offs.shape[0] else NULL
            j.noffs = offs.shape[0]
            j.unit_off = unit_off
            j.q = <int64_t *> malloc((j.nlocs + 1) * sizeof(int64_t))
            if j.q == NULL:
                raise MemoryError()
            j.st = 0
        with nogil:
            for k in range(n):
                j = &jobs[k]
                if j.st:
                    continue
                m = 0
                j.st = offsets_of(j.locs, j.nlocs, j.sec, j.nsec, j.base, j.has_base, 4, j.q, &m)
                if j.st == 0:
                    j.st = lists(j.sec, j.nsec, j.q, m, j.addr_size, 4, j.version, &j.o)
                if j.st == 0:
                    j.st = targets_of(&j.o, j.offs, j.noffs, j.unit_off, &j.t)
        for k in range(n):
            if jobs[k].st == -2:
                raise MemoryError()
        return [targets_result(&jobs[k].t) if jobs[k].st == 0 else None for k in range(n)]
    finally:
        for k in range(n):
            free(jobs[k].q)
            free(jobs[k].o.p)
            free_targets(&jobs[k].t)
        free(jobs)


cdef int scan_blocks(const uint8_t *d, Py_ssize_t n, const int64_t *blocks, Py_ssize_t nb, int A, int O, int V,
                     Ops *o, Py_ssize_t *upto) noexcept nogil:
    """``scan`` over every row (DIE, start, end) of ``blocks`` into ``o``, ``upto[b]``: the
    operands after block b; -1: leave them to the Python code."""
    cdef Py_ssize_t b
    for b in range(nb):
        if not 0 <= blocks[3 * b + 1] <= blocks[3 * b + 2]:
            return -1
        if scan(d, n, blocks[3 * b + 1], blocks[3 * b + 2], A, O, V, o, 0) < 0:
            return -1
        upto[b] = o.n
    return 0


cdef int expr_rows(const uint8_t *d, Py_ssize_t n, const int64_t *blocks, Py_ssize_t nb, int64_t u, int A, int O,
                   int V, int64_t **rows, Py_ssize_t *nrows, bint *named) noexcept nogil:
    """``scan_expr_blocks`` with ``rows``, without Python objects: the operands as rows of 5 by
    position in ``*rows`` (malloc'ed, the caller frees it; ``*nrows`` rows), ``*named`` whether a
    kind is not 's'. -1: leave them to the Python code (``*rows`` NULL)."""
    cdef Ops o
    cdef Py_ssize_t b, k, first = 0
    cdef Py_ssize_t *upto = <Py_ssize_t *> malloc((nb + 1) * sizeof(Py_ssize_t))
    cdef int64_t *q = NULL
    cdef bint ordered = True
    o.p = NULL
    o.n = o.cap = 0
    rows[0] = NULL
    nrows[0] = 0
    named[0] = False
    if upto == NULL or scan_blocks(d, n, blocks, nb, A, O, V, &o, upto) < 0:
        free(upto)
        free(o.p)
        return -1
    q = <int64_t *> malloc((5 * o.n + 1) * sizeof(int64_t))
    if q != NULL:
        for b in range(nb):
            for k in range(first, upto[b]):
                q[5 * k] = blocks[3 * b]
                q[5 * k + 1] = o.p[4 * k]
                q[5 * k + 2] = o.p[4 * k + 1]
                q[5 * k + 3] = _XKIND[o.p[4 * k + 2]]
                q[5 * k + 4] = o.p[4 * k + 3] + (u if o.p[4 * k + 2] != 2 else 0)
                named[0] |= o.p[4 * k + 2] != 2
                if k and q[5 * k + 1] < q[5 * k - 4]:
                    ordered = False
            first = upto[b]
        if not ordered:  # (positions are distinct: any sort is the stable one)
            qsort(q, o.n, 5 * sizeof(int64_t), _cmp_second)
        rows[0] = q
        nrows[0] = o.n
    free(upto)
    free(o.p)
    return 0 if q != NULL else -1


def scan_expr_blocks(const uint8_t[::1] d, const int64_t[:, ::1] blocks, int64_t u, int addr_size,
                     int offset_size, int version, bint rows=False):
    """abbrev._expr over every row (DIE, start, end) of ``blocks``: the DIE-naming operands as
    (DIE, position, width, kind, value: + ``u`` unless kind is 's'), in block order; None if any
    block needs the Python code. With ``rows``, (the same as rows of 5 by position in one
    array('q'), the kind as a number: 3 's', 4 'u', 5 'f'; whether a kind is not 's'), as the
    rewrite kernel takes them (fastrewrite._xref_rows): ``expr_rows``, which
    ``_rewritecore.plan_unit`` calls without Python objects, seen from Python (the tests')."""
    cdef int st = 0
    cdef Py_ssize_t nb = blocks.shape[0], n = d.shape[0], nq = 0
    cdef array flat
    cdef int64_t *q = NULL
    cdef bint named = False
    cdef const int64_t *bp
    if blocks.shape[1] != 3:
        raise ValueError("blocks are rows of 3")
    bp = &blocks[0, 0] if nb else NULL
    if rows:
        with nogil:
            st = expr_rows(&d[0] if n else NULL, n, bp, nb, u, addr_size, offset_size, version, &q, &nq, &named)
        if st < 0:
            return None
        try:
            flat = clone(_INT64, 5 * nq, False)
            if nq:
                memcpy(flat.data.as_voidptr, q, 5 * nq * sizeof(int64_t))
            return flat, named
        finally:
            free(q)
    return scan_expr_blocks_many(d, [(blocks, u, addr_size, offset_size, version)])[0]


cdef struct BlockJob:  # one unit of scan_expr_blocks_many
    const int64_t *blocks
    Py_ssize_t nb
    int64_t u
    int A, O, V
    Ops o
    Py_ssize_t *upto
    int st


def scan_expr_blocks_many(const uint8_t[::1] d, list calls):
    """``scan_expr_blocks`` (without ``rows``) of each tuple (blocks, u, addr_size, offset_size,
    version) of ``calls``, all in one stretch without the GIL (the decoder's units of a batch:
    one release rather than one per unit); its result or None for each."""
    cdef Py_ssize_t k, b, q, first, n = len(calls), dn = d.shape[0]
    cdef BlockJob *jobs = <BlockJob *> calloc(n + 1, sizeof(BlockJob))
    cdef BlockJob *j
    cdef const int64_t[:, ::1] blocks
    cdef list out, results = []
    kinds = ("u", "f", "s")
    if jobs == NULL:
        raise MemoryError()
    views = []  # (the buffers stay acquired for the call)
    try:
        for k in range(n):
            j = &jobs[k]
            blocks = calls[k][0]
            if blocks.shape[1] != 3:
                raise ValueError("blocks are rows of 3")
            views.append(blocks)
            j.blocks = &blocks[0, 0] if blocks.shape[0] else NULL
            j.nb = blocks.shape[0]
            j.u, j.A, j.O, j.V = calls[k][1], calls[k][2], calls[k][3], calls[k][4]
            j.upto = <Py_ssize_t *> malloc((j.nb + 1) * sizeof(Py_ssize_t))  # ops after each block
            if j.upto == NULL:
                raise MemoryError()
        with nogil:
            for k in range(n):
                j = &jobs[k]
                j.st = scan_blocks(&d[0] if dn else NULL, dn, j.blocks, j.nb, j.A, j.O, j.V, &j.o, j.upto)
        for k in range(n):
            j = &jobs[k]
            if j.st < 0:
                results.append(None)
                continue
            out = []
            first = 0
            for b in range(j.nb):
                for q in range(first, j.upto[b]):
                    out.append((j.blocks[3 * b], j.o.p[4 * q], j.o.p[4 * q + 1], kinds[j.o.p[4 * q + 2]],
                                j.o.p[4 * q + 3] + (j.u if j.o.p[4 * q + 2] != 2 else 0)))
                first = j.upto[b]
            results.append(out)
        return results
    finally:
        for k in range(n):
            free(jobs[k].o.p)
            free(jobs[k].upto)
        free(jobs)


cdef int _cmp_second(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*> a)[1], y = (<const int64_t*> b)[1]
    return (x > y) - (x < y)


cdef int _cmp_i64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*> a)[0], y = (<const int64_t*> b)[0]
    return (x > y) - (x < y)


cdef int offsets_of(const int64_t *locs, Py_ssize_t n, const uint8_t *sec, Py_ssize_t nsec, int64_t base,
                    bint has_base, int offset_size, int64_t *q, Py_ssize_t *m) noexcept nogil:
    """``list_offsets``'s loop over the rows (DIE, attribute, form, value) into ``q`` (n
    places): the lists' offsets, sorted, each once (``*m`` of them); -1 where the Python code must
    decide."""
    cdef Py_ssize_t k, j
    cdef int64_t v, p
    m[0] = 0
    for k in range(n):
        v = locs[4 * k + 3]
        if locs[4 * k + 2] == DW_FORM_loclistx:
            if not has_base or v < 0 or v > (1LL << 59):
                return -1
            p = base + v * offset_size
            if p < 0 or p > nsec - offset_size:
                return -1
            v = 0
            for j in range(offset_size):
                v |= (<int64_t> sec[p + j]) << (8 * j)
            v += base
        q[k] = v
    if n:
        qsort(q, n, sizeof(int64_t), _cmp_i64)
        m[0] = 1
        for k in range(1, n):
            if q[k] != q[m[0] - 1]:
                q[m[0]] = q[k]
                m[0] += 1
    return 0


def list_offsets(const int64_t[:, ::1] locs, const uint8_t[::1] loclists, int64_t base, bint has_base,
                 int offset_size):
    """loclists.list_offsets of the rows (DIE, attribute, form, value) of a unit with 4-byte
    offsets: the lists' section offsets, sorted, each once, as array('q'); None where the Python
    code must decide (a loclistx without a base, or whose index reads past the section)."""
    cdef Py_ssize_t m = 0
    cdef array out
    cdef int st
    if locs.shape[1] != 4:
        raise ValueError("location-list rows are rows of 4")
    out = clone(_INT64, locs.shape[0], False)
    with nogil:
        st = offsets_of(&locs[0, 0] if locs.shape[0] else NULL, locs.shape[0],
                        &loclists[0] if loclists.shape[0] else NULL, loclists.shape[0], base, has_base, offset_size,
                        <int64_t *> out.data.as_voidptr, &m)
    if st < 0:
        return None
    resize(out, m)
    return out


