"""Benchmark inputs: the examples and real third-party binaries with DWARF.

The Debian packages are fetched with ``apt-get download`` into bench/.cache
(never committed) and unpacked there.
"""
from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
PACKAGES = {
    "libstdc++6-12-dbg": "usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6.0.30",
    "python3.11-dbg": "usr/bin/python3.11d",
    # libjvm.so's separate debug file: the large case (257 MB of .debug_info)
    "openjdk-17-dbg": "usr/lib/debug/.build-id/45/183927463c526d5b9c9d456494ad816a7e3fee.debug",
}
EXAMPLES = ["build/cpp_app/shapes", "build/c_app/stats", "build/shared_lib/libgeom.so"]


# Inputs that take minutes: only the merge timing table runs them by default.
LARGE = {"openjdk-17-dbg"}


def third_party(only: list[str] | None = None, large: bool = False) -> list[Path]:
    """The Debian packages' binaries: those whose package name contains a word of ``only``, else
    all of them (the ``LARGE`` ones only with ``large``)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = []
    for package, member in PACKAGES.items():
        if only and not any(word in package for word in only):
            continue
        if not only and package in LARGE and not large:
            continue
        target = CACHE / package / member
        if not target.exists():
            if not glob.glob(str(CACHE / f"{package}_*.deb")):
                subprocess.run(["apt-get", "download", package], cwd=CACHE, check=True)
            deb = sorted(glob.glob(str(CACHE / f"{package}_*.deb")))[-1]
            subprocess.run(["dpkg-deb", "-x", deb, str(CACHE / package)], check=True)
        if package in LARGE:
            target = _plain(target)
        found.append(target)
    return found


def _plain(path: Path) -> Path:
    """A copy with plain debug sections (Debian compresses those of its separate debug files):
    every tool then gets the same input and no time goes to (de)compression."""
    plain = path.with_name(path.name + ".plain")
    if not plain.exists():
        subprocess.run(["objcopy", "--decompress-debug-sections", str(path), str(plain)], check=True)
    return plain


def examples() -> list[Path]:
    subprocess.run([sys.executable, "-m", "SCons", "-Q", "-C", str(ROOT)], check=True,
                   stdout=subprocess.DEVNULL)
    return [ROOT / e for e in EXAMPLES]


def all_inputs(only: list[str] | None = None) -> list[Path]:
    """The examples and every third-party binary, large ones included (``only``: the packages
    whose name contains one of these words, no examples)."""
    return (third_party(only) if only else examples() + third_party(large=True))
