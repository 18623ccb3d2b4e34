"""mempool-dumpster import: files in the archive's formats, built from real mainnet transactions.

The summary columns of the files come from the nodes' JSON-RPC transaction objects (independent of our
parser); the raw transactions are the real signed bytes (block 19807080's trace, and block 15537394's
objects re-encoded and checked against their hashes by txparse).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import coincurve
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eth_utils import to_checksum_address

from mev_assets.core.transactions import assemble_transactions
from mev_assets.core.txparse import transaction_from_rpc
from mev_assets.core.windows import window_key
from mev_assets.ingest.dumpster_import import DumpsterImportError, import_dumpster
from mev_assets.ingest.fakenode import sign_dynamic_fee_tx
from mev_assets.ingest.landing import LandingZone
from mev_assets.settings import PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "tests/fixtures/mainnet"
T0 = 1_715_000_000_000  # 2024-05-06T12:53:20Z
WINDOW_MS = 60_000

# mempool-dumpster's Parquet schema (common/txsummary.go, TxSummaryEntry): parquet-go writes the
# timestamps as TIMESTAMP_MILLIS, rawTx as plain BYTE_ARRAY (the signed bytes), sources as a list.
DUMPSTER_PARQUET_SCHEMA = pa.schema([
    ("timestamp", pa.timestamp("ms")),
    ("hash", pa.string()),
    ("chainId", pa.string()),
    ("txType", pa.int64()),
    ("from", pa.string()),
    ("to", pa.string()),
    ("value", pa.string()),
    ("nonce", pa.string()),
    ("gas", pa.string()),
    ("gasPrice", pa.string()),
    ("gasTipCap", pa.string()),
    ("gasFeeCap", pa.string()),
    ("dataSize", pa.int64()),
    ("data4Bytes", pa.string()),
    ("sources", pa.list_(pa.string())),
    ("includedAtBlockHeight", pa.int64()),
    ("includedBlockTimestamp", pa.timestamp("ms")),
    ("inclusionDelayMs", pa.int64()),
    ("rawTx", pa.binary()),
])
# The summary CSV header of current archives (TxSummaryEntryCSVHeader), sources joined with spaces.
CSV_HEADER = ["timestamp_ms", "hash", "chain_id", "from", "to", "value", "nonce", "gas", "gas_price", "gas_tip_cap",
              "gas_fee_cap", "data_size", "data_4bytes", "sources", "included_at_block_height",
              "included_block_timestamp_ms", "inclusion_delay_ms", "tx_type"]
# Older archives: camelCase (no sources / txType columns at first).
CSV_HEADER_CAMEL = ["timestamp", "hash", "chainId", "from", "to", "value", "nonce", "gas", "gasPrice", "gasTipCap",
                    "gasFeeCap", "dataSize", "data4Bytes", "sources", "txType"]


# ---- real transactions -------------------------------------------------------------------------

def _q(v: str | None) -> int:
    return int(v, 16) if v is not None else 0


def rpc_objects() -> list[dict]:
    """89 real mainnet transaction objects: block 19807080 (9) and block 15537394 (80)."""
    b1 = json.loads((FIXTURES / "block-19807080.json").read_text())[0]["transactions"]
    b2 = json.loads((FIXTURES / "block-15537394-transactions.json").read_text())["transactions"]
    return b1 + b2


def raw_of(obj: dict) -> bytes:
    return transaction_from_rpc(obj).raw  # re-encoded; txparse checks it hashes to obj["hash"]


def trace_raws() -> dict[str, str]:
    """Block 19807080's signed raw transactions as the trace recorded them, by hash."""
    from mev_assets.core.txparse import keccak256

    trace = json.loads((FIXTURES / "block-19807080-trace.json").read_text())[0]
    raws = [t["meta"]["byte_code"] for t in trace["block_trace"]["txn_info"]]
    return {"0x" + keccak256(bytes.fromhex(r[2:])).hex(): r for r in raws}


def summary_of(obj: dict) -> dict:
    """mempool-dumpster's summary columns of a transaction, from the node's object (geth semantics:
    GasPrice() of a dynamic-fee tx is its fee cap; dataSize/data4Bytes from the input)."""
    tx_type = _q(obj.get("type"))
    data = bytes.fromhex(obj["input"][2:])
    if tx_type >= 2:
        tip, cap = _q(obj["maxPriorityFeePerGas"]), _q(obj["maxFeePerGas"])
        price = cap
    else:
        tip = cap = price = _q(obj["gasPrice"])
    chain = _q(obj["chainId"]) if obj.get("chainId") else (_q(obj["v"]) - 35) // 2
    return {
        "hash": obj["hash"], "chainId": str(chain), "txType": tx_type, "from": obj["from"].lower(),
        "to": (obj.get("to") or "").lower(), "value": str(_q(obj["value"])), "nonce": str(_q(obj["nonce"])),
        "gas": str(_q(obj["gas"])), "gasPrice": str(price), "gasTipCap": str(tip), "gasFeeCap": str(cap),
        "dataSize": len(data), "data4Bytes": "0x" + data[:4].hex() if len(data) >= 4 else "",
    }


def dumpster_row(obj: dict, ts: int, sources: list[str], raw: bytes | str | None = None, **overrides) -> dict:
    row = {"timestamp": ts, **summary_of(obj), "sources": sources, "includedAtBlockHeight": _q(obj.get("blockNumber")),
           "includedBlockTimestamp": ts + 12_000 if isinstance(ts, int) else None, "inclusionDelayMs": 12_000,
           "rawTx": raw_of(obj) if raw is None else raw}
    row.update(overrides)
    return row


# ---- writers of the archive's formats ------------------------------------------------------------

def write_parquet(path: Path, rows: list[dict], schema: pa.Schema = DUMPSTER_PARQUET_SCHEMA) -> Path:
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    pq.write_table(pa.table(cols, schema=schema), path, compression="gzip")  # the archive uses gzip
    return path


def csv_text(rows: list[dict], header: list[str] = CSV_HEADER, source_sep: str = " ") -> str:
    """Summary CSV as mempool-dumpster writes it (strings.Join of the fields; no quoting needed)."""
    camel = dict(zip(CSV_HEADER, ["timestamp", "hash", "chainId", "from", "to", "value", "nonce", "gas", "gasPrice",
                                  "gasTipCap", "gasFeeCap", "dataSize", "data4Bytes", "sources",
                                  "includedAtBlockHeight", "includedBlockTimestamp", "inclusionDelayMs", "txType"]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in rows:
        out = []
        for col in header:
            v = r.get(camel.get(col, col))
            if col == "sources":
                v = source_sep.join(v or [])
            out.append("" if v is None else str(v))
        writer.writerow(out)
    return buf.getvalue()


def write_csv(path: Path, rows: list[dict], header: list[str] = CSV_HEADER, source_sep: str = " ",
              extra_lines: tuple[str, ...] = ()) -> Path:
    text = csv_text(rows, header, source_sep) + "".join(line + "\n" for line in extra_lines)
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(path.name[: -len(".zip")], text)
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_sourcelog(path: Path, rows: list[tuple[int, str, str]], header: bool = True) -> Path:
    lines = (["timestamp_ms,hash,source"] if header else []) + [f"{t},{h},{s}" for t, h, s in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---- reading the landing zone back ---------------------------------------------------------------

def settings_for(tmp_path: Path, chain_id: int = 1) -> Settings:
    return Settings(mev_home=tmp_path / "home", dagster_home=tmp_path / "home" / "dagster", window_seconds=60,
                    chain_id=chain_id)


def landed(lz: LandingZone, area: str = "mempool") -> pl.DataFrame:
    frames = [lz.read_area(area, k).frame for k in lz.windows("mempool")]
    return pl.concat(frames) if frames else pl.DataFrame()


def quarantined(lz: LandingZone, root: Path) -> pl.DataFrame:
    """Every quarantined record (``root``: the zone's directory, layout as in docs/architecture.md)."""
    keys = sorted(p.name.split("=", 1)[1] for p in (root / "_quarantine").glob("window=*"))
    frames = [lz.read_quarantine(k).with_columns(pl.lit(k).alias("window")) for k in keys]
    return pl.concat(frames) if frames else pl.DataFrame()


def segment_names(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def segments_of(root: Path, key: str) -> list[Path]:
    return sorted((root / "mempool" / f"window={key}").glob("*.parquet"))


# ---- tests ---------------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_parquet_with_raw_lands_every_good_row_once_and_quarantines_each_bad_kind(tmp_path):
    objs = rpc_objects()
    raws = trace_raws()
    rows = []
    for i, obj in enumerate(objs):
        raw = bytes.fromhex(raws[obj["hash"]][2:]) if obj["hash"] in raws else None  # the trace's own bytes
        rows.append(dumpster_row(obj, T0 + i * 4_000, ["local", "alchemy"] if i % 2 else ["bloxroute"], raw=raw))
    good = {o["hash"]: (o, r) for o, r in zip(objs, rows)}
    a, b, c = objs[3], objs[20], objs[40]
    wrong_chain = sign_dynamic_fee_tx(coincurve.PrivateKey(b"\x07" * 32), 31337, 0, b"\x11" * 20)
    bad = [
        # (expected code, expected text in the reason, row)
        ("bad_field", "hash 0xzz", dumpster_row(a, T0 + 1, ["local"], hash="0xzz" + a["hash"][4:])),
        ("missing_field", "hash is missing", dumpster_row(a, T0 + 2, ["local"], hash=None)),
        ("summary_mismatch", "from", dumpster_row(b, T0 + 3, ["local"], **{"from": "0x" + "ab" * 20})),
        ("summary_mismatch", "nonce", dumpster_row(b, T0 + 4, ["local"], nonce="999")),
        ("summary_mismatch", "hash", dumpster_row(b, T0 + 5, ["local"], hash=c["hash"])),
        ("bad_rlp", "", dumpster_row(c, T0 + 6, ["local"], raw=raw_of(c)[:-7])),  # truncated
        ("bad_rlp", "not valid hex", dumpster_row(c, T0 + 7, ["local"], raw=b"0xnothex")),
        ("unsupported_type", "", dumpster_row(c, T0 + 8, ["local"], raw=b"\x09\xc0")),
        ("wrong_chain_id", "31337", dumpster_row(c, T0 + 9, ["local"], raw=wrong_chain, chainId="31337")),
        ("bad_field", "genesis", dumpster_row(c, (T0 + 10) // 1000, ["local"])),  # seconds, not ms
        ("bad_field", "sources", dumpster_row(c, T0 + 11, ["no/t a name"])),
    ]
    # a later row repeating a transaction already imported is a duplicate
    dup = dumpster_row(objs[0], T0 + 200_000, ["eden"])
    path = write_parquet(tmp_path / "2024-05-06.parquet", rows[:50] + [r for _, _, r in bad] + [dup] + rows[50:])

    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)
    rep = import_dumpster([path], lz, s, progress=False)

    assert rep.collector_id == "dumpster-2024-05-06"
    assert rep.rows == len(objs) + len(bad) + 1
    assert (rep.accepted, rep.accepted_with_raw, rep.duplicates) == (len(objs), len(objs), 1)
    assert rep.rows == rep.accepted + rep.duplicates + rep.quarantined_total
    expected_codes: dict[str, int] = {}
    for code, _, _ in bad:
        expected_codes[code] = expected_codes.get(code, 0) + 1
    assert rep.quarantined == expected_codes

    txs = landed(lz)
    assert txs.height == len(objs) and sorted(txs["hash"]) == sorted(good)
    assert set(txs["collector_id"]) == {"dumpster-2024-05-06"} and set(txs["chain_id"]) == {1}
    for row in txs.iter_rows(named=True):
        obj, src = good[row["hash"]]
        assert row["timestamp_ms"] == int(src["timestamp"])
        assert row["from"] == obj["from"].lower() and row["to"] == (obj["to"] or None)
        assert (row["nonce"], row["gas"], row["value"]) == (_q(obj["nonce"]), _q(obj["gas"]), str(_q(obj["value"])))
        assert row["tx_type"] == _q(obj.get("type")) and row["data_4bytes"] == src["data4Bytes"]
        assert row["input"] == obj["input"] and row["raw_tx"] == "0x" + raw_of(obj).hex()
        assert row["source"] == src["sources"][0]
    creation = [o for o in objs if o["to"] is None]
    assert creation and txs.filter(pl.col("hash") == creation[0]["hash"])["to"].to_list() == [None]
    # every window got its rows and was sealed by the importer
    keys = sorted({window_key(int(r["timestamp"]), 60) for r in rows})
    assert rep.windows == keys == lz.windows("mempool")
    assert all(lz.sealed_by(k) == {"dumpster-2024-05-06"} for k in keys)
    # the sourcelog area holds one sighting per (hash, source) of the rows' sources lists
    log = landed(lz, "sourcelog")
    assert log.height == sum(len(r["sources"]) for r in rows) == rep.sightings
    assert sorted(log.filter(pl.col("hash") == objs[1]["hash"])["source"].to_list()) == ["alchemy", "local"]

    q = quarantined(lz, s.landing_dir)
    assert q.height == len(bad)
    for code, text, row in bad:
        ts = int(row["timestamp"]) if int(row["timestamp"]) > T0 // 10 else T0  # a bad timestamp files near its row
        hit = q.filter(pl.col("reason").str.starts_with(code + ":") & pl.col("payload").str.contains(row["hash"] or "null")
                       & pl.col("reason").str.contains(text, literal=True))
        assert hit.height >= 1, (code, text, q.select("reason").to_series().to_list())
        assert hit["collector_id"][0] == "dumpster-2024-05-06"
        if ts >= T0:
            assert window_key(ts, 60) in hit["window"].to_list()
        payload = json.loads(hit["payload"][0])
        assert payload["rawTx"] == "0x" + bytes(row["rawTx"]).hex()  # the row itself, binary as hex
    mismatch = q.filter(pl.col("reason").str.contains("summary_mismatch: from"))["reason"][0]
    assert "0x" + "ab" * 20 in mismatch and b["from"].lower() in mismatch


@pytest.mark.timeout(120)
def test_csv_without_raw_lands_the_summary_columns(tmp_path):
    objs = rpc_objects()[:30]
    rows = [dumpster_row(o, T0 + i * 3_000, ["local", "infura"]) for i, o in enumerate(objs)]
    x = objs[0]
    bad_rows = [
        ("bad_field", "nonce", dumpster_row(x, T0 + 1, ["local"], nonce="12a")),
        ("bad_field", "value", dumpster_row(x, T0 + 2, ["local"], value="-1")),
        ("bad_field", "value", dumpster_row(x, T0 + 3, ["local"], value=str(2**256))),
        ("wrong_chain_id", "5", dumpster_row(x, T0 + 4, ["local"], chainId="5")),
        ("no_chain_id", "pre-EIP-155", dumpster_row(x, T0 + 5, ["local"], chainId="0")),
        ("bad_field", "from", dumpster_row(x, T0 + 6, ["local"], **{"from": "0x1234"})),
        ("unsupported_type", "tx_type", dumpster_row(x, T0 + 7, ["local"], txType=7)),
        ("missing_field", "timestamp_ms", dumpster_row(x, "", ["local"])),
        ("bad_field", "data_4bytes", dumpster_row(x, T0 + 8, ["local"], data4Bytes="0x12")),
        ("bad_field", "gas", dumpster_row(x, T0 + 9, ["local"], gas=str(2**64))),
    ]
    truncated = f"{T0 + 10},{objs[1]['hash']},1,0x00"  # a cut-off line: too few fields
    path = write_csv(tmp_path / "2024-05-06.csv.zip", rows[:10] + [r for _, _, r in bad_rows] + rows[10:],
                     extra_lines=(truncated,))
    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)
    rep = import_dumpster([path], lz, s, progress=False)

    assert rep.rows == len(rows) + len(bad_rows) + 1
    assert (rep.accepted, rep.accepted_with_raw, rep.duplicates) == (len(rows), 0, 0)
    codes: dict[str, int] = {"bad_row": 1}
    for code, _, _ in bad_rows:
        codes[code] = codes.get(code, 0) + 1
    assert rep.quarantined == codes
    q = quarantined(lz, s.landing_dir)
    for code, text, _ in bad_rows:
        assert q.filter(pl.col("reason").str.starts_with(code) & pl.col("reason").str.contains(text, literal=True)).height
    line = q.filter(pl.col("reason").str.starts_with("bad_row"))
    assert line["reason"][0] == "bad_row: expected 18 fields, got 4" and truncated in line["payload"][0]

    txs = landed(lz)
    by_hash = {r["hash"]: r for r in txs.iter_rows(named=True)}
    assert sorted(by_hash) == sorted(o["hash"] for o in objs)
    for obj in objs:
        got, want = by_hash[obj["hash"]], summary_of(obj)
        assert (got["raw_tx"], got["input"]) == (None, None)
        assert got["from"] == want["from"] and got["to"] == (want["to"] or None)
        assert (got["gas_price"], got["gas_tip_cap"], got["gas_fee_cap"]) == (want["gasPrice"], want["gasTipCap"],
                                                                              want["gasFeeCap"])
        assert (got["nonce"], got["data_size"], got["data_4bytes"], got["tx_type"]) == (
            int(want["nonce"]), want["dataSize"], want["data4Bytes"], want["txType"])
    assert set(landed(lz, "sourcelog")["source"]) == {"local", "infura"}


@pytest.mark.timeout(120)
def test_older_layouts_camel_case_csv_and_parquet_with_hex_raw(tmp_path):
    objs = rpc_objects()[30:50]
    rows = [dumpster_row(o, T0 + i * 1_000, ["local", "eden"]) for i, o in enumerate(objs)]
    # older CSVs: camelCase header, checksummed addresses, sources as one quoted comma-joined field, gzip
    camel_rows = [{**r, "from": to_checksum_address(r["from"])} for r in rows[:10]]
    csv_path = write_csv(tmp_path / "old.csv.gz", camel_rows, header=CSV_HEADER_CAMEL, source_sep=",")
    assert '"local,eden"' in gzip.decompress(csv_path.read_bytes()).decode()
    # older Parquet: int64 timestamp and uint64 nonce/gas; rawTx as 0x-hex text
    old_schema = pa.schema([("timestamp", pa.int64()), ("hash", pa.string()), ("chainId", pa.string()),
                            ("from", pa.string()), ("to", pa.string()), ("value", pa.string()), ("nonce", pa.uint64()),
                            ("gas", pa.uint64()), ("gasPrice", pa.string()), ("gasTipCap", pa.string()),
                            ("gasFeeCap", pa.string()), ("dataSize", pa.int64()), ("data4Bytes", pa.string()),
                            ("sources", pa.list_(pa.string())), ("rawTx", pa.string())])
    pq_rows = [{**r, "nonce": int(r["nonce"]), "gas": int(r["gas"]), "rawTx": "0x" + r["rawTx"].hex()} for r in rows[10:]]
    pq_path = write_parquet(tmp_path / "old.parquet", pq_rows, old_schema)

    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)
    rep = import_dumpster([csv_path, pq_path], lz, s, progress=False)
    assert rep.collector_id == "dumpster-old"
    assert (rep.rows, rep.accepted, rep.accepted_with_raw, rep.quarantined) == (20, 20, 10, {})
    txs = landed(lz)
    assert sorted(txs["hash"]) == sorted(o["hash"] for o in objs)
    assert sorted(txs["from"]) == sorted(o["from"].lower() for o in objs)
    assert txs.filter(pl.col("raw_tx").is_null())["tx_type"].null_count() == 0  # camel CSV has txType
    log = landed(lz, "sourcelog")
    assert log.height == 40 and set(log["source"]) == {"local", "eden"}


@pytest.mark.timeout(120)
def test_sourcelog_sightings_join_their_transaction_window(tmp_path):
    objs = rpc_objects()[:12]
    # the transactions sit near the end of their window; some sources announce them after the boundary
    rows = [dumpster_row(o, T0 + 50_000 + i * 1_000, ["x"]) for i, o in enumerate(objs)]
    for r in rows:
        r["sources"] = ["local", "alchemy", "bloxroute"]
    log_rows = []
    for i, r in enumerate(rows):
        ts = int(r["timestamp"])
        log_rows += [(ts, r["hash"], "local"), (ts + 700 + 100 * i, r["hash"], "alchemy"),
                     (ts + 9_000 + 100 * i, r["hash"], "bloxroute")]  # bloxroute lands in the next window
    unknown = "0x" + "5" * 64
    log_rows += [(T0 + 70_000, unknown, "local"), (T0 + 70_001, "0xnothash", "local"), (T0 + 70_002, objs[0]["hash"], "")]
    log_rows.sort()
    tx_path = write_parquet(tmp_path / "day.parquet", rows)
    log_path = write_sourcelog(tmp_path / "day_sourcelog.csv", log_rows)

    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)
    rep = import_dumpster([tx_path], lz, s, sourcelog_paths=[log_path], progress=False)
    assert (rep.accepted, rep.sourcelog_rows, rep.sightings, rep.sourcelog_unmatched) == (12, len(log_rows), 36, 1)
    assert rep.sourcelog_quarantined == {"bad_field": 1, "missing_field": 1}
    # assembled as the pipeline does: each transaction's sources are the archive's, in arrival order
    for key in rep.windows:
        table = assemble_transactions(lz.read_area("mempool", key).frame, lz.read_area("sourcelog", key).frame, key)
        assert table.height and set(map(tuple, table["sources"].to_list())) == {("local", "alchemy", "bloxroute")}
    sl = landed(lz, "sourcelog")
    late = sl.filter(pl.col("source") == "bloxroute")
    assert late.height == 12 and (late["timestamp_ms"] >= T0 + 59_000).all()
    assert window_key(T0 + 60_000, 60) not in rep.windows or lz.read_area("mempool", window_key(T0 + 60_000, 60)).frame.height

    # headerless sourcelog files are accepted too, and Parquet ones (as mempool-dumpster-rs converts them)
    s2 = settings_for(tmp_path / "second")
    log_parquet = tmp_path / "log.parquet"
    pq.write_table(pa.table({"timestamp": pa.array([t for t, _, _ in log_rows[6:9]], pa.timestamp("ms")),
                             "hash": [h for _, h, _ in log_rows[6:9]], "source": [s for _, _, s in log_rows[6:9]]}),
                   log_parquet)
    rep2 = import_dumpster([tx_path], LandingZone(s2.landing_dir), s2, progress=False, sourcelog_paths=[
        write_sourcelog(tmp_path / "nohead.csv", log_rows[:6], header=False), log_parquet])
    assert (rep2.sourcelog_rows, rep2.sightings) == (9, 9)


def test_bytes_that_are_not_utf8_quarantine_only_their_row(tmp_path):
    objs = rpc_objects()[:3]
    text = csv_text([dumpster_row(o, T0 + i, ["local"]) for i, o in enumerate(objs)])
    lines = text.encode().split(b"\n")
    lines[2] = lines[2].replace(b",local,", b",loc\xffal,")  # the second row
    path = tmp_path / "latin.csv"
    path.write_bytes(b"\n".join(lines))
    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)
    rep = import_dumpster([path], lz, s, progress=False)
    assert (rep.accepted, rep.quarantined) == (2, {"bad_field": 1})
    assert "sources is not UTF-8" in quarantined(lz, s.landing_dir)["reason"][0]
    assert objs[1]["hash"] not in landed(lz)["hash"].to_list()


@pytest.mark.timeout(120)
def test_reimport_changes_nothing_and_a_crashed_import_is_redone(tmp_path):
    objs = rpc_objects()[:40]
    rows = [dumpster_row(o, T0 + i * 5_000, ["local"]) for i, o in enumerate(objs)]
    rows.insert(5, dumpster_row(objs[50 % len(objs)], T0 + 12_345, ["local"], nonce="77"))  # quarantined
    path = write_parquet(tmp_path / "day.parquet", rows)
    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)

    first = import_dumpster([path], lz, s, progress=False)
    before = segment_names(s.landing_dir)
    again = import_dumpster([path], lz, s, progress=False)
    assert segment_names(s.landing_dir) == before  # not one file written or rewritten
    assert (again.accepted, again.already_landed, again.segments, again.windows) == (0, first.accepted, 0, [])
    assert again.windows_skipped == first.windows
    assert landed(lz).height == 40 and quarantined(lz, s.landing_dir).height == 1

    # a crash before sealing: the re-run writes the same segment names (same content) and seals
    for key in first.windows:
        (s.landing_dir / "mempool" / f"window={key}" / f"_SEALED.{first.collector_id}").unlink()
    redo = import_dumpster([path], lz, s, progress=False)
    assert redo.accepted == 40 and sorted(redo.windows) == sorted(first.windows)
    assert set(segment_names(s.landing_dir)) == set(before) and landed(lz).height == 40
    assert quarantined(lz, s.landing_dir).height == 1  # the quarantined row is not appended twice


@pytest.mark.timeout(120)
def test_unsorted_input_and_small_buffers_give_extra_segments_not_lost_rows(tmp_path):
    objs = rpc_objects()
    rows = [dumpster_row(o, T0 + (i % 4) * 60_000 + i, ["local"]) for i, o in enumerate(objs)]
    random.Random(3).shuffle(rows)
    path = write_csv(tmp_path / "shuffled.csv", rows)
    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)
    rep = import_dumpster([path], lz, s, progress=False, csv_block_bytes=4096, max_buffered_rows=10,
                          lateness_seconds=0)
    assert rep.accepted == len(objs) and len(rep.windows) == 4
    per_window = [len(segments_of(s.landing_dir, k)) for k in rep.windows]
    assert min(per_window) > 1  # windows were flushed early and got more segments later
    txs = landed(lz)
    assert txs.height == len(objs) and txs["hash"].n_unique() == len(objs)
    assert all(lz.sealed_by(k) == {rep.collector_id} for k in rep.windows)

    # sorted input, windows larger than a segment: several segments per window, in seq order
    s2 = settings_for(tmp_path / "sorted")
    lz2 = LandingZone(s2.landing_dir)
    ordered = write_csv(tmp_path / "sorted.csv", sorted(rows, key=lambda r: r["timestamp"]))
    rep2 = import_dumpster([ordered], lz2, s2, progress=False, segment_rows=8)
    names = [p.name for k in rep2.windows for p in segments_of(s2.landing_dir, k)]
    assert len(names) >= len(objs) // 8 and names[:2] == [f"{rep2.collector_id}-000000.parquet",
                                                         f"{rep2.collector_id}-000001.parquet"]
    assert landed(lz2).height == len(objs)


def test_files_that_cannot_be_imported_fail_before_anything_is_written(tmp_path):
    s = settings_for(tmp_path)
    lz = LandingZone(s.landing_dir)
    good = write_parquet(tmp_path / "good.parquet", [dumpster_row(rpc_objects()[0], T0, ["local"])])
    no_header = tmp_path / "no_header.csv"
    no_header.write_text(csv_text([dumpster_row(rpc_objects()[0], T0, ["local"])]).split("\n", 1)[1])
    missing = tmp_path / "missing.csv"
    missing.write_text("timestamp_ms,hash,chain_id\n1715000000000,0x" + "1" * 64 + ",1\n")
    not_sourcelog = write_sourcelog(tmp_path / "log.csv", [])
    not_sourcelog.write_text("when,what\n1,2\n")
    cases = [
        ([good, no_header], [], "first line is not a header"),
        ([good, missing], [], "missing column(s) from, to, value, nonce, gas, gas_price"),
        ([good], [not_sourcelog], "not a mempool-dumpster sourcelog file"),
        ([good, tmp_path / "absent.parquet"], [], "no such file"),
    ]
    for files, logs, needle in cases:
        with pytest.raises((DumpsterImportError, FileNotFoundError), match=needle.replace("(", r"\(").replace(")", r"\)")):
            import_dumpster(files, lz, s, sourcelog_paths=logs, progress=False)
    assert not any(s.landing_dir.rglob("*.parquet"))
    with pytest.raises(DumpsterImportError, match="collector id"):
        import_dumpster([good], lz, s, collector_id="bad id!", progress=False)


# Imports one file in a fresh process, sampling its RSS every 10 ms from another thread.
MEMORY_PROBE = r"""
import os, sys, threading, time
from pathlib import Path
from mev_assets.ingest.dumpster_import import import_dumpster
from mev_assets.ingest.landing import LandingZone
from mev_assets.settings import Settings
path, home = sys.argv[1], Path(sys.argv[2])
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
samples, stop = [], threading.Event()
def sample():
    while not stop.is_set():
        samples.append((time.monotonic(), rss()))
        stop.wait(0.01)
s = Settings(mev_home=home, dagster_home=home / "d", window_seconds=60, chain_id=1)
before = rss()
sampler = threading.Thread(target=sample)
sampler.start()
t0 = time.monotonic()
rep = import_dumpster([path], LandingZone(s.landing_dir), s, progress=False)
t1 = time.monotonic()
stop.set()
sampler.join()
mid = (t0 + t1) / 2
first_half = max(r for t, r in samples if t <= mid)
second_half = max([r for t, r in samples if t > mid] or [0])
print(before, first_half, second_half, rep.accepted, rep.segments)
"""


def generated_day_csv(path: Path, n: int, seed: int = 7) -> Path:
    """``n`` summary rows shaped like mainnet's (templated on real transactions), unique hashes,
    sorted by time over ``n / 1000`` minutes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    templates = [summary_of(o) for o in rpc_objects()]
    pick = rng.integers(0, len(templates), n)
    hashes = rng.bytes(32 * n)
    senders = rng.bytes(20 * n)
    t = pl.DataFrame([templates[i] for i in range(len(templates))]).with_row_index("_t")
    frame = (
        pl.DataFrame({"_t": pick.astype("uint32")})
        .join(t, on="_t", how="left", maintain_order="left")
        .with_columns(
            pl.Series("timestamp_ms", T0 + np.sort(rng.integers(0, max(1, n // 1000) * 60_000, n))),
            pl.Series("hash", ["0x" + hashes[32 * i: 32 * i + 32].hex() for i in range(n)]),
            pl.Series("from", ["0x" + senders[20 * i: 20 * i + 20].hex() for i in range(n)]),
            pl.Series("nonce", rng.integers(0, 5000, n).astype(str)),
            pl.lit("local alchemy").alias("sources"),
            pl.lit("0").alias("included_at_block_height"), pl.lit("0").alias("included_block_timestamp_ms"),
            pl.lit("0").alias("inclusion_delay_ms"),
        )
        .rename({"chainId": "chain_id", "gasPrice": "gas_price", "gasTipCap": "gas_tip_cap", "gasFeeCap": "gas_fee_cap",
                 "dataSize": "data_size", "data4Bytes": "data_4bytes", "txType": "tx_type"})
        .select(CSV_HEADER)
    )
    frame.write_csv(path)
    return path


@pytest.mark.timeout(240)
def test_a_large_file_imports_in_bounded_memory(tmp_path):
    """Memory stays flat while the file streams: the second half of a 300k-row file adds next to
    nothing to the peak, where holding the rows would add the second half's in-memory size."""
    n = 300_000
    path = generated_day_csv(tmp_path / "big.csv", n)
    whole = pl.read_csv(path, infer_schema=False)
    in_memory = whole.estimated_size()
    windows = whole.select((pl.col("timestamp_ms").cast(pl.Int64) // 60_000).n_unique()).item()
    del whole
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(path), str(tmp_path / "home")], capture_output=True,
                          text=True, timeout=200, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    before, first_half, second_half, accepted, segments = (int(x) for x in done.stdout.split())
    assert accepted == n and segments == 2 * windows  # sorted input: one mempool + one sourcelog segment each
    mib = 2**20
    print(f"file {path.stat().st_size / mib:.0f} MiB, {in_memory / mib:.0f} MiB in memory; import RSS: "
          f"{before / mib:.0f} MiB before, peak {first_half / mib:.0f} MiB in the first half, "
          f"{second_half / mib:.0f} MiB in the second")
    assert second_half - first_half < 0.5 * (in_memory / 2)
    # the fixed working set (CSV reader and its read-ahead, allocator pools, one batch, open windows)
    # measured ~140 MiB on 2 cores; a day (1.5 M rows, ~350 MiB in memory) peaks about the same
    assert second_half - before < 200 * mib
