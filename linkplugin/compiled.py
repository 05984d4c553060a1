"""The optional compiled core (Cython extensions built by ``pip install``) and its fallback.

Every compiled kernel has a pure-Python twin that gives the same results; the compiled one is
used when it was built, unless ``LINKPLUGIN_PURE_PYTHON=1`` asks for the pure path (the identity
tests run both). When it is missing, the command says so once, in one line on stderr.
"""
from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

PURE_ENV = "LINKPLUGIN_PURE_PYTHON"
_missing: list[str] = []
_noted = False


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def load_compiled(name: str) -> ModuleType | None:
    """The compiled module ``name``, or None (pure path requested, or not built)."""
    if pure_requested():
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing.append(name)
        return None


def note_if_missing() -> str | None:
    """The one line for stderr, once per command and only in the main process, if a compiled
    kernel was missing when the job wanted it and the pure path was not asked for (the command
    writes it after a job that succeeded)."""
    global _noted
    if _noted or not _missing:
        return None
    _noted = True
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        return None  # a worker: the parent says it
    return ("linkplugin: note: the compiled core is not built, merge-types runs in pure Python (several "
            "times slower); to build it: apt-get install gcc python3-dev && pip install --force-reinstall "
            "--no-deps .")


def compiled_in_use() -> bool:
    return not _missing and not pure_requested()
