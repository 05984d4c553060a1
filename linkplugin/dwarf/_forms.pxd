# The forms' rows in the kernels' template tables (forms.form_slot, the same in Python): the
# DWARF forms 0 to 0x2c and the GNU ones 0x1f00 to 0x1f2f in 93 rows, rather than a row for every
# number up to 0x1f2f (7,984 rows: 1.5 MB of templates written, so resident, in every merge).
from libc.stdint cimport int64_t, uint64_t


cdef enum:
    TPL_SLOTS = 0x5d


cdef inline int64_t form_slot(uint64_t form) noexcept nogil:
    """The form's row, -1 for a form without one (the kernels decline the table)."""
    if form < 0x2d:
        return <int64_t> form
    if 0x1f00 <= form < 0x1f30:
        return <int64_t> (form - 0x1f00 + 0x2d)
    return -1
