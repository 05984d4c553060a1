"""Name and address indexes that hold .debug_info offsets, rebuilt for a merged .debug_info.

.gdb_index, .debug_names and the pubnames/pubtypes sections (plain and GNU)
all point at units and DIEs by offset; after type merging those offsets move.
Each is rewritten for the new offsets, or, where this module cannot rebuild
it, dropped with a warning: never left pointing at the old offsets.
"""
from __future__ import annotations

import struct
from collections.abc import Callable

from linkplugin.dwarf.forms import DwarfError
from linkplugin.dwarf.units import UnitHeader, parse_units
from linkplugin.lazy import np
from linkplugin.record import Record

PUBNAMES = {".debug_pubnames": False, ".debug_pubtypes": False,
            ".debug_gnu_pubnames": True, ".debug_gnu_pubtypes": True}
INDEX_SECTIONS = (".debug_names", ".gdb_index", *PUBNAMES)


class CannotRebuild(ValueError):
    """An index this module cannot rewrite (a version or form it does not know, or inconsistent)."""


class Rebuilt(Record):
    __slots__ = ("replace", "drop", "warnings")

    def __init__(self) -> None:
        self.replace: dict[str, bytes] = {}
        self.drop: list[str] = []
        self.warnings: list[str] = []


def rebuild_indexes(sections: dict[str, bytes], new_info: bytes, old_units: list[UnitHeader],
                    new_unit_off: list[int], resolve: Callable[[np.ndarray], np.ndarray],
                    changed: set[str] = frozenset(), moved: dict[int, dict[str, tuple[int, ...]]] | None = None,
                    split: frozenset[int] = frozenset()) -> Rebuilt:
    """New contents of the index sections of ``sections`` for ``new_info``.

    ``old_units[k]`` starts at ``new_unit_off[k]`` in ``new_info``;
    ``resolve`` maps old .debug_info DIE offsets (an array) to new ones;
    ``changed`` names the other sections the merge rewrote (.debug_names
    points into .debug_str); ``moved``: see ``gdb_index.rewrite``; ``split``: the old offsets
    of the split-DWARF skeleton units (``pubnames.rewrite``).
    """
    result = Rebuilt()
    present = [name for name in INDEX_SECTIONS if name in sections]
    if not present:
        return result
    from linkplugin.index import debug_names, gdb_index, pubnames  # ~1.5 ms: only for a file with an index

    new_units = parse_units(new_info)
    new_off_of = {u.off: new_unit_off[k] for k, u in enumerate(old_units)}
    for name in present:
        try:
            if name == ".gdb_index":
                data = gdb_index.rewrite(sections[name], old_units, new_units, new_off_of, new_info=new_info,
                                         moved=moved)
            elif name == ".debug_names":
                if ".debug_str" in changed:
                    raise CannotRebuild(".debug_str changed")
                data = debug_names.rewrite(sections[name], sections.get(".debug_str", b""), old_units, new_units,
                                           resolve)
            else:
                data = pubnames.rewrite(sections[name], PUBNAMES[name], old_units, new_units, new_off_of, resolve,
                                        split)
        except (CannotRebuild, DwarfError, struct.error, IndexError) as error:
            result.drop.append(name)
            result.warnings.append(f"{name} dropped: it indexes .debug_info offsets and cannot be rebuilt ({error})")
            continue
        result.replace[name] = data
    return result

