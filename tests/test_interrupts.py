"""Interrupts and faults: Ctrl-C and SIGTERM inside SCons builds and the command, in every phase;
a full output file system, an unwritable output folder.

Every case must end within seconds with a non-zero status and one clear message, no thread
traceback, no worker process left, no partial or temporary output, and the input unchanged.
A job is held in a given phase with LINKPLUGIN_TEST_PAUSE (see linkplugin/timing.py); the
signal goes to the whole process group, as a terminal's Ctrl-C does.
"""
from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conftest import C_PROGRAM, ROOT, run

# What a build step of each of our builders goes through, in order.
OPTIMIZE_PHASES = ["read", "read+hash", "table", "rewrite", "layout", "sections", "compress+write"]
COMPRESS_PHASES = ["read", "compress+write"]
LIMIT = 60  # seconds any one case may take before it counts as a hang


def _session_processes(sid: int) -> list[str]:
    """Processes still alive in session ``sid`` (pid and command line)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            alive.append(f"{entry} {cmdline}")
    return alive


def _wait_for_line(path: Path, text: str, proc: subprocess.Popen, count: int = 1) -> None:
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if path.read_text(errors="replace").count(text) >= count:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"never saw {text!r} ({count}x): {path.read_text(errors='replace')}")


def _finish(proc: subprocess.Popen) -> int:
    try:
        return proc.wait(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("hang: still running a minute after the signal") from None


def _assert_nothing_left(proc: subprocess.Popen, folder: Path) -> None:
    deadline = time.monotonic() + 10
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # daemonic workers end as their parent exits
    assert _session_processes(proc.pid) == []
    assert [p.name for p in folder.iterdir() if p.name.startswith(".linkplugin-")] == []


def _project(tmp_path: Path, a: Path, b: Path, builder: str, settings: str = "") -> Path:
    """A user's SCons project with two targets of ``builder``, made from copies of ``a`` and ``b``."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "site_scons", project / "site_scons", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(a, project / "a")
    shutil.copy(b, project / "b")
    (project / "SConstruct").write_text(
        f"env = Environment(tools=['default', 'debuginfo']{settings})\n"
        f"env.{builder}('a.out', 'a')\n"
        f"env.{builder}('b.out', 'b')\n")
    return project


def _scons(project: Path, log: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "SCons", "-Q", *args], cwd=project, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.mark.parametrize("jobs", ["-j1", "-j2"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", OPTIMIZE_PHASES)
def test_scons_stops_on_a_signal_in_every_phase(tmp_path: Path, c_program: Path, cxx_program: Path,
                                                 phase: str, signum: int, jobs: str) -> None:
    project = _project(tmp_path, c_program, cxx_program, "DebugOptimize")
    log = tmp_path / "log"
    proc = _scons(project, log, jobs, env={"LINKPLUGIN_TEST_PAUSE": phase})
    # Under -j2 both targets are built at once: wait until both are held.
    _wait_for_line(log, f"paused at {phase}", proc, count=2 if jobs == "-j2" else 1)
    t0 = time.monotonic()
    os.killpg(proc.pid, signum)
    status = _finish(proc)
    output = log.read_text()
    assert status != 0, output
    assert time.monotonic() - t0 < 10, output
    assert "Build interrupted" in output, output
    # Under -j1, b.out was never started: SCons did not take it up, so it is not counted.
    n = 2 if jobs == "-j2" else 1
    assert f"debuginfo: {n} targets: 0 built, 0 from cache, 0 up to date, {n} not built" in output, output
    assert "Traceback" not in output and "Exception in thread" not in output, output
    _assert_nothing_left(proc, project)
    assert not (project / "a.out").exists() and not (project / "b.out").exists()

    # The next build makes what was interrupted.
    again = _scons(project, tmp_path / "again", jobs)
    assert _finish(again) == 0, (tmp_path / "again").read_text()
    assert (project / "a.out").exists() and (project / "b.out").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_scons_auto_mode_leaves_no_unprocessed_program(tmp_path: Path, signum: int) -> None:
    """DEBUGINFO_AUTO rewrites each program in place after its link: interrupted there, the
    linker's output must not stay behind looking like the finished program."""
    project = tmp_path / "project"
    project.mkdir()
    for name, text in C_PROGRAM.items():
        (project / name).write_text(text)
    (project / "SConstruct").write_text(
        "import linkplugin.scons\n"
        "env = Environment(tools=['default', 'debuginfo'], toolpath=[linkplugin.scons.toolpath()],\n"
        "                  CCFLAGS='-g', DEBUGINFO_AUTO='optimize')\n"
        "env.Program('app', ['main.c', 'area.c'])\n"
        "env.Program('app2', ['main.c', 'area.c'], OBJPREFIX='x')\n")
    log = tmp_path / "log"
    proc = _scons(project, log, "-j2", env={"LINKPLUGIN_TEST_PAUSE": "compress+write"})
    _wait_for_line(log, "paused at compress+write", proc, count=2)
    os.killpg(proc.pid, signum)
    status = _finish(proc)
    output = log.read_text()
    assert status != 0 and "Build interrupted" in output, output
    assert "Traceback" not in output and "Exception in thread" not in output, output
    _assert_nothing_left(proc, project)
    assert not (project / "app").exists() and not (project / "app2").exists()

    again = _scons(project, tmp_path / "again", "-j2")
    assert _finish(again) == 0, (tmp_path / "again").read_text()
    assert "DebugOptimize app\n" in (tmp_path / "again").read_text()
    assert run(project / "app").stdout == "square 4.0\n"


@pytest.fixture(scope="module")
def slow_input(c_program: Path, tmp_path_factory) -> Path:
    """A program whose compression takes seconds, shard by shard, on every worker."""
    folder = tmp_path_factory.mktemp("slow")
    blob = folder / "blob"
    # Four symbols at random: libdeflate's level 9 takes about 0.3 s a 1 MiB shard on them
    # (random bytes it stores at once).
    blob.write_bytes(bytes(b & 3 for b in os.urandom(1 << 20)) * 48)
    src = folder / "slow"
    run("objcopy", f"--add-section=.debug_junk={blob}", c_program, src)
    return src


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_scons_stops_while_workers_compute(tmp_path: Path, slow_input: Path, signum: int) -> None:
    """No pause: the signal arrives while the compression threads are busy (48 MiB at level 9
    take seconds)."""
    project = _project(tmp_path, slow_input, slow_input, "DebugCompress", ", DEBUGINFO_LEVEL=9, DEBUGINFO_JOBS=2")
    log = tmp_path / "log"
    proc = _scons(project, log, "-j2")
    _wait_for_line(log, "DebugCompress ", proc, count=2)
    time.sleep(0.5)  # both jobs' threads are on their first shards now
    t0 = time.monotonic()
    os.killpg(proc.pid, signum)
    status = _finish(proc)
    output = log.read_text()
    assert status != 0 and "Build interrupted" in output, output
    assert time.monotonic() - t0 < 15, output
    assert "Traceback" not in output and "Exception in thread" not in output, output
    _assert_nothing_left(proc, project)
    assert not (project / "a.out").exists() and not (project / "b.out").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_command_stops_while_shards_are_written(tmp_path: Path, slow_input: Path, signum: int, jobs: str) -> None:
    """No pause: the signal arrives while the output is being written, shard by shard, as the
    threads make them (the command's main thread writes; with -j2 a helper compresses too)."""
    out = tmp_path / "out"
    before = slow_input.read_bytes()
    log = tmp_path / "log"
    proc = _command(["compress", str(slow_input), "-o", str(out), "--level", "9", "-j", jobs], log)
    deadline = time.monotonic() + LIMIT
    while not any(tmp_path.glob(".linkplugin-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until the temporary output exists: the writer has started
    time.sleep(0.5)  # a few shards written, others being made
    assert proc.poll() is None, log.read_text()
    t0 = time.monotonic()
    os.killpg(proc.pid, signum)
    status = _finish(proc)
    err = log.read_text()
    assert status == 128 + signum, err
    assert time.monotonic() - t0 < 5, err
    assert err.splitlines() == [("linkplugin: interrupted" if signum == signal.SIGINT
                                 else "linkplugin: terminated by SIGTERM")], err
    _assert_nothing_left(proc, tmp_path)
    assert not out.exists() and slow_input.read_bytes() == before


def _command(args: list[str], log: Path, env: dict | None = None, **kw) -> subprocess.Popen:
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "linkplugin", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True, env={**os.environ, **(env or {})}, **kw)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("command,phase", [("merge-types", p) for p in OPTIMIZE_PHASES] +
                         [("compress", p) for p in COMPRESS_PHASES] + [("decompress", "decompress+write")])
def test_command_stops_on_a_signal_in_every_phase(tmp_path: Path, cxx_program: Path, command: str, phase: str,
                                                  signum: int) -> None:
    src = tmp_path / "in"
    if command == "decompress":
        run("objcopy", "--compress-debug-sections=zlib", cxx_program, src)
    else:
        shutil.copy(cxx_program, src)
    before = src.read_bytes()
    out = tmp_path / "out"
    extra = ["--compress", "zlib"] if command == "merge-types" else []
    log = tmp_path / "log"
    proc = _command([command, str(src), "-o", str(out), *extra], log, env={"LINKPLUGIN_TEST_PAUSE": phase})
    _wait_for_line(log, f"paused at {phase}", proc)
    os.killpg(proc.pid, signum)
    status = _finish(proc)
    lines = log.read_text().splitlines()
    assert status == 128 + signum, lines
    assert lines[1:] == [("linkplugin: interrupted" if signum == signal.SIGINT
                          else "linkplugin: terminated by SIGTERM")], lines
    _assert_nothing_left(proc, tmp_path)
    assert not out.exists() and src.read_bytes() == before


@pytest.mark.parametrize("args", [["compress", "-j", "2"], ["merge-types", "--compress", "zstd", "-j", "2"]])
def test_full_output_file_system(tmp_path: Path, slow_input: Path, args: list[str]) -> None:
    """Writes beyond a file size limit fail as a full disk does (EFBIG, like ENOSPC)."""
    out = tmp_path / "out"
    before = slow_input.read_bytes()

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    log = tmp_path / "log"
    proc = _command([args[0], str(slow_input), "-o", str(out), *args[1:]], log, preexec_fn=small_files)
    status = _finish(proc)
    err = log.read_text().strip()
    assert status == 2 and len(err.splitlines()) == 1 and "cannot write" in err and "large" in err, err
    _assert_nothing_left(proc, tmp_path)
    assert not out.exists() and slow_input.read_bytes() == before


@contextmanager
def _tmpfs(options: str) -> Iterator[Path]:
    """A small file system of its own (root only; skipped where mounting is not allowed)."""
    folder = Path(tempfile.mkdtemp())
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
        folder.rmdir()


@pytest.mark.parametrize("args", [["compress", "-j", "2"], ["merge-types", "-j", "2"]])
def test_output_file_system_out_of_space(tmp_path: Path, slow_input: Path, args: list[str]) -> None:
    before = slow_input.read_bytes()
    with _tmpfs("size=4m") as small:
        out = small / "out"
        log = tmp_path / "log"
        proc = _command([args[0], str(slow_input), "-o", str(out), *args[1:]], log)
        status = _finish(proc)
        err = log.read_text().strip()
        assert status == 2 and err.splitlines() == [err] and "No space left" in err, err
        _assert_nothing_left(proc, small)
        assert list(small.iterdir()) == []
    assert slow_input.read_bytes() == before


def test_output_folder_not_writable(tmp_path: Path, c_program: Path) -> None:
    """A read-only file system: the folder's mode alone would not stop root."""
    with _tmpfs("ro,size=1m") as locked:
        log = tmp_path / "log"
        proc = _command(["compress", str(c_program), "-o", str(locked / "out")], log)
        status = _finish(proc)
        err = log.read_text().strip()
        assert status == 2 and err.splitlines() == [err] and "cannot write" in err, err
        assert list(locked.iterdir()) == []


def test_a_thread_that_reads_nothing_keeps_the_interrupt_another_saw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two job threads check at once: B reads the wakeup pipe after A took the signal's byte.
    B's empty read must not clear what A saw, or the interrupt is lost for the whole build."""
    from linkplugin import interrupt

    monkeypatch.setattr(interrupt, "_wakeup_fd", -1)  # never read for real: os.read is replaced below
    monkeypatch.setattr(interrupt, "_stopped", False)
    reads = []

    def read(fd: int, size: int) -> bytes:
        reads.append(fd)
        if len(reads) == 1:  # B is inside its read when A runs its whole check and takes the byte
            with pytest.raises(interrupt.Interrupted):
                interrupt.check()
            return b""
        return bytes([signal.SIGINT]) if len(reads) == 2 else b""

    monkeypatch.setattr(interrupt.os, "read", read)
    with pytest.raises(interrupt.Interrupted):
        interrupt.check()  # B
    with pytest.raises(interrupt.Interrupted):
        interrupt.check()  # and every later check


NAP = '''
import os, time
from pathlib import Path

def nap(folder: str, parent: int) -> None:
    """In the calling process: wait until a worker holds the other task. In a worker: a long task."""
    if os.getpid() == parent:
        deadline = time.monotonic() + 60
        while not (Path(folder) / "worker").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    (Path(folder) / "worker").write_text(str(os.getpid()))
    time.sleep(60)
'''

WAITING_CALLER = '''
import os, signal, sys, threading, time
from pathlib import Path
from linkplugin import interrupt, pool
from nap import nap


def send(folder: str) -> None:
    while not (Path(folder) / "worker").exists():
        time.sleep(0.05)
    time.sleep(0.5)  # the caller is done with its own task and waits for the worker's
    os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":  # a forkserver child imports this file too
    signal.signal(signal.SIGTERM, lambda *a: None)  # as SCons does: the handler only takes note
    interrupt.watch_signals()
    folder = sys.argv[1]
    threading.Thread(target=send, args=(folder,), daemon=True).start()
    try:
        pool.run_tasks(nap, [(folder, os.getpid()), (folder, os.getpid())], 2)
    except interrupt.Interrupted:
        print("interrupted")
    else:
        print("finished every task")
'''


def test_a_caller_waiting_for_a_workers_long_task_stops_on_an_interrupt(tmp_path: Path) -> None:
    """The signal comes when the caller has no task left and a worker is in the middle of a long one:
    run_tasks ends as interrupted at once and kills that worker, instead of waiting for its task."""
    (tmp_path / "nap.py").write_text(NAP)
    (tmp_path / "caller.py").write_text(WAITING_CALLER)
    log = tmp_path / "log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(tmp_path / "caller.py"), str(tmp_path)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"})
    assert _finish(proc) == 0, log.read_text()
    assert log.read_text() == "interrupted\n"
    _assert_nothing_left(proc, tmp_path)
