{#- One row per account (the tap's account name): the account UUID from introspection, which
    events of non-MSP accounts do not carry, and what its token may read. When a token was
    replaced, the most recently loaded introspection row wins. -#}
with introspection as (
    select
        account_name,
        uuid as integration_uuid,
        account_uuid,
        issued_at,
        cast(features as {{ dbt.type_string() }}) as features_json,
        _sdc_batched_at as loaded_at,
        row_number() over (
            partition by account_name order by _sdc_batched_at desc, issued_at desc
        ) as recency
    from {{ source('onepassword', 'introspection') }}
)

select
    account_name,
    account_uuid,
    integration_uuid,
    {{ utc_timestamptz('issued_at') }} as token_issued_at,
    features_json like '%"signinattempts"%' as reads_sign_in_attempts,
    features_json like '%"itemusages"%' as reads_item_usages,
    features_json like '%"auditevents"%' as reads_audit_events,
    {{ utc_timestamptz('loaded_at') }} as loaded_at
from introspection
where recency = 1
