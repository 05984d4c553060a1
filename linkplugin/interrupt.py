"""Interrupts: only the process that owns the pool decides to stop, and its jobs notice.

A terminal's Ctrl-C sends SIGINT to the whole process group: the pool workers get it too. They
ignore it (``pool.serve``): a worker that raised KeyboardInterrupt would hand it back as a task
result, to be raised again in whatever thread asked, which under SCons is a job thread that then
dies and leaves SCons waiting for it forever.

The owner learns of the signal in one of two ways:

- the ``linkplugin`` command runs in the main thread: SIGINT raises KeyboardInterrupt there as
  usual, and ``cli`` turns SIGTERM and SIGHUP into ``Terminated``;
- inside SCons, SCons's own handler catches SIGINT, SIGTERM and SIGHUP, only sets a flag and
  lets running actions finish. ``watch_signals`` (called when the tool loads, in the main
  thread) asks Python to also write every caught signal's number to a pipe
  (``signal.set_wakeup_fd``), whatever handler SCons installs later; ``check`` reads that pipe
  at every task and phase boundary and raises ``Interrupted``, which the action reports as a
  failed build step, so SCons stops within one task instead of after the whole job.
"""
from __future__ import annotations

import os
# The C module that signal wraps in enums: the same functions and numbers, without importing
# enum (1.5 ms of every command's start).
import _signal as signal
import threading

from linkplugin.errors import LinkpluginError

_STOP_SIGNALS = frozenset(int(s) for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)))

_wakeup_fd: int | None = None  # read end of the pipe Python writes caught signal numbers to
_stopped = False  # sticky: once a stop signal was seen, every later check raises


class Interrupted(LinkpluginError):
    """The build was interrupted by a signal while this job ran."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP in the ``linkplugin`` command: unwinds like KeyboardInterrupt, so
    temporary files are removed on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def watch_signals() -> None:
    """Note stop signals from now on, whatever Python handler later runs for them.

    Only the main thread may set the wakeup fd; elsewhere, or where another part of the
    program already uses it (an event loop), jobs are not told and finish their work.
    """
    global _wakeup_fd
    if _wakeup_fd is not None or threading.current_thread() is not threading.main_thread():
        return
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:
        previous = None
    if previous != -1:
        if previous is not None:
            signal.set_wakeup_fd(previous)
        os.close(read_end)
        os.close(write_end)
        return
    _wakeup_fd = read_end


def stopped() -> bool:
    """Whether a stop signal arrived since ``watch_signals``."""
    try:
        check()
    except Interrupted:
        return True
    return False


def check() -> None:
    """Raise Interrupted if a stop signal arrived since ``watch_signals``."""
    global _stopped
    if _wakeup_fd is not None and not _stopped:
        try:
            seen = os.read(_wakeup_fd, 4096)
        except BlockingIOError:
            seen = b""
        # Only ever set, never cleared: threads check at once, and the one that reads
        # nothing (another took the bytes) must not undo what that one saw.
        if any(number in _STOP_SIGNALS for number in seen):
            _stopped = True
    if _stopped:
        raise Interrupted("interrupted")
