"""Tests for mev_assets.core.fee_features.

Expected values come from real mainnet blocks (a parent header must predict its child's base
fee; a mined transaction's ``gasPrice`` is its effective gas price) or are worked out by hand
from EIP-1559 in the comments: never from the code under test.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from mev_assets.core.fee_features import (
    BASE_FEE_TIMELINE_SCHEMA,
    FEE_FEATURES_SCHEMA,
    FeeFeaturesInputError,
    base_fee_timeline,
    fee_features,
)
from mev_assets.core.schemas import BLOCKS_SCHEMA, MEMPOOL_TRANSACTIONS_SCHEMA
from mev_assets.core.txparse import transaction_from_rpc, transaction_to_row
from mev_assets.core.windows import WindowKeyError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mainnet"
# the project's shared data set (see its README); the full 15537394 block is 1.5 MB, so it is
# read in place rather than copied
SHARED_MAINNET = Path(__file__).resolve().parents[3] / "shared" / "data" / "mainnet"

WINDOW = "2024-05-06T00:00:00"
GWEI = 10**9

# Mainnet block 15537393 (the last proof-of-work block), fields verbatim from
# ../shared/data/mainnet/block-15537394-prestate.json.gz (risc0/zeth, Apache-2.0), and the
# baseFeePerGas of its child 15537394.
PARENT_15537393 = {"number": "0xed14f1", "gasLimit": "0x1c9c380", "gasUsed": "0x1c9a205", "baseFeePerGas": "0xa1a4e5f06"}
CHILD_15537394_BASE_FEE = "0xb5d68e0a3"


def q(x: str) -> int:
    return int(x, 16)


# --------------------------------------------------------------------------------------
# frame builders


def head(received_ms, number, base_fee, gas_used=15_000_000, gas_limit=30_000_000, block_hash=None, source="s1"):
    return {
        "received_ms": received_ms,
        "number": number,
        "hash": block_hash or f"0x{number:064x}",
        "parent_hash": f"0x{number - 1:064x}",
        "timestamp": received_ms // 1000,
        "base_fee_per_gas": None if base_fee is None else str(base_fee),
        "gas_used": gas_used,
        "gas_limit": gas_limit,
        "tx_hashes": [],
        "source": source,
        "collector_id": "c1",
    }


def blocks(*rows) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=BLOCKS_SCHEMA)


def tx(hash_, *, ts=1_000, tx_type=2, sender="0xaa", to="0xbb", value="0", nonce=0, gas=21_000,
       max_fee=None, tip=None, gas_price=None, data_size=0):
    """A mempool_transactions row; fee fields filled the way core/txparse fills them."""
    if tx_type < 2:
        gas_price = str(gas_price)
        max_fee = tip = gas_price
    else:
        max_fee, tip = str(max_fee), str(tip)
        gas_price = max_fee
    return {
        "window": WINDOW, "timestamp_ms": ts, "hash": hash_, "chain_id": 1, "tx_type": tx_type, "from": sender,
        "to": to, "value": value, "nonce": nonce, "gas": gas, "gas_price": gas_price, "gas_tip_cap": tip,
        "gas_fee_cap": max_fee, "data_size": data_size, "data_4bytes": "", "sources": ["s1"], "input": "0x",
        "raw_tx": "0x",
    }


def txs(*rows) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=MEMPOOL_TRANSACTIONS_SCHEMA)


def by_hash(frame: pl.DataFrame) -> dict[str, dict]:
    return {row["hash"]: row for row in frame.to_dicts()}


def at_target(received_ms, base_fee, number=100):
    """A head whose gas used equals its target: EIP-1559 keeps the base fee for the child."""
    return head(received_ms, number, base_fee, gas_used=15_000_000, gas_limit=30_000_000)


def rpc_rows(rpc_txs: list[dict], ts: int = 10_000) -> pl.DataFrame:
    """mempool_transactions rows for node JSON transactions, parsed by the pipeline's own parser."""
    rows = []
    for obj in rpc_txs:
        row = transaction_to_row(transaction_from_rpc(obj))
        rows.append({**row, "window": WINDOW, "timestamp_ms": ts, "sources": ["s1"]})
    return pl.DataFrame(rows, schema=MEMPOOL_TRANSACTIONS_SCHEMA)


# --------------------------------------------------------------------------------------
# EIP-1559 prediction


def test_parent_header_predicts_the_mainnet_child_base_fee_exactly():
    parent = head(1_000, q(PARENT_15537393["number"]), q(PARENT_15537393["baseFeePerGas"]),
                  gas_used=q(PARENT_15537393["gasUsed"]), gas_limit=q(PARENT_15537393["gasLimit"]))
    timeline = base_fee_timeline(blocks(parent))
    assert timeline.schema == pl.Schema(BASE_FEE_TIMELINE_SCHEMA)
    assert timeline.row(0, named=True) == {
        "received_ms": 1_000,
        "number": 15537393,
        "base_fee_per_gas": q(PARENT_15537393["baseFeePerGas"]),
        "next_base_fee_per_gas": q(CHILD_15537394_BASE_FEE),
    }


@pytest.mark.parametrize(
    "base_fee, gas_used, gas_limit, expected",
    [
        (GWEI, 15_000_000, 30_000_000, GWEI),  # at target: unchanged
        (GWEI, 30_000_000, 30_000_000, 1_125_000_000),  # full block: +1/8
        (GWEI, 0, 30_000_000, 875_000_000),  # empty block: -1/8
        (GWEI, 22_500_000, 30_000_000, 1_062_500_000),  # halfway above target: +1/16
        (10, 15_000_001, 30_000_000, 11),  # the rise rounds to 0 wei: at least 1 wei up
        (7, 0, 30_000_000, 7),  # 7 * 1 // 8 == 0: the fall rounds to nothing
        (GWEI, 0, 1, None),  # gas target 0: no prediction instead of a division by zero
        (None, 0, 30_000_000, None),  # pre-London head without a base fee
        (2**64, 30_000_000, 30_000_000, None),  # absurd base fee: null, never a wrapped Int128
    ],
)
def test_next_base_fee_follows_eip1559(base_fee, gas_used, gas_limit, expected):
    timeline = base_fee_timeline(blocks(head(1, 5, base_fee, gas_used=gas_used, gas_limit=gas_limit)))
    assert timeline["next_base_fee_per_gas"].to_list() == [expected]


def test_timeline_keeps_the_first_receipt_of_a_block_and_the_last_block_of_a_height():
    frame = blocks(
        head(1_050, 10, GWEI, source="s2"),  # the same block 10, announced later by a second source
        head(1_000, 10, GWEI, source="s1"),
        head(2_000, 11, GWEI, block_hash="0x" + "11" * 32),  # block 11 ...
        head(2_500, 11, 2 * GWEI, block_hash="0x" + "12" * 32),  # ... reorged out by another block 11
    )
    timeline = base_fee_timeline(frame)
    assert timeline.select("received_ms", "number", "base_fee_per_gas").rows() == [
        (1_000, 10, GWEI),
        (2_500, 11, 2 * GWEI),
    ]


def test_timeline_of_no_blocks_is_empty_with_its_schema():
    timeline = base_fee_timeline(blocks())
    assert timeline.height == 0 and timeline.schema == pl.Schema(BASE_FEE_TIMELINE_SCHEMA)


def test_timeline_names_missing_columns():
    with pytest.raises(FeeFeaturesInputError, match="gas_used"):
        base_fee_timeline(blocks().drop("gas_used"))


# --------------------------------------------------------------------------------------
# real mainnet transactions: a mined tx's gasPrice is its effective gas price


def test_effective_tip_of_mainnet_block_19807080_equals_the_price_it_paid():
    block = json.loads((FIXTURES / "block-19807080.json").read_text())[0]
    base_fee = q(block["baseFeePerGas"])
    features = by_hash(fee_features(rpc_rows(block["transactions"]), blocks(at_target(1_000, base_fee)), WINDOW))
    types = set()
    for obj in block["transactions"]:
        row = features[obj["hash"]]
        types.add(obj["type"])
        assert row["base_fee_per_gas"] == str(base_fee)
        assert int(row["effective_tip_per_gas"]) == q(obj["gasPrice"]) - base_fee
        assert row["underpriced"] is False
        assert row["max_fee_per_gas"] == str(q(obj.get("maxFeePerGas", obj["gasPrice"])))
    assert types == {"0x0", "0x2"}
    # one type-2 tx's fee cap leaves exactly its tip above the base fee (it pays its whole cap),
    # one tips nothing
    capped = block["transactions"][7]
    assert q(capped["maxPriorityFeePerGas"]) == q(capped["maxFeePerGas"]) - base_fee
    assert features[capped["hash"]]["effective_tip_per_gas"] == str(q(capped["maxFeePerGas"]) - base_fee)
    assert features[block["transactions"][8]["hash"]]["effective_tip_per_gas"] == "0"


@pytest.mark.skipif(not (SHARED_MAINNET / "block-15537394-prestate.json.gz").exists(),
                    reason="the shared mainnet data set is not mounted at ../shared/data/mainnet")
def test_first_post_merge_block_from_its_parent_header():
    """Every tx of 15537394, seen under head 15537393: the predicted base fee is the child's and
    each effective tip equals what the tx paid above it."""
    with gzip.open(SHARED_MAINNET / "block-15537394-prestate.json.gz") as fh:
        full_blocks = {entry[0]["block_no"]: entry[1] for entry in json.load(fh)["full_blocks"]}
    parent, child = full_blocks[15537393], full_blocks[15537394]
    assert {k: parent[k] for k in PARENT_15537393} == PARENT_15537393  # the constants above are verbatim
    parent_head = head(1_000, q(parent["number"]), q(parent["baseFeePerGas"]),
                       gas_used=q(parent["gasUsed"]), gas_limit=q(parent["gasLimit"]))
    child_base_fee = q(child["baseFeePerGas"])
    features = fee_features(rpc_rows(child["transactions"]), blocks(parent_head), WINDOW)
    assert features.height == len(child["transactions"]) == 80
    assert set(features["base_fee_per_gas"]) == {str(child_base_fee)}
    paid = {t["hash"]: q(t["gasPrice"]) - child_base_fee for t in child["transactions"]}
    assert {h: int(e) for h, e in features.select("hash", "effective_tip_per_gas").rows()} == paid
    assert features["is_contract_creation"].sum() == sum(t["to"] is None for t in child["transactions"]) == 1
    # the top-ranked tx pays the highest effective tip of the block
    top = features.filter(pl.col("fee_rank") == 1)["hash"].item()
    assert paid[top] == max(paid.values())


# --------------------------------------------------------------------------------------
# effective tip, underpriced, base fee as of arrival


def test_effective_tip_for_legacy_and_dynamic_fee_types():
    base = 100 * GWEI
    frame = txs(
        tx("legacy_above", tx_type=0, gas_price=120 * GWEI),  # 120 - 100 = 20
        tx("type1_below", tx_type=1, gas_price=90 * GWEI),  # 90 - 100 = -10: cannot be included
        tx("t2_full_tip", max_fee=150 * GWEI, tip=2 * GWEI),  # min(2, 150 - 100) = 2
        tx("t2_capped", max_fee=101 * GWEI, tip=5 * GWEI),  # min(5, 101 - 100) = 1
        tx("t2_below", max_fee=99 * GWEI, tip=5 * GWEI),  # min(5, 99 - 100) = -1
        tx("t3_exact", tx_type=3, max_fee=100 * GWEI, tip=3 * GWEI),  # min(3, 0) = 0, includable
    )
    out = by_hash(fee_features(frame, blocks(at_target(500, base)), WINDOW))
    expected = {"legacy_above": (20, False), "type1_below": (-10, True), "t2_full_tip": (2, False),
                "t2_capped": (1, False), "t2_below": (-1, True), "t3_exact": (0, False)}
    for h, (tip_gwei, underpriced) in expected.items():
        assert out[h]["effective_tip_per_gas"] == str(tip_gwei * GWEI), h
        assert out[h]["effective_tip_gwei"] == tip_gwei
        assert out[h]["underpriced"] is underpriced, h
        assert out[h]["base_fee_per_gas"] == str(base) and out[h]["base_fee_gwei"] == 100.0
    assert out["legacy_above"]["max_fee_per_gas"] == out["legacy_above"]["max_priority_fee_per_gas"] == str(120 * GWEI)
    assert (out["t2_capped"]["max_fee_gwei"], out["t2_capped"]["tip_gwei"]) == (101.0, 5.0)


def test_base_fee_is_the_prediction_of_the_latest_head_received_by_then():
    frame = txs(
        tx("before_any_head", ts=999, max_fee=50 * GWEI, tip=GWEI),
        tx("with_the_first_head", ts=1_000, max_fee=50 * GWEI, tip=GWEI),
        tx("between", ts=1_500, max_fee=50 * GWEI, tip=GWEI),
        tx("after_the_second", ts=2_000, max_fee=50 * GWEI, tip=GWEI),
    )
    heads = blocks(
        # from the previous window: received before any tx of this one; full, so +1/8 => 9 gwei
        head(1_000, 7, 8 * GWEI, gas_used=30_000_000),
        # empty, so -1/8 => 35 gwei
        head(2_000, 8, 40 * GWEI, gas_used=0),
        # received after every tx: nobody saw it
        head(3_000, 9, 80 * GWEI),
    )
    out = by_hash(fee_features(frame, heads, WINDOW))
    assert out["before_any_head"]["base_fee_per_gas"] is None
    assert out["before_any_head"]["effective_tip_per_gas"] is None and out["before_any_head"]["underpriced"] is None
    assert out["with_the_first_head"]["base_fee_per_gas"] == str(9 * GWEI)
    assert out["between"]["base_fee_per_gas"] == str(9 * GWEI)
    assert out["after_the_second"]["base_fee_per_gas"] == str(35 * GWEI)
    assert out["after_the_second"]["effective_tip_per_gas"] == str(GWEI)


# --------------------------------------------------------------------------------------
# ranks


def test_fee_rank_orders_by_effective_tip_then_arrival_then_hash():
    frame = txs(
        tx("0xc", ts=3, max_fee=200 * GWEI, tip=2 * GWEI),  # effective 2
        tx("0xb", ts=1, max_fee=102 * GWEI, tip=9 * GWEI),  # effective 2, earlier: ahead of 0xc
        tx("0xa", ts=1, tx_type=0, gas_price=102 * GWEI),  # effective 2, same time, lower hash: first
        tx("0xd", ts=0, max_fee=300 * GWEI, tip=7 * GWEI),  # effective 7: top
        tx("0xe", ts=0, max_fee=50 * GWEI, tip=1 * GWEI),  # effective -50: bottom
    )
    out = fee_features(frame, blocks(at_target(0, 100 * GWEI)), WINDOW)
    assert out["hash"].to_list() == ["0xc", "0xb", "0xa", "0xd", "0xe"]  # input order kept
    ranks = dict(out.select("hash", "fee_rank").rows())
    assert ranks == {"0xd": 1, "0xa": 2, "0xb": 3, "0xc": 4, "0xe": 5}
    pct = dict(out.select("hash", "fee_percentile").rows())
    # share of the 4 other txs paying strictly less: ties share a percentile
    assert pct == {"0xd": 1.0, "0xa": 0.25, "0xb": 0.25, "0xc": 0.25, "0xe": 0.0}


def test_fee_rank_uses_the_tip_without_a_base_fee_and_ranks_unusable_fees_last():
    frame = txs(
        tx("low_tip", ts=1, max_fee=500 * GWEI, tip=1 * GWEI),
        tx("high_tip", ts=2, max_fee=20 * GWEI, tip=3 * GWEI),
        tx("absurd_cap", ts=0, max_fee=2**256 - 1, tip=2**256 - 1),
    )
    out = by_hash(fee_features(frame, blocks(), WINDOW))
    assert [out[h]["fee_rank"] for h in ("high_tip", "low_tip", "absurd_cap")] == [1, 2, 3]
    assert [out[h]["fee_percentile"] for h in ("high_tip", "low_tip", "absurd_cap")] == [1.0, 0.0, None]


def test_a_lone_tx_is_at_the_top():
    out = fee_features(txs(tx("only", max_fee=GWEI, tip=GWEI)), blocks(), WINDOW)
    assert out.select("fee_rank", "fee_percentile").row(0) == (1, 1.0)


# --------------------------------------------------------------------------------------
# sender context


def test_nonce_gaps_positions_and_replacements():
    a, b = "0xaaaa", "0xbbbb"
    frame = txs(
        tx("a5", ts=10, sender=a, nonce=5, max_fee=GWEI, tip=1),
        tx("a6", ts=11, sender=a, nonce=6, max_fee=GWEI, tip=1),
        tx("a8", ts=12, sender=a, nonce=8, max_fee=GWEI, tip=1),
        tx("a6_bump", ts=13, sender=a, nonce=6, max_fee=2 * GWEI, tip=2),  # replaces a6
        tx("a6_same_ms_y", ts=13, sender=a, nonce=6, max_fee=2 * GWEI, tip=3),  # same ms, sorts after a6_bump
        tx("b0", ts=5, sender=b, nonce=0, max_fee=GWEI, tip=1),
        tx("a4_late", ts=20, sender=a, nonce=4, max_fee=GWEI, tip=1),  # lower nonce arriving last
    )
    out = by_hash(fee_features(frame, blocks(), WINDOW))
    got = {h: (r["sender_pending_count"], r["sender_nonce_rank"], r["nonce_gap"], r["is_replacement"])
           for h, r in out.items()}
    assert got == {
        "a4_late": (6, 1, None, False),
        "a5": (6, 2, 0, False),
        "a6": (6, 3, 0, False),
        "a6_bump": (6, 3, 0, True),
        "a6_same_ms_y": (6, 3, 0, True),
        "a8": (6, 4, 1, False),  # nonce 7 missing
        "b0": (1, 1, None, False),
    }


def test_extreme_nonces_do_not_wrap():
    frame = txs(
        tx("n0", sender="0xcc", nonce=0, max_fee=GWEI, tip=1),
        tx("nmax", sender="0xcc", nonce=2**64 - 1, max_fee=GWEI, tip=1),
    )
    out = by_hash(fee_features(frame, blocks(), WINDOW))
    assert out["nmax"]["nonce_gap"] is None  # 2**64 - 2 does not fit Int64: null rather than wrapped
    assert out["nmax"]["sender_nonce_rank"] == 2


# --------------------------------------------------------------------------------------
# plain context columns, huge values, empty and bad input


def test_value_size_creation_and_gas_columns():
    frame = txs(
        tx("create", to=None, value=str(15 * 10**17), data_size=4_321, gas=1_234_567, max_fee=GWEI, tip=1),
        tx("transfer", value="1", max_fee=GWEI, tip=1),
    )
    out = by_hash(fee_features(frame, blocks(), WINDOW))
    assert (out["create"]["value_wei"], out["create"]["value_eth"]) == (str(15 * 10**17), 1.5)
    assert out["create"]["is_contract_creation"] is True and out["transfer"]["is_contract_creation"] is False
    assert (out["create"]["data_size"], out["create"]["gas_limit"]) == (4_321, 1_234_567)
    assert out["transfer"]["value_eth"] == 1e-18


def test_amounts_beyond_int128_keep_their_strings_and_null_their_numbers():
    huge = str(2**256 - 1)
    frame = txs(
        tx("huge_value", value=str(2**200), max_fee=50 * GWEI, tip=GWEI),
        tx("huge_cap", max_fee=huge, tip=GWEI),
        tx("largest_fitting", value=str(2**127 - 1), max_fee=50 * GWEI, tip=GWEI),
        tx("just_over", value=str(2**127), max_fee=50 * GWEI, tip=GWEI),
        tx("supply_sized", value=str(120_000_000 * 10**18), max_fee=50 * GWEI, tip=GWEI),
    )
    out = by_hash(fee_features(frame, blocks(at_target(0, 10 * GWEI)), WINDOW))
    assert out["huge_value"]["value_wei"] == str(2**200) and out["huge_value"]["value_eth"] is None
    assert out["huge_value"]["amount_out_of_range"] is True
    assert out["huge_value"]["effective_tip_per_gas"] == str(GWEI)  # its fees are fine
    cap = out["huge_cap"]
    assert cap["max_fee_per_gas"] == huge and cap["amount_out_of_range"] is True
    assert cap["max_fee_gwei"] is None and cap["effective_tip_per_gas"] is None and cap["underpriced"] is None
    assert cap["tip_gwei"] == 1.0
    assert out["largest_fitting"]["amount_out_of_range"] is False
    assert out["largest_fitting"]["value_eth"] == pytest.approx((2**127 - 1) / 10**18)
    assert out["just_over"]["amount_out_of_range"] is True
    assert out["supply_sized"]["value_eth"] == 120_000_000.0 and out["supply_sized"]["amount_out_of_range"] is False


def test_garbage_amounts_are_flagged_not_fatal():
    row = tx("bad", max_fee=GWEI, tip=1)
    row.update(value="12abc", gas_tip_cap="-5")
    out = fee_features(txs(row), blocks(at_target(0, 1)), WINDOW).row(0, named=True)
    assert out["amount_out_of_range"] is True
    assert out["value_wei"] == "12abc" and out["value_eth"] is None
    assert out["max_priority_fee_per_gas"] == "-5" and out["effective_tip_per_gas"] is None


def test_empty_inputs():
    out = fee_features(txs(), blocks(), WINDOW)
    assert out.height == 0 and out.schema == pl.Schema(FEE_FEATURES_SCHEMA)
    out = fee_features(txs(tx("x", max_fee=GWEI, tip=1)), blocks(), WINDOW)
    assert out.schema == pl.Schema(FEE_FEATURES_SCHEMA)
    assert out.select("base_fee_per_gas", "effective_tip_per_gas", "underpriced").row(0) == (None, None, None)


def test_bad_input_gets_a_clear_error():
    frame = txs(tx("x", max_fee=GWEI, tip=1))
    with pytest.raises(FeeFeaturesInputError, match="gas_fee_cap"):
        fee_features(frame.drop("gas_fee_cap"), blocks(), WINDOW)
    with pytest.raises(FeeFeaturesInputError, match="2024-05-06T00:01:00"):
        fee_features(frame.with_columns(window=pl.lit("2024-05-06T00:01:00")), blocks(), WINDOW)
    with pytest.raises(WindowKeyError):
        fee_features(frame, blocks(), "yesterday")
    with pytest.raises(FeeFeaturesInputError, match="timestamp_ms"):
        fee_features(frame.with_columns(timestamp_ms=pl.lit(None, pl.Int64)), blocks(), WINDOW)
