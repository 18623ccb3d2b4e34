"""Landing -> ``mempool_transactions`` assembly rate.

Writes one window of sealed segments (two collectors, two sources each, overlapping sightings,
mainnet-like calldata sizes) to a temp landing zone, then times reading the segments and
assembling the table. Baseline, measured in the same run: the hand-rolled way, reading the same
files and deduplicating with a per-row Python dict.

    .venv/bin/python benchmarks/bench_assembly.py [--rows 300000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import polars as pl
import pyarrow.parquet as pq

from mev_assets.core.schemas import LANDING_TX_SCHEMA, SOURCELOG_SCHEMA
from mev_assets.core.transactions import assemble_transactions
from mev_assets.ingest.landing import LandingZone

WINDOW = "2024-05-05T12:00:00"
T0 = 1714910400000


def build_landing(zone: LandingZone, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    hashes = [f"0x{rng.getrandbits(256):064x}" for _ in range(rows)]
    for c, cid in enumerate(("c-a", "c-b")):
        # each collector sees ~80 % of the transactions, so ~60 % are seen by both
        picked = [h for h in hashes if rng.random() < 0.8]
        n = len(picked)
        ts = [T0 + rng.randrange(60_000) for _ in range(n)]
        sizes = [rng.choice((0, 68, 68, 260, 580, 1200)) for _ in range(n)]
        inputs = ["0x" + "ab" * s for s in sizes]
        frame = pl.DataFrame(
            {
                "timestamp_ms": ts,
                "hash": picked,
                "chain_id": [1] * n,
                "tx_type": [2] * n,
                "from": ["0x" + "11" * 20] * n,
                "to": ["0x" + "22" * 20] * n,
                "value": [str(rng.getrandbits(60)) for _ in range(n)],
                "nonce": [rng.randrange(1000) for _ in range(n)],
                "gas": [21000 + rng.randrange(300000) for _ in range(n)],
                "gas_price": ["30000000000"] * n,
                "gas_tip_cap": ["1000000000"] * n,
                "gas_fee_cap": ["30000000000"] * n,
                "data_size": sizes,
                "data_4bytes": [i[:10] if len(i) >= 10 else "" for i in inputs],
                "input": inputs,
                "raw_tx": ["0x02f8" + i[2:] + "cd" * 110 for i in inputs],
                "source": [f"s{c}"] * n,
                "collector_id": [cid] * n,
            },
            schema=LANDING_TX_SCHEMA,
        )
        zone.write_segment("mempool", WINDOW, cid, 1, frame)
        log = pl.DataFrame(
            {
                "timestamp_ms": ts + [t + rng.randrange(200) for t in ts],
                "hash": picked + picked,
                "source": [f"s{c}"] * n + [f"s{c}-backup"] * n,
                "collector_id": [cid] * (2 * n),
            },
            schema=SOURCELOG_SCHEMA,
        )
        zone.write_segment("sourcelog", WINDOW, cid, 1, log)


def run_pipeline(zone: LandingZone) -> int:
    txs = zone.read_area("mempool", WINDOW).frame
    log = zone.read_area("sourcelog", WINDOW).frame
    return assemble_transactions(txs, log, WINDOW).height


def run_baseline(zone: LandingZone) -> int:
    best: dict[str, dict] = {}
    sources: dict[str, dict[str, int]] = {}
    for path in zone.segment_files("mempool", WINDOW):
        for row in pq.read_table(path).to_pylist():
            cur = best.get(row["hash"])
            if cur is None or row["timestamp_ms"] < cur["timestamp_ms"]:
                best[row["hash"]] = row
    for path in zone.segment_files("sourcelog", WINDOW):
        for row in pq.read_table(path).to_pylist():
            seen = sources.setdefault(row["hash"], {})
            if row["source"] not in seen or row["timestamp_ms"] < seen[row["source"]]:
                seen[row["source"]] = row["timestamp_ms"]
    out = []
    for h, row in best.items():
        row = dict(row, sources=[s for s, _ in sorted(sources.get(h, {}).items(), key=lambda kv: kv[1])])
        out.append(row)
    out.sort(key=lambda r: (r["timestamp_ms"], r["hash"]))
    return len(out)


def timed(fn, *args, repeat: int = 3) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="unique transactions in the window")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        zone = LandingZone(tmp)
        build_landing(zone, args.rows)
        landing_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in zone.segment_files("mempool", WINDOW))
        pipeline_s, unique = timed(run_pipeline, zone)
        baseline_s, unique_baseline = timed(run_baseline, zone, repeat=1)
    assert unique == unique_baseline, (unique, unique_baseline)
    rate = landing_rows / pipeline_s
    base_rate = landing_rows / baseline_s
    print(f"assembly: {landing_rows:,} landing rows -> {unique:,} unique in {pipeline_s:.3f}s = {rate:,.0f} rows/s")
    print(f"baseline (per-row Python dict dedup): {baseline_s:.3f}s = {base_rate:,.0f} rows/s")
    print(f"ratio: {rate / base_rate:.1f}x the baseline (target: >= 200,000 rows/s)")
    return {"rows_per_s": rate, "baseline_rows_per_s": base_rate, "ratio": rate / base_rate}


if __name__ == "__main__":
    main()
