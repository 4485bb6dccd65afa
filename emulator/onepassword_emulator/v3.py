"""The v3 beta route, ``GET /api/v3/auditevents``: audit events polled on insertion time.

1Password documents the route, its query parameters, the ``audit_events`` array, the
``next_page_token`` and the ``insert_time`` and dotted ``action`` of an event, but not the rest of
the event's keys. The emulator serves the same audit events as v1/v2 in a v3 shape of its own:
every key besides ``insert_time`` and ``action`` (``uuid``, ``timestamp``, ``actor``,
``targets``, ``context`` and what is inside them) is the emulator's invention, drawn from the
concepts the documentation names (an actor, one or more targets, context about account,
location, client, device and session). So is the mapping of v1 actions to the
``target.attribute.verb`` form.

Query parameters (current names): ``max_page_size`` (0..1000, 0 or absent: 100),
``start_time`` and ``end_time`` (RFC 3339, both exclusive, on insertion time; absent start:
one hour back), ``page_token`` (the previous answer's ``next_page_token``; no time parameter
may come with it). The answer carries ``next_page_token`` only while more events match.

The beta's earlier names (``Emulator(v3_legacy_names=True)``): ``page_size`` (1..1000), the
token sent back as ``next_page_token``, and an answer that always carries a
``next_page_token`` plus a ``has_more`` flag saying whether to follow it. In either mode an
unknown parameter (such as the other mode's names) answers 400, as do out-of-range sizes,
unreadable times and times sent with a token. Page tokens are signed like cursors: a rotated
secret rejects them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from onepassword_emulator.clock import NANOS_PER_SECOND
from onepassword_emulator.rfc3339 import TimestampError, format_ns, parse_ns
from onepassword_emulator.store import CursorRejected

if TYPE_CHECKING:
    from collections.abc import Iterable

    from onepassword_emulator.store import CursorCodec, EventStream

V3_ROUTE = "/api/v3/auditevents"
V3_FEATURE = "auditevents"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_HOUR_NS = 3600 * NANOS_PER_SECOND
_TOKEN_KIND = "v3/auditevents"  # noqa: S105 - what a page token continues, not a secret

# v1 object_type -> (v3 target, attribute the object implies or None)
_TARGETS: dict[str, tuple[str, str | None]] = {
    "account": ("account", None),
    "user": ("user", None),
    "vault": ("vault", None),
    "group": ("group", None),
    "item": ("item", None),
    "items": ("item", None),
    "invite": ("invitation", None),
    "device": ("device", None),
    "sa": ("service-account", None),
    "satoken": ("service-account", "token"),
    "sso": ("sso", None),
    "template": ("custom-email-template", None),
    "file": ("file", None),
    "cred": ("integration", "credential"),
    "report": ("report", None),
    "ec": ("emergency-kit", None),
    "card": ("billing", "card"),
    "sub": ("billing", "subscription"),
    "mngdacc": ("account", "linked-account"),
    "slackapp": ("integration", "slack-app"),
    "famchild": ("account", "linked-family-account"),
    "gva": ("vault", "group-access"),
    "uva": ("vault", "user-access"),
    "gm": ("group", "membership"),
    "pm": ("account", "permission"),
    "itemhist": ("item", "history"),
    "vaultkey": ("vault", "key"),
    "dlgdsess": ("session", "delegation"),
    "miguser": ("user", "migration"),
    "ssotkn": ("sso", "token"),
}
# v1 action -> (attribute it names or None, verb)
_VERBS: dict[str, tuple[str | None, str]] = {
    "changenm": ("name", "update"),
    "changemp": ("master-password", "change"),
    "changesk": ("secret-key", "change"),
    "changeks": ("keyset", "change"),
    "changela": ("language", "change"),
    "enblmfa": ("mfa", "enable"),
    "disblmfa": ("mfa", "disable"),
    "updatmfa": ("mfa", "update"),
    "enblduo": ("duo", "enable"),
    "disblduo": ("duo", "disable"),
    "updatduo": ("duo", "update"),
    "updatfw": ("firewall-rules", "update"),
    "vrfydmn": ("verified-domain", "verify"),
    "uvrfydmn": ("verified-domain", "unverify"),
    "dvrfydmn": ("verified-domain", "delete"),
    "join": (None, "add"),
    "leave": (None, "remove"),
    "role": ("role", "update"),
    "trename": (None, "rename"),
    "trevoke": (None, "revoke"),
    "tverify": (None, "verify"),
    "begin": ("recovery", "begin"),
    "beginr": ("recovery", "begin"),
    "complete": ("recovery", "complete"),
    "completr": ("recovery", "complete"),
    "cancelr": ("recovery", "cancel"),
    "updatea": ("attributes", "update"),
    "prsndall": (None, "resend-all"),
    "sendts": ("travel-mode", "send"),
    "resendts": ("travel-mode", "resend"),
    "trvlaway": ("travel-mode", "enable"),
    "trvlback": ("travel-mode", "disable"),
    "addgsso": ("group", "add"),
    "delgsso": ("group", "remove"),
    "enblsso": (None, "enable"),
    "disblsso": (None, "disable"),
}


def v3_action(action: str, object_type: str) -> str:
    """Return the emulator's ``target[.attribute].verb`` for a v1 action and object type."""
    target, implied = _TARGETS.get(object_type, (object_type, None))
    named, verb = _VERBS.get(action, (None, action))
    attribute = named or implied
    return f"{target}.{attribute}.{verb}" if attribute else f"{target}.{verb}"


def _person(details: Any) -> dict[str, Any]:  # noqa: ANN401 - a v2 user object
    if not isinstance(details, dict):
        return {}
    return {key: details[key] for key in ("name", "email") if key in details}


def render_v3(event: dict[str, Any], inserted_ns: int, account_uuid: str) -> dict[str, Any]:
    """Render one v2 audit event in the emulator's v3 shape (see the module docstring)."""
    object_type = str(event["object_type"])
    actor: dict[str, Any] = {
        "type": event.get("actor_type", "user"),
        "uuid": event["actor_uuid"],
        **_person(event.get("actor_details")),
    }
    if "actor_account_uuid" in event:
        actor["account_uuid"] = event["actor_account_uuid"]
    target_type, _ = _TARGETS.get(object_type, (object_type, None))
    targets: list[dict[str, Any]] = [
        {"type": target_type, "uuid": event["object_uuid"], **_person(event.get("object_details"))}
    ]
    if "aux_uuid" in event:
        member = {"type": "user", "uuid": event["aux_uuid"], **_person(event.get("aux_details"))}
        if "aux_info" in event:
            member["role"] = event["aux_info"]
        targets.append(member)
    elif "aux_id" in event and isinstance(event.get("aux_details"), dict):
        owner = event["aux_details"]
        targets.append({"type": "user", "uuid": owner.get("uuid"), **_person(owner)})
    session = event.get("session") or {}
    context: dict[str, Any] = {
        "account": {"uuid": event.get("account_uuid", account_uuid)},
        "session": {"uuid": session.get("uuid"), "login_time": session.get("login_time")},
        "device": {"uuid": session.get("device_uuid")},
        "client": {"ip_address": session.get("ip")},
    }
    if "aux_id" in event:
        context["device"]["id"] = event["aux_id"]
    if "location" in event:
        context["location"] = event["location"]
    return {
        "uuid": event["uuid"],
        "insert_time": format_ns(inserted_ns),
        "timestamp": event["timestamp"],
        "action": v3_action(str(event["action"]), object_type),
        "actor": actor,
        "targets": targets,
        "context": context,
    }


def render_position(stream: EventStream, position: int, account_uuid: str) -> dict[str, Any]:
    """Render the event at ``position`` of an audit-event stream in the v3 shape."""
    v2_text = stream.renderer.render(position, stream.timestamp(position), v2=True)
    return render_v3(json.loads(v2_text), stream.inserted(position), account_uuid)


def render_positions(
    stream: EventStream, positions: Iterable[int], account_uuid: str
) -> list[dict[str, Any]]:
    """Render the events at ``positions`` of an audit-event stream in the v3 shape."""
    return [render_position(stream, position, account_uuid) for position in positions]


class V3RequestError(ValueError):
    """A v3 request the API answers 400 to; the message is the answer's."""


@dataclass(frozen=True)
class V3Query:
    """What one v3 page continues: the next position, the page size and the upper bound."""

    account: str
    position: int
    limit: int
    end_ns: int | None


def _single(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        msg = f"{name} may be given once"
        raise V3RequestError(msg)
    return values[0]


def _page_size(text: str | None, name: str, low: int) -> int:
    if text is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        size = -1
    if not low <= size <= MAX_PAGE_SIZE or not text.strip().isdigit():
        msg = f"{name} must be an integer from {low} to {MAX_PAGE_SIZE}"
        raise V3RequestError(msg)
    return size or DEFAULT_PAGE_SIZE


def _time(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return parse_ns(text)
    except TimestampError:
        # A raw "+" in a query string reads as a space: offsets must be percent-encoded.
        msg = f"{name} must be an RFC 3339 date-time (percent-encode a '+' offset)"
        raise V3RequestError(msg) from None


def parse_query(  # noqa: PLR0913 - the request and what it is read against
    query: str,
    *,
    account: str,
    stream: EventStream,
    codec: CursorCodec,
    now_ns: int,
    retention_ns: int,
    legacy: bool,
) -> V3Query:
    """Read a v3 query string into the page it asks for.

    Raises:
        V3RequestError: the request is bad (answered 400 with the message).

    """
    params = parse_qs(query, keep_blank_values=True)
    size_name, token_name = (
        ("page_size", "next_page_token") if legacy else ("max_page_size", "page_token")
    )
    known = {size_name, token_name, "start_time", "end_time"}
    unknown = sorted(set(params) - known)
    if unknown:
        msg = f"unknown query parameter {unknown[0]!r} (this API reads {', '.join(sorted(known))})"
        raise V3RequestError(msg)
    token = _single(params, token_name)
    start_text, end_text = _single(params, "start_time"), _single(params, "end_time")
    size_text = _single(params, size_name)
    if token is not None:
        if start_text is not None or end_text is not None:
            msg = f"start_time and end_time cannot be used with {token_name}"
            raise V3RequestError(msg)
        size = None if size_text is None else _page_size(size_text, size_name, 1 if legacy else 0)
        return _from_token(token, account, codec, size)
    limit = _page_size(size_text, size_name, 1 if legacy else 0)
    end_ns = _time(end_text, "end_time")
    start_ns = _time(start_text, "start_time")
    if start_ns is None:
        start_ns = (end_ns if end_ns is not None else now_ns) - _HOUR_NS
    if end_ns is not None and start_ns >= end_ns:
        msg = "start_time must be before end_time"
        raise V3RequestError(msg)
    # start_time is exclusive: the first event inserted after it (and inside retention).
    first = stream.first_inserted_after(max(start_ns, retention_ns - 1))
    return V3Query(account, first, limit, end_ns)


def _from_token(token: str, account: str, codec: CursorCodec, size: int | None) -> V3Query:
    try:
        kind, owner, position, limit, end_ns = codec.unseal(token)
    except (CursorRejected, ValueError, TypeError):
        msg = "invalid page token"
        raise V3RequestError(msg) from None
    valid = (
        kind == _TOKEN_KIND
        and owner == account
        and isinstance(position, int)
        and isinstance(limit, int)
        and (end_ns is None or isinstance(end_ns, int))
    )
    if not valid:
        msg = "invalid page token"
        raise V3RequestError(msg)
    return V3Query(account, position, limit if size is None else size, end_ns)


def answer_page(
    query: V3Query, stream: EventStream, codec: CursorCodec, account_uuid: str, *, legacy: bool
) -> bytes:
    """Serve the page ``query`` asks for, in insertion order, as the v3 answer's JSON."""
    positions: list[int] = []
    position = query.position
    count = len(stream)
    high = query.end_ns
    while position < count and len(positions) < query.limit:
        if high is not None and stream.inserted(position) >= high:  # end_time is exclusive
            count = position
            break
        positions.append(position)
        position += 1
    more = position < count and (high is None or stream.inserted(position) < high)
    events = [render_position(stream, p, account_uuid) for p in positions]
    answer: dict[str, Any] = {"audit_events": events}
    token = codec.seal([_TOKEN_KIND, query.account, position, query.limit, query.end_ns])
    if legacy:
        answer["next_page_token"] = token
        answer["has_more"] = more
    elif more:
        answer["next_page_token"] = token
    return json.dumps(answer, separators=(",", ":")).encode()
