"""Pausing the cyclic garbage collector during the heavy phases."""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:  # (annotations only: importing typing costs 2 ms of the engine's import)
    from typing import Iterator

_lock = threading.Lock()
_holders = 0  # blocks inside no_gc, in every thread (SCons runs several jobs at once)
_was_enabled = False


@contextmanager
def no_gc() -> Iterator[None]:
    """The phases allocate millions of small tuples that never form cyclic garbage; every
    collection would walk all of them (measured: 2-10x slower decoding with the collector on).

    Counted across threads: the collector comes back on when the last block exits, not when
    the first of two concurrent jobs ends."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
