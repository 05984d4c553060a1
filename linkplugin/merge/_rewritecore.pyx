# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled rewrite of one unit (``rewrite._rewrite`` in C): the reference analysis, the
abbreviation keys of the surviving DIEs and the copy with new codes, references and operands.

``Unit(...)`` takes a decoded unit (read.UnitDies as int64 arrays) and its removals, reads the
unit's abbreviation table from .debug_abbrev itself, checks every offset, index and length it
uses, and classifies every reference. Then, per unit: ``moved()`` (the DIEs that get their own
DW_AT_decl_file, computed in Python), ``set_extra``, ``keys(width)`` (each new abbreviation as
its table entry without the code, in first-use order) and ``copy(width, codes, margin, write)``.
The loops run without the GIL (raw pointers, no Python objects); Python objects are only made
around them. The pure loop in rewrite.py is the reference: same bytes, same first-use order,
same values left to patch.
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t, int32_t, uint32_t, INT64_MAX
from libc.stdlib cimport free, malloc, calloc, realloc
from libc.string cimport memchr, memcpy, memset
from cpython.bytes cimport PyBytes_FromStringAndSize

from linkplugin.dwarf._leb cimport read_le, read_sleb64, read_uleb64
from linkplugin.dwarf._columns cimport byte_column, find_offset, int64_column, offset_t
from linkplugin.dwarf._buf cimport ifree
from linkplugin.dwarf._scan cimport Out as Scanned, free_out, scan_dies
from linkplugin.dwarf._loclists cimport expr_rows

from cpython.array cimport array, clone, resize

cdef array _INT64 = array("q")
cdef array _INT32 = array("i")
cdef array _UINT32 = array("I")

from linkplugin.dwarf.forms import DwarfError

# The bulk of every per-unit call (Unit(), keys, copy) runs without the GIL: merge/__init__.py
# may run units on threads.
NOGIL = True

# ``width`` of the unit-local references that are DW_FORM_ref_udata, each in the fewest bytes
# (rewrite.UDATA); any other width is that many bytes (ref1, ref2, ref4).
DEF W_UDATA = 16
UDATA = W_UDATA
# At most this many counting passes find the sizes of a unit's ref_udata references (each pass
# only shrinks them; python3.11d's and libjvm.so's units settle in 2 to 4).
DEF UDATA_PASSES = 16
PASSES = UDATA_PASSES


cdef inline int uleb_len(uint64_t v) noexcept nogil:
    cdef int n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline void put_le(uint8_t *p, uint64_t v, int size) noexcept nogil:
    """``v`` as ``size`` little-endian bytes at ``p`` (bytes the copy reserved)."""
    cdef int k
    for k in range(size):
        p[k] = (v >> (8 * k)) & 0xFF


cdef inline void put_uleb(uint8_t *p, uint64_t v, int size) noexcept nogil:
    """``v`` as a ULEB128 of exactly ``size`` bytes at ``p`` (padded with continuation bytes
    when it needs fewer; the caller checked that it fits)."""
    cdef int k
    for k in range(size):
        p[k] = (v & 0x7F) | (0x80 if k + 1 < size else 0)
        v >>= 7

cdef enum:
    FORM_ADDR = 0x10
    FORM_REF1 = 0x11
    FORM_REF2 = 0x12
    FORM_REF4 = 0x13
    FORM_REF8 = 0x14
    FORM_REF_UDATA = 0x15
    FORM_IMPLICIT_CONST = 0x21
    FORM_DATA1 = 0x0B
    FORM_DATA2 = 0x05
    FORM_DATA4 = 0x06
    FORM_DATA8 = 0x07
    FORM_UDATA = 0x0F
    AT_SIBLING = 0x01
    AT_HIGH_PC = 0x12
    AT_GNU_ENTRY_VIEW = 0x2138
    NCONV = 2  # values a DIE may have re-encoded (rewrite.udata_specs)
    NCONST = 8  # implicit constants a DIE may have written as data (rewrite._as_data: at most 6)
    AT_ORIGIN = 0x31
    AT_SPEC = 0x47
    AT_DECL_FILE = 0x3A
    TAG_INLINED_SUBROUTINE = 0x1D
    MAX_CODES = 1 << 16

# Status of the nogil parts.
cdef enum:
    ST_OK = 0
    ST_NOMEM = 1
    ST_CORRUPT = 2      # an offset, index or length out of place (detail in ``bad``)
    ST_BADREF = 3       # a reference into the unit that is not a DIE (``bad``: its target)
    ST_PURE = 4         # a shape this kernel leaves to the pure loop (more than 32 references in a DIE)
    ST_OVERFLOW = 5     # the unit does not fit the local reference width
    ST_NOFIT = 6        # an expression operand does not fit its old width

# Event kinds (rewrite._rewrite): 0 drop DW_AT_sibling, 1 local reference, 2 external ref_addr,
# 3 section-offset operand, 4 ULEB operand, 5 fixed-width operand.


cdef struct Out:
    uint8_t *p
    Py_ssize_t n
    Py_ssize_t cap
    bint write      # 0: only count the bytes


cdef struct Copied:  # what ``Unit.copy``'s passes leave (Unit._copy_run)
    int st
    int64_t bad
    Out out, pat
    int64_t *rel
    int64_t *uses
    int64_t *prev
    int64_t *loc
    int64_t *fix
    Py_ssize_t nloc, nfix


cdef void free_copied(Copied *c) noexcept nogil:
    free(c.out.p)
    free(c.pat.p)
    free(c.rel)
    free(c.uses)
    free(c.prev)
    free(c.loc)
    free(c.fix)
    memset(c, 0, sizeof(Copied))


cdef inline void oinit(Out *o, bint write) noexcept nogil:
    o.p = NULL
    o.n = o.cap = 0
    o.write = write


cdef int ogrow(Out *b, Py_ssize_t need) noexcept nogil:
    cdef uint8_t *q
    cdef Py_ssize_t cap
    if not b.write or b.n + need <= b.cap:
        return 0
    cap = b.cap * 2 if b.cap else 4096
    while cap < b.n + need:
        cap *= 2
    q = <uint8_t *> realloc(b.p, cap)
    if q == NULL:
        return -1
    b.p = q
    b.cap = cap
    return 0


cdef inline int ocopy(Out *b, const uint8_t *s, Py_ssize_t n) noexcept nogil:
    if n > 0:
        if b.write:
            if ogrow(b, n) < 0:
                return -1
            memcpy(b.p + b.n, s, n)
        b.n += n
    return 0


cdef inline int ozeros(Out *b, Py_ssize_t n) noexcept nogil:
    if b.write:
        if ogrow(b, n) < 0:
            return -1
        memset(b.p + b.n, 0, n)
    b.n += n
    return 0


cdef inline int ouleb(Out *b, uint64_t v) noexcept nogil:
    if b.write and ogrow(b, 10) < 0:
        return -1
    while True:
        if v < 0x80:
            if b.write:
                b.p[b.n] = <uint8_t> v
            b.n += 1
            return 0
        if b.write:
            b.p[b.n] = <uint8_t> ((v & 0x7F) | 0x80)
        b.n += 1
        v >>= 7


cdef inline int osleb(Out *b, int64_t v) noexcept nogil:
    cdef uint8_t byte
    if b.write and ogrow(b, 10) < 0:
        return -1
    while True:
        byte = v & 0x7F
        v >>= 7  # arithmetic shift
        if (v == 0 and not byte & 0x40) or (v == -1 and byte & 0x40):
            if b.write:
                b.p[b.n] = byte
            b.n += 1
            return 0
        if b.write:
            b.p[b.n] = byte | 0x80
        b.n += 1


cdef inline int push3(Out *b, int64_t x, int64_t y, int64_t z) noexcept nogil:
    cdef int64_t row[3]
    row[0] = x
    row[1] = y
    row[2] = z
    return ocopy(b, <const uint8_t *> row, sizeof(row))


cdef inline void put5(int64_t *row, int64_t a, int64_t b, int64_t c, int64_t d, int64_t e) noexcept nogil:
    row[0] = a
    row[1] = b
    row[2] = c
    row[3] = d
    row[4] = e


cdef inline Py_ssize_t find(const int64_t *a, Py_ssize_t n, int64_t x) noexcept nogil:
    """Index of ``x`` in the sorted ``a``, -1 if absent."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < n and a[lo] == x else -1


cdef inline uint64_t mix(int64_t code, uint64_t kinds, int64_t ex) noexcept nogil:
    cdef uint64_t h = (<uint64_t> code) * (<uint64_t> 0x7F4A7C159E3779B9) ^ kinds * (<uint64_t> 0x27D4EB4FC2B2AE3D)
    h ^= (<uint64_t> ex) << 17
    return h ^ (h >> 29)


cdef extern from *:
    int popcount64 "__builtin_popcountll"(unsigned long long) nogil


cdef struct Index:
    # DIE starts of a unit as a bitmap (bit r: a DIE starts at unit-relative offset r) with the
    # number of DIEs before each 64-bit word: a DIE's index by offset in O(1), in 3/16 of a byte
    # per byte of the unit (an int32 per byte was 4 bytes, all of them written).
    uint64_t *bits
    int32_t *rank
    Py_ssize_t nwords


cdef int index_make(Index *x, const int64_t *offs, Py_ssize_t n, Py_ssize_t off, Py_ssize_t size) noexcept nogil:
    """The index of DIEs at ``offs`` (sorted, inside [off, off + size)); -1: out of memory."""
    cdef Py_ssize_t i, w, nw = (size + 63) >> 6
    cdef int64_t r
    cdef int32_t c = 0
    x.bits = <uint64_t *> calloc(nw + 1, sizeof(uint64_t))
    x.rank = <int32_t *> malloc((nw + 1) * sizeof(int32_t))
    x.nwords = nw
    if x.bits == NULL or x.rank == NULL:
        free(x.bits)
        free(x.rank)
        x.bits = NULL
        x.rank = NULL
        return -1
    for i in range(n):
        r = offs[i] - off
        x.bits[r >> 6] |= (<uint64_t> 1) << (r & 63)
    for w in range(nw + 1):
        x.rank[w] = c
        c += popcount64(x.bits[w])
    return 0


cdef inline Py_ssize_t die_at(const Index *index, Py_ssize_t off, const int64_t *offs, Py_ssize_t n,
                              int64_t x) noexcept nogil:
    """Index of the DIE at section offset ``x`` (inside the unit), -1 if none: by the unit's
    bitmap when there is one, else by binary search."""
    cdef uint64_t word, bit
    if index.bits != NULL:
        x -= off
        word = index.bits[x >> 6]
        bit = (<uint64_t> 1) << (x & 63)
        if not word & bit:
            return -1
        return index.rank[x >> 6] + popcount64(word & (bit - 1))
    return find(offs, n, x)


cdef Py_ssize_t _entry_head(const uint8_t *d, Py_ssize_t n, uint64_t *tag) except -1:
    """The tag of an abbreviation entry without its code (``keys``' entries); where its
    children byte is (its specs, ``_entry_spec``, follow that byte)."""
    cdef Py_ssize_t p = read_uleb64(d, n, 0, tag)
    if p < 0 or p >= n:
        raise ValueError("bad abbreviation entry")
    return p


cdef Py_ssize_t _entry_spec(const uint8_t *d, Py_ssize_t n, Py_ssize_t p, uint64_t *at, uint64_t *form,
                            int64_t *ic) except -1:
    """The spec (attribute, form, implicit constant or 0) of an abbreviation entry at ``p``;
    where the next one starts. (0, 0) ends the entry."""
    p = read_uleb64(d, n, p, at)
    if p >= 0:
        p = read_uleb64(d, n, p, form)
    ic[0] = 0
    if p >= 0 and form[0] == FORM_IMPLICIT_CONST:
        p = read_sleb64(d, n, p, ic)
    if p < 0:
        raise ValueError("bad abbreviation entry")
    return p


def entry_order(bytes entry):
    """A sort key of an abbreviation entry (tag, children, specs without the code, as
    ``keys`` gives it) that orders entries like their (tag, children, ((at, form, ic), ...))
    tuples: every number as 8 big-endian bytes (the implicit constant offset by 2**63)."""
    cdef const uint8_t *d = entry
    cdef Py_ssize_t n = len(entry), p = 0, k
    cdef uint64_t v, w
    cdef int64_t ic
    cdef Out o
    oinit(&o, 1)
    try:
        p = _entry_head(d, n, &v)
        _be(&o, v)
        _be1(&o, d[p])
        p += 1
        while True:
            p = _entry_spec(d, n, p, &v, &w, &ic)
            if v == 0 and w == 0:
                break
            _be(&o, v)
            _be(&o, w)
            _be(&o, (<uint64_t> ic) ^ (<uint64_t> 1 << 63))
        return PyBytes_FromStringAndSize(<char *> o.p, o.n)
    finally:
        free(o.p)


def as_data_all(dict total, bytes attrs):
    """rewrite._as_data's first step over the whole table in C: {entry: (the entry with its
    implicit constants as data, their widths, its rows)} for the entries of ``total`` (DIEs per
    entry) that ``as_data`` reads so and whose DIEs would take fewer bytes than the entry with a
    1-byte code."""
    cdef dict found = {}
    cdef Py_ssize_t n, k, extra
    cdef bytes e
    cdef const uint8_t *w
    for e, count in total.items():
        n = len(e)
        if count > n or memchr(<const char *> e, FORM_IMPLICIT_CONST, n) == NULL:
            continue
        got = as_data(e, attrs)
        if got is None:
            continue
        w = <const uint8_t *> (<char *> (<bytes> got[0]))
        extra = 0
        for k in range(len(<bytes> got[0])):
            extra += w[k]
        if count * extra < n + 1:
            found[e] = (got[1], got[0], got[2])
    return found


def as_data(bytes entry, bytes attrs):
    """rewrite._as_data's reading of one entry (``_entry``): None where it has no implicit
    constant of an attribute flagged in ``attrs`` (a byte per attribute below 256) with a value
    under 65,536, has an attribute twice or more than 64 specs; else (the width of each of its
    implicit constants, in spec order: 1 or 2 for those, 0 for the others; the entry with those
    as DW_FORM_data1 or data2 in place; its specs as rows of (form, width, value) in an
    array('q')). (rewrite._as_data_pure is its twin.)"""
    cdef const uint8_t *d = entry
    cdef const uint8_t *flag = attrs
    cdef Py_ssize_t n = len(entry), p = 0, start, nflag = len(attrs), ns = 0, nw = 0, j, done = 0
    cdef uint64_t v, w
    cdef int64_t ic
    cdef int width
    cdef bint any_width = False
    cdef uint64_t seen[64]
    cdef int64_t rows[3 * 64]
    cdef uint8_t widths[64]
    cdef Out out
    cdef array got
    oinit(&out, 1)
    try:
        p = _entry_head(d, n, &v) + 1
        while True:
            start = p
            p = _entry_spec(d, n, p, &v, &w, &ic)
            if v == 0 and w == 0:
                break
            if ns == 64:
                return None  # (more specs than an entry this is worth reading)
            for j in range(ns):
                if seen[j] == v:
                    return None
            seen[ns] = v
            width = 0
            if w == FORM_IMPLICIT_CONST:
                if v < <uint64_t> nflag and flag[v] and 0 <= ic < 65536:
                    width = 1 if ic < 256 else 2
                    any_width = True
                    # the attribute as it was, then the data form instead of the constant
                    if (ocopy(&out, d + done, start - done) < 0 or ouleb(&out, v) < 0
                            or ouleb(&out, FORM_DATA1 if width == 1 else FORM_DATA2) < 0):
                        raise MemoryError()
                    done = p
                widths[nw] = <uint8_t> width
                nw += 1
            rows[3 * ns] = <int64_t> w
            rows[3 * ns + 1] = width
            rows[3 * ns + 2] = ic if width else 0
            ns += 1
        if not any_width:
            return None
        if ocopy(&out, d + done, n - done) < 0:
            raise MemoryError()
        got = clone(_INT64, 3 * ns, False)
        memcpy(got.data.as_voidptr, rows, 3 * ns * sizeof(int64_t))
        return (PyBytes_FromStringAndSize(<char *> widths, nw), PyBytes_FromStringAndSize(<char *> out.p, out.n), got)
    finally:
        free(out.p)


cdef int _be(Out *o, uint64_t v) except -1:
    cdef int k
    if ogrow(o, 8) < 0:
        raise MemoryError()
    for k in range(8):
        o.p[o.n + k] = (v >> (8 * (7 - k))) & 0xFF
    o.n += 8
    return 0


cdef int _be1(Out *o, uint8_t v) except -1:
    if ogrow(o, 1) < 0:
        raise MemoryError()
    o.p[o.n] = 1 if v else 0
    o.n += 1
    return 0


cdef class Unit:
    """One unit's rewrite state (see the module docstring)."""
    cdef object keep_alive
    cdef const uint8_t *d
    cdef const uint8_t *ab
    cdef Py_ssize_t info_n, off, die_off, end, n, ncodes, nspec
    cdef int ref_addr_w, version, addr_size, offset_size
    cdef const int64_t *offs
    cdef const int64_t *codes
    cdef const int64_t *parent
    cdef const int64_t *ends
    # abbreviation table: per code, -1 tag when absent
    cdef int64_t *ab_tag
    cdef uint8_t *ab_kids
    cdef int64_t *ab_lo        # first spec
    cdef int64_t *ab_hi        # end of specs
    cdef int64_t *ab_nref      # reference specs
    cdef int64_t *ab_rlo       # first of them in ``sp_ref``
    cdef int64_t *sp_ref       # spec index of each reference spec, by code
    cdef int64_t *sp_at
    cdef int64_t *sp_form
    cdef int64_t *sp_ic
    cdef uint8_t *keep
    # events of the kept DIEs, by position
    cdef int64_t *ev      # rows of 5: position, DIE, kind, width, value
    cdef Py_ssize_t nev
    cdef int64_t *mv      # rows of 2: DIE, target DIE (a followed reference that left the unit)
    cdef Py_ssize_t nmoved
    cdef uint64_t *kinds  # per DIE: kinds of its references, 2 bits each
    cdef int64_t *ex_form  # per DIE: form of its own DW_AT_decl_file (0: none)
    cdef int64_t *ex_val
    cdef int64_t *ab_conv  # per code, NCONV places: the specs written as DW_FORM_udata, ascending (-1: none)
    cdef int64_t *cv_off   # per code, NCONV places: where those values are after the code (-1: it varies)
    cdef int32_t *sig     # per kept DIE: its key, -1 until ``keys``
    # During ``copy``: the width each key's DIEs write their implicit constants in, one byte per
    # DW_FORM_implicit_const spec of the code (0: left implicit), bytes cs_off[k] to cs_off[k + 1]
    # of cs_w (``consts``; NULL: none)
    cdef const uint8_t *cs_w
    cdef Py_ssize_t *cs_off
    cdef int64_t *sig_die  # first DIE of each key
    cdef Py_ssize_t nsig
    cdef Index index      # DIE index by unit-relative offset, while preparing
    cdef public bint pure  # a shape left to the pure loop
    cdef bint table_ok    # the abbreviation table is read (``_prepare``): another unit of it may copy it
    cdef public Py_ssize_t kept
    cdef Scanned scanned  # the scanner's columns of a ``plan_unit`` (offs, codes, parent, ends)

    def __cinit__(self):
        self.ab_tag = self.ab_lo = self.ab_hi = self.ab_nref = self.ab_rlo = self.sp_ref = NULL
        self.ab_kids = self.keep = NULL
        self.sp_at = self.sp_form = self.sp_ic = self.ev = self.mv = NULL
        self.kinds = NULL
        self.ex_form = self.ex_val = NULL
        self.ab_conv = self.cv_off = NULL
        self.sig = NULL
        self.sig_die = NULL
        self.cs_w = NULL
        self.cs_off = NULL
        self.index.bits = NULL
        self.index.rank = NULL
        memset(&self.scanned, 0, sizeof(Scanned))

    def __dealloc__(self):
        free_out(&self.scanned)
        free(self.ab_tag); free(self.ab_kids); free(self.ab_lo); free(self.ab_hi); free(self.ab_nref)
        free(self.ab_rlo); free(self.sp_ref)
        free(self.sp_at); free(self.sp_form); free(self.sp_ic); free(self.keep); free(self.ev); free(self.mv)
        free(self.kinds); free(self.ex_form); free(self.ex_val); free(self.sig); free(self.sig_die)
        free(self.ab_conv); free(self.cv_off)
        free(self.index.bits)
        free(self.index.rank)

    def __init__(self, const uint8_t[::1] info, const uint8_t[::1] abbrev, Py_ssize_t abbrev_off,
                 Py_ssize_t off, Py_ssize_t die_off, Py_ssize_t end, int version, int addr_size, int offset_size,
                 offs, codes, parent, ends, ref_pos, ref_die, ref_form, ref_target, rem_starts, rem_ends,
                 xrefs):
        """``xrefs``: int64 rows (DIE, position, width, kind 3/4/5, target section offset) sorted
        by position."""
        cdef const int64_t *rp
        cdef const int64_t *rd
        cdef const int64_t *rf
        cdef const int64_t *rt
        cdef const int64_t *rs
        cdef const int64_t *re
        cdef const int64_t *xr
        cdef Py_ssize_t nref, nrem, nx, n2, n3, n4
        cdef int64_t bad = 0
        cdef int st
        self.keep_alive = (info, abbrev, offs, codes, parent, ends, ref_pos, ref_die, ref_form, ref_target,
                           rem_starts, rem_ends, xrefs)
        self._unit(info, abbrev, off, die_off, end, version, addr_size, offset_size)
        self.n = int64_column(offs, &self.offs)
        if (int64_column(codes, &self.codes) != self.n or int64_column(parent, &self.parent) != self.n
                or int64_column(ends, &self.ends) != self.n):
            raise ValueError("DIE arrays of different lengths")
        nref = int64_column(ref_pos, &rp)
        if (int64_column(ref_die, &rd) != nref or int64_column(ref_form, &rf) != nref
                or int64_column(ref_target, &rt) != nref):
            raise ValueError("reference arrays of different lengths")
        nrem = int64_column(rem_starts, &rs)
        if int64_column(rem_ends, &re) != nrem:
            raise ValueError("removal arrays of different lengths")
        nx = int64_column(xrefs, &xr)
        if nx % 5:
            raise ValueError("xrefs must be rows of 5")
        if self.n == 0:
            raise DwarfError(f"unit at 0x{off:x} is truncated or corrupt")
        with nogil:
            st = self._prepare_all(abbrev.shape[0], abbrev_off, rp, rd, rf, rt, nref, rs, re, nrem, xr, nx // 5, &bad)
        self._raise(st, bad)
        # The reference, removal and operand columns are in the events now: only what the
        # pointers above point into stays (a 6.5 MB unit's references are 24 MB of int64).
        self.keep_alive = (info, abbrev, offs, codes, parent, ends)

    cdef void _free_references(self) noexcept nogil:
        cdef Scanned *o = &self.scanned
        ifree(&o.rpos); ifree(&o.rdie); ifree(&o.rform); ifree(&o.rtgt)

    cdef int _unit(self, const uint8_t[::1] info, const uint8_t[::1] abbrev, Py_ssize_t off, Py_ssize_t die_off,
                   Py_ssize_t end, int version, int addr_size, int offset_size) except -1:
        """The unit's place and shape (``keep_alive`` holds ``info`` and ``abbrev``)."""
        self.d = &info[0] if info.shape[0] else NULL
        self.info_n = info.shape[0]
        self.ab = &abbrev[0] if abbrev.shape[0] else NULL
        if addr_size not in (1, 2, 4, 8) or offset_size not in (4, 8):
            raise DwarfError(f"unit at 0x{off:x} has an unsupported address or offset size")
        if not (0 <= off <= die_off <= end <= self.info_n):
            raise DwarfError(f"unit at 0x{off:x} is truncated or corrupt")
        self.off, self.die_off, self.end = off, die_off, end
        self.version, self.addr_size, self.offset_size = version, addr_size, offset_size
        self.ref_addr_w = addr_size if version <= 2 else offset_size
        return 0

    cdef int _prepare_all(self, Py_ssize_t ab_n, Py_ssize_t abbrev_off, const int64_t *rp, const int64_t *rd,
                          const int64_t *rf, const int64_t *rt, Py_ssize_t nref, const int64_t *rs, const int64_t *re,
                          Py_ssize_t nrem, const int64_t *xr, Py_ssize_t nx, int64_t *bad,
                          void *tmpl=NULL) noexcept nogil:
        """``_prepare``, then the own DW_AT_decl_files; the index is dropped after them. ``tmpl``:
        NULL, or a Unit of the same abbreviation table that has read it (``table_ok``)."""
        cdef int st = self._prepare(ab_n, abbrev_off, rp, rd, rf, rt, nref, rs, re, nrem, xr, nx, bad, tmpl)
        if st == ST_OK:
            st = self._own_decl_files(bad)
        if st == ST_OK:
            st = self._udata_values(bad)
        free(self.index.bits)
        free(self.index.rank)
        self.index.bits = NULL
        self.index.rank = NULL
        return st

    cdef int _raise(self, int st, int64_t bad) except -1:
        if st == ST_OK or st == ST_OVERFLOW or st == ST_NOFIT:
            return 0
        if st == ST_PURE:
            self.pure = True
            return 0
        if st == ST_NOMEM:
            raise MemoryError()
        if st == ST_BADREF:
            raise DwarfError(f"a reference in the unit at 0x{self.off:x} points to 0x{bad:x}, not to a DIE")
        raise DwarfError(f"unit at 0x{self.off:x} is truncated or corrupt (at 0x{bad:x})")

    cdef int _read_table(self, Py_ssize_t ab_n, Py_ssize_t abbrev_off, int64_t *bad) noexcept nogil:
        """The abbreviation table at ``abbrev_off``: two walks, one to size it."""
        cdef Py_ssize_t k, j, p, c
        cdef uint64_t code = 0, tag = 0, at = 0, form = 0  # set by read_uleb64 (zeroed for the C compiler)
        cdef int64_t ic
        cdef const uint8_t *ab = self.ab
        cdef int64_t maxcode = 0
        p = abbrev_off
        if p < 0 or p > ab_n:
            bad[0] = p
            return ST_CORRUPT
        k = 0
        while True:
            p = read_uleb64(ab, ab_n, p, &code)
            if p < 0:
                bad[0] = abbrev_off
                return ST_CORRUPT
            if code == 0:
                break
            if code >= MAX_CODES:
                return ST_PURE
            if <int64_t> code > maxcode:
                maxcode = code
            p = read_uleb64(ab, ab_n, p, &tag)
            if p < 0 or p >= ab_n:
                bad[0] = abbrev_off
                return ST_CORRUPT
            p += 1
            while True:
                p = read_uleb64(ab, ab_n, p, &at)
                if p >= 0:
                    p = read_uleb64(ab, ab_n, p, &form)
                if p >= 0 and form == FORM_IMPLICIT_CONST:
                    p = read_sleb64(ab, ab_n, p, &ic)
                if p < 0:
                    bad[0] = abbrev_off
                    return ST_CORRUPT
                if at == 0 and form == 0:
                    break
                k += 1
        if self._table_arrays(maxcode + 1, k) != ST_OK:
            return ST_NOMEM
        for c in range(self.ncodes):
            self.ab_tag[c] = -1
        p = abbrev_off
        k = 0
        j = 0
        while True:
            p = read_uleb64(ab, ab_n, p, &code)
            if code == 0:
                break
            p = read_uleb64(ab, ab_n, p, &tag)
            self.ab_tag[code] = tag  # a code defined twice: the last one counts, as in the pure parser
            self.ab_kids[code] = ab[p] != 0
            self.ab_lo[code] = k
            self.ab_nref[code] = 0
            self.ab_rlo[code] = j
            p += 1
            while True:
                p = read_uleb64(ab, ab_n, p, &at)
                p = read_uleb64(ab, ab_n, p, &form)
                ic = 0
                if form == FORM_IMPLICIT_CONST:
                    p = read_sleb64(ab, ab_n, p, &ic)
                if at == 0 and form == 0:
                    break
                self.sp_at[k] = at
                self.sp_form[k] = form
                self.sp_ic[k] = ic
                if form == FORM_ADDR or FORM_REF1 <= form <= FORM_REF_UDATA:
                    self.ab_nref[code] += 1
                    self.sp_ref[j] = k
                    j += 1
                k += 1
            self.ab_hi[code] = k
        for c in range(self.ncodes):
            if self.ab_nref[c] > 32:
                return ST_PURE  # the key packs 2 bits per reference into 64
        self.table_ok = True
        return ST_OK

    cdef int _table_arrays(self, Py_ssize_t nc, Py_ssize_t ns) noexcept nogil:
        """The arrays of a table of ``nc`` codes (0 to the largest) and ``ns`` specs: per code
        zeroed (the tag's not set), per spec not."""
        self.ncodes = nc
        self.nspec = ns
        self.ab_tag = <int64_t *> malloc(nc * sizeof(int64_t))
        self.ab_kids = <uint8_t *> calloc(nc, 1)
        self.ab_lo = <int64_t *> calloc(nc, sizeof(int64_t))
        self.ab_hi = <int64_t *> calloc(nc, sizeof(int64_t))
        self.ab_nref = <int64_t *> calloc(nc, sizeof(int64_t))
        self.ab_rlo = <int64_t *> calloc(nc, sizeof(int64_t))
        self.sp_ref = <int64_t *> malloc((ns + 1) * sizeof(int64_t))
        self.sp_at = <int64_t *> malloc((ns + 1) * sizeof(int64_t))
        self.sp_form = <int64_t *> malloc((ns + 1) * sizeof(int64_t))
        self.sp_ic = <int64_t *> malloc((ns + 1) * sizeof(int64_t))
        if (self.ab_tag == NULL or self.ab_kids == NULL or self.ab_lo == NULL or self.ab_hi == NULL
                or self.ab_nref == NULL or self.ab_rlo == NULL or self.sp_ref == NULL or self.sp_at == NULL
                or self.sp_form == NULL or self.sp_ic == NULL):
            return ST_NOMEM
        return ST_OK

    cdef int _table_from(self, void *tmpl) noexcept nogil:
        """A copy of the abbreviation table a unit of the same table read (``_read_table``)."""
        cdef Py_ssize_t nc = (<Unit> tmpl).ncodes, ns = (<Unit> tmpl).nspec
        if self._table_arrays(nc, ns) != ST_OK:
            return ST_NOMEM
        memcpy(self.ab_tag, (<Unit> tmpl).ab_tag, nc * sizeof(int64_t))
        memcpy(self.ab_kids, (<Unit> tmpl).ab_kids, nc)
        memcpy(self.ab_lo, (<Unit> tmpl).ab_lo, nc * sizeof(int64_t))
        memcpy(self.ab_hi, (<Unit> tmpl).ab_hi, nc * sizeof(int64_t))
        memcpy(self.ab_nref, (<Unit> tmpl).ab_nref, nc * sizeof(int64_t))
        memcpy(self.ab_rlo, (<Unit> tmpl).ab_rlo, nc * sizeof(int64_t))
        memcpy(self.sp_ref, (<Unit> tmpl).sp_ref, (ns + 1) * sizeof(int64_t))
        memcpy(self.sp_at, (<Unit> tmpl).sp_at, (ns + 1) * sizeof(int64_t))
        memcpy(self.sp_form, (<Unit> tmpl).sp_form, (ns + 1) * sizeof(int64_t))
        memcpy(self.sp_ic, (<Unit> tmpl).sp_ic, (ns + 1) * sizeof(int64_t))
        self.table_ok = True
        return ST_OK

    cdef int _prepare(self, Py_ssize_t ab_n, Py_ssize_t abbrev_off, const int64_t *rp, const int64_t *rd,
                      const int64_t *rf, const int64_t *rt, Py_ssize_t nref, const int64_t *rs, const int64_t *re,
                      Py_ssize_t nrem, const int64_t *xr, Py_ssize_t nx, int64_t *bad,
                      void *tmpl=NULL) noexcept nogil:
        cdef Py_ssize_t n = self.n, i, j, k, q, s, e, x, cap, nev, first, c
        cdef uint64_t code = 0, at = 0, form = 0  # set by read_uleb64 (zeroed for the C compiler)
        cdef int64_t t, w, kind, die, prev_die, pos
        cdef int32_t *cnt = NULL
        cdef int64_t *ev
        cdef int64_t *mv
        cdef int st = ST_OK
        # -- the abbreviation table, read or copied from a unit that read it (dwz's output: 1,958
        # units share 120 tables in Xen's shim symbols, whose bytes the two walks read 3.3 MB of)
        st = self._table_from(tmpl) if tmpl != NULL else self._read_table(ab_n, abbrev_off, bad)
        if st != ST_OK:
            return st
        self.keep = <uint8_t *> malloc(n)
        self.kinds = <uint64_t *> calloc(n, sizeof(uint64_t))
        cnt = <int32_t *> calloc(n, sizeof(int32_t))
        if self.keep == NULL or self.kinds == NULL or cnt == NULL:
            free(cnt)
            return ST_NOMEM
        # -- the DIE arrays, as far as this kernel relies on them
        for i in range(n):
            if (self.offs[i] < self.die_off or self.offs[i] >= self.end or self.ends[i] <= self.offs[i]
                    or self.ends[i] > self.end or (i and self.offs[i] <= self.offs[i - 1])
                    or self.parent[i] >= i or self.parent[i] < -1 or self.codes[i] <= 0
                    or self.codes[i] >= self.ncodes or self.ab_tag[self.codes[i]] < 0):
                bad[0] = self.offs[i]
                free(cnt)
                return ST_CORRUPT
        # Resolving references by a map from offset to DIE is several times faster than a binary
        # search per reference (without memory for it, the search).
        if self.end - self.off < (<Py_ssize_t> 1) << 31:
            index_make(&self.index, self.offs, n, self.off, self.end - self.off)
        # -- removals
        memset(self.keep, 1, n)
        for j in range(nrem):
            s = rs[j]
            e = re[j]
            if s < 0 or e > n or s >= e:
                bad[0] = self.off
                free(cnt)
                return ST_CORRUPT
            memset(self.keep + s, 0, e - s)
        self.kept = 0
        for i in range(n):
            self.kept += self.keep[i]
        # -- references and expression operands: the events of the kept DIEs, merged by position
        cap = nref + nx
        self.ev = ev = <int64_t *> malloc((cap + 1) * 5 * sizeof(int64_t))
        self.mv = mv = <int64_t *> malloc((nref + 1) * 2 * sizeof(int64_t))
        if ev == NULL or mv == NULL:
            free(cnt)
            return ST_NOMEM
        nev = 0
        x = 0
        prev_die = -1
        first = 0
        for j in range(nref + 1):
            # expression operands before this reference
            while x < nx and (j == nref or xr[5 * x + 1] < rp[j]):
                die = xr[5 * x]
                pos = xr[5 * x + 1]
                w = xr[5 * x + 2]
                kind = xr[5 * x + 3]
                t = xr[5 * x + 4]
                x += 1
                if die < 0 or die >= n or pos < self.offs[die] or w <= 0 or pos + w > self.ends[die] \
                        or kind < 3 or kind > 5 or (nev and pos < ev[5 * (nev - 1)]):
                    bad[0] = pos
                    free(cnt)
                    return ST_CORRUPT
                if not self.keep[die]:
                    continue
                if kind != 3:
                    t = die_at(&self.index, self.off, self.offs, n, t) if self.off <= t < self.end else -1
                    if t < 0:
                        bad[0] = pos
                        free(cnt)
                        return ST_CORRUPT
                put5(ev + 5 * nev, pos, die, kind, w, t)
                nev += 1
            if j == nref:
                break
            die = rd[j]
            pos = rp[j]
            form = rf[j]
            if die < 0 or die >= n or die < prev_die or pos < self.offs[die] or pos >= self.ends[die]:
                bad[0] = pos
                free(cnt)
                return ST_CORRUPT
            if die != prev_die:
                first = j
                prev_die = die
            k = j - first  # the k-th reference of the DIE: its abbreviation's k-th reference spec
            c = self.codes[die]
            if k >= self.ab_nref[c]:
                bad[0] = pos
                free(cnt)
                return ST_CORRUPT
            q = self.sp_ref[self.ab_rlo[c] + k]
            at = self.sp_at[q]
            if <uint64_t> self.sp_form[q] != form:
                bad[0] = pos
                free(cnt)
                return ST_CORRUPT
            if form == FORM_ADDR:
                w = self.ref_addr_w
            elif form == FORM_REF_UDATA:
                s = read_uleb64(self.d, self.end, pos, &code)
                if s < 0:
                    bad[0] = pos
                    free(cnt)
                    return ST_CORRUPT
                w = s - pos
            else:
                w = 1 << (form - FORM_REF1)
            if pos + w > self.ends[die]:
                bad[0] = pos
                free(cnt)
                return ST_CORRUPT
            cnt[die] += 1
            t = rt[j]
            s = -1  # the target's DIE index when it is in this unit
            if self.off <= t < self.end:
                s = die_at(&self.index, self.off, self.offs, n, t)
                if s < 0:
                    bad[0] = t
                    free(cnt)
                    return ST_BADREF
            if at == AT_SIBLING:
                kind = 0
            elif s >= 0 and self.keep[s]:
                kind = 1
            else:
                kind = 2
            if not self.keep[die]:
                continue
            self.kinds[die] |= (<uint64_t> kind) << (2 * k)
            if kind == 2 and s >= 0 and (at == AT_SPEC or at == AT_ORIGIN):
                mv[2 * self.nmoved] = die
                mv[2 * self.nmoved + 1] = s
                self.nmoved += 1
            if nev and pos < ev[5 * (nev - 1)]:
                bad[0] = pos
                free(cnt)
                return ST_CORRUPT
            put5(ev + 5 * nev, pos, die, kind, w, s if kind == 1 else t)
            nev += 1
        self.nev = nev
        # every reference spec of a kept DIE must have its reference
        for i in range(n):
            if self.keep[i] and cnt[i] != self.ab_nref[self.codes[i]]:
                bad[0] = self.offs[i]
                free(cnt)
                return ST_CORRUPT
        free(cnt)
        return ST_OK

    cdef int _own_decl_files(self, int64_t *bad) noexcept nogil:
        """rewrite._own_decl_files: a kept DIE whose DW_AT_specification / DW_AT_abstract_origin
        now points to another unit gets its own DW_AT_decl_file, the one its removed target
        (or what the target's chain reaches inside the unit) had: gdb reads it with the file
        table of the unit it started from."""
        cdef Py_ssize_t k, i, t, q, step
        cdef int64_t code, value
        cdef int64_t got[6]
        cdef int st
        cdef bint skip
        for k in range(self.nmoved):
            i = self.mv[2 * k]
            code = self.codes[i]
            skip = self.ab_tag[code] == TAG_INLINED_SUBROUTINE  # placed by its own DW_AT_call_file
            for q in range(self.ab_lo[code], self.ab_hi[code]):
                skip = skip or self.sp_at[q] == AT_DECL_FILE
            if skip:
                continue
            t = self.mv[2 * k + 1]
            value = -1
            for step in range(16):  # a chain longer than this is a loop
                st = self._attrs(t, got, bad)
                if st != ST_OK:
                    return st
                if got[0]:  # DW_AT_decl_file
                    if got[0] != 1 or got[1] < 0:
                        return ST_PURE  # a value the pure loop decides about
                    value = got[1]
                    break
                if got[2] or got[4]:
                    q = 2 if got[2] else 4
                    if got[q] != 1:
                        return ST_PURE
                    t = (die_at(&self.index, self.off, self.offs, self.n, got[q + 1])
                         if self.off <= got[q + 1] < self.end else -1)
                    if t >= 0:
                        continue
                break
            if value < 0:
                continue
            if self.ex_form == NULL:
                self.ex_form = <int64_t *> calloc(self.n, sizeof(int64_t))
                self.ex_val = <int64_t *> calloc(self.n, sizeof(int64_t))
                if self.ex_form == NULL or self.ex_val == NULL:
                    return ST_NOMEM
            self.ex_form[i] = FORM_DATA1 if value < 0x100 else FORM_DATA2 if value < 0x10000 else FORM_UDATA
            self.ex_val[i] = value
        return ST_OK

    cdef int _udata_values(self, int64_t *bad) noexcept nogil:
        """rewrite.udata_specs: the specs each code writes as DW_FORM_udata (``ab_conv``) and
        their values' offsets after the code where the forms before them have fixed sizes
        (``cv_off``; the copy finds the others by walking the DIE's attributes, which is tried
        here once for each kept DIE: a form it cannot size leaves the unit to the pure loop)."""
        cdef Py_ssize_t c, q, i, k, n_at, size
        cdef int64_t got[6]
        cdef int64_t pos = -1, at, form
        cdef int st = ST_OK
        cdef bint walk = False
        cdef int64_t count[NCONV]
        cdef int64_t found[NCONV]
        if self.version < 4:
            return ST_OK
        self.ab_conv = <int64_t *> malloc(NCONV * self.ncodes * sizeof(int64_t))
        self.cv_off = <int64_t *> malloc(NCONV * self.ncodes * sizeof(int64_t))
        if self.ab_conv == NULL or self.cv_off == NULL:
            return ST_NOMEM
        for c in range(self.ncodes):
            for k in range(NCONV):
                self.ab_conv[NCONV * c + k] = -1
                count[k] = 0
                found[k] = -1
            if self.ab_tag[c] < 0:
                continue
            for q in range(self.ab_lo[c], self.ab_hi[c]):
                at = self.sp_at[q]
                form = self.sp_form[q]
                k = 0 if at == AT_HIGH_PC else 1 if at == AT_GNU_ENTRY_VIEW else -1
                if k >= 0:
                    count[k] += 1
                    if (form == FORM_DATA4 or form == FORM_DATA8 or (k == 1 and form == FORM_DATA2)):
                        found[k] = q
            n_at = 0
            for q in range(self.ab_lo[c], self.ab_hi[c]):  # (in spec order, so by position)
                for k in range(NCONV):
                    if found[k] == q and count[k] == 1:
                        self.ab_conv[NCONV * c + n_at] = q
                        n_at += 1
            for k in range(n_at):
                self.cv_off[NCONV * c + k] = 0
                for q in range(self.ab_lo[c], self.ab_conv[NCONV * c + k]):
                    size = self._fixed_size(self.sp_form[q])
                    if size < 0:
                        self.cv_off[NCONV * c + k] = -1
                        walk = True
                        break
                    self.cv_off[NCONV * c + k] += size
        i = 0
        while walk and st == ST_OK and i < self.n:
            c = self.codes[i]
            if self.keep[i]:
                for k in range(NCONV):
                    if self.ab_conv[NCONV * c + k] >= 0 and self.cv_off[NCONV * c + k] < 0 and st == ST_OK:
                        st = self._attrs(i, got, bad, self.ab_conv[NCONV * c + k], &pos)
            i += 1
        return st

    cdef Py_ssize_t _value_at(self, Py_ssize_t i, Py_ssize_t k, Py_ssize_t after_code) noexcept nogil:
        """Where DIE ``i``'s ``k``-th value of ``_udata_values`` is, -1 if it has none."""
        cdef int64_t c = self.codes[i]
        cdef int64_t pos = -1, bad = 0
        cdef int64_t got[6]
        if self.ab_conv == NULL or self.ab_conv[NCONV * c + k] < 0:
            return -1
        if self.cv_off[NCONV * c + k] >= 0:
            return after_code + self.cv_off[NCONV * c + k]
        if self._attrs(i, got, &bad, self.ab_conv[NCONV * c + k], &pos) != ST_OK:
            return -2  # (not expected: _udata_values walked it)
        return pos

    cdef int _const_places(self, Py_ssize_t i, Py_ssize_t *at, int64_t *val, int *w, int64_t *bad) noexcept nogil:
        """Where DIE ``i`` (a kept DIE, ``cs_off`` set) takes the values of the implicit
        constants its key writes as data (``copy``'s ``consts``): positions (where the spec's value
        would be), values and widths, by position; how many (-1: a broken DIE, ``bad`` set)."""
        cdef Py_ssize_t s = self.sig[i], q, idx = 0, n = 0
        cdef Py_ssize_t lo = self.cs_off[s], m = self.cs_off[s + 1] - self.cs_off[s]
        cdef int64_t code = self.codes[i], pos = -1
        cdef int64_t got[6]
        for q in range(self.ab_lo[code], self.ab_hi[code]):
            if self.sp_form[q] != FORM_IMPLICIT_CONST:
                continue
            if idx < m and self.cs_w[lo + idx]:
                if n == NCONST or self._attrs(i, got, bad, q, &pos) != ST_OK:
                    bad[0] = self.offs[i]
                    return -1
                at[n] = pos
                val[n] = self.sp_ic[q]
                w[n] = self.cs_w[lo + idx]
                n += 1
            idx += 1
        return n

    cdef inline int _put_const(self, Out *out, Py_ssize_t *src, Py_ssize_t at, int64_t v, int w,
                               int64_t *bad) noexcept nogil:
        """An implicit constant's value ``v`` in ``w`` bytes at ``at``, after the bytes from ``src``."""
        cdef uint8_t tmp[2]
        if at < src[0]:
            bad[0] = at
            return ST_CORRUPT
        if ocopy(out, self.d + src[0], at - src[0]) < 0:
            return ST_NOMEM
        src[0] = at
        put_le(tmp, <uint64_t> v, w)
        return ST_NOMEM if ocopy(out, tmp, w) < 0 else ST_OK

    cdef int _values_before(self, Out *out, Py_ssize_t *src, Py_ssize_t i, Py_ssize_t pos, bint last,
                            Py_ssize_t *conv, const Py_ssize_t *conv_at, Py_ssize_t *cst, Py_ssize_t ncst,
                            const Py_ssize_t *cst_at, const int64_t *cst_v, const int *cst_w,
                            int64_t *bad) noexcept nogil:
        """``_copy``'s re-encoded values of DIE ``i`` (``_put_udata``) and implicit constants
        written as data (``_put_const``) before ``pos`` (``last``: all that are left, which must
        end by ``pos``, the end of its attributes), in place order: a constant at the place of a
        value goes first, as its spec does. (Apart from ``_copy``, which stays small enough for
        the compiler to inline its copies.)"""
        cdef int st = ST_OK
        while st == ST_OK:
            if cst[0] < ncst and (last or cst_at[cst[0]] <= pos) and (
                    conv[0] == NCONV or conv_at[conv[0]] == -1 or cst_at[cst[0]] <= conv_at[conv[0]]):
                if cst_at[cst[0]] > pos:
                    bad[0] = cst_at[cst[0]]
                    return ST_CORRUPT
                st = self._put_const(out, src, cst_at[cst[0]], cst_v[cst[0]], cst_w[cst[0]], bad)
                cst[0] += 1
            elif conv[0] < NCONV and conv_at[conv[0]] != -1 and (last or conv_at[conv[0]] < pos):
                st = self._put_udata(out, src, i, conv[0], conv_at[conv[0]], pos, bad)
                conv[0] += 1
            else:
                break
        return st

    cdef int _put_udata(self, Out *out, Py_ssize_t *src, Py_ssize_t i, Py_ssize_t k, Py_ssize_t p,
                        Py_ssize_t limit, int64_t *bad) noexcept nogil:
        """DIE ``i``'s ``k``-th value of ``_udata_values``, at ``p``, as a ULEB128, after its
        bytes from ``src``; ``src`` then points past the old value, which must end by ``limit``."""
        cdef int64_t form = self.sp_form[self.ab_conv[NCONV * self.codes[i] + k]]
        cdef int w = 8 if form == FORM_DATA8 else 4 if form == FORM_DATA4 else 2
        if p < src[0] or p + w > limit:
            bad[0] = p
            return ST_CORRUPT
        if ocopy(out, self.d + src[0], p - src[0]) < 0 or ouleb(out, read_le(self.d, p, w)) < 0:
            return ST_NOMEM
        src[0] = p + w
        return ST_OK

    cdef inline Py_ssize_t _fixed_size(self, int64_t form) noexcept nogil:
        """The bytes a value of ``form`` takes in this unit, -1 when it depends on the value."""
        if form == FORM_IMPLICIT_CONST or form == 0x19:  # flag_present
            return 0
        if form in (0x0B, 0x11, 0x0C, 0x25, 0x29):
            return 1
        if form in (0x05, 0x12, 0x26, 0x2A):
            return 2
        if form in (0x27, 0x2B):
            return 3
        if form in (0x06, 0x13, 0x28, 0x2C, 0x1C):
            return 4
        if form in (0x07, 0x14, 0x20, 0x24):
            return 8
        if form == 0x01:
            return self.addr_size
        if form in (0x0E, 0x1F, 0x17, 0x1D, 0x1F20, 0x1F21):
            return self.offset_size
        if form == FORM_ADDR:
            return self.ref_addr_w
        return -1

    cdef int _attrs(self, Py_ssize_t t, int64_t *got, int64_t *bad, Py_ssize_t want=-1,
                    int64_t *want_pos=NULL) noexcept nogil:
        """DW_AT_decl_file, DW_AT_specification and DW_AT_abstract_origin of DIE ``t`` (the last
        of each, as read.die_attrs): ``got`` holds (kind, value) pairs, kind 0 absent, 1 a
        number (a unit-relative reference as a section offset), 2 bytes. With ``want``, the
        position of the value of that spec goes to ``want_pos``."""
        cdef int64_t code = self.codes[t], form, v, slot
        cdef Py_ssize_t p, q, lim = self.ends[t], size
        cdef uint64_t u = 0
        cdef const uint8_t *d = self.d
        cdef int kind, k
        for k in range(6):
            got[k] = 0
        p = self.offs[t] + 1
        while d[p - 1] & 0x80:
            p += 1
        for q in range(self.ab_lo[code], self.ab_hi[code]):
            form = self.sp_form[q]
            kind = 1
            v = 0
            if q == want:
                want_pos[0] = p
            size = self._fixed_size(form)
            if form == FORM_IMPLICIT_CONST:
                v = self.sp_ic[q]
            elif form == 0x19:  # flag_present
                v = 1
            if size >= 0:
                if p + size > lim:
                    bad[0] = p
                    return ST_CORRUPT
                if size:
                    v = 0
                    for k in range(size):
                        v |= (<int64_t> d[p + k]) << (8 * k)
                p += size
            elif form in (0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02):  # ULEB
                p = read_uleb64(d, lim, p, &u)
                v = <int64_t> u
            elif form == 0x0D:  # sdata
                p = read_sleb64(d, lim, p, &v)
            elif form == 0x1E:  # data16
                kind = 2
                p += 16
            elif form == 0x08:  # string
                kind = 2
                while p < lim and d[p]:
                    p += 1
                p += 1
            elif form in (0x0A, 0x03, 0x04, 0x09, 0x18):  # blocks
                kind = 2
                if form == 0x0A or form == 0x03 or form == 0x04:
                    size = 1 if form == 0x0A else 2 if form == 0x03 else 4
                    if p + size > lim:
                        bad[0] = p
                        return ST_CORRUPT
                    u = 0
                    for k in range(size):
                        u |= (<uint64_t> d[p + k]) << (8 * k)
                    p += size
                else:
                    p = read_uleb64(d, lim, p, &u)
                if p >= 0:
                    if u > <uint64_t> (lim - p):
                        bad[0] = p
                        return ST_CORRUPT
                    p += u
            else:
                return ST_PURE  # DW_FORM_indirect or an unknown form: the pure loop's error
            if p < 0 or p > lim:
                bad[0] = self.offs[t]
                return ST_CORRUPT
            if FORM_REF1 <= form <= FORM_REF_UDATA:
                v += self.off
            slot = 0 if self.sp_at[q] == AT_DECL_FILE else 2 if self.sp_at[q] == AT_SPEC else \
                4 if self.sp_at[q] == AT_ORIGIN else -1
            if slot >= 0:
                got[slot] = kind
                got[slot + 1] = v
        return ST_OK

    cdef int _sigs(self) noexcept nogil:
        """Number the keys (code, reference kinds, own decl_file form) of the kept DIEs in
        first-use order: an open-addressing table of key numbers."""
        cdef Py_ssize_t n = self.n, i, h, cap = 256, nsig = 0, k
        cdef int64_t *slots = NULL     # rows of 4: code, kinds, extra form, key number (+1; 0 empty)
        cdef int64_t *grown
        cdef int64_t code, ex
        cdef uint64_t kinds, hv
        self.sig = <int32_t *> malloc(n * sizeof(int32_t))
        self.sig_die = <int64_t *> malloc((n + 1) * sizeof(int64_t))
        slots = <int64_t *> calloc(cap * 4, sizeof(int64_t))
        if self.sig == NULL or self.sig_die == NULL or slots == NULL:
            free(slots)
            return ST_NOMEM
        for i in range(n):
            if not self.keep[i]:
                self.sig[i] = -1
                continue
            code = self.codes[i]
            kinds = self.kinds[i]
            ex = self.ex_form[i] if self.ex_form != NULL else 0
            hv = mix(code, kinds, ex)
            h = hv & (cap - 1)
            while slots[4 * h + 3] and not (slots[4 * h] == code and <uint64_t> slots[4 * h + 1] == kinds
                                           and slots[4 * h + 2] == ex):
                h = (h + 1) & (cap - 1)
            if slots[4 * h + 3] == 0:
                slots[4 * h] = code
                slots[4 * h + 1] = <int64_t> kinds
                slots[4 * h + 2] = ex
                slots[4 * h + 3] = nsig + 1
                self.sig_die[nsig] = i
                nsig += 1
                if 2 * nsig > cap:  # rehash into twice the room
                    grown = <int64_t *> calloc(cap * 8, sizeof(int64_t))
                    if grown == NULL:
                        free(slots)
                        return ST_NOMEM
                    for k in range(cap):
                        if slots[4 * k + 3]:
                            hv = mix(slots[4 * k], <uint64_t> slots[4 * k + 1], slots[4 * k + 2])
                            h = hv & (2 * cap - 1)
                            while grown[4 * h + 3]:
                                h = (h + 1) & (2 * cap - 1)
                            memcpy(grown + 4 * h, slots + 4 * k, 4 * sizeof(int64_t))
                    free(slots)
                    slots = grown
                    cap *= 2
                self.sig[i] = nsig - 1
            else:
                self.sig[i] = slots[4 * h + 3] - 1
        free(slots)
        self.nsig = nsig
        return ST_OK

    cdef int _entry(self, Out *o, Py_ssize_t s, int width) noexcept nogil:
        """Key ``s`` as an abbreviation entry without its code, references of the local kind as
        the ``width``-byte form."""
        cdef Py_ssize_t i = self.sig_die[s], q, k = 0
        cdef int64_t code = self.codes[i], form, kind
        cdef uint64_t kinds = self.kinds[i]
        if ouleb(o, self.ab_tag[code]) < 0 or ouleb(o, 1 if self.ab_kids[code] else 0) < 0:
            return -1
        for q in range(self.ab_lo[code], self.ab_hi[code]):
            form = self.sp_form[q]
            if form == FORM_ADDR or FORM_REF1 <= form <= FORM_REF_UDATA:
                kind = (kinds >> (2 * k)) & 3
                k += 1
                if kind == 0:
                    continue
                form = FORM_ADDR if kind == 2 else (FORM_REF1 if width == 1 else FORM_REF2 if width == 2 else
                                                     FORM_REF_UDATA if width == W_UDATA else FORM_REF4)
            elif self.ab_conv != NULL and (q == self.ab_conv[NCONV * code] or q == self.ab_conv[NCONV * code + 1]):
                form = FORM_UDATA
            if ouleb(o, self.sp_at[q]) < 0 or ouleb(o, form) < 0:
                return -1
            if form == FORM_IMPLICIT_CONST and osleb(o, self.sp_ic[q]) < 0:
                return -1
        if self.ex_form != NULL and self.ex_form[i]:
            if ouleb(o, AT_DECL_FILE) < 0 or ouleb(o, self.ex_form[i]) < 0:
                return -1
        return ozeros(o, 2)

    cdef int _entries(self, Out *o, Py_ssize_t *at, int width) noexcept nogil:
        """Every key's table entry at ``width`` end to end in ``o``, key s at ``at[s]``
        (``at``: nsig + 1 places; the keys are made first where they are not yet)."""
        cdef int st = ST_OK
        cdef Py_ssize_t s
        if self.sig == NULL:
            st = self._sigs()
            if st != ST_OK:
                return st
        for s in range(self.nsig):
            at[s] = o.n
            if self._entry(o, s, width) < 0:
                return ST_NOMEM
        at[self.nsig] = o.n
        return ST_OK

    cdef list _key_list(self, Out *o, Py_ssize_t *at, dict intern):
        """``keys``'s list from what ``_entries`` left."""
        cdef Py_ssize_t s
        cdef list out = []
        for s in range(self.nsig):
            e = PyBytes_FromStringAndSize(<char *> o.p + at[s], at[s + 1] - at[s])
            out.append(e if intern is None else intern.setdefault(e, e))
        return out

    def keys(self, int width, dict intern=None):
        """Each new abbreviation of the unit (table entry without its code), in first-use
        order, for ``width``-byte local references; with ``intern``, equal entries are one
        object (the first one the dict saw)."""
        cdef int st = ST_OK
        cdef Out o
        cdef Py_ssize_t *at = NULL
        if self.sig == NULL:
            with nogil:
                st = self._sigs()
            self._raise(st, 0)
        oinit(&o, 1)
        at = <Py_ssize_t *> malloc((self.nsig + 1) * sizeof(Py_ssize_t))
        if at == NULL:
            raise MemoryError()
        try:
            with nogil:
                st = self._entries(&o, at, width)
            self._raise(st, 0)
            return self._key_list(&o, at, intern)
        finally:
            free(o.p)
            free(at)

    def uses(self):
        """DIEs per key (after ``keys``): what ``copy`` counts, without its passes over the DIEs'
        bytes (the first rewrite pass needs no more of a unit whose width is certain)."""
        cdef Py_ssize_t i
        if self.sig == NULL:
            raise ValueError("uses before keys")
        cdef array uses = clone(_INT64, self.nsig, True)
        cdef int64_t *uv = <int64_t *> uses.data.as_voidptr
        if self.nsig == 0:
            return uses
        with nogil:
            for i in range(self.n):
                if self.keep[i]:
                    uv[self.sig[i]] += 1
        return uses

    def copy(self, int width, new_codes, Py_ssize_t margin, bint write, bint draft=False, list consts=None):
        """(status, unit bytes (None unless ``write``), new unit-relative offset of every DIE
        (-1: removed; array('i') when they fit, else array('q')), patches (array('q') of rows of 3:
        position, width, old target), DIEs per key); with ``draft`` (a written copy at width 1
        or 2) also what ``recode`` needs to give it other codes: its local references
        (array('i') of rows of 2: position, target DIE) and DIE-naming operands (array('q') of
        rows of 3: position, width, target DIE).
        Status 0 ok, 5 the unit plus ``margin`` bytes does not fit ``width``-byte local
        references, 6 an expression operand does not fit its old width. Key k gets code
        ``new_codes[k]`` (None: k + 1).

        With ``width`` UDATA each local reference takes the fewest bytes of its target's offset,
        which depends on the sizes of the references before that target: counting passes start
        from 4 bytes each and take each pass's offsets for the next one's sizes (offsets only
        shrink, so the sizes do) until the offsets stay; the copy then writes with them. If they
        have not settled in UDATA_PASSES, the last pass's sizes still hold every value (padded
        ULEB128).

        ``consts`` (with ``new_codes``; None for a key whose entry is unchanged): for each key,
        the width (1 or 2; 0: left implicit) in which its DIEs write the value of each of its
        code's DW_FORM_implicit_const specs, in place (rewrite._as_data)."""
        cdef const int64_t *codes_p = NULL
        cdef bytes joined = None
        cdef Py_ssize_t k, at
        cdef const int64_t[::1] cv
        cdef Copied c
        if self.sig == NULL:
            raise ValueError("copy before keys")
        if new_codes is not None:
            cv = new_codes
            if cv.shape[0] != self.nsig:
                raise ValueError("one code per key")
            codes_p = &cv[0] if self.nsig else NULL
        if width not in (1, 2, 4, W_UDATA):
            raise ValueError("width is 1, 2, 4 or UDATA")
        if draft and (not write or width not in (1, 2)):
            raise ValueError("a draft is a written copy at width 1 or 2")
        if consts is not None:
            if codes_p == NULL or len(consts) != self.nsig:
                raise ValueError("one entry of consts per key, with the keys' codes")
            joined = b"".join([w or b"" for w in consts])
            if any(x not in (0, 1, 2) for x in joined):
                raise ValueError("implicit constants are written in 1 or 2 bytes")
            self.cs_off = <Py_ssize_t *> malloc((self.nsig + 1) * sizeof(Py_ssize_t))
            if self.cs_off == NULL:
                raise MemoryError()
            at = 0
            for k in range(self.nsig):
                self.cs_off[k] = at
                at += len(consts[k] or b"")
            self.cs_off[self.nsig] = at
            self.cs_w = <const uint8_t *> (<char *> joined)
        try:
            with nogil:
                self._copy_run(&c, width, codes_p, margin, write, draft)
            return self._copy_result(&c, write, draft)
        finally:
            free_copied(&c)
            free(self.cs_off)
            self.cs_off = NULL
            self.cs_w = NULL

    cdef void _copy_run(self, Copied *c, int width, const int64_t *codes_p, Py_ssize_t margin, bint write,
                        bint draft) noexcept nogil:
        """``copy``'s passes into ``c`` (freed by free_copied whatever happens)."""
        cdef Py_ssize_t i
        memset(c, 0, sizeof(Copied))
        oinit(&c.out, write)
        oinit(&c.pat, 1)
        c.st = ST_OK
        c.rel = <int64_t *> malloc((self.n + 1) * sizeof(int64_t))
        c.uses = <int64_t *> calloc(self.nsig + 1, sizeof(int64_t))
        if width == W_UDATA:
            c.prev = <int64_t *> malloc((self.n + 1) * sizeof(int64_t))
        if c.rel == NULL or c.uses == NULL or (width == W_UDATA and c.prev == NULL):
            c.st = ST_NOMEM
            return
        for i in range(self.n):
            c.rel[i] = -1  # removed
        if width == W_UDATA:
            c.st = self._udata_sizes(&c.pat, codes_p, c.rel, c.prev, c.uses, &c.bad)
        if c.st == ST_OK:  # (a draft also takes the references' and operands' rows)
            c.st = self._copy(&c.out, &c.pat, width, codes_p, margin, c.rel, c.uses, &c.bad, c.prev,
                              &c.loc if draft else NULL, &c.nloc, &c.fix if draft else NULL, &c.nfix)

    cdef tuple _copy_result(self, Copied *c, bint write, bint draft):
        """``copy``'s tuple from what ``_copy_run`` left in ``c``."""
        cdef Py_ssize_t i
        cdef array new_rel, uses, patches, locs, fixes
        self._raise(c.st, c.bad)
        body = PyBytes_FromStringAndSize(<char *> c.out.p, c.out.n) if write and c.st == ST_OK else None
        patches = clone(_INT64, c.pat.n // sizeof(int64_t), False)
        if c.pat.n:
            memcpy(patches.data.as_voidptr, c.pat.p, c.pat.n)
        uses = clone(_INT64, self.nsig, False)
        if self.nsig:
            memcpy(uses.data.as_voidptr, c.uses, self.nsig * sizeof(int64_t))
        # int32 when it holds every offset: the outputs of all units wait for the layout phase
        if c.out.n < (1 << 31):
            new_rel = clone(_INT32, self.n, False)
            for i in range(self.n):
                (<int32_t *> new_rel.data.as_voidptr)[i] = <int32_t> c.rel[i]
        else:
            new_rel = clone(_INT64, self.n, False)
            memcpy(new_rel.data.as_voidptr, c.rel, self.n * sizeof(int64_t))
        if not draft:
            return c.st, body, new_rel, patches, uses
        locs = clone(_INT32, c.nloc, False)  # (a unit of width 1 or 2 is under 64 KiB)
        for i in range(c.nloc):
            (<int32_t *> locs.data.as_voidptr)[i] = <int32_t> c.loc[i]
        fixes = clone(_INT64, 3 * c.nfix, False)
        if c.nfix:
            memcpy(fixes.data.as_voidptr, c.fix, 3 * c.nfix * sizeof(int64_t))
        return c.st, body, new_rel, patches, uses, locs, fixes

    cdef int _udata_sizes(self, Out *pat, const int64_t *new_codes, int64_t *rel, int64_t *prev, int64_t *uses,
                          int64_t *bad) noexcept nogil:
        """The sizing of ``copy`` at UDATA: leaves in ``prev`` the offsets whose ULEB128 sizes the
        writing pass gives the local references (``rel``, ``uses`` and ``pat`` are scratch here,
        reset before the writing pass). One counting pass with 4-byte references gives each
        DIE's offset and each reference's position; every later pass (as rewrite._rewrite_at's
        whole passes) only subtracts the bytes the references before a DIE save at the sizes the
        previous pass's offsets give them: nothing else in a DIE depends on them."""
        cdef Out count
        cdef int st = ST_OK, passes = 1
        cdef Py_ssize_t i, r, nloc = 0
        cdef int64_t saved
        cdef int64_t *loc = NULL
        cdef int64_t *first = <int64_t *> malloc((self.n + 1) * sizeof(int64_t))
        cdef bint same
        if first == NULL:
            return ST_NOMEM
        oinit(&count, 0)
        for i in range(self.n):
            first[i] = -1
        st = self._copy(&count, pat, 4, new_codes, 0, first, uses, bad, NULL, &loc, &nloc)
        if st == ST_OK:
            memcpy(prev, first, self.n * sizeof(int64_t))
        while st == ST_OK:
            r = 0
            saved = 0
            same = True
            for i in range(self.n):
                if first[i] < 0:
                    rel[i] = -1
                    continue
                while r < nloc and loc[r] < first[i]:
                    saved += 4 - uleb_len(<uint64_t> prev[loc[r + 1]])
                    r += 2
                rel[i] = first[i] - saved
                if rel[i] != prev[i]:
                    same = False
            memcpy(prev, rel, self.n * sizeof(int64_t))
            passes += 1
            if same or passes >= UDATA_PASSES:
                break
        free(first)
        free(loc)
        for i in range(self.nsig):
            uses[i] = 0
        pat.n = 0
        for i in range(self.n):
            rel[i] = -1
        return st

    cdef int _copy(self, Out *out, Out *pat, int width, const int64_t *new_codes, Py_ssize_t margin,
                   int64_t *rel, int64_t *uses, int64_t *bad, const int64_t *prev,
                   int64_t **keep_loc=NULL, Py_ssize_t *keep_nloc=NULL,
                   int64_t **keep_fix=NULL, Py_ssize_t *keep_nfix=NULL) noexcept nogil:
        """One pass over the kept DIEs (writing them when ``out.write``). A local reference takes
        ``width`` bytes, or at W_UDATA the ULEB128 size of ``prev`` at its target. With
        ``keep_loc`` the local references' (position, target DIE) pairs are handed over (their
        count times 2 in ``keep_nloc``; the caller frees them), with ``keep_fix`` the operands'
        (position, width, target DIE) rows (their count in ``keep_nfix``)."""
        cdef Py_ssize_t n = self.n, i, e = 0, e0, src, start, pos, w, attr_end, k, nopen = 0, nloc = 0, nfix = 0
        cdef const uint8_t *d = self.d
        cdef const int64_t *ev = self.ev
        cdef int64_t code, kind, t, v, ex
        cdef int64_t *open_ends = <int64_t *> malloc((n + 1) * sizeof(int64_t))
        cdef int64_t *loc = <int64_t *> malloc((2 * self.nev + 2) * sizeof(int64_t))
        cdef int64_t *fix = <int64_t *> malloc((3 * self.nev + 3) * sizeof(int64_t))
        cdef int st = ST_OK
        cdef Py_ssize_t conv  # the next of the DIE's values to re-encode (_udata_values)
        cdef Py_ssize_t conv_at[NCONV]  # where they are
        cdef Py_ssize_t cst, ncst  # the next of the DIE's implicit constants to write as data, how many
        cdef Py_ssize_t cst_at[NCONST]
        cdef int64_t cst_v[NCONST]
        cdef int cst_w[NCONST]
        cdef uint8_t tmp[16]
        if open_ends == NULL or loc == NULL or fix == NULL:
            free(open_ends)
            free(loc)
            free(fix)
            return ST_NOMEM
        open_ends[0] = self.end + 1  # sentinel
        nopen = 1
        if ocopy(out, d + self.off, self.die_off - self.off) < 0:
            st = ST_NOMEM
        i = 0
        while st == ST_OK and i < n:
            if not self.keep[i]:
                i += 1
                continue
            start = self.offs[i]
            while open_ends[nopen - 1] <= start:
                if ozeros(out, 1) < 0:
                    st = ST_NOMEM
                nopen -= 1
            if st != ST_OK:
                break
            code = self.codes[i]
            while e < self.nev and ev[5 * e + 1] < i:
                e += 1
            e0 = e
            while e < self.nev and ev[5 * e + 1] == i:
                e += 1
            uses[self.sig[i]] += 1
            rel[i] = out.n  # the unit's header is at 0
            if ouleb(out, new_codes[self.sig[i]] if new_codes != NULL else self.sig[i] + 1) < 0:
                st = ST_NOMEM
                break
            src = start + 1
            while d[src - 1] & 0x80:
                src += 1
            # The DIE's own bytes end where its first child or its closing null starts.
            if self.ab_kids[code]:
                attr_end = self.offs[i + 1] if i + 1 < n and self.parent[i + 1] == i else self.ends[i] - 1
            else:
                attr_end = self.ends[i]
            if src > attr_end:
                bad[0] = start
                st = ST_CORRUPT
                break
            conv = NCONV
            if self.ab_conv != NULL and self.ab_conv[NCONV * code] >= 0:
                conv = 0
                for k in range(NCONV):
                    conv_at[k] = self._value_at(i, k, src)
            cst = ncst = 0
            if self.cs_off != NULL and self.cs_off[self.sig[i] + 1] > self.cs_off[self.sig[i]]:
                ncst = self._const_places(i, cst_at, cst_v, cst_w, bad)
                if ncst < 0:
                    st = ST_CORRUPT
                    break
            for k in range(e0, e):
                pos = ev[5 * k]
                kind = ev[5 * k + 2]
                w = ev[5 * k + 3]
                if pos < src or pos + w > attr_end:
                    bad[0] = pos
                    st = ST_CORRUPT
                    break
                if conv < NCONV or cst < ncst:
                    st = self._values_before(out, &src, i, pos, False, &conv, conv_at, &cst, ncst, cst_at, cst_v,
                                             cst_w, bad)
                    if st != ST_OK:
                        break
                if ocopy(out, d + src, pos - src) < 0:
                    st = ST_NOMEM
                    break
                src = pos + w
                if kind == 1:
                    loc[nloc] = out.n
                    loc[nloc + 1] = ev[5 * k + 4]
                    nloc += 2
                    if ozeros(out, uleb_len(<uint64_t> prev[ev[5 * k + 4]]) if width == W_UDATA else width) < 0:
                        st = ST_NOMEM
                elif kind == 2:
                    if push3(pat, out.n, self.ref_addr_w, ev[5 * k + 4]) < 0 or ozeros(out, self.ref_addr_w) < 0:
                        st = ST_NOMEM
                elif kind >= 3:
                    if kind == 3:
                        if push3(pat, out.n, w, ev[5 * k + 4]) < 0:
                            st = ST_NOMEM
                    else:
                        fix[3 * nfix] = out.n
                        fix[3 * nfix + 1] = w if kind == 4 else -w
                        fix[3 * nfix + 2] = ev[5 * k + 4]
                        nfix += 1
                    if ocopy(out, d + pos, w) < 0:
                        st = ST_NOMEM
                if st != ST_OK:
                    break
            if st != ST_OK:
                break
            if conv < NCONV or cst < ncst:
                st = self._values_before(out, &src, i, attr_end, True, &conv, conv_at, &cst, ncst, cst_at, cst_v,
                                         cst_w, bad)
                if st != ST_OK:
                    break
            if ocopy(out, d + src, attr_end - src) < 0:
                st = ST_NOMEM
                break
            if self.ab_kids[code]:
                open_ends[nopen] = self.ends[i]
                nopen += 1
            ex = self.ex_form[i] if self.ex_form != NULL else 0
            if ex:
                v = self.ex_val[i]
                if ex == FORM_UDATA:
                    st = ouleb(out, v)
                else:
                    put_le(tmp, v, 1 if ex == FORM_DATA1 else 2)
                    st = ocopy(out, tmp, 1 if ex == FORM_DATA1 else 2)
                if st < 0:
                    st = ST_NOMEM
                    break
            i += 1
        if st == ST_OK and ozeros(out, nopen - 1) < 0:
            st = ST_NOMEM
        if st == ST_OK and width < 4 and out.n + margin > (<Py_ssize_t> 1) << (8 * width):
            st = ST_OVERFLOW
        if st == ST_OK and width == W_UDATA:
            for k in range(0, nloc, 2):
                if rel[loc[k + 1]] < 0 or uleb_len(<uint64_t> rel[loc[k + 1]]) > uleb_len(<uint64_t> prev[loc[k + 1]]):
                    st = ST_OVERFLOW  # offsets only shrink from pass to pass: not expected
                    break
        if st == ST_OK and out.write:
            for k in range(0, nloc, 2):
                if width == W_UDATA:  # in the size its pass gave it (padded if the value needs fewer)
                    put_uleb(out.p + loc[k], rel[loc[k + 1]], uleb_len(<uint64_t> prev[loc[k + 1]]))
                else:
                    put_le(out.p + loc[k], rel[loc[k + 1]], width)
        # DIE-naming operands of expressions: the target's new offset in the operand's old width
        if st == ST_OK:
            for k in range(nfix):
                pos = fix[3 * k]
                w = fix[3 * k + 1]
                t = rel[fix[3 * k + 2]]
                if t < 0 or (w < 0 and -w < 8 and t >> (-8 * w)) or (w > 0 and (w < 10 and t >> (7 * w))):
                    st = ST_NOFIT
                    break
                if out.write:
                    if w < 0:
                        put_le(out.p + pos, t, -w)
                    else:
                        put_uleb(out.p + pos, t, w)
        if st == ST_OK and out.write:
            put_le(out.p, out.n - 4, 4)
        free(open_ends)
        if keep_fix != NULL and st == ST_OK:
            keep_fix[0] = fix
            keep_nfix[0] = nfix
        else:
            free(fix)
        if keep_loc != NULL and st == ST_OK:
            keep_loc[0] = loc
            keep_nloc[0] = nloc
        else:
            free(loc)
        return st

    cdef Py_ssize_t _tag_rows(self, int64_t *rows, int64_t *cnt) noexcept nogil:
        """``tag_counts``'s rows (tag, DIEs, kept) by tag into ``rows`` (3 * ncodes + 3 zeroed
        places; ``cnt``: 2 * ncodes + 2 zeroed ones): how many."""
        cdef Py_ssize_t i, j, k, m = 0
        for i in range(self.n):
            cnt[2 * self.codes[i]] += 1
            cnt[2 * self.codes[i] + 1] += self.keep[i]
        for i in range(self.ncodes):  # per tag, kept sorted by insertion (a few dozen tags)
            if cnt[2 * i] == 0:
                continue
            for j in range(m):
                if rows[3 * j] >= self.ab_tag[i]:
                    break
            else:
                j = m
            if j < m and rows[3 * j] == self.ab_tag[i]:
                rows[3 * j + 1] += cnt[2 * i]
                rows[3 * j + 2] += cnt[2 * i + 1]
                continue
            for k in range(m, j, -1):
                rows[3 * k] = rows[3 * k - 3]
                rows[3 * k + 1] = rows[3 * k - 2]
                rows[3 * k + 2] = rows[3 * k - 1]
            rows[3 * j] = self.ab_tag[i]
            rows[3 * j + 1] = cnt[2 * i]
            rows[3 * j + 2] = cnt[2 * i + 1]
            m += 1
        return m

    def tag_counts(self, bint flat=False):
        """[(tag, DIEs of the unit, DIEs kept)] for every tag of the unit, by tag; with ``flat``
        the rows end to end in one array('q') (kept until the second pass: one object, not one
        tuple a row)."""
        cdef Py_ssize_t j, m = 0
        cdef int64_t *rows = <int64_t *> calloc(3 * self.ncodes + 3, sizeof(int64_t))  # tag, before, after
        cdef int64_t *cnt = <int64_t *> calloc(2 * self.ncodes + 2, sizeof(int64_t))
        cdef list out = []
        if rows == NULL or cnt == NULL:
            free(rows)
            free(cnt)
            raise MemoryError()
        try:
            with nogil:
                m = self._tag_rows(rows, cnt)
            if flat:
                return _flat_rows(rows, m)
            for j in range(m):
                out.append((rows[3 * j], rows[3 * j + 1], rows[3 * j + 2]))
            return out
        finally:
            free(rows)
            free(cnt)


cdef array _flat_rows(const int64_t *rows, Py_ssize_t m):
    """``m`` rows of 3 as one array('q')."""
    cdef array flat = clone(_INT64, 3 * m, False)
    if m:
        memcpy(flat.data.as_voidptr, rows, 3 * m * sizeof(int64_t))
    return flat


ctypedef fused new_t:  # new DIE offsets: uint32 (REMOVED for a removed DIE) when the new section fits
    int64_t
    uint32_t


# A removed DIE's entry in a uint32 array of new offsets (-1 in an int64 one).
cdef uint32_t REMOVED = 0xFFFFFFFF


def write_patches(unsigned char[::1] info, list rows_of, const int64_t[::1] bases, offs, new, int64_t lo,
                  int64_t hi):
    """``_write_patches`` for the widths of ``offs`` and ``new`` (int64 or uint32 each), chosen
    here: a fused ``def`` would import numpy to find them."""
    cdef bint narrow_offs = memoryview(offs).itemsize == 4, narrow_new = memoryview(new).itemsize == 4
    if narrow_offs and narrow_new:
        return _write_patches[uint32_t, uint32_t](info, rows_of, bases, offs, new, lo, hi)
    if narrow_offs:
        return _write_patches[uint32_t, int64_t](info, rows_of, bases, offs, new, lo, hi)
    if narrow_new:
        return _write_patches[int64_t, uint32_t](info, rows_of, bases, offs, new, lo, hi)
    return _write_patches[int64_t, int64_t](info, rows_of, bases, offs, new, lo, hi)


cdef _write_patches(unsigned char[::1] info, list rows_of, const int64_t[::1] bases, const offset_t[::1] offs,
                    const new_t[::1] new, int64_t lo, int64_t hi):
    """layout.write_patches in C, on each unit's patch rows as they are (no concatenation):
    write the new offset of the DIE at old offset ``rows[k, 2]`` (``offs`` sorted, ``new`` their
    new offsets; int64 or uint32; a DIE's old offset is in [lo, hi)) as a ``rows[k, 1]``-byte little-endian value
    at ``bases[u] + rows[k, 0]`` of ``info``, for the int64 rows of 3 ``rows_of[u]`` (flat). None,
    or the first problem as (kind, value): 1 outside .debug_info, 2 not a DIE, 3 does not fit
    its width; checked in that order over all rows, as the numpy version does."""
    cdef Py_ssize_t k, i, u, nu = len(rows_of), m = offs.shape[0], w, b, nb, lo_i, hi_i, total = 0, at
    cdef int64_t v, old
    cdef int kind = 0
    cdef int64_t bad = 0
    cdef const int64_t[::1] r
    cdef const int64_t **rp = <const int64_t **> malloc((nu + 1) * sizeof(int64_t *))
    cdef Py_ssize_t *rn = <Py_ssize_t *> malloc((nu + 1) * sizeof(Py_ssize_t))
    cdef int64_t *vals = NULL
    cdef int64_t *first = NULL
    if bases.shape[0] != nu:
        raise ValueError("one base per unit")
    try:
        if rp == NULL or rn == NULL:
            raise MemoryError()
        for u in range(nu):
            r = rows_of[u]
            if r.shape[0] % 3:
                raise ValueError("patch rows of 3")
            rp[u] = &r[0] if r.shape[0] else NULL
            rn[u] = r.shape[0] // 3
            total += rn[u]
        # (the arrays stay alive in ``rows_of``)
        vals = <int64_t *> malloc((total + 1) * sizeof(int64_t))
        # first[j]: index of the first DIE at or after lo + 256 j: a lookup searches one block
        # only (a binary search over every DIE of a big program misses the cache at each step)
        nb = ((hi - lo) >> 8) + 2 if hi > lo else 2
        first = <int64_t *> malloc(nb * sizeof(int64_t))
        if vals == NULL or first == NULL:
            raise MemoryError()
        with nogil:
            i = 0
            for k in range(nb):
                while i < m and <int64_t> offs[i] < lo + (k << 8):
                    i += 1
                first[k] = i
            for u in range(nu):
                for k in range(rn[u]):
                    old = rp[u][3 * k + 2]
                    if old < lo or old >= hi:
                        kind = 1
                        bad = old
                        break
                if kind:
                    break
            at = 0
            for u in range(nu):
                if kind:
                    break
                for k in range(rn[u]):
                    old = rp[u][3 * k + 2]
                    b = (old - lo) >> 8
                    lo_i = first[b]
                    hi_i = first[b + 1]
                    i = find_offset(&offs[lo_i], hi_i - lo_i, old) if hi_i > lo_i else -1
                    if i < 0:
                        kind = 2
                        bad = old
                        break
                    vals[at] = <int64_t> new[i + lo_i]
                    at += 1
            if kind == 0:
                for w in range(1, 8):  # by width, as the numpy version checks them
                    at = 0
                    for u in range(nu):
                        for k in range(rn[u]):
                            if rp[u][3 * k + 1] == w and vals[at] >> (8 * w):
                                kind = 3
                                bad = w
                                break
                            at += 1
                        if kind:
                            break
                    if kind:
                        break
            if kind == 0:
                at = 0
                for u in range(nu):
                    for k in range(rn[u]):
                        w = rp[u][3 * k + 1]
                        b = bases[u] + rp[u][3 * k]
                        if w < 1 or w > 8 or b < 0 or b + w > info.shape[0]:
                            kind = 4
                            bad = b
                            break
                        v = vals[at]
                        at += 1
                        for i in range(w):
                            info[b + i] = (v >> (8 * i)) & 0xFF
                    if kind:
                        break
        return (kind, bad) if kind else None
    finally:
        free(rp)
        free(rn)
        free(vals)
        free(first)


def new_offsets(list rels, const int64_t[::1] bases, Py_ssize_t total, bint narrow=False):
    """layout.Resolver: every DIE's new section offset, unit by unit (``bases[u]`` + its new
    unit-relative offset ``rels[u][i]``), -1 for a removed DIE; with ``narrow`` (the new section
    is shorter than 0xFFFFFFFF bytes) array('I'), REMOVED for a removed DIE: half the memory
    (libjvm.so has 21 million DIEs); else array('q')."""
    cdef array out = clone(_UINT32 if narrow else _INT64, total, False)
    if narrow:
        _fill_new_offsets[uint32_t](out, rels, bases, total)
    else:
        _fill_new_offsets[int64_t](out, rels, bases, total)
    return out


cdef _fill_new_offsets(new_t[::1] o, list rels, const int64_t[::1] bases, Py_ssize_t total):
    cdef const int32_t[::1] r32
    cdef const int64_t[::1] r64
    cdef Py_ssize_t u, i, at = 0, n
    cdef int64_t b
    cdef new_t gone = <new_t> REMOVED if new_t is uint32_t else <new_t> -1
    if bases.shape[0] != len(rels):
        raise ValueError("one base per unit")
    for u in range(len(rels)):
        rel = rels[u]
        n = len(rel)
        if at + n > total:
            raise ValueError("more DIEs than ``total``")
        b = bases[u]
        if memoryview(rel).itemsize == 4:  # array('i'), or the pure path's int32 numpy arrays
            r32 = rel
            with nogil:
                for i in range(n):
                    o[at + i] = <new_t> (b + r32[i]) if r32[i] >= 0 else gone
        else:
            r64 = rel
            with nogil:
                for i in range(n):
                    o[at + i] = <new_t> (b + r64[i]) if r64[i] >= 0 else gone
        at += n
    if at != total:
        raise ValueError("fewer DIEs than ``total``")


def redirect(new, const int64_t[::1] starts, const int64_t[::1] lens, const int64_t[::1] canon):
    """``_redirect`` for the width of ``new`` (chosen here: a fused ``def`` would import numpy)."""
    if memoryview(new).itemsize == 4:
        return _redirect[uint32_t](new, starts, lens, canon)
    return _redirect[int64_t](new, starts, lens, canon)


cdef bint _redirect(new_t[::1] new, const int64_t[::1] starts, const int64_t[::1] lens,
                    const int64_t[::1] canon) except -1:
    """layout.Resolver: a removed DIE (``new`` -1, or REMOVED in a uint32 array) of the removal
    starting at global DIE index ``starts[r]`` (``lens[r]`` DIEs) gets the new offset of the same
    DIE of its canonical copy (from ``canon[r]``). False if a canonical DIE was removed too, or an
    index is out of range."""
    cdef Py_ssize_t r, k, s, d, n = new.shape[0]
    cdef bint ok = True
    cdef new_t gone = <new_t> REMOVED if new_t is uint32_t else <new_t> -1
    if lens.shape[0] != starts.shape[0] or canon.shape[0] != starts.shape[0]:
        raise ValueError("arrays of different lengths")
    with nogil:
        # checked before anything is written: a canonical DIE's mark is still there to see
        for r in range(starts.shape[0]):
            if starts[r] < 0 or canon[r] < 0 or lens[r] < 0 or starts[r] + lens[r] > n or canon[r] + lens[r] > n:
                ok = False
                break
            for k in range(lens[r]):
                if new[starts[r] + k] == gone and new[canon[r] + k] == gone:
                    ok = False
                    break
            if not ok:
                break
        if ok:
            for r in range(starts.shape[0]):
                for k in range(lens[r]):
                    s = starts[r] + k
                    if new[s] == gone:
                        new[s] = new[canon[r] + k]
    return ok


def table(list entries):
    """An abbreviation table numbering ``entries`` (``Unit.keys`` entries) from 1."""
    cdef Out o
    cdef Py_ssize_t c
    cdef bytes e
    oinit(&o, 1)
    try:
        for c in range(len(entries)):
            e = entries[c]
            if ouleb(&o, c + 1) < 0 or ocopy(&o, <const uint8_t *> (<char *> e), len(e)) < 0:
                raise MemoryError()
        if ozeros(&o, 1) < 0:
            raise MemoryError()
        return PyBytes_FromStringAndSize(<char *> o.p, o.n)
    finally:
        free(o.p)


def use_counts(list plans):
    """rewrite.shared_table's sum: {entry: DIEs using it} over every unit's plan (``keys`` and
    ``counts``), in unit order."""
    cdef dict total = {}
    cdef list keys, counts
    cdef Py_ssize_t k
    for plan in plans:
        keys, counts = plan.keys, plan.counts
        if len(counts) != len(keys):
            raise ValueError("one count per key")
        for k in range(len(keys)):
            e = keys[k]
            got = total.get(e)
            total[e] = counts[k] if got is None else got + counts[k]
    return total


def tag_sums(list rows_of):
    """merge._tag_table's sums: {tag: [DIEs before, DIEs after]} over each unit's rows (tag,
    before, after) end to end in an array('q')."""
    cdef dict table = {}
    cdef const int64_t[::1] rows
    cdef Py_ssize_t k
    cdef list got
    for r in rows_of:
        rows = r
        if rows.shape[0] % 3:
            raise ValueError("tag rows are rows of 3")
        for k in range(0, rows.shape[0], 3):
            got = table.get(rows[k])
            if got is None:
                table[rows[k]] = [rows[k + 1], rows[k + 2]]
            else:
                got[0] += rows[k + 1]
                got[1] += rows[k + 2]
    return table


def removal_rows(list starts, list ends, list canon_unit, list canon_die, const int64_t[::1] first):
    """``redirect``'s arguments from every unit's removals (table.Removals columns, unit-relative
    DIE indexes; ``first[u]``: the global index of unit u's first DIE): (starts, lens, canon) as
    array('q')."""
    cdef Py_ssize_t u, k, n, total = 0, at = 0, nu = len(starts)
    cdef const int64_t[::1] s, e, cu, cd
    for u in range(nu):
        total += len(starts[u])
    cdef array gs = clone(_INT64, total, False), lens = clone(_INT64, total, False)
    cdef array canon = clone(_INT64, total, False)
    cdef int64_t *gp = <int64_t *> gs.data.as_voidptr
    cdef int64_t *lp = <int64_t *> lens.data.as_voidptr
    cdef int64_t *cp = <int64_t *> canon.data.as_voidptr
    if first.shape[0] != nu or len(ends) != nu or len(canon_unit) != nu or len(canon_die) != nu:
        raise ValueError("one removal list and first DIE per unit")
    for u in range(nu):
        n = len(starts[u])
        if not n:
            continue
        s, e, cu, cd = starts[u], ends[u], canon_unit[u], canon_die[u]
        if e.shape[0] != n or cu.shape[0] != n or cd.shape[0] != n:
            raise ValueError("removal columns of different lengths")
        for k in range(n):
            if cu[k] < 0 or cu[k] >= nu:
                raise ValueError("a canonical unit out of range")
            gp[at] = first[u] + s[k]
            lp[at] = e[k] - s[k]
            cp[at] = first[cu[k]] + cd[k]
            at += 1
    return gs, lens, canon


cdef Py_ssize_t _moved_to(const int64_t *ps, const int64_t *ds, Py_ssize_t nk, int64_t x,
                          Py_ssize_t *at) noexcept nogil:
    """Where the byte at ``x`` of a draft lands in its recoded copy: moved by the delta of the
    last place (a kept DIE, or a value written in one) at or before it (-1: before the first).
    ``at`` holds how many places are at or before the previous position asked: rows come in
    position order, so the walk moves on from there (a binary search when one does not)."""
    cdef Py_ssize_t lo = at[0], hi = nk, mid
    if lo and ps[lo - 1] > x:
        lo = 0
        while lo < hi:
            mid = (lo + hi) >> 1
            if ps[mid] <= x:
                lo = mid + 1
            else:
                hi = mid
    while lo < nk and ps[lo] <= x:
        lo += 1
    at[0] = lo
    return x + ds[lo - 1] if lo else -1


cdef Py_ssize_t _value_end(const uint8_t *b, Py_ssize_t end, Py_ssize_t p, int64_t form, int offset_size,
                           int addr_size, int ref_addr_w) noexcept nogil:
    """Where a value of ``form`` at ``p`` ends (it must end by ``end``), -1 for a form not read
    here (DW_FORM_indirect, an unknown one) or a value past ``end``."""
    cdef uint64_t v = 0
    cdef Py_ssize_t size, k
    if form == 0x19 or form == FORM_IMPLICIT_CONST:  # flag_present
        size = 0
    elif form in (0x0B, 0x11, 0x0C, 0x25, 0x29):
        size = 1
    elif form in (0x05, 0x12, 0x26, 0x2A):
        size = 2
    elif form in (0x27, 0x2B):
        size = 3
    elif form in (0x06, 0x13, 0x28, 0x2C, 0x1C):
        size = 4
    elif form in (0x07, 0x14, 0x20, 0x24):
        size = 8
    elif form == 0x1E:  # data16
        size = 16
    elif form == 0x01:
        size = addr_size
    elif form in (0x0E, 0x17, 0x1F, 0x1D, 0x1F20, 0x1F21):
        size = offset_size
    elif form == FORM_ADDR:
        size = ref_addr_w
    elif form in (0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02, 0x0D):  # ULEB128 and SLEB128
        p = read_uleb64(b, end, p, &v)
        return p if 0 <= p <= end else -1
    elif form == 0x08:  # string
        while p < end and b[p]:
            p += 1
        return p + 1 if p < end else -1
    elif form == 0x0A or form == 0x03 or form == 0x04:  # block1, block2, block4
        size = 1 if form == 0x0A else 2 if form == 0x03 else 4
        if p + size > end:
            return -1
        for k in range(size):
            v |= (<uint64_t> b[p + k]) << (8 * k)
        p += size
        return p + <Py_ssize_t> v if v <= <uint64_t> (end - p) else -1
    elif form == 0x09 or form == 0x18:  # block, exprloc
        p = read_uleb64(b, end, p, &v)
        return p + <Py_ssize_t> v if 0 <= p <= end and v <= <uint64_t> (end - p) else -1
    else:
        return -1
    return p + size if p + size <= end else -1


cdef int _put_consts(Out *out, const uint8_t *b, Py_ssize_t q, Py_ssize_t nxt, const int64_t *rows, Py_ssize_t nrows,
                     int64_t *sp, int64_t *sd, Py_ssize_t *ns, Py_ssize_t *cur, int offset_size, int addr_size,
                     int ref_addr_w) noexcept nogil:
    """``recode``'s values of a draft's DIE whose attributes start at ``q`` (and end by ``nxt``):
    its key's ``rows`` (``nrows`` numbers: form, width, value) walk the DIE; each implicit
    constant of a width goes where its value would be, after the bytes from ``cur``, and starts a
    place (``sp``, ``sd``, ``ns``) from where what follows moves by that much more."""
    cdef Py_ssize_t x = q, r
    cdef uint8_t tmp[2]
    for r in range(0, nrows, 3):
        if rows[r] == FORM_IMPLICIT_CONST:
            if rows[r + 1]:
                if ocopy(out, b + cur[0], x - cur[0]) < 0:
                    return ST_NOMEM
                cur[0] = x
                put_le(tmp, <uint64_t> rows[r + 2], <int> rows[r + 1])
                if ocopy(out, tmp, rows[r + 1]) < 0:
                    return ST_NOMEM
                sp[ns[0]] = x
                sd[ns[0]] = out.n - x
                ns[0] += 1
            continue
        x = _value_end(b, nxt, x, rows[r], offset_size, addr_size, ref_addr_w)
        if x < 0:
            return ST_PURE
    return ST_OK


cdef object _draft_rows(list keys, dict rows):
    """``recode``'s keys' rows joined: (the rows end to end, an array('q') of three runs of
    len(keys) + 1: where each key's start, where they end, how many values it writes), or None
    where no key has rows."""
    cdef Py_ssize_t nkeys = len(keys), k, r
    cdef array joined = None, ra
    cdef array at = None
    cdef int64_t *cs
    cdef const int64_t *rv
    for k in range(nkeys):
        got = rows.get(keys[k])
        if got is None:
            continue
        if not isinstance(got, array) or (<array> got).ob_descr.typecode != b'q' or len(got) % 3:
            raise TypeError("a key's rows are rows of 3 in an array('q')")
        if joined is None:
            joined = array("q")
            at = clone(_INT64, 3 * (nkeys + 1), True)
        cs = <int64_t *> at.data.as_voidptr
        ra = got
        rv = <const int64_t *> ra.data.as_voidptr
        for r in range(1, len(ra), 3):
            if not 0 <= rv[r] <= 2 or (rv[r] and rv[r - 1] != FORM_IMPLICIT_CONST):
                raise ValueError("an implicit constant is written in 1 or 2 bytes")
            cs[2 * (nkeys + 1) + k] += rv[r] != 0
        cs[k] = len(joined)
        joined.extend(ra)
        cs[nkeys + 1 + k] = len(joined)
    return None if joined is None else (joined, at)


def recode(bytes body, array rel, list keys, dict codes, array locs, array fixes, array patches, int width,
           dict rows=None, int offset_size=4, int addr_size=8, int ref_addr_w=4):
    """A draft (``Unit.copy`` with its own codes and ``draft``) given other codes: key k (code
    k + 1 in the draft, ``keys[k]``) takes code ``codes[keys[k]]``. Only the DIEs' codes change
    size, so the bytes between them are copied as they are; the local references and DIE-naming
    operands get their targets' new offsets, and patches their new positions. (status as
    ``copy``'s, unit bytes, new unit-relative offsets (array('i'), -1: removed), patches
    (array('q'))): the bytes ``copy`` at ``width`` with these codes writes, without the unit's
    DIEs again. (array arguments, not typed memoryviews: acquiring six views cost more than the
    copy of a small unit.)

    ``rows`` (None, or {entry: rows} for the entries that write implicit constants): a key's
    specs as rows of 3 (form, width, value) in an array('q'), where a width (1 or 2) writes that
    DW_FORM_implicit_const's value into the DIE at its place (as ``Unit.copy``'s ``consts``;
    rewrite.Codes.rows); the draft's DIEs are walked with
    the unit's ``offset_size``, ``addr_size`` and ``ref_addr_w`` to find it. Status 4 (PURE):
    a form the walk does not read; the caller copies the unit instead."""
    if (rel.ob_descr.typecode != b'i' or locs.ob_descr.typecode != b'i' or fixes.ob_descr.typecode != b'q'
            or patches.ob_descr.typecode != b'q'):
        raise TypeError("rel and locs are array('i'), fixes and patches array('q')")
    cdef Py_ssize_t n = len(rel), nb = len(body), nk = 0, i, k, p, q, nxt, nkeys = len(keys), at
    cdef Py_ssize_t nl = len(locs) // 2, nf = len(fixes) // 3, npat = len(patches) // 3
    cdef const int32_t *rl = <const int32_t *> rel.data.as_voidptr
    cdef const int32_t *lc = <const int32_t *> locs.data.as_voidptr
    cdef const int64_t *fx = <const int64_t *> fixes.data.as_voidptr
    cdef const int64_t *pt = <const int64_t *> patches.data.as_voidptr
    cdef uint64_t code
    cdef int64_t pos, w, t
    cdef int st = ST_OK
    cdef Out out
    cdef Py_ssize_t ns = 0, r, cur, nins = 0
    if width not in (1, 2) or len(locs) % 2 or len(fixes) % 3 or len(patches) % 3:
        raise ValueError("a draft has width 1 or 2 and whole rows")
    # each key's rows (``rows``): cj[cs[k]] to cj[ce[k]], and how many values it writes (only
    # for a draft that has such keys: most drafts of most inputs have none)
    cdef int64_t *cs = NULL
    cdef int64_t *ce = NULL
    cdef int64_t *ins = NULL
    cdef const int64_t *cj = NULL
    cdef array joined = None, places
    if rows:
        got = _draft_rows(keys, rows)
        if got is not None:
            joined, places = got
            cj = <const int64_t *> joined.data.as_voidptr
            cs = <int64_t *> places.data.as_voidptr
            ce = cs + (nkeys + 1)
            ins = cs + 2 * (nkeys + 1)
    cdef array new_rel = clone(_INT32, n, False)
    cdef int32_t *nr = <int32_t *> new_rel.data.as_voidptr
    cdef array new_pat = clone(_INT64, 3 * npat, False)
    cdef int64_t *np_ = <int64_t *> new_pat.data.as_voidptr
    cdef array new_codes = clone(_INT64, nkeys, False)
    cdef int64_t *cd = <int64_t *> new_codes.data.as_voidptr
    for k in range(nkeys):
        cd[k] = codes[keys[k]]
    cdef int64_t *ps = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    cdef int64_t *ds = <int64_t *> malloc((n + 1) * sizeof(int64_t))
    # Where the bytes of the draft move: from sp[s] on by sd[s] (a DIE's bytes after its code;
    # after a value written in it, by that much more)
    cdef int64_t *sp = NULL
    cdef int64_t *sd = NULL
    cdef const uint8_t *b = <const uint8_t *> (<char *> body)
    oinit(&out, 1)
    try:
        if ps == NULL or ds == NULL:
            raise MemoryError()
        with nogil:
            for i in range(n):
                nr[i] = -1
                if rl[i] >= 0:
                    ps[nk] = rl[i]
                    ds[nk] = i  # (the DIE, until its delta is known)
                    nk += 1
            if cj != NULL:  # (room for a place a DIE, and one a value written)
                for k in range(nk):
                    if read_uleb64(b, nb, ps[k], &code) >= 0 and 0 < code <= <uint64_t> nkeys:
                        nins += ins[code - 1]
        if nins:
            sp = <int64_t *> malloc((nk + nins + 1) * sizeof(int64_t))
            sd = <int64_t *> malloc((nk + nins + 1) * sizeof(int64_t))
            if sp == NULL or sd == NULL:
                raise MemoryError()
        else:  # (one place a DIE: the places are those of the DIEs, ps and ds as they are filled)
            sp, sd = ps, ds
            cj = NULL
        with nogil:
            # the header, then each kept DIE: its new code, then its bytes up to the next DIE's code.
            # Room for all of it first (a code grows by 2 bytes at most, as codes are under 2**16;
            # a value written takes 2): the loop then copies without asking for room, which keeps
            # it small enough for the compiler to inline what it calls.
            p = ps[0] if nk else nb
            if ogrow(&out, nb + 2 * nk + 2 * nins + 16) < 0:
                st = ST_NOMEM
            elif p > nb or ocopy(&out, b, p) < 0:
                st = ST_NOMEM if p <= nb else ST_CORRUPT
            for k in range(nk):
                if st != ST_OK:
                    break
                p = ps[k]
                nxt = ps[k + 1] if k + 1 < nk else nb
                q = read_uleb64(b, nb, p, &code)
                if q < 0 or q > nxt or code == 0 or code > <uint64_t> nkeys:
                    st = ST_CORRUPT
                    break
                i = ds[k]
                nr[i] = <int32_t> out.n
                if ouleb(&out, cd[code - 1]) < 0:
                    st = ST_NOMEM
                    break
                ds[k] = out.n - q
                sp[ns] = p
                sd[ns] = out.n - q
                ns += 1
                cur = q
                if cj != NULL and ins[code - 1]:  # (the few DIEs that take implicit constants)
                    st = _put_consts(&out, b, q, nxt, cj + cs[code - 1], ce[code - 1] - cs[code - 1], sp, sd, &ns,
                                     &cur, offset_size, addr_size, ref_addr_w)
                    if st != ST_OK:
                        break
                if out.n + (nxt - cur) > out.cap:
                    st = ST_CORRUPT  # (not expected: the room made above holds it all)
                    break
                memcpy(out.p + out.n, b + cur, nxt - cur)
                out.n += nxt - cur
            if st == ST_OK and out.n > (<Py_ssize_t> 1) << (8 * width):
                st = ST_OVERFLOW
            # local references: the target's new offset in ``width`` bytes
            at = 0
            for k in range(nl):
                if st != ST_OK:
                    break
                pos = _moved_to(sp, sd, ns, lc[2 * k], &at)
                t = nr[lc[2 * k + 1]] if 0 <= lc[2 * k + 1] < n else -1
                if pos < 0 or pos + width > out.n or t < 0:
                    st = ST_CORRUPT
                    break
                put_le(out.p + pos, t, width)
            # DIE-naming operands of expressions: in their old width, as ``_copy`` checks them
            at = 0
            for k in range(nf):
                if st != ST_OK:
                    break
                pos = _moved_to(sp, sd, ns, fx[3 * k], &at)
                w = fx[3 * k + 1]
                t = nr[fx[3 * k + 2]] if 0 <= fx[3 * k + 2] < n else -1
                if pos < 0 or pos + (w if w > 0 else -w) > out.n:
                    st = ST_CORRUPT
                    break
                if t < 0 or (w < 0 and -w < 8 and t >> (-8 * w)) or (w > 0 and (w < 10 and t >> (7 * w))):
                    st = ST_NOFIT
                    break
                if w < 0:
                    put_le(out.p + pos, t, -w)
                else:
                    put_uleb(out.p + pos, t, w)
            at = 0
            for k in range(npat):
                if st != ST_OK:
                    break
                np_[3 * k] = _moved_to(sp, sd, ns, pt[3 * k], &at)
                np_[3 * k + 1] = pt[3 * k + 1]
                np_[3 * k + 2] = pt[3 * k + 2]
                if np_[3 * k] < 0:
                    st = ST_CORRUPT
            if st == ST_OK and out.n >= 4:
                put_le(out.p, out.n - 4, 4)
        if st == ST_CORRUPT:
            raise DwarfError("a rewritten unit's draft does not match its positions (internal error)")
        if st == ST_NOMEM:
            raise MemoryError()
        return st, PyBytes_FromStringAndSize(<char *> out.p, out.n) if st == ST_OK else None, new_rel, new_pat
    finally:
        free(out.p)
        if sp != ps:
            free(sp)
            free(sd)
        free(ps)
        free(ds)


def plan_unit(info, abbrev, Py_ssize_t abbrev_off, Py_ssize_t off, Py_ssize_t die_off, Py_ssize_t end,
              int version, int addr_size, int offset_size, prog_col, start_col, kids_col, ref_ops_col, rem_starts,
              rem_ends, int width, dict intern):
    """The first rewrite pass of a unit without the GIL (``plan_units`` of one unit): the scanner's
    loop (read.decode_unit's compiled path, with the tables ``read._scan_tables`` makes) makes
    the unit's columns; where its expressions may name DIEs, the expression scanner's loop
    (``_loclists.scan_expr_blocks`` with rows) their operands; the unit is prepared with them
    (as ``Unit()``), then come ``keys(width, intern)``, the draft ``copy(width, None, kept, True,
    True)`` and ``tag_counts(True)``. ``width``: 1 or 2.

    None where the scanner or the expression scanner declines (the caller decodes the unit, and
    the pure decoder says what is wrong) or the kernel leaves the unit to the pure loop; else
    (unit, its DIEs, its references, whether an operand is not section-relative, the keys, the
    copy's tuple, the tag rows). The copy's status decides as ``copy``'s; the unit takes any
    other width after it."""
    return plan_units([(info, abbrev, abbrev_off, off, die_off, end, version, addr_size, offset_size, prog_col,
                        start_col, kids_col, rem_starts, rem_ends, width)], ref_ops_col, intern)[0]


cdef class _PlanJob:
    """One unit of ``plan_units``: its kernel, its inputs' data (the caller's objects stay alive
    for the call) and what the nogil steps leave for its result."""
    cdef Unit unit
    cdef const int64_t *prog
    cdef const int64_t *start
    cdef const uint8_t *kids
    cdef const int64_t *rs
    cdef const int64_t *re
    cdef Py_ssize_t nstart, nrem, ab_n, abbrev_off, off, die_off, end, nref, nx, m
    cdef int version, addr_size, offset_size, width, st, kst, done, ex
    cdef int64_t bad
    cdef int64_t *xr
    cdef int64_t *rows
    cdef int64_t *cnt
    cdef Py_ssize_t *at
    cdef bint named
    cdef Copied c
    cdef Out ko

    def __cinit__(self):
        self.xr = self.rows = self.cnt = NULL
        self.at = NULL
        memset(&self.c, 0, sizeof(Copied))
        self.ko.p = NULL
        self.done = 0

    def __dealloc__(self):
        free(self.xr)
        free(self.at)
        free(self.ko.p)
        free(self.rows)
        free(self.cnt)
        free_copied(&self.c)

    cdef void run(self, const uint8_t *refop, void *tmpl) noexcept nogil:
        cdef Scanned *o = &self.unit.scanned
        self.done = scan_dies(self.unit.d, self.unit.info_n, self.die_off, self.end, self.off, self.prog, self.start,
                              self.nstart, self.kids, refop, o)
        if self.done == 1:
            self.unit.offs, self.unit.codes, self.unit.parent, self.unit.ends = o.offs.p, o.codes.p, o.par.p, o.ends.p
            self.unit.n = o.offs.n
            self.nref = o.rpos.n
            if o.E.n:
                self.ex = expr_rows(self.unit.d, self.unit.info_n, o.E.p, o.E.n // 3, self.off, self.addr_size,
                                    self.offset_size, self.version, &self.xr, &self.nx, &self.named)
            if self.ex == 0:
                self.st = self.unit._prepare_all(self.ab_n, self.abbrev_off, o.rpos.p, o.rdie.p, o.rform.p,
                                                 o.rtgt.p, self.nref, self.rs, self.re, self.nrem, self.xr, self.nx,
                                                 &self.bad, tmpl)
        # (what stays: the DIEs' columns, which ``keys`` and ``copy`` read)
        self.unit._free_references()
        ifree(&o.stack); ifree(&o.rat); ifree(&o.L); ifree(&o.E)
        if self.done == 1 and self.ex == 0 and self.st == ST_OK:
            self.kst = self.unit._sigs()
            if self.kst == ST_OK:
                self.at = <Py_ssize_t *> malloc((self.unit.nsig + 1) * sizeof(Py_ssize_t))
                self.kst = ST_NOMEM if self.at == NULL else self.unit._entries(&self.ko, self.at, self.width)
            if self.kst == ST_OK:
                self.unit._copy_run(&self.c, self.width, NULL, self.unit.kept, True, True)
                self.rows = <int64_t *> calloc(3 * self.unit.ncodes + 3, sizeof(int64_t))
                self.cnt = <int64_t *> calloc(2 * self.unit.ncodes + 2, sizeof(int64_t))
                if self.rows == NULL or self.cnt == NULL:
                    self.kst = ST_NOMEM
                else:
                    self.m = self.unit._tag_rows(self.rows, self.cnt)

    cdef object result(self, dict intern):
        cdef Unit unit = self.unit
        if self.done == 2:
            raise MemoryError()
        if self.done != 1 or self.ex < 0:
            return None
        unit._raise(self.st, self.bad)
        if unit.pure:
            return None
        unit._raise(self.kst, 0)
        keys = unit._key_list(&self.ko, self.at, intern)
        return (unit, unit.n, self.nref, self.named, keys, unit._copy_result(&self.c, True, True),
                _flat_rows(self.rows, self.m))


cdef enum:
    RECENT_TABLES = 16  # abbreviation tables a batch of ``plan_units`` remembers


def plan_units(list calls, ref_ops_col, dict intern):
    """``plan_unit`` of each tuple of its arguments but ``ref_ops`` and ``intern`` in ``calls``,
    all in one stretch without the GIL: a batch of small units lets go of it once rather than
    once per unit (libgsl, 629 units of 5.7 KB: two threads handed it over 200 times in this
    pass). Its result (or None) for each; an error in any unit's arguments raises before any
    unit runs."""
    cdef Py_ssize_t k, q, n = len(calls), nprog, nkids, nops
    cdef uint8_t refop[256]
    cdef const uint8_t *ref_ops
    cdef _PlanJob job
    cdef list jobs = []
    memset(refop, 0, 256)
    nops = byte_column(ref_ops_col, &ref_ops)
    for q in range(nops):
        refop[ref_ops[q]] = 1
    for k in range(n):
        (info, abbrev, abbrev_off, off, die_off, end, version, addr_size, offset_size, prog_col, start_col, kids_col,
         rem_starts, rem_ends, width) = calls[k]
        job = _PlanJob.__new__(_PlanJob)
        nprog = int64_column(prog_col, &job.prog)
        job.nstart = int64_column(start_col, &job.start)
        nkids = byte_column(kids_col, &job.kids)
        job.nrem = int64_column(rem_starts, &job.rs)
        if int64_column(rem_ends, &job.re) != job.nrem:
            raise ValueError("removal arrays of different lengths")
        if width not in (1, 2):
            raise ValueError("width is 1 or 2")
        if nprog == 0 or job.nstart == 0 or nkids < job.nstart:
            jobs.append(None)
            continue
        job.ab_n = len(abbrev)
        job.abbrev_off, job.off, job.die_off, job.end = abbrev_off, off, die_off, end
        job.version, job.addr_size, job.offset_size, job.width = version, addr_size, offset_size, width
        job.unit = Unit.__new__(Unit)
        job.unit.keep_alive = (info, abbrev)
        job.unit._unit(info, abbrev, off, die_off, end, version, addr_size, offset_size)
        oinit(&job.ko, 1)
        jobs.append(job)
    # The units of a batch that read an abbreviation table, the last RECENT_TABLES tables: a unit of
    # one of them copies it rather than reading it (the same arrays).
    cdef void *recent[RECENT_TABLES]
    cdef Py_ssize_t recent_off[RECENT_TABLES]
    cdef Py_ssize_t r, nrecent = 0
    cdef void *tmpl
    cdef void **slots = <void **> malloc((n + 1) * sizeof(void *))
    if slots == NULL:
        raise MemoryError()
    try:
        for k in range(n):
            slots[k] = NULL if jobs[k] is None else <void *> jobs[k]
        with nogil:
            for k in range(n):
                if slots[k] != NULL:
                    tmpl = NULL
                    for r in range(min(nrecent, RECENT_TABLES)):
                        if (recent_off[r] == (<_PlanJob> slots[k]).abbrev_off
                                and (<_PlanJob> recent[r]).unit.ab == (<_PlanJob> slots[k]).unit.ab
                                and (<_PlanJob> recent[r]).ab_n == (<_PlanJob> slots[k]).ab_n):
                            tmpl = <void *> (<_PlanJob> recent[r]).unit
                            break
                    (<_PlanJob> slots[k]).run(refop, tmpl)
                    if tmpl == NULL and (<_PlanJob> slots[k]).unit.table_ok:
                        recent[nrecent % RECENT_TABLES] = slots[k]
                        recent_off[nrecent % RECENT_TABLES] = (<_PlanJob> slots[k]).abbrev_off
                        nrecent += 1
    finally:
        free(slots)
    out = []
    for k in range(n):  # (each job's buffers go as soon as its result is made)
        out.append(None if jobs[k] is None else (<_PlanJob> jobs[k]).result(intern))
        jobs[k] = None
    return out


# Location-list operands (merge/locations.py: targets, values_at, write, whose pure loops are
# these functions' twins): a unit of libgsl has 125 of them on average, 78,000 in all, and a
# Python loop over them took a fifth of its merge.

def location_targets(list ops, offs, int64_t unit_off):
    """locations.targets's loop over ``ops`` ((position, width, kind, value) each):
    (array('q') rows of 3 (position, width (< 0: fixed size), DIE index, or -unit_off - 1 for an
    offset that is no DIE), [(position, width, target)] of the section-offset operands)."""
    cdef const int64_t *o
    cdef Py_ssize_t n = int64_column(offs, &o)
    cdef array out = clone(_INT64, 3 * len(ops), False)
    cdef int64_t *r = <int64_t *> out.data.as_voidptr
    cdef Py_ssize_t k = 0, t
    cdef list patches = []
    cdef int64_t w
    for op in ops:
        kind = op[2]
        if kind == "s":
            patches.append((op[0], op[1], op[3]))
            continue
        w = op[1]
        x = op[3] + unit_off  # (a Python int: an operand ULEB128 may hold 2**63 or more)
        t = find(o, n, <int64_t> x) if 0 <= x <= INT64_MAX else -1
        r[k] = op[0]
        r[k + 1] = w if kind == "u" else -w
        r[k + 2] = t if t >= 0 else -unit_off - 1
        k += 3
    resize(out, k)
    return out, patches


def values_at(array targets, new_rel):
    """locations.values_at: (0, array('q') rows of 3 (position, width, new value)); (1, 0) at the
    first operand whose new value does not fit its width; (2, unit offset) at the first that
    names no DIE; whichever comes first, as the Python loop returns them."""
    cdef const int64_t *nr = NULL
    cdef const int32_t *nr32 = NULL
    cdef const int32_t[::1] v32
    cdef Py_ssize_t nn
    if memoryview(new_rel).itemsize == 4:  # array('i') from the kernel's copy, or the pure path's int32
        v32 = new_rel
        nn = v32.shape[0]
        nr32 = &v32[0] if nn else NULL
    else:
        nn = int64_column(new_rel, &nr)
    cdef Py_ssize_t m = len(targets), i
    cdef const int64_t *r = <const int64_t *> targets.data.as_voidptr
    cdef array out = clone(_INT64, m, False)
    cdef int64_t *o = <int64_t *> out.data.as_voidptr
    cdef int64_t t, v, w, bits
    for i in range(0, m, 3):
        t = r[i + 2]
        if t < 0:
            return 2, -t - 1
        if t >= nn:
            raise IndexError("location-list operand target out of range")
        v = nr32[t] if nr32 != NULL else nr[t]
        w = r[i + 1]
        if v < 0:
            return 1, 0
        bits = 7 * w if w > 0 else -8 * w
        if (w == 0 and v != 0) or (w != 0 and bits < 63 and v >= (<int64_t> 1 << bits)):
            return 1, 0  # (width 0: only 0 fits, as in the pure twin)
        o[i] = r[i]
        o[i + 1] = w
        o[i + 2] = v
    return 0, out


def write_operands(unsigned char[::1] out, array rows):
    """Each row of ``rows`` (position, width, value) into ``out``: a ULEB128 padded to ``width``
    bytes (> 0) or ``-width`` little-endian bytes, as ``values_at`` checked they fit. False if a
    row lies outside ``out``."""
    cdef Py_ssize_t m = len(rows), i, size = out.shape[0]
    cdef const int64_t *r = <const int64_t *> rows.data.as_voidptr
    cdef int64_t pos, w
    cdef uint8_t *base
    cdef int64_t n, k
    for i in range(0, m, 3):
        pos, w = r[i], r[i + 1]
        n = w if w > 0 else -w
        if pos < 0 or n > size or pos > size - n:
            return False
    if not size:
        return True
    base = &out[0]
    with nogil:
        for i in range(0, m, 3):
            pos, w = r[i], r[i + 1]
            if w > 0:
                put_uleb(base + pos, <uint64_t> r[i + 2], <int> w)
            else:
                for k in range(-w):  # little-endian, zero past the value's 8 bytes
                    base[pos + k] = (<uint64_t> r[i + 2] >> (8 * k)) & 0xFF if k < 8 else 0
    return True
