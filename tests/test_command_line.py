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
    ["compress", "", "-o", "o"], ["split", "in", "-o", "o"],
    ["split", "in", "-o", "o", "--debug-dir", "d", "--debug-file", "f"],
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


def test_random_command_lines_read_alike_or_are_left_to_argparse() -> None:
    """Command lines drawn from every flag's spellings, values good and bad, and odd tokens:
    whatever _quick reads, argparse reads the same way; where argparse stops with a message,
    _quick has left it to argparse."""
    import contextlib
    import io
    import random

    rng = random.Random(24)
    values = ["in", "out", "x.debug", "2", "0", "-1", "+3", "zlib", "zstd", "none", "lz4", "", "-", "--", "a=b"]
    read = 0
    for case in range(4000):
        command = rng.choice(list(cli._COMMANDS))
        spec = cli._COMMANDS[command][0]
        tokens: list[str] = [command]
        if rng.random() < 0.8:  # most lines start complete, so that the extras decide
            groups: set[str] = set()
            for arg in spec:
                if arg.kind == "positional":
                    tokens.append(f"{arg.dest}.elf")
                elif arg.required or (arg.group is not None and arg.group not in groups):
                    tokens += [arg.names[-1], "out"]
                    groups.add(arg.group or "")
        for _ in range(rng.randrange(5)):
            arg = rng.choice(spec)
            name = rng.choice(arg.names)
            shape = rng.randrange(6)
            if arg.kind == "positional" or shape == 0:
                tokens.append(rng.choice(values))
            elif arg.kind == "switch" and shape == 1:
                tokens.append("--no-" + name[2:])
            elif shape == 2 and len(name) > 3:
                tokens.append(name[:-1])  # an abbreviation
            elif shape == 3:
                tokens.append(f"{name}={rng.choice(values)}")
            elif shape == 4 and not name.startswith("--"):
                tokens.append(name + rng.choice(values))  # -j2, -oFILE
            else:
                tokens.append(name)
                if arg.kind == "value":
                    tokens.append(rng.choice(values))
        quick = cli._quick(tokens)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            try:
                full = vars(cli._parser(tokens).parse_args(tokens))
            except SystemExit:
                full = None
        if quick is not None:
            read += 1
            assert full is not None and vars(quick) == full, tokens
    assert read > 200  # (the draw reaches the quick path often enough to mean something)
