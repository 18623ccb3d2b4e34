-- V003: the dbt daily rollups on a ClickHouse server.
--
-- Same conventions as V001 (applied once, never edited; `${database}` filled in by the runner).
-- Columns and types are those of the rollup files in the lake (ROLLUP_SCHEMAS in
-- mev_assets/core/rollups.py, TableSpecs ROLLUPS in mev_assets/core/clickhouse.py; a test compares
-- them), so a query runs the same on the embedded backend and here.
-- Loaded one day at a time by Warehouse.load_day: the rows of the day are inserted under a newer
-- `loaded_at` (the ReplacingMergeTree version) and the day's older versions deleted, so a rebuilt
-- day replaces its rows. `date` is part of the sorting key, so versions collapse per day and key.
-- Partitions are months (a few rows a day). No TTL: the rollups outlive the per-window tables
-- and MEV_RETENTION_DAYS on purpose (docs/dbt.md), as they do in DuckDB and in the lake.

-- daily_mempool_stats: one row per date
CREATE TABLE IF NOT EXISTS ${database}.daily_mempool_stats
(
    `date`                Date,
    `active_windows`      Int64,
    `tx_count`            Int64,
    `unique_senders`      Int64,
    `unique_recipients`   Int64,
    `contract_creations`  Int64,
    `contract_calls`      Int64,
    `first_seen_at`       DateTime64(6, 'UTC'),
    `last_seen_at`        DateTime64(6, 'UTC'),
    `total_value_eth`     Nullable(Float64),
    `max_fee_gwei_p50`    Nullable(Float64),
    `max_fee_gwei_p90`    Nullable(Float64),
    `max_fee_gwei_p99`    Nullable(Float64),
    `tip_gwei_p50`        Nullable(Float64),
    `tip_gwei_p90`        Nullable(Float64),
    `tip_gwei_p99`        Nullable(Float64),
    `loaded_at`           DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(date)
ORDER BY date;

-- daily_source_coverage: one row per date and source
CREATE TABLE IF NOT EXISTS ${database}.daily_source_coverage
(
    `date`                 Date,
    `source`               LowCardinality(String),
    `windows_seen`         Int64,
    `txs_seen`             Int64,
    `unique_to_source`     Int64,
    `first_arrivals`       Int64,
    `shared_txs`           Int64,
    `day_tx_count`         Int64,
    `coverage`             Float64,
    `first_arrival_share`  Float64,
    `latency_p50_ms`       Nullable(Float64),
    `latency_p90_ms`       Nullable(Float64),
    `latency_p99_ms`       Nullable(Float64),
    `latency_max_ms`       Nullable(Int64),
    `loaded_at`            DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(date)
ORDER BY (date, source);

-- daily_protocol_mix: one row per date and protocol
CREATE TABLE IF NOT EXISTS ${database}.daily_protocol_mix
(
    `date`            Date,
    `protocol`        LowCardinality(String),
    `protocol_kind`   LowCardinality(Nullable(String)),
    `tx_count`        Int64,
    `decoded_txs`     Int64,
    `unique_senders`  Int64,
    `share_of_day`    Float64,
    `loaded_at`       DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY toYYYYMM(date)
ORDER BY (date, protocol);
