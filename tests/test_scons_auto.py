"""DEBUGINFO_AUTO: every Program, SharedLibrary and LoadableModule post-processed by its own builder,
in a project outside this repository that loads the tool from the package (nothing copied)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import C_PROGRAM, linkplugin, need, run

SCONSTRUCT = """
import os
import linkplugin.scons
CacheDir(ARGUMENTS.get('cache', 'cache'))
tools = ['default'] if ARGUMENTS.get('tool') == 'none' else ['default', 'debuginfo']
env = Environment(
    tools=tools, toolpath=[linkplugin.scons.toolpath()],
    ENV={'PATH': os.environ['PATH']},
    CCFLAGS=['-g', '-O1', '$(', '-ffile-prefix-map=${ROOT}=.', '$)'], ROOT=Dir('#').abspath,
    DEBUGINFO_AUTO=ARGUMENTS.get('auto', 'optimize'),
    DEBUGINFO_CODEC=ARGUMENTS.get('codec', 'zlib'),
    DEBUGINFO_JOBS=int(ARGUMENTS.get('jobs', 0)),
)
objs = env.Object(['main.c', 'area.c'])
env.Program('app', objs)
env.Program('app_plain', objs, DEBUGINFO_AUTO='')  # the same program, untouched, to compare with
env.SharedLibrary('shapes', ['lib.cpp'])
env.LoadableModule('plugin', ['plugin.cpp'])
"""

LIB_CPP = """
#include <map>
#include <string>
#include <vector>
struct Part { std::string name; std::vector<double> sizes; };
std::map<std::string, Part> catalog;
int parts() { catalog["a"] = Part{"a", {1.0}}; return (int)catalog.size(); }
"""
PLUGIN_CPP = LIB_CPP.replace("parts()", "plugin_parts()").replace("catalog", "plugin_catalog")

PRODUCTS = ["app", "libshapes.so", "libplugin.so"]


def project(folder: Path) -> Path:
    """A user's project: sources and an SConstruct, no site_scons."""
    folder.mkdir()
    for name, text in {**C_PROGRAM, "lib.cpp": LIB_CPP, "plugin.cpp": PLUGIN_CPP}.items():
        (folder / name).write_text(text)
    (folder / "SConstruct").write_text(SCONSTRUCT)
    return folder


def scons(folder: Path, *args: str, env: dict | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", *args], cwd=folder, capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def compressed(path: Path) -> str:
    """The compression type readelf reports for .debug_info ("" when plain)."""
    out = run("readelf", "-tW", path).stdout
    match = re.search(r"\.debug_info\n.*\n\s+\[[0-9a-f]+\]: COMPRESSED\n\s+(\w+)", out)
    return match.group(1) if match else ""


def test_every_program_optimized_in_place_and_cached(tmp_path: Path) -> None:
    need("gcc", "g++", "readelf")
    cache = tmp_path / "cache"
    first = project(tmp_path / "first")
    out = scons(first, f"cache={cache}", "-j2", "jobs=1")
    for name in PRODUCTS:
        assert re.search(rf"^DebugOptimize {re.escape(name)}$", out, re.M), out
        assert compressed(first / name) == "ZLIB"
    assert "DebugOptimize app_plain" not in out and compressed(first / "app_plain") == ""
    assert "debuginfo: 3 targets: 3 built, 0 from cache, 0 up to date" in out
    assert run(first / "app").stdout == "square 4.0\n"
    assert linkplugin("verify", first / "app_plain", first / "app").returncode == 0
    # Under its own name: no other file was made, and clean leaves only what we wrote.
    sources = {"SConstruct", "main.c", "area.c", "shapes.h", "lib.cpp", "plugin.cpp"}
    made = {p.name for p in first.iterdir()} - sources
    assert made == {"app", "app_plain", "libshapes.so", "libplugin.so", "main.o", "area.o", "lib.os", "plugin.os",
                    ".sconsign.dblite"}, made
    first_bytes = {name: (first / name).read_bytes() for name in PRODUCTS}
    scons(first, f"cache={cache}", "-c")
    assert {p.name for p in first.iterdir()} == sources | {".sconsign.dblite"}

    # Rebuilt with another -j and worker count: every program from the cache, with the final bytes.
    again = scons(first, f"cache={cache}", "-j1", "jobs=3")
    assert_from_cache(again)
    for name in PRODUCTS:
        assert (first / name).read_bytes() == first_bytes[name]

    # Another checkout at another path shares the cache.
    second = project(tmp_path / "second-checkout")
    assert_from_cache(scons(second, f"cache={cache}", "-j2"))
    for name in PRODUCTS:
        assert (second / name).read_bytes() == first_bytes[name]

    # A setting that changes the bytes changes the key: relinked (objects from the cache) and rewritten.
    zstd = scons(second, f"cache={cache}", "codec=zstd")
    assert not re.search(r"^gcc -o \S+\.o -c", zstd, re.M)
    for name in PRODUCTS:
        assert f"DebugOptimize {name}\n" in zstd
        assert compressed(second / name) == "ZSTD"
    # Compress only: no merge, same DWARF as the untouched program.
    squeeze = scons(second, f"cache={cache}", "auto=compress")
    assert "DebugCompress app\n" in squeeze
    plain = run("readelf", "--debug-dump=info", second / "app_plain").stdout
    assert run("readelf", "--debug-dump=info", second / "app").stdout.split("\n", 3)[3] == \
        plain.split("\n", 3)[3]


def assert_from_cache(out: str) -> None:
    assert not re.search(r"^(gcc|g\+\+|Debug\w+) ", out, re.M), out
    assert "debuginfo: 3 targets: 0 built, 3 from cache, 0 up to date" in out


def test_tool_without_auto_keeps_the_programs_cache_keys(tmp_path: Path) -> None:
    """Loading the tool with DEBUGINFO_AUTO empty changes no program's signature."""
    need("gcc", "g++")
    cache = tmp_path / "cache"
    without = project(tmp_path / "without")
    scons(without, f"cache={cache}", "tool=none")
    with_tool = project(tmp_path / "with")
    out = scons(with_tool, f"cache={cache}", "auto=", "--cache-debug=-")
    assert not re.search(r"^(gcc|g\+\+|Debug\w+) ", out, re.M), out
    for name in PRODUCTS:
        assert f"CacheRetrieve({name}):  retrieving from" in out


def test_tool_loaded_before_the_link_tools(tmp_path: Path) -> None:
    """tools=['debuginfo', 'default']: the link tools, loaded after ours, set $SHLIBEMITTER and
    $LDMODULEEMITTER afresh; the split debug files must still be targets of their step."""
    need("gcc", "g++", "objcopy")
    folder = project(tmp_path / "p")
    sconstruct = folder / "SConstruct"
    sconstruct.write_text(sconstruct.read_text().replace("['default', 'debuginfo']", "['debuginfo', 'default']"))
    out = scons(folder, "cache=cache", "auto=split")
    assert "debuginfo: 3 targets: 3 built, 0 from cache, 0 up to date" in out
    for name in PRODUCTS:
        assert f"DebugSplit {name}\n" in out and (folder / f"{name}.debug").is_file()
    scons(folder, "cache=cache", "auto=split", "-c")
    assert not [name for name in PRODUCTS if (folder / f"{name}.debug").exists()]


def test_bad_mode_is_one_line(tmp_path: Path) -> None:
    folder = project(tmp_path / "p")
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "auto=shrink"], cwd=folder,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "DEBUGINFO_AUTO='shrink': expected one of optimize, compress, merge" in result.stderr
    assert "Traceback" not in result.stderr


def test_installed_package_loads_the_tool_without_copying(tmp_path: Path) -> None:
    """pip-install the package (not editable) into a folder, build a project with only that on the path."""
    need("gcc", "g++")
    pytest.importorskip("wheel", reason="pip install '.[test]' installs wheel, which pip needs to build offline")
    root = Path(__file__).resolve().parent.parent
    site = tmp_path / "site"
    build = tmp_path / "wheel-build"
    shutil.copytree(root, build, ignore=shutil.ignore_patterns(".git", "bench", "build", "*.egg-info",
                                                              "__pycache__", ".scons-cache", "tests"))
    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
        "--target", site, build)
    assert (site / "linkplugin" / "site_tools" / "debuginfo.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(site)}
    folder = project(tmp_path / "user")
    out = scons(folder, "cache=cache", env=env)
    assert "DebugOptimize app\n" in out and compressed(folder / "app") == "ZLIB"
    assert not (folder / "site_scons").exists()

    # The documented per-user entry point: ~/.scons/site_scons/site_init.py, then plain tools=[...].
    home = tmp_path / "home"
    (home / ".scons" / "site_scons").mkdir(parents=True)
    (home / ".scons" / "site_scons" / "site_init.py").write_text(
        "import SCons.Tool, linkplugin.scons\nSCons.Tool.DefaultToolpath.append(linkplugin.scons.toolpath())\n")
    other = project(tmp_path / "user2")
    (other / "SConstruct").write_text(SCONSTRUCT.replace(", toolpath=[linkplugin.scons.toolpath()]", ""))
    out = scons(other, "cache=cache", env={**env, "HOME": str(home)})
    assert "DebugOptimize app\n" in out and compressed(other / "app") == "ZLIB"


def test_split_mode_and_builder(tmp_path: Path) -> None:
    """DEBUGINFO_AUTO='split': each program stripped in place with its debug file beside it, both
    one build step's targets (cached and cleaned together); DebugSplit makes a stripped copy."""
    need("gcc", "g++", "gdb", "objcopy")
    folder = project(tmp_path / "p")
    with open(folder / "SConstruct", "a") as f:
        f.write("env.DebugSplit('app.stripped', 'app_plain', DEBUGINFO_CODEC='zstd')\n"
                # strings as ARGUMENTS give them: 'False' and 'no' mean no
                "env.DebugSplit(['app.s2', 'debug/app.s2.debug'], 'app_plain', DEBUGINFO_SPLIT_MERGE='False',"
                " DEBUGINFO_SPLIT_COMPRESS='no')\n")
    out = scons(folder, "cache=cache", "auto=split", "-j2")
    for name in PRODUCTS + ["app.stripped", "app.s2"]:
        assert f"DebugSplit {name}\n" in out
    for name in PRODUCTS + ["app.stripped"]:
        assert not [n for n in run("readelf", "-SW", folder / name).stdout.split("\n") if ".debug_" in n]
        assert compressed(folder / f"{name}.debug") == ("ZSTD" if name == "app.stripped" else "ZLIB")
    assert compressed(folder / "debug" / "app.s2.debug") == ""
    assert run(folder / "app").stdout == run(folder / "app.stripped").stdout == "square 4.0\n"
    # gdb follows .gnu_debuglink to the file beside the program.
    session = run("gdb", "-batch", "-nx", "-ex", "ptype struct shape", "-ex", "info line area", folder / "app").stdout
    assert "unsigned int kind : 5;" in session and 'of "./area.c" starts at address' in session

    scons(folder, "cache=cache", "auto=split", "-c")
    assert not (folder / "app").exists() and not (folder / "app.debug").exists()
    again = scons(folder, "cache=cache", "auto=split")
    assert not re.search(r"^(gcc|g\+\+|Debug\w+) ", again, re.M), again
    assert (folder / "app.debug").is_file() and (folder / "app.stripped.debug").is_file()


def test_bad_flag_value_is_one_scons_error(tmp_path: Path) -> None:
    need("gcc", "g++")
    folder = project(tmp_path / "p")
    with open(folder / "SConstruct", "a") as f:
        f.write("env.DebugSplit('app.stripped', 'app_plain', DEBUGINFO_SPLIT_MERGE='maybe')\n")
    result = subprocess.run([sys.executable, "-m", "SCons", "-Q", "app.stripped"], cwd=folder, capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert "DEBUGINFO_SPLIT_MERGE='maybe': expected yes or no" in result.stderr
    assert "Traceback" not in result.stderr
