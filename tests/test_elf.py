"""The ELF writer on its own: what it keeps, what it moves, what it removes."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
from conftest import debug_sections, run
from elftools.elf.elffile import ELFFile

from linkplugin.elf.read import ElfImage
from linkplugin.elf.write import Replacement, write_elf
from linkplugin.errors import LinkpluginError


def sections(path: Path) -> dict[str, tuple]:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        return {s.name: (s["sh_type"], s["sh_flags"], s["sh_addr"], s["sh_offset"] if s["sh_flags"] & 2 else None,
                         s.data() if s["sh_type"] != "SHT_NOBITS" else b"") for s in elf.iter_sections()}


def test_copy_without_changes_reads_the_same(cxx_program: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    with ElfImage(cxx_program) as image:
        write_elf(image, out, {})
    assert sections(out) == sections(cxx_program)
    assert run("readelf", "-lW", out).stdout == run("readelf", "-lW", cxx_program).stdout
    assert run(out).stdout == run(cxx_program).stdout


@pytest.mark.parametrize("refusal", ["EXDEV", "ENOSYS", "partial", "missing"])
def test_kept_bytes_the_same_when_the_kernel_cannot_copy_them(cxx_program: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, refusal: str) -> None:
    """Unchanged bytes go file to file (copy_file_range); where the system refuses (another file
    system, an old kernel, a platform without it) or stops short, the writer writes them itself."""
    with ElfImage(cxx_program) as image:
        write_elf(image, tmp_path / "kernel", {})
    real = getattr(os, "copy_file_range", None)

    def refuse(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        if refusal == "partial" and real is not None:
            return real(src, dst, min(count, 100), offset_src, offset_dst)
        if refusal == "partial":
            return 0
        raise OSError(getattr(errno, refusal), os.strerror(getattr(errno, refusal)))

    if refusal == "missing":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    else:
        monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    with ElfImage(cxx_program) as image:
        write_elf(image, tmp_path / "python", {})
    assert (tmp_path / "python").read_bytes() == (tmp_path / "kernel").read_bytes()
    assert sections(tmp_path / "python") == sections(cxx_program)


@pytest.mark.parametrize("exchange", ["built", "refused", "missing"])
def test_output_over_an_existing_file(cxx_program: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      exchange: str) -> None:
    """An output written over an existing file replaces it as a rename would (the names swapped in
    one step where the system can, else renamed): the new bytes and mode under the name, no file
    left under another name, another link to the old file and a symlink's target untouched, a
    folder refused."""
    swapped = []
    if exchange != "missing":
        libc = pytest.importorskip("linkplugin._libc", reason="the compiled core is not built")
    if exchange == "built":
        real = libc.exchange

        def spy(a: str, b: str) -> None:
            swapped.append(os.path.basename(b))
            real(a, b)
        monkeypatch.setattr(libc, "exchange", spy)
    elif exchange == "refused":
        def refuse(a: str, b: str) -> None:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), a, None, b)
        monkeypatch.setattr(libc, "exchange", refuse)
    elif exchange == "missing":
        monkeypatch.setitem(sys.modules, "linkplugin._libc", None)
    with ElfImage(cxx_program) as image:
        write_elf(image, tmp_path / "expected", {})
    expected = (tmp_path / "expected").read_bytes()
    out, other = tmp_path / "out", tmp_path / "other-link"
    out.write_bytes(b"old")
    out.chmod(0o600)
    os.link(out, other)
    target = tmp_path / "target"
    target.write_bytes(b"target")
    (tmp_path / "symlink").symlink_to(target)
    (tmp_path / "folder").mkdir()
    for name in ["out", "symlink", "new"]:
        with ElfImage(cxx_program) as image:
            write_elf(image, tmp_path / name, {})
        assert (tmp_path / name).read_bytes() == expected
        assert not (tmp_path / name).is_symlink()
        assert (tmp_path / name).stat().st_mode & 0o777 == cxx_program.stat().st_mode & 0o777
    with ElfImage(cxx_program) as image, pytest.raises(LinkpluginError, match="cannot write"):
        write_elf(image, tmp_path / "folder", {})
    assert other.read_bytes() == b"old" and target.read_bytes() == b"target"
    assert swapped == (["out"] if exchange == "built" else [])  # only over a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected", "folder", "new", "other-link", "out",
                                                         "symlink", "target"]


def test_resize_rename_and_remove(c_program: Path, tmp_path: Path) -> None:
    out = tmp_path / "changed"
    with ElfImage(c_program) as image:
        aranges = image.section(".debug_aranges").index
        comment = image.section(".comment")
        grown = bytes(image.raw(comment)) + b"linkplugin test\0"
        write_elf(image, out, {comment.index: Replacement(data=grown, name=".comment.new")},
                  drop=frozenset([aranges]))
    after = sections(out)
    assert ".debug_aranges" not in after and ".comment" not in after
    assert after[".comment.new"][4].endswith(b"linkplugin test\0")
    before = sections(c_program)
    for name, value in before.items():
        if name not in (".debug_aranges", ".comment", ".shstrtab"):
            assert after[name] == value, name
    # readelf resolves links by index: the symbol table still finds its strings.
    assert run("readelf", "-sW", out).stdout == run("readelf", "-sW", c_program).stdout
    assert run(out).returncode == 0
    gdb = run("gdb", "-batch", "-nx", "-ex", "ptype struct shape", out).stdout
    assert "struct point corner[4];" in gdb
    assert debug_sections(out)[".debug_info"] == debug_sections(c_program)[".debug_info"]


def test_refuses_to_remove_what_others_refer_to(c_program: Path, tmp_path: Path) -> None:
    with ElfImage(c_program) as image:
        strtab = image.section(".strtab").index
        with pytest.raises(LinkpluginError, match="refers to"):
            write_elf(image, tmp_path / "x", {}, drop=frozenset([strtab]))
        text = image.section(".text").index
        with pytest.raises(LinkpluginError, match="allocated"):
            write_elf(image, tmp_path / "x", {}, drop=frozenset([text]))
    assert not (tmp_path / "x").exists()
