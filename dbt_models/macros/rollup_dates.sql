{#-
  Which windows a run rebuilds. The daily rollups are incremental: a run rebuilds the latest date
  already built and `rollup_lookback_days` before it (delete+insert by date); older dates keep
  their rows, so the rollups outlive the retention of the per-window tables. A full build (first
  run, --full-refresh) rebuilds every date still in the per-window tables.

  rollup_since() is the first rebuilt date, or none for a full build. Filters compare the window
  key (`YYYY-MM-DDTHH:MM:SS` sorts as time) with a literal, so DuckDB skips row groups of older
  windows instead of scanning the whole retention period.
-#}
{% macro rollup_since(relations) %}
  {#- The earliest date any of `relations` (built rollups) rebuilds; none for a full build. -#}
  {%- if not execute or flags.FULL_REFRESH or relations | length == 0 %}{{ return(none) }}{% endif -%}
  {%- set latest_dates -%}
    {%- for relation in relations %}
    select max(date) as latest from {{ relation }}{% if not loop.last %} union all{% endif %}
    {%- endfor %}
  {%- endset -%}
  {%- set since = run_query("select min(latest) - " ~ (var('rollup_lookback_days') | int) ~ " from (" ~ latest_dates ~ ")") -%}
  {{ return(since.columns[0].values()[0]) }}
{% endmacro %}


{#- The where clause of an incremental rollup's input: its own dates to rebuild (empty on a full build). -#}
{% macro rollup_windows_filter() %}
  {%- if is_incremental() %}
    {%- set since = rollup_since([this]) %}
    {%- if since is not none %} where window_key >= '{{ since }}'{% endif %}
  {%- endif %}
{% endmacro %}


{#-
  The windows a run rolls up, for the tests of the staging views: from the earliest date any
  rollup rebuilds (a staging test runs before the rollups downstream of it are rebuilt, so their
  previous state decides). none (test every row) while a rollup has not been built yet.
-#}
{% macro rebuilt_windows_since() %}
  {%- set relations = [] -%}
  {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.config.materialized == 'incremental' -%}
    {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- if relation is none %}{{ return(none) }}{% endif -%}
    {%- do relations.append(relation) -%}
  {%- endfor -%}
  {{ return(rollup_since(relations)) }}
{% endmacro %}


{#-
  dbt's hook for the `where` config of data tests, extended by one placeholder: a test configured
  with `where: "__rebuilt_windows__"` checks only the windows this run rolls up, so a test on a
  staging view costs one day's rows, not the whole retention period. (This is dbt's documented
  way to customise `where`; any other `where` works as in dbt.)
-#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where') -%}
  {%- if where == '__rebuilt_windows__' -%}
    {%- set since = rebuilt_windows_since() -%}
    {%- if since is none %}{% do return(relation) %}{% endif -%}
    {%- set filtered -%}
      (select * from {{ relation }} where window_key >= '{{ since }}') dbt_subquery
    {%- endset -%}
    {% do return(filtered) %}
  {%- elif where -%}
    {%- set filtered -%}
      (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- endset -%}
    {% do return(filtered) %}
  {%- else -%}
    {% do return(relation) %}
  {%- endif -%}
{%- endmacro %}


{#-
  on-run-start: record the first date this run rebuilds (NULL: a full build) in
  mev_daily.rollup_rebuild, before any model runs. Read by the export of the rollups to the lake
  (mev_assets/core/rollups.py: the days from there on are exported) and, in S3 mode, by the lake
  source plugin (mev_assets/dbt_lake_plugin.py: only those days' window files are read).
-#}
{% macro record_rebuilt_since() %}
  {%- if execute -%}
    {%- set since = rebuilt_windows_since() -%}
    {%- set since_sql = "date '" ~ since ~ "'" if since is not none else "cast(null as date)" -%}
    {%- do run_query("create schema if not exists " ~ target.schema) -%}
    {%- do run_query(
        "create or replace table " ~ target.schema ~ ".rollup_rebuild as select " ~ since_sql
        ~ " as since, current_timestamp as recorded_at") -%}
  {%- endif -%}
  select 1
{% endmacro %}
