{#-
  The per-window table `table_name` as a dbt source: the DuckDB warehouse's schema `mev` in local
  storage mode, the Parquet lake (source `mev_lake`, read by mev_assets/dbt_lake_plugin.py) with
  target `s3`. dbt records the dependency of the branch taken when it parses, so the manifest's
  lineage follows the target; both sources map to the same Dagster asset (the table's name).
-#}
{% macro per_window_source(table_name) -%}
  {%- if target.name == 's3' -%}
    {{ source('mev_lake', table_name) }}
  {%- else -%}
    {{ source('mev', table_name) }}
  {%- endif -%}
{%- endmacro %}
