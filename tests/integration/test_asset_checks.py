"""The asset checks on a real Dagster instance: a good window passes, each bad case fails its check."""

from __future__ import annotations

import time

import pytest
from dagster import AssetSelection, Definitions, define_asset_job, instance_for_test, materialize
from eth_account import Account

from mev_assets.assets import PER_WINDOW_ASSETS
from mev_assets.checks import build_asset_checks
from mev_assets.core.windows import key_for_start_ms, key_start_ms, window_start_ms
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.partitions import MEMPOOL_WINDOWS, mempool_windows
from tests.landing_factory import sourcelog_frame, tx_frame, tx_row

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "0x" + "4c" * 32
TO = "0x" + "22" * 20


def _windows(n: int, ago: int, width: int = 60) -> list[str]:
    start = window_start_ms(time.time_ns() // 1_000_000, width) - ago * width * 1000
    return [key_for_start_ms(start + i * width * 1000) for i in range(n)]


def signed_rows(window: str, n: int, source: str = "a", first_nonce: int = 0, chain_id: int = 1, **fields) -> list[dict]:
    """Landing rows of real signed EIP-1559 transactions (hash = keccak(raw_tx))."""
    rows = []
    for i in range(n):
        tx = {"type": 2, "chainId": chain_id, "nonce": first_nonce + i, "to": TO, "value": 10**18, "gas": 21000,
              "maxFeePerGas": 30 * 10**9, "maxPriorityFeePerGas": 10**9, "data": b""}
        signed = Account.sign_transaction(tx, KEY)
        rows.append(tx_row("0x" + signed.hash.hex().removeprefix("0x"), key_start_ms(window) + 100 + first_nonce + i, source,
                           chain_id=chain_id, nonce=first_nonce + i,
                           **{"from": Account.from_key(KEY).address.lower(), "raw_tx": "0x" + signed.raw_transaction.hex().removeprefix("0x"),
                              **fields}))
    return rows


def land(zone: LandingZone, window: str, rows: list[dict], collector_id: str = "c1", seq: int = 1) -> None:
    zone.write_segment("mempool", window, collector_id, seq, tx_frame(rows))
    zone.write_segment("sourcelog", window, collector_id, seq,
                       sourcelog_frame([(r["timestamp_ms"], r["hash"], r["source"]) for r in rows], collector_id))
    zone.mark_sealed(window, collector_id)


@pytest.fixture
def lane(settings_factory):
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_CHAIN_ID=1)
    defs = build_definitions(settings)
    checks = build_asset_checks(settings.chain_id, settings.window_seconds)
    return defs, LandingZone(settings.landing_dir), checks


def run_window(defs, checks, instance, window, selection=None):
    instance.add_dynamic_partitions(MEMPOOL_WINDOWS, [window])
    return materialize([*PER_WINDOW_ASSETS, *checks], partition_key=window, instance=instance,
                       resources=defs.resources, selection=selection, raise_on_error=False)


def checks_only(defs, checks, instance, window):
    """Run the mempool_transactions checks of ``window`` without re-materialising the table."""
    job = define_asset_job("checks_only", selection=AssetSelection.checks(checks[0]), partitions_def=mempool_windows)
    only = Definitions(assets=PER_WINDOW_ASSETS, asset_checks=checks, jobs=[job], resources=defs.resources)
    # a checks-only selection has no asset to infer the partitions from: name the partition by tag
    return only.resolve_job_def("checks_only").execute_in_process(
        tags={"dagster/partition": window}, instance=instance, raise_on_error=False
    )


def evaluations(result) -> dict[tuple[str, str], object]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_a_good_window_passes_every_check_and_a_stale_one_fails_freshness(lane):
    defs, zone, checks = lane
    (window,) = _windows(1, ago=2)
    land(zone, window, signed_rows(window, 4))
    with instance_for_test() as instance:
        result = run_window(defs, checks, instance, window)
        assert result.success
        got = evaluations(result)
        failed = {k: e.description for k, e in got.items() if not e.passed}
        assert failed == {}
        assert len(got) == 14
        ge = got[("mempool_transactions", "great_expectations_suite")].metadata
        assert ge["evaluated_expectations"].value == ge["successful_expectations"].value > 0
        assert got[("mempool_transactions", "matches_sealed_segments")].metadata["landing_distinct_hashes"].value == 4

    (stale,) = _windows(1, ago=10)
    land(zone, stale, signed_rows(stale, 2, first_nonce=10))
    with instance_for_test() as instance:
        fresh = evaluations(run_window(defs, checks, instance, stale))[("mempool_transactions", "newest_window_fresh")]
        assert not fresh.passed
        assert stale in fresh.description and "more than 3 windows" in fresh.description


def test_wrong_chain_id_fails_and_blocks_downstream(lane):
    defs, zone, checks = lane
    (window,) = _windows(1, ago=2)
    good = signed_rows(window, 2)
    # another chain's transaction in the window (duplicate hashes cannot survive assembly, so the
    # unique-hash check is fed its bad case in tests/unit/test_quality.py)
    foreign = signed_rows(window, 1, first_nonce=5, chain_id=5)
    land(zone, window, good + foreign)
    with instance_for_test() as instance:
        result = run_window(defs, checks, instance, window)
        got = evaluations(result)
        ranges = got[("mempool_transactions", "value_ranges")]
        assert not ranges.passed and "chain_id != 1" in ranges.description and foreign[0]["hash"] in ranges.description
        assert not got[("mempool_transactions", "great_expectations_suite")].passed
        assert "chain_id" in got[("mempool_transactions", "great_expectations_suite")].description
        # blocking: the run fails and the downstream window assets were not materialised
        assert not result.success
        materialised = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()
                        for m in [m.event_specific_data.materialization]}
        assert materialised == {"mempool_transactions"}


def test_tampered_raw_tx_fails_the_hash_check(lane):
    defs, zone, checks = lane
    (window,) = _windows(1, ago=2)
    rows = signed_rows(window, 3)
    raw = rows[1]["raw_tx"]
    rows[1]["raw_tx"] = raw[:-2] + ("00" if raw[-2:] != "00" else "01")
    land(zone, window, rows)
    with instance_for_test() as instance:
        check = evaluations(run_window(defs, checks, instance, window))[("mempool_transactions", "hash_matches_raw_tx")]
        assert not check.passed
        assert rows[1]["hash"] in check.description and "keccak(raw_tx)" in check.description
        assert check.metadata["mismatches"].value == 1


def test_missing_segment_fails_the_landing_consistency_check(lane):
    defs, zone, checks = lane
    (window,) = _windows(1, ago=2)
    land(zone, window, signed_rows(window, 2), collector_id="c1")
    lost = signed_rows(window, 2, first_nonce=20)
    land(zone, window, lost, collector_id="c2")
    with instance_for_test() as instance:
        assert run_window(defs, checks, instance, window).success
        # the c2 segment disappears after the window was built; re-run the checks only
        zone.store.delete(zone.segment_path("mempool", window, "c2", 1))
        rerun = checks_only(defs, checks, instance, window)
        check = evaluations(rerun)[("mempool_transactions", "matches_sealed_segments")]
        assert not check.passed
        assert f"{window}: 4 rows vs 2 hashes" in check.description and "1 sealed segment(s)" in check.description
        assert lost[0]["hash"] in check.description or lost[1]["hash"] in check.description
