"""SCons tool ``debuginfo``: compress (and merge) the debug info of linked programs.

    env = Environment(tools=['default', 'debuginfo'])
    env.DebugCompress('app.z', env.Program('app', sources))

All the work lives in the ``linkplugin`` package (``pip install linkplugin``);
this file only finds it. The tool is not named ``linkplugin`` because SCons
registers a tool module in ``sys.modules`` under the tool's name, which would
shadow the package.
"""
import os
import sys

try:
    import linkplugin  # noqa: F401
except ImportError:
    # Running from a checkout that was not pip-installed: the package sits two
    # folders up. Spawned pool workers inherit sys.path, so they find it too.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from linkplugin.scons import exists, generate  # noqa: E402,F401
