"""The per-tag DIE table of ``merge-types --stats``: where the DIEs (and the bytes) are."""
from __future__ import annotations

# DWARF 5 (section 7.5.3) and the GNU tags compilers emit.
TAG_NAMES = {
    0x01: "array_type", 0x02: "class_type", 0x03: "entry_point", 0x04: "enumeration_type",
    0x05: "formal_parameter", 0x08: "imported_declaration", 0x0A: "label", 0x0B: "lexical_block",
    0x0D: "member", 0x0F: "pointer_type", 0x10: "reference_type", 0x11: "compile_unit",
    0x12: "string_type", 0x13: "structure_type", 0x15: "subroutine_type", 0x16: "typedef",
    0x17: "union_type", 0x18: "unspecified_parameters", 0x19: "variant", 0x1A: "common_block",
    0x1B: "common_inclusion", 0x1C: "inheritance", 0x1D: "inlined_subroutine", 0x1E: "module",
    0x1F: "ptr_to_member_type", 0x20: "set_type", 0x21: "subrange_type", 0x22: "with_stmt",
    0x23: "access_declaration", 0x24: "base_type", 0x25: "catch_block", 0x26: "const_type",
    0x27: "constant", 0x28: "enumerator", 0x29: "file_type", 0x2A: "friend", 0x2B: "namelist",
    0x2C: "namelist_item", 0x2D: "packed_type", 0x2E: "subprogram", 0x2F: "template_type_parameter",
    0x30: "template_value_parameter", 0x31: "thrown_type", 0x32: "try_block", 0x33: "variant_part",
    0x34: "variable", 0x35: "volatile_type", 0x36: "dwarf_procedure", 0x37: "restrict_type",
    0x38: "interface_type", 0x39: "namespace", 0x3A: "imported_module", 0x3B: "unspecified_type",
    0x3C: "partial_unit", 0x3D: "imported_unit", 0x3F: "condition", 0x40: "shared_type",
    0x41: "type_unit", 0x42: "rvalue_reference_type", 0x43: "template_alias", 0x44: "coarray_type",
    0x45: "generic_subrange", 0x46: "dynamic_type", 0x47: "atomic_type", 0x48: "call_site",
    0x49: "call_site_parameter", 0x4A: "skeleton_unit", 0x4B: "immutable_type",
    0x4106: "GNU_template_template_param", 0x4107: "GNU_template_parameter_pack",
    0x4108: "GNU_formal_parameter_pack", 0x4109: "GNU_call_site", 0x410A: "GNU_call_site_parameter",
}


def tag_name(tag: int) -> str:
    name = TAG_NAMES.get(tag)
    return f"DW_TAG_{name}" if name else f"DW_TAG_0x{tag:x}"


def tag_table(tags: dict[int, tuple[int, int]]) -> list[str]:
    """Lines of a table of DIEs by tag, before and after merging, the most removed first."""
    lines = [f"{'tag':<34} {'input':>9} {'output':>9}"]
    for tag, (before, after) in sorted(tags.items(), key=lambda kv: (kv[1][1] - kv[1][0], kv[0])):
        lines.append(f"{tag_name(tag):<34} {before:>9} {after:>9}")
    lines.append(f"{'total':<34} {sum(b for b, _ in tags.values()):>9} {sum(a for _, a in tags.values()):>9}")
    return lines
