{{ config(enabled=env_var('ONEPASSWORD_AUDIT_EVENTS_V3', 'false') == 'true') }}
{#- Audit events from the v3 beta (the opt-in stream audit_events_v3), one row per event: the
    typed columns the tap draws from each event, with times as timestamptz. Built only when
    ONEPASSWORD_AUDIT_EVENTS_V3=true (select the stream too). The beta's event schema is not
    published: everything else stays in `event`, the whole event as the API sent it, for
    queries to read until the beta settles. -#}
with v3 as (
    select * from {{ source('onepassword', 'audit_events_v3') }}
),

accounts as (
    select account_name, account_uuid from {{ ref('stg_onepassword__accounts') }}
)

select
    v3.account_name || ':' || v3.event_id as event_key,
    v3.event_id,
    v3.account_name,
    coalesce(v3.account_uuid, accounts.account_uuid) as account_uuid,
    {{ utc_timestamptz('v3.insert_time') }} as inserted_at,
    {{ utc_timestamptz('v3.event_time') }} as event_time,
    cast(v3.event_time as date) as event_date_utc,
    v3.action,
    v3.action_target,
    v3.action_attribute,
    v3.action_verb,
    v3.event,
    {{ utc_timestamptz('v3._sdc_batched_at') }} as loaded_at
from v3
left join accounts
    on v3.account_name = accounts.account_name
