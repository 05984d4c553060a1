# A growable byte buffer for the compiled kernels (_hashcore, _rewritecore): the caller owns
# ``p`` and frees it.
from libc.stdint cimport uint8_t
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
