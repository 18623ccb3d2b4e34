"""``mev-assets sql QUERY [--format table|csv|json]``: ClickHouse SQL over every pipeline table.

In-process (chdb over the Parquet lake) by default; on the ClickHouse server named by
``MEV_CLICKHOUSE_URL`` when it is set. ClickHouse renders the result itself, so every type
(arrays, UInt256, Nullable) prints the same on both backends.
"""

from __future__ import annotations

from mev_assets.core.clickhouse import ClickHouseError, EmbeddedClickHouse, LakeSource, server_client
from mev_assets.settings import Settings

# Output format -> (ClickHouse output format, settings for it).
FORMATS: dict[str, tuple[str, dict[str, object]]] = {
    "table": ("PrettyCompactMonoBlock", {"output_format_pretty_color": 0, "output_format_pretty_row_numbers": 0}),
    "csv": ("CSVWithNames", {}),
    # one JSON array of row objects; integers are exact JSON numbers (wei columns are strings
    # anyway: readers that parse numbers as doubles should select toString(...) of big sums)
    "json": ("JSONEachRow", {"output_format_json_array_of_rows": 1}),
}


class SqlError(Exception):
    """The query could not be answered; the message is one line (ClickHouse's own when it has one)."""


def run_sql(settings: Settings, query: str, fmt: str = "table") -> str:
    """Run one ClickHouse SQL statement and return its result rendered as ``fmt``."""
    if fmt not in FORMATS:
        raise SqlError(f"unknown format {fmt!r} (use one of: {', '.join(FORMATS)})")
    statement = query.strip().rstrip(";").strip()
    if not statement:
        raise SqlError("empty query")
    output_format, format_settings = FORMATS[fmt]
    try:
        if settings.clickhouse_url:
            text = _server_query(settings.clickhouse_url, statement, output_format, format_settings)
        else:
            text = EmbeddedClickHouse(LakeSource.from_settings(settings)).query_text(statement, output_format, format_settings)
    except ClickHouseError as exc:
        raise SqlError(str(exc)) from None
    text = text.rstrip("\n")
    if fmt == "table" and not text:
        return "(0 rows)"  # ClickHouse's Pretty formats print nothing at all for an empty result
    return text


def _server_query(url: str, statement: str, output_format: str, format_settings: dict[str, object]) -> str:
    client, _ = server_client(url)
    try:
        return client.raw_query(statement, settings=format_settings, fmt=output_format).decode()
    except Exception as exc:  # clickhouse-connect wraps the server's error text
        raise ClickHouseError.from_exception(exc) from None
    finally:
        client.close()
