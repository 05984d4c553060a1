# A growable byte buffer for the compiled kernels (_hashcore, _rewritecore): the caller owns
# ``p`` and frees it.
from libc.stdint cimport uint64_t, uint8_t
from libc.stdlib cimport realloc


cdef struct Buf:
    uint8_t *p
    Py_ssize_t n
    Py_ssize_t cap


cdef inline int grow(Buf *b, Py_ssize_t need) except -1:
    """Room for ``need`` more bytes (doubling, from 64 KiB)."""
    cdef uint8_t *q
    cdef Py_ssize_t cap
    if b.n + need <= b.cap:
        return 0
    cap = b.cap * 2 if b.cap else 65536
    while cap < b.n + need:
        cap *= 2
    q = <uint8_t *> realloc(b.p, cap)
    if q == NULL:
        raise MemoryError()
    b.p = q
    b.cap = cap
    return 0


cdef inline int uleb(Buf *b, uint64_t v) except -1:
    """Append ``v`` as ULEB128."""
    grow(b, 10)
    while True:
        if v < 0x80:
            b.p[b.n] = <uint8_t> v
            b.n += 1
            return 0
        b.p[b.n] = <uint8_t> ((v & 0x7F) | 0x80)
        b.n += 1
        v >>= 7
