"""Raw-transaction import: real mainnet raw txs through the collector's segment path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import coincurve
import polars as pl
import pytest

from mev_assets.core.txparse import transaction_from_rpc
from mev_assets.core.windows import window_key
from mev_assets.ingest.fakenode import sign_dynamic_fee_tx, synthetic_tx_objects
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.raw_import import import_raw_lines
from mev_assets.settings import PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "tests/fixtures/mainnet"
T0 = 1715000000000  # 2024-05-06T12:53:20Z


def mainnet_raws() -> list[str]:
    trace = json.loads((FIXTURES / "block-19807080-trace.json").read_text())[0]
    return [t["meta"]["byte_code"] for t in trace["block_trace"]["txn_info"]]


def mainnet_hashes() -> list[str]:
    block = json.loads((FIXTURES / "block-19807080.json").read_text())[0]
    return [t["hash"] for t in block["transactions"]]


def make_settings(tmp_path: Path, chain_id: int = 1) -> Settings:
    return Settings(mev_home=tmp_path / "home", dagster_home=tmp_path / "home" / "d", window_seconds=60, chain_id=chain_id)


@pytest.mark.timeout(60)
def test_import_real_raw_transactions_with_bad_lines(tmp_path):
    raws = mainnet_raws()
    devnet_raw = synthetic_tx_objects(1, 31337)[0]  # valid, but for chain 31337
    lines = [json.dumps({"timestamp_ms": T0 + i * 10_000, "raw": r, "source": "dumpster"}) for i, r in enumerate(raws)]
    lines += [
        json.dumps({"timestamp_ms": T0 + 500, "raw": raws[0], "source": "other"}),  # same tx, another source
        json.dumps({"timestamp_ms": T0 + 600, "raw": raws[1], "source": "dumpster"}),  # plain duplicate
        "{this is not json",
        json.dumps({"timestamp_ms": T0, "raw": "0xf80102", "source": "dumpster"}),  # bad RLP
        json.dumps({"timestamp_ms": T0, "raw": raws[2][:-4], "source": "dumpster"}),  # truncated
        json.dumps({"timestamp_ms": T0, "raw": devnet_raw["hash"], "source": "dumpster"}),  # a hash, not a tx
        json.dumps({"timestamp_ms": T0, "source": "dumpster"}),  # missing raw
        "",
    ]
    wrong_chain = sign_dynamic_fee_tx(coincurve.PrivateKey(b"\x01" * 32), 31337, 0, b"\x11" * 20)
    lines.append(json.dumps({"timestamp_ms": T0, "raw": "0x" + wrong_chain.hex(), "source": "dumpster"}))
    path = tmp_path / "capture.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")

    s = make_settings(tmp_path)
    lz = LandingZone(s.landing_dir)
    rep = import_raw_lines(path, lz, s)
    assert rep.collector_id == "import-capture"
    assert (rep.lines, rep.accepted, rep.duplicates, rep.sightings) == (len(lines) - 1, 9, 2, 1)
    assert rep.quarantined == {"malformed_json": 1, "bad_rlp": 2, "unsupported_type": 1, "missing_field": 1, "wrong_chain_id": 1}
    assert "9 accepted" in rep.summary()
    keys = sorted({window_key(T0 + i * 10_000, 60) for i in range(9)})
    assert rep.windows == keys
    txs = pl.concat([lz.read_area("mempool", k).frame for k in keys])
    assert sorted(txs["hash"]) == sorted(mainnet_hashes())  # the real block's hashes, recomputed from raw
    assert set(txs["chain_id"]) == {1} and set(txs["collector_id"]) == {"import-capture"}
    first = txs.filter(pl.col("hash") == mainnet_hashes()[0]).row(0, named=True)
    assert first["from"] == "0x71f755898886f79efa73334450f05a824faeae02" and first["timestamp_ms"] == T0
    assert first["source"] == "dumpster" and first["raw_tx"] == raws[0].lower()
    sl = pl.concat([lz.read_area("sourcelog", k).frame for k in keys])
    assert sl.filter(pl.col("hash") == first["hash"])["source"].to_list() == ["dumpster", "other"]
    for key in keys:
        assert lz.sealed_by(key) == {"import-capture"}
    q = pl.concat([lz.read_quarantine(k) for k in lz.windows("mempool")] + [
        lz.read_quarantine(p.name.split("=", 1)[1]) for p in (lz.root / "_quarantine").iterdir() if p.name.startswith("window=")
    ]).unique()
    assert q.height == 6
    assert any(r.startswith("wrong_chain_id: chain id 31337 != expected 1") for r in q["reason"])

    # a second run of the same file lands nothing new and quarantines nothing twice
    files_before = sorted(p.relative_to(lz.root) for p in lz.root.rglob("*.parquet"))
    q_lines_before = sum(len(p.read_text().splitlines()) for p in lz.root.rglob("*.jsonl"))
    rep2 = import_raw_lines(path, lz, s)
    assert (rep2.accepted, rep2.duplicates) == (0, 11) and rep2.windows == []
    assert sorted(p.relative_to(lz.root) for p in lz.root.rglob("*.parquet")) == files_before
    assert sum(len(p.read_text().splitlines()) for p in lz.root.rglob("*.jsonl")) == q_lines_before


@pytest.mark.timeout(60)
def test_import_lines_from_memory_and_custom_id(tmp_path):
    objs = synthetic_tx_objects(4, 31337)
    s = make_settings(tmp_path, chain_id=31337)
    lz = LandingZone(s.landing_dir)
    # dicts are accepted as already parsed lines; the raw field may be named raw_tx as in segments
    rows = [{"timestamp_ms": T0 + i, "raw_tx": "0x" + transaction_from_rpc(o).raw.hex()} for i, o in enumerate(objs)]
    rep = import_raw_lines(rows, lz, s, collector_id="replay-1")
    assert rep.accepted == 4 and rep.collector_id == "replay-1"
    txs = lz.read_area("mempool", window_key(T0, 60)).frame
    assert set(txs["source"]) == {"import"} and sorted(txs["hash"]) == sorted(o["hash"] for o in objs)
    assert [p.name for p in lz.segment_files("mempool", window_key(T0, 60))] == ["replay-1-000000.parquet"]
