"""DWARF expressions: find the operands that name a DIE.

Most expressions name no DIE, so callers first run ``might_ref`` (is any byte of it one of the
opcodes that can?); only then is the expression parsed operation by operation. A found operand is
reported as ``(position, width, kind, value)`` where kind is ``'u'`` (unit-relative ULEB128),
``'f'`` (unit-relative fixed width) or ``'s'`` (offset into .debug_info).
"""
from __future__ import annotations

from linkplugin.compiled import load_compiled
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_uleb, skip_leb

# Opcodes whose operands name a DIE (DWARF 5 and the GNU twins), plus call2/call4.
REF_OPS = b"\x98\x99\x9a\xa0\xa4\xa5\xa6\xa7\xa8\xa9\xf2\xf4\xf5\xf6\xf7\xf9\xfa\xfd"
_NOT_REF_OPS = bytes(b for b in range(256) if b not in REF_OPS)


def might_ref(d: bytes, start: int, end: int) -> bool:
    """Whether any byte of ``d[start:end]`` is one of REF_OPS (a byte filter rather than a
    regex: importing ``re`` is 3 ms of every merge's start)."""
    return bool(d[start:end].translate(None, _NOT_REF_OPS))


# Operand layouts of the operations that name no DIE: a string of 'u' uleb, 's' sleb, digits =
# fixed bytes, 'A' address, 'O' offset. Anything not listed is unknown and refused.
_SIMPLE: dict[int, str] = {0x03: "A", 0x06: "", 0x08: "1", 0x09: "1", 0x0A: "2", 0x0B: "2", 0x0C: "4",
                           0x0D: "4", 0x0E: "8", 0x0F: "8", 0x10: "u", 0x11: "s", 0x15: "1", 0x23: "u",
                           0x28: "2", 0x2F: "2", 0x90: "u", 0x91: "s", 0x92: "us", 0x93: "u", 0x94: "1",
                           0x95: "1", 0x96: "", 0x97: "", 0x9B: "", 0x9C: "", 0x9D: "uu", 0x9F: "",
                           0xA1: "u", 0xA2: "u", 0xE0: "", 0xF0: "", 0xFB: "u", 0xFC: "u"}
for _op in list(range(0x12, 0x15)) + list(range(0x16, 0x23)) + list(range(0x24, 0x28)) + \
        list(range(0x29, 0x2F)) + list(range(0x30, 0x70)):
    _SIMPLE[_op] = ""
for _op in range(0x70, 0x90):
    _SIMPLE[_op] = "s"


def scan_expr(d: bytes, p: int, end: int, addr_size: int, offset_size: int, version: int
              ) -> list[tuple[int, int, str, int]]:
    """The DIE-naming operands of the expression ``d[p:end]``; DwarfError if it cannot be parsed."""
    if _core is not None:
        got = _core.scan_expr(d, p, end, addr_size, offset_size, version)
        if got is not None:
            return got
    return _scan_expr(d, p, end, addr_size, offset_size, version)


def _scan_expr(d: bytes, p: int, end: int, addr_size: int, offset_size: int, version: int
               ) -> list[tuple[int, int, str, int]]:
    out: list[tuple[int, int, str, int]] = []
    try:
        while p < end:
            op = d[p]
            p += 1
            spec = _SIMPLE.get(op)
            if spec is not None:
                for c in spec:
                    if c == "u" or c == "s":
                        p = skip_leb(d, p)
                    elif c == "A":
                        p += addr_size
                    elif c == "O":
                        p += offset_size
                    else:
                        p += int(c)
                continue
            if op == 0x98 or op == 0x99:  # call2, call4
                w = 2 if op == 0x98 else 4
                out.append((p, w, "f", int.from_bytes(d[p:p + w], "little")))
                p += w
            elif op == 0xFA:  # GNU_parameter_ref
                out.append((p, 4, "f", int.from_bytes(d[p:p + 4], "little")))
                p += 4
            elif op in (0x9A, 0xFD):  # call_ref, GNU_variable_value
                w = offset_size if version > 2 else addr_size
                out.append((p, w, "s", int.from_bytes(d[p:p + w], "little")))
                p += w
            elif op in (0xA0, 0xF2):  # implicit_pointer
                w = offset_size if version > 2 else addr_size
                out.append((p, w, "s", int.from_bytes(d[p:p + w], "little")))
                p = skip_leb(d, p + w)
            elif op in (0xA3, 0xF3):  # entry_value: a nested expression
                n, p = read_uleb(d, p)
                out.extend(_scan_expr(d, p, p + n, addr_size, offset_size, version))
                p += n
            elif op in (0xA4, 0xF4):  # const_type: type, size, bytes
                q = skip_leb(d, p)
                v, _ = read_uleb(d, p)
                out.append((p, q - p, "u", v))
                p = q + 1 + d[q]
            elif op in (0xA5, 0xF5):  # regval_type: register, type
                p = skip_leb(d, p)
                q = skip_leb(d, p)
                v, _ = read_uleb(d, p)
                out.append((p, q - p, "u", v))
                p = q
            elif op in (0xA6, 0xF6, 0xA7):  # deref_type, xderef_type: size, type
                p += 1
                q = skip_leb(d, p)
                v, _ = read_uleb(d, p)
                out.append((p, q - p, "u", v))
                p = q
            elif op in (0xA8, 0xF7, 0xA9, 0xF9):  # convert, reinterpret (0 = the generic type)
                q = skip_leb(d, p)
                v, _ = read_uleb(d, p)
                if v:
                    out.append((p, q - p, "u", v))
                p = q
            elif op == 0x9E:  # implicit_value
                n, p = read_uleb(d, p)
                p += n
            else:
                raise DwarfError(f"unknown DWARF expression operation 0x{op:02x}")
    except IndexError:
        raise DwarfError("truncated DWARF expression") from None
    if p != end:
        raise DwarfError("DWARF expression overruns its block")
    return out



# The compiled twin (dwarf/_loclists.pyx): the same operands, or None where this code decides.
_core = load_compiled("linkplugin.dwarf._loclists")
if _core is not None:
    _core._init(_SIMPLE, REF_OPS)
