"""The micro-batch partitions: one dynamic ``mempool_windows`` key per closed window.

Dynamic rather than time-window partitions: the sensor adds a key when the collectors seal a window
and the retention job deletes it, so the live set stays ``retention_days x windows/day``
(see docs/architecture.md).
"""

from dagster import DynamicPartitionsDefinition

from mev_assets.core.windows import key_end_ms, key_start_ms, window_key  # noqa: F401 (re-exported)

MEMPOOL_WINDOWS = "mempool_windows"

mempool_windows = DynamicPartitionsDefinition(name=MEMPOOL_WINDOWS)
