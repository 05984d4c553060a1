"""Compressed inputs: decompressed as a stream into the shards, the same bytes
as from the plain input for any worker count, memory bounded by the work and
not by what a compression header claims."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, debug_sections, linkplugin, run
from elftools.elf.elffile import ELFFile

MiB = 1 << 20


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Runs a command and prints its exit status and peak resident size. A small
# process in between: a child's peak starts at the peak of the process it was
# forked from (the kernel carries it over exec), here the test runner's.
_PEAK = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)
"""


def peak_rss(*args: str | os.PathLike) -> tuple[int, str, int]:
    """Exit status, stderr and the largest peak resident size of our command or a worker."""
    result = subprocess.run([sys.executable, "-c", _PEAK, sys.executable, "-m", "linkplugin", *map(str, args)],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    status, peak = map(int, result.stdout.split())
    return status, result.stderr, peak


@pytest.mark.parametrize("shard_size", ["32768", "100003"])
@pytest.mark.parametrize("theirs", ["zlib", "zstd", "zlib-gnu"])
def test_recompression_gives_the_bytes_of_the_plain_input_for_any_jobs(
        cxx_program: Path, tmp_path: Path, theirs: str, shard_size: str) -> None:
    packed = tmp_path / f"objcopy-{theirs}"
    run("objcopy", f"--compress-debug-sections={theirs}", cxx_program, packed)
    for codec in ["zlib", "zstd"]:
        want = tmp_path / f"plain.{codec}"
        linkplugin("compress", cxx_program, "-o", want, "--type", codec, "-j1", "--shard-size", shard_size)
        for jobs in ["1", "2", "3"]:
            out = tmp_path / f"{theirs}.{codec}.{jobs}"
            linkplugin("compress", packed, "-o", out, "--type", codec, "-j", jobs, "--shard-size", shard_size)
            if theirs == "zlib-gnu":  # .zdebug_* names: other section names, same contents
                assert debug_sections(out) == debug_sections(want)
            else:
                assert digest(out) == digest(want), (codec, jobs)


@pytest.fixture(scope="module")
def zeros(tmp_path_factory) -> tuple[Path, int]:
    """A program with a .debug_zeros section of 96 MiB, stored zlib-compressed
    by objcopy in 100 KB: a real section far larger than its file."""
    folder = tmp_path_factory.mktemp("zeros")
    (folder / "p.c").write_text("int main(void) { return 0; }\n")
    run("gcc", "-g", folder / "p.c", "-o", folder / "p")
    size = 96 * MiB
    with open(folder / "zeros.bin", "wb") as f:
        f.truncate(size)
    run("objcopy", f"--add-section=.debug_zeros={folder / 'zeros.bin'}", folder / "p", folder / "big")
    run("objcopy", "--compress-debug-sections=zlib", folder / "big", folder / "packed")
    (folder / "big").unlink()
    (folder / "zeros.bin").unlink()
    return folder / "packed", size


def test_compress_and_decompress_hold_no_plain_copy(zeros: tuple[Path, int], tmp_path: Path) -> None:
    packed, size = zeros
    for args in [["compress", "--type", "zstd", "-j1"], ["compress", "-j1"], ["decompress"]]:
        out = tmp_path / args[0]
        status, stderr, peak = peak_rss(args[0], packed, "-o", out, *args[1:])
        assert (status, stderr) == (0, "")
        # Before streaming this took two plain copies (over 192 MiB).
        assert peak < size, (args, peak)
        with open(out, "rb") as f:
            sec = ELFFile(f).get_section_by_name(".debug_zeros")
            compressed = bool(sec["sh_flags"] & 0x800)
            assert compressed == (args[0] == "compress")
            if not compressed:
                assert sec["sh_size"] == size
                f.seek(sec["sh_offset"])
                while piece := f.read(MiB):
                    assert piece.count(0) == len(piece)
                    if f.tell() >= sec["sh_offset"] + size:
                        break
    # objcopy refuses to decompress a section 10x larger than its file, so
    # pyelftools (zlib) reads what we wrote.
    with open(tmp_path / "compress", "rb") as f:
        data = ELFFile(f).get_section_by_name(".debug_zeros").data()
        assert len(data) == size and data.count(0) == size


def claim(src: Path, dst: Path, section: str, size: int) -> None:
    """Copy ``src`` with ``section``'s Chdr claiming ``size`` plain bytes."""
    data = bytearray(src.read_bytes())
    with open(src, "rb") as f:
        sec = ELFFile(f).get_section_by_name(section)
        assert sec["sh_flags"] & 0x800
        at = sec["sh_offset"] + 8  # Elf64_Chdr: ch_type, ch_reserved, ch_size
    data[at:at + 8] = size.to_bytes(8, "little")
    dst.write_bytes(bytes(data))


def test_a_huge_claimed_size_is_refused_in_bounded_memory(cxx_program: Path, tmp_path: Path) -> None:
    packed = tmp_path / "packed"
    run("objcopy", "--compress-debug-sections=zlib", cxx_program, packed)
    liar = tmp_path / "liar"
    huge = 1 << 48  # 256 TiB, in a file of kilobytes
    claim(packed, liar, ".debug_str", huge)
    before = digest(liar)
    for args in [["compress", "-j1"], ["compress", "-j2", "--type", "zstd"], ["decompress"]]:
        out = tmp_path / "out"
        status, stderr, peak = peak_rss(args[0], liar, "-o", out, *args[1:])
        assert status == 2
        assert stderr.count("\n") == 1 and "Traceback" not in stderr
        assert f"section .debug_str: header says {huge} bytes" in stderr
        assert peak < 200 * MiB
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".linkplugin-")]
    assert digest(liar) == before


def test_a_job_that_needs_more_memory_than_the_machine_fails_up_front(cxx_program: Path,
                                                                       tmp_path: Path) -> None:
    packed = tmp_path / "packed"
    run("objcopy", "--compress-debug-sections=zstd", cxx_program, packed)
    liar = tmp_path / "liar"
    huge = 1 << 48
    claim(packed, liar, ".debug_info", huge)
    out = tmp_path / "out"
    result = linkplugin("merge-types", liar, "-o", out, check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"section .debug_info: {huge} bytes once decompressed" in result.stderr
    assert "more than this machine's memory" in result.stderr
    assert not out.exists()


def test_plain_and_compressed_sections_in_one_input_give_the_same_bytes_for_any_jobs(
        cxx_program: Path, tmp_path: Path) -> None:
    """Plain shards and decoded ones in one job, threads taking both: the bytes of the plain input."""
    blob = tmp_path / "blob"
    blob.write_bytes(b"".join(b"entry %d of %d: %x\n" % (i, i * 7 % 1013, i * i) for i in range(150000)))
    plain, mixed = tmp_path / "plain", tmp_path / "mixed"
    run("objcopy", f"--add-section=.debug_junk={blob}", cxx_program, plain)
    packed = tmp_path / "packed"
    run("objcopy", "--compress-debug-sections=zlib", cxx_program, packed)
    run("objcopy", f"--add-section=.debug_junk={blob}", packed, mixed)  # added plain
    kinds = {name: bool(flags & 0x800) for name, flags in _flags(mixed).items()}
    assert kinds[".debug_info"] and not kinds[".debug_junk"]
    for codec in ["zlib", "zstd"]:
        want = tmp_path / f"want.{codec}"
        linkplugin("compress", plain, "-o", want, "--type", codec, "-j1", "--shard-size", "65536")
        for jobs in ["1", "2", "3"]:
            out = tmp_path / f"out.{codec}.{jobs}"
            linkplugin("compress", mixed, "-o", out, "--type", codec, "-j", jobs, "--shard-size", "65536")
            assert digest(out) == digest(want), (codec, jobs)
    assert debug_sections(tmp_path / "out.zlib.2") == debug_sections(plain)


def _flags(path: Path) -> dict[str, int]:
    with open(path, "rb") as f:
        return {sec.name: sec["sh_flags"] for sec in ELFFile(f).iter_sections()}


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_corrupt_data_in_any_section_is_one_line_for_any_jobs(cxx_program: Path, tmp_path: Path,
                                                              jobs: str) -> None:
    """The error of whichever thread decoded the bad section reaches the command, once."""
    packed = tmp_path / "packed"
    run("objcopy", "--compress-debug-sections=zlib", cxx_program, packed)
    data = bytearray(packed.read_bytes())
    with open(packed, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".debug_str")  # not the largest: not decoded first
        start, size = sec["sh_offset"], sec["sh_size"]
    for i in range(start + 40, start + size - 8, 97):
        data[i] ^= 0x5A
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = linkplugin("compress", bad, "-o", out, "-j", jobs, "--shard-size", "32768", check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "section .debug_str: corrupt zlib data" in result.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".linkplugin-")]
