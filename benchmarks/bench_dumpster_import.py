"""Importing a mempool-dumpster day at mainnet scale, against baselines measured in the same run.

    .venv/bin/python benchmarks/bench_dumpster_import.py [--rows 1500000] [--raw-rows 100000] [--keep DIR]

Workload (generated, the archive itself is not reachable from here):
* a **CSV day**: ``--rows`` summary rows (default 1.5 M, a busy mainnet day) in the archive's current CSV
  layout, sorted by time over 24 h, the columns templated on 89 real mainnet transactions (sizes, fee
  shapes, types, selectors) with unique hashes, senders and nonces, 1-4 sources per row. The CSV has
  no rawTx: the realistic bulk case (decoding 1.5 M signatures would take minutes, see below).
* a **Parquet sample with rawTx**: ``--raw-rows`` freshly signed EIP-1559 mainnet-chain transactions
  (calldata 0-600 bytes) in the archive's Parquet schema; every row is decoded and its sender recovered,
  so its rate is extrapolated to a whole day.

Each measurement runs in a fresh subprocess (peak RSS = its ``ru_maxrss``):
* ``import csv`` / ``import parquet+raw``: :func:`import_dumpster` into an empty landing zone (60 s
  windows): wall time, rows/s, segments and landing size on disk, peak RSS.
* baseline ``pyarrow read``: ``pyarrow.csv.read_csv`` of the whole file - the I/O and parsing floor.
* baseline ``pandas + loop``: ``pandas.read_csv`` of the whole file (as strings) and a per-row Python
  loop grouping the rows by window - the straightforward way, without validation or writing.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "mainnet"
DAY_START_MS = 1_715_040_000_000  # 2024-05-07T00:00:00Z
DAY_MS = 86_400_000
SOURCES = ["local", "alchemy", "bloxroute", "chainbound", "infura", "eden"]
CSV_HEADER = ["timestamp_ms", "hash", "chain_id", "from", "to", "value", "nonce", "gas", "gas_price", "gas_tip_cap",
              "gas_fee_cap", "data_size", "data_4bytes", "sources", "included_at_block_height",
              "included_block_timestamp_ms", "inclusion_delay_ms", "tx_type"]


def _q(v: str | None) -> int:
    return int(v, 16) if v else 0


def templates() -> pl.DataFrame:
    """Summary columns of the 89 real mainnet transactions of the fixtures."""
    objs = json.loads((FIXTURES / "block-19807080.json").read_text())[0]["transactions"]
    objs += json.loads((FIXTURES / "block-15537394-transactions.json").read_text())["transactions"]
    rows = []
    for o in objs:
        t = _q(o.get("type"))
        data = bytes.fromhex(o["input"][2:])
        tip, cap = (_q(o["maxPriorityFeePerGas"]), _q(o["maxFeePerGas"])) if t >= 2 else (_q(o["gasPrice"]),) * 2
        rows.append({"to": (o.get("to") or "").lower(), "value": str(_q(o["value"])), "gas": str(_q(o["gas"])),
                     "gas_price": str(cap), "gas_tip_cap": str(tip), "gas_fee_cap": str(cap),
                     "data_size": str(len(data)), "data_4bytes": "0x" + data[:4].hex() if len(data) >= 4 else "",
                     "tx_type": str(t)})
    return pl.DataFrame(rows)


def hex_column(raw: bytes, width: int) -> pl.Series:
    """``0x`` + lowercase hex of consecutive ``width``-byte slices of ``raw``, vectorised."""
    a = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    text = np.empty((a.shape[0], 2 * width), dtype=np.uint8)
    text[:, 0::2], text[:, 1::2] = digits[a >> 4], digits[a & 15]
    return ("0x" + pl.Series(text.view(f"S{2 * width}").ravel()).cast(pl.String)).alias("x")


def generate_day_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    t = templates().with_row_index("_t")
    combos = [" ".join(SOURCES[j] for j in rng.permutation(len(SOURCES))[: rng.integers(1, 5)]) for _ in range(64)]
    frame = (
        pl.DataFrame({"_t": rng.integers(0, t.height, rows).astype(np.uint32)})
        .join(t, on="_t", how="left", maintain_order="left")
        .with_columns(
            pl.Series("timestamp_ms", DAY_START_MS + np.sort(rng.integers(0, DAY_MS, rows))).cast(pl.String),
            hex_column(rng.bytes(32 * rows), 32).alias("hash"),
            pl.lit("1").alias("chain_id"),
            hex_column(rng.bytes(20 * rows), 20).alias("from"),
            pl.Series("nonce", rng.integers(0, 20_000, rows)).cast(pl.String),
            pl.Series("sources", np.array(combos, dtype=object)[rng.integers(0, len(combos), rows)], dtype=pl.String),
            pl.lit("0").alias("included_at_block_height"),
            pl.lit("0").alias("included_block_timestamp_ms"),
            pl.lit("0").alias("inclusion_delay_ms"),
        )
        .select(CSV_HEADER)
    )
    frame.write_csv(path)


def generate_raw_parquet(path: Path, rows: int, seed: int = 2) -> None:
    """Signed EIP-1559 transactions for chain 1 in the archive's Parquet schema (rawTx as bytes)."""
    import coincurve
    import rlp

    from mev_assets.core.txparse import keccak256

    rng = np.random.default_rng(seed)
    keys = [coincurve.PrivateKey(keccak256(f"bench-dumpster-{seed}-{i}".encode())) for i in range(256)]
    senders = ["0x" + keccak256(k.public_key.format(compressed=False)[1:])[-20:].hex() for k in keys]
    sizes = rng.choice([0, 68, 196, 260, 600], rows, p=[0.3, 0.35, 0.15, 0.15, 0.05])
    ts = DAY_START_MS + np.sort(rng.integers(0, DAY_MS * rows // 1_500_000 + 60_000, rows))
    cols: dict[str, list] = {c: [] for c in ("timestamp", "hash", "chainId", "txType", "from", "to", "value", "nonce",
                                             "gas", "gasPrice", "gasTipCap", "gasFeeCap", "dataSize", "data4Bytes",
                                             "sources", "includedAtBlockHeight", "includedBlockTimestamp",
                                             "inclusionDelayMs", "rawTx")}
    to = bytes.fromhex("7a250d5630b4cf539739df2c5dacb4c659f2488d")
    for i in range(rows):
        k = i % len(keys)
        nonce, value, tip, cap, gas = i // len(keys), int(rng.integers(0, 10**18)), 10**9, 3 * 10**10, 210_000
        data = bytes.fromhex("38ed1739") + rng.bytes(int(sizes[i]))[4:] if sizes[i] else b""
        fields = [1, nonce, tip, cap, gas, to, value, data, []]
        sig = keys[k].sign_recoverable(keccak256(b"\x02" + rlp.encode(fields)), hasher=None)
        raw = b"\x02" + rlp.encode(fields + [sig[64], int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")])
        for c, v in (("timestamp", int(ts[i])), ("hash", "0x" + keccak256(raw).hex()), ("chainId", "1"), ("txType", 2),
                     ("from", senders[k]), ("to", "0x" + to.hex()), ("value", str(value)), ("nonce", str(nonce)),
                     ("gas", str(gas)), ("gasPrice", str(cap)), ("gasTipCap", str(tip)), ("gasFeeCap", str(cap)),
                     ("dataSize", len(data)), ("data4Bytes", "0x" + data[:4].hex() if data else ""),
                     ("sources", SOURCES[: 1 + i % 3]), ("includedAtBlockHeight", 0), ("includedBlockTimestamp", 0),
                     ("inclusionDelayMs", 0), ("rawTx", raw)):
            cols[c].append(v)
    schema = pa.schema([("timestamp", pa.timestamp("ms")), ("hash", pa.string()), ("chainId", pa.string()),
                        ("txType", pa.int64()), ("from", pa.string()), ("to", pa.string()), ("value", pa.string()),
                        ("nonce", pa.string()), ("gas", pa.string()), ("gasPrice", pa.string()),
                        ("gasTipCap", pa.string()), ("gasFeeCap", pa.string()), ("dataSize", pa.int64()),
                        ("data4Bytes", pa.string()), ("sources", pa.list_(pa.string())),
                        ("includedAtBlockHeight", pa.int64()), ("includedBlockTimestamp", pa.timestamp("ms")),
                        ("inclusionDelayMs", pa.int64()), ("rawTx", pa.binary())])
    pq.write_table(pa.table(cols, schema=schema), path, compression="gzip", row_group_size=128 * 1024)


# ---- measurements (each in its own process) ------------------------------------------------------

def child(mode: str, path: str, home: str) -> dict:
    started = time.perf_counter()
    out: dict = {}
    if mode == "import":
        from mev_assets.ingest.dumpster_import import import_dumpster
        from mev_assets.ingest.landing import LandingZone
        from mev_assets.settings import Settings

        settings = Settings(mev_home=Path(home), dagster_home=Path(home) / "dagster", window_seconds=60, chain_id=1)
        started = time.perf_counter()
        rep = import_dumpster([path], LandingZone(settings.landing_dir), settings, progress=False)
        out = {"rows": rep.rows, "accepted": rep.accepted, "quarantined": rep.quarantined_total,
               "segments": rep.segments, "windows": len(rep.windows),
               "landing_bytes": sum(p.stat().st_size for p in settings.landing_dir.rglob("*") if p.is_file())}
    elif mode == "pyarrow":
        import pyarrow.csv as pacsv

        started = time.perf_counter()
        out = {"rows": pacsv.read_csv(path).num_rows}
    elif mode == "pandas":
        import pandas as pd

        started = time.perf_counter()
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        windows: dict[int, list] = {}
        for row in df.itertuples(index=False):
            ts = int(row.timestamp_ms)
            windows.setdefault(ts - ts % 60_000, []).append(row)
        out = {"rows": len(df), "windows": len(windows)}
    out["seconds"] = time.perf_counter() - started
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def peak_rss_mib() -> float:
    """This process's peak RSS. (Not ru_maxrss: Linux carries it over from the forking parent across
    exec, so a child would report at least the parent's size; VmHWM belongs to the new address space.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode: str, path: Path, home: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", mode, str(path), str(home)], capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_500_000, help="rows of the CSV day")
    ap.add_argument("--raw-rows", type=int, default=100_000, help="rows of the Parquet sample with rawTx")
    ap.add_argument("--keep", type=Path, default=None, help="work in this directory and keep it")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "PATH", "HOME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-dumpster-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        csv_path = work / "day.csv"
        t = time.perf_counter()
        generate_day_csv(csv_path, args.rows)
        in_memory = pl.read_csv(csv_path, infer_schema=False).estimated_size()
        print(f"generated {args.rows:,} CSV rows ({csv_path.stat().st_size / 2**20:.0f} MiB on disk, "
              f"{in_memory / 2**20:.0f} MiB in memory as strings) in {time.perf_counter() - t:.1f}s")
        floor = measure("pyarrow", csv_path, work / "unused")
        naive = measure("pandas", csv_path, work / "unused")
        imp = measure("import", csv_path, work / "home-csv")
        assert imp["accepted"] == args.rows, imp
        rate = imp["rows"] / imp["seconds"]
        print(f"import csv          {imp['seconds']:7.1f} s  {rate:9,.0f} rows/s  peak RSS {imp['peak_rss_mib']:5.0f} MiB  "
              f"{imp['windows']} windows, {imp['segments']} segments, landing {imp['landing_bytes'] / 2**20:.0f} MiB")
        print(f"  pyarrow read      {floor['seconds']:7.1f} s  {floor['rows'] / floor['seconds']:9,.0f} rows/s  "
              f"peak RSS {floor['peak_rss_mib']:5.0f} MiB  (I/O + parse floor; import: "
              f"{imp['seconds'] / floor['seconds']:.1f}x its time)")
        print(f"  pandas + loop     {naive['seconds']:7.1f} s  {naive['rows'] / naive['seconds']:9,.0f} rows/s  "
              f"peak RSS {naive['peak_rss_mib']:5.0f} MiB  (read whole + per-row grouping, no validation or "
              f"writing; import: {imp['seconds'] / naive['seconds']:.1f}x its time, "
              f"{imp['peak_rss_mib'] / naive['peak_rss_mib']:.2f}x its memory)")

        if args.raw_rows:
            pq_path = work / "sample.parquet"
            t = time.perf_counter()
            generate_raw_parquet(pq_path, args.raw_rows)
            print(f"generated {args.raw_rows:,} signed Parquet rows with rawTx ({pq_path.stat().st_size / 2**20:.0f} MiB) "
                  f"in {time.perf_counter() - t:.1f}s")
            raw = measure("import", pq_path, work / "home-raw")
            assert raw["accepted"] == args.raw_rows, raw
            raw_rate = raw["rows"] / raw["seconds"]
            print(f"import parquet+raw  {raw['seconds']:7.1f} s  {raw_rate:9,.0f} rows/s  peak RSS "
                  f"{raw['peak_rss_mib']:5.0f} MiB  landing {raw['landing_bytes'] / 2**20:.0f} MiB; "
                  f"extrapolated to 1.5 M rows: {1_500_000 / raw_rate / 60:.1f} min (decode + sender recovery per row)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
