# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled hash phase of one unit: roots, tokens, hashes, cycles and name keys, in C.

``analyze_many`` is the whole of ``hash.analyze_unit`` after decoding, for each unit of a batch,
in one call that holds the GIL only to set up the units' arrays: finding the mergeable roots, tokenising each root's
subtree (the same information as ``tokens.py``, the reference, written as typed self-delimiting
byte tokens instead of tuples), hashing with a 128-bit MurmurHash3 (x64, written from its published
description), Tarjan's SCCs with the canonical numbering of ``hash._finish_scc``, and the name keys
of ``hash._name_key``. Two roots get equal hashes exactly when the pure path gives them equal
hashes (the values differ, the merge decisions and output bytes do not). On anything unusual (a
reference to a non-DIE, a string past its section, an expression naming a non-DIE) it returns
None and the caller runs the pure path, which raises the exact error.

Tokens (every integer LEB128, ``sleb`` where it may be negative):
  H tag children sleb(parent)   a DIE's head                k at v           a constant
  F at form sleb(v)             a form-typed value          B at form n data  bytes of a form
  s at n data                   a string                    f at n path       a file (by path)
  U at unit v                   a unit-only value           G at v            another unit's DIE
  L at sleb(rel)                a DIE of the same root      l at              a true flag
  R u32(root) at rel            a DIE of another root: replaced when digesting by T + its hash,
                                or C for a member of the same cycle
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t, uint8_t
from libc.string cimport memchr, memcpy, memcmp, memset
from libc.stdlib cimport calloc, malloc, realloc, free, qsort

from linkplugin.dwarf._leb cimport read_le, read_sleb64, read_spec, read_uleb, read_uleb64
from linkplugin.dwarf._buf cimport IV, Buf, grow, ipush, put, raw, uleb
from linkplugin.dwarf._lines cimport line_files
from linkplugin.dwarf._columns cimport byte_column, find_offset, int64_column, int64_table
from linkplugin.dwarf._forms cimport TPL_SLOTS, form_slot
from cpython.bytes cimport PyBytes_FromStringAndSize

from cpython.array cimport array, clone, resize

cdef array _INT64 = array("q")
cdef array _UINT32 = array("I")
cdef array _UINT8 = array("B")
DEF RC_TABLES = 7  # a job's run: the kernel does not take the unit's abbreviation table (make_tables)

# ``analyze_many`` does its per-unit bulk under ``with nogil:`` (merge/__init__.py may then run units on threads).
NOGIL = True

# Op kinds of a tokenizer program (kept equal to tokens.TOP_*); 6 int64s per op:
# (op, attribute, form, size, class, implicit constant)
DEF T_END = 0
DEF T_SKIP = 1      # size bytes, no token (DW_AT_sibling)
DEF T_FIXED = 2     # a fixed-size value, classified
DEF T_RAW = 3       # a fixed-size value tokenised as its bytes
DEF T_STRING = 4
DEF T_SDATA = 5     # classified, signed
DEF T_ULEB = 6      # classified (class C_SKIP: DW_AT_sibling)
DEF T_BLOCK = 7     # size: length size (1, 2, 4; 0 = ULEB)
DEF T_IMPLICIT = 8  # class C_FILE or a constant
DEF T_FLAGP = 9

# Classes of a value (tokens._classify)
DEF C_SKIP = 0
DEF C_UREF = 1
DEF C_REFADDR = 2
DEF C_STRP = 3
DEF C_STRX = 4
DEF C_LINESTRP = 5
DEF C_FILE = 6
DEF C_UINDEX = 7
DEF C_DATA = 8      # a constant when below 2**(8 * size - 1)
DEF C_UDATA = 9
DEF C_SDATA = 10
DEF C_FLAG = 11
DEF C_OTHER = 12

# Forms naming a supplementary file's strings and DIEs (dwz -m: .gnu_debugaltlink; dwz -m -5:
# .debug_sup), tokenised as C_OTHER ('F' tokens)
DEF FORM_REF_ALT = 0x1F20
DEF FORM_STRP_ALT = 0x1F21
DEF FORM_REF_SUP4 = 0x1C
DEF FORM_STRP_SUP = 0x1D
DEF FORM_REF_SUP8 = 0x24

# Flags of an abbreviation code (fasthash.CODE_*)
DEF F_TYPE = 1        # a type tag: a root at unit or namespace level
DEF F_DECL = 2        # a subprogram or variable with DW_AT_declaration
DEF F_DECL_PRESENT = 4  # ... in DW_FORM_flag_present (always true)
DEF F_NAMESPACE = 8
DEF F_PIN = 32        # gdb lists it under each unit (expansion.listed_per_unit)

# Expansion flags of an abbreviation code (expansion.py's per-code facts; fasthash.X_*)
DEF X_SCOPE = 1       # a tag whose children gdb's indexer reads (expansion._SCOPES)
DEF X_CLASS = 2       # expansion._CLASSES
DEF X_HAS_NAME = 4
DEF X_DECLARED = 8    # DW_AT_declaration in DW_FORM_flag_present
DEF X_SUBPROGRAM = 16
DEF X_VARIABLE = 32
DEF X_TYPE = 64       # a tag gdb lists with `info types` (expansion._TYPES)

# expansion.MAIN, FUNCTION, VARIABLE, TYPE, NEVER
DEF P_MAIN = 0
DEF P_FUNCTION = 1
DEF P_VARIABLE = 2
DEF P_TYPE = 3
DEF P_NEVER = 4

DEF AT_NAME = 0x03
DEF AT_DECL_FILE = 0x3A
DEF AT_DECLARATION = 0x3C


# --- growable buffers that need no GIL: dwarf/_buf.pxd's Buf (bytes) and IV (int64s) ---------

cdef void sleb(Buf *b, int64_t v) noexcept nogil:
    cdef uint8_t byte
    if grow(b, 10):
        return
    while True:
        byte = v & 0x7F
        v >>= 7
        if (v == 0 and not (byte & 0x40)) or (v == -1 and (byte & 0x40)):
            b.p[b.n] = byte
            b.n += 1
            return
        b.p[b.n] = byte | 0x80
        b.n += 1


cdef inline void known(Buf *b, uint64_t at, uint64_t v) noexcept nogil:
    """Token 'k': attribute ``at`` with a constant ``v`` whatever its form."""
    put(b, b'k')
    uleb(b, at)
    uleb(b, v)


cdef inline void by_form(Buf *b, uint64_t at, uint64_t form) noexcept nogil:
    """Token 'F': attribute ``at`` in ``form``; the caller writes the value."""
    put(b, b'F')
    uleb(b, at)
    uleb(b, form)


cdef inline void unit_only(Buf *b, uint64_t at, uint64_t u, uint64_t v) noexcept nogil:
    """Token 'U': a value that only means something in unit ``u``."""
    put(b, b'U')
    uleb(b, at)
    uleb(b, u)
    uleb(b, v)


# --- MurmurHash3 x64 128 ----------------------------------------------------------------------

cdef inline uint64_t rotl(uint64_t x, int r) noexcept nogil:
    return (x << r) | (x >> (64 - r))


cdef inline uint64_t fmix(uint64_t k) noexcept nogil:
    k ^= k >> 33
    k *= 0xff51afd7ed558ccdULL
    k ^= k >> 33
    k *= 0xc4ceb9fe1a85ec53ULL
    k ^= k >> 33
    return k


cdef void mm3(const uint8_t *data, Py_ssize_t n, uint8_t *out) noexcept nogil:
    """The 128-bit MurmurHash3 (x64 variant, seed 0) of ``data[:n]`` into ``out[:16]``."""
    cdef uint64_t h1 = 0, h2 = 0, k1, k2
    cdef uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL
    cdef Py_ssize_t nblocks = n // 16, i
    cdef const uint8_t *tail
    cdef int rem
    for i in range(nblocks):
        memcpy(&k1, data + 16 * i, 8)
        memcpy(&k2, data + 16 * i + 8, 8)
        k1 *= c1
        k1 = rotl(k1, 31)
        k1 *= c2
        h1 ^= k1
        h1 = rotl(h1, 27)
        h1 += h2
        h1 = h1 * 5 + 0x52dce729
        k2 *= c2
        k2 = rotl(k2, 33)
        k2 *= c1
        h2 ^= k2
        h2 = rotl(h2, 31)
        h2 += h1
        h2 = h2 * 5 + 0x38495ab5
    tail = data + nblocks * 16
    rem = <int> (n & 15)
    k1 = 0
    k2 = 0
    i = rem - 1
    while i >= 8:
        k2 ^= (<uint64_t> tail[i]) << ((i - 8) * 8)
        i -= 1
    if rem > 8:
        k2 *= c2
        k2 = rotl(k2, 33)
        k2 *= c1
        h2 ^= k2
    while i >= 0:
        k1 ^= (<uint64_t> tail[i]) << (i * 8)
        i -= 1
    if rem > 0:
        k1 *= c1
        k1 = rotl(k1, 31)
        k1 *= c2
        h1 ^= k1
    h1 ^= <uint64_t> n
    h2 ^= <uint64_t> n
    h1 += h2
    h2 += h1
    h1 = fmix(h1)
    h2 = fmix(h2)
    h1 += h2
    h2 += h1
    memcpy(out, &h1, 8)
    memcpy(out + 8, &h2, 8)


# --- the unit and its tokenizer ---------------------------------------------------------------

cdef struct Unit:
    const uint8_t *d
    Py_ssize_t nd
    int64_t u
    int64_t uend
    const int64_t *offs
    Py_ssize_t n
    const int64_t *codes
    const int64_t *parent
    const int64_t *prog
    Py_ssize_t nprog
    const int64_t *start
    const uint8_t *heads
    const int64_t *head_off
    const uint8_t *strs
    Py_ssize_t nstrs
    const uint8_t *stroff
    Py_ssize_t nstroff
    int64_t so_base
    int osize
    const uint8_t *lstrs
    Py_ssize_t nlstrs
    const uint8_t *files
    const int64_t *file_start
    const int64_t *file_end
    Py_ssize_t nfiles
    int64_t *root_of    # NULL while finding roots: references are then not resolved
    int64_t *roots


cdef Py_ssize_t find_die(const int64_t *offs, Py_ssize_t n, int64_t value) noexcept nogil:
    """Index of the first DIE at or after offset ``value`` (n if none)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if offs[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int cstring(Buf *b, int64_t at, const uint8_t *sec, Py_ssize_t n, uint64_t off) noexcept nogil:
    """An 's' token of the NUL-terminated string at ``off``; 1 if it is not there."""
    cdef const uint8_t *e
    if n == 0 or off >= <uint64_t> n:
        return 1
    e = <const uint8_t *> memchr(sec + off, 0, n - off)
    if e == NULL:
        return 1
    put(b, b's')
    uleb(b, at)
    uleb(b, e - (sec + off))
    raw(b, sec + off, e - (sec + off))
    return 0


cdef inline int xslot(int64_t at) noexcept nogil:
    """The slot of an attribute expansion_key reads (-1: not one of them)."""
    if at == AT_NAME:
        return 0
    if at == 0x6E:  # DW_AT_linkage_name
        return 1
    if at == 0x2007:  # DW_AT_MIPS_linkage_name
        return 2
    if at == 0x47:  # DW_AT_specification
        return 3
    if at == 0x31:  # DW_AT_abstract_origin
        return 4
    if at == AT_DECLARATION:
        return 5
    if at == 0x3F:  # DW_AT_external
        return 6
    return -1


cdef int tok_die(Unit *U, Buf *b, Py_ssize_t j, Py_ssize_t r, Py_ssize_t k, int64_t *span, IV *rpos,
                 uint64_t *decl, int *decl_seen, int64_t *xspan=NULL) noexcept nogil:
    """Append the tokens of DIE ``j`` of root ``k`` (first DIE ``r``) to ``b``; 0, or 1 to decline.

    ``span`` (if not NULL) receives (start, end) of the last DW_AT_name and DW_AT_decl_file
    tokens; ``xspan`` (if not NULL) those of the attributes of ``xslot``; ``rpos`` the position of
    every 'R' token; ``decl`` the value of DW_AT_declaration."""
    cdef const uint8_t *d = U.d
    cdef Py_ssize_t nd = U.nd, p, pc, t, q
    cdef int64_t op, at, form, size, cls, ic, code = U.codes[j], s, sv, prev_at = 0, slot
    cdef uint64_t v
    cdef int64_t signed_v
    cdef Py_ssize_t prev_start
    raw(b, U.heads + U.head_off[code], U.head_off[code + 1] - U.head_off[code])
    sleb(b, U.parent[j] - r if j > r else -1)
    prev_start = b.n
    p = U.offs[j]
    while p < nd and d[p] & 0x80:  # the abbreviation code
        p += 1
    p += 1
    pc = U.start[code]
    while True:
        if pc + 6 > U.nprog:
            return 1
        op = U.prog[pc]
        at = U.prog[pc + 1]
        form = U.prog[pc + 2]
        size = U.prog[pc + 3]
        cls = U.prog[pc + 4]
        ic = U.prog[pc + 5]
        pc += 6
        if span != NULL and b.n > prev_start and (prev_at == AT_NAME or prev_at == AT_DECL_FILE):
            slot = 0 if prev_at == AT_NAME else 2
            span[slot] = prev_start
            span[slot + 1] = b.n
        if xspan != NULL and b.n > prev_start:
            slot = xslot(prev_at)
            if slot >= 0:
                xspan[2 * slot] = prev_start
                xspan[2 * slot + 1] = b.n
        prev_at = at
        prev_start = b.n
        if op == T_END:
            return 0
        if op == T_SKIP:
            p += size
            continue
        if op == T_FLAGP:
            put(b, b'l')
            uleb(b, at)
            if at == AT_DECLARATION and decl != NULL:
                decl[0] = 1
                decl_seen[0] = 1
            continue
        if op == T_IMPLICIT:
            if at == AT_DECLARATION and decl != NULL:
                decl[0] = <uint64_t> ic
                decl_seen[0] = 1
            if cls == C_FILE:
                if ic < 0:
                    return 1  # the pure path indexes its file list from the end
                v = <uint64_t> ic
            elif ic >= 0:
                known(b, at, <uint64_t> ic)
                continue
            else:
                by_form(b, at, form)
                sleb(b, ic)
                continue
        elif op == T_FIXED or op == T_RAW:
            if p + size > nd:
                return 1
            if op == T_RAW:
                if at == AT_DECLARATION and decl != NULL:
                    return 1
                put(b, b'B')
                uleb(b, at)
                uleb(b, form)
                uleb(b, size)
                raw(b, d + p, size)
                p += size
                continue
            v = read_le(d, p, <int> size)
            p += size
        elif op == T_STRING:
            if at == AT_DECLARATION and decl != NULL:
                return 1
            q = p
            while q < nd and d[q]:
                q += 1
            if q >= nd:
                return 1
            put(b, b's')
            uleb(b, at)
            uleb(b, q - p)
            raw(b, d + p, q - p)
            p = q + 1
            continue
        elif op == T_BLOCK:
            if at == AT_DECLARATION and decl != NULL:
                return 1
            if size == 0:
                p = read_uleb(d, nd, p, &v)
                if p < 0:
                    return 1
            else:
                if p + size > nd:
                    return 1
                v = read_le(d, p, <int> size)
                p += size
            if v > <uint64_t> (nd - p):
                return 1
            put(b, b'B')
            uleb(b, at)
            uleb(b, form)
            uleb(b, v)
            raw(b, d + p, v)
            p += v
            continue
        elif op == T_SDATA or op == T_ULEB:
            if op == T_SDATA:
                p = read_sleb64(d, nd, p, &signed_v)
                v = <uint64_t> signed_v
            else:
                p = read_uleb64(d, nd, p, &v)
            if p < 0:
                return 1
            if cls == C_SKIP:
                continue
        else:
            return 1
        if at == AT_DECLARATION and decl != NULL:
            decl[0] = v
            decl_seen[0] = 1
        # classify the value v (tokens._classify)
        if cls == C_UREF or cls == C_REFADDR:
            sv = <int64_t> v + (U.u if cls == C_UREF else 0)
            if U.root_of == NULL:
                put(b, b'G')  # finding roots: only the declaration flag matters
                uleb(b, at)
                uleb(b, <uint64_t> sv)
                continue
            t = find_die(U.offs, U.n, sv)
            if t >= U.n or U.offs[t] != sv:
                if U.u <= sv < U.uend:
                    return 1  # not a DIE: the pure path raises
                put(b, b'G')
                uleb(b, at)
                uleb(b, <uint64_t> sv)
                continue
            s = U.root_of[t]
            if s == k:
                put(b, b'L')
                uleb(b, at)
                sleb(b, t - r)
            elif s >= 0:
                ipush(rpos, b.n)
                put(b, b'R')
                if grow(b, 4) == 0:
                    b.p[b.n] = s & 0xFF
                    b.p[b.n + 1] = (s >> 8) & 0xFF
                    b.p[b.n + 2] = (s >> 16) & 0xFF
                    b.p[b.n + 3] = (s >> 24) & 0xFF
                    b.n += 4
                uleb(b, at)
                uleb(b, t - U.roots[s])
            else:
                unit_only(b, at, U.u, <uint64_t> sv)
        elif cls == C_STRP:
            if cstring(b, at, U.strs, U.nstrs, v):
                return 1
        elif cls == C_LINESTRP:
            if cstring(b, at, U.lstrs, U.nlstrs, v):
                return 1
        elif cls == C_STRX:
            if v > (<uint64_t> 1) << 40:
                return 1
            q = U.so_base + v * U.osize
            if q < 0 or q + U.osize > U.nstroff:
                return 1
            if cstring(b, at, U.strs, U.nstrs, read_le(U.stroff, q, U.osize)):
                return 1
        elif cls == C_FILE:
            if v < <uint64_t> U.nfiles and U.file_start[v] >= 0:
                put(b, b'f')
                uleb(b, at)
                uleb(b, U.file_end[v] - U.file_start[v])
                raw(b, U.files + U.file_start[v], U.file_end[v] - U.file_start[v])
            else:  # as the pure path: an unknown file is a unit-only value
                unit_only(b, at, U.u, v)
        elif cls == C_UINDEX:
            unit_only(b, at, U.u, v)
        elif cls == C_DATA:
            if v < (<uint64_t> 1) << (size * 8 - 1):
                known(b, at, v)
            else:
                by_form(b, at, form)
                uleb(b, v)
        elif cls == C_UDATA:
            known(b, at, v)
        elif cls == C_SDATA:
            sv = <int64_t> v
            if sv >= 0:
                known(b, at, v)
            else:
                by_form(b, at, form)
                sleb(b, sv)
        elif cls == C_FLAG:
            if v == 1:
                put(b, b'l')
                uleb(b, at)
            else:
                by_form(b, at, form)
                uleb(b, v)
        else:
            by_form(b, at, form)
            uleb(b, v)



# --- the whole unit ---------------------------------------------------------------------------

cdef struct Names:
    Buf best      # the smallest lower-cased name so far
    Py_ssize_t count
    int first_is_main
    int have_first


cdef struct Work:
    Unit U
    const int64_t *ends
    const uint8_t *cflags
    const uint8_t *xflags
    Py_ssize_t ncodes
    const uint8_t *ctx
    Py_ssize_t nctx
    const int64_t *named
    Py_ssize_t nnamed
    const int64_t *xdies
    Py_ssize_t nx
    # per DIE (n entries), from the caller
    int64_t *roots
    int64_t *rends
    int64_t *root_of
    uint8_t *nsok
    uint8_t *nsh        # 16 bytes per DIE: the namespace hash of a namespace DIE
    # per root (at most n entries), from the caller
    uint8_t *pinned
    uint8_t *uniq
    uint8_t *hashes     # 16 bytes per root
    uint8_t *names      # 16 bytes per root
    uint8_t *has_name
    Py_ssize_t nroots
    # per type nested directly in a named class root (at most n entries), from the caller
    int64_t *nested_root
    uint8_t *nested_names  # 16 bytes each
    Py_ssize_t nnested
    int64_t phase       # expansion_key's phase (-1: the caller computes it)
    Names names_x       # ... and its name in names_x.best
    int rc              # run's result (analyze_many)
    # A job whose tables the kernel makes itself (``make_tables``, without the GIL): the
    # abbreviation table and the templates of ``tables``, and the tables it made (freed by _Job)
    int make
    const uint8_t *ab
    Py_ssize_t nab, ab_off
    const int64_t *tpl
    const uint8_t *tagf
    const uint8_t *xtagf
    int64_t *own_prog
    int64_t *own_start
    int64_t *own_head_off
    uint8_t *own_heads
    uint8_t *own_flags
    uint8_t *own_xflags
    # A job whose file names the kernel reads itself (``line_files``): the line table and the
    # unit's compilation directory, and the paths it made (freed by _Job)
    int lines
    const uint8_t *line
    Py_ssize_t nline, line_off
    const uint8_t *comp
    Py_ssize_t ncomp
    Buf own_files
    IV own_fstart, own_fend
    int made            # 1: the job made its tables, 2: its file names (analyze_many)


# --- where gdb expands the unit (expansion.expansion_key) ----------------------------------------

cdef inline Py_ssize_t tok_uleb(const uint8_t *t, Py_ssize_t q, uint64_t *v) noexcept nogil:
    cdef uint64_t x = 0
    cdef int shift = 0
    while True:
        x |= (<uint64_t> (t[q] & 0x7F)) << shift
        q += 1
        if not t[q - 1] & 0x80:
            v[0] = x
            return q
        shift += 7


cdef int tok_string(const uint8_t *t, int64_t s, const uint8_t **p, Py_ssize_t *n) noexcept nogil:
    """The bytes of the 's' token at ``s`` (1: not a string token)."""
    cdef uint64_t v
    cdef Py_ssize_t q
    if t[s] != b's':
        return 1
    q = tok_uleb(t, s + 1, &v)
    q = tok_uleb(t, q, &v)
    p[0] = t + q
    n[0] = <Py_ssize_t> v
    return 0


cdef int tok_sup(const uint8_t *t, int64_t s, int strings, uint64_t *v) noexcept nogil:
    """Whether the token at ``s`` is the 'F' token of a string (``strings``) or a DIE reference
    of a supplementary file (dwz -m: DW_FORM_GNU_strp_alt / ref_alt, or with -5 DWARF 5's
    DW_FORM_strp_sup / ref_sup4 / ref_sup8), and its value."""
    cdef uint64_t form
    cdef Py_ssize_t q
    if t[s] != b'F':
        return 0
    q = tok_uleb(t, tok_uleb(t, s + 1, &form), &form)  # the attribute, then the form
    if not ((form == FORM_STRP_ALT or form == FORM_STRP_SUP) if strings else
            (form == FORM_REF_ALT or form == FORM_REF_SUP4 or form == FORM_REF_SUP8)):
        return 0
    tok_uleb(t, q, v)
    return 1


cdef int tok_true(const uint8_t *t, int64_t s, int64_t e, int *out) noexcept nogil:
    """Whether the constant token at ``s:e`` is non-zero (1: not a constant token)."""
    cdef uint64_t v
    cdef Py_ssize_t q
    if t[s] == b'l':
        out[0] = 1
    elif t[s] == b'k':
        q = tok_uleb(t, s + 1, &v)
        tok_uleb(t, q, &v)
        out[0] = v != 0
    elif t[s] == b'F':
        q = tok_uleb(t, s + 1, &v)
        q = tok_uleb(t, q, &v)
        out[0] = not (e - q == 1 and t[q] == 0)  # ULEB or SLEB: zero is one 0 byte
    else:
        return 1
    return 0


cdef void consider(Names *N, const uint8_t *p, Py_ssize_t n) noexcept nogil:
    """Take ``p[:n]`` into the names: bytes.lower() then min()."""
    cdef Py_ssize_t i, m
    cdef uint8_t c, d
    cdef int less = 0
    if not N.have_first:
        N.have_first = 1
        N.first_is_main = n == 4 and memcmp(p, <const uint8_t *> b"main", 4) == 0
    if N.count:
        m = n if n < N.best.n else N.best.n
        for i in range(m):
            c = p[i] + 32 if 65 <= p[i] <= 90 else p[i]
            d = N.best.p[i]
            if c != d:
                less = c < d
                break
        else:
            less = n < N.best.n
        if not less:
            N.count += 1
            return
    N.count += 1
    N.best.n = 0
    if grow(&N.best, n + 1) == 0:
        for i in range(n):
            N.best.p[i] = p[i] + 32 if 65 <= p[i] <= 90 else p[i]
        N.best.n = n


cdef int tokenize_x(Unit *U, Buf *scratch, Py_ssize_t j, int64_t *xs) noexcept nogil:
    cdef int i
    for i in range(14):
        xs[i] = -1
    scratch.n = 0
    return tok_die(U, scratch, j, j, -1, NULL, NULL, NULL, NULL, xs)


cdef int chain_names(Unit *U, Buf *scratch, Py_ssize_t j, Names *N) noexcept nogil:
    """expansion_key's ``names(j)``: the DIE's name and linkage names, and those of its
    specification or origin (four deep) where it has fewer than two."""
    cdef int64_t xs[14]
    cdef int depth = 0, slot, cnt
    cdef const uint8_t *p
    cdef Py_ssize_t n, t
    cdef uint64_t v
    while True:
        if tokenize_x(U, scratch, j, xs):
            return 1
        cnt = 0
        for slot in range(3):
            if xs[2 * slot] >= 0:
                if tok_sup(scratch.p, xs[2 * slot], 1, &v):
                    continue  # not read (expansion.py leaves it out)
                if tok_string(scratch.p, xs[2 * slot], &p, &n):
                    return 1  # a name that is not a string: the pure path raises
                consider(N, p, n)
                cnt += 1
        if cnt >= 2 or depth >= 4:
            return 0
        slot = 3 if xs[6] >= 0 else 4 if xs[8] >= 0 else -1
        if slot < 0:
            return 0
        if tok_sup(scratch.p, xs[2 * slot], 0, &v):
            return 0  # a DIE of the supplementary file: not followed (expansion.py)
        if scratch.p[xs[2 * slot]] != b'G':
            return 1
        t = tok_uleb(scratch.p, xs[2 * slot] + 1, &v)
        tok_uleb(scratch.p, t, &v)
        t = find_die(U.offs, U.n, <int64_t> v)
        if t >= U.n or U.offs[t] != <int64_t> v:
            return 0
        j = t
        depth += 1


cdef int expansion(Work *W, Buf *scratch, Names *N, int64_t *phase) noexcept nogil:
    """expansion.expansion_key: ``phase`` and, in N.best, the lower-cased first name."""
    cdef Unit *U = &W.U
    cdef Py_ssize_t n = U.n, j
    cdef int64_t p
    cdef int64_t xs[14]
    cdef uint8_t f
    cdef int decl, ext, rc = 0, pass_
    cdef const uint8_t *s
    cdef Py_ssize_t sn
    cdef uint64_t sup
    cdef uint8_t *scope = <uint8_t *> malloc(n + 1)
    if scope == NULL:
        return 2
    scope[0] = 1
    for j in range(1, n):
        f = W.xflags[U.codes[j]]
        scope[j] = 0
        if (f & X_SCOPE) and scope[U.parent[j]]:
            scope[j] = 1 if not (f & X_CLASS) or (f & X_HAS_NAME) else 0
    for pass_ in range(3):
        for j in range(1, n):
            f = W.xflags[U.codes[j]]
            if not scope[U.parent[j]]:
                continue  # not listed
            if pass_ == 0 and not ((f & X_SUBPROGRAM) and not (f & X_DECLARED)):
                continue
            if pass_ == 1 and not (f & X_VARIABLE):
                continue
            if pass_ == 2 and not ((f & X_TYPE) and not (f & X_DECLARED)):
                continue
            if tokenize_x(U, scratch, j, xs):
                rc = 1
                break
            decl = 0
            if xs[10] >= 0 and tok_true(scratch.p, xs[10], xs[11], &decl):
                rc = 1
                break
            if pass_ == 1 and decl:
                ext = 0
                if xs[12] >= 0 and tok_true(scratch.p, xs[12], xs[13], &ext):
                    rc = 1
                    break
                if not ext:
                    continue
            elif decl:
                continue
            if pass_ == 2:
                if xs[0] >= 0 and not tok_sup(scratch.p, xs[0], 1, &sup):
                    if tok_string(scratch.p, xs[0], &s, &sn):
                        rc = 1
                        break
                    consider(N, s, sn)
                continue
            N.have_first = 0
            if chain_names(U, scratch, j, N):
                rc = 1
                break
            if pass_ == 0 and U.parent[j] == 0 and N.have_first and N.first_is_main:
                phase[0] = P_MAIN
                N.best.n = 0
                free(scope)
                return 0
        if rc:
            break
        if N.count:
            phase[0] = P_FUNCTION if pass_ == 0 else P_VARIABLE if pass_ == 1 else P_TYPE
            free(scope)
            return 0
    free(scope)
    if rc:
        return rc
    phase[0] = P_NEVER
    N.best.n = 0
    return 0


cdef int cmp_i64(const void *a, const void *b) noexcept nogil:
    cdef int64_t x = (<const int64_t *> a)[0], y = (<const int64_t *> b)[0]
    return (x > y) - (x < y)


cdef uint8_t EMPTY_NS[16]
memset(EMPTY_NS, 0, 16)


cdef inline const uint8_t *ns_of(Work *W, Py_ssize_t j) noexcept nogil:
    """The hash of the namespaces around DIE ``j`` (zeros at unit level)."""
    cdef int64_t p = W.U.parent[j]
    return W.nsh + 16 * p if p > 0 else EMPTY_NS


cdef int find_roots(Work *W, Buf *scratch) noexcept nogil:
    cdef Unit *U = &W.U
    cdef Py_ssize_t n = U.n, j, k, e, nr = 0
    cdef int64_t code, p
    cdef uint8_t f
    cdef uint64_t decl
    cdef int seen
    for j in range(n):
        code = U.codes[j]
        if code < 0 or code >= W.ncodes or U.start[code] < 0:
            return 1
        if j and not (0 <= U.parent[j] < j):
            return 1
    W.nsok[0] = 1
    for j in range(1, n):
        p = U.parent[j]
        f = W.cflags[U.codes[j]]
        W.nsok[j] = 1 if (f & F_NAMESPACE) and W.nsok[p] else 0
        W.root_of[j] = -1
        if not W.nsok[p]:
            continue
        if not (f & F_TYPE):
            if not (f & F_DECL):
                continue
            if not (f & F_DECL_PRESENT):
                scratch.n = 0
                decl = 0
                seen = 0
                if tok_die(U, scratch, j, j, -1, NULL, NULL, &decl, &seen) or not seen:
                    return 1
                if decl == 0:
                    continue
        W.roots[nr] = j
        e = find_die(U.offs, n, W.ends[j])
        if e <= j:
            return 1
        W.rends[nr] = e
        nr += 1
    W.root_of[0] = -1
    for k in range(nr):
        for j in range(W.roots[k], W.rends[k]):
            W.root_of[j] = k
    W.nroots = nr
    return 0


cdef int namespaces(Work *W, Buf *scratch) noexcept nogil:
    """The hash of every namespace's chain of names (hash._namespaces)."""
    cdef Unit *U = &W.U
    cdef Py_ssize_t j, q, nlen
    cdef int64_t span[4]
    cdef uint64_t x
    cdef int shift
    cdef Buf buf
    buf.p = NULL
    buf.n = buf.cap = buf.err = 0
    for j in range(1, U.n):
        if not W.nsok[j]:
            continue
        scratch.n = 0
        span[0] = -1
        if tok_die(U, scratch, j, j, -1, span, NULL, NULL, NULL):
            free(buf.p)
            return 1
        buf.n = 0
        raw(&buf, ns_of(W, j), 16)
        if span[0] < 0:
            raw(&buf, <const uint8_t *> b"(anonymous)", 11)
        else:
            q = span[0]
            if tok_sup(scratch.p, q, 1, &x):
                # hash.sup_string: a NUL, then the offset in the supplementary file
                put(&buf, 0)
                for shift in range(8):
                    put(&buf, (x >> (8 * shift)) & 0xFF)
                if buf.err:
                    free(buf.p)
                    return 2
                mm3(buf.p, buf.n, W.nsh + 16 * j)
                continue
            if scratch.p[q] != b's':
                free(buf.p)
                return 1  # a name that is not a string: the pure path raises
            q += 1
            while scratch.p[q] & 0x80:  # attribute
                q += 1
            q += 1
            nlen = 0
            shift = 0
            while True:
                x = scratch.p[q]
                nlen |= <Py_ssize_t> ((x & 0x7F) << shift)
                q += 1
                shift += 7
                if not x & 0x80:
                    break
            raw(&buf, scratch.p + q, nlen)
        if buf.err:
            free(buf.p)
            return 2
        mm3(buf.p, buf.n, W.nsh + 16 * j)
    free(buf.p)
    return 0


cdef int digest_local(Work *W, Buf *stream, const int64_t *rstart, const int64_t *ro, const int64_t *rpv,
                      const uint8_t *mb, const uint8_t *hashes, Py_ssize_t k, Buf *buf, uint8_t *out) noexcept nogil:
    """Root ``k``'s digest: its prefix and tokens, each 'R' + root replaced by 'T' + that root's
    hash, or 'C' for a member of the cycle being digested (``mb``)."""
    cdef Py_ssize_t s, pos, j, w
    cdef const uint8_t *sp = stream.p
    buf.n = 0
    put(buf, b'P')
    raw(buf, W.ctx, W.nctx)
    raw(buf, ns_of(W, W.roots[k]), 16)
    if W.uniq[k]:
        put(buf, b'U')
        uleb(buf, W.U.u)
    else:
        put(buf, b'N')
    s = rstart[k]
    for j in range(ro[k], ro[k + 1]):
        pos = rpv[j]
        raw(buf, sp + s, pos - s)
        w = sp[pos + 1] | (sp[pos + 2] << 8) | (sp[pos + 3] << 16) | (<Py_ssize_t> sp[pos + 4] << 24)
        if mb[w]:
            put(buf, b'C')
        else:
            put(buf, b'T')
            raw(buf, hashes + 16 * w, 16)
        s = pos + 5
    raw(buf, sp + s, rstart[k + 1] - s)
    if buf.err:
        return 2
    mm3(buf.p, buf.n, out)
    return 0


cdef inline Py_ssize_t edge_target(const uint8_t *sp, int64_t pos) noexcept nogil:
    return sp[pos + 1] | (sp[pos + 2] << 8) | (sp[pos + 3] << 16) | (<Py_ssize_t> sp[pos + 4] << 24)


cdef int serial(Work *W, const uint8_t *sp, const int64_t *ro, const int64_t *rpv, const uint8_t *mb,
                const uint8_t *local, Py_ssize_t entry, int64_t *num, int64_t *order, int64_t *stk_k,
                int64_t *stk_p, Py_ssize_t m, Buf *buf, uint8_t *out) noexcept nogil:
    """hash._finish_scc's ``serial``: number the cycle's members in pre-order from ``entry``
    following references in content order, and digest (local hash, member numbers referenced)
    of each in that order. ``num`` must be -1 for every member; the caller resets it."""
    cdef Py_ssize_t no = 1, depth = 1, k, pos, e, j, i, cnt
    num[entry] = 0
    order[0] = entry
    stk_k[0] = entry
    stk_p[0] = ro[entry]
    while depth:
        k = stk_k[depth - 1]
        pos = stk_p[depth - 1]
        # the next reference of k to a member
        while pos < ro[k + 1] and not mb[edge_target(sp, rpv[pos])]:
            pos += 1
        if pos >= ro[k + 1]:
            depth -= 1
            continue
        stk_p[depth - 1] = pos + 1
        e = edge_target(sp, rpv[pos])
        if num[e] < 0:
            if no >= m or depth >= m:
                return 1
            num[e] = no
            order[no] = e
            no += 1
            stk_k[depth] = e
            stk_p[depth] = ro[e]
            depth += 1
    buf.n = 0
    put(buf, b'S')
    for i in range(no):
        k = order[i]
        raw(buf, local + 16 * k, 16)
        cnt = 0
        for j in range(ro[k], ro[k + 1]):
            if mb[edge_target(sp, rpv[j])]:
                cnt += 1
        uleb(buf, cnt)
        for j in range(ro[k], ro[k + 1]):
            e = edge_target(sp, rpv[j])
            if mb[e]:
                uleb(buf, num[e])
    if buf.err:
        return 2
    mm3(buf.p, buf.n, out)
    return 0


# What ``run`` works in, kept from one unit of a batch to the next (``analyze_many``): each unit
# allocated and freed its buffers and hash_all's 14 arrays, about a fifth of the kernel's time in
# malloc and free on libgsl's 629 small units.
cdef struct Scratch:
    Buf scratch, stream, buf
    IV rpos, nest
    int64_t *ints     # hash_all's 11 int64 arrays
    uint8_t *bytes_   # and its 3 byte arrays (1, 1 and 16 bytes a root)
    Py_ssize_t cap    # roots + 1 they hold


cdef int scratch_arrays(Scratch *S, Py_ssize_t m) noexcept nogil:
    """hash_all's arrays for ``m`` places each: 0, or -1 out of memory."""
    cdef int64_t *ints
    cdef uint8_t *b
    if m <= S.cap:
        return 0
    ints = <int64_t *> realloc(S.ints, 11 * m * sizeof(int64_t))
    if ints == NULL:
        return -1
    S.ints = ints
    b = <uint8_t *> realloc(S.bytes_, 18 * m)
    if b == NULL:
        return -1
    S.bytes_ = b
    S.cap = m
    return 0


cdef void free_scratch(Scratch *S) noexcept nogil:
    free(S.scratch.p)
    free(S.stream.p)
    free(S.buf.p)
    free(S.rpos.p)
    free(S.nest.p)
    free(S.ints)
    free(S.bytes_)


cdef int hash_all(Work *W, Buf *stream, const int64_t *rstart, IV *rpos, Buf *buf, Scratch *S) noexcept nogil:
    """Every root's hash, referenced roots first (Tarjan's SCCs, iterative); its arrays come from
    ``S``, sized for the unit's roots."""
    cdef Py_ssize_t n = W.nroots, k, j, w, v, m, wn, root, counter = 0, sp_n = 0, msize, best_k, c
    cdef const uint8_t *sp = stream.p
    cdef int rc = 0
    cdef uint8_t low[16]
    cdef uint8_t cand[16]
    cdef uint8_t best[16]
    cdef bint have_best
    cdef int64_t *ro
    cdef int64_t *idx
    cdef int64_t *lo
    cdef int64_t *st
    cdef int64_t *wv
    cdef int64_t *wp
    cdef int64_t *num
    cdef int64_t *order
    cdef int64_t *sk
    cdef int64_t *spos
    cdef int64_t *members
    cdef uint8_t *on
    cdef uint8_t *mb
    cdef uint8_t *local
    if scratch_arrays(S, n + 1) < 0:
        rc = 2
    else:
        ro, idx, lo, st, wv, wp = S.ints, S.ints + (n + 1), S.ints + 2 * (n + 1), S.ints + 3 * (n + 1), \
            S.ints + 4 * (n + 1), S.ints + 5 * (n + 1)
        num, order, sk, spos, members = S.ints + 6 * (n + 1), S.ints + 7 * (n + 1), S.ints + 8 * (n + 1), \
            S.ints + 9 * (n + 1), S.ints + 10 * (n + 1)
        on, mb, local = S.bytes_, S.bytes_ + (n + 1), S.bytes_ + 2 * (n + 1)
        # R token positions per root (CSR over rpos, which is in stream order)
        j = 0
        for k in range(n):
            ro[k] = j
            while j < rpos.n and rpos.p[j] < rstart[k + 1]:
                j += 1
        ro[n] = j
        for k in range(n):
            idx[k] = -1
            on[k] = 0
            mb[k] = 0
            num[k] = -1
        for root in range(n):
            if rc or idx[root] >= 0:
                continue
            wv[0] = root
            wp[0] = ro[root]
            wn = 1
            idx[root] = lo[root] = counter
            counter += 1
            st[sp_n] = root
            sp_n += 1
            on[root] = 1
            while wn and not rc:
                v = wv[wn - 1]
                if wp[wn - 1] < ro[v + 1]:
                    w = edge_target(sp, rpos.p[wp[wn - 1]])
                    wp[wn - 1] += 1
                    if w < 0 or w >= n:
                        rc = 1
                    elif idx[w] < 0:
                        idx[w] = lo[w] = counter
                        counter += 1
                        st[sp_n] = w
                        sp_n += 1
                        on[w] = 1
                        wv[wn] = w
                        wp[wn] = ro[w]
                        wn += 1
                    elif on[w] and idx[w] < lo[v]:
                        lo[v] = idx[w]
                    continue
                wn -= 1
                if wn and lo[v] < lo[wv[wn - 1]]:
                    lo[wv[wn - 1]] = lo[v]
                if lo[v] != idx[v]:
                    continue
                # v closes an SCC: the stack entries down to v
                m = sp_n - 1
                while st[m] != v:
                    m -= 1
                msize = sp_n - m
                for j in range(msize):
                    members[j] = st[m + j]
                    on[members[j]] = 0
                    mb[members[j]] = 1
                sp_n = m
                if msize == 1:
                    mb[members[0]] = 0
                    rc = digest_local(W, stream, rstart, ro, rpos.p, mb, W.hashes, members[0], buf,
                                      W.hashes + 16 * members[0])
                    continue
                for j in range(msize):
                    k = members[j]
                    rc = rc or digest_local(W, stream, rstart, ro, rpos.p, mb, W.hashes, k, buf, local + 16 * k)
                # hash._finish_scc: the entry is the member of smallest serialisation among those
                # of smallest local hash (ties by root order), members numbered from it
                qsort(members, msize, sizeof(int64_t), cmp_i64)
                memcpy(low, local + 16 * members[0], 16)
                for j in range(1, msize):
                    if memcmp(local + 16 * members[j], low, 16) < 0:
                        memcpy(low, local + 16 * members[j], 16)
                have_best = False
                best_k = -1
                for j in range(msize):
                    k = members[j]
                    if rc or memcmp(local + 16 * k, low, 16) != 0:
                        continue
                    rc = serial(W, sp, ro, rpos.p, mb, local, k, num, order, sk, spos, msize, buf, cand)
                    for c in range(msize):
                        num[members[c]] = -1
                    if not have_best or memcmp(cand, best, 16) < 0:
                        memcpy(best, cand, 16)
                        best_k = k
                        have_best = True
                if not rc:
                    rc = serial(W, sp, ro, rpos.p, mb, local, best_k, num, order, sk, spos, msize, buf, cand)
                for j in range(msize):
                    k = members[j]
                    if not rc:
                        buf.n = 0
                        put(buf, b'S')
                        put(buf, b'M')
                        raw(buf, best, 16)
                        uleb(buf, <uint64_t> num[k])
                        if buf.err:
                            rc = 2
                        else:
                            mm3(buf.p, buf.n, W.hashes + 16 * k)
                for j in range(msize):
                    num[members[j]] = -1
                    mb[members[j]] = 0
    return rc


cdef int key_of(Buf *buf, const uint8_t *scope, Buf *stream, const int64_t *s, uint8_t *out) noexcept nogil:
    """The digest of (16 bytes of ``scope``, name token, file token) into ``out``; ``s``: the
    spans of the name and file tokens in ``stream`` (file start -1: none)."""
    buf.n = 0
    raw(buf, scope, 16)
    raw(buf, stream.p + s[0], s[1] - s[0])
    if s[2] >= 0:
        raw(buf, stream.p + s[2], s[3] - s[2])
    else:
        put(buf, 0)
    if buf.err:
        return 2
    mm3(buf.p, buf.n, out)
    return 0


cdef int name_keys(Work *W, Buf *stream, const int64_t *spans, Buf *buf) noexcept nogil:
    """hash._name_key of every root: the digest of (namespaces, name token, file token)."""
    cdef Py_ssize_t k
    for k in range(W.nroots):
        W.has_name[k] = spans[4 * k] >= 0
        if W.has_name[k] and key_of(buf, ns_of(W, W.roots[k]), stream, spans + 4 * k, W.names + 16 * k):
            return 2
    return 0


cdef int nested_keys(Work *W, Buf *stream, IV *nest, Buf *buf) noexcept nogil:
    """hash._name_key (with a scope) of every type nested directly in a named class root: the digest of (the
    root's name key, name token, file token); ``nest`` holds rows (root, name span, file span)."""
    cdef Py_ssize_t i, k
    W.nnested = nest.n // 5
    for i in range(W.nnested):
        k = nest.p[5 * i]
        W.nested_root[i] = k
        if key_of(buf, W.names + 16 * k, stream, nest.p + 5 * i + 1, W.nested_names + 16 * i):
            return 2
    return 0


cdef int run(Work *W, Scratch *S) noexcept nogil:
    cdef Unit *U = &W.U
    cdef Py_ssize_t k, j, t, nr, r
    cdef int64_t *rstart = NULL
    cdef int64_t *spans = NULL
    cdef int64_t *sp
    cdef int64_t nspan[4]
    cdef bint in_class
    cdef int rc = 0
    # (the buffers start empty, their memory kept from the batch's last unit)
    cdef Buf *scratch = &S.scratch
    cdef Buf *stream = &S.stream
    cdef Buf *buf = &S.buf
    cdef IV *rpos = &S.rpos
    cdef IV *nest = &S.nest
    scratch.n = stream.n = buf.n = 0
    scratch.err = stream.err = buf.err = 0
    rpos.n = rpos.err = 0
    nest.n = nest.err = 0
    rc = find_roots(W, scratch)
    if not rc:
        rc = namespaces(W, scratch)
    if not rc:
        # references stay unresolved here (U.root_of is NULL): only their offsets matter
        rc = expansion(W, scratch, &W.names_x, &W.phase)
        if rc == 1:
            W.phase = -1
            rc = 0
    nr = W.nroots
    if not rc:
        # roots named by expressions (pinned) and roots holding such expressions (unique)
        for j in range(W.nnamed):
            t = find_die(U.offs, U.n, W.named[j])
            if t >= U.n or U.offs[t] != W.named[j]:
                rc = 1  # not a DIE: the pure path raises
                break
            if W.root_of[t] >= 0:
                W.pinned[W.root_of[t]] = 1
        for j in range(W.nx):
            t = W.xdies[j]
            if 0 <= t < U.n and W.root_of[t] >= 0:
                W.uniq[W.root_of[t]] = 1
        for k in range(nr):
            if W.cflags[U.codes[W.roots[k]]] & F_PIN:
                W.pinned[k] = 1
    if not rc:
        rstart = <int64_t *> malloc((nr + 1) * sizeof(int64_t))
        spans = <int64_t *> malloc((4 * nr + 1) * sizeof(int64_t))
        if rstart == NULL or spans == NULL:
            rc = 2
    if not rc:
        U.root_of = W.root_of
        U.roots = W.roots
        for k in range(nr):
            rstart[k] = stream.n
            for j in range(4):
                spans[4 * k + j] = -1
            r = W.roots[k]
            in_class = False
            for j in range(r, W.rends[k]):
                # the spans of the root's name and file, and of those of each type nested directly
                # in a named class root (hash._hash_roots)
                sp = NULL
                if j == r:
                    sp = spans + 4 * k
                elif in_class and U.parent[j] == r and W.xflags[U.codes[j]] & X_TYPE:
                    sp = nspan
                    nspan[0] = nspan[1] = nspan[2] = nspan[3] = -1
                if tok_die(U, stream, j, r, k, sp, rpos, NULL, NULL):
                    rc = 1
                    break
                if j == r:
                    in_class = (W.xflags[U.codes[j]] & X_CLASS) != 0 and spans[4 * k] >= 0
                elif sp != NULL and nspan[0] >= 0:
                    ipush(nest, k)
                    for t in range(4):
                        ipush(nest, nspan[t])
            if rc:
                break
        rstart[nr] = stream.n
        if stream.err or rpos.err or nest.err:
            rc = 2
    if not rc:
        rc = hash_all(W, stream, rstart, rpos, buf, S)
    if not rc:
        rc = name_keys(W, stream, spans, buf)
    if not rc:
        rc = nested_keys(W, stream, nest, buf)
    free(rstart)
    free(spans)
    if not rc and (scratch.err or buf.err):
        rc = 2
    return rc


cdef class _Job:
    """One unit's analysis: its Work, the arrays the kernel writes into, and the file paths
    end to end (the pointers into the caller's arguments stay valid while the caller holds
    them, for the call)."""
    cdef Work W
    cdef array roots, rends, root_of, nsok, nsh, pinned, uniq, hashes, names, has_name, nested_root, nested_names
    cdef uint8_t *blob
    cdef int64_t *spans

    def __cinit__(self):
        self.blob = NULL
        self.spans = NULL
        memset(&self.W, 0, sizeof(Work))

    def __dealloc__(self):
        free(self.blob)
        free(self.spans)
        free(self.W.names_x.best.p)
        free(self.W.own_prog)
        free(self.W.own_start)
        free(self.W.own_head_off)
        free(self.W.own_heads)
        free(self.W.own_flags)
        free(self.W.own_xflags)
        free(self.W.own_files.p)
        free(self.W.own_fstart.p)
        free(self.W.own_fend.p)


def _job(info_col, int64_t u, int64_t uend, offs_col, codes_col, parent_col, ends_col, prog_col, start_col,
         heads_col, head_off_col, cflags_col, xflags_col, strs_col, str_offsets_col, int64_t so_base, int offset_size,
         line_strs_col, files, unit_ctx_col, named_col, xref_dies_col, abbrev_col=None,
         Py_ssize_t abbrev_off=-1, tpl_col=None, tag_flags_col=None, xtag_flags_col=None, line_col=None,
         Py_ssize_t line_off=-1, comp_dir=None):
    """One unit's job for ``analyze_many`` (None: the unit's result is None at once). The
    columns are read without typed views (``_columns``): eighteen a unit. With ``prog_col``
    None the kernel makes the tables (``tables``'s) from the abbreviation table at
    ``abbrev_off`` itself, without the GIL; with ``files`` None it reads the file names
    (``line.file_names``'s) from the line table at ``line_off`` and ``comp_dir`` itself."""
    cdef const uint8_t *info
    cdef const uint8_t *heads = NULL
    cdef const uint8_t *cflags = NULL
    cdef const uint8_t *xflags = NULL
    cdef const uint8_t *strs
    cdef const uint8_t *str_offsets
    cdef const uint8_t *line_strs
    cdef const uint8_t *unit_ctx
    cdef const int64_t *offs
    cdef const int64_t *codes
    cdef const int64_t *parent
    cdef const int64_t *ends
    cdef const int64_t *prog = NULL
    cdef const int64_t *start = NULL
    cdef const int64_t *head_off = NULL
    cdef const int64_t *named
    cdef const int64_t *xref_dies
    cdef const uint8_t *ab = NULL
    cdef const int64_t *tpl = NULL
    cdef const uint8_t *tagf = NULL
    cdef const uint8_t *xtagf = NULL
    cdef Py_ssize_t nab = 0
    cdef bint make = prog_col is None
    cdef Py_ssize_t n = int64_column(offs_col, &offs)
    cdef Py_ssize_t nstart = 1 if make else int64_column(start_col, &start)
    cdef Py_ssize_t ninfo = byte_column(info_col, &info)
    cdef Py_ssize_t nprog = 0 if make else int64_column(prog_col, &prog)
    cdef Py_ssize_t nstrs = byte_column(strs_col, &strs)
    cdef Py_ssize_t nstroff = byte_column(str_offsets_col, &str_offsets)
    cdef Py_ssize_t nlstrs = byte_column(line_strs_col, &line_strs)
    cdef Py_ssize_t nctx = byte_column(unit_ctx_col, &unit_ctx)
    cdef Py_ssize_t nnamed = int64_column(named_col, &named)
    cdef Py_ssize_t nx = int64_column(xref_dies_col, &xref_dies)
    if (n == 0 or int64_column(codes_col, &codes) != n or int64_column(parent_col, &parent) != n
            or int64_column(ends_col, &ends) != n or nstart == 0):
        return None
    if make:
        nab = byte_column(abbrev_col, &ab)
        if not 0 <= abbrev_off < nab or int64_table(tpl_col, TPL_SLOTS, 3, &tpl) != 3:
            return None
        if byte_column(tag_flags_col, &tagf) != 256 or byte_column(xtag_flags_col, &xtagf) != 256:
            return None
    else:
        byte_column(heads_col, &heads)
        if int64_column(head_off_col, &head_off) != nstart + 1 or byte_column(cflags_col, &cflags) != nstart:
            return None
        if byte_column(xflags_col, &xflags) != nstart:
            return None
    if offset_size not in (4, 8):
        return None
    cdef const uint8_t *line = NULL
    cdef const uint8_t *comp = NULL
    cdef Py_ssize_t nline = 0, ncomp = 0
    cdef bint lines = files is None
    cdef Py_ssize_t nf = 0 if lines else len(files), k, size, total = 0
    if lines:
        nline = byte_column(line_col, &line)
        if type(comp_dir) is not bytes or not 0 <= line_off < nline:
            return None
        ncomp = byte_column(comp_dir, &comp)
    else:
        for f in files:
            if f is not None:
                if type(f) is not bytes:
                    return None
                total += len(<bytes> f)
    cdef _Job job = _Job.__new__(_Job)
    cdef Work *W = &job.W
    # Sized by DIEs, used by roots (a few in ten): only the arrays read before they are written
    # (flags set for some roots; the name keys of unnamed roots stay zero) are zeroed, the rest
    # left as they come (no memset of their unused rows with the GIL held).
    job.roots = clone(_INT64, n, False)
    job.rends = clone(_INT64, n, False)
    job.root_of = clone(_INT64, n, False)
    job.nsok = clone(_UINT8, n, False)
    job.nsh = clone(_UINT8, 16 * n, False)
    job.pinned = clone(_UINT8, n, True)
    job.uniq = clone(_UINT8, n, True)
    job.hashes = clone(_UINT8, 16 * n, False)
    job.names = clone(_UINT8, 16 * n, True)
    job.has_name = clone(_UINT8, n, False)
    job.nested_root = clone(_INT64, n, False)
    job.nested_names = clone(_UINT8, 16 * n, False)
    W.U.d = info
    W.U.nd = ninfo
    W.U.u = u
    W.U.uend = uend
    W.U.offs = offs
    W.U.n = n
    W.U.codes = codes
    W.U.parent = parent
    W.U.prog = prog
    W.U.nprog = nprog
    W.U.start = start
    W.U.heads = heads
    W.U.head_off = head_off
    W.U.strs = strs
    W.U.nstrs = nstrs
    W.U.stroff = str_offsets
    W.U.nstroff = nstroff
    W.U.so_base = so_base
    W.U.osize = offset_size
    W.U.lstrs = line_strs
    W.U.nlstrs = nlstrs
    W.U.root_of = NULL
    W.U.roots = NULL
    W.ends = ends
    W.cflags = cflags
    W.xflags = xflags
    W.ncodes = nstart
    W.ctx = unit_ctx
    W.nctx = nctx
    W.named = named
    W.nnamed = nnamed
    W.xdies = xref_dies
    W.nx = nx
    W.make = make
    W.ab, W.nab, W.ab_off, W.tpl, W.tagf, W.xtagf = ab, nab, abbrev_off, tpl, tagf, xtagf
    W.lines = lines
    W.line, W.nline, W.line_off, W.comp, W.ncomp = line, nline, line_off, comp, ncomp
    W.roots = <int64_t *> job.roots.data.as_voidptr
    W.rends = <int64_t *> job.rends.data.as_voidptr
    W.root_of = <int64_t *> job.root_of.data.as_voidptr
    W.nsok = <uint8_t *> job.nsok.data.as_voidptr
    W.nsh = <uint8_t *> job.nsh.data.as_voidptr
    W.pinned = <uint8_t *> job.pinned.data.as_voidptr
    W.uniq = <uint8_t *> job.uniq.data.as_voidptr
    W.hashes = <uint8_t *> job.hashes.data.as_voidptr
    W.names = <uint8_t *> job.names.data.as_voidptr
    W.has_name = <uint8_t *> job.has_name.data.as_voidptr
    W.nroots = 0
    W.nested_root = <int64_t *> job.nested_root.data.as_voidptr
    W.nested_names = <uint8_t *> job.nested_names.data.as_voidptr
    W.nnested = 0
    W.phase = -1
    memset(&W.names_x, 0, sizeof(Names))
    if lines:
        return job
    # The paths end to end, with each one's place (start -1: none), made here from the list: a
    # few dozen files a unit, where numpy's calls cost more than the walk (glibc: 2063 units).
    job.blob = <uint8_t *> malloc(total + 1)
    job.spans = <int64_t *> malloc((2 * nf + 1) * sizeof(int64_t))
    if job.blob == NULL or job.spans == NULL:
        raise MemoryError()
    total = 0
    for k in range(nf):
        f = files[k]
        if f is None:
            job.spans[k] = -1
            job.spans[nf + k] = total
        else:
            size = len(<bytes> f)
            memcpy(job.blob + total, <const char *> (<bytes> f), size)
            job.spans[k] = total
            total += size
            job.spans[nf + k] = total
    W.U.files = job.blob
    W.U.file_start = job.spans
    W.U.file_end = job.spans + nf
    W.U.nfiles = nf
    return job


cdef object _result(_Job job):
    """The result of a job that ran (see ``analyze_many``)."""
    cdef Work *W = &job.W
    if W.rc == 2 or W.names_x.best.err:
        raise MemoryError()
    if W.rc == RC_TABLES:
        return TABLES
    if W.rc:
        return None
    first = (PyBytes_FromStringAndSize(<const char *> W.names_x.best.p, W.names_x.best.n)
             if W.names_x.best.n else b"")
    nr = W.nroots
    nn = W.nnested
    # Roots and their ends as DIE indexes in 32 bits (the table phase holds every unit's), the
    # rest cut to the roots' rows in place.
    cdef array roots32 = clone(_UINT32, nr, False), rends32 = clone(_UINT32, nr, False)
    cdef Py_ssize_t j, n = W.U.n
    for j in range(nr):
        if W.roots[j] > 0xFFFFFFFF or W.rends[j] > 0xFFFFFFFF:
            return None
        (<uint32_t *> roots32.data.as_voidptr)[j] = <uint32_t> W.roots[j]
        (<uint32_t *> rends32.data.as_voidptr)[j] = <uint32_t> W.rends[j]
    pinned, hashes, names, has_name = job.pinned, job.hashes, job.names, job.has_name
    nested_root, nested_names = job.nested_root, job.nested_names
    resize(pinned, nr)
    resize(hashes, 16 * nr)
    resize(names, 16 * nr)
    resize(has_name, nr)
    resize(nested_root, nn)
    resize(nested_names, 16 * nn)
    # The unit's DIE offsets in 32 bits as well, for what the merge keeps of them (half the
    # memory): made here, where the offsets are at hand, rather than by one more call per unit.
    cdef object offs32 = None
    cdef uint32_t *o32
    if W.U.uend <= 0xFFFFFFFF:
        offs32 = clone(_UINT32, n, False)
        o32 = <uint32_t *> (<array> offs32).data.as_voidptr
        for j in range(n):
            if W.U.offs[j] < 0 or W.U.offs[j] > 0xFFFFFFFF:
                offs32 = None  # (the caller narrows them, or says why not)
                break
            o32[j] = <uint32_t> W.U.offs[j]
    return (roots32, rends32, pinned, hashes, names, has_name, W.phase, first, nested_root, nested_names, offs32)


def analyze_many(list calls):
    """For each unit of ``calls`` (a tuple of ``_job``'s arguments each, which the caller holds
    for the call): (roots, root_ends, pinned, hashes, names, has_name, phase, first name,
    nested_root, nested_names, offs32), or None
    (the caller runs the pure path). The work of all the units runs in one stretch without the GIL (small units on threads hand
    the GIL over once per batch rather than once per unit). (phase, first name) is
    expansion.expansion_key (phase -1: the caller computes it).

    ``prog[start[code]:]`` is the tokenizer program of each abbreviation code (tokens.hash_program),
    ``heads[head_off[code]:head_off[code + 1]]`` its head token (b'H' tag children), ``cflags[code]``
    its F_* flags and ``xflags[code]`` its X_* flags; ``files[i]`` the path of file ``i`` (bytes,
    or None for an index without one: ``line.file_names``);
    ``unit_ctx`` what every root's hash starts with (language, version, address size); ``named``
    the section offsets of DIEs named by DWARF expressions, ``xref_dies`` the DIEs holding them.
    ``hashes`` and ``names`` (the digest of namespaces, name and file) are 16 bytes a root, in
    array('B')s; roots and root ends array('I'), nested roots array('q'), flags array('B');
    ``offs32`` the DIE offsets as array('I') (None for a unit ending past 4 GiB)."""
    cdef Py_ssize_t k, m = len(calls)
    cdef Scratch S
    memset(&S, 0, sizeof(Scratch))
    jobs = [_job(*c) for c in calls]
    cdef Work **slots = <Work **> malloc((m + 1) * sizeof(Work *))
    if slots == NULL:
        raise MemoryError()
    try:
        for k in range(m):
            slots[k] = NULL if jobs[k] is None else &(<_Job> jobs[k]).W
        with nogil:
            for k in range(m):
                if slots[k] != NULL:
                    if slots[k].make and not share_tables(slots, k):
                        slots[k].rc = make_tables(slots[k])
                        slots[k].made |= 1 if slots[k].rc == 0 else 0
                    if slots[k].rc == 0 and slots[k].lines and not share_files(slots, k):
                        slots[k].rc = make_files(slots[k])
                        slots[k].made |= 2 if slots[k].rc == 0 else 0
                    if slots[k].rc == 0:
                        slots[k].rc = run(slots[k], &S)
    finally:
        free(slots)
        free_scratch(&S)
    return [None if j is None else _result(j) for j in jobs]


# --- the kernel's tables of one abbreviation table --------------------------------------------

DEF MAX_CODE = 65535



cdef int walk_table(const uint8_t *b, Py_ssize_t n, Py_ssize_t p, const int64_t *tpl, const uint8_t *tag_flags,
                    const uint8_t *xtag_flags, Buf *prog, Buf *heads, IV *codes, IV *pstart, IV *hstart, IV *hend,
                    IV *flags, IV *xflags, uint64_t *max_code) noexcept nogil:
    """The walk of ``tables`` over one abbreviation table (``tpl`` as a flat (3, TPL_SLOTS, 3)
    array: class, form's row): 1 when done, 0 for a table it does not take."""
    cdef uint64_t code, tag, at, form, v
    cdef int64_t ic, slot, row
    cdef uint8_t children, fl
    cdef uint64_t decl_form
    cdef int64_t op6[6]
    cdef bint has_decl, has_name, has_file, declared, has_size, has_sig
    while True:
        p = read_uleb(b, n, p, &code)
        if p < 0 or code > MAX_CODE:
            return 0
        if code == 0:
            break
        if code > max_code[0]:
            max_code[0] = code
        p = read_uleb(b, n, p, &tag)
        if p < 0 or p >= n:
            return 0
        children = 1 if b[p] else 0
        p += 1
        ipush(codes, <int64_t> code)
        ipush(pstart, prog.n // 8)
        ipush(hstart, heads.n)
        put(heads, b'H')
        uleb(heads, tag)
        put(heads, children)
        ipush(hend, heads.n)
        has_decl = has_name = has_file = declared = has_size = has_sig = False
        decl_form = 0
        while True:
            p = read_spec(b, n, p, &at, &form, &ic)
            if p < 0:
                return 0
            if at == 0 and form == 0:
                break
            slot = form_slot(form)
            if slot < 0:
                return 0
            row = ((0 if at == 0x01 else 1 if at == AT_DECL_FILE else 2) * TPL_SLOTS + slot) * 3
            if tpl[row] < 0:
                return 0
            if at == AT_DECLARATION and not has_decl:
                has_decl = True
                decl_form = form
            if at == AT_NAME:
                has_name = True
            if at == AT_DECLARATION and form == 0x19:  # DW_FORM_flag_present
                declared = True
            if at == AT_DECL_FILE:
                has_file = True
            if at == 0x0b:  # DW_AT_byte_size
                has_size = True
            if at == 0x69:  # DW_AT_signature
                has_sig = True
            if grow(prog, 6 * 8) == 0:
                op6[0] = tpl[row]
                op6[1] = <int64_t> at
                op6[2] = <int64_t> form
                op6[3] = tpl[row + 1]
                op6[4] = tpl[row + 2]
                op6[5] = ic
                memcpy(prog.p + prog.n, op6, 6 * 8)
                prog.n += 6 * 8
        if grow(prog, 6 * 8) == 0:
            memset(prog.p + prog.n, 0, 6 * 8)
            prog.n += 6 * 8
        fl = 0
        if tag < 256:
            fl = tag_flags[tag] & (F_TYPE | F_NAMESPACE)
            if (tag_flags[tag] & 64) and has_decl and decl_form:
                fl |= F_DECL
                if decl_form == 0x19:  # DW_FORM_flag_present
                    fl |= F_DECL_PRESENT
        # expansion.listed_per_unit: not an opaque struct, class or union declaration
        if has_name and not has_file and not (declared and not has_size and not has_sig
                                              and (tag == 0x02 or tag == 0x13 or tag == 0x17)):
            fl |= F_PIN
        ipush(flags, fl)
        fl = xtag_flags[tag] if tag < 256 else 0
        if has_name:
            fl |= X_HAS_NAME
        if declared:
            fl |= X_DECLARED
        ipush(xflags, fl)
    return 1


TABLES = "tables"  # analyze_many's result for such a unit: the caller makes the tables and runs it again


cdef bint share_tables(Work **slots, Py_ssize_t k) noexcept nogil:
    """Whether an earlier job of the batch made the tables of job ``k``'s abbreviation table
    (the same table, templates and flags), which ``k`` then reads (borrowed: that job frees
    them, after the batch). dwz's output has a few tables for many units (libkrb5's debug file:
    39 for 1,033 units): made once a unit, they held 53 MB."""
    cdef Work *W = slots[k]
    cdef Work *o
    cdef Py_ssize_t j
    for j in range(k - 1, -1, -1):
        o = slots[j]
        if (o != NULL and (o.made & 1) and o.ab == W.ab and o.nab == W.nab
                and o.ab_off == W.ab_off and o.tpl == W.tpl and o.tagf == W.tagf and o.xtagf == W.xtagf):
            W.U.prog = o.U.prog
            W.U.nprog = o.U.nprog
            W.U.start = o.U.start
            W.U.heads = o.U.heads
            W.U.head_off = o.U.head_off
            W.cflags = o.cflags
            W.xflags = o.xflags
            W.ncodes = o.ncodes
            return True
    return False


cdef bint share_files(Work **slots, Py_ssize_t k) noexcept nogil:
    """Whether an earlier job of the batch read the file names of job ``k``'s line table (the
    same table, compilation directory and string sections), which ``k`` then reads (borrowed,
    as in ``share_tables``): dwz's partial units name their importer's line table."""
    cdef Work *W = slots[k]
    cdef Work *o
    cdef Py_ssize_t j
    for j in range(k - 1, -1, -1):
        o = slots[j]
        if (o != NULL and (o.made & 2) and o.line == W.line and o.nline == W.nline
                and o.line_off == W.line_off and o.ncomp == W.ncomp
                and (o.ncomp == 0 or memcmp(o.comp, W.comp, o.ncomp) == 0)
                and o.U.strs == W.U.strs and o.U.nstrs == W.U.nstrs and o.U.lstrs == W.U.lstrs
                and o.U.nlstrs == W.U.nlstrs):
            W.U.files = o.U.files
            W.U.file_start = o.U.file_start
            W.U.file_end = o.U.file_end
            W.U.nfiles = o.U.nfiles
            return True
    return False


cdef int make_files(Work *W) noexcept nogil:
    """The job's file names from its line table (``line_files``) into its own buffers, and its
    file pointers set to them: 0, RC_TABLES where ``line_files`` declines, 2 out of memory."""
    cdef int got = line_files(W.line, W.nline, W.line_off, W.U.strs, W.U.nstrs, W.U.lstrs, W.U.nlstrs, W.comp,
                              W.ncomp, &W.own_files, &W.own_fstart, &W.own_fend)
    if got != 1:
        return RC_TABLES if got == 0 else 2
    W.U.files = W.own_files.p
    W.U.file_start = W.own_fstart.p
    W.U.file_end = W.own_fend.p
    W.U.nfiles = W.own_fstart.n
    return 0


cdef int make_tables(Work *W) noexcept nogil:
    """``tables`` of the job's abbreviation table into the job's own buffers, and the job's
    table pointers set to them: 0, RC_TABLES where ``tables`` would say None, 2 out of memory."""
    cdef Buf prog, heads
    cdef IV codes, pstart, hstart, hend, flags, xflags
    cdef uint64_t code, max_code = 0
    cdef Py_ssize_t j, size, total
    cdef int64_t *last = NULL
    cdef int rc = 0
    memset(&prog, 0, sizeof(Buf))
    memset(&heads, 0, sizeof(Buf))
    memset(&codes, 0, sizeof(IV))
    memset(&pstart, 0, sizeof(IV))
    memset(&hstart, 0, sizeof(IV))
    memset(&hend, 0, sizeof(IV))
    memset(&flags, 0, sizeof(IV))
    memset(&xflags, 0, sizeof(IV))
    if not walk_table(W.ab, W.nab, W.ab_off, W.tpl, W.tagf, W.xtagf, &prog, &heads, &codes, &pstart, &hstart, &hend,
                      &flags, &xflags, &max_code):
        rc = RC_TABLES
    elif prog.err or heads.err or codes.err or pstart.err or hstart.err or hend.err or flags.err or xflags.err:
        rc = 2
    if rc == 0:
        size = max_code + 1
        last = <int64_t *> malloc(size * sizeof(int64_t))
        W.own_start = <int64_t *> malloc(size * sizeof(int64_t))
        W.own_head_off = <int64_t *> calloc(size + 1, sizeof(int64_t))
        W.own_flags = <uint8_t *> calloc(size, 1)
        W.own_xflags = <uint8_t *> calloc(size, 1)
        if last == NULL or W.own_start == NULL or W.own_head_off == NULL or W.own_flags == NULL or W.own_xflags == NULL:
            rc = 2
    if rc == 0:
        memset(W.own_start, 0xFF, size * sizeof(int64_t))  # -1: no such code
        for j in range(codes.n):  # a code defined twice: the last one counts, as in ``tables``
            code = codes.p[j]
            W.own_start[code] = pstart.p[j]
            W.own_head_off[code + 1] = hend.p[j] - hstart.p[j]
            W.own_flags[code] = <uint8_t> flags.p[j]
            W.own_xflags[code] = <uint8_t> xflags.p[j]
            last[code] = j
        total = 0
        for code in range(<uint64_t> size):
            total += W.own_head_off[code + 1]
        W.own_heads = <uint8_t *> malloc(total + 1)
        if W.own_heads == NULL:
            rc = 2
    if rc == 0:
        total = 0
        for code in range(<uint64_t> size):
            if W.own_head_off[code + 1]:
                j = last[code]
                memcpy(W.own_heads + total, heads.p + hstart.p[j], W.own_head_off[code + 1])
                total += W.own_head_off[code + 1]
        for code in range(<uint64_t> size):  # each code's head from its offset: the running sum
            W.own_head_off[code + 1] += W.own_head_off[code]
        W.own_prog = <int64_t *> prog.p  # (taken over)
        prog.p = NULL
        W.U.prog = W.own_prog
        W.U.nprog = prog.n // sizeof(int64_t)
        W.U.start = W.own_start
        W.U.heads = W.own_heads
        W.U.head_off = W.own_head_off
        W.cflags = W.own_flags
        W.xflags = W.own_xflags
        W.ncodes = size
    free(prog.p)
    free(heads.p)
    free(codes.p)
    free(pstart.p)
    free(hstart.p)
    free(hend.p)
    free(flags.p)
    free(xflags.p)
    free(last)
    return rc


def tables(abbrev_col, Py_ssize_t off, tpl_col, tag_flags_col, xtag_flags_col):
    """(prog, start, heads, head_off, flags, xflags) of ``analyze_many`` for the abbreviation table at
    ``off``, or None: ``make_tables``'s buffers as arrays (the kernel makes its own; the tests
    compare these with fasthash's Python tables).

    ``tpl[c, form_slot(form)]`` is (op, size, class) of tokens.hash_program for a form, for an attribute of
    class ``c`` (0: DW_AT_sibling, 1: DW_AT_decl_file, 2: any other; op -1: not tokenisable);
    ``tag_flags[tag]`` the F_TYPE and F_NAMESPACE flags of a tag below 256 and 64 for
    the tags of F_DECL; ``xtag_flags[tag]`` the X_* flags that only depend on the tag."""
    cdef Work W
    cdef int rc
    cdef Py_ssize_t size
    memset(&W, 0, sizeof(Work))
    W.nab = byte_column(abbrev_col, &W.ab)
    W.ab_off = off
    if off < 0 or off >= W.nab or int64_table(tpl_col, TPL_SLOTS, 3, &W.tpl) != 3:
        return None
    if byte_column(tag_flags_col, &W.tagf) != 256 or byte_column(xtag_flags_col, &W.xtagf) != 256:
        return None
    try:
        with nogil:
            rc = make_tables(&W)
        if rc == RC_TABLES:
            return None
        if rc:
            raise MemoryError()
        size = W.ncodes
        start_a = clone(_INT64, size, False)
        memcpy(start_a.data.as_voidptr, W.own_start, size * sizeof(int64_t))
        head_len = clone(_INT64, size + 1, False)
        memcpy(head_len.data.as_voidptr, W.own_head_off, (size + 1) * sizeof(int64_t))
        flags_a = clone(_UINT8, size, False)
        memcpy(flags_a.data.as_voidptr, W.own_flags, size)
        xflags_a = clone(_UINT8, size, False)
        memcpy(xflags_a.data.as_voidptr, W.own_xflags, size)
        hb = PyBytes_FromStringAndSize(<const char *> W.own_heads, W.own_head_off[size])
        prog_a = clone(_INT64, W.U.nprog, False)
        if W.U.nprog:
            memcpy(prog_a.data.as_voidptr, W.own_prog, W.U.nprog * sizeof(int64_t))
        return prog_a, start_a, hb, head_len, flags_a, xflags_a
    finally:
        free(W.own_prog)
        free(W.own_start)
        free(W.own_head_off)
        free(W.own_heads)
        free(W.own_flags)
        free(W.own_xflags)


cdef uint8_t *_named_roots(offs_col, codes_col, ref_die_col, ref_target_col, const uint32_t *roots, Py_ssize_t nr,
                           const uint32_t *root_ends, const uint8_t[::1] is_source) except? NULL:
    """One flag per root (``roots``: DIE indexes, ascending): whether a reference from a DIE whose
    code ``is_source`` marks names it: its first DIE (``root_ends`` NULL), or any DIE of its
    subtree from a DIE outside it. NULL for no flags to make (the caller frees the array). One
    pass over the unit's references without the GIL, each target found by binary search."""
    cdef const int64_t *offs
    cdef const int64_t *codes
    cdef const int64_t *rdie
    cdef const int64_t *rtarget
    cdef Py_ssize_t n = int64_column(offs_col, &offs)
    cdef Py_ssize_t ncodes_col = int64_column(codes_col, &codes)
    cdef Py_ssize_t nref = int64_column(ref_die_col, &rdie)
    cdef Py_ssize_t ntarget = int64_column(ref_target_col, &rtarget)
    cdef Py_ssize_t nflags = is_source.shape[0]
    cdef Py_ssize_t j, t, k, lo, hi, mid
    cdef int64_t i, c
    if ncodes_col < n or ntarget < nref or nr == 0 or nflags == 0:
        return NULL
    cdef uint8_t *mark = <uint8_t *> calloc(nr, 1)
    if mark == NULL:
        raise MemoryError()
    with nogil:
        for j in range(nref):
            i = rdie[j]
            if i < 0 or i >= n:
                continue
            c = codes[i]
            if c < 0 or c >= nflags or not is_source[c]:
                continue
            t = find_offset(offs, n, rtarget[j])
            if t < 0:
                continue
            if root_ends == NULL:
                k = find_offset(roots, nr, t)
                if k >= 0:
                    mark[k] = 1
                continue
            lo = 0  # the last root at or before the target
            hi = nr
            while lo < hi:
                mid = (lo + hi) >> 1
                if <int64_t> roots[mid] <= t:
                    lo = mid + 1
                else:
                    hi = mid
            k = lo - 1
            if k >= 0 and t < <int64_t> root_ends[k] and not (roots[k] <= i < <int64_t> root_ends[k]):
                mark[k] = 1
    return mark


def using_targets(offs_col, codes_col, ref_die_col, ref_target_col, const uint32_t[::1] roots,
                  const uint8_t[::1] is_using):
    """hash._using_targets's compiled twin (the same roots, without numpy): the roots (``roots``:
    DIE indexes, ascending) that a reference from a DIE whose code is marked in ``is_using``
    names, as array('q') pairs (index into ``roots``, the root's abbreviation code) end to end,
    ascending, each root once (``_named_roots``)."""
    cdef const int64_t *codes
    cdef Py_ssize_t nr = roots.shape[0], j, k = 0
    cdef int64_t *pairs
    cdef array out = clone(_INT64, 0, False)
    if nr == 0:
        return out
    int64_column(codes_col, &codes)
    cdef uint8_t *mark = _named_roots(offs_col, codes_col, ref_die_col, ref_target_col, &roots[0], nr, NULL, is_using)
    if mark == NULL:
        return out
    try:
        for j in range(nr):
            k += mark[j]
        out = clone(_INT64, 2 * k, False)
        pairs = <int64_t *> out.data.as_voidptr
        k = 0
        for j in range(nr):
            if mark[j]:
                pairs[k] = j
                pairs[k + 1] = codes[roots[j]]
                k += 2
        return out
    finally:
        free(mark)


def followed_roots(offs_col, codes_col, ref_die_col, ref_target_col, const uint32_t[::1] roots,
                   const uint32_t[::1] root_ends, const uint8_t[::1] is_source):
    """hash._followed_roots's compiled twin (the same roots, without numpy): the roots (indexes
    into ``roots``, ascending, each once) whose subtree (``roots[k]`` to ``root_ends[k]``, DIE
    indexes) holds the target of a reference from a DIE outside it whose code ``is_source``
    marks, as array('q') (``_named_roots``)."""
    cdef Py_ssize_t nr = roots.shape[0], j, k = 0
    cdef int64_t *got
    cdef array out = clone(_INT64, 0, False)
    if nr == 0 or root_ends.shape[0] < nr:
        return out
    cdef uint8_t *mark = _named_roots(offs_col, codes_col, ref_die_col, ref_target_col, &roots[0], nr, &root_ends[0],
                                      is_source)
    if mark == NULL:
        return out
    try:
        for j in range(nr):
            k += mark[j]
        out = clone(_INT64, k, False)
        got = <int64_t *> out.data.as_voidptr
        k = 0
        for j in range(nr):
            if mark[j]:
                got[k] = j
                k += 1
        return out
    finally:
        free(mark)


def select_pairs(const int64_t[::1] pairs, const uint8_t[::1] keep):
    """The first of each (root, code) pair of ``using_targets`` whose code ``keep`` marks
    (array('q'))."""
    cdef Py_ssize_t j, n = pairs.shape[0] // 2, nkeep = keep.shape[0], k = 0
    cdef int64_t c
    for j in range(n):
        c = pairs[2 * j + 1]
        if 0 <= c < nkeep and keep[c]:
            k += 1
    cdef array out = clone(_INT64, k, False)
    cdef int64_t *got = <int64_t *> out.data.as_voidptr
    k = 0
    for j in range(n):
        c = pairs[2 * j + 1]
        if 0 <= c < nkeep and keep[c]:
            got[k] = pairs[2 * j]
            k += 1
    return out
