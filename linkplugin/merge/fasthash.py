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
               namespaces: list[tuple], sccs: Callable, finish_scc: Callable
               ) -> tuple[list[bytes], list[bytes | None]] | None:
    """(hashes, name keys) of the unit's roots, or None (the pure path then runs).

    ``prefixes[k]``: the marshalled per-root context tokens; ``file_token``: the pure path's
    ``_RefCtx.file``; ``sccs``/``finish_scc``: the pure path's SCC order and SCC numbering."""
    if _core is None:
        return None
    hdr = ud.hdr
    secs = env.secs  # type: ignore[attr-defined]
    ops, start, heads = _tables(ud)
    so_base = env.str_offsets_base  # type: ignore[attr-defined]
    got = _core.tokenize(info, hdr.off, hdr.end, np.asarray(ud.offs, dtype=np.int64),
                         np.asarray(ud.codes, dtype=np.int64), np.asarray(ud.parent, dtype=np.int64),
                         roots, root_ends, root_of, ops, start, heads, secs.get(".debug_str", b""),
                         secs.get(".debug_str_offsets", b""), so_base, hdr.offset_size,
                         secs.get(".debug_line_str", b""),
                         lambda at, v: marshal.dumps(file_token(at, v), 2))
    if got is None:
        return None
    stream, rstart, rpos, rown, edges, names_at = got
    n = len(roots)
    rs = rstart.tolist()
    # R tokens of each root, in stream order
    rtoks: list[list[int]] = [[] for _ in range(n)]
    for pos, k in zip(rpos, rown):
        rtoks[k].append(pos)

    def body(k: int, replace: Callable[[int], bytes]) -> bytes:
        """Root ``k``'s tokens with each 'R' + root number replaced by ``replace(root)``."""
        s, e = rs[k], rs[k + 1]
        if not rtoks[k]:
            return prefixes[k] + stream[s:e]
        parts = [prefixes[k]]
        for pos in rtoks[k]:
            parts.append(stream[s:pos])
            parts.append(replace(int.from_bytes(stream[pos + 1:pos + 5], "little")))
            s = pos + 5
        parts.append(stream[s:e])
        return b"".join(parts)

    hashes: list[bytes] = [b""] * n
    for scc in sccs(edges):
        if len(scc) == 1:
            k = scc[0]
            hashes[k] = _blake(body(k, lambda s: b"T" + hashes[s]))
        else:
            members = set(scc)
            local = {k: _blake(body(k, lambda s: b"C" if s in members else b"T" + hashes[s])) for k in scc}
            finish_scc(scc, local, edges, hashes)
    names: list[bytes | None] = []
    for k, (ns, ne, fs, fe) in enumerate(names_at.tolist()):
        names.append(_blake(marshal.dumps((namespaces[k], stream[ns:ne], stream[fs:fe] if fs >= 0 else None), 2))
                     if ns >= 0 else None)
    return hashes, names


def available() -> bool:
    return _core is not None


__all__ = ["available", "hash_roots"]
