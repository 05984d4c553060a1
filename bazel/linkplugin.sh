#!/bin/sh
# The tool behind linkplugin_debuginfo: the pip-installed linkplugin, run by
# the interpreter in LINKPLUGIN_PYTHON (set it with
# --action_env=LINKPLUGIN_PYTHON=/path/to/python3), else by the python3 on the
# action's PATH, which --incompatible_strict_action_env fixes to
# /bin:/usr/bin:/usr/local/bin. Both are part of every action's cache key, so
# keep them the same on every machine that shares a cache.
exec "${LINKPLUGIN_PYTHON:-python3}" -m linkplugin "$@"
