"""Operational alerts: conditions on the live lane, read from what the pipeline can see.

Nothing here talks to a collector process: the inputs are the collectors' heartbeats
(``landing/_collectors/<id>.json``, rewritten every few seconds), the landing zone (sealed
windows, quarantined records) and the Parquet lake (``mempool_source_stats``). So the same
conditions work for collectors on other hosts and in S3 mode. ``mev_assets/alerts.py`` surfaces
them as non-blocking Dagster asset checks and a sensor; docs/operations.md ("What to watch")
says what each one means and what to do.

Each condition returns a :class:`~mev_assets.core.quality.CheckOutcome` (severity WARN) whose
description is one line naming the collector, source or windows and the threshold crossed, with
the figures in the metadata:

* :func:`check_queue_saturation` - a source's hash-fetch queue above a fraction of its capacity,
  or hashes dropped from it recently (those transactions are lost);
* :func:`check_ingest_lag` - a collector that stopped beating without saying so, records held
  unsealed too long, or the newest sealed window too old while collectors should be running;
* :func:`check_quarantine_rate` - the share of records quarantined over the recent windows;
* :func:`check_source_coverage_live` - a source disconnected or silent for too long, or its
  coverage over the recent windows collapsed against the windows before (the per-window
  ``source_coverage`` check compares one window with the previous one; this one looks across
  several, and at the live connection state).

:func:`read_alert_inputs` gathers the inputs (I/O); the checks are pure functions of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from mev_assets.core.lake import Lake, LakeMissingError
from mev_assets.core.quality import WARN, CheckOutcome
from mev_assets.core.windows import key_end_ms, key_for_start_ms, window_start_ms
from mev_assets.ingest.landing import QUARANTINE, LandingZone

# Fewer records than this over the recent windows say nothing about a rate: one malformed
# message among ten would read as 10 %.
MIN_QUARANTINE_SAMPLE = 20
# Windows the reader looks back for the newest sealed window, at least (more when the lag
# threshold is longer): a lane older than that reports "no sealed window in the last ...".
MIN_LOOKBACK_MS = 3600 * 1000
TOP_REASONS = 3
MAX_LISTED = 3  # problems spelled out in a check's one-line description

COLLECTOR_QUEUE_SATURATION = "collector_queue_saturation"
INGEST_LAG = "ingest_lag"
QUARANTINE_RATE = "quarantine_rate"
SOURCE_COVERAGE_LIVE = "source_coverage_live"

QUARANTINE_FRAME_SCHEMA = {"window": pl.String, "source": pl.String, "code": pl.String}
ACCEPTED_FRAME_SCHEMA = {"window": pl.String, "accepted": pl.Int64}
COVERAGE_FRAME_SCHEMA = {"window": pl.String, "source": pl.String, "coverage": pl.Float64}


@dataclass(frozen=True)
class AlertThresholds:
    """The limits of the alerts (``MEV_ALERT_*`` settings, documented in docs/configuration.md)."""

    window_seconds: int = 60
    windows: int = 5
    queue_saturation: float = 0.8
    ingest_lag_seconds: int = 180
    silence_seconds: int = 120
    quarantine_rate: float = 0.05
    coverage_drop: float = 0.5

    @classmethod
    def from_settings(cls, settings) -> "AlertThresholds":
        return cls(
            window_seconds=settings.window_seconds,
            windows=settings.alert_windows,
            queue_saturation=settings.alert_queue_saturation,
            ingest_lag_seconds=settings.alert_ingest_lag_seconds,
            silence_seconds=settings.alert_silence_seconds,
            quarantine_rate=settings.alert_quarantine_rate,
            coverage_drop=settings.alert_coverage_drop,
        )


@dataclass(frozen=True)
class AlertInputs:
    """What the alerts look at, as of ``now_ms``.

    ``recent_windows``: the last ``windows`` ended windows of the landing zone (mempool or
    quarantine area), oldest first. ``accepted``: rows of their sealed mempool segments per window;
    ``quarantined``: one row per quarantined record of them (window, source, reason code).
    ``coverage``: ``mempool_source_stats`` rows (window, source, coverage) of up to twice as
    many windows, read from the lake (windows not materialised yet are simply absent).
    """

    now_ms: int
    heartbeats: list[dict] = field(default_factory=list)
    newest_sealed: str | None = None
    recent_windows: list[str] = field(default_factory=list)
    accepted: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ACCEPTED_FRAME_SCHEMA))
    quarantined: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=QUARANTINE_FRAME_SCHEMA))
    coverage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=COVERAGE_FRAME_SCHEMA))
    lookback_ms: int = MIN_LOOKBACK_MS


# ---- helpers ----------------------------------------------------------------------------------
def _seconds(ms: float) -> float:
    return round(ms / 1000, 1)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _outcome(failures: list[str], ok: str, metadata: dict) -> CheckOutcome:
    """Failed with the first few problems on one line (all of them in ``problems``), or passed."""
    if failures:
        more = f"; +{len(failures) - MAX_LISTED} more (see problems)" if len(failures) > MAX_LISTED else ""
        return CheckOutcome(False, WARN, "; ".join(failures[:MAX_LISTED]) + more, {**metadata, "problems": failures})
    return CheckOutcome(True, WARN, ok, {**metadata, "problems": []})


def _collector_id(beat: dict) -> str:
    return str(beat.get("collector_id", "?"))


def _active(beats: list[dict]) -> list[dict]:
    """Heartbeats of collectors that did not stop cleanly (running, or crashed without saying so)."""
    return [b for b in beats if not b.get("stopped")]


def _live(beats: list[dict], now_ms: int, limit_ms: int) -> list[dict]:
    return [b for b in _active(beats) if now_ms - int(b.get("heartbeat_ms", 0)) <= limit_ms]


def _sources(beat: dict) -> dict[str, dict]:
    sources = beat.get("sources") or {}
    return {str(name): (info if isinstance(info, dict) else {}) for name, info in sources.items()}


# ---- the conditions --------------------------------------------------------------------------
def check_queue_saturation(inputs: AlertInputs, t: AlertThresholds) -> CheckOutcome:
    """Per live collector and source: fetch queue depth / capacity >= ``queue_saturation``, or a
    hash dropped from the full queue within the last ``windows`` window widths.

    Only sources in hash mode queue anything; heartbeats of collectors older than these fields
    carry no queue figures and are skipped (named in the metadata).
    """
    now = inputs.now_ms
    recent_ms = t.windows * t.window_seconds * 1000
    failures, depth, dropped, unknown = [], {}, {}, []
    for beat in _live(inputs.heartbeats, now, t.ingest_lag_seconds * 1000):
        cid = _collector_id(beat)
        for source, info in _sources(beat).items():
            name = f"{cid}/{source}"
            capacity = info.get("queue_capacity")
            if capacity is None or info.get("queue_depth") is None:
                unknown.append(name)
                continue
            queued = int(info["queue_depth"])
            fill = queued / capacity if capacity else 0.0
            depth[name] = {"queue_depth": queued, "queue_capacity": int(capacity), "fill": round(fill, 4)}
            dropped[name] = int(info.get("fetch_dropped") or 0)
            if fill >= t.queue_saturation:
                failures.append(
                    f"collector {cid} source {source}: fetch queue {queued}/{capacity} = {_pct(fill)} of capacity "
                    f">= {_pct(t.queue_saturation)} (MEV_ALERT_QUEUE_SATURATION); the node announces hashes faster "
                    f"than MEV_FETCH_RATE fetches them"
                )
            last_drop = info.get("last_dropped_ms")
            if last_drop and now - int(last_drop) <= recent_ms:
                failures.append(
                    f"collector {cid} source {source}: {dropped[name]} hash(es) dropped from the full fetch queue, "
                    f"the last {_seconds(now - int(last_drop))} s ago (within {t.windows} windows): those "
                    f"transactions are lost"
                )
    meta = {
        "threshold_fill": t.queue_saturation,
        "queues": depth,
        "fetch_dropped_total": dropped,
        "sources_without_queue_figures": unknown,
    }
    fullest = max((d["fill"] for d in depth.values()), default=0.0)
    meta["max_fill"] = fullest
    ok = f"{len(depth)} source queue(s) below {_pct(t.queue_saturation)} of capacity (fullest {_pct(fullest)}), no recent drops"
    if not depth:
        ok = "no live collector reports a fetch queue"
    return _outcome(failures, ok, meta)


def check_ingest_lag(inputs: AlertInputs, t: AlertThresholds) -> CheckOutcome:
    """Lag of the lane against ``ingest_lag_seconds``:

    * a collector that did not stop cleanly but whose heartbeat is older than the limit (crashed,
      hung, or cannot write the landing zone);
    * a live collector holding records received longer ago than the limit unsealed (sealing is
      failing or stuck);
    * the newest sealed window ended longer ago than the limit while any collector should be
      running. With every collector stopped cleanly (or none ever heard of) no lag is expected.
    """
    now = inputs.now_ms
    limit_ms = t.ingest_lag_seconds * 1000
    active = _active(inputs.heartbeats)
    live = _live(inputs.heartbeats, now, limit_ms)
    failures: list[str] = []
    meta: dict = {"threshold_seconds": t.ingest_lag_seconds, "newest_sealed_window": inputs.newest_sealed}
    beat_age = {_collector_id(b): _seconds(now - int(b.get("heartbeat_ms", 0))) for b in inputs.heartbeats}
    meta["heartbeat_age_seconds"] = beat_age
    for beat in active:
        if beat not in live:
            cid = _collector_id(beat)
            failures.append(
                f"collector {cid}: last heartbeat {beat_age[cid]} s ago > {t.ingest_lag_seconds} s "
                f"(MEV_ALERT_INGEST_LAG_SECONDS) and it did not stop cleanly: crashed, hung or cannot write the landing zone"
            )
    unsealed = {}
    for beat in live:
        cid = _collector_id(beat)
        oldest = beat.get("oldest_unsealed_ms")
        if oldest is None:
            continue
        age_ms = now - int(oldest)
        unsealed[cid] = _seconds(age_ms)
        if age_ms > limit_ms:
            failed = int(beat.get("failed_seals") or 0)
            why = f"{failed} batch(es) failed to seal and are retried" if failed else "sealing is not keeping up"
            failures.append(
                f"collector {cid}: oldest unsealed record received {_seconds(age_ms)} s ago > {t.ingest_lag_seconds} s "
                f"(MEV_ALERT_INGEST_LAG_SECONDS): {why}"
            )
    meta["oldest_unsealed_age_seconds"] = unsealed
    lane_lag_ms = now - key_end_ms(inputs.newest_sealed, t.window_seconds) if inputs.newest_sealed else None
    meta["lane_lag_seconds"] = _seconds(lane_lag_ms) if lane_lag_ms is not None else None
    if active:
        # a collector that started within the limit may not have sealed anything yet
        expected_since = min(int(b.get("started_ms", now)) for b in active)
        if lane_lag_ms is None and now - expected_since > limit_ms:
            failures.append(
                f"no window sealed in the last {_seconds(inputs.lookback_ms)} s although collector(s) "
                f"{sorted(_collector_id(b) for b in active)} started {_seconds(now - expected_since)} s ago "
                f"(> {t.ingest_lag_seconds} s, MEV_ALERT_INGEST_LAG_SECONDS)"
            )
        elif lane_lag_ms is not None and lane_lag_ms > limit_ms and now - expected_since > limit_ms:
            failures.append(
                f"newest sealed window {inputs.newest_sealed} ended {_seconds(lane_lag_ms)} s ago > "
                f"{t.ingest_lag_seconds} s (MEV_ALERT_INGEST_LAG_SECONDS): the collectors are not sealing windows"
            )
    if failures:
        return _outcome(failures, "", meta)
    if not active:
        state = "every collector stopped cleanly" if inputs.heartbeats else "no collector heartbeat"
        return _outcome([], f"{state}; no lag expected (newest sealed window {inputs.newest_sealed})", meta)
    lag = f"{meta['lane_lag_seconds']} s" if lane_lag_ms is not None else "none sealed yet"
    return _outcome(
        [], f"{len(live)} live collector(s); newest sealed window {inputs.newest_sealed} ({lag}) within {t.ingest_lag_seconds} s", meta
    )


def check_quarantine_rate(inputs: AlertInputs, t: AlertThresholds) -> CheckOutcome:
    """Quarantined / (quarantined + accepted) records over the recent windows > ``quarantine_rate``.

    Needs at least :data:`MIN_QUARANTINE_SAMPLE` records; the message names the windows, the
    top reason codes and the sources that sent them.
    """
    windows = inputs.recent_windows
    accepted = int(inputs.accepted.get_column("accepted").sum() or 0) if inputs.accepted.height else 0
    q = inputs.quarantined
    quarantined = q.height
    total = accepted + quarantined
    rate = quarantined / total if total else 0.0
    span = f"{windows[0]}..{windows[-1]}" if windows else "(no window)"
    per_window = (
        pl.DataFrame({"window": windows}, schema={"window": pl.String})
        .join(inputs.accepted, on="window", how="left")
        .join(q.group_by("window").agg(pl.len().cast(pl.Int64).alias("quarantined")), on="window", how="left")
        .fill_null(0)
        .sort("window")
    )
    reasons = q.group_by("code", "source").agg(pl.len().alias("n")).sort(["n", "code", "source"], descending=[True, False, False])
    top = [f"{r['code']} x{r['n']} from {r['source']}" for r in reasons.head(TOP_REASONS).iter_rows(named=True)]
    meta = {
        "threshold_rate": t.quarantine_rate,
        "rate": round(rate, 6),
        "quarantined": quarantined,
        "accepted": accepted,
        "windows": windows,
        "per_window": {r["window"]: {"accepted": r["accepted"], "quarantined": r["quarantined"]} for r in per_window.iter_rows(named=True)},
        "top_reasons": top,
    }
    if total < MIN_QUARANTINE_SAMPLE:
        return _outcome([], f"{total} record(s) in windows {span}: fewer than {MIN_QUARANTINE_SAMPLE}, no rate to judge", meta)
    failures = [
        f"quarantine rate {_pct(rate)} ({quarantined} of {total} records) in windows {span} > "
        f"{_pct(t.quarantine_rate)} (MEV_ALERT_QUARANTINE_RATE); top reasons: {', '.join(top)}"
    ] if rate > t.quarantine_rate else []
    return _outcome(
        failures, f"quarantine rate {_pct(rate)} ({quarantined} of {total}) in windows {span} <= {_pct(t.quarantine_rate)}", meta
    )


def coverage_by_source(coverage: pl.DataFrame, windows: list[str]) -> dict[str, float]:
    """Mean coverage per source over ``windows``; a source missing from a window counts 0 there."""
    if not windows:
        return {}
    part = coverage.filter(pl.col("window").is_in(windows))
    sums = part.group_by("source").agg(pl.col("coverage").sum()).sort("source")
    return {s: c / len(windows) for s, c in zip(sums.get_column("source").to_list(), sums.get_column("coverage").to_list())}


def check_source_coverage_live(inputs: AlertInputs, t: AlertThresholds) -> CheckOutcome:
    """Per source, live and across windows:

    * a live collector's source disconnected for longer than ``silence_seconds``;
    * a connected source that has said nothing for longer than ``silence_seconds`` while another
      source of the same collector spoke within it (a stuck subscription, not a quiet chain);
    * the mean coverage of a source over the last ``windows`` materialised windows below
      ``1 - coverage_drop`` of its mean over the windows before them (without earlier windows:
      of the best source's mean).
    """
    now = inputs.now_ms
    silence_ms = t.silence_seconds * 1000
    failures: list[str] = []
    states: dict[str, dict] = {}
    for beat in _live(inputs.heartbeats, now, t.ingest_lag_seconds * 1000):
        cid = _collector_id(beat)
        sources = _sources(beat)
        heard = {s: int(i["last_message_ms"]) for s, i in sources.items() if i.get("last_message_ms")}
        latest = max(heard.values(), default=None)
        for source, info in sources.items():
            since = info.get("state_since_ms")
            state_for_ms = now - int(since) if since else None
            silent_ms = now - heard[source] if source in heard else None
            states[f"{cid}/{source}"] = {
                "connected": bool(info.get("connected")),
                "state_for_seconds": _seconds(state_for_ms) if state_for_ms is not None else None,
                "silent_seconds": _seconds(silent_ms) if silent_ms is not None else None,
            }
            if not info.get("connected"):
                # without state_since_ms (an older collector) the duration is unknown: say so at once
                if state_for_ms is None or state_for_ms > silence_ms:
                    for_how_long = f"for {_seconds(state_for_ms)} s" if state_for_ms is not None else "(since unknown)"
                    failures.append(
                        f"collector {cid} source {source}: disconnected {for_how_long} > {t.silence_seconds} s "
                        f"(MEV_ALERT_SILENCE_SECONDS); the node is down or unreachable"
                    )
            elif silent_ms is not None and silent_ms > silence_ms and latest is not None and now - latest <= silence_ms:
                failures.append(
                    f"collector {cid} source {source}: connected but silent for {_seconds(silent_ms)} s > "
                    f"{t.silence_seconds} s (MEV_ALERT_SILENCE_SECONDS) while another source spoke "
                    f"{_seconds(now - latest)} s ago; its subscription is stuck"
                )
    have = sorted(set(inputs.coverage.get_column("window").to_list()))
    recent, before = have[-t.windows:], have[:-t.windows][-t.windows:]
    now_cov = coverage_by_source(inputs.coverage, recent)
    if before:
        reference, basis = coverage_by_source(inputs.coverage, before), f"windows {before[0]}..{before[-1]}"
    else:
        best = max(now_cov.values(), default=0.0)
        reference, basis = {s: best for s in now_cov}, "the best source of the same windows"
    floor = 1 - t.coverage_drop
    for source, ref in sorted(reference.items()):
        cov = now_cov.get(source, 0.0)
        if ref > 0 and cov < floor * ref:
            failures.append(
                f"source {source}: mean coverage {cov:.3f} over windows {recent[0]}..{recent[-1]} fell more than "
                f"{_pct(t.coverage_drop)} (MEV_ALERT_COVERAGE_DROP) below {ref:.3f} of {basis}"
            )
    meta = {
        "threshold_drop": t.coverage_drop,
        "silence_seconds": t.silence_seconds,
        "sources": states,
        "coverage_recent": {s: round(c, 4) for s, c in now_cov.items()},
        "coverage_reference": {s: round(c, 4) for s, c in reference.items()},
        "recent_windows": recent,
        "reference": basis,
    }
    live_part = f"{len(states)} live source(s) connected and talking" if states else "no live collector"
    coverage_part = (
        f"coverage of {len(now_cov)} source(s) over {len(recent)} window(s) within {_pct(t.coverage_drop)} of {basis}"
        if recent else "no recent mempool_source_stats to compare"
    )
    ok = f"{live_part}; {coverage_part}"
    return _outcome(failures, ok, meta)


CONDITIONS: dict[str, Callable[[AlertInputs, AlertThresholds], CheckOutcome]] = {
    COLLECTOR_QUEUE_SATURATION: check_queue_saturation,
    INGEST_LAG: check_ingest_lag,
    QUARANTINE_RATE: check_quarantine_rate,
    SOURCE_COVERAGE_LIVE: check_source_coverage_live,
}


def evaluate_alerts(inputs: AlertInputs, thresholds: AlertThresholds, names: list[str] | None = None) -> dict[str, CheckOutcome]:
    """Every condition (or those in ``names``) on the same inputs."""
    return {name: CONDITIONS[name](inputs, thresholds) for name in (names or CONDITIONS)}


# ---- reading the inputs ----------------------------------------------------------------------
def read_alert_inputs(zone: LandingZone, lake: Lake | None, thresholds: AlertThresholds, now_ms: int) -> AlertInputs:
    """Heartbeats, the newest sealed window, recent accepted/quarantined counts and coverage.

    Reads only recent windows: the listing starts at ``now`` minus the lookback (at least an hour,
    or a few times the lag threshold), never walks the whole retention period.
    """
    w_ms = thresholds.window_seconds * 1000
    lookback_ms = max(MIN_LOOKBACK_MS, 3 * thresholds.ingest_lag_seconds * 1000, (2 * thresholds.windows + 2) * w_ms)
    since = key_for_start_ms(window_start_ms(now_ms - lookback_ms, thresholds.window_seconds))
    ended = [k for k in zone.windows("mempool", since=since) if _ended(k, thresholds.window_seconds, now_ms)]
    newest_sealed = next((k for k in reversed(ended) if zone.sealed_by(k)), None)
    in_quarantine = [k for k in zone.windows(QUARANTINE, since=since) if _ended(k, thresholds.window_seconds, now_ms)]
    recent = sorted(set(ended[-thresholds.windows:]) | set(in_quarantine))[-thresholds.windows:]

    accepted_rows = []
    quarantined_rows: dict[str, list] = {"window": [], "source": [], "code": []}
    for key in recent:
        rows = sum(zone.read_segment(s, ["hash"]).height for s in zone.segment_files("mempool", key))
        accepted_rows.append({"window": key, "accepted": rows})
        for record in zone.quarantine_records(key):
            quarantined_rows["window"].append(key)
            quarantined_rows["source"].append(str(record.get("source")))
            quarantined_rows["code"].append(str(record.get("code") or str(record.get("reason", "unknown")).split(":", 1)[0]))

    coverage_frames = []
    if lake is not None:
        for key in ended[-2 * thresholds.windows:]:
            try:
                coverage_frames.append(lake.read_window("mempool_source_stats", key, ["window", "source", "coverage"]))
            except LakeMissingError:
                continue  # not materialised (yet): the coverage looks at the windows that are
    coverage = (
        pl.concat([f.cast(COVERAGE_FRAME_SCHEMA) for f in coverage_frames]) if coverage_frames else pl.DataFrame(schema=COVERAGE_FRAME_SCHEMA)
    )
    return AlertInputs(
        now_ms=now_ms,
        heartbeats=zone.heartbeats(),
        newest_sealed=newest_sealed,
        recent_windows=recent,
        accepted=pl.DataFrame(accepted_rows, schema=ACCEPTED_FRAME_SCHEMA),
        quarantined=pl.DataFrame(quarantined_rows, schema=QUARANTINE_FRAME_SCHEMA),
        coverage=coverage,
        lookback_ms=lookback_ms,
    )


def _ended(key: str, window_seconds: int, now_ms: int) -> bool:
    try:
        return key_end_ms(key, window_seconds) <= now_ms
    except ValueError:
        return False  # a stray directory, not a window of ours


__all__ = [
    "AlertInputs",
    "AlertThresholds",
    "COLLECTOR_QUEUE_SATURATION",
    "CONDITIONS",
    "INGEST_LAG",
    "QUARANTINE_RATE",
    "SOURCE_COVERAGE_LIVE",
    "check_ingest_lag",
    "check_quarantine_rate",
    "check_queue_saturation",
    "check_source_coverage_live",
    "coverage_by_source",
    "evaluate_alerts",
    "read_alert_inputs",
]
