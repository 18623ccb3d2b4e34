{{ config(unique_key=['date', 'source']) }}
-- Per UTC date and source: how much of the day's flow the source saw, how often it was first,
-- and how far behind the first source it was.
--
-- Coverage and first-arrival share are exact: every window's table is self-contained, so the
-- day's transactions are the sum of its windows' transactions. Latency percentiles cannot be
-- merged exactly from per-window percentiles; the daily figure is each window's percentile
-- weighted by the number of transactions it was measured over (shared_txs), and the maximum is exact.
with day_txs as (
    select date, count(*) as tx_count
    from {{ ref('stg_mempool_transactions') }}
    {{ rollup_windows_filter() }}
    group by date
),

stats as (
    select * from {{ ref('stg_mempool_source_stats') }}
    {{ rollup_windows_filter() }}
)

select
    stats.date,
    stats.source,
    count(*) as windows_seen,
    cast(sum(stats.txs_seen) as bigint) as txs_seen,
    cast(sum(stats.unique_to_source) as bigint) as unique_to_source,
    cast(sum(stats.first_arrivals) as bigint) as first_arrivals,
    cast(sum(stats.shared_txs) as bigint) as shared_txs,
    any_value(day_txs.tx_count) as day_tx_count,
    sum(stats.txs_seen) / any_value(day_txs.tx_count) as coverage,
    sum(stats.first_arrivals) / any_value(day_txs.tx_count) as first_arrival_share,
    sum(stats.latency_p50_ms * stats.shared_txs) filter (where stats.shared_txs > 0)
        / nullif(sum(stats.shared_txs), 0) as latency_p50_ms,
    sum(stats.latency_p90_ms * stats.shared_txs) filter (where stats.shared_txs > 0)
        / nullif(sum(stats.shared_txs), 0) as latency_p90_ms,
    sum(stats.latency_p99_ms * stats.shared_txs) filter (where stats.shared_txs > 0)
        / nullif(sum(stats.shared_txs), 0) as latency_p99_ms,
    max(stats.latency_max_ms) as latency_max_ms
from stats
inner join day_txs on day_txs.date = stats.date
group by stats.date, stats.source
