"""great-expectations 1.x suites over the per-window tables (called directly: dagster-ge needs GE < 1.0).

One ephemeral GE context per process (building it costs about a second); each validation hands
the window's frame to GE as pandas and summarises the result as plain values for check metadata.
"""

from __future__ import annotations

from functools import lru_cache

import polars as pl

from mev_assets.core.quality import ERROR, HASH_PATTERN, MIN_TX_GAS, CheckOutcome

TX_TYPES = [0, 1, 2, 3, 4]


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx  # imported lazily: GE takes seconds to import
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # tqdm bars would flood the Dagster compute logs, one per validation
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def mempool_transactions_suite(chain_id: int, columns: list[str]):
    import great_expectations as gx
    from great_expectations import expectations as gxe

    _context()  # a suite needs an active context
    suite = gx.ExpectationSuite(name=f"mempool_transactions_chain_{chain_id}")
    for expectation in (
        gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        # unique per window: a multi-window (backfill) run validates many windows at once
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["window", "hash"]),
        gxe.ExpectColumnValuesToNotBeNull(column="hash"),
        gxe.ExpectColumnValuesToMatchRegex(column="hash", regex=HASH_PATTERN),
        gxe.ExpectColumnValuesToNotBeNull(column="timestamp_ms"),
        gxe.ExpectColumnValuesToBeBetween(column="gas", min_value=MIN_TX_GAS),
        gxe.ExpectColumnValuesToBeInSet(column="tx_type", value_set=TX_TYPES),
        # null chain id: a pre-EIP-155 legacy transaction (GE skips nulls in this expectation)
        gxe.ExpectColumnValuesToBeInSet(column="chain_id", value_set=[chain_id]),
        gxe.ExpectColumnValuesToMatchRegex(column="value", regex=r"^[0-9]+$"),
    ):
        suite.add_expectation(expectation)
    return suite


def validate(frame: pl.DataFrame, suite, asset_name: str) -> CheckOutcome:
    """Run ``suite`` on ``frame``; failed expectations named in the description, all in metadata."""
    context = _context()
    name = f"{asset_name}_frame"
    try:
        datasource = context.data_sources.get(name)
    except (KeyError, ValueError):
        datasource = context.data_sources.add_pandas(name)
    try:
        asset = datasource.get_asset(asset_name)
    except LookupError:
        asset = datasource.add_dataframe_asset(asset_name)
    try:
        batch_definition = asset.get_batch_definition("window")
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe("window")
    # list columns (sources) are not expected on; GE sees the scalar columns only
    scalar = frame.select([c for c, t in frame.schema.items() if not isinstance(t, pl.List)])
    pdf = scalar.to_pandas()
    for column in frame.columns:
        if column not in pdf.columns:
            pdf[column] = None
    result = batch_definition.get_batch(batch_parameters={"dataframe": pdf}).validate(suite)
    rows = []
    for r in result.results:
        cfg = r.expectation_config
        rows.append({
            "expectation": cfg.type,
            "column": cfg.kwargs.get("column") or ",".join(cfg.kwargs.get("column_list") or []) or None,
            "success": bool(r.success),
            "unexpected_count": (r.result or {}).get("unexpected_count"),
            "unexpected_sample": [str(v) for v in ((r.result or {}).get("partial_unexpected_list") or [])[:5]],
        })
    failed = [r for r in rows if not r["success"]]
    stats = result.statistics
    meta = {
        "suite": suite.name,
        "evaluated_expectations": stats["evaluated_expectations"],
        "successful_expectations": stats["successful_expectations"],
        "success_percent": stats["success_percent"],
        "results": rows,
    }
    if failed:
        description = "great-expectations: " + "; ".join(
            f"{r['expectation']}({r['column'] or ''}) failed"
            + (f" on {r['unexpected_count']} row(s), e.g. {r['unexpected_sample']}" if r["unexpected_count"] else "")
            for r in failed
        )
        return CheckOutcome(False, ERROR, description, meta)
    return CheckOutcome(True, ERROR, f"great-expectations: {len(rows)} expectations met", meta)
