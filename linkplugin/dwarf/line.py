"""File tables of .debug_line headers (DWARF 2-5), to give DW_AT_decl_file a unit-independent value."""
from __future__ import annotations

from linkplugin.compiled import load_compiled
from linkplugin.dwarf import forms as F
from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.leb import read_uleb

_core = load_compiled("linkplugin.dwarf._parse")  # the same file names, parsed in C
DW_LNCT_path = 1
DW_LNCT_directory_index = 2


def file_names(line: bytes, off: int, *, strs: bytes, line_strs: bytes, comp_dir: bytes = b"") -> list[bytes | None]:
    """Full path of each file index of the line table at ``off`` (None where an index is unused),
    as a debugger shows it: relative directories are taken from the compilation directory (DWARF 5:
    directory 0; DWARF 2-4: the unit's DW_AT_comp_dir), so equal paths mean the same file."""
    if not isinstance(off, int):  # DW_AT_stmt_list in a block form (a damaged abbreviation)
        raise DwarfError("DW_AT_stmt_list is not a .debug_line offset")
    if _core is not None and line and isinstance(comp_dir, bytes):
        got = _core.file_names(line, off, strs, line_strs, comp_dir)
        if got is not None:
            return got
    try:
        return _file_names(line, off, strs, line_strs, comp_dir)
    except (IndexError, ValueError):
        raise DwarfError(f"truncated .debug_line header at 0x{off:x}") from None


def _cstr(d: bytes, p: int) -> tuple[bytes, int]:
    q = d.index(0, p)
    return d[p:q], q + 1


def _join(directory: bytes | None, name: bytes) -> bytes:
    if name.startswith(b"/") or not directory:
        return name
    return directory + b"/" + name


def _file_names(d: bytes, p: int, strs: bytes, line_strs: bytes, comp_dir: bytes) -> list[bytes | None]:
    off = p
    length = int.from_bytes(d[p:p + 4], "little")
    p += 4
    osize = 4
    if length == 0xFFFFFFFF:
        p += 8
        osize = 8
    version = int.from_bytes(d[p:p + 2], "little")
    p += 2
    if version >= 5:
        p += 2  # address_size, segment_selector_size
    p += osize  # header_length
    p += 1  # minimum_instruction_length
    if version >= 4:
        p += 1  # maximum_operations_per_instruction
    p += 3  # default_is_stmt, line_base, line_range
    opcode_base = d[p]
    p += opcode_base  # opcode_base itself and standard_opcode_lengths
    if version < 5:
        dirs: list[bytes] = [comp_dir]
        while d[p]:
            name, p = _cstr(d, p)
            dirs.append(_join(comp_dir, name))
        p += 1
        files: list[bytes | None] = [None]
        while d[p]:
            name, p = _cstr(d, p)
            di, p = read_uleb(d, p)
            _, p = read_uleb(d, p)
            _, p = read_uleb(d, p)
            files.append(_join(dirs[di] if di < len(dirs) else None, name))
        return files
    if version > 5:
        raise DwarfError(f"unsupported .debug_line version {version}")

    def entries(p: int) -> tuple[list[dict[int, object]], int]:
        nformats = d[p]
        p += 1
        fmts = []
        for _ in range(nformats):
            ct, p = read_uleb(d, p)
            form, p = read_uleb(d, p)
            fmts.append((ct, form))
        count, p = read_uleb(d, p)
        out = []
        for _ in range(count):
            entry: dict[int, object] = {}
            for ct, form in fmts:
                value: object
                if form == F.DW_FORM_string:
                    value, p = _cstr(d, p)
                elif form == F.DW_FORM_line_strp:
                    value = _cstr(line_strs, int.from_bytes(d[p:p + osize], "little"))[0]
                    p += osize
                elif form == F.DW_FORM_strp:
                    value = _cstr(strs, int.from_bytes(d[p:p + osize], "little"))[0]
                    p += osize
                elif form in (F.DW_FORM_udata,):
                    value, p = read_uleb(d, p)
                elif form in (F.DW_FORM_data1, F.DW_FORM_data2, F.DW_FORM_data4, F.DW_FORM_data8, F.DW_FORM_data16):
                    size = {F.DW_FORM_data1: 1, F.DW_FORM_data2: 2, F.DW_FORM_data4: 4, F.DW_FORM_data8: 8,
                            F.DW_FORM_data16: 16}[form]
                    value = int.from_bytes(d[p:p + size], "little")
                    p += size
                elif form == F.DW_FORM_block:
                    n, p = read_uleb(d, p)
                    value = d[p:p + n]
                    p += n
                else:
                    raise DwarfError(f"unsupported form 0x{form:x} in a .debug_line header")
                entry[ct] = value
            out.append(entry)
        return out, p

    dir_entries, p = entries(p)
    file_entries, p = entries(p)
    for e in dir_entries + file_entries:
        if not isinstance(e.get(DW_LNCT_path, b""), bytes):
            raise DwarfError(f".debug_line header at 0x{off:x} gives a path in a non-string form")
    dirs5 = [e.get(DW_LNCT_path, b"") for e in dir_entries]
    dirs5 = [_join(dirs5[0], x) if k else x for k, x in enumerate(dirs5)]  # type: ignore[arg-type]
    result: list[bytes | None] = []
    for e in file_entries:
        di = e.get(DW_LNCT_directory_index, 0)
        directory = dirs5[di] if isinstance(di, int) and di < len(dirs5) else None
        result.append(_join(directory, e.get(DW_LNCT_path, b"")))  # type: ignore[arg-type]
    return result
