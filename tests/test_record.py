"""The plain records that replaced dataclasses on the command's start-up path keep what callers
relied on: keyword and positional construction, defaults, repr and == by fields, hashing of the
values, and a report's fields in ``vars`` (a split's report is made from the merge's)."""
from __future__ import annotations

import pytest

from linkplugin.api import MergeReport, SectionInfo, SplitReport
from linkplugin.compress.codec import Plain, Settings
from linkplugin.elf.write import Replacement
from linkplugin.errors import LinkpluginError


def test_values_compare_and_hash_by_their_fields() -> None:
    assert Settings() == Settings("zlib", 6) == Settings(codec="zlib", level=6, shard_size=1 << 20)
    assert Settings("zstd") != Settings("zlib")
    assert len({Settings(), Settings("zlib", 6), Settings("zstd")}) == 2
    assert repr(Settings("zstd")) == "Settings(codec='zstd', level=3, shard_size=4194304)"
    assert Plain(3, data=b"x") == Plain(3, None, 0, b"x", None)
    with pytest.raises(LinkpluginError):
        Settings("lz4")


def test_records_keep_mutable_fields_of_their_own() -> None:
    a, b = Replacement(b"x"), Replacement(b"x")
    a.header["sh_flags"] = 1
    assert b.header == {} and a != b
    with pytest.raises(TypeError):
        hash(a)
    info = SectionInfo(1, ".debug_info", 3, 4, "none", False)
    assert info == SectionInfo(1, ".debug_info", 3, 4, "none", False) and info != (1, ".debug_info")


def test_split_report_made_from_a_merge_report() -> None:
    merged = MergeReport(before=[SectionInfo(1, ".debug_info", 3, 4, "none", False)])
    merged.stats, merged.warnings = {"units": 2}, ["w"]
    split = SplitReport(**vars(merged))
    split.debug_file = "x.debug"
    assert (split.before, split.after, split.stats, split.warnings) == (merged.before, [], {"units": 2}, ["w"])
    assert "debug_file='x.debug'" in repr(split) and MergeReport().before == []
