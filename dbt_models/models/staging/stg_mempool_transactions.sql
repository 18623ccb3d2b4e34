-- One row per pending transaction per window, typed for SQL: reserved words renamed
-- (`window`, `from`, `to`), times as TIMESTAMP (UTC), wei amounts as HUGEINT where they fit
-- (NULL where they do not: the raw decimal string stays beside them) and as DOUBLE gwei / ETH
-- for statistics. try_cast, not cast: a malformed amount must fail a test, not the whole build.
select
    "window" as window_key,
    strptime("window", '%Y-%m-%dT%H:%M:%S') as window_start,
    cast(strptime("window", '%Y-%m-%dT%H:%M:%S') as date) as date,
    timestamp_ms,
    make_timestamp(timestamp_ms * 1000) as seen_at,
    hash,
    chain_id,
    tx_type,
    "from" as sender,
    nullif("to", '') as recipient,
    coalesce("to", '') = '' as is_contract_creation,
    nonce,
    gas,
    value as value_wei_text,
    try_cast(value as hugeint) as value_wei,
    try_cast(value as double) / 1e18 as value_eth,
    try_cast(gas_price as hugeint) as gas_price_wei,
    try_cast(gas_fee_cap as hugeint) as max_fee_wei,
    try_cast(gas_tip_cap as hugeint) as tip_wei,
    try_cast(gas_price as double) / 1e9 as gas_price_gwei,
    try_cast(gas_fee_cap as double) / 1e9 as max_fee_gwei,
    try_cast(gas_tip_cap as double) / 1e9 as tip_gwei,
    data_size,
    nullif(data_4bytes, '') as selector,
    sources[1] as first_source,
    len(sources) as source_count
from {{ per_window_source('mempool_transactions') }}
