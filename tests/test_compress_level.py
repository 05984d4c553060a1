"""The default compression levels are part of every SCons cache key that relies on them."""
from __future__ import annotations

import pytest

environment = pytest.importorskip("SCons.Environment")

from linkplugin import scons  # noqa: E402
from linkplugin.compress import codec  # noqa: E402


def key_vars(monkeypatch: pytest.MonkeyPatch, defaults: dict[str, int]) -> str:
    monkeypatch.setattr(codec, "DEFAULT_LEVEL", defaults)
    monkeypatch.setattr(scons, "DEFAULT_LEVEL", defaults)
    env = environment.Environment(tools=[])
    scons.generate(env)
    for builder in ["DEBUGCOMPRESSCOM", "DEBUGOPTIMIZECOM"]:
        assert "DEBUGINFO_DEFAULT_LEVELS" in env[builder].varlist
    return env.subst("$DEBUGINFO_DEFAULT_LEVELS")


def test_a_new_default_level_changes_the_cache_key(monkeypatch: pytest.MonkeyPatch) -> None:
    now = key_vars(monkeypatch, {"zlib": 6, "zstd": 3})
    assert now == "zlib:6 zstd:3"
    assert key_vars(monkeypatch, {"zlib": 1, "zstd": 3}) != now
