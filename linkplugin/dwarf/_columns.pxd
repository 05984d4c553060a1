# The data of the kernels' input columns without typed memoryviews: acquiring a typed view costs
# about half a microsecond, more than some small units' work in a kernel (glibc's libc.so.6:
# 2,063 units, a dozen columns each per call). array('q'), bytes, bytearray and the
# scanner's 1-D memoryviews are read directly; anything else through a typed view. The caller keeps the
# objects alive while it uses the pointers.
from libc.stdint cimport int64_t, uint8_t, uint32_t
from cpython.array cimport array
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE


cdef extern from "Python.h":
    Py_buffer *PyMemoryView_GET_BUFFER(object)


cdef inline bint _flat(Py_buffer *b, Py_ssize_t itemsize) noexcept:
    return b.ndim == 1 and b.itemsize == itemsize and (b.strides == NULL or b.strides[0] == itemsize)


cdef inline Py_ssize_t int64_column(object a, const int64_t **p) except -1:
    """The int64 column ``a``: its length, its data in ``p`` (NULL when empty)."""
    cdef Py_buffer *b
    if type(a) is array and (<array> a).ob_descr.typecode == b'q':
        p[0] = <const int64_t *> (<array> a).data.as_voidptr if len(a) else NULL
        return len(a)
    if type(a) is memoryview:
        b = PyMemoryView_GET_BUFFER(a)
        if (_flat(b, 8) and b.format != NULL and (b.format[0] == b'q' or b.format[0] == b'l')
                and b.format[1] == 0):
            p[0] = <const int64_t *> b.buf if b.shape[0] else NULL
            return b.shape[0]
    cdef const int64_t[::1] v = a
    p[0] = &v[0] if v.shape[0] else NULL
    return v.shape[0]


cdef inline Py_ssize_t byte_column(object a, const uint8_t **p) except -1:
    """The bytes ``a``: their length, their data in ``p`` (NULL when empty)."""
    cdef Py_buffer *b
    if type(a) is bytes:
        p[0] = <const uint8_t *> PyBytes_AS_STRING(a) if PyBytes_GET_SIZE(a) else NULL
        return PyBytes_GET_SIZE(a)
    if type(a) is bytearray:
        p[0] = <const uint8_t *> PyByteArray_AS_STRING(a) if PyByteArray_GET_SIZE(a) else NULL
        return PyByteArray_GET_SIZE(a)
    if type(a) is array and (<array> a).ob_descr.typecode == b'B':
        p[0] = <const uint8_t *> (<array> a).data.as_voidptr if len(a) else NULL
        return len(a)
    if type(a) is memoryview:
        b = PyMemoryView_GET_BUFFER(a)
        if _flat(b, 1) and b.format != NULL and b.format[0] == b'B' and b.format[1] == 0:
            p[0] = <const uint8_t *> b.buf if b.shape[0] else NULL
            return b.shape[0]
    cdef const uint8_t[::1] v = a
    p[0] = &v[0] if v.shape[0] else NULL
    return v.shape[0]


cdef inline Py_ssize_t int64_table(object a, Py_ssize_t d1, Py_ssize_t d2, const int64_t **p) except -1:
    """The C-contiguous int64 array ``a`` of shape (any, d1, d2) (a template of a kernel's, made
    once and passed for every unit): its first dimension, its data in ``p``; -1 for any other
    shape."""
    cdef Py_buffer *b
    if type(a) is memoryview:
        b = PyMemoryView_GET_BUFFER(a)
        if (b.ndim == 3 and b.itemsize == 8 and b.format != NULL and (b.format[0] == b'q' or b.format[0] == b'l')
                and b.format[1] == 0 and b.shape[1] == d1 and b.shape[2] == d2
                and (b.strides == NULL or (b.strides[2] == 8 and b.strides[1] == 8 * d2
                                           and b.strides[0] == 8 * d1 * d2))):
            p[0] = <const int64_t *> b.buf
            return b.shape[0] if b.shape[0] * d1 * d2 else -1
    cdef const int64_t[:, :, ::1] v = a
    if v.shape[1] != d1 or v.shape[2] != d2 or v.shape[0] * d1 * d2 == 0:
        return -1
    if v.strides[1] != d2 * 8 or v.strides[0] != d1 * d2 * 8:
        return -1
    p[0] = &v[0, 0, 0]
    return v.shape[0]


ctypedef fused offset_t:  # DIE offsets (or indexes) as the hash phase keeps them
    int64_t
    uint32_t


cdef inline Py_ssize_t find_offset(const offset_t *a, Py_ssize_t n, int64_t x) noexcept nogil:
    """Index of ``x`` in the sorted ``a``, -1 if absent."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if <int64_t> a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < n and <int64_t> a[lo] == x else -1
