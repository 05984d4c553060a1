# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled parsers of the small DWARF tables every unit reads once, with the same results as
their pure-Python references: its .debug_abbrev table (``abbrev._parse_abbrev_table``), the
compiled scanner's per-code programs of that table (``read._scan_tables``) and the file names of
its .debug_line header (``line._file_names``).

Abbreviations are immutable, so equal ones (same tag, children flag and encoded attribute list)
are one shared object, looked up by their bytes: a program's units repeat most of them. On
anything a parser does not accept (a truncated table, a LEB128 wider than 63 bits, a form it does
not know) it returns None and the caller runs the pure-Python code, which raises the exact error.
"""
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.stdlib cimport realloc, free
from libc.string cimport memset

from linkplugin.dwarf._buf cimport IV, Buf, ipush
from linkplugin.dwarf._forms cimport TPL_SLOTS, form_slot
from linkplugin.dwarf._columns cimport byte_column, int64_table
from linkplugin.dwarf._lines cimport line_files
from linkplugin.dwarf._leb cimport read_le, read_sleb, read_spec, read_uleb

from cpython.array cimport array, clone
from cpython.bytes cimport PyBytes_FromStringAndSize


DEF DW_FORM_implicit_const = 0x21
DEF DW_FORM_indirect = 0x16


cdef array _INT64 = array("q")
cdef array _UINT8 = array("B")



def parse(const uint8_t[::1] dv, object d, Py_ssize_t off, object abbrev_type, object table_type, dict shared,
          int64_t want=-1, int64_t want_tag=-1, const uint8_t[::1] wanted=None):
    """({code: Abbrev}, offset after the table) of the table at ``off`` in ``d``, or None.

    The table is a ``table_type`` (a dict) whose ``indirect`` tells whether a form is
    DW_FORM_indirect; ``shared`` maps (tag, children, encoded attributes) to an Abbrev already made.
    With ``want`` >= 0 the table holds only that code's Abbrev (if the table has it), with -2
    none: the whole table is still read and checked (abbrev.LazyTable). With ``want_tag`` >= 0,
    only the Abbrevs of that tag (abbrev.codes_with_tag); with ``wanted``, only those of the
    codes it marks (abbrev.some_codes)."""
    cdef Py_ssize_t n = dv.shape[0], p = off, spec_start, q
    cdef const uint8_t *b
    cdef uint64_t code, tag
    cdef bint children, indirect = False, hit
    table = table_type()
    if off < 0 or off >= n:
        return None
    b = &dv[0]
    while True:
        p = _entry(b, n, p, &code, &tag, &children, &spec_start, &indirect, NULL, 0, &hit)
        if p < 0:
            return None
        if code == 0:
            table.indirect = indirect
            return table, p
        if want != -1 and <int64_t> code != want:
            continue
        if (want_tag >= 0 and <int64_t> tag != want_tag) or (
                wanted is not None and (code >= <uint64_t> wanted.shape[0] or not wanted[code])):
            # A code defined twice (a damaged table) means its last entry, as everywhere else:
            # an earlier entry of the code kept here is dropped.
            if want_tag >= 0 and table:
                table.pop(code, None)
            continue
        raw = PyBytes_FromStringAndSize(<const char *> (b + spec_start), p - spec_start)
        key = (tag, children, raw)
        ab = shared.get(key)
        if ab is None:
            ab = shared[key] = abbrev_type(tag, children, _specs(b, spec_start, p), raw)
        table[code] = ab


def codes_with(const uint8_t[::1] dv, Py_ssize_t off, const uint8_t[::1] tags, const uint8_t[::1] attrs):
    """The codes of the table at ``off`` whose entry has a tag that ``tags`` marks and an
    attribute that ``attrs`` marks (by number, below each's length), in the order the codes are
    first defined, a code's last entry deciding (as ``parse``); None for a table that cannot be
    read. Makes no Abbrev (hash._followed_roots)."""
    cdef Py_ssize_t n = dv.shape[0], p = off, spec_start
    cdef uint64_t code, tag
    cdef bint children, indirect = False, hit
    cdef dict got = {}
    if off < 0 or off >= n or attrs.shape[0] == 0:
        return None
    while True:
        p = _entry(&dv[0], n, p, &code, &tag, &children, &spec_start, &indirect, &attrs[0], attrs.shape[0], &hit)
        if p < 0:
            return None
        if code == 0:
            return [c for c, h in got.items() if h]
        got[code] = hit and tag < <uint64_t> tags.shape[0] and tags[tag] != 0


cdef Py_ssize_t _entry(const uint8_t *b, Py_ssize_t n, Py_ssize_t p, uint64_t *code, uint64_t *tag, bint *children,
                       Py_ssize_t *spec_start, bint *indirect, const uint8_t *attrs, Py_ssize_t nattrs,
                       bint *hit) noexcept:
    """The table entry at ``p``: its code (0: the table's end, nothing more read), tag, children
    flag and where its specs start; ``indirect`` set where a spec's form is DW_FORM_indirect,
    ``hit`` whether an attribute that ``attrs`` marks is one of them. The position after it, or
    -1 for bytes that are not a table."""
    cdef uint64_t at, form
    cdef int64_t ic
    p = read_uleb(b, n, p, code)
    if p < 0 or code[0] == 0:
        return p
    p = read_uleb(b, n, p, tag)
    if p < 0 or p >= n:
        return -1
    children[0] = b[p] != 0
    p += 1
    spec_start[0] = p
    hit[0] = False
    while True:
        p = read_spec(b, n, p, &at, &form, &ic)
        if p < 0:
            return -1
        if at == 0 and form == 0:
            return p
        if form == DW_FORM_indirect:
            indirect[0] = True
        if at < <uint64_t> nattrs and attrs[at]:
            hit[0] = True


cdef tuple _specs(const uint8_t *b, Py_ssize_t p, Py_ssize_t end):
    """The (attribute, form, implicit constant) triples of an attribute list already checked."""
    cdef uint64_t at = 0, form = 0  # set by read_spec (zeroed so the C compiler can see it)
    cdef int64_t ic = 0
    cdef list out = []
    while True:
        p = read_spec(b, end, p, &at, &form, &ic)
        if at == 0 and form == 0:
            return tuple(out)
        out.append((at, form, ic))


# --- .debug_line header: file names ------------------------------------------------------------

def file_names(line_col, Py_ssize_t off, strs_col, line_strs_col, bytes comp_dir):
    """The full path of each file index of the line table at ``off`` (None: unused index), or
    None (the caller runs the pure-Python parser, which raises the exact error): ``line_files``
    (dwarf/_lines.pxd, which the hash kernel also runs without the GIL) as a list."""
    cdef const uint8_t *b
    cdef const uint8_t *sb
    cdef const uint8_t *lb
    cdef Py_ssize_t n = byte_column(line_col, &b), nstrs = byte_column(strs_col, &sb)
    cdef Py_ssize_t nlstrs = byte_column(line_strs_col, &lb), k
    cdef Buf out
    cdef IV starts, ends
    cdef int got
    memset(&out, 0, sizeof(Buf))
    memset(&starts, 0, sizeof(IV))
    memset(&ends, 0, sizeof(IV))
    try:
        got = line_files(b, n, off, sb, nstrs, lb, nlstrs, <const uint8_t *> (<char *> comp_dir), len(comp_dir),
                         &out, &starts, &ends)
        if got == 2:
            raise MemoryError()
        if got == 0:
            return None
        return [None if starts.p[k] < 0 else PyBytes_FromStringAndSize(<const char *> out.p + starts.p[k],
                                                                         ends.p[k] - starts.p[k])
                for k in range(starts.n)]
    finally:
        free(out.p)
        free(starts.p)
        free(ends.p)


# --- the compiled scanner's programs of one abbreviation table -----------------------------------

DEF AT_CLASSES = 0x4000  # attributes at or above this are of class "other"


cdef inline void push4(IV *v, int64_t a, int64_t b, int64_t c, int64_t d) noexcept nogil:
    ipush(v, a)
    ipush(v, b)
    ipush(v, c)
    ipush(v, d)


def scan_tables(abbrev_col, Py_ssize_t off, tpl_col, at_class_col):
    """(ops, start by code, children by code) of the compiled scanner for the abbreviation table at
    ``off``, as ``read._scan_tables`` makes them from ``abbrev.scan_program``; or None (the caller
    makes them in Python).

    ``tpl[at_class[attribute], form]`` is what scan_program does with one attribute: (-2, size)
    to skip ``size`` bytes, or (op, a, b, 1 if the op's last field is the attribute else 0), or -1
    where this function declines (DW_FORM_indirect, an unknown form). (No typed views: a unit's
    table is made in microseconds, ``_columns``.)"""
    cdef const uint8_t *b
    cdef const int64_t *tpl
    cdef const uint8_t *at_class
    cdef Py_ssize_t n = byte_column(abbrev_col, &b), p = off, j
    cdef uint64_t code, tag, at, form, max_code = 0
    cdef int64_t k, kind, cls, ic, t, slot
    cdef IV ops, codes, starts, kids
    cdef int64_t *sv
    cdef int64_t *ov
    cdef uint8_t *kv
    cdef Py_ssize_t nclass = int64_table(tpl_col, TPL_SLOTS, 4, &tpl)
    if off < 0 or off >= n or nclass < 0 or byte_column(at_class_col, &at_class) != AT_CLASSES:
        return None
    ops.p = codes.p = starts.p = kids.p = NULL
    ops.n = ops.cap = codes.n = codes.cap = starts.n = starts.cap = kids.n = kids.cap = 0
    ops.err = codes.err = starts.err = kids.err = 0
    try:
        while True:
            p = read_uleb(b, n, p, &code)
            if p < 0 or code >= (1 << 16):
                return None
            if code == 0:
                break
            if code > max_code:
                max_code = code
            p = read_uleb(b, n, p, &tag)
            if p < 0 or p >= n:
                return None
            push4(&codes, <int64_t> code, ops.n // 4, 1 if b[p] else 0, 0)
            p += 1
            k = 0
            while True:
                p = read_spec(b, n, p, &at, &form, &ic)
                if p < 0:
                    return None
                if at == 0 and form == 0:
                    break
                slot = form_slot(form)
                if slot < 0:
                    return None
                cls = at_class[at] if at < AT_CLASSES else nclass - 1
                if cls >= nclass:
                    return None
                t = (cls * TPL_SLOTS + slot) * 4  # tpl[cls, form's row, :]
                kind = tpl[t]
                if kind == -2:
                    k += tpl[t + 1]
                    continue
                if kind < 0:
                    return None
                if k:
                    push4(&ops, 1, k, 0, 0)  # OP_SKIP
                    k = 0
                push4(&ops, kind, tpl[t + 1], tpl[t + 2], <int64_t> at if tpl[t + 3] else 0)
            if k:
                push4(&ops, 1, k, 0, 0)
            push4(&ops, 0, 0, 0, 0)  # OP_END
        if ops.err or codes.err:
            raise MemoryError()
        size = max_code + 1
        start_a = clone(_INT64, size, False)
        memset(start_a.data.as_voidptr, 0xFF, size * sizeof(int64_t))  # -1: no such code
        kids_a = clone(_UINT8, size, True)
        ops_a = clone(_INT64, ops.n, False)
        sv = <int64_t *> start_a.data.as_voidptr
        kv = <uint8_t *> kids_a.data.as_voidptr
        ov = <int64_t *> ops_a.data.as_voidptr
        for j in range(0, codes.n, 4):
            sv[codes.p[j]] = codes.p[j + 1] * 4
            kv[codes.p[j]] = <uint8_t> codes.p[j + 2]
        for j in range(ops.n):
            ov[j] = ops.p[j]
        return ops_a, start_a, kids_a
    finally:
        free(ops.p)
        free(codes.p)
        free(starts.p)
        free(kids.p)


cdef inline int _fixed_size(uint64_t form, int version, int offset_size, int addr_size) noexcept:
    """forms.FIXED_SIZE (and abbrev.form_size's DW_FORM_ref_addr) of the forms ``die_values``
    takes, 0 for the others."""
    if form == 0x10:  # DW_FORM_ref_addr
        return addr_size if version <= 2 else offset_size
    if form == 0x01:  # addr
        return addr_size
    if form in (0x0b, 0x11, 0x0c, 0x25, 0x29):  # data1, ref1, flag, strx1, addrx1
        return 1
    if form in (0x05, 0x12, 0x26, 0x2a):  # data2, ref2, strx2, addrx2
        return 2
    if form in (0x27, 0x2b):  # strx3, addrx3
        return 3
    if form in (0x06, 0x13, 0x28, 0x2c, 0x1c):  # data4, ref4, strx4, addrx4, ref_sup4
        return 4
    if form in (0x07, 0x14, 0x20, 0x24):  # data8, ref8, ref_sig8, ref_sup8
        return 8
    if form in (0x0e, 0x1f, 0x17, 0x1d, 0x1f20, 0x1f21):  # strp, line_strp, sec_offset, strp_sup, GNU alt
        return offset_size
    return 0


def die_values(d_col, Py_ssize_t p, tuple specs, int version, int offset_size, int addr_size, int64_t unit_off):
    """read.die_attrs's {attribute: (form, value)} of the DIE whose attributes (``specs``, as
    Abbrev.specs) start at ``p``, as read.decode_attrs reads them; None where this declines (a
    block, DW_FORM_data16 or DW_FORM_indirect, a value past the section or wider than 63 bits):
    the caller runs decode_attrs, which gives the same values or the error. The unit DIE of
    every unit is read this way (glibc's libc.so.6: 2,063 of them, 8 us each in Python)."""
    cdef const uint8_t *d
    cdef Py_ssize_t n = byte_column(d_col, &d), q
    cdef uint64_t form, v
    cdef int64_t sv
    cdef int size
    cdef dict out = {}
    cdef tuple spec
    for spec in specs:
        form = spec[1]
        if form == 0x21:  # implicit_const
            value = spec[2]
        elif form == 0x19:  # flag_present
            value = 1
        else:
            size = _fixed_size(form, version, offset_size, addr_size)
            if size:
                if p < 0 or p + size > n:
                    return None
                v = read_le(d, p, size)
                p += size
                value = v
            elif form == 0x0d:  # sdata
                p = read_sleb(d, n, p, &sv)
                if p < 0:
                    return None
                value = sv
            elif form in (0x0f, 0x15, 0x1a, 0x1b, 0x22, 0x23, 0x1f01, 0x1f02):  # forms.ULEB_FORMS
                p = read_uleb(d, n, p, &v)
                if p < 0:
                    return None
                value = v
            elif form == 0x08:  # string
                if p < 0 or p >= n:
                    return None
                q = p
                while q < n and d[q]:
                    q += 1
                if q >= n:
                    return None
                value = PyBytes_FromStringAndSize(<const char *> d + p, q - p)
                p = q + 1
            else:
                return None
            if form in (0x11, 0x12, 0x13, 0x14, 0x15):  # forms.UNIT_REF_FORMS: section offsets
                value = unit_off + value
        out[spec[0]] = (spec[1], value)
    return out
