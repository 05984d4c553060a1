# What the rewrite kernel takes from the expression scanner (_rewritecore.plan_unit): the
# DIE-naming operands of a unit's expression blocks, without Python objects in between.
from libc.stdint cimport int64_t, uint8_t


cdef int expr_rows(const uint8_t *d, Py_ssize_t n, const int64_t *blocks, Py_ssize_t nb, int64_t u, int A, int O,
                   int V, int64_t **rows, Py_ssize_t *nrows, bint *named) noexcept nogil
