"""ClickHouse SQL over the pipeline's tables: in-process (chdb) over the Parquet lake, or a server.

Embedded (default): every query batch opens a fresh in-memory chdb session with one view per lake
table over the table's Parquet glob (``file(...)`` locally, ``s3(...)`` in S3 mode). Nothing is
held between batches, no file is locked, and the views list the files anew on every query, so
queries run while windows are being materialised (the lake replaces window files atomically: a
query sees a window's old file or its new one, never half of one). The views derive ``window``
and ``date`` from the file path, so a filter on either skips the other files unopened.

Server (``MEV_CLICKHOUSE_URL``): versioned DDL (``mev_assets/clickhouse/ddl/V*.sql``, applied once
and recorded in ``schema_migrations``), ReplacingMergeTree tables partitioned by day with a TTL
from ``MEV_RETENTION_DAYS``, and an idempotent per-window loader (see :meth:`Warehouse.load_window`).

No Dagster here: ``mev_assets/resources/clickhouse.py`` and ``mev_assets/sql_command.py`` adapt it.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from urllib.parse import unquote, urlsplit

import polars as pl
import pyarrow as pa

from mev_assets.core.calldata import OUTPUT_SCHEMA as CALLDATA_SCHEMA
from mev_assets.core.fee_features import FEE_FEATURES_SCHEMA
from mev_assets.core.lake import DAY_FILE
from mev_assets.core.rollups import ROLLUP_NULLABLE, ROLLUP_SCHEMAS
from mev_assets.core.schemas import MEMPOOL_SOURCE_STATS_SCHEMA, MEMPOOL_TRANSACTIONS_SCHEMA

DATABASE = "mev"
DDL_DIR = Path(__file__).resolve().parents[1] / "clickhouse" / "ddl"
LAKE_FILE_GLOB = "date=*/window=*.parquet"
WINDOW_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
# The lake layout puts the window key in the file name and its day in the directory name.
_WINDOW_FROM_PATH = r"CAST(extract(_file, '^window=(.+)\\.parquet$') AS LowCardinality(String))"
_DATE_FROM_PATH = r"CAST(toDate(extract(_path, '/date=([0-9]{4}-[0-9]{2}-[0-9]{2})/')) AS Date)"


class ClickHouseError(RuntimeError):
    """A query, DDL or load failed; the message is one line, ClickHouse's own text when it has one."""

    @classmethod
    def from_exception(cls, exc: BaseException, context: str = "") -> "ClickHouseError":
        return cls(f"{context}{first_line(str(exc)) or type(exc).__name__}")


def first_line(message: str) -> str:
    """ClickHouse's own error line (``Code: N. DB::Exception: …``) if present, else the first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Code:"):
            return line
    return lines[0] if lines else ""


# --- column types -------------------------------------------------------------------------------

_CLICKHOUSE_TYPES = {
    pl.Int8: "Int8", pl.Int16: "Int16", pl.Int32: "Int32", pl.Int64: "Int64",
    pl.UInt8: "UInt8", pl.UInt16: "UInt16", pl.UInt32: "UInt32", pl.UInt64: "UInt64",
    pl.Float32: "Float32", pl.Float64: "Float64", pl.String: "String", pl.Boolean: "Bool",
    pl.Date: "Date",
}


@dataclass(frozen=True)
class TableSpec:
    """How a pipeline table is typed in ClickHouse (the server DDL must agree; a test checks it)."""

    name: str
    schema: Mapping[str, pl.DataType]
    nullable: frozenset[str] = frozenset()
    low_cardinality: frozenset[str] = frozenset()

    def columns(self) -> list[tuple[str, str]]:
        return [(c, _clickhouse_type(t, c in self.nullable, c in self.low_cardinality)) for c, t in self.schema.items()]

    def structure(self) -> str:
        return ", ".join(f"{quote_identifier(c)} {t}" for c, t in self.columns())


def _clickhouse_type(dtype: pl.DataType, nullable: bool, low_cardinality: bool) -> str:
    if isinstance(dtype, pl.List):
        return f"Array({_clickhouse_type(dtype.inner, False, low_cardinality)})"
    if isinstance(dtype, pl.Datetime):  # the lake's timestamps are UTC instants
        base = f"DateTime64({ {'ms': 3, 'us': 6, 'ns': 9}[dtype.time_unit] }, 'UTC')"
    else:
        base = _CLICKHOUSE_TYPES.get(dtype.base_type())
    if base is None:
        raise ClickHouseError(f"no ClickHouse type for polars {dtype}")
    if nullable:
        base = f"Nullable({base})"
    return f"LowCardinality({base})" if low_cardinality else base


# tx_features: the transaction's identity columns, then its decoded calldata, then its fee
# features (the order in which the tx_features asset joins them; the asset checks' schema agrees).
TX_FEATURES_IDENTITY_COLUMNS = ("window", "timestamp_ms", "hash", "from", "to", "tx_type", "nonce")
TX_FEATURES_SCHEMA: dict[str, pl.DataType] = {
    **{c: MEMPOOL_TRANSACTIONS_SCHEMA[c] for c in TX_FEATURES_IDENTITY_COLUMNS},
    **{c: t for c, t in CALLDATA_SCHEMA.items() if c != "hash"},
    **{c: t for c, t in FEE_FEATURES_SCHEMA.items() if c != "hash"},
}
# Never null in tx_features: the identity columns (but `to`), the decode status every row gets,
# and the fee features computed from the transaction alone. Every other decoded or fee column is
# null when it does not apply (no swap, no head seen yet). Lists are never Nullable in ClickHouse:
# a null list reads as [].
_TX_FEATURES_NOT_NULL = {*TX_FEATURES_IDENTITY_COLUMNS} - {"to"} | {"decode_status"}
_TX_FEATURES_NULLABLE = frozenset(
    c for c, t in TX_FEATURES_SCHEMA.items() if c not in _TX_FEATURES_NOT_NULL and not isinstance(t, pl.List)
)

# Columns that are null by meaning (contract creation has no `to`; pre-EIP-155 legacy has no
# chain id; latency is null when no other source saw the window's transactions). Every other
# column is never null in the lake, so it is not Nullable here (cheaper, and the same on a server).
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "mempool_transactions",
            MEMPOOL_TRANSACTIONS_SCHEMA,
            nullable=frozenset({"chain_id", "to"}),
            low_cardinality=frozenset({"window", "data_4bytes", "sources"}),
        ),
        TableSpec(
            "mempool_source_stats",
            MEMPOOL_SOURCE_STATS_SCHEMA,
            nullable=frozenset({"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms"}),
            low_cardinality=frozenset({"window", "source"}),
        ),
        TableSpec(
            "tx_features",
            TX_FEATURES_SCHEMA,
            nullable=_TX_FEATURES_NULLABLE,
            low_cardinality=frozenset(
                {"window", "protocol", "protocol_kind", "method", "decode_status", "swap_kind",
                 "token_in_symbol", "token_out_symbol"}
            ),
        ),
    )
}


# The dbt daily rollups, one lake file per day (mev_assets/core/rollups.py): views on the embedded
# backend, tables of V003 on a server, loaded per day (Warehouse.load_day). Not per-window tables:
# retention does not expire them (they outlive the windows, docs/dbt.md).
ROLLUPS: dict[str, TableSpec] = {
    name: TableSpec(
        name,
        schema,
        nullable=ROLLUP_NULLABLE[name],
        low_cardinality=frozenset({"source", "protocol", "protocol_kind"}) & set(schema),
    )
    for name, schema in ROLLUP_SCHEMAS.items()
}


def table_spec(name: str) -> TableSpec | None:
    """The spec of a per-window table or a daily rollup; None for a table this module does not know."""
    return TABLES.get(name) or ROLLUPS.get(name)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def window_literal(window: str) -> str:
    if not WINDOW_KEY.match(window):
        raise ClickHouseError(f"not a window key (expected YYYY-MM-DDTHH:MM:SS): {window!r}")
    return quote_string(window)


# --- where the lake is --------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Access:
    """How chdb reaches an S3 lake: endpoint, region and credentials (resolved by boto3's chain)."""

    endpoint_url: str = ""  # empty: AWS itself (virtual-hosted https URLs)
    region: str = "us-east-1"
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)

    @classmethod
    def from_aws_chain(cls, endpoint_url: str = "", region: str = "us-east-1") -> "S3Access":
        """Credentials from the standard AWS chain (environment, profile, instance role), as boto3
        finds them, so chdb reads the lake with the same identity the pipeline writes it with."""
        import boto3

        credentials = boto3.Session(region_name=region).get_credentials()
        if credentials is None:
            return cls(endpoint_url, region)
        frozen = credentials.get_frozen_credentials()
        return cls(endpoint_url, region, frozen.access_key or "", frozen.secret_key or "", frozen.token or "")


@dataclass(frozen=True)
class LakeSource:
    """Where chdb reads the lake (layout of :mod:`mev_assets.core.lake`): a file glob per table
    (a local path, or the http(s) URL ``s3()`` needs) and the tables present.

    ``s3`` is set for an S3 lake (``glob_of`` then returns URLs), ``None`` for local files.
    """

    glob_of: Callable[[str], str]
    tables_present: Callable[[], list[str]]
    s3: S3Access | None = None

    @classmethod
    def from_settings(cls, settings) -> "LakeSource":
        """``$MEV_HOME/lake``, or ``s3://<bucket>/<prefix>/lake`` with ``MEV_STORAGE=s3``."""
        from mev_assets.core.lake import lake_glob, open_lake

        lake = open_lake(settings)
        s3 = S3Access.from_aws_chain(settings.s3_endpoint_url, settings.s3_region) if settings.storage == "s3" else None
        return cls(lambda table: lake_glob(settings, table, endpoint_style=True), lake.tables, s3)

    @classmethod
    def directory(cls, root: str | Path) -> "LakeSource":
        """A local lake directory (``<root>/<table>/date=…/window=….parquet``)."""
        import pyarrow.fs as pafs

        from mev_assets.core.lake import Lake

        root = str(Path(root).resolve())
        return cls(
            lambda table: f"{root}/{table}/{f'date=*/{DAY_FILE}' if table in ROLLUPS else LAKE_FILE_GLOB}",
            Lake(pafs.LocalFileSystem(), root).tables,
        )

    def table_function(self, table: str, structure: str | None) -> str:
        """``file(...)`` or ``s3(...)`` over the table's files; no ``structure`` = inferred schema."""
        args = [quote_string(self.glob_of(table))]
        if self.s3 is not None:
            if self.s3.access_key_id:
                args += [quote_string(self.s3.access_key_id), quote_string(self.s3.secret_access_key)]
                if self.s3.session_token:
                    args.append(quote_string(self.s3.session_token))
            else:  # no credentials anywhere in the chain: a public bucket
                args.append("NOSIGN")
        args.append("'Parquet'")
        if structure:
            args.append(quote_string(structure))
        return f"{'file' if self.s3 is None else 's3'}({', '.join(args)})"

    def tables(self) -> list[str]:
        try:
            return self.tables_present()
        except OSError as exc:  # S3 unreachable, permissions
            raise ClickHouseError.from_exception(exc, "cannot list the lake: ") from None


# --- embedded: chdb over the lake ---------------------------------------------------------------


_REPLACED_FILE_ERROR = "Failed to parse Parquet"
_REPLACED_FILE_RETRIES = 3


class LakeSession:
    """One in-memory chdb session with a view per lake table (``USE``d, so names need no prefix)."""

    def __init__(self, session, database: str, views: list[str], skipped: dict[str, str]):
        self._session = session
        self.database = database
        self.views = views
        self.skipped = skipped  # table -> why it has no view (e.g. an unreadable first file)

    def _run(self, sql: str, output_format: str):
        for attempt in range(_REPLACED_FILE_RETRIES + 1):
            try:
                return self._session.query(sql, output_format)
            except Exception as exc:  # chdb raises RuntimeError / ChdbError carrying ClickHouse's text
                error = ClickHouseError.from_exception(exc)
                # a window file replaced (renamed over) while the query reads the glob was seen to fail
                # as an unparsable footer, once in many runs; the file on disk is whole (old or new),
                # so the query runs again and lists the glob afresh.
                if attempt < _REPLACED_FILE_RETRIES and _REPLACED_FILE_ERROR in str(error):
                    continue
                break
        # a query naming a lake table that got no view fails as an unknown table: say why
        why = [f"{t} has no view ({reason})" for t, reason in self.skipped.items() if re.search(rf"\b{t}\b", sql)]
        raise ClickHouseError("; ".join([str(error), *why])) from None

    def command(self, sql: str) -> None:
        self._run(sql, "CSV")

    def set(self, settings: Mapping[str, object]) -> None:
        for name, value in settings.items():
            literal = quote_string(value) if isinstance(value, str) else str(int(value) if isinstance(value, bool) else value)
            self.command(f"SET {name} = {literal}")

    def query_arrow(self, sql: str) -> pa.Table:
        return self._run(sql, "ArrowTable")

    def query_polars(self, sql: str) -> pl.DataFrame:
        return pl.from_arrow(self.query_arrow(sql))

    def query_text(self, sql: str, output_format: str, settings: Mapping[str, object] | None = None) -> str:
        """The result rendered by ClickHouse itself in ``output_format`` (e.g. ``CSVWithNames``)."""
        if settings:
            self.set(settings)
        return self._run(sql, output_format).bytes().decode()


class EmbeddedClickHouse:
    """ClickHouse SQL over the lake with chdb, one fresh session per query batch."""

    def __init__(self, lake: LakeSource):
        self.lake = lake

    def view_sql(self, table: str, spec: TableSpec | None, columns: list[str] | None = None) -> str:
        """The view of one table; ``columns`` are the inferred ones of a table without a spec
        (they may include ``date`` already: ClickHouse reads ``date=…`` directories as a column)."""
        source = self.lake.table_function(table, spec.structure() if spec else None)
        names = list(spec.schema) if spec else (columns or [])
        replace = [f"{_WINDOW_FROM_PATH} AS `window`"] if "window" in names else []
        if "date" in names:
            replace.append(f"{_DATE_FROM_PATH} AS `date`")
        star = f"* REPLACE ({', '.join(replace)})" if replace else "*"
        extra = "" if "date" in names else f", {_DATE_FROM_PATH} AS `date`"
        return f"SELECT {star}{extra} FROM {source}"

    @contextmanager
    def session(self) -> Iterator[LakeSession]:
        import chdb.session

        try:
            # ":memory:": chdb runs one engine per process, on one path; in-memory sessions never
            # clash with each other, and a per-session database keeps concurrent batches apart.
            session = chdb.session.Session(":memory:")
        except Exception as exc:
            raise ClickHouseError.from_exception(exc, "cannot start chdb: ") from None
        database = f"lake_{uuid.uuid4().hex[:16]}"
        lake_session = LakeSession(session, database, [], {})
        try:
            lake_session.command(f"CREATE DATABASE {database} ENGINE = Memory")
            lake_session.command(f"USE {database}")
            for table in sorted(set(TABLES) | set(ROLLUPS) | set(self.lake.tables())):
                spec = table_spec(table)
                columns = None
                if spec is None:  # a table this module does not know yet: infer from its files
                    try:
                        described = lake_session.query_arrow(f"DESCRIBE {self.lake.table_function(table, None)}")
                    except ClickHouseError as exc:
                        lake_session.skipped[table] = str(exc)
                        continue
                    columns = described.column("name").to_pylist()
                view = f"{database}.{quote_identifier(table)}"
                lake_session.command(f"CREATE VIEW {view} AS {self.view_sql(table, spec, columns)}")
                lake_session.views.append(table)
            yield lake_session
        finally:
            try:
                session.query(f"DROP DATABASE IF EXISTS {database}")
            except Exception:  # noqa: BLE001 - an in-memory database of views; never mask the real error
                pass
            session.close()

    def query_arrow(self, sql: str) -> pa.Table:
        with self.session() as session:
            return session.query_arrow(sql)

    def query_polars(self, sql: str) -> pl.DataFrame:
        return pl.from_arrow(self.query_arrow(sql))

    def query_text(self, sql: str, output_format: str, settings: Mapping[str, object] | None = None) -> str:
        with self.session() as session:
            return session.query_text(sql, output_format, settings)


# --- server: versioned DDL, idempotent window loads ---------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def statements(self, database: str, retention_days: int) -> list[str]:
        body = "\n".join(line for line in self.text.splitlines() if not line.lstrip().startswith("--"))
        body = Template(body).substitute(database=quote_identifier(database), retention_days=int(retention_days))
        return [s.strip() for s in re.split(r";[ \t]*$", body, flags=re.MULTILINE) if s.strip()]


def migrations(ddl_dir: Path = DDL_DIR) -> list[Migration]:
    found = []
    for path in ddl_dir.glob("V*__*.sql"):
        match = re.fullmatch(r"V(\d+)__(.+)\.sql", path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ClickHouseError(f"two DDL migrations share a version in {ddl_dir}: {versions}")
    return found


def server_client(url: str, *, use_database: bool = True):
    """A clickhouse-connect client for ``http(s)://[user[:password]@]host[:port][/database]``.

    Returns ``(client, database)``; the database (default ``mev``) is the client's default only
    with ``use_database`` (it may not exist yet before :meth:`Warehouse.migrate`).
    """
    import clickhouse_connect

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClickHouseError("MEV_CLICKHOUSE_URL must look like http(s)://[user[:password]@]host[:port][/database]")
    database = unquote(parts.path.strip("/")) or DATABASE
    try:
        client = clickhouse_connect.get_client(
            host=parts.hostname,
            port=parts.port or (8443 if parts.scheme == "https" else 8123),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password or ""),
            secure=parts.scheme == "https",
            database=database if use_database else None,
        )
    except Exception as exc:
        # the message names host and port, never the password
        raise ClickHouseError.from_exception(exc, f"cannot reach ClickHouse at {parts.hostname}:{parts.port}: ") from None
    return client, database


@dataclass(frozen=True)
class MigrationReport:
    applied: list[str]
    ttl_changed: list[str]


class Warehouse:
    """The pipeline's tables on a ClickHouse engine reached through a clickhouse-connect client.

    The client is a server's (``server_client``) or, in tests, chdb's (``chdb://memory``): the
    same DDL, loads and queries run on both.
    """

    def __init__(self, client, database: str = DATABASE, retention_days: int = 30):
        if retention_days < 1:
            raise ClickHouseError(f"retention must be at least one day, got {retention_days}")
        self.client = client
        self.database = database
        self.retention_days = retention_days
        self._db = quote_identifier(database)

    def _command(self, sql: str):
        try:
            return self.client.command(sql, use_database=False)
        except Exception as exc:
            raise ClickHouseError.from_exception(exc) from None

    def _rows(self, sql: str) -> list[tuple]:
        try:
            return self.client.query(sql).result_rows
        except Exception as exc:
            raise ClickHouseError.from_exception(exc) from None

    def table(self, name: str) -> str:
        return f"{self._db}.{quote_identifier(name)}"

    # -- DDL --

    def applied_migrations(self) -> dict[int, str]:
        rows = self._rows(f"SELECT version, checksum FROM {self.table('schema_migrations')}")
        return {int(v): c for v, c in rows}

    def migrate(self, ddl_dir: Path = DDL_DIR) -> MigrationReport:
        """Apply every DDL file not yet applied to this database, then bring TTLs to the retention."""
        self._command(f"CREATE DATABASE IF NOT EXISTS {self._db}")
        self._command(
            f"CREATE TABLE IF NOT EXISTS {self.table('schema_migrations')} "
            "(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')) "
            "ENGINE = MergeTree ORDER BY version"
        )
        done = self.applied_migrations()
        applied = []
        for migration in migrations(ddl_dir):
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise ClickHouseError(
                        f"{migration.path.name} changed after it was applied to {self.database}: "
                        "add a new V<n>__….sql migration instead of editing an applied one"
                    )
                continue
            for statement in migration.statements(self.database, self.retention_days):
                self._command(statement)
            self._command(
                f"INSERT INTO {self.table('schema_migrations')} (version, name, checksum, applied_at) VALUES "
                f"({migration.version}, {quote_string(migration.name)}, {quote_string(migration.checksum)}, now64(3))"
            )
            applied.append(migration.path.name)
        return MigrationReport(applied=applied, ttl_changed=self.apply_retention())

    def apply_retention(self) -> list[str]:
        """``ALTER … MODIFY TTL`` on every table whose TTL differs from the retention setting."""
        wanted = f"TTL date + toIntervalDay({self.retention_days})"
        changed = []
        for name, engine_full in self._rows(
            f"SELECT name, engine_full FROM system.tables WHERE database = {quote_string(self.database)}"
        ):
            if name in TABLES and wanted not in engine_full:
                self._command(f"ALTER TABLE {self.table(name)} MODIFY TTL date + INTERVAL {self.retention_days} DAY")
                changed.append(name)
        return changed

    # -- loads --

    def load_window(self, table: str, window: str, frame: pl.DataFrame) -> int:
        """Replace the rows of ``window`` in ``table`` by ``frame``; safe to repeat.

        Insert the new rows under a newer ``loaded_at`` version, then delete the window's older
        versions (lightweight DELETE: a mask, not a part rewrite like ``ALTER TABLE … DELETE``).
        Readers never see the window missing; between the two statements (or after a crash
        between them) they may see both versions, which ReplacingMergeTree collapses per
        (window, key) — exactly with ``FINAL`` — and the next load of the window removes.
        """
        spec = TABLES.get(table)
        if spec is None:
            raise ClickHouseError(f"no ClickHouse table {table!r} (known: {', '.join(TABLES)})")
        literal = window_literal(window)
        missing = [c for c in spec.schema if c not in frame.columns]
        if missing:
            raise ClickHouseError(f"{table}: frame for window {window} lacks columns {missing}")
        if frame.height and not (frame.get_column("window") == window).all():
            raise ClickHouseError(f"{table}: frame for window {window} holds rows of other windows")
        return self._replace(spec, "`window`", literal, frame, f"{table} window {window}")

    def load_day(self, table: str, day: str, frame: pl.DataFrame) -> int:
        """Replace the rows of ``day`` (``YYYY-MM-DD``) in the daily rollup ``table`` by ``frame``;
        safe to repeat (the same versioned insert-then-delete as :meth:`load_window`)."""
        spec = ROLLUPS.get(table)
        if spec is None:
            raise ClickHouseError(f"no ClickHouse rollup table {table!r} (known: {', '.join(ROLLUPS)})")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ClickHouseError(f"not a day (expected YYYY-MM-DD): {day!r}")
        missing = [c for c in spec.schema if c not in frame.columns]
        if missing:
            raise ClickHouseError(f"{table}: frame for day {day} lacks columns {missing}")
        if frame.height and not (frame.get_column("date").cast(pl.String) == day).all():
            raise ClickHouseError(f"{table}: frame for day {day} holds rows of other days")
        return self._replace(spec, "date", f"toDate({quote_string(day)})", frame, f"{table} day {day}")

    def days(self) -> dict[str, list[str]]:
        """The days each rollup table on the server holds (tables not created yet: none)."""
        existing = {
            r[0] for r in self._rows(f"SELECT name FROM system.tables WHERE database = {quote_string(self.database)}")
        }
        return {
            table: sorted(str(r[0]) for r in self._rows(f"SELECT DISTINCT date FROM {self.table(table)}"))
            for table in ROLLUPS
            if table in existing
        }

    def _replace(self, spec: TableSpec, key_column: str, key_sql: str, frame: pl.DataFrame, what: str) -> int:
        """Insert ``frame`` as the newest version of the rows where ``key_column = key_sql``,
        then delete that key's older versions."""
        table = spec.name
        version_us = self._next_version(table, key_column, key_sql)
        if frame.height:
            data = frame.select(list(spec.schema)).with_columns(
                pl.lit(version_us).cast(pl.Datetime("us", "UTC")).alias("loaded_at")
            )
            buffer = io.BytesIO()
            data.write_parquet(buffer)
            try:
                self.client.raw_insert(self.table(table), data.columns, insert_block=buffer.getvalue(), fmt="Parquet")
            except Exception as exc:
                raise ClickHouseError.from_exception(exc, f"{what}: ") from None
        self._command(
            f"DELETE FROM {self.table(table)} WHERE {key_column} = {key_sql} "
            f"AND loaded_at < fromUnixTimestamp64Micro(toInt64({version_us}), 'UTC')"
        )
        return frame.height

    def load_lake_windows(self, lake, table: str, windows: list[str]) -> dict[str, int]:
        """Load windows of ``table`` from the Parquet lake (a :class:`mev_assets.core.lake.Lake`),
        one idempotent :meth:`load_window` each: backfills, replays, a server added later."""
        return {window: self.load_window(table, window, lake.read_window(table, window)) for window in windows}

    def windows(self) -> dict[str, list[str]]:
        """The window keys each pipeline table on the server holds (tables not created yet: none)."""
        existing = {
            r[0] for r in self._rows(f"SELECT name FROM system.tables WHERE database = {quote_string(self.database)}")
        }
        return {
            table: sorted(str(r[0]) for r in self._rows(f"SELECT DISTINCT `window` FROM {self.table(table)}"))
            for table in TABLES
            if table in existing
        }

    def delete_window(self, table: str, window: str) -> None:
        """Remove every row (every version) of ``window`` from ``table``; safe to repeat."""
        if table not in TABLES:
            raise ClickHouseError(f"no ClickHouse table {table!r} (known: {', '.join(TABLES)})")
        self._command(f"DELETE FROM {self.table(table)} WHERE `window` = {window_literal(window)}")

    def _next_version(self, table: str, key_column: str, key_sql: str) -> int:
        """Now in µs, but always above the key's last version (a clock step back must not
        let an older load win)."""
        rows = self._rows(
            f"SELECT toUnixTimestamp64Micro(max(loaded_at)) FROM {self.table(table)} WHERE {key_column} = {key_sql}"
        )
        last = int(rows[0][0] or 0) if rows else 0
        return max(time.time_ns() // 1000, last + 1)
