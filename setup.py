"""Builds the optional compiled core (Cython) next to the pure-Python package.

Everything else is in pyproject.toml. Without Cython or a C compiler the package installs
without it and runs the pure-Python engine (same output, slower; the command says so once).
"""
from setuptools import setup
from setuptools.command.build_ext import build_ext

EXTENSIONS = ["linkplugin/dwarf/_scan.pyx", "linkplugin/dwarf/_parse.pyx", "linkplugin/dwarf/_loclists.pyx",
              "linkplugin/merge/_hashcore.pyx", "linkplugin/merge/_rewritecore.pyx", "linkplugin/merge/_tablecore.pyx",
              "linkplugin/_libc.pyx"]


class OptionalBuildExt(build_ext):
    """A failed compile is a warning, not a failed install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "no fast path"
            print(f"linkplugin: warning: compiled core not built ({exc}); using pure Python")

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"linkplugin: warning: {ext.name} not built ({exc}); using pure Python")


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("linkplugin: warning: Cython is missing; the compiled core is not built")
        return []
    return cythonize(EXTENSIONS, compiler_directives={"language_level": "3"}, quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
