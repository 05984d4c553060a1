# LEB128 and little-endian readers for the compiled kernels (_scan, _parse, _hashcore, _rewritecore):
# no GIL needed; the LEB128 readers are bounds-checked, read_le's callers check the bounds first.
from libc.stdint cimport int64_t, uint64_t, uint8_t


cdef inline uint64_t read_le(const uint8_t *d, Py_ssize_t p, int size) noexcept nogil:
    """The ``size``-byte little-endian number at ``p`` (size 0 to 8)."""
    cdef uint64_t v = 0
    cdef int k
    for k in range(size):
        v |= (<uint64_t> d[p + k]) << (8 * k)
    return v


cdef inline Py_ssize_t _read_uleb(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, uint64_t *out,
                                  int max_shift) noexcept nogil:
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if p >= n or shift > max_shift:
            return -1
        b = d[p]
        v |= (<uint64_t> (b & 0x7F)) << shift
        p += 1
        if not b & 0x80:
            out[0] = v
            return p
        shift += 7


cdef inline Py_ssize_t read_uleb(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, uint64_t *out) noexcept nogil:
    """Position after the ULEB128 at ``p``, its value in ``out`` (-1: truncated or wider than 63 bits)."""
    return _read_uleb(d, n, p, out, 56)


cdef inline Py_ssize_t read_sleb(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, int64_t *out) noexcept nogil:
    """Position after the SLEB128 at ``p``, its value in ``out`` (-1: truncated or not an int64;
    10 bytes hold one when the last only extends the sign)."""
    cdef uint64_t v = 0
    cdef int shift = 0
    while True:
        if p >= n or shift > 63 or (shift == 63 and d[p] != 0 and d[p] != 0x7F):
            return -1
        v |= (<uint64_t> (d[p] & 0x7F)) << shift
        p += 1
        shift += 7
        if not d[p - 1] & 0x80:
            break
    if shift < 64 and (d[p - 1] & 0x40):
        v |= (~(<uint64_t> 0)) << shift
    out[0] = <int64_t> v
    return p


cdef inline Py_ssize_t read_uleb64(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, uint64_t *out) noexcept nogil:
    """As ``read_uleb``, but any 64-bit value is taken (up to 10 bytes; bits past 64 dropped):
    for values that are copied or hashed as they are, not used as sizes or offsets."""
    return _read_uleb(d, n, p, out, 63)


cdef inline Py_ssize_t read_sleb64(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, int64_t *out) noexcept nogil:
    """As ``read_sleb``, with ``read_uleb64``'s bound (up to 10 bytes; bits past 64 dropped)."""
    cdef int shift = 0
    cdef uint64_t r = 0
    cdef uint8_t byte = 0
    while True:
        if p >= n or shift > 63:
            return -1
        byte = d[p]
        r |= (<uint64_t> (byte & 0x7F)) << shift
        p += 1
        shift += 7
        if not byte & 0x80:
            break
    if shift < 64 and byte & 0x40:
        r |= ~(<uint64_t> 0) << shift
    out[0] = <int64_t> r
    return p


cdef inline Py_ssize_t read_spec(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, uint64_t *at, uint64_t *form,
                                 int64_t *ic) noexcept nogil:
    """Position after the attribute specification of an abbreviation at ``p``: its attribute,
    form and implicit constant (0 unless DW_FORM_implicit_const); (0, 0) ends the list (-1: truncated)."""
    p = read_uleb(d, n, p, at)
    if p >= 0:
        p = read_uleb(d, n, p, form)
    ic[0] = 0
    if p >= 0 and form[0] == 0x21:  # DW_FORM_implicit_const
        p = read_sleb(d, n, p, ic)
    return p
