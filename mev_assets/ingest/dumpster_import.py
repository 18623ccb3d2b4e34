"""Import mempool-dumpster's published history (https://mempool-dumpster.flashbots.net) as landing segments.

Inputs (format sniffed from the first bytes; ``.zip`` and ``.gz`` are read compressed, streaming):

* daily **transaction files**: Parquet (``timestamp, hash, chainId, txType, from, to, value, nonce,
  gas, gasPrice, gasTipCap, gasFeeCap, dataSize, data4Bytes, sources, includedAtBlockHeight,
  includedBlockTimestamp, inclusionDelayMs, rawTx``) or CSV (the same columns without ``rawTx``;
  camelCase or the snake_case header of newer archives, ``timestamp_ms, chain_id, gas_price ...``).
* **sourcelog** files: CSV ``timestamp_ms,hash,source`` (header optional) or Parquet with those columns.

Every accepted row becomes a landing row (``LANDING_TX_SCHEMA``) in the window of its timestamp, with
``source`` = the first of its ``sources`` (mempool-dumpster orders them by arrival) and ``collector_id``
= this import's id. A row with ``rawTx`` is decoded with :func:`decode_raw_transaction` (signature
recovered, ``settings.chain_id`` enforced): the raw is the source of truth and every summary column
present in the file must agree with it. A row without ``rawTx`` (the CSV) lands with its validated
summary columns and ``input``/``raw_tx`` null.

Sightings (the ``sourcelog`` area): from the sourcelog files when given - each ``(hash, source)`` row at
its own timestamp, landed in the window of its transaction so the table's ``sources`` equal the archive's
(rows for hashes not imported are counted as unmatched and not landed) - otherwise one per entry of
each row's ``sources``, at the row's timestamp.

Streaming, bounded memory: Parquet through ``ParquetFile.iter_batches``, CSV through ``pyarrow.csv``'s
block reader; each batch is validated with polars expressions, only rows with ``rawTx`` are decoded one
by one (signature recovery is per transaction). Rows wait in per-window buffers that are written as
segments (``LandingZone.write_segment``) once the stream has moved ``lateness_seconds`` past the window,
or earlier when the buffers exceed ``max_buffered_rows`` (unsorted input then gives a window several
segments, with increasing seq). What stays for the whole import is a compact index of the accepted
hashes (16 bytes of prefix plus the window, ~24 bytes per transaction) for dedup and sourcelog matching.

Idempotent: the collector id is deterministic (``dumpster-<first file's stem>``) and so are the
segment seqs; every window written is sealed (``_SEALED.<collector_id>``) when the whole import has
succeeded. A window already sealed by this collector id is skipped - left exactly as it is - so
re-importing the same files adds nothing; a crashed import is re-run and rewrites the same segment
names with the same content.

Malformed rows are quarantined (``LandingZone.append_quarantine``, the row itself as payload) with a
reason ``"<code>: <detail>"``; the import never stops for a bad row. Codes: ``missing_field``,
``bad_field``, ``bad_row`` (CSV line with the wrong number of fields), ``wrong_chain_id``,
``no_chain_id``, ``unsupported_type``, ``summary_mismatch`` (a summary column disagrees with the
decoded ``rawTx``; the detail names the column) and :mod:`txparse`'s codes for an undecodable
``rawTx`` (``bad_rlp``, ``bad_signature``, ``bad_field`` ...). A file that cannot be imported at all
(not CSV/Parquet, no header, required columns missing) raises :class:`DumpsterImportError` before
anything is written. See docs/importing.md.
"""

from __future__ import annotations

import gzip
import logging
import os
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mev_assets.core.schemas import LANDING_TX_SCHEMA
from mev_assets.core.txparse import InvalidTransaction, decode_raw_transaction
from mev_assets.core.windows import key_for_start_ms
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.quarantine import quarantine_record, reason_code
from mev_assets.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["DumpsterImportError", "DumpsterImportReport", "import_dumpster", "TX_COLUMN_ALIASES"]

DEFAULT_SOURCE = "dumpster"
# Ethereum's genesis block: an earlier "millisecond" timestamp is almost surely seconds.
ETHEREUM_GENESIS_MS = 1_438_269_973_000
U64_MAX = str(2**64 - 1)
U256_MAX = str(2**256 - 1)

# canonical (landing) name -> the spellings mempool-dumpster has used for it
TX_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp_ms": ("timestamp", "timestamp_ms"),
    "hash": ("hash",),
    "chain_id": ("chainId", "chain_id"),
    "tx_type": ("txType", "tx_type"),
    "from": ("from",),
    "to": ("to",),
    "value": ("value",),
    "nonce": ("nonce",),
    "gas": ("gas",),
    "gas_price": ("gasPrice", "gas_price"),
    "gas_tip_cap": ("gasTipCap", "gas_tip_cap"),
    "gas_fee_cap": ("gasFeeCap", "gas_fee_cap"),
    "data_size": ("dataSize", "data_size"),
    "data_4bytes": ("data4Bytes", "data_4bytes"),
    "sources": ("sources",),
    "raw_tx": ("rawTx", "raw_tx"),
}
SOURCELOG_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp_ms": ("timestamp_ms", "timestamp"),
    "hash": ("hash",),
    "source": ("source",),
}
# Without rawTx these summary columns are the transaction; txType (absent from old archives) and
# sources are optional.
SUMMARY_COLUMNS = ("chain_id", "from", "to", "value", "nonce", "gas", "gas_price", "gas_tip_cap",
                   "gas_fee_cap", "data_size", "data_4bytes")
U256_COLUMNS = ("value", "gas_price", "gas_tip_cap", "gas_fee_cap")
U64_COLUMNS = ("nonce", "gas")

_HASH_RE = r"^0x[0-9a-f]{64}$"
_ADDRESS_RE = r"^0x[0-9a-f]{40}$"
_DECIMAL_RE = r"^(0|[1-9][0-9]*)$"
_SELECTOR_RE = r"^0x[0-9a-f]{8}$"
_SOURCE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
_SOURCE_SPLIT_RE = r"[\s,;]+"  # newer CSVs join sources with spaces, others with commas

_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"


class DumpsterImportError(ValueError):
    """A file cannot be imported at all (the message names the file and the problem)."""


@dataclass
class DumpsterImportReport:
    """What one import did. ``rows == accepted + already_landed + duplicates + quarantined_total``."""

    collector_id: str
    files: list[str] = field(default_factory=list)
    rows: int = 0  # transaction rows read (malformed CSV lines included)
    accepted: int = 0  # landed by this run
    accepted_with_raw: int = 0  # of which decoded from rawTx
    already_landed: int = 0  # valid, but their window was sealed by an earlier run of this import
    duplicates: int = 0  # hash already accepted earlier in this import
    quarantined: dict[str, int] = field(default_factory=dict)  # transaction rows, by reason code
    sourcelog_rows: int = 0
    sightings: int = 0  # sightings landed (sourcelog rows, or entries of the rows' sources)
    sourcelog_unmatched: int = 0  # sourcelog rows whose hash is not among the accepted transactions
    sourcelog_quarantined: dict[str, int] = field(default_factory=dict)
    windows: list[str] = field(default_factory=list)  # written and sealed by this run
    windows_skipped: list[str] = field(default_factory=list)  # already sealed by this collector id
    segments: int = 0
    seconds: float = 0.0

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def summary(self) -> str:
        q = ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined.items())) or "none"
        text = (
            f"{self.rows} rows: {self.accepted} accepted ({self.accepted_with_raw} from rawTx), "
            f"{self.duplicates} duplicates, {self.quarantined_total} quarantined ({q})"
        )
        if self.already_landed:
            text += f", {self.already_landed} already landed"
        if self.sourcelog_rows:
            sq = sum(self.sourcelog_quarantined.values())
            text += (f"; sourcelog {self.sourcelog_rows} rows: {self.sightings} sightings, "
                     f"{self.sourcelog_unmatched} unmatched, {sq} quarantined")
        else:
            text += f"; {self.sightings} sightings from sources"
        text += (f"; {len(self.windows)} window(s) written in {self.segments} segment(s)"
                 f"{f', {len(self.windows_skipped)} already sealed and skipped' if self.windows_skipped else ''}"
                 f" as collector {self.collector_id} in {self.seconds:.1f}s")
        return text


# --------------------------------------------------------------------------------------
# files: format sniffing, streaming readers


class _CountingReader:
    """A binary file that counts the bytes read from it (progress in bytes of the file on disk)."""

    def __init__(self, fh):
        self._fh = fh
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self.bytes_read += len(data)
        return data

    def readinto(self, buf) -> int:
        n = self._fh.readinto(buf)
        self.bytes_read += n or 0
        return n

    def __getattr__(self, name: str):
        return getattr(self._fh, name)


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == _PARQUET_MAGIC:
        return "parquet"
    if head == _ZIP_MAGIC:
        return "zip"
    if head[:2] == _GZIP_MAGIC:
        return "gzip"
    return "csv"


def _zip_member(zf: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    members = [m for m in zf.infolist() if not m.is_dir()]
    csvs = [m for m in members if m.filename.lower().endswith(".csv")]
    if len(csvs) == 1 or (not csvs and len(members) == 1):
        return (csvs or members)[0]
    raise DumpsterImportError(f"{path}: a zip archive must hold exactly one .csv file, found {[m.filename for m in members]}")


class _TextSource:
    """Opens a (possibly compressed) CSV file as a fresh binary stream, counting compressed bytes."""

    def __init__(self, path: Path, kind: str):
        self.path = path
        self.kind = kind

    def open(self) -> tuple[Any, _CountingReader, list]:
        raw = open(self.path, "rb")
        counter = _CountingReader(raw)
        closers: list = [raw]
        if self.kind == "gzip":
            stream = gzip.GzipFile(fileobj=counter, mode="rb")
            closers.insert(0, stream)
        elif self.kind == "zip":
            zf = zipfile.ZipFile(counter)
            stream = zf.open(_zip_member(zf, self.path))
            closers[:0] = [stream, zf]
        else:
            stream = counter
        return stream, counter, closers

    def first_line(self) -> str:
        stream, _, closers = self.open()
        try:
            line = stream.readline(1 << 16)
        finally:
            for c in closers:
                c.close()
        return line.decode("utf-8", errors="replace").lstrip("\ufeff").strip()


@dataclass
class _Batch:
    frame: pl.DataFrame  # the file's columns (the row as read: quarantine payloads come from here)
    bad_lines: list[tuple[int | None, str, str]]  # (line number, reason, text) of unparseable CSV lines
    progress: int  # bytes (CSV) or rows (Parquet) consumed since the previous batch


@dataclass
class _InputFile:
    path: Path
    kind: str  # parquet | csv | gzip | zip
    names: dict[str, str]  # canonical -> the file's column name, for the columns present
    header: list[str] | None = None  # CSV header (None: headerless sourcelog)
    num_rows: int | None = None

    @property
    def progress_total(self) -> int | None:
        return self.num_rows if self.kind == "parquet" else self.path.stat().st_size

    @property
    def progress_unit(self) -> str:
        return "rows" if self.kind == "parquet" else "B"


def _resolve_names(columns: Sequence[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    present = {c.strip(): c for c in columns}
    names = {}
    for canonical, spellings in aliases.items():
        for s in spellings:
            if s in present:
                names[canonical] = present[s]
                break
    return names


def _open_input(path: Path, aliases: dict[str, tuple[str, ...]], what: str) -> _InputFile:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    kind = _sniff(path)
    if kind == "parquet":
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad footer
            raise DumpsterImportError(f"{path}: not a readable Parquet file ({exc})") from None
        return _InputFile(path, kind, _resolve_names(pf.schema_arrow.names, aliases), num_rows=pf.metadata.num_rows)
    try:
        line = _TextSource(path, kind).first_line()
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DumpsterImportError(f"{path}: cannot read ({exc})") from None
    fields = [f.strip().strip('"') for f in line.split(",")]
    if what == "sourcelog" and fields and fields[0].isdigit():
        header = None  # headerless sourcelog: timestamp_ms,hash,source
        names = {"timestamp_ms": "timestamp_ms", "hash": "hash", "source": "source"}
    elif not line or fields[0].isdigit():
        raise DumpsterImportError(f"{path}: the first line is not a header (mempool-dumpster CSV files start "
                                  f"with one, e.g. timestamp_ms,hash,chain_id,...): {line[:120]!r}")
    else:
        header = fields
        names = _resolve_names(fields, aliases)
    return _InputFile(path, kind, names, header=header)


def _check_columns(inp: _InputFile, what: str) -> None:
    if what == "sourcelog":
        missing = [c for c in SOURCELOG_COLUMN_ALIASES if c not in inp.names]
    else:
        missing = [c for c in ("timestamp_ms", "hash") if c not in inp.names]
        if "raw_tx" not in inp.names:
            missing += [c for c in SUMMARY_COLUMNS if c not in inp.names]
    if missing:
        found = inp.header if inp.header is not None else list(inp.names.values())
        snake = any("_" in name for name in found)  # name the columns in the file's own convention
        spelled = [TX_COLUMN_ALIASES.get(c, SOURCELOG_COLUMN_ALIASES.get(c, (c,)))[-1 if snake else 0] for c in missing]
        raise DumpsterImportError(
            f"{inp.path}: not a mempool-dumpster {what} file: missing column(s) {', '.join(spelled)} "
            f"(found {', '.join(found[:24]) if found else 'none'})"
        )


def _binary_batch_to_text(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[int, str]]:
    """CSV columns are read as binary (so one bad byte cannot fail a whole block) and turned into
    strings here; rows with invalid UTF-8 get a reason and the offending field nulled."""
    target = pa.schema([pa.field(f.name, pa.string()) for f in batch.schema])
    try:
        return batch.cast(target), {}
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    bad: dict[int, str] = {}
    arrays = []
    for name, col in zip(batch.schema.names, batch.columns):
        try:
            arrays.append(col.cast(pa.string()))
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        values = []
        for i, v in enumerate(col.to_pylist()):
            if v is None:
                values.append(None)
                continue
            try:
                values.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                bad.setdefault(i, f"bad_field: {name} is not UTF-8 text ({v[:40]!r})")
                values.append(v.decode("utf-8", errors="replace"))
        arrays.append(pa.array(values, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=target), bad


def _iter_batches(inp: _InputFile, batch_rows: int, csv_block_bytes: int) -> Iterator[_Batch]:
    wanted = list(dict.fromkeys(inp.names.values()))
    if inp.kind == "parquet":
        # pre_buffer off + a read buffer: pages are read as needed, not whole column chunks at once
        pf = pq.ParquetFile(inp.path, buffer_size=1 << 22, pre_buffer=False)
        for rb in pf.iter_batches(batch_size=batch_rows, columns=wanted, use_threads=False):
            yield _Batch(pl.from_arrow(rb), [], rb.num_rows)
        return
    bad_lines: list[tuple[int | None, str, str]] = []

    def on_invalid(row) -> str:
        bad_lines.append((row.number, f"bad_row: expected {row.expected_columns} fields, got {row.actual_columns}",
                          row.text))
        return "skip"

    column_names = inp.header if inp.header is not None else ["timestamp_ms", "hash", "source"]
    stream, counter, closers = _TextSource(inp.path, inp.kind).open()
    reader = None
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                use_threads=False,  # deterministic line numbers and batch boundaries (idempotent seqs)
                block_size=csv_block_bytes,
                column_names=None if inp.header is not None else column_names,
                skip_rows=0,
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in column_names},
                include_columns=wanted,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        seen_bytes = 0
        for rb in reader:
            text_batch, utf8_errors = _binary_batch_to_text(rb)
            frame = pl.from_arrow(text_batch)
            if utf8_errors:
                frame = frame.with_columns(
                    pl.Series("_utf8_error", [utf8_errors.get(i) for i in range(frame.height)], pl.String)
                )
            lines, bad_lines[:] = list(bad_lines), []
            progress, seen_bytes = counter.bytes_read - seen_bytes, counter.bytes_read
            yield _Batch(frame, lines, progress)
        if bad_lines:
            yield _Batch(pl.DataFrame(schema={n: pl.String for n in wanted}), list(bad_lines), 0)
    except pa.ArrowInvalid as exc:
        raise DumpsterImportError(f"{inp.path}: unreadable CSV ({str(exc).splitlines()[0]})") from None
    finally:
        if reader is not None:
            reader.close()  # stop its read-ahead thread before the file goes away
        for c in closers:
            c.close()


# --------------------------------------------------------------------------------------
# vectorised normalisation and validation of one batch


def _text(frame: pl.DataFrame, names: dict[str, str], canonical: str) -> pl.Expr:
    """The column as stripped text (null when the file does not have it)."""
    name = names.get(canonical)
    if name is None:
        return pl.lit(None, pl.String)
    dtype = frame.schema[name]
    expr = pl.col(name)
    if dtype == pl.Binary:
        expr = expr.map_batches(lambda s: s.map_elements(lambda b: b.decode("utf-8", "replace"), return_dtype=pl.String),
                                return_dtype=pl.String)
    elif isinstance(dtype, pl.Datetime):
        expr = expr.dt.epoch("ms").cast(pl.String)
    elif dtype != pl.String:
        expr = expr.cast(pl.String)
    return expr.str.strip_chars()


def _timestamp_ms(frame: pl.DataFrame, names: dict[str, str]) -> pl.Expr:
    name = names["timestamp_ms"]
    dtype = frame.schema[name]
    if isinstance(dtype, pl.Datetime):
        return pl.col(name).dt.epoch("ms")
    if dtype.is_integer():
        return pl.col(name).cast(pl.Int64, strict=False)
    return _text(frame, names, "timestamp_ms").str.to_integer(strict=False)


def _sources(frame: pl.DataFrame, names: dict[str, str]) -> pl.Expr:
    name = names.get("sources")
    if name is None:
        return pl.lit(None, pl.List(pl.String))
    dtype = frame.schema[name]
    if isinstance(dtype, pl.List):
        listed = pl.col(name).cast(pl.List(pl.String)).list.eval(pl.element().str.strip_chars())
    else:
        listed = _text(frame, names, "sources").str.replace_all(_SOURCE_SPLIT_RE, " ").str.strip_chars().str.split(" ")
    return listed.list.eval(pl.element().filter(pl.element().is_not_null() & (pl.element() != ""))).list.unique(
        maintain_order=True
    )


def _has_raw(frame: pl.DataFrame, names: dict[str, str]) -> pl.Expr:
    """Whether the row has a non-empty rawTx (binary bytes or hex text)."""
    name = names.get("raw_tx")
    if name is None:
        return pl.lit(False)
    col = pl.col(name)
    size = col.bin.size() if frame.schema[name] == pl.Binary else col.cast(pl.String).str.strip_chars().str.len_bytes()
    return col.is_not_null() & (size > 0)


def _u256_ok(col: str) -> pl.Expr:
    c = pl.col(col)
    n = c.str.len_bytes()
    return c.str.contains(_DECIMAL_RE) & ((n < 78) | ((n == 78) & (c <= U256_MAX)))


def _u64_ok(col: str) -> pl.Expr:
    c = pl.col(col)
    n = c.str.len_bytes()
    return c.str.contains(_DECIMAL_RE) & ((n < 20) | ((n == 20) & (c <= U64_MAX)))


def _plausible_ts() -> pl.Expr:
    """The row's timestamp when it can place the row in a window (also for a quarantined row)."""
    ts = pl.col("timestamp_ms")
    return pl.when(ts >= ETHEREUM_GENESIS_MS).then(ts)


def _shown(col: str) -> pl.Expr:
    return pl.col(col).str.slice(0, 80)


def _with_reasons(frame: pl.DataFrame, checks: list[tuple[pl.Expr, pl.Expr]], into: str = "reason") -> pl.DataFrame:
    """Add ``into``: the reason of each row's first failing check (checks are (failed, reason) pairs),
    null when every check passes. The failure flags are evaluated on every row, the reason texts only
    on the failing rows (few, and formatting a text per row and check would cost more than the checks)."""
    if not checks:
        return frame.with_columns(pl.lit(None, pl.String).alias(into))
    first: pl.Expr = pl.lit(None, pl.Int16)
    for i, (failed, _) in reversed(list(enumerate(checks))):
        first = pl.when(failed.fill_null(False)).then(pl.lit(i, pl.Int16)).otherwise(first)
    failing = frame.select(first).to_series()
    reasons = pl.Series(into, [None] * frame.height, pl.String)
    at = failing.is_not_null()
    if at.any():
        text: pl.Expr = pl.lit(None, pl.String)
        for i, (_, reason) in reversed(list(enumerate(checks))):
            text = pl.when(pl.col("_check") == i).then(reason).otherwise(text)
        texts = frame.filter(at).with_columns(failing.filter(at).alias("_check")).select(text).to_series()
        reasons = reasons.scatter(np.flatnonzero(at.to_numpy()), texts)
    return frame.with_columns(reasons)


def _stage(frame: pl.DataFrame, names: dict[str, str], chain_id: int) -> pl.DataFrame:
    """Normalise one batch of a transaction file and find each row's first validation failure.

    Columns: ``_row`` (index in the batch), ``timestamp_ms``, the canonical text columns (lowercased
    hex), ``sources`` (list), ``has_raw``, ``reason`` (null when the row passed).
    """
    label = {c: names.get(c, TX_COLUMN_ALIASES.get(c, (c,))[0]) for c in TX_COLUMN_ALIASES}
    lower = ("hash", "from", "to", "data_4bytes")
    stage = frame.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
        _timestamp_ms(frame, names).alias("timestamp_ms"),
        _text(frame, names, "timestamp_ms").alias("_ts_text"),
        *[(_text(frame, names, c).str.to_lowercase() if c in lower else _text(frame, names, c)).alias(c)
          for c in TX_COLUMN_ALIASES if c not in ("timestamp_ms", "sources", "raw_tx")],
        _sources(frame, names).alias("sources"),
        _has_raw(frame, names).alias("has_raw"),
        (pl.col("_utf8_error") if "_utf8_error" in frame.columns else pl.lit(None, pl.String)).alias("_utf8_error"),
    ).with_columns(
        pl.col("chain_id").str.to_integer(strict=False).alias("_chain_id"),
        pl.col("tx_type").str.to_integer(strict=False).alias("_tx_type"),
        pl.col("data_size").str.to_integer(strict=False).alias("_data_size"),
    )
    ts, ts_text = pl.col("timestamp_ms"), pl.col("_ts_text")
    common = [
        (pl.col("_utf8_error").is_not_null(), pl.col("_utf8_error")),
        (ts.is_null() & (ts_text.is_null() | (ts_text == "")), pl.lit(f"missing_field: {label['timestamp_ms']} is missing")),
        (ts.is_null(), pl.format(f"bad_field: {label['timestamp_ms']} {{}} is not an integer (ms since the epoch)",
                                 _shown("_ts_text"))),
        (ts < ETHEREUM_GENESIS_MS, pl.format(f"bad_field: {label['timestamp_ms']} {{}} is before Ethereum's genesis "
                                             "(seconds instead of milliseconds?)", ts_text)),
        (pl.col("hash").is_null() | (pl.col("hash") == ""), pl.lit("missing_field: hash is missing")),
        (~pl.col("hash").str.contains(_HASH_RE), pl.format("bad_field: hash {} is not 0x + 64 hex digits", _shown("hash"))),
        (~pl.col("sources").list.eval(pl.element().str.contains(_SOURCE_RE)).list.all(),
         pl.format("bad_field: sources {} are not all source names",
                   pl.col("sources").list.join(" ").str.slice(0, 120))),
    ]
    summary = []
    for c in SUMMARY_COLUMNS + ("tx_type",):
        if c in ("to", "data_4bytes", "tx_type"):
            continue
        summary.append((pl.col(c).is_null() | (pl.col(c) == ""), pl.lit(f"missing_field: {label[c]} is missing")))
        if c == "chain_id":
            summary += [
                (pl.col("_chain_id").is_null() | ~pl.col(c).str.contains(_DECIMAL_RE),
                 pl.format(f"bad_field: {label[c]} {{}} is not a decimal integer", _shown(c))),
                (pl.col("_chain_id") == 0, pl.lit(f"no_chain_id: {label[c]} 0 is a pre-EIP-155 legacy transaction "
                                                  f"(expected chain {chain_id})")),
                (pl.col("_chain_id") != chain_id, pl.format(f"wrong_chain_id: chain id {{}} != expected {chain_id}",
                                                            _shown(c))),
            ]
        elif c == "from":
            summary.append((~pl.col(c).str.contains(_ADDRESS_RE),
                            pl.format(f"bad_field: {label[c]} {{}} is not an address (0x + 40 hex digits)", _shown(c))))
        elif c in U256_COLUMNS:
            summary.append((~_u256_ok(c), pl.format(f"bad_field: {label[c]} {{}} is not a decimal uint256", _shown(c))))
        elif c in U64_COLUMNS:
            summary.append((~_u64_ok(c), pl.format(f"bad_field: {label[c]} {{}} is not a decimal uint64", _shown(c))))
        elif c == "data_size":
            summary.append((pl.col("_data_size").is_null() | (pl.col("_data_size") < 0),
                            pl.format(f"bad_field: {label[c]} {{}} is not a non-negative integer", _shown(c))))
    has_to = pl.col("to").is_not_null() & (pl.col("to") != "")
    has_4b = pl.col("data_4bytes").is_not_null() & (pl.col("data_4bytes") != "")
    summary += [
        (has_to & ~pl.col("to").str.contains(_ADDRESS_RE),
         pl.format(f"bad_field: {label['to']} {{}} is not an address (0x + 40 hex digits, or empty for a creation)",
                   _shown("to"))),
        (has_4b & ~pl.col("data_4bytes").str.contains(_SELECTOR_RE),
         pl.format(f"bad_field: {label['data_4bytes']} {{}} is not 0x + 8 hex digits", _shown("data_4bytes"))),
        (has_4b != (pl.col("_data_size") >= 4),
         pl.format(f"bad_field: {label['data_4bytes']} '{{}}' does not fit {label['data_size']} {{}}",
                   pl.col("data_4bytes").fill_null(""), pl.col("data_size"))),
        (pl.col("tx_type").is_not_null() & (pl.col("tx_type") != "") & ~pl.col("_tx_type").is_between(0, 4),
         pl.format(f"unsupported_type: {label['tx_type']} {{}} is not a supported transaction type (0-4)",
                   _shown("tx_type"))),
    ]
    # the summary columns are the transaction only when there is no rawTx to decode
    summary = [(~pl.col("has_raw") & failed, reason) for failed, reason in summary]
    return _with_reasons(stage, common + summary)


# --------------------------------------------------------------------------------------
# rawTx decoding (per row: one signature recovery each) and its agreement with the summary

_DECODED_SCHEMA = {
    "_row": pl.UInt32, "_decode_error": pl.String, "d_hash": pl.String, "d_chain_id": pl.Int64, "d_tx_type": pl.Int64,
    "d_from": pl.String, "d_to": pl.String, "d_value": pl.String, "d_nonce": pl.UInt64, "d_gas": pl.UInt64,
    "d_gas_price": pl.String, "d_gas_tip_cap": pl.String, "d_gas_fee_cap": pl.String, "d_data_size": pl.Int64,
    "d_data_4bytes": pl.String, "d_input": pl.String, "d_raw_tx": pl.String,
}


def _decode_raws(rows: list[int], raws: list, chain_id: int) -> pl.DataFrame:
    out: dict[str, list] = {c: [] for c in _DECODED_SCHEMA}
    for row, raw in zip(rows, raws):
        if type(raw) is bytes and raw[:2] == b"0x":
            raw = raw.decode("ascii", errors="replace")  # hex text stored in a binary column
        try:
            tx = decode_raw_transaction(raw, expected_chain_id=chain_id)
            err = None
        except InvalidTransaction as exc:
            tx, err = None, str(exc)
        out["_row"].append(row)
        out["_decode_error"].append(err)
        if tx is None:
            for c in _DECODED_SCHEMA:
                if c not in ("_row", "_decode_error"):
                    out[c].append(None)
            continue
        inp = tx.input
        out["d_hash"].append(tx.hash)
        out["d_chain_id"].append(tx.chain_id)
        out["d_tx_type"].append(tx.tx_type)
        out["d_from"].append(tx.sender)
        out["d_to"].append(tx.to)
        out["d_value"].append(str(tx.value))
        out["d_nonce"].append(tx.nonce)
        out["d_gas"].append(tx.gas)
        out["d_gas_price"].append(str(tx.gas_price))
        out["d_gas_tip_cap"].append(str(tx.gas_tip_cap))
        out["d_gas_fee_cap"].append(str(tx.gas_fee_cap))
        out["d_data_size"].append(len(inp))
        out["d_data_4bytes"].append("0x" + inp[:4].hex() if len(inp) >= 4 else "")
        out["d_input"].append("0x" + inp.hex())
        out["d_raw_tx"].append("0x" + tx.raw.hex())
    return pl.DataFrame(out, schema=_DECODED_SCHEMA)


def _mismatch_checks(names: dict[str, str]) -> list[tuple[pl.Expr, pl.Expr]]:
    """Per summary column present in the file: does a non-null value disagree with the decoded rawTx?"""
    label = {c: names.get(c, c) for c in TX_COLUMN_ALIASES}
    checks = []
    for c in ("hash", "chain_id", "tx_type", "from", "to", "nonce", "gas", "value", "gas_price", "gas_tip_cap",
              "gas_fee_cap", "data_size", "data_4bytes"):
        if c not in names:
            continue
        s = pl.col(c)
        if c in ("chain_id", "tx_type", "data_size"):
            summary_value = pl.col(f"_{c}")
            differs = s.is_not_null() & (s != "") & summary_value.ne_missing(pl.col(f"d_{c}"))
        elif c in ("nonce", "gas"):
            differs = s.is_not_null() & (s != pl.col(f"d_{c}").cast(pl.String))
        elif c == "to":
            differs = s.is_not_null() & (s != pl.col("d_to").fill_null(""))
        else:
            differs = s.is_not_null() & (s != pl.col(f"d_{c}"))
        checks.append((differs, pl.format(f"summary_mismatch: {label[c]}: the file says {{}}, rawTx decodes to {{}}",
                                          pl.col(c).str.slice(0, 80), pl.col(f"d_{c}").cast(pl.String).fill_null("(none)"))))
    return checks


# --------------------------------------------------------------------------------------
# accepted hashes: dedup and sourcelog matching


def _hash_keys(col: str = "hash") -> list[pl.Expr]:
    """The first 16 bytes of a 0x hash as two u64 (keccak output is uniform: no practical collisions)."""
    return [
        pl.col(col).str.slice(2, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("_k0"),
        pl.col(col).str.slice(18, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("_k1"),
    ]


class _HashIndex:
    """hash -> window start of every transaction accepted by this import (20 bytes each).

    Sorted runs of (k0, k1, window start in seconds) in numpy arrays; a run is merged into the one
    before it once it has grown to half its size (a log-structured merge, so adding costs O(log n)
    amortised per hash), and a lookup is a binary search per run (at most ~log2(n / batch) runs).
    Runs are sorted by k0 only: lookups compare k1 within the (practically always single) k0 match.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.size = 0

    def add(self, keyed: pl.DataFrame) -> None:
        k0 = keyed.get_column("_k0").to_numpy()
        order = np.argsort(k0, kind="stable")
        run = (k0[order], keyed.get_column("_k1").to_numpy()[order],
               (keyed.get_column("_window_start").to_numpy() // 1000).astype(np.uint32)[order])
        self.size += len(k0)
        self._runs.append(run)
        while len(self._runs) >= 2 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            b, a = self._runs.pop(), self._runs.pop()
            at = np.searchsorted(a[0], b[0], side="right")  # merge b into a without a full re-sort
            self._runs.append(tuple(np.insert(x, at, y) for x, y in zip(a, b)))

    def window_of(self, keyed: pl.DataFrame) -> pl.Series:
        """The window start (ms) of each row's hash (null: not accepted), in row order."""
        k0 = keyed.get_column("_k0").to_numpy()
        k1 = keyed.get_column("_k1").to_numpy()
        found = np.zeros(len(k0), dtype=bool)
        window = np.zeros(len(k0), dtype=np.int64)
        for r0, r1, rw in self._runs:
            lo = np.searchsorted(r0, k0, side="left")
            hi = np.searchsorted(r0, k0, side="right")
            single = (hi - lo == 1) & ~found
            at = lo[single]
            hit = r1[at] == k1[single]
            idx = np.flatnonzero(single)[hit]
            found[idx] = True
            window[idx] = rw[at[hit]].astype(np.int64) * 1000
            # two accepted hashes sharing their first 8 bytes (~1e-7 per day at mainnet volume)
            for i in np.flatnonzero((hi - lo > 1) & ~found):
                for j in range(lo[i], hi[i]):
                    if r1[j] == k1[i]:
                        found[i], window[i] = True, int(rw[j]) * 1000
                        break
        return pl.Series("_window_start", window, dtype=pl.Int64).set(pl.Series(~found), None)


# --------------------------------------------------------------------------------------
# the import


def _safe_id(name: str) -> str:
    cleaned = "".join(c if (c.isalnum() or c in "-_") else "-" for c in name).strip("-") or "file"
    return cleaned[:48]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".gz", ".parquet", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if k.startswith("_"):
            continue
        if isinstance(v, (bytes, bytearray)):
            v = "0x" + bytes(v).hex()
        elif hasattr(v, "timestamp") and not isinstance(v, (int, float, str)):
            v = int(v.timestamp() * 1000)
        out[k] = v
    return out


_LANDING_COLUMNS = [c for c in LANDING_TX_SCHEMA if c != "collector_id"]


class _Importer:
    def __init__(self, lz: LandingZone, settings: Settings, cid: str, *, progress: bool, batch_rows: int,
                 csv_block_bytes: int, max_buffered_rows: int, segment_rows: int, lateness_seconds: int,
                 max_quarantine_buffer: int = 20_000):
        self.lz = lz
        self.cid = cid
        self.chain_id = settings.chain_id
        self.width_ms = settings.window_seconds * 1000
        self.window_seconds = settings.window_seconds
        self.progress = progress and sys.stderr.isatty()
        self.batch_rows = batch_rows
        self.csv_block_bytes = csv_block_bytes
        self.max_buffered_rows = max_buffered_rows
        self.segment_rows = segment_rows
        self.lateness_ms = lateness_seconds * 1000
        self.max_quarantine_buffer = max_quarantine_buffer
        self.report = DumpsterImportReport(cid)
        self.index = _HashIndex()
        self.with_sourcelog = False
        # per-window state, keyed by window start (ms)
        self.buffers: dict[str, dict[int, list[pl.DataFrame]]] = {"mempool": {}, "sourcelog": {}}
        self.buffered_rows: dict[str, dict[int, int]] = {"mempool": {}, "sourcelog": {}}
        self.seq: dict[tuple[str, int], int] = {}
        self.sealed_before: dict[int, bool] = {}
        self.written: set[int] = set()
        self.quarantine: dict[int, list[dict]] = {}
        self.quarantine_buffered = 0
        self.quarantine_known: dict[int, set[tuple]] = {}
        self.last_ts: int | None = None

    # ---- windows ------------------------------------------------------------------------
    def _is_sealed_before(self, start: int) -> bool:
        """Sealed by this collector id before this run started: the window is left as it is."""
        known = self.sealed_before.get(start)
        if known is None:
            known = self.sealed_before[start] = self.cid in self.lz.sealed_by(key_for_start_ms(start))
        return known

    def _buffer(self, area: str, start: int, frame: pl.DataFrame) -> None:
        self.buffers[area].setdefault(start, []).append(frame)
        self.buffered_rows[area][start] = self.buffered_rows[area].get(start, 0) + frame.height

    def _flush(self, area: str, start: int) -> None:
        frames = self.buffers[area].pop(start, None)
        self.buffered_rows[area].pop(start, None)
        if not frames or self._is_sealed_before(start):
            return
        frame = pl.concat(frames, how="vertical_relaxed").with_columns(pl.lit(self.cid).alias("collector_id"))
        if frame.is_empty():
            return
        key = key_for_start_ms(start)
        frame = frame.sort("timestamp_ms", maintain_order=True)
        for offset in range(0, frame.height, self.segment_rows):  # segments of at most segment_rows rows
            seq = self.seq.get((area, start), 0)
            self.seq[(area, start)] = seq + 1
            self.lz.write_segment(area, key, self.cid, seq, frame.slice(offset, self.segment_rows))
            self.report.segments += 1
        self.written.add(start)

    def _flush_due(self, area: str, watermark: int | None) -> None:
        """Write the windows the stream has moved past, then whatever exceeds the memory budget."""
        rows = self.buffered_rows[area]
        if watermark is not None:
            for start in sorted(rows):
                if start + self.width_ms + self.lateness_ms <= watermark:
                    self._flush(area, start)
        for start in [s for s, n in rows.items() if n >= self.segment_rows]:
            self._flush(area, start)
        while rows and sum(rows.values()) > self.max_buffered_rows:
            self._flush(area, min(rows))  # oldest first: with unsorted input it may get more rows later

    # ---- quarantine ---------------------------------------------------------------------
    def _quarantine(self, frame: pl.DataFrame, reasons: pl.Series, sources: pl.Series | None, ts_for_window: pl.Series,
                    counts: dict[str, int]) -> None:
        """Quarantine the rows of ``frame`` (as read from the file) with their reasons."""
        rows = frame.to_dicts()
        for row, reason, source, ts in zip(rows, reasons.to_list(), (sources.to_list() if sources is not None
                                                                      else [None] * len(rows)), ts_for_window.to_list()):
            code = reason_code(reason)
            counts[code] = counts.get(code, 0) + 1
            start = ts - ts % self.width_ms
            if self._is_sealed_before(start):
                continue  # recorded by the run that sealed the window
            self.quarantine.setdefault(start, []).append(
                quarantine_record(ts, source or DEFAULT_SOURCE, self.cid, reason, _jsonable(row)))
            self.quarantine_buffered += 1
        if self.quarantine_buffered >= self.max_quarantine_buffer:
            self._flush_quarantine()

    def _quarantine_lines(self, lines: list[tuple[int | None, str, str]], ts: int, counts: dict[str, int]) -> None:
        for number, reason, text in lines:
            counts[reason_code(reason)] = counts.get(reason_code(reason), 0) + 1
            start = ts - ts % self.width_ms
            if self._is_sealed_before(start):
                continue
            payload = text if number is None else f"line {number}: {text}"
            self.quarantine.setdefault(start, []).append(quarantine_record(ts, DEFAULT_SOURCE, self.cid, reason, payload))
            self.quarantine_buffered += 1

    def _flush_quarantine(self) -> None:
        for start in sorted(self.quarantine):
            records = self.quarantine.pop(start)
            key = key_for_start_ms(start)
            known = self.quarantine_known.get(start)
            if known is None:
                # a re-run after a crash must not append the records a previous attempt wrote
                old = self.lz.read_quarantine(key)
                old = old.filter(pl.col("collector_id") == self.cid)
                known = self.quarantine_known[start] = set(
                    zip(old["timestamp_ms"].to_list(), old["reason"].to_list(), old["payload"].to_list()))
            fresh = [r for r in records if (r["timestamp_ms"], r["reason"], r["payload"]) not in known]
            self.lz.append_quarantine(key, self.cid, fresh)
        self.quarantine_buffered = 0

    def _window_ts(self, valid_ts: pl.Series) -> pl.Series:
        """Timestamp to file a row under: its own when valid, else its neighbours' (deterministic)."""
        filled = valid_ts.fill_null(strategy="forward")
        if self.last_ts is not None:
            filled = filled.fill_null(self.last_ts)
        filled = filled.fill_null(strategy="backward").fill_null(0)
        return filled

    # ---- transaction files --------------------------------------------------------------
    def import_transactions(self, inp: _InputFile) -> None:
        bar = self._bar(inp)
        try:
            for batch in _iter_batches(inp, self.batch_rows, self.csv_block_bytes):
                self._transactions_batch(batch, inp.names)
                bar.update(batch.progress)
        finally:
            bar.close()

    def _transactions_batch(self, batch: _Batch, names: dict[str, str]) -> None:
        rep = self.report
        frame = batch.frame
        rep.rows += frame.height + len(batch.bad_lines)
        stage = _stage(frame, names, self.chain_id) if frame.height else None
        if stage is None:
            self._quarantine_lines(batch.bad_lines, self.last_ts or 0, rep.quarantined)
            return
        valid_ts = stage.select(_plausible_ts()).to_series()
        window_ts = self._window_ts(valid_ts)
        first_source = stage.get_column("sources").list.first()

        bad = stage.get_column("reason").is_not_null()
        if bad.any():
            rows = stage.filter(bad).get_column("_row")
            self._quarantine(frame.select(pl.all().gather(rows)), stage.filter(bad).get_column("reason"),
                             first_source.filter(bad),
                             window_ts.filter(bad), rep.quarantined)
        self._quarantine_lines(batch.bad_lines, int(window_ts[0]), rep.quarantined)
        good = stage.filter(~bad).with_columns(_hash_keys())

        # already accepted by this import: a duplicate (no need to decode it)
        if self.index.size and good.height:
            seen = self.index.window_of(good).is_not_null()
            rep.duplicates += int(seen.sum())
            good = good.filter(~seen)

        # rawTx rows: decode (per row), then every summary column present must agree
        with_raw = good.filter(pl.col("has_raw"))
        if with_raw.height:
            rows = with_raw.get_column("_row")
            decoded = _decode_raws(rows.to_list(), frame.get_column(names["raw_tx"]).gather(rows).to_list(), self.chain_id)
            with_raw = _with_reasons(
                pl.concat([with_raw.drop("reason"), decoded.drop("_row")], how="horizontal"),
                [(pl.col("_decode_error").is_not_null(), pl.col("_decode_error")), *_mismatch_checks(names)],
            )
            failed = with_raw.get_column("reason").is_not_null()
            if failed.any():
                bad_raw = with_raw.filter(failed)
                self._quarantine(frame.select(pl.all().gather(bad_raw.get_column("_row"))), bad_raw.get_column("reason"),
                                 bad_raw.get_column("sources").list.first(),
                                 window_ts.gather(bad_raw.get_column("_row")), rep.quarantined)
            with_raw = with_raw.filter(~failed)
        parts = [self._landing_from_summary(good.filter(~pl.col("has_raw")))]
        if with_raw.height:
            parts.append(self._landing_from_raw(with_raw))
        accepted = pl.concat(parts, how="vertical").sort("_row")
        # the same hash twice in one batch: the first row wins
        first = accepted.get_column("hash").is_first_distinct()
        rep.duplicates += int((~first).sum())
        accepted = accepted.filter(first).with_columns(
            (pl.col("timestamp_ms") - pl.col("timestamp_ms") % self.width_ms).alias("_window_start"))
        if accepted.height:
            self.index.add(accepted)
            self._land(accepted)
            self.last_ts = int(accepted.get_column("timestamp_ms")[-1])
        watermark = valid_ts.min()
        self._flush_due("mempool", watermark)
        self._flush_due("sourcelog", watermark)

    def _landing_from_raw(self, rows: pl.DataFrame) -> pl.DataFrame:
        return rows.select(
            "_row", "timestamp_ms", pl.col("d_hash").alias("hash"),
            *[pl.col(f"d_{c}").alias(c) for c in ("chain_id", "tx_type", "from", "to", "value", "nonce", "gas",
                                                   "gas_price", "gas_tip_cap", "gas_fee_cap", "data_size",
                                                   "data_4bytes", "input", "raw_tx")],
            "sources", *_hash_keys("d_hash"), pl.lit(True).alias("_raw"),
        )

    def _landing_from_summary(self, rows: pl.DataFrame) -> pl.DataFrame:
        empty_to = pl.col("to").is_null() | (pl.col("to") == "")
        return rows.select(
            "_row", "timestamp_ms", "hash",
            pl.col("_chain_id").alias("chain_id"),
            pl.col("_tx_type").alias("tx_type"),
            "from",
            pl.when(empty_to).then(None).otherwise(pl.col("to")).alias("to"),
            "value",
            pl.col("nonce").cast(pl.UInt64),
            pl.col("gas").cast(pl.UInt64),
            "gas_price", "gas_tip_cap", "gas_fee_cap",
            pl.col("_data_size").alias("data_size"),
            pl.col("data_4bytes").fill_null(""),
            pl.lit(None, pl.String).alias("input"),
            pl.lit(None, pl.String).alias("raw_tx"),
            "sources", "_k0", "_k1", pl.lit(False).alias("_raw"),
        )

    def _land(self, accepted: pl.DataFrame) -> None:
        rep = self.report
        accepted = accepted.with_columns(pl.col("sources").fill_null(pl.lit([], pl.List(pl.String))))
        accepted = accepted.with_columns(
            pl.col("sources").list.first().fill_null(DEFAULT_SOURCE).alias("source"),
        )
        for (start,), part in accepted.partition_by("_window_start", as_dict=True, maintain_order=True).items():
            if self._is_sealed_before(start):
                rep.already_landed += part.height
                continue
            rep.accepted += part.height
            rep.accepted_with_raw += int(part.get_column("_raw").sum())
            self._buffer("mempool", start, part.select(_LANDING_COLUMNS))
            if not self.with_sourcelog:
                sightings = (
                    part.select("timestamp_ms", "hash", pl.when(pl.col("sources").list.len() > 0)
                                .then(pl.col("sources")).otherwise(pl.lit([DEFAULT_SOURCE])).alias("source"))
                    .explode("source")
                )
                rep.sightings += sightings.height
                self._buffer("sourcelog", start, sightings)

    # ---- sourcelog files ----------------------------------------------------------------
    def import_sourcelog(self, inp: _InputFile) -> None:
        bar = self._bar(inp)
        try:
            for batch in _iter_batches(inp, self.batch_rows, self.csv_block_bytes):
                self._sourcelog_batch(batch, inp.names)
                bar.update(batch.progress)
        finally:
            bar.close()

    def _sourcelog_batch(self, batch: _Batch, names: dict[str, str]) -> None:
        rep = self.report
        frame = batch.frame
        rep.sourcelog_rows += frame.height + len(batch.bad_lines)
        if not frame.height:
            self._quarantine_lines(batch.bad_lines, self.last_ts or 0, rep.sourcelog_quarantined)
            return
        ts_label, src_label = names["timestamp_ms"], names["source"]
        stage = frame.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
            _timestamp_ms(frame, names).alias("timestamp_ms"),
            _text(frame, names, "timestamp_ms").alias("_ts_text"),
            _text(frame, names, "hash").str.to_lowercase().alias("hash"),
            _text(frame, names, "source").alias("source"),
            (pl.col("_utf8_error") if "_utf8_error" in frame.columns else pl.lit(None, pl.String)).alias("_utf8_error"),
        )
        ts = pl.col("timestamp_ms")
        stage = _with_reasons(stage, [
            (pl.col("_utf8_error").is_not_null(), pl.col("_utf8_error")),
            (ts.is_null() & (pl.col("_ts_text").is_null() | (pl.col("_ts_text") == "")),
             pl.lit(f"missing_field: {ts_label} is missing")),
            (ts.is_null(), pl.format(f"bad_field: {ts_label} {{}} is not an integer (ms since the epoch)",
                                     _shown("_ts_text"))),
            (ts < ETHEREUM_GENESIS_MS, pl.format(f"bad_field: {ts_label} {{}} is before Ethereum's genesis "
                                                 "(seconds instead of milliseconds?)", pl.col("_ts_text"))),
            (pl.col("hash").is_null() | (pl.col("hash") == ""), pl.lit("missing_field: hash is missing")),
            (~pl.col("hash").str.contains(_HASH_RE), pl.format("bad_field: hash {} is not 0x + 64 hex digits",
                                                              _shown("hash"))),
            (pl.col("source").is_null() | (pl.col("source") == ""), pl.lit(f"missing_field: {src_label} is missing")),
            (~pl.col("source").str.contains(_SOURCE_RE), pl.format(f"bad_field: {src_label} {{}} is not a source name",
                                                                   _shown("source"))),
        ])
        valid_ts = stage.select(_plausible_ts()).to_series()
        window_ts = self._window_ts(valid_ts)
        bad = stage.get_column("reason").is_not_null()
        if bad.any():
            self._quarantine(frame.filter(bad), stage.filter(bad).get_column("reason"),
                             stage.filter(bad).get_column("source"), window_ts.filter(bad), rep.sourcelog_quarantined)
        self._quarantine_lines(batch.bad_lines, int(window_ts[0]), rep.sourcelog_quarantined)
        good = stage.filter(~bad).with_columns(_hash_keys())
        if good.height:
            good = good.with_columns(self.index.window_of(good).alias("_window_start"))
            matched = good.get_column("_window_start").is_not_null()
            rep.sourcelog_unmatched += int((~matched).sum())
            good = good.filter(matched)
        for (start,), part in good.partition_by("_window_start", as_dict=True, maintain_order=True).items():
            if self._is_sealed_before(start):
                continue
            rep.sightings += part.height
            self._buffer("sourcelog", start, part.select("timestamp_ms", "hash", "source"))
        self._flush_due("sourcelog", valid_ts.min())

    # ---- end ----------------------------------------------------------------------------
    def finish(self, files: list[str]) -> None:
        for area in ("mempool", "sourcelog"):
            for start in sorted(self.buffers[area]):
                self._flush(area, start)
        self._flush_quarantine()
        info = {"window_seconds": self.window_seconds, "import": "mempool-dumpster", "files": files}
        for start in sorted(self.written):
            self.lz.mark_sealed(key_for_start_ms(start), self.cid, info)
        self.report.windows = [key_for_start_ms(s) for s in sorted(self.written)]
        self.report.windows_skipped = [key_for_start_ms(s) for s, sealed in sorted(self.sealed_before.items()) if sealed]

    def _bar(self, inp: _InputFile):
        from tqdm import tqdm

        return tqdm(total=inp.progress_total, unit=inp.progress_unit, unit_scale=True, desc=inp.path.name,
                    disable=not self.progress, file=sys.stderr, leave=False, **_terminal_shape())


def _terminal_shape() -> dict[str, int]:
    """tqdm's ``ncols``/``nrows``: the terminal's size, or 80 x 24 where it reports none. A
    pseudo-terminal without a window size (``script``, CI runners, ``docker exec -t``, ``ssh -t``
    from a pipe) says 0 x 0, and tqdm then draws nothing at all."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
        return {"ncols": size.columns or 80, "nrows": size.lines or 24}
    except (OSError, ValueError):  # not a terminal, or stderr replaced by an object without a fd
        return {"ncols": 80, "nrows": 24}


def import_dumpster(
    paths: Sequence[str | Path],
    landing_zone: LandingZone,
    settings: Settings,
    sourcelog_paths: Sequence[str | Path] = (),
    collector_id: str | None = None,
    progress: bool = True,
    *,
    batch_rows: int = 16_384,
    csv_block_bytes: int = 1 << 20,
    max_buffered_rows: int = 200_000,
    segment_rows: int = 250_000,
    lateness_seconds: int = 120,
) -> DumpsterImportReport:
    """Import mempool-dumpster transaction files (and sourcelogs) into ``landing_zone``; see the module doc.

    ``collector_id`` defaults to ``dumpster-<stem of the first file>``. ``progress`` shows a tqdm bar
    per file on stderr when it is a terminal. Every file is opened and its columns checked before
    anything is written; a file that cannot be imported raises :class:`DumpsterImportError`.
    """
    started = time.monotonic()
    tx_paths = [Path(p) for p in paths]
    log_paths = [Path(p) for p in sourcelog_paths]
    if not tx_paths:
        raise DumpsterImportError("no transaction file given")
    cid = collector_id or f"dumpster-{_safe_id(_stem(tx_paths[0]))}"
    if not cid.replace("-", "").replace("_", "").isalnum():
        raise DumpsterImportError(f"collector id must be alphanumeric (with - or _), got {cid!r}")
    tx_inputs = [_open_input(p, TX_COLUMN_ALIASES, "transaction") for p in tx_paths]
    log_inputs = [_open_input(p, SOURCELOG_COLUMN_ALIASES, "sourcelog") for p in log_paths]
    for inp in tx_inputs:
        _check_columns(inp, "transaction")
    for inp in log_inputs:
        _check_columns(inp, "sourcelog")

    imp = _Importer(landing_zone, settings, cid, progress=progress, batch_rows=batch_rows,
                    csv_block_bytes=csv_block_bytes, max_buffered_rows=max_buffered_rows,
                    segment_rows=segment_rows, lateness_seconds=lateness_seconds)
    imp.with_sourcelog = bool(log_inputs)
    for inp in tx_inputs:
        imp.import_transactions(inp)
    # every transaction window is complete before the sourcelog adds to it
    for start in sorted(imp.buffers["mempool"]):
        imp._flush("mempool", start)
    for inp in log_inputs:
        imp.import_sourcelog(inp)
    files = [p.name for p in tx_paths + log_paths]
    imp.finish(files)
    imp.report.files = files
    imp.report.seconds = time.monotonic() - started
    log.info("import %s: %s", ", ".join(files), imp.report.summary())
    return imp.report

