"""SCons tool ``debuginfo``, loaded from the installed package:

    import linkplugin.scons
    env = Environment(tools=['default', 'debuginfo'], toolpath=[linkplugin.scons.toolpath()])

The tool is not named ``linkplugin`` because SCons registers a tool module in
``sys.modules`` under the tool's name, which would shadow the package.
"""
from linkplugin.scons import exists, generate  # noqa: F401
