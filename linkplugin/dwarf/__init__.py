"""Fast DWARF decoding: abbreviations, unit headers, DIE arrays, expressions, line tables."""
