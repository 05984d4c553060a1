"""merge-types and verify as users run them: the command, the pipeline with
compression, Go's output, and the SCons builders."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import C_PROGRAM, CXX_PROGRAM, ROOT, build, debug_sections, gdb, linkplugin, need, run

GO_PROGRAM = """package main

import "fmt"

type Point struct{ X, Y int }
type Shape struct {
	Name    string
	Corners []Point
	Next    *Shape
}

func area(s *Shape) int { return len(s.Corners) * s.Corners[0].X }

func main() {
	s := &Shape{Name: "sq", Corners: []Point{{2, 3}, {4, 5}}}
	fmt.Println(s.Name, area(s))
}
"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_merge_then_compress_in_one_pass(cxx_program: Path, tmp_path: Path) -> None:
    merged, both = tmp_path / "merged", tmp_path / "both"
    linkplugin("merge-types", cxx_program, "-o", merged)
    result = linkplugin("merge-types", cxx_program, "-o", both, "--compress", "zstd", "--stats", "--time")
    for word in ["units:", "DIEs:", "duplicates removed:", ".debug_info", "read", "write:", "Total:"]:
        assert word in result.stdout
    assert "ZSTD" in run("readelf", "-tW", both).stdout
    # Decompressed, the one-pass output holds exactly what merging alone wrote.
    assert debug_sections(both)[".debug_info"] == debug_sections(merged)[".debug_info"]
    commands = ["ptype Account", "ptype global_box", "info line total", "info types Box"]
    assert gdb(both, *commands) == gdb(cxx_program, *commands)
    assert linkplugin("verify", cxx_program, both).returncode == 0
    assert run(both).returncode == 0


def test_compressed_input_stays_compressed(c_program: Path, tmp_path: Path) -> None:
    squeezed, merged = tmp_path / "squeezed", tmp_path / "merged"
    linkplugin("compress", c_program, "-o", squeezed, "--type", "zstd")
    linkplugin("merge-types", squeezed, "-o", merged)
    sections = run("readelf", "-tW", merged).stdout
    assert "ZSTD" in sections and "ZLIB" not in sections
    assert linkplugin("verify", c_program, merged).returncode == 0
    commands = ["ptype struct shape", "ptype global_shape", "info line area"]
    assert gdb(merged, *commands) == gdb(c_program, *commands)


def test_go_linker_output(tmp_path: Path) -> None:
    need("go")
    (tmp_path / "main.go").write_text(GO_PROGRAM)
    env = dict(os.environ, GOCACHE=str(tmp_path / "gocache"), GOPATH=str(tmp_path / "gopath"),
               GO111MODULE="off", HOME=str(tmp_path))
    subprocess.run(["go", "build", "-o", "prog", "main.go"], cwd=tmp_path, env=env, check=True)
    prog, merged = tmp_path / "prog", tmp_path / "merged"
    linkplugin("merge-types", prog, "-o", merged, "-j2")
    assert run(merged).stdout == run(prog).stdout == "sq 4\n"
    assert linkplugin("verify", prog, merged).returncode == 0
    readelf = run("readelf", "-wi", merged)
    assert "Warning" not in readelf.stderr and "DW_TAG_compile_unit" in readelf.stdout
    commands = ["ptype main.Shape", "info line main.area"]
    assert gdb(merged, *commands) == gdb(prog, *commands)


def test_verify_reports_a_different_program(tmp_path: Path) -> None:
    first = build(tmp_path / "a", C_PROGRAM)
    changed = dict(C_PROGRAM, **{"shapes.h": C_PROGRAM["shapes.h"].replace("double x, y;", "float x, y;")})
    second = build(tmp_path / "b", changed)
    result = linkplugin("verify", first, second, check=False)
    assert result.returncode == 1
    assert result.stdout.strip()
    assert "differs" in result.stderr


@pytest.mark.parametrize("content,says", [(b"plain text\n", "not an ELF file"), ("-O2", "no .debug_info"),
                                          ("-c -g", "not on .o files")])
def test_bad_input_is_one_line_and_no_output(tmp_path: Path, content: bytes | str, says: str) -> None:
    src = tmp_path / "input"
    if isinstance(content, str):
        need("gcc")
        (tmp_path / "x.c").write_text("struct s { int a; }; int main(void) { struct s v = {0}; return v.a; }\n")
        run("gcc", *content.split(), "-o", src, tmp_path / "x.c")
    else:
        src.write_bytes(content)
    before = sha(src)
    out = tmp_path / "out"
    result = linkplugin("merge-types", src, "-o", out, check=False)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr
    assert not out.exists() and sha(src) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".linkplugin-")]


def test_scons_builders_for_merging(tmp_path: Path) -> None:
    project = tmp_path / "user"
    project.mkdir()
    shutil.copytree(ROOT / "site_scons", project / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in CXX_PROGRAM.items():
        (project / name).write_text(text)
    (project / "SConstruct").write_text(
        "CacheDir('cache')\n"
        "env = Environment(tools=['default', 'debuginfo'], CCFLAGS='-g -O1')\n"
        "prog = env.Program('app', 'main.cpp')\n"
        "env.DebugMergeTypes('app.merged', prog)\n"
        "env.DebugOptimize('app.small', prog, DEBUGINFO_CODEC='zstd')\n")

    def scons(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=project,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    first = scons("-j2")
    assert "DebugMergeTypes app.merged" in first and "DebugOptimize app.small" in first
    assert "ZSTD" in run("readelf", "-tW", project / "app.small").stdout
    assert debug_sections(project / "app.small")[".debug_info"] == debug_sections(project / "app.merged")[".debug_info"]
    assert linkplugin("verify", project / "app", project / "app.small").returncode == 0
    scons("-c")
    again = scons("-j1", "DEBUGINFO_JOBS=3")
    assert "DebugMergeTypes" not in again and "DebugOptimize" not in again
    assert "2 from cache" in again


def test_library_calls_leave_the_hosts_allocator_alone() -> None:
    """Only the command (which owns its process) may fix glibc's mmap threshold for the merge's
    threads; a merge called as a library, as SCons does, leaves its host's allocator as it is."""
    code = ("import linkplugin.memory as m\n"
            "m.map_large_blocks(); assert not m._mapped_large\n"
            "m.own_heap(); m.map_large_blocks(); assert m._mapped_large\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_plain_inputs_do_not_load_what_only_compressed_ones_need(c_program: Path, tmp_path: Path) -> None:
    """A merge or a compression of plain sections never inflates: zlib-ng (and zstandard) stay
    unloaded, a few milliseconds of every start-up; a compressed input loads the inflater."""
    code = ("import sys\n"
            "from linkplugin import cli\n"
            "assert cli.main(sys.argv[1:]) == 0\n"
            "print(' '.join(m for m in ('zlib_ng', 'zstandard') if m in sys.modules))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loaded = {}
    zdebug = tmp_path / "zlib"
    run("objcopy", "--compress-debug-sections=zlib", c_program, zdebug)
    for label, args in (("merge", ["merge-types", str(c_program), "-o", str(tmp_path / "m")]),
                        ("compress", ["compress", str(c_program), "-o", str(tmp_path / "c")]),
                        ("decompress", ["decompress", str(zdebug), "-o", str(tmp_path / "d")])):
        done = subprocess.run([sys.executable, "-c", code, *args, "--quiet"], capture_output=True, text=True,
                              cwd=tmp_path, env=env, check=True)
        loaded[label] = done.stdout.splitlines()[-1].split()  # (after the command's own table)
    assert loaded["merge"] == [] and loaded["compress"] == [], loaded
    if importlib.util.find_spec("zlib_ng") is not None:
        assert "zlib_ng" in loaded["decompress"]


def test_linked_with_emit_relocs(tmp_path: Path) -> None:
    """A program linked with --emit-relocs (as the Linux kernel is) keeps relocations of its debug
    sections, applied at link time: those of the sections the merge rewrites are emptied, with a
    warning, and gdb reads the output as the input; dwz leaves them pointing at the old offsets."""
    need("gcc", "gdb", "readelf")
    from linkplugin.gdblist import compare_listings

    prog = build(tmp_path / "src", C_PROGRAM, flags=("-g", "-O1", "-Wl,--emit-relocs"))

    def relocations(path: Path) -> dict[str, int]:
        sizes = {}
        for line in run("readelf", "-SW", path).stdout.splitlines():
            fields = line.replace("[ ", "[").split()
            if len(fields) > 6 and fields[1].startswith(".rel") and ".debug_" in fields[1]:
                sizes[fields[1]] = int(fields[5], 16)
        return sizes

    before = relocations(prog)
    assert before.get(".rela.debug_info"), before
    merged = tmp_path / "merged"
    result = linkplugin("merge-types", prog, "-o", merged, "-j", "2")
    assert "warning: emptied" in result.stderr and ".rela.debug_info" in result.stderr
    after = relocations(merged)
    assert after[".rela.debug_info"] == 0
    assert after[".rela.debug_line"] == before[".rela.debug_line"]  # .debug_line is not rewritten
    assert linkplugin("verify", prog, merged).returncode == 0
    report = compare_listings(prog, merged)
    assert report.ok, report.summary(examples=10)
    assert gdb(merged, "ptype struct shape", "info line main") == gdb(prog, "ptype struct shape", "info line main")
    if shutil.which("llvm-dwarfdump"):  # (LLVM 16 cannot decode some of gcc's expressions: as many errors in as out)
        def errors(path: Path) -> int:
            return run("llvm-dwarfdump", "--verify", path, check=False).stdout.count("error:")
        assert errors(merged) == errors(prog)
