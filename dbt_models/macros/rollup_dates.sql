{#-
  The dates an incremental rollup rebuilds: on a full build every date; on an incremental one the
  latest date already built and `rollup_lookback_days` before it. Older days keep their rows, so a
  rollup outlives the retention of the per-window tables it was built from.
-#}
{% macro rollup_dates_filter(date_column='date') %}
  {%- if is_incremental() %}
    where {{ date_column }} >= (
      select coalesce(max(date), date '1970-01-01') - {{ var('rollup_lookback_days') | int }}
      from {{ this }}
    )
  {%- endif %}
{% endmacro %}
