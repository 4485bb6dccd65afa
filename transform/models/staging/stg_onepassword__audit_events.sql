{{ config(indexes=[
    {'columns': ['account_uuid', 'event_time']},
    {'columns': ['actor_uuid', 'event_time']},
]) }}
{#- Audit events, typed: actor, object, aux and session columns, and the action named by
    the lookup onepassword_audit_actions: the exact (action, object_type) pair first, then the
    action's default row (object type `*`), else `unknown`. No row is ever dropped. -#}
with audit as (
    select * from {{ source('onepassword', 'audit_events') }}
),

accounts as (
    select account_name, account_uuid from {{ ref('stg_onepassword__accounts') }}
),

actions as (
    select * from {{ ref('onepassword_audit_actions') }}
)

select
    audit.account_name || ':' || audit.uuid as event_key,
    audit.uuid as event_uuid,
    audit.account_name,
    coalesce(audit.account_uuid, accounts.account_uuid) as account_uuid,
    {{ utc_timestamptz('audit.timestamp') }} as event_time,
    cast(audit.timestamp as date) as event_date_utc,
    audit.action,
    audit.object_type,
    coalesce(
        exact.description, by_action.description,
        'unknown: ' || audit.action || ' on ' || coalesce(audit.object_type, '?')
    ) as action_description,
    coalesce(exact.category, by_action.category, 'unknown') as action_category,
    coalesce(exact.ocsf_class_uid, by_action.ocsf_class_uid, 3004) as ocsf_class_uid,
    coalesce(exact.ocsf_class_name, by_action.ocsf_class_name, 'Entity Management') as ocsf_class_name,
    coalesce(exact.ocsf_activity_id, by_action.ocsf_activity_id, 0) as ocsf_activity_id,
    coalesce(exact.ocsf_activity_name, by_action.ocsf_activity_name, 'Unknown') as ocsf_activity_name,
    coalesce(exact.severity_id, by_action.severity_id, 0) as severity_id,
    audit.actor_uuid,
    {{ json_text('audit.actor_details', 'email') }} as actor_email,
    {{ json_text('audit.actor_details', 'name') }} as actor_name,
    coalesce(audit.actor_type, {{ json_text('audit.actor_details', 'user_type') }}) as actor_type,
    audit.actor_account_uuid,
    audit.object_uuid,
    {{ json_text('audit.object_details', 'email') }} as object_email,
    {{ json_text('audit.object_details', 'name') }} as object_name,
    cast(audit.aux_id as bigint) as aux_id,
    audit.aux_uuid,
    {{ json_text('audit.aux_details', 'email') }} as aux_email,
    {{ json_text('audit.aux_details', 'name') }} as aux_name,
    nullif(audit.aux_info, '') as aux_info,
    {{ json_text('audit.session', 'uuid') }} as session_uuid,
    {{ rfc3339_timestamptz(json_text('audit.session', 'login_time')) }} as session_login_time,
    {{ json_text('audit.session', 'device_uuid') }} as session_device_uuid,
    {{ ip_address(json_text('audit.session', 'ip')) }} as source_ip,
    {{ json_text('audit.location', 'country') }} as location_country,
    {{ json_text('audit.location', 'region') }} as location_region,
    {{ json_text('audit.location', 'city') }} as location_city,
    {{ json_number('audit.location', 'latitude') }} as location_latitude,
    {{ json_number('audit.location', 'longitude') }} as location_longitude,
    {{ utc_timestamptz('audit._sdc_batched_at') }} as loaded_at
from audit
left join accounts
    on audit.account_name = accounts.account_name
left join actions as exact
    on audit.action = exact.action and audit.object_type = exact.object_type
left join actions as by_action
    on audit.action = by_action.action and by_action.object_type = '*'
