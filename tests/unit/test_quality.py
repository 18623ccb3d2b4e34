"""Each data-quality rule passes a good frame and fails its bad case with a message naming the rows."""

import polars as pl
from eth_account import Account

from mev_assets.core import ge_suites, quality
from mev_assets.core.schemas import MEMPOOL_SOURCE_STATS_SCHEMA, MEMPOOL_TRANSACTIONS_SCHEMA
from mev_assets.core.transactions import assemble_transactions
from mev_assets.core.windows import key_end_ms
from tests.landing_factory import sourcelog_frame, tx_frame, tx_row

WINDOW = "2026-01-01T00:00:00"
KEY = "0x" + "4c" * 32


def signed_table(n: int = 3, chain_id: int = 1) -> pl.DataFrame:
    rows = []
    for i in range(n):
        signed = Account.sign_transaction(
            {"type": 2, "chainId": chain_id, "nonce": i, "to": "0x" + "22" * 20, "value": 1, "gas": 21000,
             "maxFeePerGas": 3 * 10**10, "maxPriorityFeePerGas": 10**9, "data": b""}, KEY)
        rows.append(tx_row("0x" + signed.hash.hex().removeprefix("0x"), 1_767_225_600_000 + i, "a", chain_id=chain_id,
                           nonce=i, raw_tx="0x" + signed.raw_transaction.hex().removeprefix("0x")))
    return assemble_transactions(tx_frame(rows), sourcelog_frame([]), WINDOW)


def test_a_good_table_passes_every_rule():
    table = signed_table()
    for outcome in (
        quality.check_schema(table, MEMPOOL_TRANSACTIONS_SCHEMA),
        quality.check_unique(table),
        quality.check_not_null(table, ["window", "hash", "timestamp_ms"]),
        quality.check_value_ranges(table, 1),
        quality.check_hash_matches_raw(table),
        quality.check_matches_landing(table, table.select("window", "hash"), 1),
    ):
        assert outcome.passed, outcome.description
    assert quality.check_hash_matches_raw(table).metadata["verified"] == 3


def test_duplicate_hash_fails_with_the_hash():
    table = signed_table()
    doubled = pl.concat([table, table.head(1)])
    outcome = quality.check_unique(doubled)
    assert not outcome.passed and outcome.severity == quality.ERROR
    assert table["hash"][0] in outcome.description and "1 duplicated hash" in outcome.description


def test_wrong_types_and_missing_columns_are_named():
    table = signed_table().with_columns(pl.col("gas").cast(pl.String)).drop("raw_tx")
    outcome = quality.check_schema(table, MEMPOOL_TRANSACTIONS_SCHEMA)
    assert not outcome.passed
    assert "missing columns ['raw_tx']" in outcome.description and "gas: String (expected UInt64)" in outcome.description


def test_null_keys_fail():
    table = signed_table().with_columns(pl.when(pl.col("nonce") == 1).then(None).otherwise(pl.col("hash")).alias("hash"))
    outcome = quality.check_not_null(table, ["window", "hash"])
    assert not outcome.passed and "column hash has 1 null(s)" in outcome.description


def test_value_ranges_wrong_chain_low_gas_and_fee_cap_below_tip_beyond_64_bits():
    table = signed_table()
    huge = str(2**200)
    bad = table.with_columns(
        pl.when(pl.col("nonce") == 0).then(5).otherwise(pl.col("chain_id")).alias("chain_id"),
        pl.when(pl.col("nonce") == 1).then(20_999).otherwise(pl.col("gas")).cast(pl.UInt64).alias("gas"),
        # 2**200 vs 2**200 + 1 as decimal strings: only an exact big-integer comparison catches it
        pl.when(pl.col("nonce") == 2).then(pl.lit(huge)).otherwise(pl.col("gas_fee_cap")).alias("gas_fee_cap"),
        pl.when(pl.col("nonce") == 2).then(pl.lit(str(2**200 + 1))).otherwise(pl.col("gas_tip_cap")).alias("gas_tip_cap"),
    )
    outcome = quality.check_value_ranges(bad, 1)
    assert not outcome.passed
    h = table["hash"].to_list()
    assert f"1 row(s) with chain_id != 1, e.g. ['{h[0]}']" in outcome.description
    assert f"1 row(s) with gas < 21000, e.g. ['{h[1]}']" in outcome.description
    assert f"1 row(s) with gas_fee_cap < gas_tip_cap, e.g. ['{h[2]}']" in outcome.description
    equal_caps = table.with_columns(pl.lit(huge).alias("gas_fee_cap"), pl.lit("0" + huge).alias("gas_tip_cap"))
    assert quality.check_value_ranges(equal_caps, 1).passed


def test_tampered_raw_tx_fails_and_missing_raw_is_counted_not_failed():
    table = signed_table()
    tampered = table.with_columns(
        pl.when(pl.col("nonce") == 1)
        # the signed value 1 wei becomes 2 wei: the signature no longer covers the bytes
        .then(pl.col("raw_tx").str.replace("222201", "222202", literal=True)).otherwise(pl.col("raw_tx")).alias("raw_tx")
    )
    assert tampered["raw_tx"][1] != table["raw_tx"][1]
    outcome = quality.check_hash_matches_raw(tampered)
    assert not outcome.passed and table["hash"][1] in outcome.description and outcome.metadata["mismatches"] == 1
    without = quality.check_hash_matches_raw(table.with_columns(pl.lit(None, pl.String).alias("raw_tx")))
    assert without.passed and without.metadata["without_raw_tx"] == 3


def test_missing_segment_and_unbuilt_rows_fail_the_landing_comparison():
    table = signed_table()
    landing = table.select("window", "hash")
    hashes = table.get_column("hash")
    lost = quality.check_matches_landing(table, landing.head(2), 1)
    assert not lost.passed and f"{WINDOW}: 3 rows vs 2 hashes" in lost.description
    assert hashes[2] in lost.description and lost.metadata["windows_differing"] == [WINDOW]
    late = quality.check_matches_landing(table.head(2), pl.concat([landing, landing]), 2)
    assert not late.passed and "missing from the table" in late.description and hashes[2] in late.description


def _in_window(table: pl.DataFrame, window: str) -> pl.DataFrame:
    return table.with_columns(pl.lit(window).alias("window"))


def test_multi_window_rules_judge_each_window_and_name_the_bad_one():
    later = "2026-01-01T00:01:00"
    table = signed_table()
    # the same transactions seen again in a later window: unique per window, so both windows pass
    two_windows = pl.concat([table, _in_window(table, later)])
    assert quality.check_unique(two_windows, "hash", within="window").passed
    assert not quality.check_unique(two_windows, "hash").passed
    doubled = pl.concat([two_windows, _in_window(table.head(1), later)])
    dup = quality.check_unique(doubled, "hash", within="window")
    assert not dup.passed and "within a window" in dup.description and dup.metadata["windows_affected"] == [later]
    # the later window lost a segment: only that window is named
    lost_row = (pl.col("window") == later) & (pl.col("hash") == table["hash"][0])
    landing = two_windows.select("window", "hash").filter(~lost_row)
    lost = quality.check_matches_landing(two_windows, landing, 2)
    assert not lost.passed and lost.metadata["windows_differing"] == [later]
    assert f"{later}: 3 rows vs 2 hashes" in lost.description and WINDOW + ":" not in lost.description
    assert quality.check_matches_landing(two_windows, two_windows.select("window", "hash"), 2).passed


def _stats(coverage: dict[str, float]) -> pl.DataFrame:
    rows = [{"window": WINDOW, "source": s, "coverage": c} for s, c in coverage.items()]
    return pl.DataFrame(rows).select(
        [pl.col(c).cast(t) if c in ("window", "source", "coverage") else pl.lit(None, t).alias(c) for c, t in MEMPOOL_SOURCE_STATS_SCHEMA.items()]
    )


def test_source_coverage_collapse_warns_against_the_previous_window_or_the_best_source():
    steady = quality.check_source_coverage(_stats({"a": 0.9, "b": 0.8}), {"a": 0.95, "b": 0.85})
    assert steady.passed
    collapsed = quality.check_source_coverage(_stats({"a": 0.9, "b": 0.3}), {"a": 0.95, "b": 0.85})
    assert not collapsed.passed and collapsed.severity == quality.WARN
    assert "source b coverage 0.300 < 0.5 x 0.850 (previous window)" in collapsed.description
    vanished = quality.check_source_coverage(_stats({"a": 1.0}), {"a": 1.0, "b": 0.9})
    assert not vanished.passed and "source b coverage 0.000" in vanished.description
    no_baseline = quality.check_source_coverage(_stats({"a": 1.0, "b": 0.1}))
    assert not no_baseline.passed and "best source of this window" in no_baseline.description


def test_source_coverage_over_windows_compares_each_window_with_the_one_before():
    w1, w2, w3 = WINDOW, "2026-01-01T00:01:00", "2026-01-01T00:02:00"
    stats = pl.concat([
        _stats({"a": 0.9, "b": 0.8}).with_columns(pl.lit(w1).alias("window")),
        _stats({"a": 0.9, "b": 0.2}).with_columns(pl.lit(w2).alias("window")),
        _stats({"a": 0.9, "b": 0.2}).with_columns(pl.lit(w3).alias("window")),
    ])
    outcome = quality.check_source_coverage_windows(stats, {"a": 0.9, "b": 0.85})
    # w2 collapsed against w1; w3 is steady against w2
    assert not outcome.passed and outcome.severity == quality.WARN
    assert outcome.metadata["collapsed"] == {w2: ["b"]}
    assert f"{w2}: source b coverage 0.200 < 0.5 x 0.800 (previous window)" in outcome.description
    first_collapsed = quality.check_source_coverage_windows(stats.filter(pl.col("window") != w2), {"a": 0.9, "b": 0.9})
    assert first_collapsed.metadata["collapsed"] == {w3: ["b"]}
    assert quality.check_source_coverage_windows(stats.filter(pl.col("window") == w3), {"a": 0.9, "b": 0.2}).passed


def test_freshness_fails_past_three_window_widths():
    end = key_end_ms(WINDOW, 60)
    assert quality.check_freshness(WINDOW, end + 180_000, 60).passed
    stale = quality.check_freshness(WINDOW, end + 181_000, 60)
    assert not stale.passed and f"newest window {WINDOW} ended 181 s ago, more than 3 windows (180 s)" in stale.description
    assert not quality.check_freshness(None, end, 60).passed


def test_great_expectations_suite_passes_good_and_reports_failures_in_metadata():
    table = signed_table()
    suite = ge_suites.mempool_transactions_suite(1, list(MEMPOOL_TRANSACTIONS_SCHEMA))
    good = ge_suites.validate(table, suite, "mempool_transactions")
    assert good.passed and good.metadata["evaluated_expectations"] == len(good.metadata["results"]) > 0
    bad = pl.concat([table, table.head(1)]).with_columns(pl.lit(5, pl.Int64).alias("chain_id"))
    outcome = ge_suites.validate(bad, suite, "mempool_transactions")
    assert not outcome.passed
    assert "expect_compound_columns_to_be_unique(window,hash) failed on 2 row(s)" in outcome.description
    assert "expect_column_values_to_be_in_set(chain_id) failed on 4 row(s)" in outcome.description
    assert outcome.metadata["successful_expectations"] < outcome.metadata["evaluated_expectations"]
