{{ config(indexes=[
    {'columns': ['account_uuid', 'event_time']},
    {'columns': ['user_uuid', 'event_time']},
    {'columns': ['vault_uuid', 'event_time']},
]) }}
{#- Item usages, typed: the user as user_* columns (no quoting of `user` needed), and
    is_secret_exposure from the lookup onepassword_item_usage_actions (reveal, secure-copy,
    export, share). An action the lookup does not know is kept and labelled unknown. -#}
with usages as (
    select * from {{ source('onepassword', 'item_usages') }}
),

accounts as (
    select account_name, account_uuid from {{ ref('stg_onepassword__accounts') }}
),

actions as (
    select * from {{ ref('onepassword_item_usage_actions') }}
)

select
    usages.account_name || ':' || usages.uuid as event_key,
    usages.uuid as event_uuid,
    usages.account_name,
    coalesce(usages.account_uuid, accounts.account_uuid) as account_uuid,
    {{ utc_timestamptz('usages.timestamp') }} as event_time,
    cast(usages.timestamp as date) as event_date_utc,
    usages.action,
    coalesce(actions.description, 'unknown: ' || usages.action) as action_description,
    actions.is_secret_exposure,
    coalesce(actions.ocsf_activity_id, 0) as ocsf_activity_id,
    coalesce(actions.ocsf_activity_name, 'Unknown') as ocsf_activity_name,
    coalesce(actions.severity_id, 0) as severity_id,
    cast(usages.used_version as bigint) as used_version,
    usages.vault_uuid,
    usages.item_uuid,
    {{ json_text('usages."user"', 'uuid') }} as user_uuid,
    {{ json_text('usages."user"', 'email') }} as user_email,
    {{ json_text('usages."user"', 'name') }} as user_name,
    {{ json_text('usages."user"', 'user_type') }} as user_type,
    {{ json_text('usages."user"', 'user_account_uuid') }} as user_account_uuid,
    {{ json_text('usages.client', 'app_name') }} as client_app_name,
    {{ json_text('usages.client', 'app_version') }} as client_app_version,
    {{ json_text('usages.client', 'platform_name') }} as client_platform_name,
    {{ json_text('usages.client', 'platform_version') }} as client_platform_version,
    {{ json_text('usages.client', 'os_name') }} as client_os_name,
    {{ json_text('usages.client', 'os_version') }} as client_os_version,
    {{ ip_address(json_text('usages.client', 'ip_address')) }} as source_ip,
    {{ json_text('usages.location', 'country') }} as location_country,
    {{ json_text('usages.location', 'region') }} as location_region,
    {{ json_text('usages.location', 'city') }} as location_city,
    {{ json_number('usages.location', 'latitude') }} as location_latitude,
    {{ json_number('usages.location', 'longitude') }} as location_longitude,
    {{ utc_timestamptz('usages._sdc_batched_at') }} as loaded_at
from usages
left join accounts
    on usages.account_name = accounts.account_name
left join actions
    on usages.action = actions.action
