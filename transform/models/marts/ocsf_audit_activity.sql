{{ config(indexes=[{'columns': ['account_uuid', 'time_dt']}, {'columns': ['actor_user_uid', 'time_dt']}]) }}
{#- Audit events as OCSF Identity & Access Management events (category 3): each row takes the
    class and activity the lookup onepassword_audit_actions gives its (action, object type):
    Account Change 3001 for actions on users, User Access Management 3005 for vault access,
    Group Management 3006 for groups and memberships, Entity Management 3004 for everything
    else (vaults, items, devices, settings, integrations). -#}
select
    ocsf_class_uid as class_uid,
    ocsf_class_name as class_name,
    3 as category_uid,
    'Identity & Access Management' as category_name,
    ocsf_activity_id as activity_id,
    ocsf_activity_name as activity_name,
    ocsf_class_uid * 100 + ocsf_activity_id as type_uid,
    ocsf_class_name || ': ' || ocsf_activity_name as type_name,
    severity_id,
    {{ ocsf_severity('severity_id') }} as severity,
    {{ ocsf_time('event_time') }},
    1 as status_id,
    'Success' as status,
    action || ':' || coalesce(object_type, '?') as status_code,
    action_description as message,
    action_category,
    actor_uuid as actor_user_uid,
    actor_email as actor_user_email_addr,
    actor_name as actor_user_name,
    actor_type as actor_user_type,
    session_uuid as actor_session_uid,
    session_login_time as actor_session_created_time_dt,
    session_device_uuid as device_uid,
    object_type as entity_type,
    object_uuid as entity_uid,
    coalesce(object_name, object_email) as entity_name,
    case when ocsf_class_uid = 3001 then object_uuid end as user_uid,
    case when ocsf_class_uid = 3001 then object_email end as user_email_addr,
    case when ocsf_class_uid = 3006 then aux_uuid end as group_member_uid,
    source_ip as src_endpoint_ip,
    location_country as src_endpoint_location_country,
    account_uuid,
    account_name,
    {{ ocsf_metadata('event_uuid', 'account_uuid') }},
    event_key
from {{ ref('stg_onepassword__audit_events') }}
