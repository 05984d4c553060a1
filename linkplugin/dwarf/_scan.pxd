# What the rewrite kernel takes from the scanner (_rewritecore.plan_unit): its loop and output,
# to scan a unit and prepare it in one stretch without Python objects in between.
from libc.stdint cimport int64_t, uint8_t

from linkplugin.dwarf._buf cimport IV


cdef struct Out:
    IV offs, codes, par, ends, stack
    IV rpos, rdie, rform, rat, rtgt  # position, DIE, form, attribute, target of every reference
    IV L        # (DIE, attribute, form, value) of each location-list pointer
    IV E        # (DIE, start, end) of each expression block holding a DIE-naming opcode


cdef int scan_dies(const uint8_t *b, Py_ssize_t n, Py_ssize_t die_off, Py_ssize_t end, int64_t u,
                   const int64_t *prog, const int64_t *start, Py_ssize_t nplans, const uint8_t *kids,
                   const uint8_t *refop, Out *o) noexcept nogil
cdef void free_out(Out *o) noexcept nogil
