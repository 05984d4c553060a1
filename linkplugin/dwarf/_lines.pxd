# The file names of a line table, for the compiled parser (_parse.file_names) and the hash
# kernel (which reads each unit's without the GIL): line.file_names's paths end to end in one
# buffer, without Python objects. Inline here so that both modules compile it in.
from libc.stdint cimport int64_t, uint64_t, uint8_t
from libc.stdlib cimport free
from libc.string cimport memset

from linkplugin.dwarf._buf cimport IV, Buf, ipush, put, raw
from linkplugin.dwarf._leb cimport read_le, read_uleb


cdef inline Py_ssize_t _cstr_end(const uint8_t *b, Py_ssize_t n, Py_ssize_t p) noexcept nogil:
    """The end of the NUL-terminated string at ``p`` (-1: past the end or unterminated)."""
    if p < 0 or p >= n:
        return -1
    while p < n and b[p]:
        p += 1
    return p if p < n else -1


cdef inline int _entry_name(const uint8_t *b, Py_ssize_t n, Py_ssize_t p, Py_ssize_t *q) noexcept nogil:
    """The name of a DWARF 2-4 directory or file entry at ``p``: 2 and its end in ``q``, 1 at
    the list's closing NUL, 0 past the end or unterminated."""
    if p >= n:
        return 0
    if not b[p]:
        return 1
    q[0] = _cstr_end(b, n, p)
    return 2 if q[0] >= 0 else 0


cdef inline void _join(Buf *out, IV *starts, IV *ends, const uint8_t *d, Py_ssize_t nd, bint has_dir,
                const uint8_t *name, Py_ssize_t nn) noexcept nogil:
    """line._join of a directory (``has_dir`` False: None) and a name, appended to ``out`` with
    its span."""
    ipush(starts, out.n)
    if has_dir and nd and not (nn and name[0] == b'/'):
        raw(out, d, nd)
        put(out, b'/')
    raw(out, name, nn)
    ipush(ends, out.n)


cdef inline int line_files(const uint8_t *b, Py_ssize_t n, Py_ssize_t off, const uint8_t *sb, Py_ssize_t nstrs,
                    const uint8_t *lb, Py_ssize_t nlstrs, const uint8_t *comp, Py_ssize_t ncomp, Buf *out,
                    IV *starts, IV *ends) noexcept nogil:
    """line.file_names without Python objects: the full path of each file index of the line
    table at ``off`` end to end in ``out``, each one's span in ``starts`` / ``ends`` (start -1:
    no path); 1 when done, 0 where it declines (anything truncated or out of place, a block
    form, a path or directory index it does not read: the pure-Python parser then runs and
    raises the exact error), 2 out of memory."""
    cdef Py_ssize_t p = off, q, j, c, count, k, nfmt, i
    cdef int osize = 4, version, size
    cdef uint64_t length, opcode_base, di, ct, form, v
    cdef Buf dirs
    cdef IV ds, de, fmts, ents
    cdef const uint8_t *src
    cdef const uint8_t *first = NULL  # DWARF 5: directory 0's path in its section
    cdef Py_ssize_t nfirst = 0
    cdef Py_ssize_t ps, pe, idx
    cdef int rc = 1, got
    memset(&dirs, 0, sizeof(Buf))
    memset(&ds, 0, sizeof(IV))
    memset(&de, 0, sizeof(IV))
    memset(&fmts, 0, sizeof(IV))
    memset(&ents, 0, sizeof(IV))
    if off < 0 or off + 4 > n:
        return 0
    length = read_le(b, p, 4)
    p += 4
    if length == <uint64_t> 0xFFFFFFFF:
        p += 8
        osize = 8
    if p + 2 > n:
        return 0
    version = <int> read_le(b, p, 2)
    p += 2
    if version >= 5:
        p += 2
    p += osize + 1 + (1 if version >= 4 else 0) + 3
    if p >= n:
        return 0
    opcode_base = b[p]
    p += opcode_base
    if version < 5:
        # directories: the compilation directory, then each one taken from it
        ipush(&ds, 0)
        raw(&dirs, comp, ncomp)
        ipush(&de, dirs.n)
        while rc == 1:
            got = _entry_name(b, n, p, &q)
            if got != 2:
                rc = got
                break
            _join(&dirs, &ds, &de, comp, ncomp, True, b + p, q - p)
            p = q + 1
        p += 1
        if rc == 1:  # file 0: none
            ipush(starts, -1)
            ipush(ends, out.n)
        while rc == 1:
            got = _entry_name(b, n, p, &q)
            if got != 2:
                rc = got
                break
            ps, pe = p, q
            p = read_uleb(b, n, q + 1, &di)
            for k in range(2):
                if p >= 0:
                    p = read_uleb(b, n, p, &v)
            if p < 0:
                rc = 0
                break
            if di < <uint64_t> ds.n:
                _join(out, starts, ends, dirs.p + ds.p[di], de.p[di] - ds.p[di], True, b + ps, pe - ps)
            else:
                _join(out, starts, ends, NULL, 0, False, b + ps, pe - ps)
    elif version > 5:
        rc = 0
    else:
        for k in range(2):  # directories, then files
            if rc != 1:
                break
            if p >= n:
                rc = 0
                break
            nfmt = b[p]
            p += 1
            fmts.n = 0
            for j in range(nfmt):
                p = read_uleb(b, n, p, &ct)
                if p >= 0:
                    p = read_uleb(b, n, p, &form)
                if p < 0:
                    rc = 0
                    break
                ipush(&fmts, <int64_t> ct)
                ipush(&fmts, <int64_t> form)
            if rc != 1:
                break
            p = read_uleb(b, n, p, &v)
            if p < 0 or v > <uint64_t> n:
                rc = 0
                break
            count = <Py_ssize_t> v
            for j in range(count):
                # the entry's path (a span of ``src``; empty by default) and directory index
                src = b
                ps = pe = 0
                idx = 0  # (file_names's default: directory 0; -1: an index that is no number)
                for c in range(nfmt):
                    ct = <uint64_t> fmts.p[2 * c]
                    form = <uint64_t> fmts.p[2 * c + 1]
                    if form == 0x08:  # DW_FORM_string
                        q = _cstr_end(b, n, p)
                        if q < 0:
                            rc = 0
                            break
                        if ct == 1:
                            src, ps, pe = b, p, q
                        elif ct == 2:
                            idx = -1  # (a string: not a number, no directory)
                        p = q + 1
                    elif form == 0x1F or form == 0x0E:  # DW_FORM_line_strp, DW_FORM_strp
                        if p + osize > n:
                            rc = 0
                            break
                        v = read_le(b, p, osize)
                        p += osize
                        if v > <uint64_t> n + nstrs + nlstrs:
                            rc = 0
                            break
                        if form == 0x1F:
                            q = _cstr_end(lb, nlstrs, <Py_ssize_t> v)
                        else:
                            q = _cstr_end(sb, nstrs, <Py_ssize_t> v)
                        if q < 0:
                            rc = 0
                            break
                        if ct == 1:
                            src, ps, pe = (lb if form == 0x1F else sb), <Py_ssize_t> v, q
                        elif ct == 2:
                            idx = -1
                    elif form == 0x0F or form == 0x0B or form == 0x05 or form == 0x06 or form == 0x07:
                        if form == 0x0F:  # DW_FORM_udata
                            p = read_uleb(b, n, p, &v)
                            if p < 0:
                                rc = 0
                                break
                        else:  # data1, data2, data4, data8
                            size = 1 if form == 0x0B else 2 if form == 0x05 else 4 if form == 0x06 else 8
                            if p + size > n:
                                rc = 0
                                break
                            v = read_le(b, p, size)
                            p += size
                        if ct == 1:
                            rc = 0  # a number as the path: file_names declines
                            break
                        if ct == 2:
                            idx = <Py_ssize_t> v if v < (<uint64_t> 1) << 62 else -1
                    elif form == 0x1E:  # DW_FORM_data16 (clang's MD5)
                        if p + 16 > n or ct == 1 or ct == 2:
                            rc = 0
                            break
                        p += 16
                    else:  # a block, or a form file_names does not take
                        rc = 0
                        break
                if rc != 1:
                    break
                # entries: (path start, path end, which string section, index or -1)
                ipush(&ents, ps)
                ipush(&ents, pe)
                ipush(&ents, 0 if src == b else 1 if src == sb else 2)
                ipush(&ents, idx)
            if rc != 1 or k == 1:
                break
            # the directories: the first as it is, the others taken from it. The first is read
            # from its section, never from ``dirs``, which moves as it grows (a copy from there
            # once read freed memory: paths with garbage for their first bytes, in tables of over
            # 4 KiB of directories).
            for j in range(ents.n // 4):
                src = b if ents.p[4 * j + 2] == 0 else sb if ents.p[4 * j + 2] == 1 else lb
                if j == 0:
                    first, nfirst = src + ents.p[0], ents.p[1] - ents.p[0]
                    ipush(&ds, dirs.n)
                    raw(&dirs, first, nfirst)
                    ipush(&de, dirs.n)
                else:
                    _join(&dirs, &ds, &de, first, nfirst, True, src + ents.p[4 * j], ents.p[4 * j + 1] - ents.p[4 * j])
            ents.n = 0
        if rc == 1:
            for j in range(ents.n // 4):
                src = b if ents.p[4 * j + 2] == 0 else sb if ents.p[4 * j + 2] == 1 else lb
                i = ents.p[4 * j + 3]
                if 0 <= i < ds.n:
                    _join(out, starts, ends, dirs.p + ds.p[i] if dirs.p != NULL else NULL, de.p[i] - ds.p[i], True,
                          src + ents.p[4 * j], ents.p[4 * j + 1] - ents.p[4 * j])
                else:
                    _join(out, starts, ends, NULL, 0, False, src + ents.p[4 * j], ents.p[4 * j + 1] - ents.p[4 * j])
    if rc == 1 and (dirs.err or ds.err or de.err or fmts.err or ents.err or out.err or starts.err
                    or ends.err):
        rc = 2
    free(dirs.p)
    free(ds.p)
    free(de.p)
    free(fmts.p)
    free(ents.p)
    return rc
