"""``tx_features``: what each pending transaction is and how it bids for inclusion."""

import math

import polars as pl
from dagster import AssetExecutionContext, MetadataValue

from mev_assets.assets.transactions import by_window, run_windows, window_table_asset
from mev_assets.core.calldata import decode_calldata
from mev_assets.core.fee_features import fee_features
from mev_assets.core.windows import key_for_start_ms, key_start_ms
from mev_assets.resources.clickhouse import ClickHouseResource
from mev_assets.resources.landing_zone import LandingZoneResource
from mev_assets.resources.registry import ProtocolRegistryResource

# Heads older than this before the window cannot be the head a pending tx saw (blocks are ~12 s).
HEAD_LOOKBACK_SECONDS = 60
IDENTITY_COLUMNS = ["window", "timestamp_ms", "hash", "from", "to", "tx_type", "nonce"]


def head_windows(window: str, window_seconds: int) -> list[str]:
    """This window and enough earlier ones to hold the latest head before its first tx."""
    back = math.ceil(HEAD_LOOKBACK_SECONDS / window_seconds)
    start = key_start_ms(window)
    return [key_for_start_ms(start - i * window_seconds * 1000) for i in range(back, -1, -1)]


def build_tx_features(txs: pl.DataFrame, blocks: pl.DataFrame, windows: str | list[str], registry) -> pl.DataFrame:
    """The features of ``txs`` (``mempool_transactions`` rows of ``windows``).

    Calldata is decoded for all windows at once (it does not depend on the window); fee features
    are per window, each against the heads its transactions arrived under."""
    windows = [windows] if isinstance(windows, str) else windows
    # decode_calldata keeps the input's row order, so the window column lines up
    decoded = decode_calldata(txs.select("hash", "from", "to", "value", "input"), registry).with_columns(txs["window"])
    fees = pl.concat(
        [fee_features(part, blocks, w).with_columns(window=pl.lit(w)) for w, part in by_window(txs, windows).items()],
        how="vertical",
    )
    keys = ["window", "hash"]
    return (
        txs.select(IDENTITY_COLUMNS)
        .join(decoded, on=keys, how="left")
        .join(fees, on=keys, how="left")
        .sort("window", "timestamp_ms", "hash")
    )


def decode_summary(table: pl.DataFrame) -> dict:
    total = max(table.height, 1)
    by_protocol = (
        table.filter(pl.col("decode_status") == "decoded")
        .group_by(pl.col("protocol").fill_null("(generic)"))
        .agg(pl.len().alias("n"))
        .sort("n", descending=True)
    )
    by_status = table.group_by("decode_status").agg(pl.len().alias("n")).sort("n", descending=True)
    return {
        "decoded_share_by_protocol": {p: round(n / total, 4) for p, n in by_protocol.iter_rows()},
        "status_share": {s: round(n / total, 4) for s, n in by_status.iter_rows()},
        "undecoded_share": round(
            table.filter(pl.col("decode_status").is_in(["unknown_selector", "error", "classified"])).height / total, 4
        ),
    }


@window_table_asset(group_name="features")
def tx_features(
    context: AssetExecutionContext,
    landing_zone: LandingZoneResource,
    protocol_registry: ProtocolRegistryResource,
    clickhouse: ClickHouseResource,
    mempool_transactions: pl.DataFrame,
) -> pl.DataFrame:
    """Per pending transaction: protocol, method and the swap it asks for (decoded with the
    config-driven protocol registry), and its fee bid against the window's base fee."""
    windows = run_windows(context)
    zone = landing_zone.zone()
    heads = sorted({key for w in windows for key in head_windows(w, landing_zone.window_seconds)})
    blocks = pl.concat([zone.read_area("blocks", key).frame for key in heads], how="vertical")
    table = build_tx_features(mempool_transactions, blocks, windows, protocol_registry.load())
    loaded = [clickhouse.load_window("tx_features", w, part) for w, part in by_window(table, windows).items()]
    summary = decode_summary(table)
    context.add_output_metadata(
        {
            **({"clickhouse_rows_loaded": sum(n or 0 for n in loaded)} if any(n is not None for n in loaded) else {}),
            "dagster/row_count": table.height,
            "windows": len(windows),
            "heads_seen": blocks.height,
            "undecoded_share": summary["undecoded_share"],
            "decoded_share_by_protocol": MetadataValue.json(summary["decoded_share_by_protocol"]),
            "decode_status_share": MetadataValue.json(summary["status_share"]),
        }
    )
    return table
