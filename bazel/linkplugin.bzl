"""linkplugin_debuginfo: small, deterministic debug info for any ELF a target builds.

    load("@linkplugin//:linkplugin.bzl", "linkplugin_debuginfo")

    linkplugin_debuginfo(name = "app.small", binary = ":app")                  # merge types, then zlib
    linkplugin_debuginfo(name = "app.z", binary = ":app", mode = "compress", codec = "zstd")
    linkplugin_debuginfo(name = "dist/app", binary = ":app", mode = "split")   # dist/app + dist/app.debug

The cache key of each action is its command line, the bytes of its input and
of the tool script, and the action environment (PATH and any --action_env):
every setting that changes the output is an argument, and nothing that does not
change it is. The worker count is left out on purpose: linkplugin uses every
CPU of the machine that runs the action, and its output bytes never depend on
that number, so a disk or remote cache hits whatever machine filled it.
"""

_CODECS = ["zlib", "zstd", "none"]

def _arguments(ctx, binary, outputs):
    """The linkplugin command line for ctx.attr.mode."""
    mode = ctx.attr.mode
    codec = ctx.attr.codec
    args = ctx.actions.args()
    if mode == "compress":
        if codec == "none":
            fail("mode 'compress' needs codec 'zlib' or 'zstd'", attr = "codec")
        args.add_all(["compress", binary, "-o", outputs[0], "--type", codec])
    elif mode == "optimize":
        args.add_all(["merge-types", binary, "-o", outputs[0]])
        if codec != "none":
            args.add_all(["--compress", codec])
    else:
        args.add_all(["split", binary, "-o", outputs[0], "--debug-file", outputs[1]])
        args.add("--merge" if ctx.attr.merge else "--no-merge")
        args.add_all(["--compress", codec])
    if ctx.attr.level != 0:
        if codec == "none":
            fail("a level needs codec 'zlib' or 'zstd'", attr = "level")
        args.add_all(["--level", str(ctx.attr.level)])
    return args

def _linkplugin_debuginfo_impl(ctx):
    binary = ctx.file.binary
    outputs = [ctx.actions.declare_file(ctx.label.name)]
    if ctx.attr.mode == "split":
        outputs.append(ctx.actions.declare_file(ctx.label.name + ".debug"))
    tool = ctx.attr.tool[DefaultInfo].files_to_run
    ctx.actions.run_shell(
        # `linkplugin compress` prints a size table on stdout: the build log
        # does not need it. Errors still reach Bazel on stderr.
        command = 'exec "$@" > /dev/null',
        arguments = [ctx.actions.args().add(ctx.executable.tool), _arguments(ctx, binary, outputs)],
        inputs = [binary],
        tools = [tool],
        outputs = outputs,
        # PATH (to find python3) and --action_env settings such as PYTHONPATH.
        use_default_shell_env = True,
        mnemonic = "Linkplugin" + ctx.attr.mode.capitalize(),
        progress_message = "linkplugin %s %s" % (ctx.attr.mode, binary.short_path),
    )
    groups = {"debug": depset(outputs[1:]), "stripped": depset(outputs[:1])} if len(outputs) == 2 else {}
    return [
        DefaultInfo(files = depset(outputs)),
        OutputGroupInfo(**groups),
    ]

linkplugin_debuginfo = rule(
    implementation = _linkplugin_debuginfo_impl,
    doc = """Runs linkplugin on the one ELF file `binary` builds.

mode 'optimize' (merge duplicate DWARF types, then compress) and 'compress'
write the file NAME; 'split' writes the stripped program NAME and its debug
file NAME.debug (merged and compressed), linked by .gnu_debuglink, with the
output groups 'stripped' and 'debug' to pick one of them.""",
    attrs = {
        "binary": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "A target or file that is one ELF file: cc_binary, a genrule output, ...",
        ),
        "mode": attr.string(default = "optimize", values = ["optimize", "compress", "split"]),
        "codec": attr.string(
            default = "zlib",
            values = _CODECS,
            doc = "Compression of the .debug_* sections; 'none' merges types only (optimize, split).",
        ),
        "level": attr.int(default = 0, doc = "Codec level; 0 is the codec's default (zlib 6, zstd 3)."),
        "merge": attr.bool(default = True, doc = "split: merge duplicate types in the debug file."),
        "tool": attr.label(
            default = Label("//:linkplugin.sh"),
            allow_files = True,
            executable = True,
            cfg = "exec",
            doc = "The linkplugin command; the default runs the pip-installed one with python3.",
        ),
    },
)
