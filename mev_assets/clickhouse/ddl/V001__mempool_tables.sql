-- V001: the per-window tables of the streaming lane on a ClickHouse server.
--
-- Applied once per database by mev_assets.core.clickhouse.migrate(), which records the version in
-- `${database}.schema_migrations`. Never edit an applied file: add V002__….sql instead (the runner
-- refuses a changed checksum). `${database}` and `${retention_days}` are filled in by the runner;
-- statements end with a semicolon at the end of a line.
--
-- Column names and types match the embedded views over the Parquet lake (wei stays a decimal
-- String, as in the lake: cast with toUInt256() to compute), so one query runs on both backends.
-- Two columns are added by the server tables:
--   `date`       the window's UTC day: the partition key and the TTL clock (the lake views have it too);
--   `loaded_at`  when the window was loaded: the version of ReplacingMergeTree, so a reload of a
--                window replaces its rows (the loader then deletes older versions of the window).
-- Partitions are days (not windows: 1,440 one-minute partitions a day would be far too many);
-- TTL drops whole day-parts once a window is older than MEV_RETENTION_DAYS.

CREATE TABLE IF NOT EXISTS ${database}.mempool_transactions
(
    `window`       LowCardinality(String),
    `timestamp_ms` Int64,
    `hash`         String,
    `chain_id`     Nullable(Int64),
    `tx_type`      Int64,
    `from`         String,
    `to`           Nullable(String),
    `value`        String,
    `nonce`        UInt64,
    `gas`          UInt64,
    `gas_price`    String,
    `gas_tip_cap`  String,
    `gas_fee_cap`  String,
    `data_size`    Int64,
    `data_4bytes`  LowCardinality(String),
    `sources`      Array(LowCardinality(String)),
    `input`        String CODEC(ZSTD(3)),
    `raw_tx`       String CODEC(ZSTD(3)),
    `date`         Date DEFAULT toDate(left(`window`, 10)),
    `loaded_at`    DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY date
ORDER BY (`window`, hash)
TTL date + INTERVAL ${retention_days} DAY
SETTINGS ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS ${database}.mempool_source_stats
(
    `window`              LowCardinality(String),
    `source`              LowCardinality(String),
    `txs_seen`            Int64,
    `unique_to_source`    Int64,
    `first_arrivals`      Int64,
    `first_arrival_share` Float64,
    `coverage`            Float64,
    `shared_txs`          Int64,
    `latency_p50_ms`      Nullable(Float64),
    `latency_p90_ms`      Nullable(Float64),
    `latency_p99_ms`      Nullable(Float64),
    `latency_max_ms`      Nullable(Int64),
    `date`                Date DEFAULT toDate(left(`window`, 10)),
    `loaded_at`           DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY date
ORDER BY (`window`, source)
TTL date + INTERVAL ${retention_days} DAY
SETTINGS ttl_only_drop_parts = 1;
