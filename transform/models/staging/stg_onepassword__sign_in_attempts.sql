{{ config(indexes=[
    {'columns': ['account_uuid', 'event_time']},
    {'columns': ['user_uuid', 'event_time']},
]) }}
{#- Sign-in attempts, typed, with the outcome named by the lookup
    onepassword_sign_in_outcomes: the exact (category, type) pair first, then the category's
    default row (type `*`), else `unknown`. No row is ever dropped by the lookup. -#}
with attempts as (
    select * from {{ source('onepassword', 'sign_in_attempts') }}
),

accounts as (
    select account_name, account_uuid from {{ ref('stg_onepassword__accounts') }}
),

outcomes as (
    select * from {{ ref('onepassword_sign_in_outcomes') }}
)

select
    attempts.account_name || ':' || attempts.uuid as event_key,
    attempts.uuid as event_uuid,
    attempts.account_name,
    coalesce(attempts.account_uuid, accounts.account_uuid) as account_uuid,
    {{ utc_timestamptz('attempts.timestamp') }} as event_time,
    cast(attempts.timestamp as date) as event_date_utc,
    attempts.session_uuid,
    attempts.category,
    attempts.type as sign_in_type,
    coalesce(exact.outcome, by_category.outcome, 'unknown') as outcome,
    coalesce(exact.is_success, by_category.is_success) as is_success,
    exact.is_mfa,
    case
        when coalesce(exact.is_success, by_category.is_success) = false
            then coalesce(exact.failure_reason, by_category.failure_reason)
        when exact.outcome is null and by_category.outcome is null
            then 'unknown: ' || attempts.category || ' / ' || attempts.type
    end as failure_reason,
    coalesce(
        exact.description, by_category.description,
        'unknown: ' || attempts.category || ' / ' || attempts.type
    ) as outcome_description,
    coalesce(exact.ocsf_status_id, by_category.ocsf_status_id, 0) as ocsf_status_id,
    coalesce(exact.ocsf_status, by_category.ocsf_status, 'Unknown') as ocsf_status,
    coalesce(exact.severity_id, by_category.severity_id, 0) as severity_id,
    {{ json_text('attempts.details', 'value') }} as details_value,
    nullif(attempts.country, '') as country_code,
    {{ json_text('attempts.target_user', 'uuid') }} as user_uuid,
    {{ json_text('attempts.target_user', 'email') }} as user_email,
    {{ json_text('attempts.target_user', 'name') }} as user_name,
    {{ json_text('attempts.target_user', 'user_type') }} as user_type,
    {{ json_text('attempts.target_user', 'user_account_uuid') }} as user_account_uuid,
    {{ json_text('attempts.client', 'app_name') }} as client_app_name,
    {{ json_text('attempts.client', 'app_version') }} as client_app_version,
    {{ json_text('attempts.client', 'platform_name') }} as client_platform_name,
    {{ json_text('attempts.client', 'platform_version') }} as client_platform_version,
    {{ json_text('attempts.client', 'os_name') }} as client_os_name,
    {{ json_text('attempts.client', 'os_version') }} as client_os_version,
    {{ ip_address(json_text('attempts.client', 'ip_address')) }} as source_ip,
    {{ json_text('attempts.location', 'country') }} as location_country,
    {{ json_text('attempts.location', 'region') }} as location_region,
    {{ json_text('attempts.location', 'city') }} as location_city,
    {{ json_number('attempts.location', 'latitude') }} as location_latitude,
    {{ json_number('attempts.location', 'longitude') }} as location_longitude,
    {{ utc_timestamptz('attempts._sdc_batched_at') }} as loaded_at
from attempts
left join accounts
    on attempts.account_name = accounts.account_name
left join outcomes as exact
    on attempts.category = exact.category and attempts.type = exact.type
left join outcomes as by_category
    on attempts.category = by_category.category and by_category.type = '*'
