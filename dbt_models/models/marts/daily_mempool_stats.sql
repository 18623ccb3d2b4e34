{{ config(unique_key='date') }}
-- Per UTC date: how much pending flow there was, from how many senders, and what it bid.
-- Fee percentiles interpolate linearly between ranks (quantile_cont) over the day's transactions.
with txs as (
    select * from {{ ref('stg_mempool_transactions') }}
    {{ rollup_windows_filter() }}
)
select
    date,
    count(distinct window_key) as active_windows,
    count(*) as tx_count,
    count(distinct sender) as unique_senders,
    count(distinct recipient) as unique_recipients,
    count(*) filter (where is_contract_creation) as contract_creations,
    count(*) filter (where selector is not null and not is_contract_creation) as contract_calls,
    min(seen_at) as first_seen_at,
    max(seen_at) as last_seen_at,
    sum(value_eth) as total_value_eth,
    quantile_cont(max_fee_gwei, 0.5) as max_fee_gwei_p50,
    quantile_cont(max_fee_gwei, 0.9) as max_fee_gwei_p90,
    quantile_cont(max_fee_gwei, 0.99) as max_fee_gwei_p99,
    quantile_cont(tip_gwei, 0.5) as tip_gwei_p50,
    quantile_cont(tip_gwei, 0.9) as tip_gwei_p90,
    quantile_cont(tip_gwei, 0.99) as tip_gwei_p99
from txs
group by date
