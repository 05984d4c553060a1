"""Compiled per-abbreviation tokenizers: the hash input of one DIE without generic decoding.

``compile_tokenizer`` turns an attribute list into a generated function ``tok(d, p, c, T, A, K)``
that appends one token per attribute to ``T`` (``A``, ``K``: the attribute numbers and implicit
constants, by attribute index). Attribute numbers are arguments rather than literals so that the
generated source depends only on the forms: a unit's hundreds of attribute lists then compile to a
few dozen functions (compiling was a visible share of the hash phase). Tokens are plain tuples of ints, bytes and short
strings; constants whose meaning cannot depend on their form are normalised (gcc shares repeated
values with DW_FORM_implicit_const in one unit and uses DW_FORM_data1 in another), strings are
tokenised by content and references, file numbers and strings are resolved through the unit
context ``c`` (``c.ref``, ``c.file``, ``c.string``, ``c.strp``, ``c.u``).
"""
from __future__ import annotations

import struct

from linkplugin.dwarf import forms as F
from linkplugin.dwarf.abbrev import AttrSpec, block_length_lines, form_size
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_sleb, read_uleb

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Callable
    Tokenizer = Callable[..., None]

_DATA_BITS = {F.DW_FORM_data1: 8, F.DW_FORM_data2: 16, F.DW_FORM_data4: 32, F.DW_FORM_data8: 64}
_FILE_ATTRS = (F.DW_AT_decl_file,)
_ENV = {"_u16": struct.Struct("<H").unpack_from, "_u32": struct.Struct("<I").unpack_from,
        "_u64": struct.Struct("<Q").unpack_from, "_u24": lambda d, p: (int.from_bytes(d[p:p + 3], "little"),),
        "_uleb": read_uleb, "_sleb": read_sleb}
_cache: dict[tuple, Tokenizer] = {}
_source_cache: dict[str, Tokenizer] = {}


def compile_tokenizer(specs: tuple[AttrSpec, ...], version: int, offset_size: int, addr_size: int,
                      raw: bytes | None = None) -> Tokenizer:
    key = (raw if raw is not None else specs, version, offset_size, addr_size)
    fn = _cache.get(key)
    if fn is None:
        fn = _cache[key] = _build(specs, version, offset_size, addr_size)
    return fn


def _fixed_value(size: int, k: int) -> str:
    if size == 1:
        return f"d[p + {k}]"
    if size in (2, 3, 4, 8):
        return f"_u{size * 8}(d, p + {k})[0]"
    return f"int.from_bytes(d[p + {k}:p + {k + size}], 'little')"


def _classify(at: int, a: str, form: int, v: str) -> list[str]:
    """Lines appending the token of attribute ``at`` (the expression ``a`` in the generated code)
    whose decoded value is the expression ``v``."""
    if form in F.UNIT_REF_FORMS:
        return [f"T.append(c.ref({a}, c.u + {v}))"]
    if form == F.DW_FORM_ref_addr:
        return [f"T.append(c.ref({a}, {v}))"]
    if form == F.DW_FORM_strp:
        return [f"T.append(({a}, 's', c.strp({v})))"]
    if form in F.STR_FORMS:
        return [f"T.append(({a}, 's', c.string({form}, {v})))"]
    if at in _FILE_ATTRS and (form in _DATA_BITS or form == F.DW_FORM_udata):
        return [f"T.append(c.file({a}, {v}))"]
    if form in F.UNIT_INDEX_FORMS:
        return [f"T.append(({a}, 'U', c.u, {v}))"]
    if form in _DATA_BITS:
        return [f"v = {v}", f"T.append(({a}, 'k' if v < {1 << (_DATA_BITS[form] - 1)} else {form}, v))"]
    if form == F.DW_FORM_udata:
        return [f"T.append(({a}, 'k', {v}))"]
    if form == F.DW_FORM_sdata:
        return [f"v = {v}", f"T.append(({a}, 'k' if v >= 0 else {form}, v))"]
    if form == F.DW_FORM_flag:
        return [f"v = {v}", f"T.append(({a}, 'flag', 1) if v == 1 else ({a}, {form}, v))"]
    return [f"T.append(({a}, {form}, {v}))"]


def _build(specs: tuple[AttrSpec, ...], version: int, O: int, A: int) -> Tokenizer:
    lines: list[str] = []
    env = dict(_ENV)
    k = 0

    def flush() -> None:
        nonlocal k
        if k:
            lines.append(f"p += {k}")
            k = 0

    for idx, (at, form, ic) in enumerate(specs):
        a = f"A[{idx}]"
        if form == F.DW_FORM_implicit_const:
            # The value lives in the abbreviation: pass it in K, so that abbreviations differing
            # only in their constants share one compiled function.
            lines.append(f"T.append(c.file({a}, K[{idx}]))" if at in _FILE_ATTRS else
                         f"T.append(({a}, 'k', K[{idx}]) if K[{idx}] >= 0 else ({a}, {form}, K[{idx}]))")
            continue
        if form == F.DW_FORM_flag_present:
            lines.append(f"T.append(({a}, 'flag', 1))")
            continue
        size = form_size(form, version, O, A)
        if size is not None:
            if at != F.DW_AT_sibling:
                if form in (F.DW_FORM_data16, F.DW_FORM_ref_sig8) or size not in (1, 2, 3, 4, 8):
                    lines.append(f"T.append(({a}, {form}, d[p + {k}:p + {k + size}]))")
                else:
                    lines += _classify(at, a, form, _fixed_value(size, k))
            k += size
            continue
        flush()
        if form == F.DW_FORM_string:
            lines += ["q = d.index(0, p)", f"T.append(({a}, 's', d[p:q]))", "p = q + 1"]
        elif form == F.DW_FORM_sdata:
            lines.append("v, p = _sleb(d, p)")
            lines += _classify(at, a, form, "v")
        elif form in F.ULEB_FORMS:
            lines.append("w, p = _uleb(d, p)")
            if at != F.DW_AT_sibling:
                lines += _classify(at, a, form, "w")
        elif form in F.BLOCK_FORMS:
            lines += block_length_lines(form)
            lines += [f"T.append(({a}, {form}, d[p:p + n]))", "p += n"]
        else:
            raise DwarfError(f"cannot tokenise form 0x{form:x}")
    src = "def tok(d, p, c, T, A, K):\n" + "".join(f"    {ln}\n" for ln in lines) + "    return None\n"
    fn = _source_cache.get(src)
    if fn is None:
        exec(compile(src, "<dwarf-tokenizer>", "exec"), env)
        fn = _source_cache[src] = env["tok"]
    return fn  # type: ignore[return-value]


# Programs of the compiled tokenizer (linkplugin/merge/_hashcore.pyx): the same decisions as
# ``_build`` and ``_classify`` above, as data. Six ints per attribute: (op, attribute, form,
# size, class, implicit constant). Keep the two in step: the identity test compares them.
TOP_END, TOP_SKIP, TOP_FIXED, TOP_RAW, TOP_STRING, TOP_SDATA, TOP_ULEB, TOP_BLOCK, TOP_IMPLICIT, TOP_FLAGP = range(10)
(C_SKIP, C_UREF, C_REFADDR, C_STRP, C_STRX, C_LINESTRP, C_FILE, C_UINDEX, C_DATA, C_UDATA, C_SDATA, C_FLAG,
 C_OTHER) = range(13)
_BLOCK_LEN = {F.DW_FORM_block1: 1, F.DW_FORM_block2: 2, F.DW_FORM_block4: 4, F.DW_FORM_block: 0,
              F.DW_FORM_exprloc: 0}


def _value_class(at: int, form: int) -> tuple[int, int]:
    """(class, bits) of a value as ``_classify`` tokenises it."""
    if form in F.UNIT_REF_FORMS:
        return C_UREF, 0
    if form == F.DW_FORM_ref_addr:
        return C_REFADDR, 0
    if form == F.DW_FORM_strp:
        return C_STRP, 0
    if form == F.DW_FORM_line_strp:
        return C_LINESTRP, 0
    if form in F.STRX_FORMS:
        return C_STRX, 0
    if form in F.STR_FORMS:
        raise DwarfError(f"cannot tokenise string form 0x{form:x}")
    if at in _FILE_ATTRS and (form in _DATA_BITS or form == F.DW_FORM_udata):
        return C_FILE, 0
    if form in F.UNIT_INDEX_FORMS:
        return C_UINDEX, 0
    if form in _DATA_BITS:
        return C_DATA, _DATA_BITS[form] // 8
    if form == F.DW_FORM_udata:
        return C_UDATA, 0
    if form == F.DW_FORM_sdata:
        return C_SDATA, 0
    if form == F.DW_FORM_flag:
        return C_FLAG, 0
    return C_OTHER, 0


def hash_program(specs: tuple[AttrSpec, ...], version: int, O: int, A: int) -> list[int]:
    ops: list[int] = []
    for at, form, ic in specs:
        if form == F.DW_FORM_implicit_const:
            ops += (TOP_IMPLICIT, at, form, 0, C_FILE if at in _FILE_ATTRS else C_OTHER, ic)
            continue
        if form == F.DW_FORM_flag_present:
            ops += (TOP_FLAGP, at, form, 0, 0, 0)
            continue
        size = form_size(form, version, O, A)
        if size is not None:
            if at == F.DW_AT_sibling:
                ops += (TOP_SKIP, at, form, size, 0, 0)
            elif form in (F.DW_FORM_data16, F.DW_FORM_ref_sig8) or size not in (1, 2, 3, 4, 8):
                ops += (TOP_RAW, at, form, size, 0, 0)
            else:
                cls, bits = _value_class(at, form)
                ops += (TOP_FIXED, at, form, size, cls, 0)
            continue
        if form == F.DW_FORM_string:
            ops += (TOP_STRING, at, form, 0, 0, 0)
        elif form == F.DW_FORM_sdata:
            ops += (TOP_SDATA, at, form, 0, _value_class(at, form)[0], 0)
        elif form in F.ULEB_FORMS:
            ops += (TOP_ULEB, at, form, 0, C_SKIP if at == F.DW_AT_sibling else _value_class(at, form)[0], 0)
        elif form in F.BLOCK_FORMS:
            ops += (TOP_BLOCK, at, form, _BLOCK_LEN[form], 0, 0)
        else:
            raise DwarfError(f"cannot tokenise form 0x{form:x}")
    ops += (TOP_END, 0, 0, 0, 0, 0)
    return ops
