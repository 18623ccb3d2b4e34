from __future__ import annotations

import pytest

from mev_assets.core.windows import (
    WindowKeyError,
    key_end_ms,
    key_start_ms,
    keys_between,
    validate_key,
    window_key,
)
from mev_assets.settings import Settings, SettingsError, parse_sources


def test_window_key_is_utc_and_aligned():
    # 2024-05-05T12:34:56.789Z
    ts = 1714912496789
    assert window_key(ts, 60) == "2024-05-05T12:34:00"
    assert window_key(ts, 15) == "2024-05-05T12:34:45"
    assert window_key(ts, 3600) == "2024-05-05T12:00:00"
    start = key_start_ms(window_key(ts, 60))
    assert start <= ts < key_end_ms(window_key(ts, 60), 60)
    assert key_end_ms("2024-05-05T12:34:00", 60) - start == 60_000


def test_window_keys_sort_in_time_order():
    keys = [window_key(t, 60) for t in range(1714912496789, 1714912496789 + 10 * 3_600_000, 1_234_567)]
    assert keys == sorted(keys)
    assert keys_between("2024-05-05T23:58:00", "2024-05-06T00:01:00", 60) == [
        "2024-05-05T23:58:00",
        "2024-05-05T23:59:00",
        "2024-05-06T00:00:00",
        "2024-05-06T00:01:00",
    ]


@pytest.mark.parametrize("bad", ["2024-05-05 12:34:00", "2024-13-05T12:34:00", "yesterday", ""])
def test_bad_window_keys_are_rejected(bad):
    with pytest.raises(WindowKeyError):
        key_start_ms(bad)


def test_unaligned_window_key_is_rejected():
    with pytest.raises(WindowKeyError, match="not aligned"):
        validate_key("2024-05-05T12:34:30", 60)
    assert validate_key("2024-05-05T12:34:30", 15) == "2024-05-05T12:34:30"


def test_settings_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.mev_home == tmp_path / ".mev_home"
    assert s.dagster_home == tmp_path / ".mev_home" / "dagster"
    assert s.window_seconds == 60
    assert [src.name for src in s.sources] == ["local"]


def test_settings_from_environment(tmp_path):
    s = Settings.from_env(
        {
            "MEV_HOME": str(tmp_path / "h"),
            "MEV_WINDOW_SECONDS": "15",
            "MEV_CHAIN_ID": "31337",
            "MEV_SOURCES": "a=ws://127.0.0.1:1, b=wss://node.example:443/ws",
        }
    )
    assert s.dagster_home == tmp_path / "h" / "dagster"
    assert (s.window_seconds, s.chain_id) == (15, 31337)
    assert [(x.name, x.url) for x in s.sources] == [("a", "ws://127.0.0.1:1"), ("b", "wss://node.example:443/ws")]


@pytest.mark.parametrize(
    "env,needle",
    [
        ({"MEV_WINDOW_SECONDS": "abc"}, "MEV_WINDOW_SECONDS must be an integer"),
        ({"MEV_WINDOW_SECONDS": "7"}, "divide a day"),
        ({"MEV_CHAIN_ID": "0"}, "MEV_CHAIN_ID must be at least 1"),
        ({"MEV_SOURCES": "a=http://x"}, "ws:// or wss://"),
        ({"MEV_SOURCES": "a=ws://x,a=ws://y"}, "unique"),
        ({"MEV_COLLECTOR_ID": "bad id!"}, "MEV_COLLECTOR_ID"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path, env, needle):
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env({"MEV_HOME": str(tmp_path), **env})


def test_bare_source_urls_get_names():
    assert [s.name for s in parse_sources("ws://a:1,ws://b:2")] == ["node0", "node1"]
