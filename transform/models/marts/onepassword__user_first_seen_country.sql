{#- Where each user was first seen: the country of the earliest event (any stream) that
    carries a location, per account and user. A sign-in from another country is new for
    that user; `onepassword__events` joined to this answers "sign-ins from a new country". -#}
with located as (
    select
        account_uuid,
        account_name,
        user_uuid,
        user_email,
        event_time,
        location_country,
        row_number() over (
            partition by account_uuid, user_uuid order by event_time, event_key
        ) as position
    from {{ ref('onepassword__events') }}
    where location_country is not null and user_uuid is not null
)

select
    account_uuid || ':' || user_uuid as account_user_key,
    account_uuid,
    account_name,
    user_uuid,
    user_email,
    event_time as first_seen_at,
    location_country as first_seen_country
from located
where position = 1
