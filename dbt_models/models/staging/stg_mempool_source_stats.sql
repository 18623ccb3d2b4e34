-- Per window and source: coverage and latency behind the first source, with the window's date.
select
    "window" as window_key,
    strptime("window", '%Y-%m-%dT%H:%M:%S') as window_start,
    cast(strptime("window", '%Y-%m-%dT%H:%M:%S') as date) as date,
    source,
    txs_seen,
    unique_to_source,
    first_arrivals,
    first_arrival_share,
    coverage,
    shared_txs,
    latency_p50_ms,
    latency_p90_ms,
    latency_p99_ms,
    latency_max_ms
from {{ per_window_source('mempool_source_stats') }}
