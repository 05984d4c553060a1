"""Coverage-guided fuzzing of one linkplugin command with atheris (libFuzzer), if it is installed.

    python3 -m pip install atheris
    python3 bench/fuzz_atheris.py --command merge-types -- -max_total_time=300

The corpus starts from the seed programs of bench/fuzz.py (compiled into --work); libFuzzer
keeps the inputs that reach new lines of linkplugin. Any exception escaping
``linkplugin.cli.main`` (or an error that is not one line with exit status 2) stops the run and
leaves the input as ``crash-*`` in the current folder; replay one with
``python3 -m linkplugin COMMAND crash-... -o /tmp/out``.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import atheris  # noqa: E402

import fuzzlib  # noqa: E402

with atheris.instrument_imports(include=["linkplugin"]):
    from linkplugin import cli  # noqa: E402
    import linkplugin.merge  # noqa: E402,F401  (loaded lazily by the command: instrument it too)
    import linkplugin.merge.verify  # noqa: E402,F401

COMMANDS = {
    "compress": ["compress", "IN", "-o", "OUT", "-j", "1"],
    "compress-zstd": ["compress", "IN", "-o", "OUT", "-j", "1", "--type", "zstd"],
    "decompress": ["decompress", "IN", "-o", "OUT"],
    "merge-types": ["merge-types", "IN", "-o", "OUT", "-j", "1"],
    "info": ["info", "IN", "--all"],
    "verify": ["verify", "IN", "IN"],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--command", choices=COMMANDS, default="merge-types")
    p.add_argument("--work", type=Path, default=ROOT / "bench" / ".fuzz")
    p.add_argument("--corpus", type=Path, help="default WORK/corpus-COMMAND")
    args, libfuzzer = p.parse_known_args()
    if libfuzzer[:1] == ["--"]:
        libfuzzer = libfuzzer[1:]
    names = fuzzlib.prepare(args.work)
    corpus = args.corpus or args.work / f"corpus-{args.command}"
    if not corpus.exists():
        corpus.mkdir(parents=True)
        for name in names:
            shutil.copyfile(args.work / name, corpus / name)
    scratch = Path(tempfile.mkdtemp(prefix="linkplugin-atheris-"))
    src, out = scratch / "input", scratch / "out" / "output"
    out.parent.mkdir()
    argv = [str(src) if a == "IN" else str(out) if a == "OUT" else a for a in COMMANDS[args.command]]

    def one_input(data: bytes) -> None:
        src.write_bytes(data)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = cli.main(argv)
        lines = err.getvalue().strip().splitlines()
        if rc == 2 and (len(lines) != 1 or not lines[0].startswith("linkplugin: error: ")):
            raise AssertionError(f"unclean error: {err.getvalue()!r}")
        left = os.listdir(out.parent)
        if left not in ([], ["output"]) or (rc != 0 and left):
            raise AssertionError(f"left in the output folder: {left}")
        if left:
            out.unlink()

    atheris.Setup([sys.argv[0], f"-max_len={1 << 17}", *libfuzzer, str(corpus)], one_input)
    try:
        atheris.Fuzz()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
