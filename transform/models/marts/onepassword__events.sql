{{ config(indexes=[
    {'columns': ['account_uuid', 'event_time']},
    {'columns': ['user_uuid', 'event_time']},
    {'columns': ['vault_uuid', 'event_time']},
]) }}
{#- Every event of every stream in one table: when, where (account), which stream, what
    (category, action), how it ended, who (the signing-in user, the item's user, the audit
    actor) and from where (source IP, country). -#}
select
    event_key,
    event_uuid,
    'sign_in_attempts' as stream,
    account_name,
    account_uuid,
    event_time,
    event_date_utc,
    category,
    sign_in_type as action,
    outcome,
    is_success,
    outcome_description as description,
    user_uuid,
    user_email,
    user_name,
    cast(null as {{ dbt.type_string() }}) as vault_uuid,
    cast(null as {{ dbt.type_string() }}) as item_uuid,
    source_ip,
    country_code,
    location_country,
    severity_id
from {{ ref('stg_onepassword__sign_in_attempts') }}

union all

select
    event_key,
    event_uuid,
    'item_usages' as stream,
    account_name,
    account_uuid,
    event_time,
    event_date_utc,
    case when is_secret_exposure then 'secret_exposure' else 'item_usage' end as category,
    action,
    'success' as outcome,
    true as is_success,
    action_description as description,
    user_uuid,
    user_email,
    user_name,
    vault_uuid,
    item_uuid,
    source_ip,
    cast(null as {{ dbt.type_string() }}) as country_code,
    location_country,
    severity_id
from {{ ref('stg_onepassword__item_usages') }}

union all

select
    event_key,
    event_uuid,
    'audit_events' as stream,
    account_name,
    account_uuid,
    event_time,
    event_date_utc,
    action_category as category,
    action || ':' || coalesce(object_type, '?') as action,
    'success' as outcome,
    true as is_success,
    action_description as description,
    actor_uuid as user_uuid,
    actor_email as user_email,
    actor_name as user_name,
    case when object_type = 'vault' then object_uuid end as vault_uuid,
    case when object_type = 'item' then object_uuid end as item_uuid,
    source_ip,
    cast(null as {{ dbt.type_string() }}) as country_code,
    location_country,
    severity_id
from {{ ref('stg_onepassword__audit_events') }}
