"""LEB128 helpers for the cold paths (the hot decoder inlines the common case)."""
from __future__ import annotations


def read_uleb(d: bytes, p: int) -> tuple[int, int]:
    """(value, position after it)."""
    b = d[p]
    if b < 0x80:
        return b, p + 1
    v = b & 0x7F
    shift = 7
    while True:
        p += 1
        b = d[p]
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, p + 1
        shift += 7


def read_sleb(d: bytes, p: int) -> tuple[int, int]:
    v = 0
    shift = 0
    while True:
        b = d[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if b & 0x40:
                v -= 1 << shift
            return v, p


_ONE_BYTE = [bytes((v,)) for v in range(0x80)]


def encode_uleb(v: int, width: int = 0) -> bytes:
    """ULEB128 of ``v``; with ``width`` padded to exactly that many bytes (DWARF allows the
    redundant 0x80 continuation bytes), so an operand can be rewritten in place."""
    if 0 <= v < 0x80 and width <= 1:  # attribute and form numbers, small codes: most calls
        return _ONE_BYTE[v]
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v or len(out) + 1 < width:
            out.append(b | 0x80)
        else:
            out.append(b)
            break
    if width and len(out) != width:
        raise ValueError("value does not fit in the ULEB128 width")
    return bytes(out)


def encode_sleb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if (v == 0 and not b & 0x40) or (v == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def skip_leb(d: bytes, p: int) -> int:
    while d[p] & 0x80:
        p += 1
    return p + 1
