"""The default levels and shard sizes are part of every SCons cache key that relies on them."""
from __future__ import annotations

import pytest

environment = pytest.importorskip("SCons.Environment")

from linkplugin import scons  # noqa: E402
from linkplugin.compress import codec  # noqa: E402


def key_vars(monkeypatch: pytest.MonkeyPatch, levels: dict[str, int], shards: dict[str, int]) -> str:
    for module in [codec, scons]:
        monkeypatch.setattr(module, "DEFAULT_LEVEL", levels)
        monkeypatch.setattr(module, "DEFAULT_SHARD_SIZE", shards)
    env = environment.Environment(tools=[])
    scons.generate(env)
    for builder in ["DEBUGCOMPRESSCOM", "DEBUGOPTIMIZECOM"]:
        assert "DEBUGINFO_DEFAULTS" in env[builder].varlist
    return env.subst("$DEBUGINFO_DEFAULTS")


def test_a_new_default_changes_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    levels, shards = {"zlib": 6, "zstd": 3}, {"zlib": 1 << 20, "zstd": 4 << 20}
    now = key_vars(monkeypatch, levels, shards)
    assert now == "zlib:level=6:shard=1048576 zstd:level=3:shard=4194304"
    assert key_vars(monkeypatch, {**levels, "zlib": 1}, shards) != now
    assert key_vars(monkeypatch, levels, {**shards, "zstd": 1 << 20}) != now


def test_settings_take_the_codec_defaults() -> None:
    assert (codec.Settings("zlib").level, codec.Settings("zlib").shard_size) == (6, 1 << 20)
    assert (codec.Settings("zstd").level, codec.Settings("zstd").shard_size) == (3, 4 << 20)


def test_the_cache_key_names_the_library_that_makes_the_bytes() -> None:
    """zlib streams are libdeflate's (the ``deflate`` package pins the one it bundles): its
    version, not the system zlib's, is in the key."""
    import deflate
    import zstandard

    env = environment.Environment(tools=[])
    scons.generate(env)
    assert "DEBUGINFO_CODEC_VERSION" in env["DEBUGCOMPRESSCOM"].varlist
    assert env.subst("$DEBUGINFO_CODEC_VERSION") == f"deflate-{deflate.__version__}"
    env["DEBUGINFO_CODEC"] = "zstd"
    assert env.subst("$DEBUGINFO_CODEC_VERSION").startswith(f"zstandard-{zstandard.__version__}/libzstd-")
