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
