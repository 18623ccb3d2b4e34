{#- Generic tests the project needs without a package download (dbt deps would need the network). -#}

{% test unique_combination(model, columns) %}
{#- Fails with every key that occurs more than once. -#}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}


{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
{#- Fails with every row whose value lies outside [min_value, max_value]; nulls are not_null's job. -#}
select *
from {{ model }}
where {{ column_name }} is not null
  and (
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% else %} false{% endif %}
    or
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% else %} false{% endif %}
  )
{% endtest %}


{% test expression_is_true(model, expression) %}
{#- Fails with every row for which the expression is false. -#}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}


{% test rows_exist_in(model, to, columns) %}
{#- Fails with every key of the model that `to` lacks: a relationships test over several columns.
    `to` is filtered by the same `where` as the model, so both sides cover the same windows. -#}
with child as (
    select distinct {{ columns | join(', ') }} from {{ model }}
),

parent as (
    select distinct {{ columns | join(', ') }} from {{ get_where_subquery(to) }}
)

select child.*
from child
left join parent on {% for column in columns %}parent.{{ column }} = child.{{ column }}{% if not loop.last %} and {% endif %}{% endfor %}
where parent.{{ columns[0] }} is null
{% endtest %}
