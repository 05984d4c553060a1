"""The ``linkplugin`` command: a thin layer over ``linkplugin.api``.

Every failure the user can cause ends in one line on stderr and exit status 2.
"""
from __future__ import annotations

import gc
import os
import _signal as signal  # (why: interrupt.py)
import sys
import threading
from contextlib import contextmanager

from linkplugin import __version__, api, progress
from linkplugin.compiled import note_if_missing
from linkplugin.compress import CODECS
from linkplugin.compress.codec import Settings
from linkplugin.errors import LinkpluginError
from linkplugin.interrupt import Terminated
from linkplugin.memory import describe_peak, own_heap
from linkplugin.pool import allow_fork
from linkplugin.timing import PhaseTimer

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    import argparse
    from typing import Any, Callable, Iterator, NoReturn, TextIO


def _jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        import argparse  # (only ever called by argparse, which is loaded then)

        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class _Arg:
    """One argument of a subcommand, as ``add_argument`` takes it: ``names`` are its flags (or
    its one positional name); ``kind`` is "value", "flag" (store_true), "switch"
    (--X / --no-X) or "positional"; ``group``: the required one-of group it belongs to."""

    __slots__ = ("names", "kind", "type", "choices", "default", "required", "help", "metavar", "group")

    def __init__(self, *names: str, kind: str = "value", type: Callable[[str], object] | None = None,
                 choices: tuple[str, ...] | None = None, default: object = None, required: bool = False,
                 help: str | None = None, metavar: str | None = None, group: str | None = None) -> None:
        self.names, self.kind, self.type, self.choices, self.default = names, kind, type, choices, default
        self.required, self.help, self.metavar, self.group = required, help, metavar, group

    @property
    def dest(self) -> str:
        long = [n for n in self.names if n.startswith("--")]
        return (long[0][2:] if long else self.names[0].lstrip("-")).replace("-", "_")


_TIME = _Arg("--time", kind="flag", help="print a table of phase times")
_QUIET = _Arg("--quiet", kind="flag", help="no progress line on stderr (shown only on a terminal)")
_JOBS_HELP = "worker processes (default: CPU count); never changes the output bytes"

# name: (its arguments, add_parser's arguments)
_COMMANDS: dict[str, tuple[tuple[_Arg, ...], dict[str, str]]] = {
    "compress": ((
        _Arg("input", kind="positional"),
        _Arg("-o", "--output", required=True),
        _Arg("--type", choices=CODECS, default="zlib", help="codec (default zlib)"),
        _Arg("--level", type=int,
             help="codec level: zlib 0-12 (libdeflate's; default 6, as objcopy), zstd 1-22 (default 3)"),
        _Arg("--shard-size", type=int, help="bytes per independently compressed shard "
             "(default: zlib 1 MiB, zstd 4 MiB); changes the output bytes"),
        _Arg("-j", "--jobs", type=_jobs, help="threads compressing at once (default: CPU count); "
             "never changes the output bytes"),
        _TIME, _QUIET,
    ), {"help": "compress .debug_* sections (SHF_COMPRESSED)"}),
    "decompress": ((
        _Arg("input", kind="positional"),
        _Arg("-o", "--output", required=True),
        _TIME, _QUIET,
    ), {"help": "restore plain .debug_* sections"}),
    "merge-types": ((
        _Arg("input", kind="positional"),
        _Arg("-o", "--output", required=True),
        _Arg("-j", "--jobs", type=_jobs, help=_JOBS_HELP),
        _Arg("--compress", choices=CODECS, metavar="zlib|zstd",
             help="then compress the debug sections, in the same pass"),
        _Arg("--level", type=int, help="with --compress: codec level"),
        _TIME, _QUIET,
        _Arg("--stats", kind="flag", help="print units, DIEs, types and bytes saved"),
        _Arg("--odr", kind="flag", help="C++ only: also merge types of one qualified name and size (as "
             "dsymutil's ODR), declarations replaced by the definition; gdb may list some entries under "
             "other files"),
    ), {"help": "remove duplicate DWARF types across compilation units"}),
    "split": ((
        _Arg("input", kind="positional"),
        _Arg("-o", "--output", required=True, help="the stripped program (may be INPUT)"),
        _Arg("--debug-file", metavar="FILE", help="write the debug file here", group="where"),
        _Arg("--debug-dir", metavar="DIR", help="write the debug file under DIR, by build ID", group="where"),
        _Arg("--merge", kind="switch", default=True, help="merge duplicate types in the debug file (default: on)"),
        _Arg("--odr", kind="flag", help="with --merge: C++ types merged by qualified name too "
             "(as merge-types --odr)"),
        _Arg("--compress", choices=(*CODECS, "none"), default="zlib", metavar="zlib|zstd|none",
             help="codec of the debug file's sections (default zlib)"),
        _Arg("--level", type=int, help="codec level"),
        _Arg("-j", "--jobs", type=_jobs, help=_JOBS_HELP),
        _TIME, _QUIET,
    ), {"help": "write a stripped program and a separate debug file (as dh_strip)",
        "description": "Write a stripped copy of INPUT (no .debug_* sections, no symbol table) and a separate "
                       "debug file with merged, compressed debug info, linked by .gnu_debuglink. With "
                       "--debug-dir the debug file goes to DIR/.build-id/xx/yyyy.debug when INPUT has a build "
                       "ID (gdb finds it with 'set debug-file-directory DIR'), else DIR/NAME.debug."}),
    "verify": ((
        _Arg("original", kind="positional"),
        _Arg("new", kind="positional"),
        _Arg("--limit", type=int, default=20, help="differences to print at most"),
    ), {"help": "check that NEW describes every entity of ORIG the same way"}),
    "info": ((
        _Arg("input", kind="positional"),
        _Arg("--all", kind="flag", help="list every section, not only debug ones"),
    ), {"help": "list sections, sizes and compression state"}),
}


def _parse(argv: list[str]) -> Any:
    """The command line as argparse reads it. A well-formed command (every token an exact flag,
    its value or a positional) is read here without argparse, which with the ``re`` module it
    loads is 3 ms of every run's start (a zstd compression of a 16 MB input takes about 60); argparse
    reads anything else (help, abbreviations, every error), with its messages."""
    quick = _quick(argv)
    return quick if quick is not None else _parser(argv).parse_args(argv)


class _Args:
    """The parsed arguments: what argparse's Namespace holds."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)


def _quick(argv: list[str]) -> _Args | None:
    """``argv`` parsed from ``_COMMANDS`` as argparse parses it, or None wherever argparse
    could read it otherwise or would answer with a message (a token not exactly a flag, a value
    that looks like a flag, a missing or invalid value): argparse decides those."""
    if not argv or argv[0] not in _COMMANDS:
        return None
    spec = _COMMANDS[argv[0]][0]
    flags = {name: arg for arg in spec if arg.kind != "positional" for name in arg.names}
    for arg in spec:
        if arg.kind == "switch":
            flags.update({f"--no-{name[2:]}": arg for name in arg.names})
    positionals = [arg for arg in spec if arg.kind == "positional"]
    values: dict[str, object] = {}
    given: list[_Arg] = []
    rest = iter(argv[1:])
    for token in rest:
        if token and not token.startswith("-"):
            if not positionals:
                return None  # one too many
            arg, text = positionals.pop(0), token
        else:
            name, eq, text = token.partition("=")
            arg = flags.get(name)
            if arg is None and not eq and not name.startswith("--") and len(name) > 2:
                arg, text, eq = flags.get(name[:2]), name[2:], "="  # -j2, -oFILE
            if arg is None or (arg.kind != "value" and eq):
                return None
            if arg.kind == "switch":
                values[arg.dest] = not name.startswith("--no-")
            elif arg.kind == "flag":
                values[arg.dest] = True
            else:
                if not eq:
                    text = next(rest, None)
                if text is None or text.startswith("-"):  # (argparse reads -X and "--" values its own ways)
                    return None
        if arg.kind in ("value", "positional"):
            if arg.choices is not None and text not in arg.choices:
                return None
            try:
                # (_jobs raises argparse's own error below 1, for argparse's message)
                value = int(text) if arg.type is _jobs else arg.type(text) if arg.type is not None else text
            except ValueError:
                return None
            if arg.type is _jobs and value < 1:
                return None
            values[arg.dest] = value
        given.append(arg)
    if positionals:
        return None
    groups: dict[str, int] = {}
    for arg in spec:
        if arg.group is not None:
            groups[arg.group] = groups.get(arg.group, 0) + (arg in given)
        if arg.required and arg not in given:
            return None
    if any(count != 1 for count in groups.values()):
        return None
    out = {"command": argv[0]}
    for arg in spec:
        out[arg.dest] = values.get(arg.dest, False if arg.kind == "flag" else arg.default)
    return _Args(**out)


def _parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command's argparse parser; for ``argv`` naming a subcommand, only that subcommand's
    (each subparser is a parser of its own: all seven took 2.3 ms of every run's start)."""
    import argparse

    class Formatter(argparse.HelpFormatter):
        """argparse's help formatter, but for the width: argparse imports shutil for it (and bz2,
        lzma and fnmatch with it) in every add_argument, 2.5 ms. The same width as shutil's."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None) -> None:
            super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)

    p = argparse.ArgumentParser(prog="linkplugin", description="Post-link debug-info tools for ELF files.",
                                formatter_class=Formatter)
    p.add_argument("--version", action="version", version=f"linkplugin {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = argv[0] if argv and argv[0] in _COMMANDS else None
    for name, (spec, kwargs) in _COMMANDS.items():
        if wanted not in (None, name):
            continue
        c = sub.add_parser(name, formatter_class=Formatter, **kwargs)
        groups: dict[str, Any] = {}
        for arg in spec:
            if arg.group is not None and arg.group not in groups:
                groups[arg.group] = c.add_mutually_exclusive_group(required=True)
            where = c if arg.group is None else groups[arg.group]
            options: dict[str, Any] = {"help": arg.help}
            if arg.kind == "flag":
                options["action"] = "store_true"
            elif arg.kind == "switch":
                options.update(action=argparse.BooleanOptionalAction, default=arg.default)
            else:
                options.update(type=arg.type, choices=arg.choices, metavar=arg.metavar)
                if arg.kind == "value":
                    options.update(default=arg.default, required=arg.required)
            where.add_argument(*arg.names, **options)
    return p


def _columns() -> int:
    """shutil.get_terminal_size().columns: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _size_table(report: api.Report) -> str:
    lines = [f"{'section':<24} {'before':>12} {'after':>12} {'ratio':>7}"]
    for b, a in zip(report.before, report.after):
        lines.append(f"{a.name:<24} {b.size:>12} {a.size:>12} {a.size / max(b.size, 1):>7.3f}")
    lines.append(f"{'total':<24} {report.debug_before:>12} {report.debug_after:>12} "
                 f"{report.debug_after / max(report.debug_before, 1):>7.3f}")
    return "\n".join(lines)


def _merge_stats(report: api.MergeReport) -> str:
    from linkplugin.merge.stats import tag_table  # the DWARF engine loads only for merge jobs

    st = report.stats
    lines = [f"units: {st.get('units', 0)}", f"DIEs: {st.get('dies', 0)} -> {st.get('dies_after', 0)}",
             f"types: {st.get('types', 0)}", f"duplicates removed: {st.get('duplicates_removed', 0)}",
             f"units left as they were: {st.get('verbatim_units', 0)}"]
    hashed, rewritten = st.get("python_units", (0, 0))
    if hashed or rewritten:  # a form or shape the compiled core does not take: slower, same bytes
        lines.append(f"units the compiled core left to Python: {hashed} hashed, {rewritten} rewritten")
    lines.append(describe_peak())
    if st.get("tags"):
        lines += tag_table(st["tags"])
    return "\n".join(lines) + "\n" + _size_table(report)


def _info(path: str, every: bool) -> str:
    rows = [r for r in api.section_table(path) if every or r.name.startswith((".debug_", ".zdebug_"))]
    lines = [f"{'[Nr]':>5} {'section':<24} {'on disk':>12} {'plain':>12} {'ratio':>7}  compression"]
    for r in rows:
        lines.append(f"{r.index:>5} {r.name:<24} {r.size:>12} {r.plain_size:>12} "
                     f"{r.size / max(r.plain_size, 1):>7.3f}  {r.compression}")
    size = sum(r.size for r in rows)
    plain = sum(r.plain_size for r in rows)
    lines.append(f"{'':>5} {'total':<24} {size:>12} {plain:>12} {size / max(plain, 1):>7.3f}")
    return "\n".join(lines)


class _Closed(Exception):
    """The reader of the command's stdout or stderr went away (``linkplugin info X | head``)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.stream = stream


def _write(text: str, stream: TextIO | None = None) -> None:
    """One line (or table) on stdout, or on ``stream``, written through at once: a reader that
    went away is found here, not when the interpreter flushes at exit."""
    stream = stream or sys.stdout
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        raise _Closed(stream) from None
    except OSError as exc:  # a full disk behind a redirection (> /dev/full)
        name = "stdout" if stream is sys.stdout else "stderr"
        raise LinkpluginError(f"cannot write to {name}: {exc.strerror}") from None


def _closed(stream: TextIO) -> int:
    """End quietly once the reader of ``stream`` went away, as a Unix tool that SIGPIPE stops
    (``readelf -a X | head``): exit status 128 + SIGPIPE (141), what a shell reports for those.
    What is still buffered for that stream goes to /dev/null: the interpreter's flush at exit
    would otherwise print a traceback of its own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # a stream without a file descriptor (a test's capture)
        pass
    return 128 + signal.SIGPIPE


def _tell(text: str) -> None:
    """A last line on stderr, if stderr can still be written."""
    try:
        _write(text, sys.stderr)
    except _Closed:
        _closed(sys.stderr)
    except LinkpluginError:  # nowhere left to say it (2> /dev/full)
        pass


def run(argv: list[str]) -> int:
    args = _parse(argv)
    if args.command == "verify":
        problems = api.verify_files(args.original, args.new, limit=args.limit)
        for problem in problems:
            _write(problem)
        if problems:
            _write(f"linkplugin: verify: {args.new} differs from {args.original}", sys.stderr)
            return 1
        _write(f"{args.new}: every entity of {args.original} reads the same")
        return 0
    if args.command == "info":
        _write(_info(args.input, args.all))
        return 0
    timer = PhaseTimer()
    # The progress line is erased before anything is printed, so it never
    # mixes with the tables on stdout or the warnings on stderr.
    with progress.shown(sys.stderr, not args.quiet and sys.stderr.isatty()):
        report = _job(args, timer)
    for warning in getattr(report, "warnings", []):
        _write(f"linkplugin: warning: {warning}", sys.stderr)
    # Said after the job, never before an error: bad input gets exactly one line.
    note = note_if_missing()
    if note:
        _write(note, sys.stderr)
    if args.command == "compress":
        _write(_size_table(report))
    if getattr(args, "stats", False):
        _write(_merge_stats(report))
    if args.time:
        _write(timer.table())
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextmanager
def _termination_unwinds() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind the command like Ctrl-C does, so the temporary output file
    and the shared section file are removed and the workers stopped, instead of the process
    dying where it stands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, _terminate) for s in stops}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _job(args: Any, timer: PhaseTimer) -> api.Report:
    if args.command == "compress":
        settings = Settings(codec=args.type, level=args.level, shard_size=args.shard_size)
        return api.compress_file(args.input, args.output, settings, jobs=args.jobs, timer=timer)
    if args.command == "decompress":
        return api.decompress_file(args.input, args.output, timer=timer)
    if args.command == "merge-types":
        settings = Settings(codec=args.compress, level=args.level) if args.compress else None
        return api.merge_types_file(args.input, args.output, jobs=args.jobs, timer=timer, compress=settings,
                                    odr=args.odr)
    settings = None if args.compress == "none" else Settings(codec=args.compress, level=args.level)
    return api.split_file(args.input, args.output, debug_file=args.debug_file, debug_dir=args.debug_dir,
                          merge=args.merge, compress=settings, jobs=args.jobs, timer=timer, odr=args.odr)


def _one_blas_thread() -> None:
    """numpy starts OpenBLAS's thread pool (one thread per core) when it is imported, which costs
    about 60 ms of start-up and exit on two cores; linkplugin never calls BLAS. A value the user
    set is kept, and a process that already loaded numpy is left alone."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    _one_blas_thread()
    allow_fork()  # this process is ours: workers may be forked while it has one thread
    own_heap()  # and its allocator may be set for the merge's threads (memory.map_large_blocks)
    try:
        with _termination_unwinds():
            return run(sys.argv[1:] if argv is None else argv)
    except _Closed as exc:
        return _closed(exc.stream)
    except LinkpluginError as exc:
        _tell(f"linkplugin: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _tell("linkplugin: interrupted")
        return 130
    except Terminated as exc:
        import signal as named  # (the names live in the enums)

        _tell(f"linkplugin: terminated by {named.Signals(exc.signum).name}")
        return 128 + exc.signum


def command() -> NoReturn:
    """The command's process entry (console script and ``python -m linkplugin``): ``main``, then
    an exit that skips tearing down the interpreter, whose freeing of every object and module
    costs tens of milliseconds once the output file is already in place. Only when this
    process started no worker processes (multiprocessing's exit handler stops those); never
    used by callers of ``main`` (tests, fuzzers), whose process goes on.

    The process's threads hand the GIL over after 1 ms rather than 5: a thread whose kernel
    returns waits for the GIL while another runs Python, up to the whole interval, once per
    batch (libgsl's merge at -j2: 629 small units, 4% less time). Set only here, where the
    process is ours (SCons's threads keep the interpreter's default).

    The cyclic garbage collector stays off in this process: the merge's phases turn it off
    anyway (merge/nogc.py), and what is left, importing the engine (thousands of functions and
    classes, each allocation counting towards a collection) and reading the input, made no
    cyclic garbage worth the walks (libgsl's merge: 4 ms of 170)."""
    sys.setswitchinterval(0.001)
    gc.disable()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = _closed(stream)
        except (OSError, ValueError):  # the interpreter's own exit reports it
            sys.exit(code)
    if "multiprocessing" in sys.modules:
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    command()
