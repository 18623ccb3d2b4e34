"""Fee and context features of a window's transactions (part of ``tx_features``).

A pending transaction competes for the *next* block, so its fees are measured against the base
fee of the pending block: the EIP-1559 prediction from the latest head the collector had
received when the transaction arrived (an as-of join on the collector's own clock). Ranks and
sender context are computed within the window with polars window functions.

Wei amounts arrive as decimal strings (they can reach 2**256). Exact arithmetic runs on Int128,
which holds every amount a valid transaction can carry (a fee cap above ~6e21 wei could never be
paid for with all the ether in existence); an amount that does not fit, or is not a decimal
integer, keeps its string, gets null numeric features and sets ``amount_out_of_range``.

Columns of :func:`fee_features` (one row per input transaction, input order):

=========================  =========  ==================================================================
column                     type       meaning
=========================  =========  ==================================================================
hash                       String     transaction hash (join key with the calldata features)
max_fee_per_gas            String     wei; ``maxFeePerGas`` for type >= 2, ``gasPrice`` for types 0/1
max_priority_fee_per_gas   String     wei; ``maxPriorityFeePerGas`` for type >= 2, ``gasPrice`` for 0/1
max_fee_gwei               Float64    max_fee_per_gas in gwei
tip_gwei                   Float64    max_priority_fee_per_gas in gwei
base_fee_per_gas           String     wei; base fee of the pending block the tx competes for: the
                                      EIP-1559 prediction from the latest head received at or before
                                      the tx's ``timestamp_ms``; null when no head was known then
base_fee_gwei              Float64    base_fee_per_gas in gwei
effective_tip_per_gas      String     wei per gas the block producer would earn at that base fee:
                                      ``min(tip, max_fee - base_fee)`` for type >= 2,
                                      ``gas_price - base_fee`` for types 0/1; negative when the tx
                                      cannot be included at that base fee; null without a base fee
effective_tip_gwei         Float64    effective_tip_per_gas in gwei
underpriced                Boolean    max fee below the base fee (not includable in the pending block);
                                      null without a base fee
fee_rank                   Int64      1 = highest effective tip in the window (the tip where the base
                                      fee is unknown); ties: earliest ``timestamp_ms``, then hash;
                                      rows without a usable fee rank last
fee_percentile             Float64    share of the window's other txs (with a usable fee) paying a
                                      strictly lower effective tip: 1 = top, 0 = bottom, ties equal;
                                      1 for a lone tx; null without a usable fee
value_wei                  String     value transferred, wei
value_eth                  Float64    value in ether
data_size                  Int64      calldata bytes
is_contract_creation       Boolean    ``to`` is null
gas_limit                  UInt64     the tx's gas limit
sender_pending_count       Int64      txs (rows, replacements included) from the same sender in the window
sender_nonce_rank          Int64      position of this nonce among the sender's distinct nonces in the
                                      window, 1 = lowest (a replacement shares its original's position)
nonce_gap                  Int64      nonce - previous distinct nonce of the sender in the window - 1:
                                      0 when consecutive; null for the sender's lowest nonce
is_replacement             Boolean    an earlier tx (by ``timestamp_ms``, then hash) in the window has the
                                      same sender and nonce
amount_out_of_range        Boolean    value / max fee / tip is not a decimal integer in [0, 2**127):
                                      its string is kept, its numeric features are null
=========================  =========  ==================================================================
"""

from __future__ import annotations

import polars as pl

from mev_assets.core.schemas import BLOCKS_SCHEMA, MEMPOOL_TRANSACTIONS_SCHEMA
from mev_assets.core.windows import key_start_ms

# EIP-1559 constants (London): the gas target is half the gas limit, and the base fee moves by at
# most 1/8 per block.
ELASTICITY_MULTIPLIER = 2
BASE_FEE_MAX_CHANGE_DENOMINATOR = 8

GWEI_DECIMALS = 9
ETH_DECIMALS = 18

# Products of a base fee below 2**64 and a gas delta below 2**63 stay inside Int128; any larger
# base fee (none has ever come near 2**40) gets no prediction rather than a wrapped one.
_MAX_PREDICTABLE_BASE_FEE = 2**64

BASE_FEE_TIMELINE_SCHEMA: dict[str, pl.DataType] = {
    "received_ms": pl.Int64(),
    "number": pl.Int64(),
    "base_fee_per_gas": pl.Int128(),
    "next_base_fee_per_gas": pl.Int128(),
}

FEE_FEATURES_SCHEMA: dict[str, pl.DataType] = {
    "hash": pl.String(),
    "max_fee_per_gas": pl.String(),
    "max_priority_fee_per_gas": pl.String(),
    "max_fee_gwei": pl.Float64(),
    "tip_gwei": pl.Float64(),
    "base_fee_per_gas": pl.String(),
    "base_fee_gwei": pl.Float64(),
    "effective_tip_per_gas": pl.String(),
    "effective_tip_gwei": pl.Float64(),
    "underpriced": pl.Boolean(),
    "fee_rank": pl.Int64(),
    "fee_percentile": pl.Float64(),
    "value_wei": pl.String(),
    "value_eth": pl.Float64(),
    "data_size": pl.Int64(),
    "is_contract_creation": pl.Boolean(),
    "gas_limit": pl.UInt64(),
    "sender_pending_count": pl.Int64(),
    "sender_nonce_rank": pl.Int64(),
    "nonce_gap": pl.Int64(),
    "is_replacement": pl.Boolean(),
    "amount_out_of_range": pl.Boolean(),
}

# The input columns this module reads, with the types of the landing and table schemas.
_BLOCK_COLUMNS: dict[str, pl.DataType] = {
    c: BLOCKS_SCHEMA[c] for c in ("received_ms", "number", "hash", "base_fee_per_gas", "gas_used", "gas_limit")
}
_TX_COLUMNS: dict[str, pl.DataType] = {
    c: MEMPOOL_TRANSACTIONS_SCHEMA[c]
    for c in (
        "timestamp_ms", "hash", "tx_type", "from", "to", "value", "nonce", "gas",
        "gas_price", "gas_tip_cap", "gas_fee_cap", "data_size",
    )
}


class FeeFeaturesInputError(ValueError):
    """The input frames cannot be turned into fee features (missing columns, wrong window...)."""


def _conform(frame: pl.DataFrame, columns: dict[str, pl.DataType], what: str) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeeFeaturesInputError(f"{what} frame lacks columns {missing} (has {frame.columns})")
    try:
        return frame.select([pl.col(c).cast(t) for c, t in columns.items()])
    except pl.exceptions.PolarsError as exc:
        raise FeeFeaturesInputError(f"{what} frame has a column of an unusable type: {exc}") from None


def _exact_wei(column: str) -> pl.Expr:
    """Decimal string -> Int128; null when absent, not a decimal integer, negative or >= 2**127."""
    parsed = pl.col(column).cast(pl.Int128, strict=False)
    return pl.when(parsed >= 0).then(parsed)


def _out_of_range(column: str) -> pl.Expr:
    return pl.col(column).is_not_null() & _exact_wei(column).is_null()


def next_base_fee(base_fee: pl.Expr, gas_used: pl.Expr, gas_limit: pl.Expr) -> pl.Expr:
    """EIP-1559: the base fee of the child of a block with these fields (Int128; null when unknown).

    Same integer steps as geth's ``CalcBaseFee``: the change is ``base * |used - target| // target
    // 8``, at least 1 wei upwards, with ``target = gas_limit // 2``."""
    base = base_fee.cast(pl.Int128)
    used = gas_used.cast(pl.Int128)
    target = (gas_limit // ELASTICITY_MULTIPLIER).cast(pl.Int128)
    delta = used - target
    change = base * delta.abs() // target // BASE_FEE_MAX_CHANGE_DENOMINATOR
    predictable = (base >= 0) & (base < _MAX_PREDICTABLE_BASE_FEE) & (target > 0) & (used >= 0)
    return (
        pl.when(~predictable)
        .then(pl.lit(None, pl.Int128))
        .when(delta > 0)
        .then(base + pl.max_horizontal(change, pl.lit(1, pl.Int128)))
        .when(delta < 0)
        .then(base - change)
        .otherwise(base)
    )


def base_fee_timeline(blocks: pl.DataFrame) -> pl.DataFrame:
    """Heads in the order the collector(s) received them, each with the base fee it predicts.

    ``blocks`` are landing ``blocks`` rows (``BLOCKS_SCHEMA``) of any windows, sources and
    collectors. A block seen several times counts from its first receipt; when several blocks
    share a number (a reorg) the one received last stays. Columns: ``received_ms``, ``number``,
    ``base_fee_per_gas`` and ``next_base_fee_per_gas`` (Int128 wei; null for a head without a base
    fee, pre-London, or with fields out of range), sorted by ``received_ms``."""
    heads = _conform(blocks, _BLOCK_COLUMNS, "blocks").filter(
        pl.col("hash").is_not_null() & pl.col("received_ms").is_not_null() & pl.col("number").is_not_null()
    )
    heads = (
        heads.sort(["received_ms", "hash"])
        .unique("hash", keep="first", maintain_order=True)
        .unique("number", keep="last", maintain_order=True)
        .with_columns(base_fee_per_gas=_exact_wei("base_fee_per_gas"))
    )
    return heads.select(
        "received_ms",
        "number",
        "base_fee_per_gas",
        next_base_fee_per_gas=next_base_fee(pl.col("base_fee_per_gas"), pl.col("gas_used"), pl.col("gas_limit")),
    ).sort(["received_ms", "number"])


def _scaled(wei: pl.Expr, decimals: int) -> pl.Expr:
    """Exact integer wei -> Float64 in gwei/ether, correctly rounded.

    Parsing ``"<digits>e-9"`` rounds once; polars' float division by a literal multiplies by the
    reciprocal and turns 60 gwei into 60.00000000000001."""
    return (wei.cast(pl.String) + f"e-{decimals}").cast(pl.Float64)


def _gwei(wei: pl.Expr) -> pl.Expr:
    return _scaled(wei, GWEI_DECIMALS)


def fee_features(txs: pl.DataFrame, blocks: pl.DataFrame, window: str) -> pl.DataFrame:
    """Fee and context features of the transactions of one window (see the module docstring).

    ``txs`` are ``mempool_transactions`` rows of window ``window``; ``blocks`` are landing heads
    of that window and the one(s) before it, so the first transactions of the window know the
    head they arrived under (may be empty: base-fee features are then null). Raises
    :class:`FeeFeaturesInputError` for missing columns or rows of another window."""
    key_start_ms(window)  # a clear error for a malformed key
    if "window" in txs.columns:
        foreign = txs.filter(pl.col("window") != window)["window"].unique().sort().to_list()
        if foreign:
            raise FeeFeaturesInputError(f"txs of window {window!r} include rows of windows {foreign[:5]}")
    frame = _conform(txs, _TX_COLUMNS, "txs").with_row_index("_row")
    if frame["timestamp_ms"].null_count():
        raise FeeFeaturesInputError("txs has rows without timestamp_ms; a tx needs its arrival time to find its head")

    legacy_pricing = pl.col("tx_type") < 2  # types 0 and 1 pay gasPrice; 2, 3, 4 use fee cap + tip
    frame = frame.with_columns(
        max_fee_per_gas=pl.when(legacy_pricing).then(pl.col("gas_price")).otherwise(pl.col("gas_fee_cap")),
        max_priority_fee_per_gas=pl.when(legacy_pricing).then(pl.col("gas_price")).otherwise(pl.col("gas_tip_cap")),
    ).with_columns(
        _max_fee=_exact_wei("max_fee_per_gas"),
        _tip=_exact_wei("max_priority_fee_per_gas"),
        _value=_exact_wei("value"),
        amount_out_of_range=(
            _out_of_range("max_fee_per_gas") | _out_of_range("max_priority_fee_per_gas") | _out_of_range("value")
        ),
    )

    # the pending block's base fee as the tx saw it: prediction of the latest head received so far
    timeline = base_fee_timeline(blocks).select("received_ms", _base_fee=pl.col("next_base_fee_per_gas"))
    frame = frame.sort("timestamp_ms").join_asof(
        timeline, left_on="timestamp_ms", right_on="received_ms", strategy="backward"
    )

    base = pl.col("_base_fee")
    frame = frame.with_columns(
        # min_horizontal skips nulls: guard so an unknown base fee or fee cap gives no tip at all
        _effective_tip=pl.when(base.is_null() | pl.col("_max_fee").is_null() | pl.col("_tip").is_null())
        .then(pl.lit(None, pl.Int128))
        .when(legacy_pricing)
        .then(pl.col("_max_fee") - base)
        .otherwise(pl.min_horizontal(pl.col("_tip"), pl.col("_max_fee") - base)),
        underpriced=pl.col("_max_fee") < base,
    ).with_columns(
        _fee_key=pl.when(base.is_null()).then(pl.col("_tip")).otherwise(pl.col("_effective_tip")),
    )

    usable = pl.col("_fee_key").count()
    frame = frame.with_columns(
        # sorting on a dense UInt32 rank of the Int128 key is several times faster than on the key
        _fee_order=pl.col("_fee_key").rank("dense", descending=True),
        fee_percentile=pl.when(usable > 1)
        .then((pl.col("_fee_key").rank("min") - 1).cast(pl.Float64) / (usable - 1).cast(pl.Float64))
        .when(pl.col("_fee_key").is_not_null())
        .then(pl.lit(1.0)),
    ).with_columns(
        fee_rank=pl.arg_sort_by(["_fee_order", "timestamp_ms", "hash"], nulls_last=True).arg_sort().cast(pl.Int64) + 1,
    )

    frame = frame.join(_sender_context(frame), on="_row", how="left")
    return frame.sort("_row").select(
        "hash",
        "max_fee_per_gas",
        "max_priority_fee_per_gas",
        max_fee_gwei=_gwei(pl.col("_max_fee")),
        tip_gwei=_gwei(pl.col("_tip")),
        base_fee_per_gas=base.cast(pl.String),
        base_fee_gwei=_gwei(base),
        effective_tip_per_gas=pl.col("_effective_tip").cast(pl.String),
        effective_tip_gwei=_gwei(pl.col("_effective_tip")),
        underpriced="underpriced",
        fee_rank="fee_rank",
        fee_percentile="fee_percentile",
        value_wei="value",
        value_eth=_scaled(pl.col("_value"), ETH_DECIMALS),
        data_size="data_size",
        is_contract_creation=pl.col("to").is_null(),
        gas_limit="gas",
        sender_pending_count="sender_pending_count",
        sender_nonce_rank="sender_nonce_rank",
        nonce_gap="nonce_gap",
        is_replacement="is_replacement",
        amount_out_of_range="amount_out_of_range",
    ).cast(FEE_FEATURES_SCHEMA)


def _sender_context(frame: pl.DataFrame) -> pl.DataFrame:
    """Per row (``_row``): the sender's tx count, nonce position, nonce gap and replacement flag.

    One sort by sender, nonce, arrival, hash; everything else compares each row with the one
    before it. Sorting on a 64-bit hash of the sender first (the sender itself only breaks its
    collisions) avoids a slow sort on the address strings; the sender's rows stay contiguous."""
    ordered = frame.select("_row", "from", "nonce", "timestamp_ms", "hash").sort(
        [pl.col("from").hash(), "from", "nonce", "timestamp_ms", "hash"], nulls_last=True
    )
    same_sender = pl.col("from").eq_missing(pl.col("from").shift(1)).fill_null(False)
    same_nonce = same_sender & pl.col("nonce").eq_missing(pl.col("nonce").shift(1)).fill_null(False)
    # first row of each (sender, nonce): its gap to the previous nonce row; -1 marks "no previous
    # nonce" (a real gap is >= 0), replacements inherit their original's value by forward fill
    gap_at_first = (
        pl.when(same_sender)
        .then(pl.col("nonce").cast(pl.Int128) - pl.col("nonce").shift(1).cast(pl.Int128) - 1)
        .otherwise(pl.lit(-1, pl.Int128))
    )
    return (
        ordered.with_columns(
            _sender_start=~same_sender,
            is_replacement=same_nonce,
            _gap=pl.when(same_nonce).then(pl.lit(None, pl.Int128)).otherwise(gap_at_first).forward_fill(),
            _distinct_nonces=(~same_nonce).cast(pl.Int64).cum_sum(),
        )
        .with_columns(
            _sender_id=pl.col("_sender_start").cast(pl.Int64).cum_sum(),
            sender_nonce_rank=pl.col("_distinct_nonces")
            - pl.when("_sender_start").then(pl.col("_distinct_nonces")).forward_fill()
            + 1,
            nonce_gap=pl.when(pl.col("_gap") >= 0).then(pl.col("_gap")).cast(pl.Int64, strict=False),
        )
        .with_columns(sender_pending_count=pl.len().over("_sender_id").cast(pl.Int64))
        .select("_row", "sender_pending_count", "sender_nonce_rank", "nonce_gap", "is_replacement")
    )
