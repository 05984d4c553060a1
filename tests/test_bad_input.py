"""Bad input: one line on stderr, exit status 2, no output file, input untouched."""
from __future__ import annotations

import hashlib
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, linkplugin, run
from elftools.elf.elffile import ELFFile


def check_rejected(src: Path, out: Path, *extra: str, says: str, command: str = "compress") -> None:
    before = hashlib.sha256(src.read_bytes()).hexdigest() if src.is_file() else None
    result = linkplugin(command, src, "-o", out, *extra, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linkplugin: error: "), result.stderr
    assert says in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    if out.parent.is_dir():
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".linkplugin-")]
    if before is not None:
        assert hashlib.sha256(src.read_bytes()).hexdigest() == before


def section_offset(path: Path, name: str) -> tuple[int, int]:
    with open(path, "rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        return sec["sh_offset"], sec["sh_size"]


def test_not_an_elf_file(tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("hello\n" * 100)
    check_rejected(src, tmp_path / "out", says="not an ELF file")


def test_empty_and_missing_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    check_rejected(empty, tmp_path / "out", says="not an ELF file")
    check_rejected(tmp_path / "missing", tmp_path / "out", says="cannot open")
    check_rejected(tmp_path, tmp_path / "out", says="cannot open")


@pytest.mark.parametrize("keep", [0.5, 0.999, 10 / 17456])
def test_truncated_elf(c_program: Path, tmp_path: Path, keep: float) -> None:
    src = tmp_path / "truncated"
    data = c_program.read_bytes()
    src.write_bytes(data[:max(20, int(len(data) * keep))])
    check_rejected(src, tmp_path / "out", says="")


def test_section_table_out_of_bounds(c_program: Path, tmp_path: Path) -> None:
    data = bytearray(c_program.read_bytes())
    struct.pack_into("<Q", data, 0x28, len(data) + 4096)  # e_shoff past the end
    src = tmp_path / "bad-shoff"
    src.write_bytes(bytes(data))
    check_rejected(src, tmp_path / "out", says="section header table")


def compressed_copy(program: Path, tmp_path: Path, codec: str) -> Path:
    out = tmp_path / f"compressed-{codec}"
    linkplugin("compress", program, "-o", out, "--type", codec)
    return out


@pytest.mark.parametrize("codec", ["zlib", "zstd"])
def test_huge_claimed_size_is_not_allocated(cxx_program: Path, tmp_path: Path, codec: str) -> None:
    src = compressed_copy(cxx_program, tmp_path, codec)
    data = bytearray(src.read_bytes())
    offset, _ = section_offset(src, ".debug_info")
    struct.pack_into("<Q", data, offset + 8, 1 << 44)  # Elf64_Chdr.ch_size
    src.write_bytes(bytes(data))
    # A 16 TiB allocation would fail loudly; a bounded decoder just reports the mismatch (claims
    # past 2**48 are refused from the header: tests/test_fuzz.py).
    check_rejected(src, tmp_path / "out", says="header says")
    check_rejected(src, tmp_path / "out", says="header says", command="decompress")


def _elf32_object(tmp_path: Path) -> Path:
    """A small ELF32 object with DWARF (skips where gcc cannot build one)."""
    src = tmp_path / "m32.o"
    (tmp_path / "m32.c").write_text("int answer(int x) { return x * 42; }\n")
    if run("gcc", "-m32", "-g", "-c", "-o", src, tmp_path / "m32.c", check=False).returncode != 0:
        pytest.skip("gcc cannot build 32-bit objects here")
    return src


def test_elf32_output_past_4_gib(tmp_path: Path) -> None:
    """An ELF32 object whose .debug_info claims 0xFFFFFFF0 plain bytes: the decompressed layout
    passes what 32-bit offsets hold (struct.error packing the section header before)."""
    src = _elf32_object(tmp_path)
    run("objcopy", "--compress-debug-sections=zlib", src)
    data = bytearray(src.read_bytes())
    offset, _ = section_offset(src, ".debug_info")
    struct.pack_into("<I", data, offset + 4, 0xFFFFFFF0)  # Elf32_Chdr.ch_size
    src.write_bytes(bytes(data))
    check_rejected(src, tmp_path / "out", says="4 GiB", command="decompress")


@pytest.mark.parametrize("codec", ["zlib", "zstd"])
def test_corrupt_compressed_data(cxx_program: Path, tmp_path: Path, codec: str) -> None:
    src = compressed_copy(cxx_program, tmp_path, codec)
    data = bytearray(src.read_bytes())
    offset, size = section_offset(src, ".debug_info")
    for i in range(offset + 40, offset + size - 8, 97):
        data[i] ^= 0x5A
    src.write_bytes(bytes(data))
    check_rejected(src, tmp_path / "out", says=".debug_info")
    check_rejected(src, tmp_path / "out", says=".debug_info", command="decompress")


def test_unknown_compression_type(cxx_program: Path, tmp_path: Path) -> None:
    src = compressed_copy(cxx_program, tmp_path, "zlib")
    data = bytearray(src.read_bytes())
    offset, _ = section_offset(src, ".debug_info")
    struct.pack_into("<I", data, offset, 77)
    src.write_bytes(bytes(data))
    check_rejected(src, tmp_path / "out", says="unknown compression type 77")


def test_output_in_a_missing_folder(c_program: Path, tmp_path: Path) -> None:
    check_rejected(c_program, tmp_path / "no" / "such" / "out", says="does not exist")


def test_bad_settings(c_program: Path, tmp_path: Path) -> None:
    check_rejected(c_program, tmp_path / "out", "--level", "13", says="level")
    check_rejected(c_program, tmp_path / "out", "--shard-size", "100", says="shard size")


@pytest.mark.parametrize("command", [["info", "--all"], ["merge-types", "-o", "{out}", "--time", "--stats"]])
def test_reader_of_stdout_gone(cxx_program: Path, tmp_path: Path, command: list[str]) -> None:
    """`linkplugin info X | head`: the reader leaves before the command prints; it ends quietly as
    a tool stopped by SIGPIPE does, with the status a shell reports for one (128 + 13)."""
    out = tmp_path / "out"
    args = [a.replace("{out}", str(out)) for a in command]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        result = subprocess.run([sys.executable, "-m", "linkplugin", args[0], str(cxx_program), *args[1:]],
                                stdout=write, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    finally:
        os.close(write)
    assert result.returncode == 128 + signal.SIGPIPE, result.stderr
    assert result.stderr == ""
    if command[0] == "merge-types":  # the output was complete before the tables were printed
        assert out.is_file()


def test_stdout_on_a_full_disk(cxx_program: Path) -> None:
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "linkplugin", "info", str(cxx_program)], stdout=full,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr == "linkplugin: error: cannot write to stdout: No space left on device\n"


# A job on the shared process pool (the type merger's), as the command runs it: compression
# runs on threads and has no worker to kill.
_POOL_JOB = """
import os, sys, zlib
from linkplugin import pool
from linkplugin.errors import LinkpluginError
pool.allow_fork()
blob = os.urandom(1 << 20) * 8  # zlib's level 9 compresses it slowly
try:
    pool.run_tasks(zlib.compress, [(blob, 9)] * 12, 2)
except LinkpluginError as exc:
    print(f"linkplugin: error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def test_a_worker_that_dies_gives_an_error_not_a_hang() -> None:
    """Kill a pool worker in the middle of a job that takes a few seconds."""
    proc = subprocess.Popen([sys.executable, "-c", _POOL_JOB], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    victim = None
    deadline = time.time() + 30
    while victim is None and time.time() < deadline and proc.poll() is None:
        victim = _pool_worker(proc.pid)
        time.sleep(0.05)
    assert victim is not None, "no pool worker appeared"
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [err.strip()] and "worker process died" in err


# The forkserver killed while it starts a worker (the kill above may hit it rather than a
# worker): multiprocessing reads EOF where the new worker's pid should be.
_FORKSERVER_GONE = """
import sys, zlib
import multiprocessing.forkserver as forkserver
from linkplugin import pool
from linkplugin.errors import LinkpluginError
def gone(fd):
    raise EOFError("unexpected EOF")
forkserver.read_signed = gone
try:
    pool.run_tasks(zlib.compress, [(b"x" * 1000, 9)] * 4, 2)
except LinkpluginError as exc:
    print(f"linkplugin: error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def test_a_forkserver_that_dies_gives_an_error_not_a_traceback() -> None:
    """An EOFError traceback before (found when the kill of the test above hit the forkserver)."""
    result = subprocess.run([sys.executable, "-c", _FORKSERVER_GONE], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "worker process died before it started" in result.stderr


def _pool_worker(root: int) -> int | None:
    """A pool worker of ``root``, if one runs yet: a child the command forked,
    or a grandchild under a forkserver (or spawn's resource tracker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    for child in children.get(root, []):
        try:
            helper = b"multiprocessing" in Path(f"/proc/{child}/cmdline").read_bytes()
            if not helper:
                # A helper (forkserver, resource tracker) is forked, then execs: just forked, it
                # looks like a forked worker. A worker stays as it is.
                time.sleep(0.3)
                helper = b"multiprocessing" in Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if not helper:
            return child
        for grandchild in children.get(child, []):
            return grandchild
    return None


def _set_section_size(path: Path, name: str, size: int) -> None:
    """Rewrite the sh_size of ELF64 section ``name`` in place."""
    data = bytearray(path.read_bytes())
    with open(path, "rb") as f:
        elf = ELFFile(f)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == name)
        at = elf["e_shoff"] + index * elf["e_shentsize"] + 32  # Elf64_Shdr.sh_size
    struct.pack_into("<Q", data, at, size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
@pytest.mark.parametrize("codec", ["zlib", "zstd"])
def test_zlib_stream_cut_before_its_checksum(c_program: Path, tmp_path: Path, jobs: str, codec: str) -> None:
    """A compressed .debug_info whose last 4 bytes (the zlib Adler-32) are cut off decodes to
    every byte its header claims: only the stream's end tells. Its last shard must wait for that
    check, whoever decodes it (the writer or a helper): rejected at every -j, never written."""
    src = tmp_path / "cut"
    run("objcopy", "--compress-debug-sections=zlib", c_program, src)
    _, size = section_offset(src, ".debug_info")
    _set_section_size(src, ".debug_info", size - 4)
    check_rejected(src, tmp_path / "out", "-j", jobs, "--type", codec, says=".debug_info")


def test_many_compressed_sections_few_file_descriptors(c_program: Path, tmp_path: Path) -> None:
    """Each compressed input section is read through a file of its own while it is decoded:
    once its last shard is taken, that file is closed (300 sections under a limit of 64 open
    files; earlier, the writer kept every one open to the end)."""
    import resource

    blob = tmp_path / "blob"
    blob.write_bytes(b"DW_TAG_member\0" * 300)
    src, out = tmp_path / "many", tmp_path / "out"
    args = [f"--add-section=.debug_m{k}={blob}" for k in range(300)]
    run("objcopy", *args, c_program, tmp_path / "plain")
    run("objcopy", "--compress-debug-sections=zlib", tmp_path / "plain", src)

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    for jobs in ("1", "2"):
        done = subprocess.run([sys.executable, "-m", "linkplugin", "compress", str(src), "-o", str(out), "-j", jobs,
                               "--type", "zstd", "--quiet"], cwd=ROOT, capture_output=True, text=True,
                              preexec_fn=few_files)
        assert done.returncode == 0, done.stderr
        run("objcopy", "--decompress-debug-sections", out, tmp_path / "back")
        with open(tmp_path / "back", "rb") as f:
            assert ELFFile(f).get_section_by_name(".debug_m299").data() == blob.read_bytes()


def test_elf32_zdebug_claiming_past_4_gib(tmp_path: Path) -> None:
    """A legacy .zdebug header holds a 64-bit size; an ELF32 compression header only 32 bits:
    a claim past 4 GiB is refused in one line, not a packing error."""
    src = _elf32_object(tmp_path)
    run("objcopy", "--compress-debug-sections=zlib-gnu", src)
    data = bytearray(src.read_bytes())
    offset, _ = section_offset(src, ".zdebug_info")
    assert data[offset:offset + 4] == b"ZLIB"
    struct.pack_into(">Q", data, offset + 4, 5 << 30)
    src.write_bytes(bytes(data))
    for codec in ("zlib", "zstd"):
        check_rejected(src, tmp_path / "out", "--type", codec, says="4 GiB")


@pytest.mark.parametrize("cut", [1, 3, 4])
def test_zstd_frame_cut_in_its_checksum(cxx_program: Path, tmp_path: Path, cut: int) -> None:
    """A zstd .debug_info whose frame carries a checksum, cut by 1 to 4 bytes: every data byte
    is there, and libzstd's stream reader says nothing, but the frame is not whole (readelf
    refuses it). Rejected by compress at -j1 and -j2 and by decompress, in one line."""
    import zstandard

    with open(cxx_program, "rb") as f:
        plain = ELFFile(f).get_section_by_name(".debug_info").data()
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(plain)
    blob = tmp_path / "section"
    blob.write_bytes(struct.pack("<IIQQ", 2, 0, len(plain), 1) + frame[:-cut])  # ELFCOMPRESS_ZSTD
    src = tmp_path / "cut"
    run("objcopy", f"--update-section=.debug_info={blob}", cxx_program, src)
    data = bytearray(src.read_bytes())
    with open(src, "rb") as f:
        elf = ELFFile(f)
        index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".debug_info")
        at = elf["e_shoff"] + index * elf["e_shentsize"] + 8  # Elf64_Shdr.sh_flags
    struct.pack_into("<Q", data, at, struct.unpack_from("<Q", data, at)[0] | 0x800)  # SHF_COMPRESSED
    src.write_bytes(bytes(data))
    for jobs in ("1", "2"):
        check_rejected(src, tmp_path / "out", "-j", jobs, says="zstd data is truncated")
    check_rejected(src, tmp_path / "out", says="zstd data is truncated", command="decompress")
