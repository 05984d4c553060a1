"""The SCons tool behind ``site_scons/site_tools/debuginfo.py``.

Builders, each ``Builder(target, program)``: ``DebugCompress``,
``DebugDecompress``, ``DebugMergeTypes`` (remove duplicate DWARF types) and
``DebugOptimize`` (merge types, then compress, in one read and one write).

Build cache: each builder's action is a function action, whose signature is
its own bytecode plus the construction variables in ``varlist``. Every setting
that changes the output bytes is listed there, with the plugin's format
version and the codec library's version; the worker count is not (it never
changes the output), so a CacheDir hits across ``-j`` settings and machines.
"""
from __future__ import annotations

import atexit
import threading
import time

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Node
import SCons.Script

import linkplugin
from linkplugin import api
from linkplugin.compress.codec import DEFAULT_LEVEL, DEFAULT_SHARD_SIZE, Settings, codec_version
from linkplugin.errors import LinkpluginError
from linkplugin.pool import default_jobs

# Targets of our builders, and what the actions measured when they ran.
_targets: list[SCons.Node.Node] = []
_ran: dict[str, tuple[int, int, float]] = {}  # path -> (debug bytes before, after, seconds)
_lock = threading.Lock()
_summary_registered = False
_want_table = False  # set by any environment with DEBUGINFO_SUMMARY_TABLE

# DEBUGINFO_DEFAULTS: an empty DEBUGINFO_LEVEL or DEBUGINFO_SHARD_SIZE means
# the codec's default, so a change of default changes every key relying on it.
_COMPRESS_VARS = ["DEBUGINFO_CODEC", "DEBUGINFO_LEVEL", "DEBUGINFO_SHARD_SIZE", "DEBUGINFO_DEFAULTS",
                  "DEBUGINFO_CODEC_VERSION", "DEBUGINFO_VERSION"]


def _jobs(env) -> int:
    jobs = env.get("DEBUGINFO_JOBS")
    if jobs:
        return int(jobs)
    scons_jobs = SCons.Script.GetOption("num_jobs") or 1
    return scons_jobs if scons_jobs > 1 else default_jobs()


def _settings(env) -> Settings:
    level, shard_size = env.subst("$DEBUGINFO_LEVEL"), env.subst("$DEBUGINFO_SHARD_SIZE")
    return Settings(codec=env.subst("$DEBUGINFO_CODEC"), level=int(level) if level else None,
                    shard_size=int(shard_size) if shard_size else None)


def _record(target, report: api.Report, seconds: float) -> None:
    with _lock:
        _ran[str(target)] = (report.debug_before, report.debug_after, seconds)


def _run(target, job) -> int:
    """Run one job for one target; a bad input fails the build with one line."""
    t0 = time.perf_counter()
    try:
        report = job()
    except LinkpluginError as exc:
        raise SCons.Errors.BuildError(node=target, errstr=str(exc), status=2, exitstatus=2) from None
    _record(target, report, time.perf_counter() - t0)
    return 0


def compress_action(target, source, env) -> int:
    return _run(target[0], lambda: api.compress_file(str(source[0]), str(target[0]), _settings(env),
                                                      jobs=_jobs(env)))


def decompress_action(target, source, env) -> int:
    return _run(target[0], lambda: api.decompress_file(str(source[0]), str(target[0])))


def merge_action(target, source, env) -> int:
    return _run(target[0], lambda: api.merge_types_file(str(source[0]), str(target[0]), jobs=_jobs(env)))


def optimize_action(target, source, env) -> int:
    """Merge types, then compress: the file is read and written once."""
    return _run(target[0], lambda: api.merge_types_file(str(source[0]), str(target[0]), jobs=_jobs(env),
                                                         compress=_settings(env)))


def _remember(target, source, env):
    global _want_table
    with _lock:
        _targets.extend(target)
        _want_table = _want_table or bool(env.get("DEBUGINFO_SUMMARY_TABLE"))
    return target, source


def _debug_bytes(path: str) -> int:
    try:
        return sum(r.size for r in api.section_table(path) if r.name.startswith((".debug_", ".zdebug_")))
    except LinkpluginError:
        return 0


def summary(table: bool) -> str:
    """One line saying where our targets came from; with ``table``, sizes too."""
    built = cached = current = 0
    rows = []
    for node in _targets:
        state = node.get_state()
        if state == SCons.Node.no_state:
            continue  # not part of this build
        path = str(node)
        if path in _ran:
            built += 1
            how = f"{_ran[path][2]:.2f}s"
        elif state == SCons.Node.executed:
            # Our action did not run, yet SCons counts the node as made: it
            # came from the CacheDir. (SCons's own "cached" mark is cleared
            # by then.)
            cached += 1
            how = "cache"
        else:
            current += 1
            how = "up to date"
        if table:
            if path in _ran:
                before, after = _ran[path][:2]
            else:
                before, after = _debug_bytes(str(node.sources[0])), _debug_bytes(path)
            rows.append(f"{path:<36} {before:>12} {after:>12} {100 * (1 - after / max(before, 1)):>6.1f}% {how:>10}")
    if not (built or cached or current):
        return ""
    line = (f"debuginfo: {built + cached + current} targets: {built} built, {cached} from cache, "
            f"{current} up to date")
    if table:
        head = f"{'target':<36} {'debug before':>12} {'debug after':>12} {'saved':>7} {'time':>10}"
        return "\n".join([head, *rows, line])
    return line


def _print_summary() -> None:
    text = summary(_want_table)
    if text:
        print(text)


# Builder name: (action function, the variables its output depends on)
_BUILDERS = {
    "DebugCompress": (compress_action, _COMPRESS_VARS),
    "DebugDecompress": (decompress_action, ["DEBUGINFO_VERSION"]),
    "DebugMergeTypes": (merge_action, ["DEBUGINFO_VERSION"]),
    "DebugOptimize": (optimize_action, _COMPRESS_VARS),
}


def generate(env) -> None:
    global _summary_registered
    env.SetDefault(
        DEBUGINFO_CODEC="zlib",
        DEBUGINFO_LEVEL="",
        DEBUGINFO_SHARD_SIZE="",
        DEBUGINFO_DEFAULTS=" ".join(f"{codec}:level={level}:shard={DEFAULT_SHARD_SIZE[codec]}"
                                    for codec, level in sorted(DEFAULT_LEVEL.items())),
        DEBUGINFO_JOBS=0,  # 0: SCons's -j when above 1, else the CPU count
        DEBUGINFO_VERSION=f"{linkplugin.__version__}/format-{linkplugin.FORMAT_VERSION}",
        _debuginfo_codec_version=codec_version,
        DEBUGINFO_CODEC_VERSION="${_debuginfo_codec_version(DEBUGINFO_CODEC)}",
        DEBUGINFO_SUMMARY_TABLE=False,
    )
    for name, (function, varlist) in _BUILDERS.items():
        com = name.upper() + "COM"  # e.g. DEBUGCOMPRESSCOM and DEBUGCOMPRESSCOMSTR
        # The COMSTR goes on the function action itself: the "$DEBUGCOMPRESSCOM"
        # action of the builder hands back this object and drops its own.
        env.SetDefault(**{com: SCons.Action.Action(function, f"${com}STR", varlist=varlist),
                          com + "STR": f"{name} $TARGET"})
        env["BUILDERS"][name] = SCons.Builder.Builder(action=SCons.Action.Action(f"${com}"),
                                                      single_source=True, emitter=_remember)
    if not _summary_registered:
        _summary_registered = True
        atexit.register(_print_summary)


def exists(env) -> bool:
    return True
