"""SCons tools shipped inside the package: ``toolpath=[linkplugin.scons.toolpath()]``."""
