"""The hash phase's compiled path: ``_hashcore.tokenize`` writes every root's tokens as one byte
stream in C; this module digests them exactly as ``hash._hash_roots`` digests its token lists.

The pure path (``hash._hash_roots`` with ``tokens.py``) is the reference: the two give different
hash values but the same equalities, hence the same merge and the same output bytes (a test runs
both). ``hash_roots`` returns None when the compiled core is missing or declines the unit.
"""
from __future__ import annotations

import hashlib
import marshal
from typing import Callable

import numpy as np

from linkplugin.compiled import load_compiled
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.leb import encode_uleb
from linkplugin.dwarf.read import UnitDies
from linkplugin.merge.tokens import hash_program

_core = load_compiled("linkplugin.merge._hashcore")
_programs: dict[tuple, list[int]] = {}


def _blake(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _tables(ud: UnitDies) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """(ops, start by code, head bytes by code) of the unit's abbreviations."""
    hdr = ud.hdr
    size = max(ud.abbrevs, default=0) + 1
    start = np.full(size, -1, dtype=np.int64)
    heads = [b""] * size
    ops: list[int] = []
    at_of: dict[bytes, int] = {}
    for code, ab in ud.abbrevs.items():
        key = (ab.raw, hdr.version, hdr.offset_size, hdr.addr_size)
        prog = _programs.get(key)
        if prog is None:
            if len(_programs) > 8192:
                _programs.clear()
            prog = _programs[key] = hash_program(ab.specs, hdr.version, hdr.offset_size, hdr.addr_size)
        at = at_of.get(ab.raw)
        if at is None:
            at = at_of[ab.raw] = len(ops)
            ops += prog
        start[code] = at
        heads[code] = b"H" + encode_uleb(ab.tag) + (b"\1" if ab.children else b"\0")
    return np.array(ops, dtype=np.int64), start, heads


def hash_roots(info: bytes, ud: UnitDies, env: object, roots: np.ndarray, root_ends: np.ndarray,
               root_of: np.ndarray, prefixes: list[bytes], file_token: Callable[[int, int], tuple],
               namespaces: list[tuple], finish_scc: Callable) -> tuple[list[bytes], list[bytes | None]] | None:
    """(hashes, name keys) of the unit's roots, or None (the pure path then runs).

    ``prefixes[k]``: the marshalled per-root context tokens; ``file_token``: the pure path's
    ``_RefCtx.file``; ``finish_scc``: the pure path's numbering of a cycle's members."""
    if _core is None:
        return None
    hdr = ud.hdr
    secs = env.secs  # type: ignore[attr-defined]
    ops, start, heads = _tables(ud)
    so_base = env.str_offsets_base  # type: ignore[attr-defined]
    offs, codes, parent, _ = ud.arrays()
    got = _core.tokenize(info, hdr.off, hdr.end, offs, codes, parent, roots, root_ends, root_of, ops, start, heads, secs.get(".debug_str", b""),
                         secs.get(".debug_str_offsets", b""), so_base, hdr.offset_size,
                         secs.get(".debug_line_str", b""),
                         lambda at, v: marshal.dumps(file_token(at, v), 2))
    if got is None:
        return None
    stream, rstart, rpos, rown, edges, spans = got
    hashes = _core.digest_roots(stream, rstart, rpos, rown, prefixes, edges, _blake, finish_scc)
    # Name keys laid out as hash._name_key makes them (16-byte digest of namespaces, name and
    # file tokens; then 1 for a typedef, or 0 and a digest of the decl_line token).
    names: list[bytes | None] = []
    codes, root_l = ud.codes, roots.tolist()
    for k, (ns, ne, fs, fe, ls, le) in enumerate(spans.tolist()):
        if ns < 0:
            names.append(None)
            continue
        key = _blake(marshal.dumps((namespaces[k], stream[ns:ne], stream[fs:fe] if fs >= 0 else None), 2))
        if ud.abbrevs[codes[root_l[k]]].tag == F.DW_TAG_typedef:
            names.append(key + b"\1")
        else:
            names.append(key + b"\0" + _blake(stream[ls:le] if ls >= 0 else b"none"))
    return hashes, names


def available() -> bool:
    return _core is not None


__all__ = ["available", "hash_roots"]
