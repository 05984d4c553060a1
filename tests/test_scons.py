"""The SCons tool: builders, build cache hits across -j, worker counts and clones."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, debug_sections, linkplugin, run

TARGETS = ["build/cpp_app/shapes.z", "build/c_app/stats.z", "build/shared_lib/libgeom.so.z",
           "build/shared_lib/vec.z"]


def clone(dest: Path) -> Path:
    """A checkout of the project as a user has it (the package is pip-installed)."""
    dest.mkdir()
    shutil.copy(ROOT / "SConstruct", dest)
    for folder in ["examples", "site_scons"]:
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def scons(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=project,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_cache_hits_across_jobs_worker_counts_and_clones(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = clone(tmp_path / "first")
    built = scons(first, f"--cache-dir={cache}", "-j2", "--debuginfo-jobs=1")
    assert count_actions(built.stdout) == len(TARGETS)
    assert "debuginfo: 4 targets: 4 built, 0 from cache, 0 up to date" in built.stdout
    for target in ["build/c_app/stats.z", "build/shared_lib/vec.z"]:
        # The outputs are real: objcopy reads the same debug info back.
        assert debug_sections(first / target) == debug_sections(first / target[:-2])
    for target in ["build/cpp_app/shapes.z", "build/shared_lib/libgeom.so.z"]:  # merged, then compressed
        assert linkplugin("verify", first / target[:-2], first / target).returncode == 0
        assert "C" in run("readelf", "-SW", first / target).stdout.split(".debug_info")[1].split("\n")[0]
    assert run(first / "build/shared_lib/vec.z").stdout.startswith("cross = (0, 0, 1)")

    # Clean, rebuild with another -j and worker count: all from the cache.
    scons(first, "-c", f"--cache-dir={cache}")
    assert not (first / TARGETS[0]).exists()
    again = scons(first, f"--cache-dir={cache}", "-j1", "--debuginfo-jobs=3", "--cache-debug=-")
    assert_all_from_cache(again)

    # Another checkout in another folder shares the cache too.
    second = clone(tmp_path / "second")
    elsewhere = scons(second, f"--cache-dir={cache}", "-j2", "--cache-debug=-")
    assert_all_from_cache(elsewhere)
    for target in TARGETS:
        assert (second / target).read_bytes() == (first / target).read_bytes()

    # A setting that changes the output bytes changes the signature: only our
    # targets are rebuilt, the programs still come from the cache.
    zstd = scons(second, f"--cache-dir={cache}", "--debuginfo-codec=zstd", "--cache-debug=-")
    assert count_actions(zstd.stdout) == len(TARGETS)
    assert "debuginfo: 4 targets: 4 built, 0 from cache, 0 up to date" in zstd.stdout
    assert "ZSTD" in run("readelf", "-tW", second / TARGETS[0]).stdout


def count_actions(out: str) -> int:
    """Post-processing actions that ran (DebugCompress and DebugOptimize)."""
    return len(re.findall(r"^Debug(Compress|Optimize) build/", out, re.M))


def assert_all_from_cache(result: subprocess.CompletedProcess) -> None:
    out = result.stdout
    assert "CachePush" not in out
    assert "not in cache" not in out
    retrieved = set(re.findall(r"CacheRetrieve\((\S+)\):\s+retrieving from", out))
    for target in TARGETS:
        assert target in retrieved
        assert target[:-2] in retrieved  # the linked program itself
    assert count_actions(out) == 0  # no post-processing action ran
    assert not re.search(r"^(gcc|g\+\+) ", out, re.M)
    assert "debuginfo: 4 targets: 0 built, 4 from cache, 0 up to date" in out


def test_builders_as_a_user_writes_them(tmp_path: Path) -> None:
    project = tmp_path / "user"
    project.mkdir()
    shutil.copytree(ROOT / "site_scons", project / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    (project / "SConstruct").write_text(
        "env = Environment(tools=['default', 'debuginfo'], CCFLAGS='-g')\n"
        "prog = env.Program('hello', 'hello.c')\n"
        "z = env.DebugCompress('hello.z', prog, DEBUGINFO_CODEC='zstd', DEBUGINFO_LEVEL=5)\n"
        "env.DebugDecompress('hello.plain', z)\n")
    scons(project)
    assert "ZSTD" in run("readelf", "-tW", project / "hello.z").stdout
    assert debug_sections(project / "hello.plain") == debug_sections(project / "hello")
    assert run(project / "hello.z").stdout == "hi\n"
    # A bad input fails the build with one clear line and leaves no target.
    (project / "SConstruct").write_text(
        "env = Environment(tools=['default', 'debuginfo'])\n"
        "env.DebugCompress('junk.z', 'junk.txt')\n")
    (project / "junk.txt").write_text("not a program\n")
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 2
    assert "scons: *** [junk.z] " in result.stderr and "not an ELF file" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (project / "junk.z").exists()
