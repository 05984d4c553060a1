"""Small helpers for the typed arrays the compiled path passes around without numpy."""
from __future__ import annotations

from array import array


def filled(typecode: str, n: int, value: int) -> array:
    """``n`` items of ``value``."""
    return array(typecode, [value]) * n


def fits_int64(values: list[int]) -> bool:
    """Whether every value fits an array('q') item (Python's numbers, read from LEB128s, may
    not)."""
    return all(-(1 << 63) <= v < 1 << 63 for v in values)


def flat_rows(rows: list[tuple[int, ...]]) -> array:
    """Rows of integers end to end in one array('q') (the compiled kernels' patch rows)."""
    return array("q", [v for row in rows for v in row])


def shaped(a: array, *shape: int) -> memoryview:
    """``a`` seen as a C-contiguous array of ``shape`` (a compiled kernel's N-dimensional input),
    without a copy."""
    return memoryview(a).cast("B").cast(a.typecode, shape)


__all__ = ["filled", "flat_rows", "shaped"]
