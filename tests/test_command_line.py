"""The command line: what ``cli._quick`` reads without argparse is what argparse reads, and
everything else is left to argparse (help, abbreviations, every usage error)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from linkplugin import cli

# Well-formed commands: every option of every subcommand, in each spelling argparse takes.
READ_ALIKE = [
    ["compress", "in", "-o", "out"],
    ["compress", "in", "-o", "out", "--type", "zstd", "-j2", "--level=3", "--time", "--quiet"],
    ["compress", "-oout", "in", "--shard-size", "65536", "-j", "3"],
    ["compress", "in", "--output=out", "--type=zlib", "--jobs=1", "--level", "0"],
    ["compress", "in", "-o", "out", "-o", "again", "-j", "2", "-j", "1"],  # the last one counts
    ["compress", "in", "-o", "out", "-j=4", "--level", "+5"],
    ["decompress", "in", "-o", "out", "--time"],
    ["decompress", "--quiet", "-o", "out", "in"],
    ["merge-types", "in", "-o", "o", "-j2", "--stats", "--odr", "--compress", "zstd", "--level", "5"],
    ["merge-types", "in", "-o", "o", "--compress=zlib", "--time", "--quiet"],
    ["split", "in", "-o", "o", "--debug-dir", "d", "--no-merge", "--odr", "--compress", "none", "-j2"],
    ["split", "in", "-o", "o", "--debug-file", "f", "--merge", "--level", "9", "--time", "--quiet"],
    ["split", "in", "-o", "in", "--debug-file=f", "--debug-file", "g", "--compress", "zstd"],
    ["verify", "a", "b"],
    ["verify", "--limit", "3", "a", "b"],
    ["info", "x"],
    ["info", "--all", "x"],
]

# What argparse must decide: help, version, abbreviations, a missing or invalid value, a
# value that looks like an option, too few or too many positionals, a one-of group broken.
LEFT_TO_ARGPARSE = [
    [], ["--version"], ["-h"], ["compress", "-h"], ["merge-types", "--help"], ["nosuch", "x"],
    ["compress", "in"], ["compress", "in", "-o"], ["compress", "in", "-o", "-x"],
    ["compress", "in", "-o", "o", "--typ", "zstd"], ["compress", "in", "-o", "o", "-j0"],
    ["compress", "in", "-o", "o", "-jx"], ["compress", "in", "-o", "o", "--type", "lz4"],
    ["compress", "in", "-o", "o", "--time=1"], ["compress", "in", "-o", "o", "--level", "-1"],
    ["compress", "-", "-o", "o"], ["compress", "in", "-o", "o", "--"], ["compress", "in", "x", "-o", "o"],
    ["compress", "", "-o", "o"], ["split", "in", "-o", "o"], ["split", "in", "-o", "o", "--debug-dir", "d", "--debug-file", "f"],
    ["split", "in", "-o", "o", "--debug-dir", "d", "--merge=1"], ["verify", "a"], ["info", "a", "b"],
    ["merge-types", "in", "-o", "o", "--compress", "none"],
]


@pytest.mark.parametrize("argv", READ_ALIKE, ids=" ".join)
def test_read_as_argparse_reads_it(argv: list[str]) -> None:
    quick = cli._quick(argv)
    assert quick is not None
    assert vars(quick) == vars(cli._parser(argv).parse_args(argv))


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_everything_else_left_to_argparse(argv: list[str]) -> None:
    assert cli._quick(argv) is None


def test_a_well_formed_command_loads_neither_argparse_nor_enum() -> None:
    # (re and enum with it: 4 ms of every command's start)
    # (what the interpreter's site already loaded does not count: a .pth file may load re)
    probe = ("import sys; before = set(sys.modules); from linkplugin import cli; "
             "assert cli._quick(['merge-types', 'a', '-o', 'b', '-j2']) is not None; "
             "print(sorted({'argparse', 're', 'enum', 'signal'} & (set(sys.modules) - before)))")
    got = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert got.stdout.strip() == "[]"
