"""The Parquet lake: every per-window table, one Parquet file per window, local or on S3.

Layout (ClickHouse and DuckDB read it with the glob of :func:`lake_glob`)::

    <root>/lake/<table>/date=YYYY-MM-DD/window=<key>.parquet

``<root>`` is ``$MEV_HOME`` locally and ``s3://<bucket>/<prefix>`` with ``MEV_STORAGE=s3``. The
same code serves both through a ``pyarrow.fs.FileSystem`` (``LocalFileSystem`` or
``S3FileSystem`` with ``endpoint_override``).

Daily tables (the dbt rollups, :data:`DAILY_TABLES`) keep one file per UTC day instead::

    <root>/lake/<table>/date=YYYY-MM-DD/part.parquet

One file per (table, window) - or (table, day) - makes every write idempotent: re-materialising a window replaces
its file, it never appends a second copy. Writes are atomic - locally a temp file (its name
starts with ``.``, so no glob ever sees it), fsynced and renamed over the target; on S3 one
upload, which becomes visible whole or not at all.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from mev_assets.core.windows import key_start_ms

LAKE = "lake"
_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FILE_RE = re.compile(r"^window=(?P<key>.+)\.parquet$")
_DAY_RE = re.compile(r"^date=(?P<day>\d{4}-\d{2}-\d{2})$")
DAY_FILE = "part.parquet"
# Tables kept per day, not per window: the daily rollups dbt builds (see mev_assets/core/rollups.py).
DAILY_TABLES = ("daily_mempool_stats", "daily_source_coverage", "daily_protocol_mix")


class LakeError(ValueError):
    """A lake request that cannot be served as asked (bad table name or window key)."""


class LakeMissingError(FileNotFoundError):
    """The lake has no file for this (table, window)."""


@dataclass(frozen=True)
class LakeFile:
    table: str
    window: str
    path: str  # on the lake's filesystem
    url: str  # for people and engines: a local path or an s3:// URL
    rows: int
    bytes: int


def window_relpath(table: str, key: str) -> str:
    """``<table>/date=YYYY-MM-DD/window=<key>.parquet`` (validates both parts)."""
    if not _TABLE_RE.match(table):
        raise LakeError(f"lake table names are identifiers ([A-Za-z_][A-Za-z0-9_]*), got {table!r}")
    key_start_ms(key)  # raises WindowKeyError (a ValueError) for anything but YYYY-MM-DDTHH:MM:SS
    return f"{table}/date={key[:10]}/window={key}.parquet"


def day_relpath(table: str, day: str) -> str:
    """``<table>/date=YYYY-MM-DD/part.parquet`` (validates both parts)."""
    if not _TABLE_RE.match(table):
        raise LakeError(f"lake table names are identifiers ([A-Za-z_][A-Za-z0-9_]*), got {table!r}")
    if not _DAY_RE.match(f"date={day}"):
        raise LakeError(f"not a day (expected YYYY-MM-DD): {day!r}")
    return f"{table}/date={day}/{DAY_FILE}"


def _is_local(fs: pafs.FileSystem) -> bool:
    return fs.type_name == "local"


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Lake:
    """The lake under ``base`` on ``filesystem`` (``base`` as that filesystem spells paths:
    an absolute directory for ``LocalFileSystem``, ``bucket/prefix/lake`` for ``S3FileSystem``)."""

    def __init__(self, filesystem: pafs.FileSystem, base: str):
        self.fs = filesystem
        self.base = base.rstrip("/")

    def path(self, table: str, key: str) -> str:
        return f"{self.base}/{window_relpath(table, key)}"

    def url_of(self, path: str) -> str:
        return path if _is_local(self.fs) else f"s3://{path}"

    def url(self, table: str, key: str) -> str:
        return self.url_of(self.path(table, key))

    def write_window(self, table: str, key: str, frame: pl.DataFrame) -> LakeFile:
        """Write (or replace) the file of ``table`` for window ``key``, atomically."""
        return self._write(table, key, self.path(table, key), frame)

    def write_day(self, table: str, day: str, frame: pl.DataFrame) -> LakeFile:
        """Write (or replace) the file of a daily table for ``day`` (``YYYY-MM-DD``), atomically."""
        return self._write(table, day, f"{self.base}/{day_relpath(table, day)}", frame)

    def _write(self, table: str, key: str, path: str, frame: pl.DataFrame) -> LakeFile:
        buf = io.BytesIO()
        frame.write_parquet(buf, compression="zstd", statistics=True)
        data = buf.getvalue()
        if _is_local(self.fs):
            parent, name = path.rsplit("/", 1)
            self.fs.create_dir(parent, recursive=True)
            tmp = f"{parent}/.{name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
            try:
                with self.fs.open_output_stream(tmp) as out:
                    out.write(data)
                _fsync(tmp)
                self.fs.move(tmp, path)  # rename(2): atomic, replaces the previous file
            except BaseException:
                try:
                    self.fs.delete_file(tmp)
                except OSError:
                    pass  # never created
                raise
            _fsync(parent)  # the rename itself survives a power loss
        else:
            with self.fs.open_output_stream(path) as out:
                out.write(data)
        return LakeFile(table, key, path, self.url_of(path), frame.height, len(data))

    def read_window(self, table: str, key: str, columns: list[str] | None = None) -> pl.DataFrame:
        path = self.path(table, key)
        try:
            with self.fs.open_input_file(path) as src:
                data = src.read()
        except FileNotFoundError:
            raise LakeMissingError(
                f"the lake has no {table} for window {key} ({self.url_of(path)}); materialise {table} for that window first"
            ) from None
        return pl.read_parquet(io.BytesIO(data), columns=columns)

    def read_windows(self, table: str, keys: list[str], columns: list[str] | None = None) -> pl.DataFrame:
        frames = [self.read_window(table, key, columns) for key in keys]
        if not frames:
            raise LakeError(f"no window given to read {table} from the lake")
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")

    def exists(self, table: str, key: str) -> bool:
        return self.fs.get_file_info(self.path(table, key)).type == pafs.FileType.File

    def delete_window(self, table: str, key: str) -> bool:
        """Remove the file of (table, window); False when there was none."""
        path = self.path(table, key)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return False
        self.fs.delete_file(path)
        return True

    def windows(self, table: str) -> list[str]:
        """Window keys the lake holds for ``table``, sorted."""
        if not _TABLE_RE.match(table):
            raise LakeError(f"lake table names are identifiers ([A-Za-z_][A-Za-z0-9_]*), got {table!r}")
        infos = self.fs.get_file_info(pafs.FileSelector(f"{self.base}/{table}", recursive=True, allow_not_found=True))
        keys = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            parent, name = info.path.rsplit("/", 1)
            m = _FILE_RE.match(name)
            if m and parent.rsplit("/", 1)[-1] == f"date={m['key'][:10]}":
                keys.append(m["key"])
        return sorted(keys)

    def days(self, table: str) -> list[str]:
        """Days (``YYYY-MM-DD``) the lake holds a daily-table file for, sorted."""
        if not _TABLE_RE.match(table):
            raise LakeError(f"lake table names are identifiers ([A-Za-z_][A-Za-z0-9_]*), got {table!r}")
        infos = self.fs.get_file_info(pafs.FileSelector(f"{self.base}/{table}", recursive=True, allow_not_found=True))
        days = []
        for info in infos:
            parent, name = info.path.rsplit("/", 1)
            m = _DAY_RE.match(parent.rsplit("/", 1)[-1])
            if info.type == pafs.FileType.File and name == DAY_FILE and m:
                days.append(m["day"])
        return sorted(days)

    def read_day(self, table: str, day: str) -> pl.DataFrame:
        path = f"{self.base}/{day_relpath(table, day)}"
        try:
            with self.fs.open_input_file(path) as src:
                return pl.read_parquet(io.BytesIO(src.read()))
        except FileNotFoundError:
            raise LakeMissingError(f"the lake has no {table} for day {day} ({self.url_of(path)})") from None

    def delete_day(self, table: str, day: str) -> bool:
        """Remove the file of (daily table, day); False when there was none."""
        path = f"{self.base}/{day_relpath(table, day)}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return False
        self.fs.delete_file(path)
        return True

    def window_files_since(self, table: str, since_day: str | None) -> list[str]:
        """Paths of ``table``'s window files of ``since_day`` (``YYYY-MM-DD``) and later (every
        file for ``None``). Lists the day directories first, then only the wanted days' files, so
        an incremental read of the last days does not list the whole retention period."""
        if not _TABLE_RE.match(table):
            raise LakeError(f"lake table names are identifiers ([A-Za-z_][A-Za-z0-9_]*), got {table!r}")
        day_dirs = self.fs.get_file_info(pafs.FileSelector(f"{self.base}/{table}", allow_not_found=True))
        wanted = sorted(
            info.path for info in day_dirs
            if info.type == pafs.FileType.Directory and (m := _DAY_RE.match(info.base_name))
            and (since_day is None or m["day"] >= since_day)
        )
        paths = []
        for directory in wanted:
            for info in self.fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True)):
                if info.type == pafs.FileType.File and _FILE_RE.match(info.base_name):
                    paths.append(info.path)
        return sorted(paths)

    def read_files(self, paths: list[str], schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
        """The rows of ``paths`` (files of one table) as one Arrow table typed by ``schema``,
        read in parallel, only ``columns`` (all of them if None); an empty table for no paths."""
        columns = columns or schema.names
        if not paths:
            return schema.empty_table().select(columns)
        return pads.dataset(paths, schema=schema, format="parquet", filesystem=self.fs).to_table(columns=columns)

    def tables(self) -> list[str]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.base, recursive=False, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory and _TABLE_RE.match(i.base_name))


def s3_filesystem(
    endpoint_url: str = "",
    region: str = "us-east-1",
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    anonymous: bool = False,
) -> pafs.S3FileSystem:
    """An S3 filesystem for AWS (no endpoint) or any S3-compatible endpoint URL.

    Without explicit keys the AWS SDK's default chain applies (the standard ``AWS_*``
    environment variables, profiles, instance roles): no secret passes through our code.
    """
    kwargs: dict = {
        "region": region or "us-east-1",
        "connect_timeout": 5,
        "request_timeout": 30,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=5),
    }
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        kwargs["endpoint_override"] = parts.netloc + parts.path.rstrip("/")
        kwargs["scheme"] = parts.scheme or "https"
        kwargs["force_virtual_addressing"] = False
    if anonymous:
        kwargs["anonymous"] = True
    elif access_key and secret_key:
        kwargs.update(access_key=access_key, secret_key=secret_key, session_token=session_token)
    return pafs.S3FileSystem(**kwargs)


def _s3_lake_base(settings) -> str:
    return "/".join(p for p in (settings.s3_bucket, settings.s3_prefix, LAKE) if p)


def lake_root(settings) -> tuple[pafs.FileSystem, str]:
    """(filesystem, base path) of the lake ``settings.storage`` selects."""
    if settings.storage == "s3":
        return s3_filesystem(settings.s3_endpoint_url, settings.s3_region), _s3_lake_base(settings)
    return pafs.LocalFileSystem(), str(settings.lake_dir)


def open_lake(settings) -> Lake:
    return Lake(*lake_root(settings))


def lake_glob(settings, table: str, *, endpoint_style: bool = False) -> str:
    """Every window file of ``table`` as one glob, for ClickHouse's file()/s3() and DuckDB's
    read_parquet().

    Local: an absolute path. S3: ``s3://bucket/prefix/lake/<table>/date=*/window=*.parquet``
    (DuckDB with its S3 settings; ClickHouse on AWS). ``endpoint_style=True`` gives the
    path-style HTTP URL ClickHouse's s3() needs for a custom endpoint
    (``<MEV_S3_ENDPOINT_URL>/bucket/prefix/lake/...``; on AWS the regional virtual-host URL).
    """
    if not _TABLE_RE.match(table):
        raise LakeError(f"lake table names are identifiers ([A-Za-z_][A-Za-z0-9_]*), got {table!r}")
    tail = f"{table}/date=*/{DAY_FILE if table in DAILY_TABLES else 'window=*.parquet'}"
    if settings.storage != "s3":
        return f"{settings.lake_dir}/{tail}"
    if not endpoint_style:
        return f"s3://{_s3_lake_base(settings)}/{tail}"
    key = "/".join(p for p in (settings.s3_prefix, LAKE, tail) if p)
    if settings.s3_endpoint_url:
        return f"{settings.s3_endpoint_url}/{settings.s3_bucket}/{key}"
    return f"https://{settings.s3_bucket}.s3.{settings.s3_region}.amazonaws.com/{key}"
