"""The Bazel rule (bazel/linkplugin.bzl) on the example workspace (examples/bazel/),
with Bazel 2.1.0 from npm, offline: cache hits from a shared disk cache across
checkouts, and from an HTTP remote cache served by nginx with WebDAV PUT."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, gdb, run

EXAMPLE = ROOT / "examples" / "bazel"
SPLIT_TARGET = "//:dist/words"
TARGETS = ["//:words.small", "//:stats.z", SPLIT_TARGET]
MNEMONICS = ("LinkpluginOptimize", "LinkpluginCompress", "LinkpluginSplit")

pytestmark = pytest.mark.skipif(
    shutil.which("bazel") is None,
    reason="bazel is not installed (npm install -g @bazel/bazel-linux_x64@2.1.0)")


@pytest.fixture(scope="module")
def user_root(tmp_path_factory: pytest.TempPathFactory):
    """Bazel's install base (unpacked once for the module) and the output bases.

    --batch leaves no server behind; the folder (~150 MB, partly read-only) goes at the end."""
    root = tmp_path_factory.mktemp("bazel-root")
    yield root
    subprocess.run(["chmod", "-R", "u+w", root], check=False)
    shutil.rmtree(root, ignore_errors=True)


def checkout(dest: Path) -> Path:
    """A copy of the example workspace, as a user has it somewhere on disk."""
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("bazel-*"))
    return dest


def bazel_build(workspace: Path, user_root: Path, *flags: str, only: str | None = None) -> list[dict]:
    """Build the example targets (or only one); return the spawns of the execution log."""
    log = workspace.parent / f"{workspace.name}.exec.json"
    cmd = ["bazel", f"--output_user_root={user_root}", "--batch", "--nohome_rc", "--nosystem_rc",
           "--host_jvm_args=-Xmx512m", "build",
           # The copy's WORKSPACE points at ../../bazel: use this checkout's rule.
           f"--override_repository=linkplugin={ROOT / 'bazel'}",
           # The python running the tests has linkplugin (this checkout first).
           f"--action_env=LINKPLUGIN_PYTHON={sys.executable}", f"--action_env=PYTHONPATH={ROOT}",
           f"--execution_log_json_file={log}", *flags, *([only] if only else TARGETS)]
    result = subprocess.run(cmd, cwd=workspace, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return read_log(log)


def read_log(log: Path) -> list[dict]:
    # Bazel 2.1 writes one JSON object after another, not a list.
    text, decoder, spawns, pos = log.read_text(), json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return spawns
        spawn, pos = decoder.raw_decode(text, pos)
        spawns.append(spawn)


def linkplugin_spawns(spawns: list[dict]) -> list[dict]:
    found = [s for s in spawns if s.get("mnemonic") in MNEMONICS]
    assert len(found) == len(TARGETS), [s.get("mnemonic") for s in spawns]
    return found


def outputs(workspace: Path) -> dict[str, bytes]:
    names = ["words", "stats", "words.small", "stats.z", "dist/words", "dist/words.debug"]
    return {name: (workspace / "bazel-bin" / name).read_bytes() for name in names}


def check_outputs(workspace: Path) -> None:
    """The outputs are real programs that gdb and readelf read."""
    bin_dir = workspace / "bazel-bin"
    assert run(bin_dir / "words.small", "a", "b", "a").stdout == "a 2\nb 1\n"
    assert "10 values" in run(bin_dir / "stats.z").stdout
    for name in ["words.small", "stats.z"]:
        assert "C" in section_flags(bin_dir / name)[".debug_info"]
    transcript = ("ptype struct Count", "info functions most_frequent", "info types Count")
    shown = listing(bin_dir / "words", *transcript)
    assert "int times;" in shown and listing(bin_dir / "words.small", *transcript) == shown
    stripped = bin_dir / "dist" / "words"
    assert run(stripped, "x").stdout == "x 1\n"
    sections = run("readelf", "-SW", stripped).stdout
    assert ".gnu_debuglink" in sections and ".debug_" not in sections
    # gdb finds dist/words.debug beside the program through .gnu_debuglink.
    assert listing(stripped, *transcript) == shown


def listing(path: Path, *commands: str) -> str:
    # Without "Reading symbols from ...", which names the separate debug file too.
    return "\n".join(line for line in gdb(path, *commands).splitlines() if not line.startswith("Reading symbols"))


def section_flags(path: Path) -> dict[str, str]:
    """Section name to readelf's flag letters."""
    flags = {}
    for line in run("readelf", "-SW", path).stdout.splitlines():
        if "]" in line and not line.lstrip().startswith("[Nr]"):
            fields = line.split("]", 1)[1].split()
            # name type address offset size entsize [flags] link info align
            flags[fields[0]] = fields[6] if len(fields) == 10 else ""
    return flags


def check_no_worker_count(spawn: dict) -> None:
    # The worker count is left out of the key: nothing in the command or environment sets it.
    args = spawn["commandArgs"]
    assert not any(a in ("-j", "--jobs") or a.startswith("--jobs=") for a in args), args
    assert not any("JOBS" in v["name"] for v in spawn.get("environmentVariables", [])), spawn


def check_same_as_one_worker(workspace: Path, folder: Path) -> None:
    """The actions used every CPU; the command with -j1 writes the same bytes,
    so whichever machine fills the cache, the entry is the same."""
    bin_dir = workspace / "bazel-bin"
    folder.mkdir()
    commands = {"words.small": ["merge-types", bin_dir / "words", "--compress", "zlib"],
                "stats.z": ["compress", bin_dir / "stats", "--type", "zstd", "--level", "9"],
                "dist/words": ["split", bin_dir / "words", "--debug-file", folder / "words.debug"]}
    for name, command in commands.items():
        out = folder / Path(name).name
        run(sys.executable, "-m", "linkplugin", *command, "-o", out, "-j", "1")
        assert out.read_bytes() == (bin_dir / name).read_bytes(), name
    assert (folder / "words.debug").read_bytes() == (bin_dir / "dist" / "words.debug").read_bytes()


def test_disk_cache_hits_across_checkouts(tmp_path: Path, user_root: Path) -> None:
    cache = tmp_path / "disk-cache"
    first = checkout(tmp_path / "first")
    built = linkplugin_spawns(bazel_build(first, user_root, f"--disk_cache={cache}"))
    assert not any(s["remoteCacheHit"] for s in built)
    for spawn in built:
        check_no_worker_count(spawn)
    check_outputs(first)
    check_same_as_one_worker(first, tmp_path / "one-worker")

    # Another checkout at another path, in its own output base: gcc runs again
    # (no-cache for genrules) and, thanks to -ffile-prefix-map, builds the same
    # bytes, so every linkplugin action is a hit and none runs.
    second = checkout(tmp_path / "elsewhere" / "second")
    spawns = bazel_build(second, user_root, f"--disk_cache={cache}", "--modify_execution_info=Genrule=+no-cache")
    compiled = [s for s in spawns if s.get("mnemonic") == "Genrule"]
    assert compiled and not any(s["remoteCacheHit"] for s in compiled)
    hits = linkplugin_spawns(spawns)
    assert all(s["remoteCacheHit"] for s in hits), [(s["mnemonic"], s["runner"]) for s in hits]
    assert outputs(second) == outputs(first)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
{user}
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/store;
        location / {{
            # Bazel's HTTP cache protocol: GET and PUT of /ac/HASH and /cas/HASH.
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
        }}
    }}
}}
"""


def wait_for_port(port: int, server: subprocess.Popen, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


@pytest.fixture
def nginx_cache(tmp_path: Path):
    """An HTTP remote cache: nginx with WebDAV PUT on a free local port, stopped at the end."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    root = tmp_path / "nginx"
    (root / "store").mkdir(parents=True)
    # As root, nginx's workers would run as nobody and could not write the store.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    for attempt in range(3):  # another process may take the port between free_port() and listen
        port = free_port()
        (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=port, user=user))
        server = subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait_for_port(port, server):
            break
        server.kill()
        server.wait()
    else:
        raise AssertionError(f"nginx did not start: {(root / 'error.log').read_text()}")
    try:
        yield f"http://127.0.0.1:{port}", root / "store"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_remote_cache_fills_a_fresh_output_base(tmp_path: Path, user_root: Path, nginx_cache) -> None:
    url, store = nginx_cache
    first = checkout(tmp_path / "first")
    built = linkplugin_spawns(bazel_build(first, user_root, f"--remote_cache={url}"))
    assert not any(s["remoteCacheHit"] for s in built)
    assert any((store / "ac").iterdir()) and any((store / "cas").iterdir())

    # A clean build elsewhere, in a fresh output base: every output comes from
    # nginx, no action runs.
    second = checkout(tmp_path / "second")
    spawns = bazel_build(second, user_root, f"--remote_cache={url}")
    assert all(s["remoteCacheHit"] for s in spawns), [(s.get("mnemonic"), s["runner"]) for s in spawns]
    linkplugin_spawns(spawns)
    assert outputs(second) == outputs(first)
    check_outputs(second)


def test_split_output_groups(tmp_path: Path, user_root: Path) -> None:
    workspace = checkout(tmp_path / "ws")
    spawns = bazel_build(workspace, user_root, "--output_groups=debug", only=SPLIT_TARGET)
    # One action writes both files; the output group asks for the debug file alone.
    assert [s["mnemonic"] for s in spawns if s.get("mnemonic") in MNEMONICS] == ["LinkpluginSplit"]
    debug = workspace / "bazel-bin" / "dist" / "words.debug"
    sections = section_flags(debug)
    assert "C" in sections[".debug_info"] and ".gnu_debuglink" not in sections
    # The link names the debug file as Bazel wrote it (then 4 bytes of CRC, not text).
    link = subprocess.run(["readelf", "--string-dump=.gnu_debuglink", workspace / "bazel-bin" / "dist" / "words"],
                          capture_output=True, check=True).stdout
    assert b"words.debug" in link
