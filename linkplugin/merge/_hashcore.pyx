# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled hash tokenizer: the token stream of every root of a unit as bytes, in C.

It mirrors ``tokens.py`` (the reference): each attribute becomes the same information, written as
a typed, self-delimiting byte token instead of a tuple, so two roots get equal streams exactly
when the pure path gives them equal token lists (the hash values differ between the paths, the
merge decisions and output bytes do not). File tokens come from the Python ``file`` callback
(marshalled), so what a file means stays defined in one place. On anything unusual (a reference
to a non-DIE, a string past its section) it returns None and the caller runs the pure path,
which raises the exact error.

Tokens (every integer LEB128, ``sleb`` where it may be negative):
  H tag children sleb(parent)   a DIE's head                k at v           a constant
  F at form sleb(v)             a form-typed value          B at form n data  bytes of a form
  s at n data                   a string                    f n marshal       a file token
  U at unit v                   a unit-only value           G at v            another unit's DIE
  L at sleb(rel)                a DIE of the same root      l at              a true flag
  R u32(root) at rel            a DIE of another root (the caller replaces 'R'+u32)
"""
from libc.stdint cimport int64_t, uint64_t, uint8_t, uint32_t
from libc.string cimport memchr, memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdlib cimport free

from linkplugin.merge._buf cimport Buf, grow, uleb

import numpy as np

# Op kinds of a tokenizer program (kept equal to tokens.TOP_*); 6 int64s per op:
# (op, attribute, form, size, class, implicit constant)
DEF T_END = 0
DEF T_SKIP = 1      # size bytes, no token (DW_AT_sibling)
DEF T_FIXED = 2     # a fixed-size value, classified
DEF T_RAW = 3       # a fixed-size value tokenised as its bytes
DEF T_STRING = 4
DEF T_SDATA = 5     # classified, signed
DEF T_ULEB = 6      # classified (class C_SKIP: DW_AT_sibling)
DEF T_BLOCK = 7     # size: length size (1, 2, 4; 0 = ULEB)
DEF T_IMPLICIT = 8  # class C_FILE or a constant
DEF T_FLAGP = 9

# Classes of a value (tokens._classify)
DEF C_SKIP = 0
DEF C_UREF = 1
DEF C_REFADDR = 2
DEF C_STRP = 3
DEF C_STRX = 4
DEF C_LINESTRP = 5
DEF C_FILE = 6
DEF C_UINDEX = 7
DEF C_DATA = 8      # a constant when below 2**(8 * size - 1)
DEF C_UDATA = 9
DEF C_SDATA = 10
DEF C_FLAG = 11
DEF C_OTHER = 12


cdef inline int put(Buf *b, uint8_t c) except -1:
    if b.n == b.cap:
        grow(b, 1)
    b.p[b.n] = c
    b.n += 1
    return 0


cdef inline int known(Buf *b, uint64_t at, uint64_t v) except -1:
    """Token 'k': attribute ``at`` with a constant ``v`` whatever its form."""
    put(b, b'k')
    uleb(b, at)
    uleb(b, v)
    return 0


cdef inline int by_form(Buf *b, uint64_t at, uint64_t form) except -1:
    """Token 'F': attribute ``at`` in ``form``; the caller writes the value."""
    put(b, b'F')
    uleb(b, at)
    uleb(b, form)
    return 0


cdef int sleb(Buf *b, int64_t v) except -1:
    cdef uint8_t byte
    grow(b, 10)
    while True:
        byte = v & 0x7F
        v >>= 7
        if (v == 0 and not (byte & 0x40)) or (v == -1 and (byte & 0x40)):
            b.p[b.n] = byte
            b.n += 1
            return 0
        b.p[b.n] = byte | 0x80
        b.n += 1


cdef int raw(Buf *b, const uint8_t *s, Py_ssize_t n) except -1:
    grow(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef inline uint64_t rd(const uint8_t *d, Py_ssize_t p, int size) noexcept nogil:
    cdef uint64_t v = 0
    cdef int k
    for k in range(size):
        v |= (<uint64_t> d[p + k]) << (8 * k)
    return v


cdef Py_ssize_t find_die(const int64_t *offs, Py_ssize_t n, int64_t value) noexcept nogil:
    """Index of the DIE at offset ``value``, or -1."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if offs[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and offs[lo] == value:
        return lo
    return -1


cdef int cstring(Buf *b, int64_t at, const uint8_t[::1] sec, uint64_t off) except -2:
    """An 's' token of the NUL-terminated string at ``off``; 1 if it is not there."""
    cdef Py_ssize_t n = sec.shape[0]
    cdef const uint8_t *e
    if n == 0 or off >= <uint64_t> n:
        return 1
    e = <const uint8_t *> memchr(&sec[off], 0, n - off)
    if e == NULL:
        return 1
    put(b, b's')
    uleb(b, at)
    uleb(b, e - &sec[off])
    raw(b, &sec[off], e - &sec[off])
    return 0


def tokenize(const uint8_t[::1] info, int64_t u, int64_t uend, const int64_t[::1] offs,
             const int64_t[::1] codes, const int64_t[::1] parent, const int64_t[::1] roots,
             const int64_t[::1] root_ends, const int64_t[::1] root_of, const int64_t[::1] prog,
             const int64_t[::1] start, list heads, const uint8_t[::1] strs, const uint8_t[::1] str_offsets,
             int64_t so_base, int offset_size, const uint8_t[::1] line_strs, object file_token):
    """(stream, root start offsets, R token offsets, R token owners, edges, name spans) or None.

    ``heads[code]`` is the encoded head of a DIE of that code (b'H' tag children), ``file_token(at,
    value)`` the marshalled file token. ``edges[k]`` lists the roots that root ``k`` references,
    in content order."""
    cdef Py_ssize_t n = offs.shape[0], nroots = roots.shape[0], ninfo = info.shape[0]
    cdef Py_ssize_t k, j, r, e, p, pc, t, q
    cdef int64_t op, at, form, size, cls, ic, code, s
    cdef uint64_t v
    cdef int64_t sv
    cdef int shift, rc
    cdef uint8_t byte
    cdef const uint8_t *d = &info[0]
    cdef const int64_t *offs_p = &offs[0]
    cdef Buf b
    cdef bytes head
    cdef list edges = []
    cdef list kedges
    b.p = NULL
    b.n = b.cap = 0
    rstart = np.empty(nroots + 1, dtype=np.int64)
    cdef int64_t[::1] rs = rstart
    # (start, end) of the last DW_AT_name, DW_AT_decl_file and DW_AT_decl_line tokens of each
    # root's own DIE (-1: none): what the pure path's hash._name_key reads
    spans = np.full((nroots, 6), -1, dtype=np.int64)
    cdef int64_t[:, ::1] sp6 = spans
    cdef int64_t prev_at = 0, slot
    cdef Py_ssize_t prev_start = 0
    cdef list rpos = []
    cdef list rown = []
    file_cache = {}
    try:
        for k in range(nroots):
            r = roots[k]
            e = root_ends[k]
            rs[k] = b.n
            kedges = []
            for j in range(r, e):
                code = codes[j]
                head = heads[code]
                raw(&b, <const uint8_t *> (<char *> head), len(head))
                sleb(&b, parent[j] - r if j > r else -1)
                prev_at = 0
                prev_start = b.n
                p = offs_p[j]
                # skip the abbreviation code
                while p < ninfo and d[p] & 0x80:
                    p += 1
                p += 1
                pc = start[code]
                while True:
                    op = prog[pc]
                    at = prog[pc + 1]
                    form = prog[pc + 2]
                    size = prog[pc + 3]
                    cls = prog[pc + 4]
                    ic = prog[pc + 5]
                    pc += 6
                    if j == r and b.n > prev_start and (prev_at == 3 or prev_at == 0x3a or prev_at == 0x3b):
                        slot = 0 if prev_at == 3 else 2 if prev_at == 0x3a else 4
                        sp6[k, slot] = prev_start
                        sp6[k, slot + 1] = b.n
                    prev_at = at
                    prev_start = b.n
                    if op == T_END:
                        break
                    if op == T_SKIP:
                        p += size
                        continue
                    if op == T_FLAGP:
                        put(&b, b'l')
                        uleb(&b, at)
                        continue
                    if op == T_IMPLICIT:
                        if cls == C_FILE:
                            v = <uint64_t> ic
                            cls = C_FILE
                        elif ic >= 0:
                            known(&b, at, <uint64_t> ic)
                            continue
                        else:
                            by_form(&b, at, form)
                            sleb(&b, ic)
                            continue
                    elif op == T_FIXED or op == T_RAW:
                        if p + size > ninfo:
                            return None
                        if op == T_RAW:
                            put(&b, b'B')
                            uleb(&b, at)
                            uleb(&b, form)
                            uleb(&b, size)
                            raw(&b, d + p, size)
                            p += size
                            continue
                        v = rd(d, p, <int> size)
                        p += size
                    elif op == T_STRING:
                        q = p
                        while q < ninfo and d[q]:
                            q += 1
                        if q >= ninfo:
                            return None
                        put(&b, b's')
                        uleb(&b, at)
                        uleb(&b, q - p)
                        raw(&b, d + p, q - p)
                        p = q + 1
                        continue
                    elif op == T_BLOCK:
                        if size == 0:
                            v = 0
                            shift = 0
                            while True:
                                if p >= ninfo or shift > 56:
                                    return None
                                v |= (<uint64_t> (d[p] & 0x7F)) << shift
                                p += 1
                                if not d[p - 1] & 0x80:
                                    break
                                shift += 7
                        else:
                            if p + size > ninfo:
                                return None
                            v = rd(d, p, <int> size)
                            p += size
                        if p + <Py_ssize_t> v > ninfo:
                            return None
                        put(&b, b'B')
                        uleb(&b, at)
                        uleb(&b, form)
                        uleb(&b, v)
                        raw(&b, d + p, v)
                        p += v
                        continue
                    elif op == T_SDATA or op == T_ULEB:
                        v = 0
                        shift = 0
                        while True:
                            if p >= ninfo or shift > 63:
                                return None
                            byte = d[p]
                            v |= (<uint64_t> (byte & 0x7F)) << shift
                            p += 1
                            shift += 7
                            if not byte & 0x80:
                                break
                        if op == T_SDATA and shift < 64 and (byte & 0x40):
                            v |= (~(<uint64_t> 0)) << shift
                        if cls == C_SKIP:
                            continue
                    else:
                        return None
                    # classify the value v (tokens._classify)
                    if cls == C_UREF or cls == C_REFADDR:
                        sv = <int64_t> v + (u if cls == C_UREF else 0)
                        t = find_die(offs_p, n, sv)
                        if t < 0:
                            if u <= sv < uend:
                                return None  # not a DIE: the pure path raises
                            put(&b, b'G')
                            uleb(&b, at)
                            uleb(&b, <uint64_t> sv)
                            continue
                        s = root_of[t]
                        if s == k:
                            put(&b, b'L')
                            uleb(&b, at)
                            sleb(&b, t - r)
                        elif s >= 0:
                            kedges.append(s)
                            rpos.append(b.n)
                            rown.append(k)
                            put(&b, b'R')
                            grow(&b, 4)
                            b.p[b.n] = s & 0xFF
                            b.p[b.n + 1] = (s >> 8) & 0xFF
                            b.p[b.n + 2] = (s >> 16) & 0xFF
                            b.p[b.n + 3] = (s >> 24) & 0xFF
                            b.n += 4
                            uleb(&b, at)
                            uleb(&b, t - roots[s])
                        else:
                            put(&b, b'U')
                            uleb(&b, at)
                            uleb(&b, u)
                            uleb(&b, <uint64_t> sv)
                    elif cls == C_STRP:
                        if cstring(&b, at, strs, v):
                            return None
                    elif cls == C_LINESTRP:
                        if cstring(&b, at, line_strs, v):
                            return None
                    elif cls == C_STRX:
                        q = so_base + v * offset_size
                        if v > (1 << 40) or q + offset_size > str_offsets.shape[0]:
                            return None
                        if cstring(&b, at, strs, rd(&str_offsets[0], q, offset_size)):
                            return None
                    elif cls == C_FILE:
                        key = (at << 40) | v
                        tok = file_cache.get(key)
                        if tok is None:
                            tok = file_cache[key] = file_token(at, v)
                        put(&b, b'f')
                        uleb(&b, len(tok))
                        raw(&b, <const uint8_t *> (<char *> tok), len(tok))
                    elif cls == C_UINDEX:
                        put(&b, b'U')
                        uleb(&b, at)
                        uleb(&b, u)
                        uleb(&b, v)
                    elif cls == C_DATA:
                        if v < (<uint64_t> 1) << (size * 8 - 1):
                            known(&b, at, v)
                        else:
                            by_form(&b, at, form)
                            uleb(&b, v)
                    elif cls == C_UDATA:
                        known(&b, at, v)
                    elif cls == C_SDATA:
                        sv = <int64_t> v
                        if sv >= 0:
                            known(&b, at, v)
                        else:
                            by_form(&b, at, form)
                            sleb(&b, sv)
                    elif cls == C_FLAG:
                        if v == 1:
                            put(&b, b'l')
                            uleb(&b, at)
                        else:
                            by_form(&b, at, form)
                            uleb(&b, v)
                    else:
                        by_form(&b, at, form)
                        uleb(&b, v)
            edges.append(kedges)
        rs[nroots] = b.n
        stream = PyBytes_FromStringAndSize(<char *> b.p, b.n) if b.n else b""
        return stream, rstart, rpos, rown, edges, spans
    finally:
        free(b.p)


def digest_roots(bytes stream, const int64_t[::1] rstart, list rpos, list rown, list prefixes, list edges,
                 object blake, object finish_scc):
    """Every root's hash: its prefix and tokens, each 'R' + root replaced by 'T' + that root's hash
    (or 'C' for a member of the same cycle, whose hashes ``finish_scc`` then numbers), digested by
    ``blake``, in an order where referenced roots come first (Tarjan's SCCs)."""
    cdef Py_ssize_t n = len(edges), k, j, m, pos, s, e, w, v, top
    cdef const uint8_t *sp = <const uint8_t *> (<char *> stream) if len(stream) else NULL
    cdef Buf b
    b.p = NULL
    b.n = b.cap = 0
    # R token offsets per root (CSR)
    roff = np.zeros(n + 1, dtype=np.int64)
    cdef int64_t[::1] ro = roff
    for k in rown:
        ro[<Py_ssize_t> k + 1] += 1
    for k in range(n):
        ro[k + 1] += ro[k]
    rp = np.asarray(rpos, dtype=np.int64)  # in stream order, so grouped by root in order
    cdef int64_t[::1] rpv = rp
    # edges (CSR)
    eoff = np.zeros(n + 1, dtype=np.int64)
    cdef int64_t[::1] eo = eoff
    for k in range(n):
        eo[k + 1] = eo[k] + len(<list> edges[k])
    etgt = np.empty(eo[n], dtype=np.int64)
    cdef int64_t[::1] et = etgt
    for k in range(n):
        j = eo[k]
        for v in <list> edges[k]:
            et[j] = v
            j += 1
    hashes = [b""] * n
    done = np.zeros(n, dtype=np.uint8)   # hash known
    member = np.zeros(n, dtype=np.uint8)  # in the SCC being digested
    cdef uint8_t[::1] dn = done
    cdef uint8_t[::1] mb = member
    # Tarjan, iterative
    index = np.full(n, -1, dtype=np.int64)
    low = np.zeros(n, dtype=np.int64)
    onst = np.zeros(n, dtype=np.uint8)
    stk = np.empty(n, dtype=np.int64)
    work_v = np.empty(n, dtype=np.int64)
    work_p = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] idx = index, lo = low, st = stk, wv = work_v, wp = work_p
    cdef uint8_t[::1] on = onst
    cdef Py_ssize_t counter = 0, sp_n = 0, wn, root
    cdef bytes h
    try:
        for root in range(n):
            if idx[root] >= 0:
                continue
            wn = 0
            wv[0] = root
            wp[0] = eo[root]
            wn = 1
            idx[root] = lo[root] = counter
            counter += 1
            st[sp_n] = root
            sp_n += 1
            on[root] = 1
            while wn:
                v = wv[wn - 1]
                if wp[wn - 1] < eo[v + 1]:
                    w = et[wp[wn - 1]]
                    wp[wn - 1] += 1
                    if idx[w] < 0:
                        idx[w] = lo[w] = counter
                        counter += 1
                        st[sp_n] = w
                        sp_n += 1
                        on[w] = 1
                        wv[wn] = w
                        wp[wn] = eo[w]
                        wn += 1
                    elif on[w] and idx[w] < lo[v]:
                        lo[v] = idx[w]
                    continue
                wn -= 1
                if wn and lo[v] < lo[wv[wn - 1]]:
                    lo[wv[wn - 1]] = lo[v]
                if lo[v] != idx[v]:
                    continue
                # v closes an SCC: stack entries down to v
                m = sp_n - 1
                while st[m] != v:
                    m -= 1
                scc = [st[j] for j in range(m, sp_n)]
                for j in range(m, sp_n):
                    on[st[j]] = 0
                    mb[st[j]] = 1
                sp_n = m
                local = {}
                for k in scc:
                    b.n = 0
                    pre = <bytes> prefixes[k]
                    raw(&b, <const uint8_t *> (<char *> pre), len(pre))
                    s = rstart[k]
                    for j in range(ro[k], ro[k + 1]):
                        pos = rpv[j]
                        raw(&b, sp + s, pos - s)
                        w = sp[pos + 1] | (sp[pos + 2] << 8) | (sp[pos + 3] << 16) | (<Py_ssize_t> sp[pos + 4] << 24)
                        if mb[w]:
                            put(&b, b'C')
                        else:
                            put(&b, b'T')
                            h = hashes[w]
                            raw(&b, <const uint8_t *> (<char *> h), len(h))
                        s = pos + 5
                    raw(&b, sp + s, rstart[k + 1] - s)
                    local[k] = blake(PyBytes_FromStringAndSize(<char *> b.p, b.n))
                for k in scc:
                    mb[k] = 0
                if len(scc) == 1:
                    hashes[scc[0]] = local[scc[0]]
                else:
                    finish_scc(scc, local, edges, hashes)
        return hashes
    finally:
        free(b.p)
