"""Canonical research queries on a mainnet-scale day of the lake: chdb (our embedded ClickHouse)
against DuckDB over the same Parquet files, in the same run.

Generates one day as lake files (``<lake>/<table>/date=…/window=….parquet``, written by the lake's
own writer): 1,440 one-minute windows of ~1,040 transactions each (≈1.5 M, mainnet's daily
pending volume) with realistic columns - senders and recipients Zipf-distributed, ABI-shaped
calldata of mainnet-like sizes and selectors, EIP-1559 fees around a drifting base fee, three
sources with different coverage and latency (``sources`` ordered by arrival, and the window's
``mempool_source_stats`` computed by the pipeline's own code). Reports the lake's size on disk,
then times each query on chdb (one session, as one ``mev-assets sql`` command uses it) and on DuckDB
(``read_parquet`` over the same glob), checks that both give the same answer, and prints the ratio.

    .venv/bin/python benchmarks/bench_queries.py [--rows 1500000] [--windows 1440] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs

from mev_assets.core.clickhouse import EmbeddedClickHouse, LakeSource
from mev_assets.core.lake import Lake
from mev_assets.core.schemas import MEMPOOL_TRANSACTIONS_SCHEMA
from mev_assets.core.source_stats import source_stats
from mev_assets.core.windows import key_for_start_ms, key_start_ms

DAY = "2024-05-05"
SOURCES = ("alpha", "beta", "gamma")
COVERAGE = (0.985, 0.93, 0.62)  # share of transactions each source announces
LATENCY_MS = ((4.0, 0.9), (15.0, 1.0), (60.0, 1.1))  # lognormal (median ms, sigma) of each source's delay
SENDERS, RECIPIENTS, SELECTORS = 400_000, 60_000, 3_000


_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def hex_strings(flat: np.ndarray, sizes: np.ndarray) -> pl.Series:
    """``0x``-hex of consecutive byte runs of ``flat`` (run i is ``sizes[i]`` bytes), built as one
    Arrow string buffer (no per-row Python)."""
    chars = _HEX[flat].tobytes()
    offsets = np.concatenate([[0], np.cumsum(sizes.astype(np.int64) * 2)])
    array = pa.LargeStringArray.from_buffers(len(sizes), pa.py_buffer(offsets.tobytes()), pa.py_buffer(chars))
    return "0x" + pl.from_arrow(array)


def hex_rows(rows: np.ndarray) -> pl.Series:
    return hex_strings(rows.ravel(), np.full(rows.shape[0], rows.shape[1]))


class DayGenerator:
    """Vectorised generator of a day's windows (numpy + polars; no per-transaction Python)."""

    def __init__(self, seed: int = 19807080):
        self.rng = np.random.default_rng(seed)
        self.senders = self._addresses(SENDERS)
        self.recipients = self._addresses(RECIPIENTS)
        self.selectors = self.rng.integers(0, 256, (SELECTORS, 4), dtype=np.uint8)
        # calldata words after the selector: 0 (plain transfer), 2 (ERC-20 transfer/approve),
        # 4-12 (V2 swaps), 10-40 (routers, multicalls), a tail up to ~300 (batches, L2 data)
        self.word_choices = np.array([0, 2, 2, 3, 4, 5, 6, 8, 9, 10, 12, 14, 18, 24, 32, 40, 80, 300])
        self.word_weights = np.array([30, 18, 8, 4, 5, 5, 5, 4, 4, 3, 3, 3, 2.5, 1.5, 1, 0.5, 0.3, 0.2])
        self.word_weights = self.word_weights / self.word_weights.sum()

    def _addresses(self, n: int) -> pl.Series:
        return hex_rows(self.rng.integers(0, 256, (n, 20), dtype=np.uint8))

    def _zipf_index(self, n: int, size: int, a: float) -> np.ndarray:
        return (self.rng.zipf(a, size) - 1) % n

    def _calldata(self, n: int) -> tuple[np.ndarray, pl.Series, pl.Series]:
        """(size in bytes, 4-byte selector, input hex) of ``n`` transactions, ABI-shaped: each
        32-byte word is a padded address, a padded amount or a small integer, as in real calldata
        (so it compresses like real calldata does)."""
        words = self.rng.choice(self.word_choices, n, p=self.word_weights)
        sizes = np.where(words > 0, 4 + 32 * words, 0)
        has_data = sizes > 0
        selector_rows = self.selectors[self._zipf_index(SELECTORS, n, 1.4)]
        total_words = int(words.sum())
        kinds = self.rng.choice(3, total_words, p=[0.45, 0.35, 0.2])  # address, amount, small int
        masks = np.zeros((3, 32), dtype=bool)
        masks[0, 12:], masks[1, 24:], masks[2, 31] = True, True, True
        body = np.where(masks[kinds], self.rng.integers(0, 256, (total_words, 32), dtype=np.uint8), 0).astype(np.uint8)
        body = body.ravel()
        row_starts = np.concatenate([[0], np.cumsum(words * 32)[:-1]])[has_data]
        flat = np.insert(body, np.repeat(row_starts, 4), selector_rows[has_data].ravel())
        inputs = hex_strings(flat, sizes)
        four = pl.select(pl.when(pl.Series(has_data)).then(inputs.str.slice(0, 10)).otherwise(pl.lit(""))).to_series()
        return sizes, four, inputs

    def window(self, key: str, n: int, base_fee_gwei: float) -> tuple[pl.DataFrame, pl.DataFrame]:
        rng = self.rng
        start = key_start_ms(key)
        # arrival of each tx at each source (inf = never announced); at least one source sees it
        seen = rng.random((n, 3)) < np.array(COVERAGE)
        seen[~seen.any(axis=1), 0] = True
        broadcast = start + np.sort(rng.integers(0, 60_000, n))
        delays = np.stack([rng.lognormal(np.log(m), s, n) for m, s in LATENCY_MS], axis=1)
        arrival = np.where(seen, broadcast[:, None] + delays.astype(np.int64), np.iinfo(np.int64).max)
        first_ms = arrival.min(axis=1)
        order = np.argsort(arrival, axis=1, kind="stable")
        seen_in_order = np.take_along_axis(seen, order, axis=1)
        source_names = pl.Series(SOURCES)
        by_arrival = [
            pl.select(pl.when(pl.Series(seen_in_order[:, i])).then(source_names.gather(order[:, i]))).to_series()
            for i in range(3)
        ]
        hashes = hex_rows(rng.integers(0, 256, (n, 32), dtype=np.uint8))

        sizes, four, inputs = self._calldata(n)
        tx_type = rng.choice([0, 1, 2, 3], n, p=[0.1, 0.01, 0.88, 0.01])
        tip_gwei = np.where(rng.random(n) < 0.9, rng.lognormal(np.log(0.3), 1.2, n), rng.lognormal(np.log(5), 1.5, n))
        tip_wei = (tip_gwei * 1e9).astype(np.int64)
        fee_cap_wei = (base_fee_gwei * rng.uniform(1.1, 3.0, n) * 1e9).astype(np.int64) + tip_wei
        value_mantissa = rng.integers(1, 10**6, n)
        value_exp = rng.integers(9, 15, n)
        is_transfer = sizes == 0
        pays = is_transfer | (rng.random(n) < 0.15)
        # wei as decimal strings built from integers (mantissa, then that many zeros): no floats
        zeros = pl.Series(["0" * e for e in range(16)]).gather(value_exp)
        value = pl.select(
            pl.when(pl.Series(pays)).then(pl.Series(value_mantissa).cast(pl.String) + zeros).otherwise(pl.lit("0"))
        ).to_series()
        to = self.recipients.gather(self._zipf_index(RECIPIENTS, n, 1.25))
        to = pl.select(pl.when(pl.Series(rng.random(n) < 0.003)).then(None).otherwise(to)).to_series()
        # envelope: a type-2 header (~48 bytes of fields), the calldata, then the 65-byte signature
        header = hex_rows(rng.integers(0, 256, (n, 48), dtype=np.uint8)).str.slice(2)
        signature = hex_rows(rng.integers(0, 256, (n, 65), dtype=np.uint8)).str.slice(2)
        raw_tx = "0x02f8" + header + inputs.str.slice(2) + signature
        gas = np.where(is_transfer, 21_000, 40_000 + sizes * 120 + rng.integers(0, 250_000, n))
        frame = pl.DataFrame({
            "window": pl.Series([key] * n),
            "timestamp_ms": first_ms,
            "hash": hashes,
            "chain_id": np.ones(n, dtype=np.int64),
            "tx_type": tx_type.astype(np.int64),
            "from": self.senders.gather(self._zipf_index(SENDERS, n, 1.15)),
            "to": to,
            "value": value,
            "nonce": rng.integers(0, 3_000, n).astype(np.uint64),
            "gas": gas.astype(np.uint64),
            "gas_price": pl.Series(fee_cap_wei).cast(pl.String),
            "gas_tip_cap": pl.Series(tip_wei).cast(pl.String),
            "gas_fee_cap": pl.Series(fee_cap_wei).cast(pl.String),
            "data_size": sizes.astype(np.int64),
            "data_4bytes": four,
            "sources": pl.DataFrame({f"s{i}": by_arrival[i] for i in range(3)})
            .select(pl.concat_list("s0", "s1", "s2").list.drop_nulls()).to_series(),
            "input": inputs,
            "raw_tx": raw_tx,
        }).select([pl.col(c).cast(t) for c, t in MEMPOOL_TRANSACTIONS_SCHEMA.items()])
        sightings = pl.DataFrame({
            "hash": np.repeat(hashes.to_numpy(), 3),
            "source": source_names.gather(np.tile(np.arange(3), n)),
            "timestamp_ms": arrival.ravel(),
            "seen": seen.ravel(),
        }).filter("seen").drop("seen")
        return frame.sort("timestamp_ms", "hash"), source_stats(sightings, key)


def generate_day(lake: Lake, rows: int, windows: int) -> int:
    generator = DayGenerator()
    rng = np.random.default_rng(5)
    start = key_start_ms(f"{DAY}T00:00:00")
    step = 86_400_000 // windows
    per_window = rng.poisson(rows / windows, windows)
    base_fee = 8.0 * np.exp(np.cumsum(rng.normal(0, 0.02, windows)))  # a drifting base fee, gwei
    total = 0
    for i in range(windows):
        key = key_for_start_ms(start + i * step)
        txs, stats = generator.window(key, int(per_window[i]), float(base_fee[i]))
        lake.write_window("mempool_transactions", key, txs)
        lake.write_window("mempool_source_stats", key, stats)
        total += txs.height
    return total


# (name, ClickHouse SQL, DuckDB SQL) - the same question, each in its engine's dialect.
QUERIES = [
    ("count rows", "SELECT count() FROM mempool_transactions", "SELECT count(*) FROM mempool_transactions"),
    ("distinct senders", "SELECT uniqExact(`from`) FROM mempool_transactions",
     'SELECT count(DISTINCT "from") FROM mempool_transactions'),
    ("busiest senders (top 20, exact wei sum)",
     "SELECT `from`, count() AS txs, toString(sum(toUInt256(value))) AS wei FROM mempool_transactions "
     "GROUP BY `from` ORDER BY txs DESC, `from` LIMIT 20",
     'SELECT "from", count(*) AS txs, CAST(sum(CAST(value AS HUGEINT)) AS VARCHAR) AS wei FROM mempool_transactions '
     'GROUP BY "from" ORDER BY txs DESC, "from" LIMIT 20'),
    ("method mix per hour (top 10 selectors)",
     "SELECT toStartOfHour(fromUnixTimestamp64Milli(timestamp_ms, 'UTC')) AS hour, data_4bytes, count() AS txs "
     "FROM mempool_transactions GROUP BY hour, data_4bytes ORDER BY hour, txs DESC, data_4bytes LIMIT 10 BY hour",
     "SELECT date_trunc('hour', make_timestamp(timestamp_ms * 1000)) AS hour, data_4bytes, count(*) AS txs "
     "FROM mempool_transactions GROUP BY hour, data_4bytes "
     "QUALIFY row_number() OVER (PARTITION BY hour ORDER BY txs DESC, data_4bytes) <= 10 ORDER BY hour, txs DESC, data_4bytes"),
    ("tip percentiles per hour (exact, gwei)",
     "SELECT toStartOfHour(fromUnixTimestamp64Milli(timestamp_ms, 'UTC')) AS hour, "
     "arrayMap(x -> round(x, 6), quantilesExactInclusive(0.5, 0.9, 0.99)(toUInt256(gas_tip_cap) / 1e9)) AS q "
     "FROM mempool_transactions WHERE tx_type >= 2 GROUP BY hour ORDER BY hour",
     "SELECT date_trunc('hour', make_timestamp(timestamp_ms * 1000)) AS hour, "
     "list_transform(quantile_cont(CAST(gas_tip_cap AS HUGEINT) / 1e9, [0.5, 0.9, 0.99]), x -> round(x, 6)) AS q "
     "FROM mempool_transactions WHERE tx_type >= 2 GROUP BY hour ORDER BY hour"),
    ("first source share (sources[1])",
     "SELECT sources[1] AS s, count() AS n FROM mempool_transactions GROUP BY s ORDER BY s",
     "SELECT sources[1] AS s, count(*) AS n FROM mempool_transactions GROUP BY s ORDER BY s"),
    ("coverage per source (arrayJoin / unnest)",
     "SELECT arrayJoin(sources) AS s, count() AS n FROM mempool_transactions GROUP BY s ORDER BY s",
     "SELECT s, count(*) AS n FROM (SELECT unnest(sources) AS s FROM mempool_transactions) GROUP BY s ORDER BY s"),
    ("source latency (mempool_source_stats)",
     "SELECT source, sum(txs_seen) AS seen, round(avg(latency_p50_ms), 3) AS p50, max(latency_max_ms) AS worst "
     "FROM mempool_source_stats GROUP BY source ORDER BY source",
     "SELECT source, sum(txs_seen) AS seen, round(avg(latency_p50_ms), 3) AS p50, max(latency_max_ms) AS worst "
     "FROM mempool_source_stats GROUP BY source ORDER BY source"),
    ("one window: largest calldata",
     f"SELECT hash, data_size FROM mempool_transactions WHERE `window` = '{DAY}T12:00:00' "
     "ORDER BY data_size DESC, hash LIMIT 5",
     f"SELECT hash, data_size FROM mempool_transactions WHERE \"window\" = '{DAY}T12:00:00' "
     "ORDER BY data_size DESC, hash LIMIT 5"),
]


def normalised(rows: list[tuple]) -> list[tuple]:
    """Rows as comparable text (engines differ in float formatting and timestamp types)."""
    out = []
    for row in rows:
        cells = []
        for v in row:
            if isinstance(v, float):
                v = round(v, 6)
            elif isinstance(v, list):
                v = [round(x, 6) if isinstance(x, float) else x for x in v]
            elif isinstance(v, datetime):  # DuckDB gives datetimes, chdb's Arrow gives epoch seconds
                v = int(v.replace(tzinfo=timezone.utc).timestamp())
            cells.append(str(v))
        out.append(tuple(cells))
    return out


def timed(run, repeat: int) -> tuple[float, list[tuple]]:
    times, result = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def lake_size(root: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for table in sorted(p.name for p in root.iterdir() if p.is_dir()):
        files = list((root / table).glob("date=*/window=*.parquet"))
        sizes[table] = (len(files), sum(f.stat().st_size for f in files))
    return sizes


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_500_000, help="transactions in the day (default: mainnet's ≈1.5 M)")
    parser.add_argument("--windows", type=int, default=1440, help="windows in the day (default: one per minute)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per query and engine (the median is reported)")
    parser.add_argument("--keep", type=Path, default=None, help="write the lake here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)

    tmp = None if args.keep else tempfile.mkdtemp(prefix="bench_queries_")
    root = (args.keep or Path(tmp)) / "lake"
    try:
        started = time.perf_counter()
        rows = generate_day(Lake(pafs.LocalFileSystem(), str(root)), args.rows, args.windows)
        generated_s = time.perf_counter() - started
        print(f"generated {rows:,} transactions in {args.windows} windows in {generated_s:.0f} s ({root})")
        sizes = lake_size(root)
        for table, (files, size) in sizes.items():
            print(f"lake {table}: {files} files, {size / 2**20:,.1f} MiB on disk")
        tx_bytes = sizes["mempool_transactions"][1]
        print(f"lake total: {sum(s for _, s in sizes.values()) / 2**20:,.1f} MiB; "
              f"{tx_bytes / rows:,.0f} bytes per transaction (mempool_transactions, zstd, input and raw_tx included)")

        engine = EmbeddedClickHouse(LakeSource.directory(root))
        def open_session() -> list:
            with engine.session() as session:
                return session.views

        session_s, _ = timed(open_session, max(args.repeat, 3))
        duck = duckdb.connect()
        for table in sizes:
            duck.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{table}/date=*/window=*.parquet')")
        print(f"chdb session with its views: {session_s * 1000:.0f} ms (median; paid once per `mev-assets sql` command)")
        print(f"{'query':<42} {'chdb s':>8} {'DuckDB s':>9} {'chdb/DuckDB':>12}  same answer")
        results = {}
        with engine.session() as session:
            for name, clickhouse_sql, duckdb_sql in QUERIES:
                chdb_s, chdb_rows = timed(lambda: session.query_arrow(clickhouse_sql).to_pylist(), args.repeat)
                duck_s, duck_rows = timed(lambda: duck.execute(duckdb_sql).fetchall(), args.repeat)
                chdb_rows = [tuple(r.values()) for r in chdb_rows]
                same = normalised(chdb_rows) == normalised(duck_rows)
                results[name] = {"chdb_s": chdb_s, "duckdb_s": duck_s, "ratio": chdb_s / duck_s, "same": same}
                print(f"{name:<42} {chdb_s:>8.3f} {duck_s:>9.3f} {chdb_s / duck_s:>12.2f}  {'yes' if same else 'NO'}",
                      flush=True)
        total_chdb = sum(r["chdb_s"] for r in results.values())
        total_duck = sum(r["duckdb_s"] for r in results.values())
        print(f"{'all queries':<42} {total_chdb:>8.3f} {total_duck:>9.3f} {total_chdb / total_duck:>12.2f}")
        print(f"(median of {args.repeat} runs each; both engines use all {duck.execute('SELECT current_setting(' + repr('threads') + ')').fetchone()[0]} threads; same files, same process)")
        return {"rows": rows, "lake_bytes": sizes, "queries": results}
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
