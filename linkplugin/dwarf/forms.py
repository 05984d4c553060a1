"""The DWARF constants the reader and the merger need (DWARF 2 to 5 plus GNU twins)."""
from __future__ import annotations

from linkplugin.errors import LinkpluginError


class DwarfError(LinkpluginError):
    """Input that cannot be decoded: the unit (or the file) is left as it is."""


# --- forms -----------------------------------------------------------------
DW_FORM_addr = 0x01
DW_FORM_block2 = 0x03
DW_FORM_block4 = 0x04
DW_FORM_data2 = 0x05
DW_FORM_data4 = 0x06
DW_FORM_data8 = 0x07
DW_FORM_string = 0x08
DW_FORM_block = 0x09
DW_FORM_block1 = 0x0A
DW_FORM_data1 = 0x0B
DW_FORM_flag = 0x0C
DW_FORM_sdata = 0x0D
DW_FORM_strp = 0x0E
DW_FORM_udata = 0x0F
DW_FORM_ref_addr = 0x10
DW_FORM_ref1 = 0x11
DW_FORM_ref2 = 0x12
DW_FORM_ref4 = 0x13
DW_FORM_ref8 = 0x14
DW_FORM_ref_udata = 0x15
DW_FORM_indirect = 0x16
DW_FORM_sec_offset = 0x17
DW_FORM_exprloc = 0x18
DW_FORM_flag_present = 0x19
DW_FORM_strx = 0x1A
DW_FORM_addrx = 0x1B
DW_FORM_ref_sup4 = 0x1C
DW_FORM_strp_sup = 0x1D
DW_FORM_data16 = 0x1E
DW_FORM_line_strp = 0x1F
DW_FORM_ref_sig8 = 0x20
DW_FORM_implicit_const = 0x21
DW_FORM_loclistx = 0x22
DW_FORM_rnglistx = 0x23
DW_FORM_ref_sup8 = 0x24
DW_FORM_strx1 = 0x25
DW_FORM_strx2 = 0x26
DW_FORM_strx3 = 0x27
DW_FORM_strx4 = 0x28
DW_FORM_addrx1 = 0x29
DW_FORM_addrx2 = 0x2A
DW_FORM_addrx3 = 0x2B
DW_FORM_addrx4 = 0x2C
DW_FORM_GNU_addr_index = 0x1F01
DW_FORM_GNU_str_index = 0x1F02
DW_FORM_GNU_ref_alt = 0x1F20
DW_FORM_GNU_strp_alt = 0x1F21

# Sizes that do not depend on the unit; 'A' = address size, 'O' = offset size.
FIXED_SIZE: dict[int, int | str] = {
    DW_FORM_addr: "A",
    DW_FORM_data1: 1, DW_FORM_ref1: 1, DW_FORM_flag: 1, DW_FORM_strx1: 1, DW_FORM_addrx1: 1,
    DW_FORM_data2: 2, DW_FORM_ref2: 2, DW_FORM_strx2: 2, DW_FORM_addrx2: 2,
    DW_FORM_strx3: 3, DW_FORM_addrx3: 3,
    DW_FORM_data4: 4, DW_FORM_ref4: 4, DW_FORM_strx4: 4, DW_FORM_addrx4: 4, DW_FORM_ref_sup4: 4,
    DW_FORM_data8: 8, DW_FORM_ref8: 8, DW_FORM_ref_sig8: 8, DW_FORM_ref_sup8: 8,
    DW_FORM_data16: 16,
    DW_FORM_strp: "O", DW_FORM_line_strp: "O", DW_FORM_sec_offset: "O", DW_FORM_strp_sup: "O",
    DW_FORM_GNU_ref_alt: "O", DW_FORM_GNU_strp_alt: "O",
    DW_FORM_flag_present: 0, DW_FORM_implicit_const: 0,
}
ULEB_FORMS = frozenset({DW_FORM_udata, DW_FORM_ref_udata, DW_FORM_strx, DW_FORM_addrx, DW_FORM_loclistx,
                        DW_FORM_rnglistx, DW_FORM_GNU_addr_index, DW_FORM_GNU_str_index})
BLOCK_FORMS = frozenset({DW_FORM_block1, DW_FORM_block2, DW_FORM_block4, DW_FORM_block, DW_FORM_exprloc})
# References to a DIE of the same unit (value is unit-relative) and to any DIE of .debug_info.
UNIT_REF_FORMS = frozenset({DW_FORM_ref1, DW_FORM_ref2, DW_FORM_ref4, DW_FORM_ref8, DW_FORM_ref_udata})
REF_FORMS = UNIT_REF_FORMS | {DW_FORM_ref_addr}
STR_FORMS = frozenset({DW_FORM_string, DW_FORM_strp, DW_FORM_line_strp, DW_FORM_strx, DW_FORM_strx1,
                       DW_FORM_strx2, DW_FORM_strx3, DW_FORM_strx4, DW_FORM_GNU_str_index})
STRX_FORMS = frozenset({DW_FORM_strx, DW_FORM_strx1, DW_FORM_strx2, DW_FORM_strx3, DW_FORM_strx4,
                        DW_FORM_GNU_str_index})
# Values that only mean something inside their own unit (indexes into per-unit tables).
UNIT_INDEX_FORMS = frozenset({DW_FORM_addrx, DW_FORM_addrx1, DW_FORM_addrx2, DW_FORM_addrx3, DW_FORM_addrx4,
                              DW_FORM_GNU_addr_index, DW_FORM_loclistx, DW_FORM_rnglistx})
# The forms' rows in the compiled kernels' template tables (_forms.pxd, the same in C): the DWARF
# forms 0 to 0x2c, then the GNU ones 0x1f00 to 0x1f2f; every other form has none.
TEMPLATE_FORMS = (*range(0x2D), *range(0x1F00, 0x1F30))
TPL_SLOTS = len(TEMPLATE_FORMS)


def form_slot(form: int) -> int:
    """The row of a form of TEMPLATE_FORMS."""
    return form if form < 0x2D else form - 0x1F00 + 0x2D


# --- tags ------------------------------------------------------------------
DW_TAG_array_type = 0x01
DW_TAG_class_type = 0x02
DW_TAG_entry_point = 0x03
DW_TAG_enumeration_type = 0x04
DW_TAG_formal_parameter = 0x05
DW_TAG_imported_declaration = 0x08
DW_TAG_label = 0x0A
DW_TAG_lexical_block = 0x0B
DW_TAG_member = 0x0D
DW_TAG_pointer_type = 0x0F
DW_TAG_reference_type = 0x10
DW_TAG_compile_unit = 0x11
DW_TAG_string_type = 0x12
DW_TAG_structure_type = 0x13
DW_TAG_subroutine_type = 0x15
DW_TAG_typedef = 0x16
DW_TAG_union_type = 0x17
DW_TAG_variant = 0x19
DW_TAG_inheritance = 0x1C
DW_TAG_inlined_subroutine = 0x1D
DW_TAG_ptr_to_member_type = 0x1F
DW_TAG_set_type = 0x20
DW_TAG_subrange_type = 0x21
DW_TAG_base_type = 0x24
DW_TAG_const_type = 0x26
DW_TAG_constant = 0x27
DW_TAG_enumerator = 0x28
DW_TAG_file_type = 0x29
DW_TAG_packed_type = 0x2D
DW_TAG_subprogram = 0x2E
DW_TAG_variable = 0x34
DW_TAG_volatile_type = 0x35
DW_TAG_restrict_type = 0x37
DW_TAG_interface_type = 0x38
DW_TAG_namespace = 0x39
DW_TAG_unspecified_type = 0x3B
DW_TAG_partial_unit = 0x3C
DW_TAG_imported_unit = 0x3D
DW_TAG_shared_type = 0x40
DW_TAG_type_unit = 0x41
DW_TAG_rvalue_reference_type = 0x42
DW_TAG_coarray_type = 0x44
DW_TAG_generic_subrange = 0x45
DW_TAG_dynamic_type = 0x46
DW_TAG_atomic_type = 0x47
DW_TAG_immutable_type = 0x4B
DW_TAG_skeleton_unit = 0x4A

# Tags whose DIEs at unit or namespace level are merged (with all their children).
TYPE_TAGS = frozenset({
    DW_TAG_array_type, DW_TAG_class_type, DW_TAG_enumeration_type, DW_TAG_pointer_type,
    DW_TAG_reference_type, DW_TAG_string_type, DW_TAG_structure_type, DW_TAG_subroutine_type,
    DW_TAG_typedef, DW_TAG_union_type, DW_TAG_ptr_to_member_type, DW_TAG_set_type,
    DW_TAG_subrange_type, DW_TAG_base_type, DW_TAG_const_type, DW_TAG_file_type, DW_TAG_packed_type,
    DW_TAG_volatile_type, DW_TAG_restrict_type, DW_TAG_unspecified_type, DW_TAG_shared_type,
    DW_TAG_rvalue_reference_type, DW_TAG_coarray_type, DW_TAG_dynamic_type, DW_TAG_atomic_type,
    DW_TAG_immutable_type,
})
# Tags merged at unit or namespace level only when they are declarations (DW_AT_declaration).
DECL_TAGS = frozenset({DW_TAG_subprogram, DW_TAG_variable})

# --- attributes ------------------------------------------------------------
DW_AT_sibling = 0x01
DW_AT_location = 0x02
DW_AT_name = 0x03
DW_AT_byte_size = 0x0B
DW_AT_stmt_list = 0x10
DW_AT_low_pc = 0x11
DW_AT_high_pc = 0x12
DW_AT_GNU_entry_view = 0x2138
DW_AT_language = 0x13
DW_AT_comp_dir = 0x1B
DW_AT_string_length = 0x19
DW_AT_return_addr = 0x2A
DW_AT_declaration = 0x3C
DW_AT_abstract_origin = 0x31
DW_AT_specification = 0x47
DW_AT_external = 0x3F
DW_AT_data_member_location = 0x38
DW_AT_decl_file = 0x3A
DW_AT_frame_base = 0x40
DW_AT_segment = 0x46
DW_AT_static_link = 0x48
DW_AT_type = 0x49
DW_AT_use_location = 0x4A
DW_AT_vtable_elem_location = 0x4D
DW_AT_signature = 0x69
DW_AT_str_offsets_base = 0x72
DW_AT_addr_base = 0x73
DW_AT_rnglists_base = 0x74
DW_AT_dwo_name = 0x76
DW_AT_loclists_base = 0x8C
DW_AT_GNU_dwo_name = 0x2130
DW_AT_GNU_dwo_id = 0x2131
DW_AT_GNU_locviews = 0x2137

# Attributes whose loclistptr / block value is a location description or DWARF expression.
LOCATION_ATTRS = frozenset({DW_AT_location, DW_AT_string_length, DW_AT_return_addr, DW_AT_data_member_location,
                            DW_AT_frame_base, DW_AT_segment, DW_AT_static_link, DW_AT_use_location,
                            DW_AT_vtable_elem_location})
# Attributes whose block value is a DWARF expression (others, like DW_AT_const_value, are raw data).
EXPR_BLOCK_ATTRS = LOCATION_ATTRS | frozenset({
    0x22, 0x2F, 0x37,  # lower_bound, upper_bound, count
    0x4E, 0x4F, 0x50, 0x51,  # allocated, associated, data_location, byte_stride
    0x2111, 0x2112, 0x2113, 0x2114,  # GNU_call_site_value, _data_value, _target, _target_clobbered
    0x7E, 0x7F, 0x80, 0x81, 0x82,  # call_value, call_data_location, call_data_value, call_target, _clobbered
})

# --- unit types ------------------------------------------------------------
DW_UT_compile = 0x01
DW_UT_type = 0x02
DW_UT_partial = 0x03
DW_UT_skeleton = 0x04
DW_UT_split_compile = 0x05
DW_UT_split_type = 0x06

# DW_LANG_C_plus_plus, _03, _11, _14: the languages gdb reads as C++
CPP_LANGUAGES = frozenset({0x04, 0x19, 0x1A, 0x21})
