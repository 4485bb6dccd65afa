"""Record schemas of the Events API, written from the documented v1 and v2 models (spec 1.4.1).

One schema per endpoint covers both versions: v2-only fields (marked "v2 only") are simply
absent from v1 records. Every field except `uuid` and `timestamp` is optional and nullable,
because no spec marks anything required and real payloads omit many fields. Enumerations are
listed in descriptions, never as `enum`: the API adds values over time and an unknown value must
never fail a run. Nested objects accept keys the schema does not know (real payloads carry some,
e.g. `client.ip`), so they pass through unchanged.
"""

from __future__ import annotations

from singer_sdk import typing as th

ACCOUNT_NAME = th.Property(
    "account_name",
    th.StringType,
    required=True,
    description=(
        "Name of the configured account the event came from (`accounts[].name`, or `default` "
        "for a single `token`). Part of the primary key, so events of several accounts never "
        "collide."
    ),
)

EVENT_UUID = th.Property(
    "uuid",
    th.StringType,
    required=True,
    description=(
        "Unique event id (26-character base32 in practice; not validated). For an event the "
        "API sent without one, the tap sets `surrogate-` followed by the first 26 base32 "
        "characters of the SHA-256 of the event's JSON as sent (keys sorted, no spaces), so "
        "the same event gets the same key on every run."
    ),
)

EVENT_TIMESTAMP = th.Property(
    "timestamp",
    th.DateTimeType,
    description=(
        "When the event happened, normalised by the tap to UTC with nanoseconds "
        "(`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`), so it orders correctly as text and as a time. "
        "Null only when the API sent no RFC 3339 date-time (see `unreadable_timestamp`)."
    ),
)

UNREADABLE_TIMESTAMP = th.Property(
    "unreadable_timestamp",
    th.StringType,
    description=(
        "Only on an event whose `timestamp` is not an RFC 3339 date-time: what the API sent "
        "(text as sent, anything else as JSON; null when it sent none). Such an event does not "
        "move the bookmark."
    ),
)

ACCOUNT_UUID = th.Property(
    "account_uuid",
    th.StringType,
    description="v2 only, managed (MSP) accounts only: UUID of the account where it happened.",
)

USER_PROPERTIES = (
    th.Property("uuid", th.StringType, description="UUID of the user."),
    th.Property("name", th.StringType, description="Full name, as it was at the event."),
    th.Property("email", th.StringType, description="Email address, as it was at the event."),
    th.Property(
        "user_type",
        th.StringType,
        description="v2 only, MSP accounts only. Documented values: user, external_user.",
    ),
    th.Property(
        "user_account_uuid",
        th.StringType,
        description="v2 only, MSP accounts only: UUID of the account the user belongs to.",
    ),
)
USER = th.ObjectType(*USER_PROPERTIES)
"""`User` (v1) and `UserV2` (v2); v1 carries only uuid, name and email."""

CLIENT = th.ObjectType(
    th.Property("app_name", th.StringType, description="1Password app, e.g. 1Password for Mac."),
    th.Property("app_version", th.StringType, description="App build number, sent as text."),
    th.Property("platform_name", th.StringType, description="Browser or device, e.g. Chrome."),
    th.Property(
        "platform_version",
        th.StringType,
        description="Browser version, the computer model for native apps, or the CPU for the CLI.",
    ),
    th.Property("os_name", th.StringType, description="Operating system, e.g. MacOSX."),
    th.Property("os_version", th.StringType, description="Operating system version."),
    th.Property("ip_address", th.StringType, description="IP address the client connected from."),
)
"""The client app a sign-in attempt or item usage came from."""

LOCATION = th.ObjectType(
    th.Property(
        "country", th.StringType, description="Country (free text: a name or an ISO code)."
    ),
    th.Property("region", th.StringType, description="Region or state, e.g. Ontario."),
    th.Property("city", th.StringType, description="City."),
    th.Property("latitude", th.NumberType, description="Latitude of the geolocated IP address."),
    th.Property("longitude", th.NumberType, description="Longitude of the geolocated IP address."),
)
"""Geolocation of the client's IP address; absent when unknown."""

DETAILS = th.ObjectType(
    th.Property(
        "value",
        th.StringType,
        description="Extra information, e.g. the blocked continent, country or IP address.",
    ),
)
"""Extra information on a sign-in attempt; often null."""

SESSION = th.ObjectType(
    th.Property("uuid", th.StringType, description="UUID of the session."),
    th.Property(
        "login_time",
        th.DateTimeType,
        description="When the session signed in (RFC 3339, passed through as sent).",
    ),
    th.Property("device_uuid", th.StringType, description="UUID of the device."),
    th.Property("ip", th.StringType, description="IP address of the session."),
)
"""The session an audit event was performed in."""

SIGN_IN_ATTEMPT = th.PropertiesList(
    ACCOUNT_NAME,
    EVENT_UUID,
    EVENT_TIMESTAMP,
    UNREADABLE_TIMESTAMP,
    th.Property("session_uuid", th.StringType, description="Session that created the event."),
    th.Property(
        "category",
        th.StringType,
        description=(
            "Outcome. Documented values: success, credentials_failed, mfa_failed, sso_failed, "
            "modern_version_failed, firewall_failed, firewall_reported_success."
        ),
    ),
    th.Property(
        "type",
        th.StringType,
        description=(
            "Detail of the outcome. Documented values: all_blocked, anonymous_blocked, "
            "code_bad, code_disabled, code_timeout, continent_blocked, country_blocked, "
            "credentials_ok, duo_bad, duo_disabled, duo_native_bad, duo_timeout, federated, "
            "ip_blocked, mfa_missing, mfa_ok, modern_version_missing, modern_version_old, "
            "non_sso_user, password_secret_bad, platform_secret_bad, platform_secret_disabled, "
            "platform_secret_proxy, service_account_sso_denied, sso_user_mismatch, totp_bad, "
            "totp_disabled, totp_timeout, u2f_bad, u2f_disabled, u2f_timeout (u2f_timout in "
            "old specs)."
        ),
    ),
    th.Property(
        "country",
        th.StringType,
        description="Country of the attempt (ISO 3166 code per the docs; names occur too).",
    ),
    th.Property("details", DETAILS, description="Extra information, or null."),
    th.Property("target_user", USER, description="The user who tried to sign in."),
    th.Property("client", CLIENT, description="The client app used."),
    th.Property("location", LOCATION, description="Geolocation; absent when unknown."),
    ACCOUNT_UUID,
)
"""`SignInAttempt` (v1) and `SignInAttemptV2` (v2)."""

ITEM_USAGE = th.PropertiesList(
    ACCOUNT_NAME,
    EVENT_UUID,
    EVENT_TIMESTAMP,
    UNREADABLE_TIMESTAMP,
    th.Property(
        "used_version", th.IntegerType, description="Version of the item that was accessed."
    ),
    th.Property("vault_uuid", th.StringType, description="Vault holding the item."),
    th.Property("item_uuid", th.StringType, description="The item that was used."),
    th.Property(
        "action",
        th.StringType,
        description=(
            "What was done with the item (recorded by 1Password 8.4.0 and later clients). "
            "Documented values: enter-item-edit-mode, export, fill, other, reveal, "
            "secure-copy, select-sso-provider, server-create, server-fetch, server-update, "
            "share."
        ),
    ),
    th.Property("user", USER, description="The user who used the item."),
    th.Property("client", CLIENT, description="The client app used."),
    th.Property("location", LOCATION, description="Geolocation; absent when unknown."),
    ACCOUNT_UUID,
)
"""`ItemUsage` (v1) and `ItemUsageV2` (v2)."""

AUDIT_EVENT = th.PropertiesList(
    ACCOUNT_NAME,
    EVENT_UUID,
    EVENT_TIMESTAMP,
    UNREADABLE_TIMESTAMP,
    th.Property("actor_uuid", th.StringType, description="UUID of the user who acted."),
    th.Property(
        "actor_details",
        USER,
        description="The actor (v1: uuid, name, email; v2: UserV2). Absent when not applicable.",
    ),
    th.Property(
        "actor_type",
        th.StringType,
        description="v2 only. Documented values: user, external_user.",
    ),
    th.Property(
        "actor_account_uuid",
        th.StringType,
        description="v2 only, MSP accounts only: UUID of the account the actor belongs to.",
    ),
    th.Property(
        "action",
        th.StringType,
        description=(
            "What was done. Documented values: activate, addgsso, begin, beginr, cancel, "
            "cancelr, changeks, changela, changemp, changenm, changesk, chngasso, chngdsso, "
            "chngpsso, complete, completr, convert, create, dealldev, delete, delgsso, "
            "delshare, deolddev, detchild, disblduo, disblmfa, disblsso, dlgsess, dvrfydmn, "
            "enblduo, enblmfa, enblsso, expire, export, grant, hide, join, launchi, leave, "
            "musercom, muserdec, patch, propose, provsn, prsndall, purge, rdmchild, reactive, "
            "reauth, replace, resendts, revoke, role, sdvcsso, sendpkg, sendts, share, "
            "ssotknv, suspend, tdvcsso, trename, trevoke, trvlaway, trvlback, tverify, uisas, "
            "unhide, unknown, unlink, updatduo, update, updatea, updatfw, updatmfa, upguest, "
            "uvrfydmn, verify, view, vrfydmn."
        ),
    ),
    th.Property(
        "object_type",
        th.StringType,
        description=(
            "Kind of object acted on. Documented values: account, card, cred, device, "
            "dlgdsess, ec, famchild, file, gm, group, gva, invite, item, itemhist, items, "
            "miguser, mngdacc, pm, report, sa, satoken, slackapp, sso, ssotkn, sub, template, "
            "user, uva, vault, vaultkey."
        ),
    ),
    th.Property("object_uuid", th.StringType, description="UUID of the object acted on."),
    th.Property(
        "object_details", USER, description="The object, when it is a user (uuid, name, email)."
    ),
    th.Property(
        "aux_id", th.IntegerType, description="Auxiliary id, e.g. of a device added or removed."
    ),
    th.Property(
        "aux_uuid",
        th.StringType,
        description="Auxiliary UUID, e.g. of the user joining or leaving a group.",
    ),
    th.Property(
        "aux_details",
        USER,
        description="The auxiliary user, when the aux value relates to one (uuid, name, email).",
    ),
    th.Property("aux_info", th.StringType, description="Free-form extra information."),
    th.Property("session", SESSION, description="The session the action was performed in."),
    th.Property("location", LOCATION, description="Geolocation; absent when unknown."),
    ACCOUNT_UUID,
)
"""`AuditEvent` (v1) and `AuditEventV2` (v2)."""

INTROSPECTION = th.PropertiesList(
    ACCOUNT_NAME,
    th.Property(
        "uuid",
        th.StringType,
        required=True,
        description="UUID of the Events Reporting integration the token belongs to.",
    ),
    th.Property(
        "issued_at",
        th.DateTimeType,
        description="When the token was issued (RFC 3339, passed through as sent).",
    ),
    th.Property(
        "features",
        th.ArrayType(th.StringType),
        description=(
            "Event features the token may read. Documented values: signinattempts, "
            "itemusages, auditevents."
        ),
    ),
    th.Property(
        "account_uuid",
        th.StringType,
        description="UUID of the account that issued the token (v2, API 1.4.1 and later).",
    ),
)
"""One record per account and run: what the account's token may read (v1 keys renamed)."""

AUDIT_EVENT_V3 = th.PropertiesList(
    ACCOUNT_NAME,
    th.Property(
        "event_id",
        th.StringType,
        required=True,
        description=(
            "The event's own id: its `id`, `uuid` or `event_id` field, the first present (the "
            "beta does not document the name). Else a surrogate that stays the same for the "
            "same content: `sha256:` and the SHA-256 of the event's JSON with sorted keys."
        ),
    ),
    th.Property(
        "insert_time",
        th.DateTimeType,
        required=True,
        description=(
            "When 1Password inserted (ingested) the event, normalised to UTC "
            "(`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`). v3 filters and pages on it: the replication key."
        ),
    ),
    th.Property(
        "event_time",
        th.DateTimeType,
        description=(
            "When the event happened, normalised to UTC, if the event says so in `timestamp`, "
            "`event_time`, `time` or `occurred_at` (undocumented); null otherwise."
        ),
    ),
    th.Property(
        "action",
        th.StringType,
        description=(
            "What was done, as `target.attribute.verb` with the attribute optional, e.g. "
            "`service-account.token.create`. An open list: new actions appear without notice."
        ),
    ),
    th.Property("action_target", th.StringType, description="The action's first part."),
    th.Property(
        "action_attribute",
        th.StringType,
        description="The action's middle part(s), null when the action has two parts.",
    ),
    th.Property("action_verb", th.StringType, description="The action's last part."),
    th.Property(
        "account_uuid",
        th.StringType,
        description=(
            "UUID of the account the event belongs to: the event's `context.account.uuid`, else "
            "a top-level `account_uuid`; null when neither is sent."
        ),
    ),
    th.Property(
        "event",
        th.ObjectType(additional_properties=True),
        required=True,
        description=(
            "The whole event exactly as the API sent it (actor, targets, context and whatever "
            "the beta adds): its schema is not published and may change."
        ),
    ),
)
"""Audit events v3 (beta): typed columns for what is documented, the whole event beside them."""
