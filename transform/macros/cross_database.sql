{#- The few places where PostgreSQL and DuckDB SQL differ, dispatched on the adapter. -#}

{#- A text value inside a JSON column: SQL NULL when the key is absent or the JSON is null;
    empty strings become NULL too. Both warehouses spell it `->>`. -#}
{% macro json_text(column, key) -%}
    nullif(({{ column }} ->> '{{ key }}'), '')
{%- endmacro %}

{% macro json_number(column, key) -%}
    cast(({{ column }} ->> '{{ key }}') as {{ dbt.type_float() }})
{%- endmacro %}

{#- A `timestamp without time zone` that the loader wrote in UTC, as a time-zone-aware
    timestamp: `timestamptz` on PostgreSQL, `timestamp with time zone` on DuckDB. -#}
{% macro utc_timestamptz(column) -%}
    ({{ column }} at time zone 'UTC')
{%- endmacro %}

{#- An RFC 3339 text (for example session.login_time inside a JSON column) as a timestamp
    with time zone. -#}
{% macro rfc3339_timestamptz(expression) -%}
    {{ return(adapter.dispatch('rfc3339_timestamptz', 'onepassword')(expression)) }}
{%- endmacro %}
{% macro default__rfc3339_timestamptz(expression) -%}
    cast({{ expression }} as timestamp with time zone)
{%- endmacro %}
{% macro duckdb__rfc3339_timestamptz(expression) -%}
    cast(left(regexp_replace({{ expression }}, '(\.\d{6})\d+', '\1'), 64) as timestamp with time zone)
{%- endmacro %}

{#- An IP address: `inet` on PostgreSQL (texts that are not an address become NULL rather
    than failing the build); text on DuckDB, whose inet extension is not bundled. -#}
{% macro ip_address(expression) -%}
    {{ return(adapter.dispatch('ip_address', 'onepassword')(expression)) }}
{%- endmacro %}
{% macro default__ip_address(expression) -%}
    {{ expression }}
{%- endmacro %}
{% macro postgres__ip_address(expression) -%}
    case
        when {{ expression }} ~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
            then cast({{ expression }} as inet)
        when {{ expression }} ~ '^[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}$'
            and {{ expression }} !~ ':::'
            then cast({{ expression }} as inet)
    end
{%- endmacro %}

{#- The type of the ip_address() columns, for casting NULLs in unions. -#}
{% macro type_ip_address() -%}
    {{ return(adapter.dispatch('type_ip_address', 'onepassword')()) }}
{%- endmacro %}
{% macro default__type_ip_address() -%}{{ dbt.type_string() }}{%- endmacro %}
{% macro postgres__type_ip_address() -%}inet{%- endmacro %}

{#- A JSON object from alternating keys and values, as OCSF consumers read nested
    attributes (`metadata.product.name`). -#}
{% macro json_object(pairs) -%}
    {{ return(adapter.dispatch('json_object', 'onepassword')(pairs)) }}
{%- endmacro %}
{% macro default__json_object(pairs) -%}
    json_object({{ pairs | join(', ') }})
{%- endmacro %}
{% macro postgres__json_object(pairs) -%}
    jsonb_build_object({{ pairs | join(', ') }})
{%- endmacro %}

{#- Epoch milliseconds of a timestamp with time zone (OCSF `time` is timestamp_t, ms). -#}
{% macro epoch_milliseconds(column) -%}
    {{ return(adapter.dispatch('epoch_milliseconds', 'onepassword')(column)) }}
{%- endmacro %}
{% macro default__epoch_milliseconds(column) -%}
    cast(floor(extract(epoch from {{ column }}) * 1000) as bigint)
{%- endmacro %}
{% macro duckdb__epoch_milliseconds(column) -%}
    epoch_ms({{ column }})
{%- endmacro %}
