"""What the Events API answers: routes, authentication, request bodies, pages and errors.

This module knows nothing about sockets: :meth:`EventsService.handle` turns a request (method,
path, headers, body bytes) into an :class:`ApiResponse`. The HTTP layer (``server.py``) adds
the transport faults (reset, hang, truncated body) and latency around it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from onepassword_emulator.clock import NANOS_PER_SECOND, Clock
from onepassword_emulator.credentials import TokenError
from onepassword_emulator.data import FEATURES
from onepassword_emulator.rfc3339 import TimestampError, format_ns, parse_ns
from onepassword_emulator.store import CursorCodec, CursorRejected, CursorState
from onepassword_emulator.v3 import (
    V3_FEATURE,
    V3_ROUTE,
    V3RequestError,
    answer_page,
    parse_query,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from onepassword_emulator.accounts import Account
    from onepassword_emulator.credentials import TokenAuthority, TokenClaims
    from onepassword_emulator.ratelimit import RateLimiter
    from onepassword_emulator.store import EventStream

RETENTION_DAYS = 120
"""The API serves only events from the last 120 days."""
HOUR_NS = 3600 * NANOS_PER_SECOND
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

DATA_ROUTES: dict[str, tuple[str, str]] = {
    f"/api/{version}/{feature}": (version, feature)
    for version in ("v1", "v2")
    for feature in FEATURES
}
"""Data endpoint path -> (version, feature); all are POST."""
INTROSPECTION_ROUTES = {"/api/auth/introspect": "v1", "/api/v2/auth/introspect": "v2"}
"""Introspection path -> version; both are GET."""

NOT_FOUND_BODY = b"404 page not found\n"
ERROR_STYLES = ("legacy", "status")
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class ApiResponse:
    """A complete answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    account: str | None = None
    request_body: Any = None


class ApiError(Exception):
    """An error answer with the service's error body."""

    def __init__(self, status: int, message: str | None = None) -> None:
        """Answer ``status`` with ``message`` (default: the status' reason phrase)."""
        super().__init__(message or _REASONS[status])
        self.status = status
        self.message = message or _REASONS[status]


def route_of(method: str, path: str) -> str | None:
    """Return the API route a request addresses, or ``None`` (which answers 404)."""
    if method == "POST" and path in DATA_ROUTES:
        return path
    if method == "GET" and (path in INTROSPECTION_ROUTES or path == V3_ROUTE):
        return path
    return None


@dataclass
class ServiceSettings:
    """Behaviour a user can configure."""

    error_style: str = "legacy"
    retry_after: float | None = None
    re_serve_final_page: bool = False
    """A final page's cursor points at that page's first event, not past its last: posted
    again, it serves the page again plus anything new (what some collectors report of the
    real API)."""
    v3_legacy_names: bool = False
    """v3 reads the beta's earlier parameter names and answers with ``has_more`` (see v3.py)."""


class EventsService:
    """The emulated Events API over a set of accounts and their event streams."""

    def __init__(  # noqa: PLR0913 - the service's collaborators, each injected explicitly
        self,
        *,
        clock: Clock,
        authority: TokenAuthority,
        accounts: list[Account],
        streams: Callable[[str, str], EventStream],
        codec: CursorCodec,
        limiter: RateLimiter,
        settings: ServiceSettings,
    ) -> None:
        """Serve ``accounts``; ``streams(account, feature)`` returns that stream's events."""
        self.clock = clock
        self.authority = authority
        self.accounts = accounts
        self.streams = streams
        self.codec = codec
        self.limiter = limiter
        self.settings = settings
        self.revoked: set[str] = set()
        """The ``jti`` of every revoked token: answered 401 until restored."""
        self._codec_lock = threading.Lock()

    # -- helpers shared with the Python API ------------------------------------------------

    def retention_start_ns(self) -> int:
        """Return the oldest timestamp still served (now minus 120 days)."""
        return self.clock.now_ns() - RETENTION_DAYS * 86_400 * NANOS_PER_SECOND

    def account_for(self, claims: TokenClaims) -> Account | None:
        """Return the account a token belongs to, if the emulator serves it."""
        for account in self.accounts:
            if account.account_uuid == claims.account_uuid:
                return account
        return None

    def error(self, status: int, message: str | None = None) -> ApiResponse:
        """Build an error answer in the configured error style."""
        text = message or _REASONS[status]
        body: dict[str, Any]
        if self.settings.error_style == "status":
            body = {"status": status, "message": text}
        else:
            body = {"Error": {"Message": text}}
        return ApiResponse(status, json.dumps(body).encode())

    def rate_limited(self, retry_after: float | None) -> ApiResponse:
        """Build a 429 answer, with ``Retry-After`` only when a value is given."""
        response = self.error(429)
        if retry_after is not None:
            response.headers["Retry-After"] = _seconds_text(retry_after)
        return response

    def rotate_secret(self, secret: bytes) -> None:
        """Sign cursors with a new secret; every cursor issued before is rejected."""
        with self._codec_lock:
            self.codec = CursorCodec(secret)

    # -- request handling ------------------------------------------------------------------

    def identify(self, headers: dict[str, str]) -> tuple[TokenClaims | None, Account | None]:
        """Return the verified claims and account of the request's bearer token, if valid."""
        header = headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, None
        try:
            claims = self.authority.verify(token.strip(), self.clock.now_ns() / NANOS_PER_SECOND)
        except TokenError:
            return None, None
        if claims.jti in self.revoked:
            return None, None
        return claims, self.account_for(claims)

    def handle(  # noqa: PLR0913, PLR0917 - positional: tests wrap it with *args
        self,
        route: str,
        headers: dict[str, str],
        body: bytes,
        fault: str | None = None,
        fault_params: dict[str, Any] | None = None,
        query: str = "",
    ) -> ApiResponse:
        """Answer a request to an existing API ``route`` (``route_of`` already matched it).

        ``fault`` is a scheduled fault the service itself acts out (``429``, ``5xx``,
        ``reject_cursor``, ``empty_page``); the transport faults are the server's business.
        ``query`` is the URL's query string (read by the v3 route only).
        """
        claims, account = self.identify(headers)
        name = account.name if account else None
        request_body = _loads_or_none(body) if route in DATA_ROUTES else None
        if fault == "429":
            response = self.rate_limited((fault_params or {}).get("retry_after"))
        elif fault in ("500", "502", "503"):
            response = self.error(int(fault))
        elif fault == "reject_cursor":
            rejected = "invalid page token" if route == V3_ROUTE else "invalid cursor"
            response = self.error(400, rejected)
        elif route == V3_ROUTE:
            response = self._serve_v3(claims, account, query, empty_page=fault == "empty_page")
        else:
            response = self._serve(route, claims, account, body, empty_page=fault == "empty_page")
        response.account = name
        response.request_body = request_body
        return response

    def _serve(
        self,
        route: str,
        claims: TokenClaims | None,
        account: Account | None,
        body: bytes,
        *,
        empty_page: bool,
    ) -> ApiResponse:
        if claims is None or account is None:
            return self.error(401)
        if route in DATA_ROUTES and DATA_ROUTES[route][1] not in claims.features:
            return self.error(401)
        if not self.limiter.allow(_rate_key(claims)):
            return self.rate_limited(self.settings.retry_after)
        if route in INTROSPECTION_ROUTES:
            return self._introspect(INTROSPECTION_ROUTES[route], claims, account)
        try:
            return self._page(route, account, body, empty_page=empty_page)
        except ApiError as exc:
            return self.error(exc.status, exc.message)

    def _serve_v3(
        self, claims: TokenClaims | None, account: Account | None, query: str, *, empty_page: bool
    ) -> ApiResponse:
        if claims is None or account is None or V3_FEATURE not in claims.features:
            return self.error(401)
        key = _rate_key(claims)
        if not self.limiter.allow(key):
            response = self.rate_limited(self.settings.retry_after)
        else:
            response = self._v3_page(account, query, empty_page=empty_page)
        limit, remaining, reset = self.limiter.status(key)
        response.headers.update(
            {
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset),
            }
        )
        return response

    def _v3_page(self, account: Account, query: str, *, empty_page: bool) -> ApiResponse:
        stream = self.streams(account.name, V3_FEATURE)
        codec = self.codec
        legacy = self.settings.v3_legacy_names
        try:
            page = parse_query(
                query,
                account=account.name,
                stream=stream,
                codec=codec,
                now_ns=self.clock.now_ns(),
                retention_ns=self.retention_start_ns(),
                legacy=legacy,
            )
        except V3RequestError as exc:
            return self.error(400, str(exc))
        if empty_page:
            page = replace(page, limit=0)
        body = answer_page(page, stream, codec, account.account_uuid, legacy=legacy)
        return ApiResponse(200, body)

    def _introspect(self, version: str, claims: TokenClaims, account: Account) -> ApiResponse:
        issued_at = format_ns(claims.issued_at * NANOS_PER_SECOND)
        payload: dict[str, Any]
        if version == "v1":
            payload = {
                "UUID": claims.integration_uuid,
                "IssuedAt": issued_at,
                "Features": list(claims.features),
            }
        else:
            payload = {
                "uuid": claims.integration_uuid,
                "issued_at": issued_at,
                "features": list(claims.features),
                "account_uuid": account.account_uuid,
            }
        return ApiResponse(200, json.dumps(payload).encode())

    def _page(self, route: str, account: Account, body: bytes, *, empty_page: bool) -> ApiResponse:
        version, feature = DATA_ROUTES[route]
        request = _parse_json(body)
        if not isinstance(request, dict):
            raise ApiError(400, "request body must be a JSON object")
        endpoint = f"{version}/{feature}"
        codec = self.codec
        state = self._state_from(request, endpoint, account, codec)
        stream = self.streams(account.name, feature)
        if state.horizon < 0:  # a fresh query: the history it covers ends here
            state = replace(state, horizon=len(stream))
        if empty_page:
            return _envelope(codec.encode(state), has_more=True, items=[])
        selection = stream.select(
            state.position,
            start_ns=state.start_ns,
            horizon=state.horizon,
            retention_ns=self.retention_start_ns(),
            end_ns=state.end_ns,
            limit=state.limit,
        )
        renderer = stream.renderer
        v2 = version == "v2"
        items = [
            renderer.render(position, stream.timestamp(position), v2=v2)
            for position in selection.positions
        ]
        next_position = selection.next_position
        if self.settings.re_serve_final_page and not selection.has_more and selection.positions:
            next_position = selection.positions[0]
        next_state = replace(state, position=next_position)
        return _envelope(codec.encode(next_state), has_more=selection.has_more, items=items)

    def _state_from(
        self, request: dict[str, Any], endpoint: str, account: Account, codec: CursorCodec
    ) -> CursorState:
        cursor = request.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ApiError(400, "cursor must be a string")
        if cursor:
            try:
                state = codec.decode(cursor)
            except (CursorRejected, TypeError, ValueError) as exc:
                raise ApiError(400, "invalid cursor") from exc
            if state.endpoint != endpoint or state.account != account.name:
                raise ApiError(400, "invalid cursor")
            return state
        limit = request.get("limit")
        if limit is None:
            limit = DEFAULT_LIMIT
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
        end_ns = _time_field(request, "end_time")
        start_ns = _time_field(request, "start_time")
        if start_ns is None:
            start_ns = (end_ns if end_ns is not None else self.clock.now_ns()) - HOUR_NS
        if end_ns is not None and start_ns > end_ns:
            raise ApiError(400, "start_time is after end_time")
        return CursorState(endpoint, account.name, 0, limit, start_ns, -1, end_ns)


def _rate_key(claims: TokenClaims) -> str:
    return claims.jti


def _seconds_text(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _loads_or_none(body: bytes) -> Any:  # noqa: ANN401 - any JSON value
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _parse_json(body: bytes) -> Any:  # noqa: ANN401 - any JSON value
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "request body is not valid JSON") from exc


def _time_field(request: dict[str, Any], key: str) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be an RFC 3339 date-time string")
    try:
        return parse_ns(value)
    except TimestampError as exc:
        raise ApiError(400, f"{key} must be an RFC 3339 date-time") from exc


def _envelope(cursor: str, *, has_more: bool, items: list[str]) -> ApiResponse:
    body = (
        f'{{"cursor":"{cursor}","has_more":{"true" if has_more else "false"},'
        f'"items":[{",".join(items)}]}}'
    )
    return ApiResponse(200, body.encode())
