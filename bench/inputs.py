"""Benchmark inputs: the examples and real third-party binaries with DWARF.

The Debian packages are fetched with ``apt-get download`` into bench/.cache
(never committed) and unpacked there.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
PACKAGES = {
    "libstdc++6-12-dbg": "usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6.0.30",
    "python3.11-dbg": "usr/bin/python3.11d",
}
# The large case: libjvm.so's debug file (257 MB of .debug_info, zlib as
# shipped), the largest file under the package's .build-id folder. Its name
# is a build id, which changes with the package version.
LARGE = ("openjdk-17-dbg", "usr/lib/debug/.build-id")
# C++ with few, large units (only for merge.py, by --only): Ceph's librados2-dbg holds the debug
# files of librados.so.2 (11 units, 22.7 MB of .debug_info) and libceph-common.so.2 (154 MB),
# zlib as shipped; the files over 10 MB under its .build-id folder, plain, smallest first.
CEPH = ("librados2-dbg", "usr/lib/debug/.build-id")
# dwz -m output, as most of Debian's debug packages ship (only by --only): the GNU linkers' debug
# files of binutils-x86-64-linux-gnu-dbg name strings and DIEs of a supplementary file
# (.gnu_debugaltlink) and hold partial units; the largest file, gold's (25 MB of .debug_info),
# plain. dwz refuses it (".gnu_debugaltlink section already present").
DWZ_MULTIFILE = ("binutils-x86-64-linux-gnu-dbg", "usr/lib/debug/.build-id")
# C with many small units (only by --only): glibc's debug file from libc6-dbg (libc.so.6: 2,063
# units, 589,000 DIEs, 6.8 MB of .debug_info+abbrev), the largest under its .build-id folder, plain.
LIBC = ("libc6-dbg", "usr/lib/debug/.build-id")
# More of Debian's own -dbg packages (only by --only, session 14), zlib as shipped, plain: C built
# with -O2 in many small units (libgsl-dbg: 629 units, 3.6 MB of .debug_info+abbrev, 78,000
# unit-relative location-list operands; graphicsmagick-dbg), C++ (stimfit-dbg, 9.8 MB) and
# C++ with four C units (coinor-libipopt1v5-dbg: libipopt.so.1.9.9, 23 MB); since session 22 C++
# from an older gcc (cupt-dbg: libcupt's debug file, gcc 10, DWARF 4, 28 MB of .debug_info+abbrev)
# and C (libdb5.3-dbg: Berkeley DB's largest, gcc 12, DWARF 5, 11 MB); since session 23 a file
# Debian ran dwz on (libkrb5-dbg: libkrb5's debug file, 1,033 units of which 824 partial units,
# 39 abbreviation tables, 1 MB of .debug_info+abbrev; dwz itself refuses it, "not beneficial");
# since session 25 C with GLib (syslog-ng-dbg: syslog-ng's largest, DWARF 5, 2.2 MB), C++ with Qt
# (structure-synth-dbg: DWARF 4, 18 MB) and C++ Debian ran dwz on without -m (libitpp8v5-dbg:
# IT++, 14 MB, partial units inside the file; dwz finds nothing more to do in it), C (uwsgi-dbg:
# 3 MB; mono-runtime-dbg: mono-sgen's debug file, 10.5 MB, named not by build id) and C++
# (ns2-dbg: the ns-2 network simulator, 15.7 MB), all DWARF 5; since session 26 gcc 11's
# libstdc++ (libstdc++6-11-dbg: libstdc++.so.6.0.29, DWARF 5, 4.6 MB), C++ with a few C units
# (dibbler-server-dbg: DWARF 4, 9.5 MB) and the largest yet, C++ with Qt (connectome-workbench-dbg:
# wb_view's debug file (the GUI), 375 MB of .debug_info+abbrev, DWARF 5; 197 MB shipped, 474 MB plain);
# since session 28 C++ with Qt (plume-creator-dbg: 49 MB), PETSc's debug file as Debian ships it
# (libpetsc-real3.18-dbg: C, 7,609 units, most of them partial units from dwz, 19.5 MB; dwz itself
# refuses it, "not beneficial"), valgrind's largest tool (valgrind-dbg: C, 4.7 MB), C++
# (libpsurface-dbg: 4.4 MB; nam-dbg: the ns-2 animator, C++ and Tcl, 1 MB) and Ceph's librbd
# (librbd1-dbg: C++, 238 MB of .debug_info+abbrev, 42 s and 1.4 GB for dwz); since session 29 the
# 32-bit libstdc++ (lib32stdc++6-12-dbg: i386, ELF32; libx32stdc++6-12-dbg: x32, ELF32 for x86-64);
# since session 30 C++ with wxWidgets (freedink-dfarc-dbg: 4.8 MB), C++ with Qt (stretchplayer-dbg:
# 2.4 MB), C++ (hylafax-server-dbg: its largest, 1 MB), a Cython module as built, not split
# (cython3-dbg: FlowControl's extension, C, 0.9 MB) and a file Debian ran dwz on (xen-utils-4.17-dbg:
# the Xen shim's symbols, C, 1,693 partial units, 2.9 MB).
# The largest debug file under the package's .build-id folder, or the file named.
MORE = (("libgsl-dbg", "usr/lib/debug/.build-id"), ("graphicsmagick-dbg", "usr/lib/debug/.build-id"),
        ("stimfit-dbg", "usr/lib/debug/.build-id"),
        ("coinor-libipopt1v5-dbg", "usr/lib/debug/usr/lib/libipopt.so.1.9.9"),
        ("cupt-dbg", "usr/lib/debug/.build-id"), ("libdb5.3-dbg", "usr/lib/debug/.build-id"),
        ("libkrb5-dbg", "usr/lib/debug/.build-id"), ("syslog-ng-dbg", "usr/lib/debug/.build-id"),
        ("structure-synth-dbg", "usr/lib/debug/.build-id"), ("libitpp8v5-dbg", "usr/lib/debug/.build-id"),
        ("uwsgi-dbg", "usr/lib/debug/.build-id"), ("mono-runtime-dbg", "usr/lib/debug/usr/bin/mono-sgen"),
        ("ns2-dbg", "usr/lib/debug/.build-id"),
        ("libstdc++6-11-dbg", "usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6.0.29"),
        ("dibbler-server-dbg", "usr/lib/debug/.build-id"), ("connectome-workbench-dbg", "usr/lib/debug/.build-id"),
        ("plume-creator-dbg", "usr/lib/debug/.build-id"), ("libpetsc-real3.18-dbg", "usr/lib/debug/.build-id"),
        ("valgrind-dbg", "usr/lib/debug/.build-id"), ("libpsurface-dbg", "usr/lib/debug/.build-id"),
        ("nam-dbg", "usr/lib/debug/usr/bin/nam"), ("librbd1-dbg", "usr/lib/debug/.build-id"),
        ("lib32stdc++6-12-dbg", "usr/lib32/debug/libstdc++.so.6.0.30"),
        ("libx32stdc++6-12-dbg", "usr/libx32/debug/libstdc++.so.6.0.30"),
        ("freedink-dfarc-dbg", "usr/lib/debug/.build-id"), ("stretchplayer-dbg", "usr/lib/debug/.build-id"),
        ("hylafax-server-dbg", "usr/lib/debug/.build-id"),
        ("cython3-dbg", "usr/lib/python3/dist-packages/Cython/Compiler/FlowControl.cpython-311d-x86_64-linux-gnu.so"),
        ("xen-utils-4.17-dbg", "usr/lib/debug/usr/lib/xen-4.17/boot/xen-shim-syms"))
# C++ built here from Debian's own sources (only by --only): gdbserver from gdb-source (gdb 13.1's
# tarball), configured and built with clang++ -gdwarf-4 -O2 and with g++ -O2 (DWARF 5) into
# bench/.cache/gdbserver-*; 81 units of C++ using the standard library. No Debian -dbg package
# is built by clang; these stand for clang's output (its using-declarations, DWARF 4 forms).
# The build takes 2-3 minutes on 2 cores, once.
GDB_SOURCE = ("gdb-source", "usr/src/gdb.tar.xz")
GDBSERVER_BUILDS = {"gdbserver-clang": ("clang", "clang++", "-gdwarf-4"), "gdbserver-gcc": ("gcc", "g++", "-gdwarf-5")}
# A larger C++ program from clang (only by --only gold): the gold linker from binutils-source
# (binutils 2.40's tarball), clang++ -gdwarf-4 -O2 into bench/.cache/gold-clang: 86 units, 17.7 MB
# of .debug_info+abbrev. About 5 minutes on 2 cores, once.
BINUTILS_SOURCE = ("binutils-source", "usr/src/binutils/binutils-2.40.tar.xz")
# C at the size of a whole system (only by --only vmlinux, session 27): the Linux kernel's vmlinux
# from Debian's cloud kernel debug package (the version linux-image-cloud-amd64-dbg depends on),
# 164 MB of .debug_info in 2,172 units, DWARF 5, plain, linked with --emit-relocs (relocation
# sections for its debug sections: merge-types empties those of the sections it rewrites). Only
# the vmlinux is unpacked from the 283 MB package (the modules are .o files).
KERNEL = "linux-image-cloud-amd64-dbg"
EXAMPLES = ["build/cpp_app/shapes", "build/c_app/stats", "build/shared_lib/libgeom.so"]


def unpacked(package: str) -> Path:
    """The package's files, downloaded and unpacked on first use."""
    folder = CACHE / package
    if not folder.exists():
        subprocess.run(["dpkg-deb", "-x", _downloaded(package), str(folder)], check=True)
    return folder


def _downloaded(package: str) -> str:
    """The package's .deb in the cache, downloaded on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    if not glob.glob(str(CACHE / f"{package}_*.deb")):
        subprocess.run(["apt-get", "download", package], cwd=CACHE, check=True)
    return sorted(glob.glob(str(CACHE / f"{package}_*.deb")))[-1]


def third_party() -> list[Path]:
    return [unpacked(package) / member for package, member in PACKAGES.items()]


def _largest(package: str, folder: str) -> Path:
    """The largest debug file under the package's folder (named by build id, which changes with
    the package version)."""
    return max((unpacked(package) / folder).glob("*/*.debug"), key=lambda p: p.stat().st_size)


def large() -> Path:
    return _largest(*LARGE)


def examples() -> list[Path]:
    subprocess.run([sys.executable, "-m", "SCons", "-Q", "-C", str(ROOT)], check=True,
                   stdout=subprocess.DEVNULL)
    return [ROOT / e for e in EXAMPLES]


def _plain(shipped: Path) -> Path:
    """A debug file with plain debug sections (Debian compresses those of its separate debug
    files): every tool then gets the same input and no time goes to (de)compression."""
    plain = shipped.with_name(shipped.name + ".plain")
    if not plain.exists():
        subprocess.run(["objcopy", "--decompress-debug-sections", str(shipped), str(plain)], check=True)
    return plain


def large_plain() -> Path:
    """The large case, plain."""
    return _plain(large())


def ceph_plain() -> list[Path]:
    package, folder = CEPH
    files = [p for p in (unpacked(package) / folder).glob("*/*.debug") if p.stat().st_size > 10 << 20]
    return [_plain(p) for p in sorted(files, key=lambda p: p.stat().st_size)]


def _built(prog: Path, source: tuple[str, str], src: Path, configure: list[str], target: str) -> Path:
    """``prog``, made once in its build folder (the second folder above it: ``build/gold/ld-new``)
    by ``configure`` and ``make target`` from the tarball of Debian's source package ``source``
    (package, tarball), unpacked into ``src``."""
    if prog.exists():
        return prog
    if not (src / "configure").exists():
        src.mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "xf", str(unpacked(source[0]) / source[1]), "-C", str(src), "--strip-components=1"],
                       check=True)
    build = prog.parent.parent
    build.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(src / "configure"), *configure], cwd=build, check=True, stdout=subprocess.DEVNULL)
    # (MAKEINFO=true: bfd's manuals need makeinfo, which the machine may lack, and neither program
    # needs them)
    subprocess.run(["make", f"-j{os.cpu_count() or 1}", "MAKEINFO=true", target], cwd=build, check=True,
                   stdout=subprocess.DEVNULL)
    return prog


_QUIET = ["--disable-gdb", "--disable-sim", "--disable-ld", "--disable-gas", "--disable-binutils", "--disable-gprof",
          "--disable-gprofng", "--disable-nls"]


def gdbserver(name: str) -> Path:
    """gdbserver built as GDBSERVER_BUILDS[name] says, once."""
    cc, cxx, debug = GDBSERVER_BUILDS[name]
    flags = f"{debug} -O2"
    return _built(CACHE / name / "gdbserver" / "gdbserver", GDB_SOURCE, CACHE / "gdb-src",
                  [f"CC={cc}", f"CXX={cxx}", f"CFLAGS={flags}", f"CXXFLAGS={flags}", *_QUIET, "--disable-gold",
                   "--enable-gdbserver"], "all-gdbserver")


def gold_clang() -> Path:
    """gold built by clang++ (BINUTILS_SOURCE), once."""
    flags = "-gdwarf-4 -O2"
    return _built(CACHE / "gold-clang" / "gold" / "ld-new", BINUTILS_SOURCE, CACHE / "binutils-src",
                  ["CC=clang", "CXX=clang++", f"CFLAGS={flags}", f"CXXFLAGS={flags}", *_QUIET, "--enable-gold",
                   "--disable-werror"], "all-gold")


def kernel() -> Path:
    """The vmlinux of KERNEL's current version, downloaded and unpacked on first use."""
    depends = subprocess.run(["apt-cache", "depends", KERNEL], capture_output=True, text=True, check=True).stdout
    package = next(line.split()[-1] for line in depends.splitlines() if line.strip().startswith("Depends:"))
    folder = CACHE / package
    found = sorted(folder.glob("usr/lib/debug/boot/vmlinux-*"))
    if not found:
        deb = _downloaded(package)
        folder.mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(folder), "--wildcards", "./usr/lib/debug/boot/vmlinux-*"],
                       stdin=tar.stdout, check=True)
        if tar.wait() != 0:
            raise RuntimeError(f"dpkg-deb could not read {deb}")
        found = sorted(folder.glob("usr/lib/debug/boot/vmlinux-*"))
    return found[-1]


def all_inputs(only: list[str] | None = None, with_large: bool = False) -> list[Path]:
    """The examples and the everyday third-party binaries, with ``with_large`` the large case
    too (plain); ``only``: just the packages whose name holds one of these words, no examples."""
    if only:
        picked = [unpacked(p) / m for p, m in PACKAGES.items() if any(w in p for w in only)]
        picked += [_plain(_largest(*case)) for case in (LARGE, DWZ_MULTIFILE, LIBC) if any(w in case[0] for w in only)]
        picked += [_plain(_largest(*case) if case[1].endswith(".build-id") else unpacked(case[0]) / case[1])
                   for case in MORE if any(w in case[0] for w in only)]
        picked += [gdbserver(name) for name in GDBSERVER_BUILDS if any(w in name for w in only)]
        picked += [gold_clang()] if any(w in "gold-clang" for w in only) else []
        picked += [kernel()] if any(w in "vmlinux" for w in only) else []
        return picked + (ceph_plain() if any(w in CEPH[0] for w in only) else [])
    return examples() + third_party() + ([large_plain()] if with_large else [])
