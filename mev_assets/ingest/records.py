"""The collector's in-memory and write-ahead-log record formats.

Three kinds of record, each a plain tuple in a fixed column order (cheap to build on the hot
path, cheap to turn into a polars frame at seal time):

* ``T`` - an accepted transaction: the landing columns (``LANDING_TX_SCHEMA`` without
  ``collector_id``, which is constant per segment). A ``T`` record also stands for the
  sighting ``(timestamp_ms, hash, source)`` of the source that delivered it first.
* ``S`` - any further sighting ``(timestamp_ms, hash, source)``: the first time another source
  announced an accepted hash.
* ``B`` - a new head (``BLOCKS_SCHEMA`` without ``collector_id``).

In the log each record is one kind byte followed by the tuple as compact JSON.
"""

from __future__ import annotations

import json
from operator import itemgetter

from mev_assets.core.schemas import BLOCKS_SCHEMA, LANDING_TX_SCHEMA, SOURCELOG_SCHEMA

TX_COLUMNS: tuple[str, ...] = tuple(c for c in LANDING_TX_SCHEMA if c != "collector_id")
# The columns transaction_to_row() provides, in landing order (timestamp_ms and source are ours).
ROW_COLUMNS: tuple[str, ...] = tuple(c for c in TX_COLUMNS if c not in ("timestamp_ms", "source"))
SIGHTING_COLUMNS: tuple[str, ...] = tuple(c for c in SOURCELOG_SCHEMA if c != "collector_id")
BLOCK_COLUMNS: tuple[str, ...] = tuple(c for c in BLOCKS_SCHEMA if c != "collector_id")

KIND_TX = 0x54  # "T"
KIND_SIGHTING = 0x53  # "S"
KIND_BLOCK = 0x42  # "B"

assert TX_COLUMNS[0] == "timestamp_ms" and TX_COLUMNS[1] == "hash" and TX_COLUMNS[-1] == "source"
TX_HASH = 1
TX_SOURCE = len(TX_COLUMNS) - 1

row_values = itemgetter(*ROW_COLUMNS)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def tx_record(timestamp_ms: int, row: dict, source: str) -> tuple:
    """The ``T`` tuple of an accepted transaction (``row`` as from ``transaction_to_row``)."""
    return (timestamp_ms, *row_values(row), source)


def encode_tx(rec: tuple) -> bytes:
    return b"T" + _dumps(rec).encode()


def encode_sighting(rec: tuple) -> bytes:
    return b"S" + _dumps(rec).encode()


def encode_block(rec: tuple) -> bytes:
    return b"B" + _dumps(rec).encode()


class RecordError(ValueError):
    pass


def decode_record(payload: bytes) -> tuple[int, tuple]:
    """``(kind, tuple)`` of one log payload."""
    if not payload:
        raise RecordError("empty record")
    kind = payload[0]
    values = json.loads(payload[1:])
    if kind == KIND_TX:
        expected = len(TX_COLUMNS)
    elif kind == KIND_SIGHTING:
        expected = len(SIGHTING_COLUMNS)
    elif kind == KIND_BLOCK:
        expected = len(BLOCK_COLUMNS)
    else:
        raise RecordError(f"unknown record kind {kind!r}")
    if not isinstance(values, list) or len(values) != expected:
        raise RecordError(f"record of kind {chr(kind)} has {len(values) if isinstance(values, list) else '?'} values, expected {expected}")
    return kind, tuple(values)
