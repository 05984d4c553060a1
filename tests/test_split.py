"""linkplugin split: a stripped program and a separate debug file, read back by gdb as distributions ship them."""
from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import C_PROGRAM, CXX_PROGRAM, ROOT, build, debug_sections, linkplugin, need, run

GDB_C = ["info functions", "info variables", "info types", "ptype struct shape", "ptype global_shape",
         "whatis area", "break area", "run", "info args", "p *s", "up", "info locals", "p local.corner[2]"]
GDB_CXX = ["info functions total", "info variables", "info types Box", "ptype Account", "ptype global_box",
           "ptype total", "break total", "run", "info args", "p accounts.size()", "up", "info locals"]

VARIANTS = {  # name: (sources, compiler, flags, gdb commands)
    "gcc-c": (C_PROGRAM, "gcc", ("-g", "-O0"), GDB_C),
    "g++-dwarf4": (CXX_PROGRAM, "g++", ("-g", "-O0", "-gdwarf-4", "-std=c++17"), GDB_CXX),
    "clang-dwarf5": (C_PROGRAM, "clang", ("-g", "-O0", "-gdwarf-5"), GDB_C),
}


def gdb_session(program: Path, commands: list[str], debug_dir: Path | None = None) -> str:
    """gdb's transcript of ``commands`` on ``program``, paths and process ids masked."""
    args = ["gdb", "-batch", "-nx"]
    if debug_dir is not None:
        args += ["-iex", f"set debug-file-directory {debug_dir}"]
    args += ["-ex", "set pagination off", "-ex", "set width 0"]
    for c in commands:
        args += ["-ex", c]
    out = run(*args, program, cwd=program.parent, check=False)
    text = re.sub(r"process \d+", "process N", out.stdout + out.stderr)
    # Which file the symbols came from is the one line allowed to differ.
    lines = [line.replace(str(program), "PROG") for line in text.splitlines()
             if not line.startswith("Reading symbols from")]
    return "\n".join(_sort_minimal_symbols(lines))


def _sort_minimal_symbols(lines: list[str]) -> list[str]:
    """gdb lists non-debugging symbols per objfile: the PLT entries (made from the
    stripped program's .plt) come after the debug file's symbols. Same symbols,
    another order, as with any split debug file: compare them sorted."""
    out, block = [], None
    for line in lines + [""]:
        if block is not None:
            if line.strip():
                block.append(line)
                continue
            out += sorted(block)
            block = None
        out.append(line)
        if line == "Non-debugging symbols:":
            block = []
    return out[:-1]


def section_names(path: Path) -> list[str]:
    out = run("readelf", "-SW", path).stdout
    return re.findall(r"^\s*\[\s*\d+\]\s+(\S+)", out, re.M)


def build_id(path: Path) -> str:
    match = re.search(r"Build ID: ([0-9a-f]+)", run("readelf", "-n", path).stdout)
    return match.group(1) if match else ""


def debuglink(path: Path) -> tuple[str, int]:
    """The name and CRC32 in a file's .gnu_debuglink, read with objcopy."""
    dump = path.with_name(path.name + ".link")
    run("objcopy", "--dump-section", f".gnu_debuglink={dump}", path)
    raw = dump.read_bytes()
    dump.unlink()
    return raw[:raw.index(b"\0")].decode(), int.from_bytes(raw[-4:], "little")


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request, tmp_path_factory) -> tuple[Path, list[str]]:
    sources, compiler, flags, commands = VARIANTS[request.param]
    need(compiler, "gdb", "readelf", "objcopy")
    return build(tmp_path_factory.mktemp(request.param), sources, compiler=compiler, flags=flags), commands


def test_gdb_finds_the_debug_file_by_build_id_and_reads_it_as_the_unsplit_program(
        variant: tuple[Path, list[str]], tmp_path: Path) -> None:
    prog, commands = variant
    # Unsplit and stripped programs at paths of the same length (same stack in `run`).
    for folder in ["plain", "merge", "split", "debug"]:
        (tmp_path / folder).mkdir()
    plain = tmp_path / "plain" / "prog"
    shutil.copy(prog, plain)
    merged = tmp_path / "merge" / "prog"
    linkplugin("merge-types", plain, "-o", merged)
    stripped = tmp_path / "split" / "prog"
    linkplugin("split", plain, "-o", stripped, "--debug-dir", tmp_path / "debug")

    ident = build_id(plain)
    assert ident, "the compiler driver links with a build ID"
    debug = tmp_path / "debug" / ".build-id" / ident[:2] / f"{ident[2:]}.debug"
    assert sorted(p.relative_to(tmp_path / "debug").as_posix() for p in (tmp_path / "debug").rglob("*")
                  if p.is_file()) == [debug.relative_to(tmp_path / "debug").as_posix()]
    # The stripped program: no debug sections, no symbol table, a debuglink with the debug file's CRC.
    names = section_names(stripped)
    assert not [n for n in names if n.startswith((".debug_", ".zdebug_"))] and ".symtab" not in names
    assert debuglink(stripped) == (debug.name, zlib.crc32(debug.read_bytes()))
    assert build_id(stripped) == ident == build_id(debug)
    assert stripped.stat().st_mode == plain.stat().st_mode  # as strip writes it, not objcopy's 0711
    assert run(stripped, check=False).returncode == run(plain, check=False).returncode == 0
    assert run(stripped).stdout == run(plain).stdout
    # The debug file: merged and compressed, with the symbols.
    debug_out = run("readelf", "-tW", debug).stdout
    assert re.search(r"\.debug_info\n.*\n\s+\[[0-9a-f]+\]: COMPRESSED\n\s+ZLIB", debug_out)
    assert ".symtab" in section_names(debug)

    # gdb finds it by `set debug-file-directory` alone and tells the same story.
    want = gdb_session(merged, commands)
    assert "No symbol table" not in want and "Breakpoint 1," in want
    assert gdb_session(stripped, commands, debug_dir=tmp_path / "debug") == want


def test_no_merge_keeps_the_original_dwarf_and_a_debug_file_beside_the_program(
        variant: tuple[Path, list[str]], tmp_path: Path) -> None:
    prog, commands = variant
    for folder in ["plain", "split"]:
        (tmp_path / folder).mkdir()
    plain = tmp_path / "plain" / "prog"
    shutil.copy(prog, plain)
    stripped = tmp_path / "split" / "prog"
    debug = tmp_path / "split" / "prog.dbg"
    linkplugin("split", plain, "-o", stripped, "--debug-file", debug, "--no-merge", "--compress", "none")
    assert debug_sections(debug) == debug_sections(plain)
    assert "C" not in run("readelf", "-SW", debug).stdout.split(".debug_info")[1].split("\n")[0]
    assert debuglink(stripped) == ("prog.dbg", zlib.crc32(debug.read_bytes()))
    # Found through .gnu_debuglink in the program's folder.
    assert gdb_session(stripped, commands) == gdb_session(plain, commands)


def test_merge_without_compression_gives_a_plain_debug_file(c_program: Path, tmp_path: Path) -> None:
    """--compress none: plain debug sections, also from a program linked with compressed ones."""
    packed = tmp_path / "packed"
    run("objcopy", "--compress-debug-sections=zlib", c_program, packed)
    for prog in [c_program, packed]:
        debug = tmp_path / f"{prog.name}.debug"
        linkplugin("split", prog, "-o", tmp_path / f"{prog.name}.out", "--debug-file", debug, "--compress", "none")
        assert "C" not in run("readelf", "-SW", debug).stdout.split(".debug_info")[1].split("\n")[0]
        assert debug_sections(debug) == debug_sections(tmp_path / f"{c_program.name}.debug")


def test_same_bytes_for_any_worker_count_and_run(c_program: Path, tmp_path: Path) -> None:
    outputs = []
    for n, jobs in enumerate(["1", "2", "3", "2"]):
        folder = tmp_path / str(n)
        folder.mkdir()
        linkplugin("split", c_program, "-o", folder / "prog", "--debug-dir", folder / "debug", "-j", jobs,
                   "--compress", "zstd")
        outputs.append({p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()})
    assert all(o == outputs[0] for o in outputs[1:])
    assert len(outputs[0]) == 2


def test_without_build_id_the_debug_file_is_named_after_the_program(tmp_path: Path) -> None:
    prog = build(tmp_path / "src", C_PROGRAM, flags=("-g", "-Wl,--build-id=none"), name="shapes")
    out = tmp_path / "out"
    out.mkdir()
    linkplugin("split", prog, "-o", out / "shapes", "--debug-dir", tmp_path / "dbg")
    assert [p.name for p in (tmp_path / "dbg").iterdir()] == ["shapes.debug"]
    assert debuglink(out / "shapes")[0] == "shapes.debug"


def test_in_place_and_shared_library(tmp_path: Path) -> None:
    """A library keeps the symbols its relocations need (--strip-unneeded); a program may be split in place."""
    lib = build(tmp_path / "lib", {"area.c": C_PROGRAM["area.c"], "shapes.h": C_PROGRAM["shapes.h"]},
                flags=("-g", "-shared", "-fPIC"), name="libarea.so")
    before = run("readelf", "--dyn-syms", "-W", lib).stdout
    mode = lib.stat().st_mode
    linkplugin("split", lib, "-o", lib, "--debug-file", lib.with_name("libarea.so.debug"))
    assert lib.stat().st_mode == mode  # as strip leaves it: readable and runnable by all
    assert run("readelf", "--dyn-syms", "-W", lib).stdout == before
    assert not [n for n in section_names(lib) if n.startswith(".debug_")]
    # gdb follows the debuglink to the file beside the library.
    assert "area.c:\n3:\tdouble area(const struct shape *);" in gdb_session(lib, ["info functions area"])


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("not a program\n")
    result = linkplugin("split", junk, "-o", tmp_path / "out", "--debug-dir", tmp_path / "dbg", check=False)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "not an ELF file" in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "dbg").exists()
    both = linkplugin("split", junk, "-o", tmp_path / "out", "--debug-dir", "d", "--debug-file", "f", check=False)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    missing = linkplugin("split", junk, "-o", tmp_path / "out", check=False)
    assert missing.returncode == 2 and "one of the arguments --debug-file --debug-dir is required" in missing.stderr


def test_program_without_debug_info_gets_a_symbols_only_debug_file(tmp_path: Path) -> None:
    prog = build(tmp_path / "nodebug", C_PROGRAM, flags=("-O1",))
    linkplugin("split", prog, "-o", tmp_path / "out", "--debug-file", tmp_path / "out.debug")
    assert ".symtab" not in section_names(tmp_path / "out") and ".symtab" in section_names(tmp_path / "out.debug")
    assert run(tmp_path / "out").stdout == "square 4.0\n"


def test_progress_line_only_on_a_terminal_and_never_on_stdout(cxx_program: Path, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "linkplugin", "merge-types", str(cxx_program), "-o", str(tmp_path / "m"),
            "-j", "2", "--compress", "zlib", "--stats", "--time"]
    stdout, stderr = _run_with_tty_stderr(args)
    assert "duplicates removed:" in stdout and "Total:" in stdout
    assert "linkplugin:" not in stdout and "\r" not in stdout
    lines = stderr.split("\r")
    drawn = [line.strip() for line in lines if line.strip()]
    assert drawn and all(re.fullmatch(r"linkplugin: [\w+-]+( \d+/\d+ [\w ]+)?  \d+\.\ds", d) for d in drawn), drawn
    phases = {re.match(r"linkplugin: ([\w+-]+)", d).group(1) for d in drawn}
    assert {"read", "read+hash", "compress+write"} <= phases, phases
    assert stderr.endswith("\r") and not lines[-2].strip()  # erased before the job's output

    # --quiet on a terminal, or stderr not a terminal: silent.
    assert _run_with_tty_stderr(args + ["--quiet"])[1] == ""
    piped = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    assert piped.returncode == 0 and piped.stderr == ""


def _run_with_tty_stderr(args: list[str]) -> tuple[str, str]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe; both texts."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # the terminal closed: the child is gone
            break
        if not data:
            break
        chunks.append(data)
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=60) == 0
    os.close(master)
    # The terminal turns "\n" into "\r\n"; the job writes none on stderr.
    return stdout, b"".join(chunks).decode()
