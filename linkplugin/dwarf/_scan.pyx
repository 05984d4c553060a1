# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled DIE scanner: the hot loop of ``read.decode_unit`` in C.

It runs the same plans as the pure-Python decoder, written as a small op program per
abbreviation (``abbrev.scan_program``) instead of generated Python functions, and fills the same
lists and arrays. It never decides anything on its own: on input it does not accept (a code
without an abbreviation, a second top-level DIE, a read past the section, DW_FORM_indirect) it
returns None and the caller runs the pure-Python decoder, which raises the exact error.
"""
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memset
from cpython.buffer cimport PyBUF_FORMAT, PyBUF_ND, PyBUF_STRIDES
from libc.stdint cimport int64_t, uint32_t, uint64_t, uint8_t
from cpython.array cimport array, clone

from linkplugin.dwarf._buf cimport IV, ifree, ipush
from linkplugin.dwarf._leb cimport read_le, read_uleb
from linkplugin.dwarf._columns cimport byte_column, int64_column

NOGIL = True  # scan_many() runs its loop without the GIL (units may be scanned on threads)

cdef array _UINT32 = array("I")

# Op codes of a scan program (kept equal to abbrev.OP_*): each op is four int64s (op, a, b, c).
DEF OP_END = 0
DEF OP_SKIP = 1        # a: bytes
DEF OP_REF4 = 2        # a ref4 that is not DW_AT_sibling: its position only
DEF OP_UREF = 3        # a: size, b: form, c: attribute; unit-relative fixed-size reference
DEF OP_REFADDR = 4     # a: size, b: form, c: attribute
DEF OP_LOC = 5         # a: size, b: form, c: attribute; location-list pointer
DEF OP_REFUDATA = 6    # b: form, c: attribute
DEF OP_LOCLISTX = 7    # b: form, c: attribute
DEF OP_LEB = 8         # skip a LEB128
DEF OP_STRING = 9      # skip a NUL-terminated string
DEF OP_BLOCK = 10      # a: length size (1, 2, 4; 0 = ULEB), b: 1 if it holds an expression


cdef class Owned:
    """A malloc'd block handed out without a copy (a memoryview of it keeps this alive and
    frees the block with it)."""
    cdef int64_t *p
    cdef Py_ssize_t n
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]

    def __getbuffer__(self, Py_buffer *view, int flags):
        view.buf = <void *> self.p
        view.obj = self
        view.len = self.n * sizeof(int64_t)
        view.readonly = 0
        view.itemsize = sizeof(int64_t)
        view.format = NULL
        if flags & PyBUF_FORMAT:
            view.format = b"q"
        view.ndim = 1
        self.shape[0] = self.n
        self.strides[0] = sizeof(int64_t)
        view.shape = self.shape if flags & PyBUF_ND else NULL
        view.strides = self.strides if flags & PyBUF_STRIDES == PyBUF_STRIDES else NULL
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        pass

    def __dealloc__(self):
        free(self.p)


_EMPTY = memoryview(b"").cast("q")


cdef object varray(IV *v, int width=1):
    """The vector as a memoryview of int64 that takes over its block (the vector is left
    empty): rows of ``width`` numbers (2-D) when it has any."""
    cdef Owned o
    cdef int64_t *q
    if v.n == 0:
        return _EMPTY
    if v.cap > v.n:
        q = <int64_t *> realloc(v.p, v.n * sizeof(int64_t))  # give back the unused tail
        if q != NULL:
            v.p = q
    o = Owned.__new__(Owned)
    o.p = v.p
    o.n = v.n
    v.p = NULL
    v.n = v.cap = 0
    if width == 1:
        return memoryview(o)
    return memoryview(o).cast("B").cast("q", (o.n // width, width))


DEF DW_FORM_ref4 = 0x13


cdef inline int push_ref(Out *o, int64_t pos, int64_t die, int64_t form, int64_t at, int64_t target) noexcept nogil:
    return (ipush(&o.rpos, pos) | ipush(&o.rdie, die) | ipush(&o.rform, form) | ipush(&o.rat, at)
            | ipush(&o.rtgt, target))


cdef int scan_dies(const uint8_t *b, Py_ssize_t n, Py_ssize_t die_off, Py_ssize_t end, int64_t u,
                   const int64_t *prog, const int64_t *start, Py_ssize_t nplans, const uint8_t *kids,
                   const uint8_t *refop, Out *o) noexcept nogil:
    """The loop of ``scan`` without the GIL: 1 when done, 0 when the input is not accepted, 2 when
    out of memory."""
    cdef Py_ssize_t p = die_off, s, q, i, pc
    cdef int64_t code, top = -1, op, a, bb, c, v, blen
    cdef uint64_t uv
    if ipush(&o.stack, -1) < 0:
        return 2
    while p < end:
        if p >= n:
            return 0
        code = b[p]
        if code == 0:
            p += 1
            if top >= 0:
                o.ends.p[top] = p
                o.stack.n -= 1
                top = o.stack.p[o.stack.n - 1]
            continue
        s = p
        p = read_uleb(b, n, p, &uv)
        if p < 0:
            return 0
        code = <int64_t> uv
        if top < 0 and o.offs.n:
            return 0
        if code >= nplans or start[code] < 0:
            return 0
        i = o.offs.n
        if (ipush(&o.offs, s) | ipush(&o.codes, code) | ipush(&o.par, top)) < 0:
            return 2
        pc = start[code]
        while True:
            op = prog[pc]
            a = prog[pc + 1]
            bb = prog[pc + 2]
            c = prog[pc + 3]
            pc += 4
            if op == OP_END:
                break
            if op <= OP_LOC and p + (4 if op == OP_REF4 else a) > n:
                return 0  # a fixed-size value past the section
            if op == OP_SKIP:
                p += a
            elif op == OP_REF4:
                v = <int64_t> read_le(b, p, 4) + u
                if v >= end:
                    return 0  # out of its unit: the Python decoder says so
                if push_ref(o, p, i, DW_FORM_ref4, -1, v) < 0:
                    return 2
                p += 4
            elif op == OP_UREF or op == OP_REFADDR:
                v = <int64_t> read_le(b, p, <int> a)
                if v < 0 or (op == OP_UREF and v >= end - u) or (op == OP_REFADDR and v >= n):
                    return 0  # past the section or out of its unit: the Python decoder says so
                if push_ref(o, p, i, bb, c, v + (u if op == OP_UREF else 0)) < 0:
                    return 2
                p += a
            elif op == OP_LOC:
                if (ipush(&o.L, i) | ipush(&o.L, c) | ipush(&o.L, bb)
                        | ipush(&o.L, <int64_t> read_le(b, p, <int> a))) < 0:
                    return 2
                p += a
            elif op == OP_REFUDATA or op == OP_LOCLISTX:
                q = read_uleb(b, n, p, &uv)
                if q < 0:
                    return 0
                v = <int64_t> uv
                if op == OP_REFUDATA:
                    if v >= end - u:
                        return 0
                    if push_ref(o, p, i, bb, c, u + v) < 0:
                        return 2
                else:
                    if (ipush(&o.L, i) | ipush(&o.L, c) | ipush(&o.L, bb) | ipush(&o.L, v)) < 0:
                        return 2
                p = q
            elif op == OP_LEB:
                while p < n and b[p] & 0x80:
                    p += 1
                if p >= n:
                    return 0
                p += 1
            elif op == OP_STRING:
                while p < n and b[p]:
                    p += 1
                if p >= n:
                    return 0
                p += 1
            elif op == OP_BLOCK:
                if a == 0:
                    p = read_uleb(b, n, p, &uv)
                    if p < 0:
                        return 0
                    blen = <int64_t> uv
                else:
                    if p + a > n:
                        return 0
                    blen = <int64_t> read_le(b, p, <int> a)
                    p += a
                if blen < 0 or blen > n - p:  # (p + blen may overflow)
                    return 0
                if bb and blen:
                    # Only an expression holding one of the DIE-naming opcodes (bytes of
                    # expr.REF_OPS anywhere in it, as expr.might_ref) is decoded, in Python.
                    for q in range(p, p + blen):
                        if refop[b[q]]:
                            if (ipush(&o.E, i) | ipush(&o.E, p) | ipush(&o.E, p + blen)) < 0:
                                return 2
                            break
                p += blen
            else:
                return 0
        if p > n:
            return 0
        if ipush(&o.ends, p) < 0:
            return 2
        if kids[code]:
            if ipush(&o.stack, i) < 0:
                return 2
            top = i
    if p > end or o.offs.n == 0:
        return 0
    for q in range(1, o.stack.n):  # producers may omit the trailing nulls
        o.ends.p[o.stack.p[q]] = end
    return 1


cdef struct ScanIn:
    const uint8_t *d
    Py_ssize_t n, die_off, end, nplans
    int64_t u
    const int64_t *prog
    const int64_t *start
    const uint8_t *kids
    Out o
    int done


cdef class _ScanJob:
    """One unit's scan: its input pointers (into objects the caller holds for the call), its
    output vectors and status."""
    cdef ScanIn s

    def __cinit__(self):
        memset(&self.s, 0, sizeof(ScanIn))

    def __dealloc__(self):
        free_out(&self.s.o)


cdef void free_out(Out *o) noexcept nogil:
    # Out is IVs only: freed as an array of them.
    cdef IV *v = <IV *> o
    cdef Py_ssize_t k
    for k in range(sizeof(Out) // sizeof(IV)):
        ifree(&v[k])


cdef void fit_out(Out *o) noexcept nogil:
    """Each vector's block cut to its length as soon as the unit is scanned: the next units'
    vectors then take the freed tails. Cut only after the whole batch (``varray``), 1,033
    small units (dwz's output of libkrb5) held their 8 KiB first blocks, 45 MB at once."""
    cdef IV *v = <IV *> o
    cdef int64_t *q
    cdef Py_ssize_t k
    for k in range(sizeof(Out) // sizeof(IV)):
        if v[k].cap > v[k].n > 0:
            q = <int64_t *> realloc(v[k].p, v[k].n * sizeof(int64_t))
            if q != NULL:
                v[k].p = q
                v[k].cap = v[k].n


cdef object _scan_job(const uint8_t[::1] dv, Py_ssize_t die_off, Py_ssize_t end, int64_t u,
                      prog_col, start_col, kids_col):
    """A unit's job for ``scan_many``, or None where its result is None at once (the unit's
    columns read without typed views, ``_columns``)."""
    cdef const int64_t *prog
    cdef const int64_t *start
    cdef const uint8_t *kids
    cdef Py_ssize_t nprog = int64_column(prog_col, &prog), nstart = int64_column(start_col, &start)
    if dv.shape[0] == 0 or nprog == 0 or nstart == 0 or byte_column(kids_col, &kids) < nstart:
        return None
    cdef _ScanJob job = _ScanJob.__new__(_ScanJob)
    job.s.d = &dv[0]
    job.s.n = dv.shape[0]
    job.s.die_off = die_off
    job.s.end = end
    job.s.u = u
    job.s.prog = prog
    job.s.start = start
    job.s.nplans = nstart
    job.s.kids = kids
    return job


cdef object _scan_result(_ScanJob job):
    """A job's result in ``scan_many`` (its vectors handed over to memoryviews)."""
    if job.s.done == 2:
        raise MemoryError()
    if not job.s.done:
        return None
    cdef Out *o = &job.s.o
    refs = (varray(&o.rpos), varray(&o.rdie), varray(&o.rform), varray(&o.rat), varray(&o.rtgt))
    got = (refs, varray(&o.E, 3), varray(&o.L, 4), (varray(&o.offs), varray(&o.codes), varray(&o.par), varray(&o.ends)))
    free_out(o)
    return got


def scan_many(const uint8_t[::1] dv, list units, const uint8_t[::1] ref_ops):
    """Scan the DIEs of several units of ``dv`` (tuples (die_off, end, u, prog, start, kids), which
    the caller holds for the call), all in one stretch without the GIL (small units on threads
    then hand the GIL over once per batch rather than once per unit: glibc's libc.so.6 has 2,063
    units of 3 KB). For each: (references, blocks, L, (offs, codes, parent, ends)) as
    memoryviews of int64 (blocks and L: 2-D, or empty), or None (also for a reference past the
    section or out of its unit: the Python decoder then gives the error).

    ``prog[start[code]:]`` is the op program of each abbreviation code (start -1: no such code),
    ``kids[code]`` its children flag. ``references`` are five columns (position, DIE, form,
    attribute (-1 for a ref4 that is not DW_AT_sibling), target section offset) with a row per
    reference attribute, in position order; ``blocks`` a row (DIE, start, end) per expression
    block holding one of the DIE-naming opcodes ``ref_ops`` (the caller decodes those few); ``L``
    a row (DIE, attribute, form, value) per location-list pointer."""
    cdef uint8_t refop[256]
    cdef Py_ssize_t k, q, m = len(units)
    for q in range(256):
        refop[q] = 0
    for q in range(ref_ops.shape[0]):
        refop[ref_ops[q]] = 1
    jobs = [_scan_job(dv, t[0], t[1], t[2], t[3], t[4], t[5]) for t in units]
    cdef ScanIn **slots = <ScanIn **> malloc((m + 1) * sizeof(ScanIn *))
    if slots == NULL:
        raise MemoryError()
    try:
        for k in range(m):
            slots[k] = NULL if jobs[k] is None else &(<_ScanJob> jobs[k]).s
        with nogil:
            for k in range(m):
                if slots[k] != NULL:
                    slots[k].done = scan_dies(slots[k].d, slots[k].n, slots[k].die_off, slots[k].end, slots[k].u,
                                              slots[k].prog, slots[k].start, slots[k].nplans, slots[k].kids, refop,
                                              &slots[k].o)
                    fit_out(&slots[k].o)
    finally:
        free(slots)
    return [None if j is None else _scan_result(j) for j in jobs]


def to_uint32(const int64_t[::1] a):
    """``a`` (DIE offsets of a unit that ends below 4 GiB) as array('I'), or None if a value
    does not fit: half the memory of what the merge keeps of every unit's offsets."""
    cdef Py_ssize_t k, n = a.shape[0]
    cdef array out = clone(_UINT32, n, False)
    cdef uint32_t* q = <uint32_t*> out.data.as_voidptr
    for k in range(n):
        if a[k] < 0 or a[k] > 0xFFFFFFFF:
            return None
        q[k] = <uint32_t> a[k]
    return out
