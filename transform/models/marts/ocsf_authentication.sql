{{ config(indexes=[{'columns': ['account_uuid', 'time_dt']}, {'columns': ['user_uid', 'time_dt']}]) }}
{#- OCSF Authentication (class 3002, category 3 Identity & Access Management), one row per
    sign-in attempt: activity 1 Logon; status 1 Success / 2 Failure from the lookup (a
    report-only firewall match is a success); severity from the lookup. -#}
select
    3002 as class_uid,
    'Authentication' as class_name,
    3 as category_uid,
    'Identity & Access Management' as category_name,
    1 as activity_id,
    'Logon' as activity_name,
    300201 as type_uid,
    'Authentication: Logon' as type_name,
    severity_id,
    {{ ocsf_severity('severity_id') }} as severity,
    {{ ocsf_time('event_time') }},
    ocsf_status_id as status_id,
    ocsf_status as status,
    coalesce(failure_reason, outcome_description) as status_detail,
    sign_in_type as status_code,
    is_mfa,
    user_uuid as user_uid,
    user_email as user_email_addr,
    user_name,
    user_type,
    source_ip as src_endpoint_ip,
    country_code as src_endpoint_location_country,
    location_city as src_endpoint_location_city,
    location_latitude as src_endpoint_location_lat,
    location_longitude as src_endpoint_location_long,
    client_app_name as http_request_user_agent,
    session_uuid as session_uid,
    account_uuid,
    account_name,
    {{ ocsf_metadata('event_uuid', 'account_uuid') }},
    event_key
from {{ ref('stg_onepassword__sign_in_attempts') }}
