# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled DIE scanner: the hot loop of ``read.decode_unit`` in C.

It runs the same plans as the pure-Python decoder, written as a small op program per
abbreviation (``abbrev.scan_program``) instead of generated Python functions, and fills the same
lists and arrays. It never decides anything on its own: on input it does not accept (a code
without an abbreviation, a second top-level DIE, a read past the section, DW_FORM_indirect) it
returns None and the caller runs the pure-Python decoder, which raises the exact error.
"""
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from libc.stdint cimport int64_t, uint8_t
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.ref cimport Py_INCREF

import numpy as np

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


cdef struct Vec:
    int64_t *p
    Py_ssize_t n
    Py_ssize_t cap


cdef int vpush(Vec *v, int64_t x) except -1 nogil:
    cdef int64_t *q
    if v.n == v.cap:
        v.cap = v.cap * 2 if v.cap else 1024
        q = <int64_t *> realloc(v.p, v.cap * sizeof(int64_t))
        if q == NULL:
            with gil:
                raise MemoryError()
        v.p = q
    v.p[v.n] = x
    v.n += 1
    return 0


cdef list vlist(Vec *v):
    cdef Py_ssize_t k
    cdef list out = PyList_New(v.n)
    for k in range(v.n):
        o = PyLong_FromLongLong(v.p[k])
        Py_INCREF(o)
        PyList_SET_ITEM(out, k, o)
    return out


cdef object varray(Vec *v):
    out = np.empty(v.n, dtype=np.int64)
    cdef int64_t[::1] view = out
    if v.n:
        memcpy(&view[0], v.p, v.n * sizeof(int64_t))
    return out


cdef inline int64_t rd(const uint8_t *d, Py_ssize_t p, int size) noexcept nogil:
    cdef int64_t v = 0
    cdef int k
    for k in range(size):
        v |= (<int64_t> d[p + k]) << (8 * k)
    return v


def scan(const uint8_t[::1] dv, object d, Py_ssize_t die_off, Py_ssize_t end, int64_t u,
         const int64_t[::1] prog, const int64_t[::1] start, const uint8_t[::1] kids, object expr, const uint8_t[::1] ref_ops):
    """Scan the DIEs of one unit: (offs, codes, parent, ends, R, S, X, L, the first four as
    int64 arrays) or None.

    ``prog[start[code]:]`` is the op program of each abbreviation code (start -1: no such code),
    ``kids[code]`` its children flag, ``expr(d, s, e, i, X)`` records the DIE-naming operands of an
    expression block (it may raise DwarfError)."""
    cdef Py_ssize_t n = dv.shape[0]
    cdef const uint8_t *b = &dv[0]
    cdef Py_ssize_t nplans = start.shape[0]
    cdef Vec offs, codes, par, ends, R, S, stack
    cdef Py_ssize_t p = die_off, s, q, blen, i, pc
    cdef int64_t code, top = -1, op, a, bb, c, v
    cdef int shift
    cdef bint ok = False
    cdef list X = []
    cdef list L = []
    cdef uint8_t refop[256]
    for q in range(256):
        refop[q] = 0
    for q in range(ref_ops.shape[0]):
        refop[ref_ops[q]] = 1
    offs.p = codes.p = par.p = ends.p = R.p = S.p = stack.p = NULL
    offs.n = codes.n = par.n = ends.n = R.n = S.n = stack.n = 0
    offs.cap = codes.cap = par.cap = ends.cap = R.cap = S.cap = stack.cap = 0
    try:
        vpush(&stack, -1)
        while p < end:
            if p >= n:
                return None
            code = b[p]
            if code == 0:
                p += 1
                if top >= 0:
                    ends.p[top] = p
                    stack.n -= 1
                    top = stack.p[stack.n - 1]
                continue
            s = p
            p += 1
            if code & 0x80:
                code &= 0x7F
                shift = 7
                while True:
                    if p >= n or shift > 56:
                        return None
                    code |= (<int64_t> (b[p] & 0x7F)) << shift
                    p += 1
                    if not b[p - 1] & 0x80:
                        break
                    shift += 7
            if top < 0 and offs.n:
                return None
            if code >= nplans or start[code] < 0:
                return None
            i = offs.n
            vpush(&offs, s)
            vpush(&codes, code)
            vpush(&par, top)
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
                    return None  # a fixed-size value past the section
                if op == OP_SKIP:
                    p += a
                elif op == OP_REF4:
                    vpush(&R, p)
                    p += 4
                elif op == OP_UREF or op == OP_REFADDR:
                    vpush(&S, i)
                    vpush(&S, p)
                    vpush(&S, bb)
                    vpush(&S, c)
                    vpush(&S, rd(b, p, <int> a) + (u if op == OP_UREF else 0))
                    p += a
                elif op == OP_LOC:
                    L.append((i, c, bb, rd(b, p, <int> a)))
                    p += a
                elif op == OP_REFUDATA or op == OP_LOCLISTX:
                    q = p
                    v = 0
                    shift = 0
                    while True:
                        if q >= n or shift > 56:
                            return None
                        v |= (<int64_t> (b[q] & 0x7F)) << shift
                        q += 1
                        if not b[q - 1] & 0x80:
                            break
                        shift += 7
                    if op == OP_REFUDATA:
                        vpush(&S, i)
                        vpush(&S, p)
                        vpush(&S, bb)
                        vpush(&S, c)
                        vpush(&S, u + v)
                    else:
                        L.append((i, c, bb, v))
                    p = q
                elif op == OP_LEB:
                    while p < n and b[p] & 0x80:
                        p += 1
                    if p >= n:
                        return None
                    p += 1
                elif op == OP_STRING:
                    while p < n and b[p]:
                        p += 1
                    if p >= n:
                        return None
                    p += 1
                elif op == OP_BLOCK:
                    if a == 0:
                        blen = 0
                        shift = 0
                        while True:
                            if p >= n or shift > 56:
                                return None
                            blen |= (<int64_t> (b[p] & 0x7F)) << shift
                            p += 1
                            if not b[p - 1] & 0x80:
                                break
                            shift += 7
                    else:
                        if p + a > n:
                            return None
                        blen = rd(b, p, <int> a)
                        p += a
                    if p + blen > n:
                        return None
                    if bb and blen:
                        # Only an expression holding one of the DIE-naming opcodes (bytes
                        # of expr.REF_OPS anywhere in it, as expr.might_ref) goes to Python.
                        for q in range(p, p + blen):
                            if refop[b[q]]:
                                expr(d, p, p + blen, i, X)
                                break
                    p += blen
                else:
                    return None
            if p > n:
                return None
            vpush(&ends, p)
            if kids[code]:
                vpush(&stack, i)
                top = i
        if p > end or offs.n == 0:
            return None
        for q in range(1, stack.n):  # producers may omit the trailing nulls
            ends.p[stack.p[q]] = end
        ok = True
        return (vlist(&offs), vlist(&codes), vlist(&par), vlist(&ends), varray(&R), varray(&S), X, L,
                (varray(&offs), varray(&codes), varray(&par), varray(&ends)))
    finally:
        free(offs.p)
        free(codes.p)
        free(par.p)
        free(ends.p)
        free(R.p)
        free(S.p)
        free(stack.p)
