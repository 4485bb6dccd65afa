{{ config(indexes=[{'columns': ['account_uuid', 'time_dt']}, {'columns': ['actor_user_uid', 'time_dt']}, {'columns': ['vault_uuid', 'time_dt']}]) }}
{#- OCSF Web Resources Activity (class 6001, category 6 Application Activity), one row per
    item usage: an item in a vault is the web resource a user acted on through a 1Password
    app. The activity per action is in the lookup onepassword_item_usage_actions (see the
    model docs). -#}
select
    6001 as class_uid,
    'Web Resources Activity' as class_name,
    6 as category_uid,
    'Application Activity' as category_name,
    ocsf_activity_id as activity_id,
    ocsf_activity_name as activity_name,
    600100 + ocsf_activity_id as type_uid,
    'Web Resources Activity: ' || ocsf_activity_name as type_name,
    severity_id,
    {{ ocsf_severity('severity_id') }} as severity,
    {{ ocsf_time('event_time') }},
    1 as status_id,
    'Success' as status,
    action as status_code,
    action_description as message,
    item_uuid as web_resources_uid,
    'item' as web_resources_type,
    vault_uuid,
    is_secret_exposure,
    user_uuid as actor_user_uid,
    user_email as actor_user_email_addr,
    user_name as actor_user_name,
    source_ip as src_endpoint_ip,
    location_country as src_endpoint_location_country,
    client_app_name as actor_app_name,
    account_uuid,
    account_name,
    {{ ocsf_metadata('event_uuid', 'account_uuid') }},
    event_key
from {{ ref('stg_onepassword__item_usages') }}
