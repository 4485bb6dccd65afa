{#- No event is dropped on the way from the loaded streams to onepassword__events, whatever
    codes it carries (a lookup join never filters). Returns the events that went missing. -#}
{% set streams = ['sign_in_attempts', 'item_usages', 'audit_events'] %}
{% for stream in streams %}
select '{{ stream }}' as stream, raw.account_name, raw.uuid
from {{ source('onepassword', stream) }} as raw
left join {{ ref('onepassword__events') }} as events
    on events.event_key = raw.account_name || ':' || raw.uuid
where events.event_key is null
{% if not loop.last %}union all{% endif %}
{% endfor %}
