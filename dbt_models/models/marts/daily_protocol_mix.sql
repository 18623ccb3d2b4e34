{{ config(unique_key=['date', 'protocol']) }}
-- Per UTC date and protocol: the pending transactions that call it, their share of the date's
-- transactions and their senders. A transaction the registry does not attribute to a protocol is
-- counted under its decode status in parentheses ('(no_calldata)', '(unknown_selector)', ...),
-- so the shares of a date add up to 1.
with features as (
    select
        date,
        coalesce(protocol, '(' || decode_status || ')') as protocol,
        protocol_kind,
        decode_status,
        sender
    from {{ ref('stg_tx_features') }}
    {{ rollup_windows_filter() }}
),

day_txs as (
    select date, count(*) as day_tx_count
    from features
    group by date
)

select
    features.date,
    features.protocol,
    any_value(features.protocol_kind) as protocol_kind,
    count(*) as tx_count,
    count(*) filter (where features.decode_status = 'decoded') as decoded_txs,
    count(distinct features.sender) as unique_senders,
    count(*) / any_value(day_txs.day_tx_count) as share_of_day
from features
inner join day_txs on day_txs.date = features.date
group by features.date, features.protocol
