{#- OCSF's metadata object, the same in every ocsf_* mart, so that the product or the OCSF
    version changes in one place: as flat columns named by their path (metadata_product_name
    = metadata.product.name) and as the nested JSON object OCSF consumers read. `uid` is the
    event's id and `tenant_uid` the 1Password account's, both columns of the model; the
    version is the project variable ocsf_version. -#}
{% macro ocsf_metadata(uid, tenant_uid) -%}
    {%- set version = "'" ~ var('ocsf_version') ~ "'" -%}
    {%- set product_name = "'1Password Events API'" -%}
    {%- set vendor_name = "'1Password'" -%}
    {{ uid }} as metadata_uid,
    {{ product_name }} as metadata_product_name,
    {{ vendor_name }} as metadata_product_vendor_name,
    {{ version }} as metadata_version,
    {{ json_object([
        "'version'", version,
        "'uid'", uid,
        "'product'", json_object(["'name'", product_name, "'vendor_name'", vendor_name]),
        "'tenant_uid'", tenant_uid,
    ]) }} as metadata
{%- endmacro %}

{#- OCSF's severity caption from its id, the same in every ocsf_* mart: ids 1 to 4 by name,
    any other id or NULL 'Unknown'. An expression, for the column `severity` beside
    `severity_id`. -#}
{% macro ocsf_severity(severity_id) -%}
    case {{ severity_id }} when 1 then 'Informational' when 2 then 'Low' when 3 then 'Medium'
        when 4 then 'High' else 'Unknown' end
{%- endmacro %}

{#- OCSF's event time, the same in every ocsf_* mart: `time` in epoch milliseconds (OCSF's
    timestamp_t) and `time_dt` as the timestamp with time zone itself. `event_time` is a
    column of the model. -#}
{% macro ocsf_time(event_time) -%}
    {{ epoch_milliseconds(event_time) }} as "time",
    {{ event_time }} as time_dt
{%- endmacro %}
