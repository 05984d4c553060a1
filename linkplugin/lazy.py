"""numpy, imported on first use.

The compiled merge (the ``_*core`` kernels) passes its arrays as ``array.array`` and
memoryviews, and never needs numpy: importing it costs a small input's merge 60 ms and 14 MiB
(OpenBLAS and the extension's pages), a fifth of the run against dwz. The pure-Python path, the
index rebuilds and the ODR mode still compute with numpy: their modules name it ``np`` from
here, and the first attribute read imports it.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs every command 2 ms of its start)
    from typing import Any


class _OnDemand:
    """Stands for the numpy module: each attribute is fetched from it once, then kept."""

    def __getattr__(self, name: str) -> Any:
        import numpy

        value = getattr(numpy, name)
        setattr(self, name, value)
        return value


np: Any = _OnDemand()

__all__ = ["np"]
