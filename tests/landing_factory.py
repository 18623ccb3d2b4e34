"""Build landing-zone rows for tests that do not need a node (assembly, sensor, assets)."""

from __future__ import annotations

import polars as pl

from mev_assets.core.schemas import LANDING_TX_SCHEMA, SOURCELOG_SCHEMA
from mev_assets.core.windows import key_start_ms


def tx_row(tx_hash: str, timestamp_ms: int, source: str, collector_id: str = "c1", **fields) -> dict:
    row = {
        "timestamp_ms": timestamp_ms,
        "hash": tx_hash,
        "chain_id": 1,
        "tx_type": 2,
        "from": "0x" + "11" * 20,
        "to": "0x" + "22" * 20,
        "value": "1000000000000000000",
        "nonce": 0,
        "gas": 21000,
        "gas_price": "30000000000",
        "gas_tip_cap": "1000000000",
        "gas_fee_cap": "30000000000",
        "data_size": 0,
        "data_4bytes": "",
        "input": "0x",
        "raw_tx": None,  # no signed bytes behind a fake hash: the keccak check counts, not fails, such rows
        "source": source,
        "collector_id": collector_id,
    }
    row.update(fields)
    return row


def tx_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=LANDING_TX_SCHEMA)


def sourcelog_frame(rows: list[tuple[int, str, str]], collector_id: str = "c1") -> pl.DataFrame:
    return pl.DataFrame(
        [{"timestamp_ms": t, "hash": h, "source": s, "collector_id": collector_id} for t, h, s in rows],
        schema=SOURCELOG_SCHEMA,
    )


def fake_hash(i: int) -> str:
    return "0x" + f"{i:064x}"


def write_window(zone, window: str, n: int, collector_id: str = "c1", seq: int = 1, sources=("a",), seal=True, offset=0):
    """Write ``n`` transactions seen by ``sources`` (10 ms apart, in order) into ``window``."""
    start = key_start_ms(window)
    rows, log = [], []
    for i in range(n):
        h = fake_hash(offset + i + 1)
        ts = start + 100 + i
        rows.append(tx_row(h, ts, sources[0], collector_id))
        for j, src in enumerate(sources):
            log.append((ts + 10 * j, h, src))
    zone.write_segment("mempool", window, collector_id, seq, tx_frame(rows))
    zone.write_segment("sourcelog", window, collector_id, seq, sourcelog_frame(log, collector_id))
    if seal:
        zone.mark_sealed(window, collector_id)
    return [r["hash"] for r in rows]
