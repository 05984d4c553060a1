# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled copy loop of ``rewrite._rewrite``: the surviving DIEs' bytes with their new
abbreviation codes, references and operands, in C.

The pure loop in rewrite.py is the reference; this one takes the same per-DIE events (as sorted
arrays) and makes the same bytes, the same first-use order of new abbreviations and the same
lists of values left to patch.
"""
from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, realloc

from linkplugin.merge._buf cimport Buf, grow, uleb
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_FromStringAndSize

import numpy as np

# Event kinds (rewrite._rewrite): 0 drop DW_AT_sibling, 1 local ref4, 2 external ref_addr,
# 3 section-offset operand, 4 ULEB operand, 5 fixed-width operand.


cdef inline int copy(Buf *b, const uint8_t *s, Py_ssize_t n) except -1:
    if n > 0:
        grow(b, n)
        memcpy(b.p + b.n, s, n)
        b.n += n
    return 0


cdef inline int zeros(Buf *b, Py_ssize_t n) except -1:
    grow(b, n)
    memset(b.p + b.n, 0, n)
    b.n += n
    return 0


cdef int patch(Buf *b, int64_t pos, int64_t width, int64_t target) except -1:
    cdef int64_t row[3]
    row[0] = pos
    row[1] = width
    row[2] = target
    grow(b, sizeof(row))
    memcpy(b.p + b.n, row, sizeof(row))
    b.n += sizeof(row)
    return 0


def copy_unit(const uint8_t[::1] info, Py_ssize_t off, Py_ssize_t die_off, Py_ssize_t end, int ref_addr_w,
              const int64_t[::1] offs, const int64_t[::1] codes, const int64_t[::1] parent,
              const int64_t[::1] ends, const uint8_t[::1] kids, const uint8_t[::1] keep,
              const int64_t[::1] ev_pos, const int64_t[::1] ev_die, const int64_t[::1] ev_kind,
              const int64_t[::1] ev_w, const int64_t[::1] ev_b, dict extra, tuple new_form, int local_width,
              Py_ssize_t margin, object assign=None):
    """(unit bytes, new unit-relative offset of every DIE (-1: removed), new abbreviation keys
    (code, new reference forms, added specs) in first-use order, operands to fix
    [(position, width (< 0: fixed), DIE)], patches (int64 rows: position, width, old target), DIEs using
    each key), or None when the unit (plus ``margin`` bytes) grew too large for
    ``local_width``-byte local references.
    A key's code is ``assign(code, forms, added)`` when given (called once per key, at its first
    use), else its number in first-use order.

    Events are sorted by position and belong to kept DIEs; ``extra[i]`` is (added specs, bytes)
    of a DIE given attributes of its own."""
    cdef Py_ssize_t n = offs.shape[0], nev = ev_pos.shape[0], ncodes = kids.shape[0]
    cdef const uint8_t *d = &info[0]
    cdef Py_ssize_t i, e = 0, e0, src, start, pos, w, attr_end, k, nopen = 0, nloc = 0
    cdef int64_t code, kind, num
    cdef Buf out, kinds
    cdef int64_t *open_ends = NULL
    cdef int64_t *loc = NULL
    cdef int64_t t, v
    out.p = kinds.p = NULL
    out.n = out.cap = kinds.n = kinds.cap = 0
    new_rel = np.full(n, -1, dtype=np.int64)
    cdef int64_t[::1] rel = new_rel
    plain = np.zeros(ncodes, dtype=np.int64)  # new code of a DIE without events, by old code
    cdef int64_t[::1] plain_num = plain
    cdef dict numbers = {}
    cdef list counts = []
    cdef Py_ssize_t idx
    code_of = np.zeros(n + 1, dtype=np.int64)  # code of each key index (keys <= DIEs)
    uses = np.zeros(n + 1, dtype=np.int64)
    cdef int64_t[::1] code_v = code_of, uses_v = uses
    cdef list keys = []
    cdef list fix_operand = []
    cdef Buf pat  # (position, width, old target) int64 triples
    pat.p = NULL
    pat.n = pat.cap = 0
    cdef bint has_extra = len(extra) > 0
    try:
        open_ends = <int64_t *> realloc(NULL, (n + 1) * sizeof(int64_t))
        loc = <int64_t *> realloc(NULL, (2 * nev + 2) * sizeof(int64_t))
        if open_ends == NULL or loc == NULL:
            raise MemoryError()
        open_ends[0] = end + 1  # sentinel
        nopen = 1
        copy(&out, d + off, die_off - off)
        for i in range(n):
            if not keep[i]:
                continue
            start = offs[i]
            while open_ends[nopen - 1] <= start:
                grow(&out, 1)
                out.p[out.n] = 0
                out.n += 1
                nopen -= 1
            code = codes[i]
            # this DIE's events
            while e < nev and ev_die[e] < i:
                e += 1
            e0 = e
            while e < nev and ev_die[e] == i:
                e += 1
            if e == e0:
                num = plain_num[code]
                add = None
            else:
                num = 0
                add = extra.get(i) if has_extra else None
            if num == 0:
                kinds.n = 0
                for k in range(e0, e):
                    if ev_kind[k] <= 2:
                        grow(&kinds, 1)
                        kinds.p[kinds.n] = <uint8_t> ev_kind[k]
                        kinds.n += 1
                key = (code, PyBytes_FromStringAndSize(<char *> kinds.p, kinds.n) if kinds.n else b"",
                       add[0] if add is not None else ())
                got = numbers.get(key)
                if got is None:
                    idx = len(numbers)
                    numbers[key] = idx + 1
                    full = (code, tuple([new_form[kinds.p[k]] for k in range(kinds.n)]), key[2])
                    keys.append(full)
                    code_v[idx] = idx + 1 if assign is None else assign(*full)
                    num = idx + 1
                else:
                    num = got
                if e == e0 or (kinds.n == 0 and add is None):
                    plain_num[code] = num
            # num: 1 + the key's index
            uses_v[num - 1] += 1
            num = code_v[num - 1]
            rel[i] = out.n  # the unit's header is at 0
            uleb(&out, num)
            src = start + 1
            while d[src - 1] & 0x80:
                src += 1
            for k in range(e0, e):
                pos = ev_pos[k]
                kind = ev_kind[k]
                w = ev_w[k]
                copy(&out, d + src, pos - src)
                src = pos + w
                if kind == 1:
                    loc[nloc] = out.n
                    loc[nloc + 1] = ev_b[k]
                    nloc += 2
                    zeros(&out, local_width)
                elif kind == 2:
                    patch(&pat, out.n, ref_addr_w, ev_b[k])
                    zeros(&out, ref_addr_w)
                elif kind >= 3:
                    if kind == 3:
                        patch(&pat, out.n, w, ev_b[k])
                    else:
                        fix_operand.append((out.n, w if kind == 4 else -w, ev_b[k]))
                    copy(&out, d + pos, w)
            if kids[code]:
                attr_end = offs[i + 1] if i + 1 < n and parent[i + 1] == i else ends[i] - 1
                copy(&out, d + src, attr_end - src)
                open_ends[nopen] = ends[i]
                nopen += 1
            else:
                copy(&out, d + src, ends[i] - src)
            if add is not None:
                extra_bytes = <bytes> add[1]
                copy(&out, <const uint8_t *> (<char *> extra_bytes), len(extra_bytes))
        zeros(&out, nopen - 1)
        if local_width < 4 and out.n + margin > (<Py_ssize_t> 1) << (8 * local_width):
            return None
        for k in range(0, nloc, 2):
            t = rel[loc[k + 1]]
            v = loc[k]
            for w in range(local_width):
                out.p[v + w] = (t >> (8 * w)) & 0xFF
        v = out.n - 4
        out.p[0] = v & 0xFF
        out.p[1] = (v >> 8) & 0xFF
        out.p[2] = (v >> 16) & 0xFF
        out.p[3] = (v >> 24) & 0xFF
        body = PyBytes_FromStringAndSize(<char *> out.p, out.n)
        patches = np.frombuffer(PyBytes_FromStringAndSize(<char *> pat.p, pat.n), dtype=np.int64).reshape(-1, 3)
        return body, new_rel, keys, fix_operand, patches, uses[:len(keys)].tolist()
    finally:
        free(out.p)
        free(pat.p)
        free(kinds.p)
        free(open_ends)
        free(loc)
