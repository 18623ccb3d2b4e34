"""Data-quality rules of the per-window tables, as pure functions over polars frames.

Each rule returns a :class:`CheckOutcome` (passed, severity, description, metadata) that
``mev_assets/checks.py`` turns into a Dagster ``AssetCheckResult``; nothing here imports dagster.
Descriptions name the offending rows (a few hashes) so a failed check says what to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
from eth_hash.auto import keccak

from mev_assets.core.windows import key_end_ms

ERROR = "ERROR"
WARN = "WARN"
MIN_TX_GAS = 21_000
SAMPLE = 5
HASH_PATTERN = r"^0x[0-9a-f]{64}$"
# A source whose coverage falls below this fraction of its baseline has collapsed.
DEFAULT_COLLAPSE_RATIO = 0.5
DEFAULT_MAX_WINDOW_WIDTHS = 3


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    severity: str
    description: str
    metadata: dict = field(default_factory=dict)


def _sample(series: pl.Series) -> list[str]:
    return [str(v) for v in series.head(SAMPLE).to_list()]


def _outcome(failures: list[str], ok: str, metadata: dict, severity: str = ERROR) -> CheckOutcome:
    if failures:
        return CheckOutcome(False, severity, "; ".join(failures), metadata)
    return CheckOutcome(True, severity, ok, metadata)


def check_schema(frame: pl.DataFrame, expected: dict[str, pl.DataType]) -> CheckOutcome:
    """Exactly the expected columns, each with its expected dtype."""
    actual = frame.schema
    missing = [c for c in expected if c not in actual]
    extra = [c for c in actual if c not in expected]
    wrong = {c: f"{actual[c]} (expected {expected[c]})" for c in expected if c in actual and actual[c] != expected[c]}
    failures = []
    if missing:
        failures.append(f"missing columns {missing}")
    if extra:
        failures.append(f"unexpected columns {extra}")
    if wrong:
        failures.append("wrong types " + ", ".join(f"{c}: {t}" for c, t in wrong.items()))
    meta = {"columns": len(actual), "missing": missing, "unexpected": extra, "wrong_types": wrong}
    return _outcome(failures, f"{len(expected)} columns with the expected types", meta)


def check_unique(frame: pl.DataFrame, column: str = "hash", within: str | None = None) -> CheckOutcome:
    """``column`` unique (within each value of ``within``, e.g. per window of a multi-window run)."""
    keys = [within, column] if within else [column]
    dupes = frame.group_by(keys).agg(pl.len().alias("n")).filter(pl.col("n") > 1).sort(keys)
    extra_rows = int(dupes.get_column("n").sum() - dupes.height) if dupes.height else 0
    scope = f" within a {within}" if within else ""
    meta = {"rows": frame.height, "duplicated_values": dupes.height, "duplicate_rows": extra_rows,
            "sample": _sample(dupes.get_column(column))}
    if within and dupes.height:
        meta[f"{within}s_affected"] = _sample(dupes.get_column(within).unique().sort())
    failures = (
        [f"{dupes.height} duplicated {column} value(s){scope} ({extra_rows} extra rows), e.g. {meta['sample']}"]
        if dupes.height else []
    )
    return _outcome(failures, f"{frame.height} rows, {column} unique{scope}", meta)


def check_not_null(frame: pl.DataFrame, columns: list[str]) -> CheckOutcome:
    missing_cols = [c for c in columns if c not in frame.columns]
    present = [c for c in columns if c in frame.columns]
    nulls = frame.select(pl.col(present).null_count()).row(0, named=True) if present else {}
    bad = {c: int(n) for c, n in nulls.items() if n}
    failures = [f"column {c} has {n} null(s)" for c, n in bad.items()]
    if missing_cols:
        failures.append(f"key columns missing {missing_cols}")
    return _outcome(failures, f"no nulls in {columns}", {"null_counts": bad, "rows": frame.height})


def _wei_ge(left: pl.Expr, right: pl.Expr) -> pl.Expr:
    """left >= right for non-negative decimal strings of any size (wei can exceed 2**128)."""
    left, right = left.str.strip_chars_start("0"), right.str.strip_chars_start("0")
    ll, rl = left.str.len_bytes(), right.str.len_bytes()
    return (ll > rl) | ((ll == rl) & (left >= right))


def check_value_ranges(frame: pl.DataFrame, chain_id: int) -> CheckOutcome:
    """gas >= 21,000; fee cap >= tip (where both are set); chain id as configured.

    A null chain id (pre-EIP-155 legacy transaction) is allowed: it replays on any chain.
    """
    digits = r"^[0-9]+$"
    checks = {
        f"gas < {MIN_TX_GAS}": pl.col("gas") < MIN_TX_GAS,
        "gas_fee_cap < gas_tip_cap": pl.col("gas_fee_cap").is_not_null()
        & pl.col("gas_tip_cap").is_not_null()
        & ~_wei_ge(pl.col("gas_fee_cap"), pl.col("gas_tip_cap")),
        f"chain_id != {chain_id}": pl.col("chain_id").is_not_null() & (pl.col("chain_id") != chain_id),
        "wei amount not a decimal string": pl.any_horizontal(
            [pl.col(c).is_not_null() & ~pl.col(c).str.contains(digits) for c in ("value", "gas_price", "gas_tip_cap", "gas_fee_cap")]
        ),
    }
    flagged = frame.select("hash", **{name: expr.fill_null(False) for name, expr in checks.items()})
    failures, counts = [], {}
    for name in checks:
        bad = flagged.filter(pl.col(name)).get_column("hash")
        counts[name] = bad.len()
        if bad.len():
            failures.append(f"{bad.len()} row(s) with {name}, e.g. {_sample(bad)}")
    return _outcome(failures, f"{frame.height} rows within range (chain id {chain_id})", {"violations": counts})


def _keccak_hex(raw: str | None) -> str | None:
    if raw is None or len(raw) <= 2:
        return None
    try:
        return "0x" + keccak(bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)).hex()
    except ValueError:
        return "invalid hex"


def check_hash_matches_raw(frame: pl.DataFrame) -> CheckOutcome:
    """Every hash is the keccak-256 of its signed ``raw_tx`` (rows without raw_tx are counted, not failed)."""
    # keccak has no vectorised form in polars; one C call per row (about 1 µs) over the raw bytes
    computed = pl.Series("computed", [_keccak_hex(r) for r in frame.get_column("raw_tx").to_list()], dtype=pl.String)
    compared = frame.select("hash").with_columns(computed)
    without_raw = compared.filter(pl.col("computed").is_null()).height
    bad = compared.filter(pl.col("computed").is_not_null() & (pl.col("computed") != pl.col("hash")))
    meta = {"rows": frame.height, "verified": frame.height - without_raw - bad.height, "without_raw_tx": without_raw,
            "mismatches": bad.height, "sample": _sample(bad.get_column("hash"))}
    failures = [f"{bad.height} hash(es) differ from keccak(raw_tx) (tampered or mis-parsed), e.g. {meta['sample']}"] if bad.height else []
    return _outcome(failures, f"{meta['verified']} hashes equal keccak(raw_tx)", meta)


def check_matches_landing(table: pl.DataFrame, landing: pl.DataFrame, segments: int) -> CheckOutcome:
    """Each window of the table holds exactly the distinct hashes of that window's sealed segments.

    ``table`` and ``landing`` have ``window`` and ``hash`` columns (``landing``: every hash of every
    sealed segment of the run's windows, duplicates included); ``segments`` counts those segments.
    """
    keys = ["window", "hash"]
    landed = landing.select(keys).unique()
    rows = table.select(keys)
    not_in_landing = rows.join(landed, on=keys, how="anti")
    not_in_table = landed.join(rows, on=keys, how="anti")
    counts = (
        rows.group_by("window").agg(pl.len().alias("table_rows"))
        .join(landed.group_by("window").agg(pl.len().alias("landing_hashes")), on="window", how="full", coalesce=True)
        .fill_null(0)
        .filter(pl.col("table_rows") != pl.col("landing_hashes"))
        .sort("window")
    )
    meta = {"table_rows": table.height, "landing_distinct_hashes": landed.height, "segments": segments,
            "not_in_landing": not_in_landing.height, "not_in_table": not_in_table.height,
            "windows_differing": _sample(counts.get_column("window"))}
    failures = []
    if counts.height:
        examples = ", ".join(f"{w}: {t} rows vs {n} hashes" for w, t, n in counts.head(SAMPLE).iter_rows())
        failures.append(f"{counts.height} window(s) where the table's rows differ from the distinct hashes of the "
                        f"{segments} sealed segment(s): {examples}")
    if not_in_landing.height:
        failures.append(f"{not_in_landing.height} row(s) not in any sealed segment (segment missing?), "
                        f"e.g. {_sample(not_in_landing.get_column('hash'))}")
    if not_in_table.height:
        failures.append(f"{not_in_table.height} landed hash(es) missing from the table (late segment? re-materialise), "
                        f"e.g. {_sample(not_in_table.get_column('hash'))}")
    return _outcome(failures, f"{table.height} rows = distinct hashes of {segments} sealed segment(s)", meta)


def check_source_coverage(
    stats: pl.DataFrame, baseline: dict[str, float] | None = None, collapse_ratio: float = DEFAULT_COLLAPSE_RATIO
) -> CheckOutcome:
    """Warn when a source's coverage falls below ``collapse_ratio`` of its baseline.

    ``baseline``: coverage per source of an earlier window (a source absent now counts as 0);
    without one, the window's best-covered source is every source's baseline.
    """
    now = dict(zip(stats.get_column("source").to_list(), stats.get_column("coverage").to_list()))
    if baseline:
        reference = {s: float(c) for s, c in baseline.items()}
        basis = "previous window"
    else:
        best = max(now.values(), default=0.0)
        reference = {s: best for s in now}
        basis = "best source of this window"
    collapsed = {s: (now.get(s, 0.0), ref) for s, ref in sorted(reference.items()) if now.get(s, 0.0) < collapse_ratio * ref}
    failures = [f"source {s} coverage {c:.3f} < {collapse_ratio} x {ref:.3f} ({basis})" for s, (c, ref) in collapsed.items()]
    meta = {"coverage": {s: round(c, 4) for s, c in now.items()}, "baseline": basis, "collapsed": sorted(collapsed)}
    return _outcome(failures, f"{len(now)} source(s) within {collapse_ratio} x baseline ({basis})", meta, severity=WARN)


def check_source_coverage_windows(
    stats: pl.DataFrame, baseline: dict[str, float] | None = None, collapse_ratio: float = DEFAULT_COLLAPSE_RATIO
) -> CheckOutcome:
    """:func:`check_source_coverage` for each window of a multi-window run, in time order.

    The first window is compared with ``baseline`` (the window before the run), each later window
    with the one before it in ``stats``.
    """
    windows = stats.get_column("window").unique().sort().to_list()
    if len(windows) <= 1:
        return check_source_coverage(stats, baseline, collapse_ratio)
    failures, collapsed, coverage = [], {}, {}
    # a run holds tens of windows: one small frame each, so a loop over windows is cheap
    by_window = {k[0]: part for k, part in stats.partition_by("window", as_dict=True).items()}
    previous = baseline
    for window in windows:
        outcome = check_source_coverage(by_window[window], previous, collapse_ratio)
        coverage[window] = outcome.metadata["coverage"]
        if not outcome.passed:
            failures.append(f"{window}: {outcome.description}")
            collapsed[window] = outcome.metadata["collapsed"]
        previous = outcome.metadata["coverage"]
    meta = {"windows": len(windows), "collapsed": collapsed, "coverage_by_window": coverage}
    return _outcome(failures, f"{len(windows)} window(s), every source within {collapse_ratio} x the window before",
                    meta, severity=WARN)


def check_freshness(
    newest_window: str | None, now_ms: int, window_seconds: int, max_widths: int = DEFAULT_MAX_WINDOW_WIDTHS
) -> CheckOutcome:
    """The newest materialised window ended at most ``max_widths`` window widths ago."""
    limit_ms = max_widths * window_seconds * 1000
    if newest_window is None:
        return CheckOutcome(False, ERROR, "no window has been materialised yet", {"limit_seconds": limit_ms / 1000})
    age_ms = now_ms - key_end_ms(newest_window, window_seconds)
    meta = {"newest_window": newest_window, "age_seconds": age_ms / 1000, "limit_seconds": limit_ms / 1000}
    failures = [f"newest window {newest_window} ended {age_ms / 1000:.0f} s ago, more than {max_widths} windows "
                f"({limit_ms / 1000:.0f} s): is the collector or the sensor stalled?"] if age_ms > limit_ms else []
    return _outcome(failures, f"newest window {newest_window} ended {age_ms / 1000:.0f} s ago", meta)
