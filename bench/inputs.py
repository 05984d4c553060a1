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
}
EXAMPLES = ["build/cpp_app/shapes", "build/c_app/stats", "build/shared_lib/libgeom.so"]


def third_party() -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    found = []
    for package, member in PACKAGES.items():
        target = CACHE / package / member
        if not target.exists():
            if not glob.glob(str(CACHE / f"{package}_*.deb")):
                subprocess.run(["apt-get", "download", package], cwd=CACHE, check=True)
            deb = sorted(glob.glob(str(CACHE / f"{package}_*.deb")))[-1]
            subprocess.run(["dpkg-deb", "-x", deb, str(CACHE / package)], check=True)
        found.append(target)
    return found


def examples() -> list[Path]:
    subprocess.run([sys.executable, "-m", "SCons", "-Q", "-C", str(ROOT)], check=True,
                   stdout=subprocess.DEVNULL)
    return [ROOT / e for e in EXAMPLES]


def all_inputs() -> list[Path]:
    return examples() + third_party()
