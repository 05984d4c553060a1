"""The SCons tool ``debuginfo`` (``linkplugin/site_tools/debuginfo.py``).

Builders, each ``Builder(target, program)``: ``DebugCompress``,
``DebugDecompress``, ``DebugMergeTypes`` (remove duplicate DWARF types),
``DebugOptimize`` (merge types, then compress, in one read and one write) and
``DebugSplit`` (a stripped program plus a separate debug file).

Auto mode: with ``DEBUGINFO_AUTO`` set to ``optimize``, ``compress`` or
``merge``, every ``Program``, ``SharedLibrary`` and ``LoadableModule`` is
post-processed in place by its own builder: the link and our step are one
build step, so the target keeps its name, ``scons -c`` removes nothing else,
and a CacheDir stores the final bytes under a key that holds our settings.

Build cache: each builder's action is a function action, whose signature is
its own bytecode plus the construction variables in ``varlist``. Every setting
that changes the output bytes is listed there, with the plugin's format
version and the codec library's version; the worker count is not (it never
changes the output), so a CacheDir hits across ``-j`` settings and machines.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import threading
import time

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Node
import SCons.Script
import SCons.Tool

import linkplugin
from linkplugin import api
from linkplugin.compress.codec import DEFAULT_LEVEL, DEFAULT_SHARD_SIZE, Settings, codec_version
from linkplugin.errors import LinkpluginError
from linkplugin.interrupt import Interrupted, watch_signals
from linkplugin.pool import default_jobs

# Targets of our builders, and what the actions measured when they ran.
_targets: list[SCons.Node.Node] = []
_ran: dict[str, tuple[int, int, float]] = {}  # path -> (debug bytes before, after, seconds)
_lock = threading.Lock()
_INTERRUPTED = "Build interrupted."  # what SCons says of a step it stopped
_summary_registered = False
_want_table = False  # set by any environment with DEBUGINFO_SUMMARY_TABLE

# DEBUGINFO_DEFAULTS: an empty DEBUGINFO_LEVEL or DEBUGINFO_SHARD_SIZE means
# the codec's default, so a change of default changes every key relying on it.
_COMPRESS_VARS = ["DEBUGINFO_CODEC", "DEBUGINFO_LEVEL", "DEBUGINFO_SHARD_SIZE", "DEBUGINFO_DEFAULTS",
                  "DEBUGINFO_CODEC_VERSION", "DEBUGINFO_VERSION"]
# DEBUGINFO_MERGE_ODR (yes/no): C++ types merged by qualified name too, in every job that merges
_MERGE_VARS = ["DEBUGINFO_VERSION", "DEBUGINFO_MERGE_ODR"]
_OPTIMIZE_VARS = [*_COMPRESS_VARS, "DEBUGINFO_MERGE_ODR"]
_SPLIT_VARS = [*_COMPRESS_VARS, "DEBUGINFO_SPLIT_MERGE", "DEBUGINFO_SPLIT_COMPRESS", "DEBUGINFO_OBJCOPY_VERSION",
               "DEBUGINFO_MERGE_ODR"]


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off", "none"})


def _flag(env, name: str) -> bool:
    """A yes/no construction variable: a Python bool or number, or a string as SCons users write
    it on the command line or in an ARGUMENTS-fed environment ("no", "0", "false" are false:
    ``bool("False")`` would be true)."""
    value = env.get(name)
    if value is None or isinstance(value, (bool, int)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SCons.Errors.UserError(f"{name}={value!r}: expected yes or no (1/0, true/false, on/off)")


def _jobs(env) -> int:
    jobs = env.get("DEBUGINFO_JOBS")
    if jobs:
        try:
            count = int(jobs)
        except (TypeError, ValueError):
            count = 0
        if count < 1:
            raise SCons.Errors.UserError(f"DEBUGINFO_JOBS={jobs!r}: expected a number of worker processes >= 1")
        return count
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
    except (Interrupted, KeyboardInterrupt):
        # In SCons's own words, whether our action or SCons's handler saw the signal first.
        # (KeyboardInterrupt must never leave an action: SCons's job threads catch only
        # Exception, and a job thread that dies leaves SCons waiting for it forever.)
        raise SCons.Errors.BuildError(node=target, errstr=_INTERRUPTED, status=2, exitstatus=2) from None
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
    return _run(target[0], lambda: api.merge_types_file(str(source[0]), str(target[0]), jobs=_jobs(env),
                                                         odr=_flag(env, "DEBUGINFO_MERGE_ODR")))


def optimize_action(target, source, env) -> int:
    """Merge types, then compress: the file is read and written once."""
    return _run(target[0], lambda: api.merge_types_file(str(source[0]), str(target[0]), jobs=_jobs(env),
                                                         compress=_settings(env),
                                                         odr=_flag(env, "DEBUGINFO_MERGE_ODR")))


# DEBUGINFO_AUTO: what each link builder's own step does after linking.
AUTO_MODES = ("optimize", "compress", "merge", "split")
_AUTO_BUILDERS = ("Program", "SharedLibrary", "LoadableModule")
_auto_targets: set[str] = set()


def _auto_mode(env) -> str:
    mode = env.subst("$DEBUGINFO_AUTO")
    if mode and mode not in AUTO_MODES:
        raise SCons.Errors.UserError(f"DEBUGINFO_AUTO={mode!r}: expected one of {', '.join(AUTO_MODES)} "
                                     f"or empty")
    return mode


def auto_action(target, source, env) -> int:
    """Rewrite the just-linked ``target[0]`` in place (temp file + rename).

    Only the first target is the linked file: the others of a versioned
    shared library are symlinks to it.
    """
    path = str(target[0])
    mode = _auto_mode(env)

    def job() -> api.Report:
        if mode == "split":  # stripped in place, the debug file beside it (the emitter added it)
            return _split(env, path, path, _debug_file_of(env, target[0]))
        if mode == "compress":
            return api.compress_file(path, path, _settings(env), jobs=_jobs(env))
        if not api.has_debug_info(path):  # linked without -g: nothing to merge
            return api.compress_file(path, path, _settings(env), jobs=_jobs(env)) \
                if mode == "optimize" else api.Report()
        return api.merge_types_file(path, path, jobs=_jobs(env),
                                    compress=_settings(env) if mode == "optimize" else None,
                                    odr=_flag(env, "DEBUGINFO_MERGE_ODR"))
    try:
        return _run(target[0], job)
    except SCons.Errors.BuildError:
        # The linker's output is not the target this step promised (as make's .DELETE_ON_ERROR):
        # leave nothing to install or run by mistake; the next build links it again anyway.
        for node in target:
            if os.path.lexists(str(node)):
                os.unlink(str(node))
        raise


def _auto_generator(source, target, env, for_signature):
    """Our step after the link, or nothing (an empty list: no bytes in the
    signature, so a program's cache key is the same as without the tool)."""
    mode = _auto_mode(env)
    return _auto_actions[mode] if mode else []


# One action per mode, so the build prints what it does (``DebugOptimize app``).
# The signature holds the mode and every setting that changes the bytes;
# never the worker count.
_auto_actions = {
    mode: SCons.Action.Action(auto_action, f"${com}STR", varlist=["DEBUGINFO_AUTO", *varlist])
    for mode, com, varlist in [("optimize", "DEBUGOPTIMIZECOM", _OPTIMIZE_VARS),
                               ("compress", "DEBUGCOMPRESSCOM", _COMPRESS_VARS),
                               ("merge", "DEBUGMERGETYPESCOM", _MERGE_VARS),
                               ("split", "DEBUGSPLITCOM", _SPLIT_VARS)]
}


def _debug_file_of(env, node) -> str:
    return env.subst("${TARGET}$DEBUGINFO_SPLIT_SUFFIX", target=node)


def _remember_auto(target, source, env):
    global _want_table
    mode = _auto_mode(env)
    if mode and target:
        with _lock:
            _want_table = _want_table or _flag(env, "DEBUGINFO_SUMMARY_TABLE")
            _targets.append(target[0])
            _auto_targets.add(str(target[0]))
        if mode == "split":  # the debug file is a target too: cached, cleaned, installed with it
            target = [*target, env.File(_debug_file_of(env, target[0]))]
    return target, source


def _add_auto_step(env) -> None:
    """Append our step to each link builder's actions, once per builder."""
    SCons.Tool.createProgBuilder(env)
    SCons.Tool.createSharedLibBuilder(env)
    SCons.Tool.createLoadableModuleBuilder(env)
    for name in _AUTO_BUILDERS:
        builder = env["BUILDERS"][name]
        if getattr(builder, "_debuginfo_auto", False):
            continue
        builder.action = SCons.Action.Action([builder.action,
                                              SCons.Action.Action(_auto_generator, generator=1)])
        # On the builder, after its own emitter ($PROGEMITTER, ...), rather than in that
        # variable: a link tool loaded after this one sets the variable afresh.
        builder.emitter = SCons.Builder.ListEmitter([e for e in (builder.emitter, _remember_auto) if e])
        builder._debuginfo_auto = True


def _split(env, src: str, stripped: str, debug: str) -> api.Report:
    codec = _settings(env) if _flag(env, "DEBUGINFO_SPLIT_COMPRESS") else None
    return api.split_file(src, stripped, debug_file=debug, merge=_flag(env, "DEBUGINFO_SPLIT_MERGE"),
                          compress=codec, jobs=_jobs(env), odr=_flag(env, "DEBUGINFO_MERGE_ODR"))


def split_action(target, source, env) -> int:
    """``target[0]``: the stripped program; ``target[1]``: its debug file."""
    return _run(target[0], lambda: _split(env, str(source[0]), str(target[0]), str(target[1])))


def _split_emitter(target, source, env):
    """The debug file is the second target: given, or the first one plus $DEBUGINFO_SPLIT_SUFFIX."""
    if len(target) == 1:
        target = [target[0], env.File(_debug_file_of(env, target[0]))]
    return _remember(target[:1], source, env)[0] + target[1:], source


def _objcopy_version() -> str:
    """objcopy writes the split outputs: its version is part of their cache key."""
    global _objcopy_seen
    if _objcopy_seen is None:
        tool = shutil.which("objcopy")
        out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout if tool else ""
        _objcopy_seen = (out.splitlines() or ["objcopy missing"])[0]
    return _objcopy_seen


_objcopy_seen: str | None = None


def _remember(target, source, env):
    global _want_table
    with _lock:
        _targets.extend(target)
        _want_table = _want_table or _flag(env, "DEBUGINFO_SUMMARY_TABLE")
    return target, source


def _debug_bytes(path: str) -> int:
    try:
        return sum(r.size for r in api.section_table(path) if r.name.startswith((".debug_", ".zdebug_")))
    except LinkpluginError:
        return 0


def summary(table: bool) -> str:
    """One line saying where our targets came from; with ``table``, sizes too."""
    built = cached = current = failed = 0
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
        elif state == SCons.Node.up_to_date:
            current += 1
            how = "up to date"
        else:  # its step failed or was interrupted, or it waited for one that did
            failed += 1
            how = "not built"
        if table:
            if path in _ran:
                before, after = _ran[path][:2]
            elif path in _auto_targets:  # its sources are objects: no "before" to show
                before, after = None, _debug_bytes(path)
            else:
                before, after = _debug_bytes(str(node.sources[0])), _debug_bytes(path)
            saved = "-" if before is None else f"{100 * (1 - after / max(before, 1)):.1f}%"
            rows.append(f"{path:<36} {'-' if before is None else before:>12} {after:>12} {saved:>7} {how:>10}")
    if not (built or cached or current or failed):
        return ""
    line = (f"debuginfo: {built + cached + current + failed} targets: {built} built, {cached} from cache, "
            f"{current} up to date" + (f", {failed} not built" if failed else ""))
    if table:
        head = f"{'target':<36} {'debug before':>12} {'debug after':>12} {'saved':>7} {'time':>10}"
        return "\n".join([head, *rows, line])
    return line


def _print_summary() -> None:
    if SCons.Script.GetOption("clean"):
        return  # nothing was built or fetched
    text = summary(_want_table)
    if text:
        print(text)


# Builder name: (action function, the variables its output depends on)
_BUILDERS = {
    "DebugCompress": (compress_action, _COMPRESS_VARS),
    "DebugDecompress": (decompress_action, ["DEBUGINFO_VERSION"]),
    "DebugMergeTypes": (merge_action, _MERGE_VARS),
    "DebugOptimize": (optimize_action, _OPTIMIZE_VARS),
    "DebugSplit": (split_action, _SPLIT_VARS),
}


def generate(env) -> None:
    global _summary_registered
    # SCons's own handler only flags an interrupt and waits for running actions: let ours
    # see it too, so that they stop at their next task instead of running to the end.
    watch_signals()
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
        DEBUGINFO_AUTO="",  # "optimize", "compress", "merge" or "split": every linked program, in place
        DEBUGINFO_SPLIT_SUFFIX=".debug",
        DEBUGINFO_SPLIT_MERGE=True,
        DEBUGINFO_SPLIT_COMPRESS=True,  # with $DEBUGINFO_CODEC
        DEBUGINFO_MERGE_ODR=False,  # C++ types merged by qualified name too (merge-types --odr)
        _debuginfo_objcopy_version=_objcopy_version,
        DEBUGINFO_OBJCOPY_VERSION="${_debuginfo_objcopy_version()}",
    )
    for name, (function, varlist) in _BUILDERS.items():
        com = name.upper() + "COM"  # e.g. DEBUGCOMPRESSCOM and DEBUGCOMPRESSCOMSTR
        # The COMSTR goes on the function action itself: the "$DEBUGCOMPRESSCOM"
        # action of the builder hands back this object and drops its own.
        env.SetDefault(**{com: SCons.Action.Action(function, f"${com}STR", varlist=varlist),
                          com + "STR": f"{name} $TARGET"})
        env["BUILDERS"][name] = SCons.Builder.Builder(
            action=SCons.Action.Action(f"${com}"), single_source=True,
            emitter=_split_emitter if name == "DebugSplit" else _remember)
    _add_auto_step(env)
    if not _summary_registered:
        _summary_registered = True
        atexit.register(_print_summary)


def toolpath() -> str:
    """The folder holding the ``debuginfo`` tool, for ``Environment(toolpath=[...])``
    or ``SCons.Tool.DefaultToolpath``: nothing to copy into a project."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "site_tools")


def exists(env) -> bool:
    return True
