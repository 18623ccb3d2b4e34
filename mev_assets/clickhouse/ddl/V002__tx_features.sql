-- V002: tx_features (decoded calldata and fee features, one row per transaction and window).
--
-- Same conventions as V001 (applied once, never edited; `${database}` and `${retention_days}`
-- filled in by the runner). Columns and types are those of the lake files (TableSpec
-- "tx_features" in mev_assets/core/clickhouse.py; a test compares them), so one query runs on both
-- backends: wei amounts and token amounts are decimal Strings (cast with toUInt256()), decoded
-- fields that do not apply to a transaction are NULL, lists are Arrays (empty when not a swap).
-- `date` and `loaded_at` as in V001: the day partition / TTL clock, and the ReplacingMergeTree
-- version that makes a window reload replace the window's rows.

CREATE TABLE IF NOT EXISTS ${database}.tx_features
(
    `window`                    LowCardinality(String),
    `timestamp_ms`              Int64,
    `hash`                      String,
    `from`                      String,
    `to`                        Nullable(String),
    `tx_type`                   Int64,
    `nonce`                     UInt64,
    `protocol`                  LowCardinality(Nullable(String)),
    `protocol_kind`             LowCardinality(Nullable(String)),
    `method`                    LowCardinality(Nullable(String)),
    `decode_status`             LowCardinality(String),
    `decode_error`              Nullable(String) CODEC(ZSTD(3)),
    `swap_kind`                 LowCardinality(Nullable(String)),
    `token_in`                  Nullable(String),
    `token_out`                 Nullable(String),
    `token_in_symbol`           LowCardinality(Nullable(String)),
    `token_out_symbol`          LowCardinality(Nullable(String)),
    `amount_in`                 Nullable(String),
    `amount_out`                Nullable(String),
    `amount_out_min`            Nullable(String),
    `amount_in_max`             Nullable(String),
    `amount_in_norm`            Nullable(Float64),
    `amount_out_norm`           Nullable(Float64),
    `amount_out_min_norm`       Nullable(Float64),
    `amount_in_max_norm`        Nullable(Float64),
    `path`                      Array(String),
    `fee_tiers`                 Array(Int64),
    `recipient`                 Nullable(String),
    `deadline`                  Nullable(Int64),
    `commands`                  Array(String),
    `args_json`                 Nullable(String) CODEC(ZSTD(3)),
    `max_fee_per_gas`           Nullable(String),
    `max_priority_fee_per_gas`  Nullable(String),
    `max_fee_gwei`              Nullable(Float64),
    `tip_gwei`                  Nullable(Float64),
    `base_fee_per_gas`          Nullable(String),
    `base_fee_gwei`             Nullable(Float64),
    `effective_tip_per_gas`     Nullable(String),
    `effective_tip_gwei`        Nullable(Float64),
    `underpriced`               Nullable(Bool),
    `fee_rank`                  Nullable(Int64),
    `fee_percentile`            Nullable(Float64),
    `value_wei`                 Nullable(String),
    `value_eth`                 Nullable(Float64),
    `data_size`                 Nullable(Int64),
    `is_contract_creation`      Nullable(Bool),
    `gas_limit`                 Nullable(UInt64),
    `sender_pending_count`      Nullable(Int64),
    `sender_nonce_rank`         Nullable(Int64),
    `nonce_gap`                 Nullable(Int64),
    `is_replacement`            Nullable(Bool),
    `amount_out_of_range`       Nullable(Bool),
    `date`                      Date DEFAULT toDate(left(`window`, 10)),
    `loaded_at`                 DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
PARTITION BY date
ORDER BY (`window`, hash)
TTL date + INTERVAL ${retention_days} DAY
SETTINGS ttl_only_drop_parts = 1;
