"""linkplugin: small, fast, deterministic debug information for linked ELF files."""

__version__ = "0.1.0"
# Bumped whenever the bytes linkplugin writes for the same input and settings
# change; part of every build-cache key.
FORMAT_VERSION = "14"  # 2: zstd shards of 4 MiB by default; 3: merge-types writes ref_udata in large units; 4: removes nothing from dwz output (partial units); 5: a .gdb_index input merges in gdb's index order, its index names canonical copies; 6: canonical copies avoid units that keep an ambiguous name; 7: and are not referenced from units gdb may expand first at 2 or 4 threads; 8: a typedef a using-declaration names stays in its unit; 9: ref2 in a unit of 64 KiB or more that drops enough to fit it; 10: DW_AT_high_pc as DW_FORM_udata; 11: DW_AT_GNU_entry_view too; 12: file names of line tables with over 4 KiB of directories read right (the types of their units hashed with garbage paths before); 13: rare entries of implicit constants written as data (one shared entry); 14: no DW_AT_specification or DW_AT_abstract_origin points to a later unit (binutils skips the units in between): the copy it names stays
