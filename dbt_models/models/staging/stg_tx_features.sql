-- Per pending transaction per window: the protocol and method its calldata decodes to
-- (tx_features, decoded with the protocol registry), with the window's date.
select
    "window" as window_key,
    cast(strptime("window", '%Y-%m-%dT%H:%M:%S') as date) as date,
    hash,
    "from" as sender,
    protocol,
    protocol_kind,
    method,
    decode_status
from {{ per_window_source('tx_features') }}
