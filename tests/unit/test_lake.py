"""The Parquet lake: layout, idempotent atomic writes, listing, deletion, globs for SQL engines."""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from mev_assets.core.lake import Lake, LakeError, LakeMissingError, lake_glob, lake_root, open_lake
from mev_assets.core.windows import WindowKeyError
from mev_assets.settings import Settings, SettingsError

W1, W2, W3 = "2024-05-05T23:59:00", "2024-05-06T00:00:00", "2024-05-06T00:01:00"


def _frame(window: str, hashes: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"hash": hashes, "value": ["1000000000000000000"] * len(hashes), "window": [window] * len(hashes)},
        schema={"hash": pl.String, "value": pl.String, "window": pl.String},
    )


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))


def test_window_file_layout_and_round_trip(lake, tmp_path):
    written = lake.write_window("mempool_transactions", W1, _frame(W1, ["0xaa", "0xbb"]))
    expected = tmp_path / "lake" / "mempool_transactions" / "date=2024-05-05" / f"window={W1}.parquet"
    assert written.path == str(expected) and written.url == str(expected)
    assert expected.is_file() and written.bytes == expected.stat().st_size and written.rows == 2
    # an ordinary Parquet file: any engine reads it, wei amounts stay decimal strings
    assert pq.read_table(expected).column("value").to_pylist() == ["1000000000000000000"] * 2
    assert lake.read_window("mempool_transactions", W1).equals(_frame(W1, ["0xaa", "0xbb"]))
    assert lake.read_window("mempool_transactions", W1, columns=["hash"]).columns == ["hash"]


def test_rewriting_a_window_replaces_its_file(lake, tmp_path):
    lake.write_window("t", W2, _frame(W2, ["0x01", "0x02", "0x03"]))
    lake.write_window("t", W2, _frame(W2, ["0x04"]))
    folder = tmp_path / "lake" / "t" / "date=2024-05-06"
    assert sorted(p.name for p in folder.iterdir()) == [f"window={W2}.parquet"]  # no copy, no temp file left
    assert lake.read_window("t", W2)["hash"].to_list() == ["0x04"]
    # an empty window is a file too (zero rows, same schema): it replaces a previous non-empty one
    lake.write_window("t", W2, _frame(W2, []))
    empty = lake.read_window("t", W2)
    assert empty.height == 0 and empty.schema == _frame(W2, []).schema


def test_listing_reading_many_and_deleting(lake):
    for key in (W3, W1, W2):
        lake.write_window("t", key, _frame(key, [f"0x{key[-5:-3]}"]))
    lake.write_window("other", W1, _frame(W1, ["0xff"]))
    assert lake.windows("t") == [W1, W2, W3]
    assert lake.tables() == ["other", "t"]
    assert lake.read_windows("t", [W1, W3])["window"].to_list() == [W1, W3]
    assert lake.delete_window("t", W2) is True
    assert lake.delete_window("t", W2) is False
    assert lake.windows("t") == [W1, W3] and not lake.exists("t", W2) and lake.exists("t", W1)
    with pytest.raises(LakeMissingError, match="materialise t for that window"):
        lake.read_window("t", W2)
    assert lake.windows("never_written") == []


@pytest.mark.parametrize("table, key, error", [
    ("mempool-transactions", W1, LakeError),
    ("../escape", W1, LakeError),
    ("t", "2024-05-06 00:00:00", WindowKeyError),
    ("t", "../../etc", WindowKeyError),
])
def test_bad_table_names_and_window_keys_are_rejected(lake, table, key, error):
    with pytest.raises(error):
        lake.write_window(table, key, _frame(W1, ["0x1"]))


def test_local_settings_and_a_duckdb_query_over_the_glob(tmp_path):
    settings = Settings.from_env({"MEV_HOME": str(tmp_path / "home")})
    fs, base = lake_root(settings)
    assert isinstance(fs, pafs.LocalFileSystem) and base == str(settings.lake_dir) == str(tmp_path / "home" / "lake")
    lake = open_lake(settings)
    lake.write_window("mempool_transactions", W1, _frame(W1, ["0x01", "0x02"]))
    lake.write_window("mempool_transactions", W2, _frame(W2, ["0x03"]))
    lake.write_window("mempool_transactions", W2, _frame(W2, ["0x03"]))  # re-materialised: still one copy
    glob = lake_glob(settings, "mempool_transactions")
    assert glob == f"{tmp_path}/home/lake/mempool_transactions/date=*/window=*.parquet"
    rows = duckdb.sql(
        f"select \"window\", count(*) from read_parquet('{glob}', hive_partitioning = true) group by all order by 1"
    ).fetchall()
    assert rows == [(W1, 2), (W2, 1)]


def test_s3_settings_root_and_globs():
    env = {"MEV_HOME": "/tmp/unused", "MEV_STORAGE": "s3", "MEV_S3_BUCKET": "mev-lake", "MEV_S3_PREFIX": "/team/mev/",
           "MEV_S3_ENDPOINT_URL": "http://127.0.0.1:9000/", "AWS_REGION": "eu-west-1"}
    settings = Settings.from_env(env)
    assert (settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region) == ("team/mev", "http://127.0.0.1:9000", "eu-west-1")
    fs, base = lake_root(settings)
    assert isinstance(fs, pafs.S3FileSystem) and base == "mev-lake/team/mev/lake"
    assert fs.region == "eu-west-1"
    assert lake_glob(settings, "t") == "s3://mev-lake/team/mev/lake/t/date=*/window=*.parquet"
    assert lake_glob(settings, "t", endpoint_style=True) == "http://127.0.0.1:9000/mev-lake/team/mev/lake/t/date=*/window=*.parquet"
    aws = Settings.from_env({**env, "MEV_S3_ENDPOINT_URL": "", "MEV_S3_PREFIX": ""})
    assert lake_glob(aws, "t", endpoint_style=True) == "https://mev-lake.s3.eu-west-1.amazonaws.com/lake/t/date=*/window=*.parquet"
    with pytest.raises(LakeError):
        lake_glob(settings, "t; drop table x")


@pytest.mark.parametrize("env, message", [
    ({"MEV_STORAGE": "s3"}, "MEV_STORAGE=s3 needs MEV_S3_BUCKET"),
    ({"MEV_STORAGE": "gcs"}, "MEV_STORAGE must be one of local, s3"),
    ({"MEV_STORAGE": "s3", "MEV_S3_BUCKET": "Bad_Bucket"}, "MEV_S3_BUCKET must be an S3 bucket name"),
    ({"MEV_STORAGE": "s3", "MEV_S3_BUCKET": "ok-bucket", "MEV_S3_ENDPOINT_URL": "127.0.0.1:9000"}, "MEV_S3_ENDPOINT_URL must start"),
    ({"MEV_STORAGE": "s3", "MEV_S3_BUCKET": "ok-bucket", "MEV_S3_PREFIX": "a//b"}, "MEV_S3_PREFIX must be a key prefix"),
])
def test_storage_settings_fail_with_one_line_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=message) as err:
        Settings.from_env({"MEV_HOME": "/tmp/unused", **env})
    assert "\n" not in str(err.value)


def test_storage_defaults_to_local():
    settings = Settings.from_env({"MEV_HOME": "/tmp/unused"})
    assert (settings.storage, settings.s3_bucket, settings.s3_region) == ("local", "", "us-east-1")
