# Growable buffers for the compiled kernels that need no GIL, bytes (Buf) and int64s (IV): a
# failed realloc sets ``err`` (the writes after it are dropped) and the caller raises
# MemoryError once it holds the GIL again (or, told by ``ipush``'s -1, stops at once, as the
# scanner does). The caller owns ``p`` and frees it (``ifree``).
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy


cdef struct Buf:
    uint8_t *p
    Py_ssize_t n
    Py_ssize_t cap
    int err


cdef inline int grow(Buf *b, Py_ssize_t need) noexcept nogil:
    """Room for ``need`` more bytes (doubling, from 4 KiB); -1 and ``err`` set if there is none."""
    cdef uint8_t *q
    cdef Py_ssize_t cap
    if b.n + need <= b.cap:
        return 0
    cap = b.cap * 2 if b.cap else 4096
    while cap < b.n + need:
        cap *= 2
    q = <uint8_t *> realloc(b.p, cap)
    if q == NULL:
        b.err = 1
        return -1
    b.p = q
    b.cap = cap
    return 0


cdef inline void put(Buf *b, uint8_t c) noexcept nogil:
    if b.n < b.cap or grow(b, 1) == 0:
        b.p[b.n] = c
        b.n += 1


cdef inline void raw(Buf *b, const uint8_t *s, Py_ssize_t n) noexcept nogil:
    if n > 0 and grow(b, n) == 0:
        memcpy(b.p + b.n, s, n)
        b.n += n


cdef inline void uleb(Buf *b, uint64_t v) noexcept nogil:
    """Append ``v`` as ULEB128."""
    if grow(b, 10):
        return
    while v >= 0x80:
        b.p[b.n] = <uint8_t> ((v & 0x7F) | 0x80)
        b.n += 1
        v >>= 7
    b.p[b.n] = <uint8_t> v
    b.n += 1


cdef struct IV:
    int64_t *p
    Py_ssize_t n
    Py_ssize_t cap
    int err


cdef inline int ipush(IV *v, int64_t x) noexcept nogil:
    """Append ``x``: 0, or -1 (and ``err`` set, ``x`` dropped) when there is no room."""
    cdef int64_t *q
    cdef Py_ssize_t cap
    if v.n == v.cap:
        cap = v.cap * 2 if v.cap else 64
        q = <int64_t *> realloc(v.p, cap * sizeof(int64_t))
        if q == NULL:
            v.err = 1
            return -1
        v.p = q
        v.cap = cap
    v.p[v.n] = x
    v.n += 1
    return 0


cdef inline void ifree(IV *v) noexcept nogil:
    """Free the vector's block and leave it empty."""
    free(v.p)
    v.p = NULL
    v.n = v.cap = 0
    v.err = 0
