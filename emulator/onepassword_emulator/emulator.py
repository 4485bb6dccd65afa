"""The :class:`Emulator`: accounts, event streams, tokens, faults and clock behind one object.

Everything a test or a demo steers lives here, once, and is reachable two ways: as Python
methods, and as JSON control routes under ``/_emulator/`` (see :meth:`Emulator.control`) for
a process that started the emulator from the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any

from onepassword_emulator.accounts import DEFAULT_ACCOUNTS, Account, AccountSpec
from onepassword_emulator.clock import NANOS_PER_SECOND, Clock
from onepassword_emulator.credentials import TokenAuthority, TokenError
from onepassword_emulator.data import (
    FEATURES,
    AccountProfile,
    StreamRenderer,
    derive_key,
    derived_uuid,
    initial_timestamps,
    truncate_precision,
)
from onepassword_emulator.faults import Fault, FaultPlan
from onepassword_emulator.ratelimit import RateLimiter
from onepassword_emulator.rfc3339 import format_ns, parse_ns
from onepassword_emulator.server import (
    CONTROL_PREFIX,
    ControlError,
    RequestRecord,
    start_server,
)
from onepassword_emulator.service import ERROR_STYLES, EventsService, ServiceSettings
from onepassword_emulator.store import CursorCodec, EventStream
from onepassword_emulator.v3 import V3_FEATURE, render_positions

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from typing_extensions import Self

    from onepassword_emulator.server import EmulatorHTTPServer

REQUEST_LOG_SIZE = 100_000
"""The request log keeps the most recent requests only, so a long-running demo stays small."""
_TOKEN_AGE_SECONDS = 7 * 86_400
"""The default tokens were 'issued' a week before the emulator started."""


class Emulator:
    """A local 1Password Events API serving deterministic events for several accounts."""

    def __init__(  # noqa: PLR0913 - every knob is a documented, keyword-only setting
        self,
        *,
        seed: int = 1,
        events: int = 1000,
        accounts: list[AccountSpec] | None = None,
        latency_ms: float = 0,
        retry_after: float | None = None,
        error_style: str = "legacy",
        rate_limit_per_minute: int = 600,
        rate_limit_per_hour: int = 30_000,
        re_serve_final_page: bool = False,
        v3_legacy_names: bool = False,
    ) -> None:
        """Generate ``events`` events per feature for each account (default: acme, globex, initech).

        Args:
            seed: makes every event, account UUID and token claim repeatable.
            events: initial events per stream (account and feature), spread over 90 days.
            accounts: the accounts to serve; ``None`` gives :data:`DEFAULT_ACCOUNTS`.
            latency_ms: time from an API request to its answer, handling included (for
                wall-clock benchmarks; a handling that takes longer answers when done).
            retry_after: seconds sent in ``Retry-After`` on rate-limit 429s; ``None`` sends none,
                as the real API documents none.
            error_style: ``"legacy"`` for ``{"Error": {"Message": ...}}`` or ``"status"`` for
                ``{"status": N, "message": ...}``.
            rate_limit_per_minute: requests a token may make in any 60 seconds.
            rate_limit_per_hour: requests a token may make in any hour.
            re_serve_final_page: a final page's cursor points at that page's first event, so
                posting it again serves the page again plus anything new (see
                :attr:`re_serve_final_page`).
            v3_legacy_names: the v3 route reads the beta's earlier parameter names
                (``page_size``, ``next_page_token``) and answers with ``has_more``.

        """
        if error_style not in ERROR_STYLES:
            msg = f"error_style must be one of {', '.join(ERROR_STYLES)}"
            raise ValueError(msg)
        if isinstance(events, bool) or not isinstance(events, int) or events < 0:
            msg = "events must be a non-negative integer"
            raise ValueError(msg)
        if rate_limit_per_minute < 1 or rate_limit_per_hour < 1:
            msg = "rate limits must be at least 1 request"
            raise ValueError(msg)
        if latency_ms < 0:
            msg = "latency_ms must not be negative"
            raise ValueError(msg)
        specs = list(DEFAULT_ACCOUNTS if accounts is None else accounts)
        if not specs or len({spec.name for spec in specs}) != len(specs):
            msg = "accounts must be a non-empty list with unique names"
            raise ValueError(msg)
        self.seed = seed
        self.latency_ms = latency_ms
        self.clock = Clock()
        self.faults = FaultPlan()
        self.stopping = threading.Event()
        self._initial_events = events
        self._started_ns = self.clock.now_ns()
        self._authority = TokenAuthority(hashlib.sha256(f"token-key:{seed}".encode()).digest())
        self._accounts = [
            Account(
                spec.name,
                spec.account_uuid or derived_uuid(seed, "account", spec.name),
                list(spec.features),
                spec.msp,
            )
            for spec in specs
        ]
        self._profiles = {
            account.name: AccountProfile(
                seed=seed, name=account.name, account_uuid=account.account_uuid, msp=account.msp
            )
            for account in self._accounts
        }
        self._streams: dict[tuple[str, str], EventStream] = {}
        self._streams_lock = threading.Lock()
        for account in self._accounts:
            for feature in account.features:
                self._stream(account.name, feature)
        self._requests: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_SIZE)
        self._requests_lock = threading.Lock()
        self._minted = 0
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._host_port = ""
        self.service = EventsService(
            clock=self.clock,
            authority=self._authority,
            accounts=self._accounts,
            streams=self._stream,
            codec=CursorCodec(os.urandom(32)),
            limiter=RateLimiter(self.clock, rate_limit_per_minute, rate_limit_per_hour),
            settings=ServiceSettings(
                error_style=error_style,
                retry_after=retry_after,
                re_serve_final_page=re_serve_final_page,
                v3_legacy_names=v3_legacy_names,
            ),
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Serve on ``host:port`` (``port=0`` picks a free port) and mint the accounts' tokens."""
        if self._server is not None:
            msg = "the emulator is already running"
            raise RuntimeError(msg)
        self.stopping.clear()
        self._server, self._thread = start_server(self, host, port)
        bound_host, bound_port = self._server.server_address[:2]
        if isinstance(bound_host, bytes):
            bound_host = bound_host.decode()
        self._host_port = f"{bound_host}:{bound_port}"
        # Whole days, so a restart with the same seed and port prints the same tokens that day.
        issued_at = (self._started_ns // NANOS_PER_SECOND) // 86_400 * 86_400 - _TOKEN_AGE_SECONDS
        for account in self._accounts:
            account.token = self._authority.mint(
                account_uuid=account.account_uuid,
                features=account.features,
                issued_at=issued_at,
                jti=derived_uuid(self.seed, "token", account.name, lower=True),
                audience=[self._host_port],
            )
        return self

    def stop(self) -> None:
        """Stop serving (hanging requests are released) and close the socket."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        """Start on a free port of 127.0.0.1 unless already started."""
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()

    @property
    def base_url(self) -> str:
        """Return ``http://host:port`` of the running emulator."""
        if not self._host_port:
            msg = "the emulator has not been started"
            raise RuntimeError(msg)
        return f"http://{self._host_port}"

    # -- accounts and tokens ---------------------------------------------------------------

    @property
    def accounts(self) -> list[Account]:
        """Return the served accounts (tokens are set once started)."""
        return list(self._accounts)

    def account(self, name: str) -> Account:
        """Return the account called ``name``.

        Raises:
            KeyError: when no such account is served.

        """
        for account in self._accounts:
            if account.name == name:
                return account
        msg = f"no account named {name!r}; accounts: {', '.join(a.name for a in self._accounts)}"
        raise KeyError(msg)

    def mint_token(  # noqa: PLR0913 - each claim is a separate, named choice of the caller
        self,
        account: str,
        features: list[str] | None = None,
        exp: float | datetime | None = None,
        aud: list[str] | None = None,
        *,
        omit_aud: bool = False,
        claims: Mapping[str, object] | None = None,
        header: Mapping[str, object] | None = None,
    ) -> str:
        """Mint another token for ``account``.

        Args:
            account: the account name.
            features: features the token may read (default: the account's).
            exp: expiry as epoch seconds or an aware datetime; ``None`` never expires.
            aud: the ``aud`` claim (default: ``[host:port]`` of this emulator).
            omit_aud: leave ``aud`` out (a token a client must refuse).
            claims: claims to add or override, any JSON value (e.g. a string ``aud``).
            header: a header instead of the signing key's (the token then never verifies).

        """
        target = self.account(account)
        chosen = list(target.features if features is None else features)
        unknown = set(chosen) - set(FEATURES)
        if unknown:
            msg = f"unknown features {sorted(unknown)}"
            raise ValueError(msg)
        expires_at = (
            None if exp is None else int(exp.timestamp() if isinstance(exp, datetime) else exp)
        )
        self._minted += 1
        return self._authority.mint(
            account_uuid=target.account_uuid,
            features=chosen,
            issued_at=self.clock.now_ns() // NANOS_PER_SECOND,
            jti=derived_uuid(self.seed, "minted", account, self._minted, os.getpid(), lower=True),
            audience=None if omit_aud else [self._host_port or "127.0.0.1"] if aud is None else aud,
            expires_at=expires_at,
            claims=claims,
            header=header,
        )

    # -- events ----------------------------------------------------------------------------

    def _stream(self, account: str, feature: str) -> EventStream:
        key = (account, feature)
        stream = self._streams.get(key)
        if stream is not None:
            return stream
        with self._streams_lock:
            stream = self._streams.get(key)
            if stream is None:
                self.account(account)
                stream_key = derive_key(self.seed, "stream", account, feature)
                renderer = StreamRenderer(self._profiles[account], feature, stream_key)
                end_ns = self._started_ns - 60 * NANOS_PER_SECOND
                stamps = initial_timestamps(stream_key, self._initial_events, end_ns)
                stream = EventStream(renderer, stamps, insertion=feature == V3_FEATURE)
                self._streams[key] = stream
        return stream

    def _checked_stream(self, account: str, feature: str) -> EventStream:
        if feature not in FEATURES:
            msg = f"unknown feature {feature!r}; expected one of {', '.join(FEATURES)}"
            raise ValueError(msg)
        return self._stream(account, feature)

    def events(self, account: str, feature: str, version: str = "v2") -> list[dict[str, Any]]:
        """Return every event the API would serve for ``account``/``feature`` right now.

        Events are in ingestion order, the 120-day retention applied, rendered exactly as the
        ``version`` endpoint serves them (v1 lacks the v2-only fields; ``v3``, audit events
        only, is the emulator's v3 shape, in insertion order, retention on insertion time).
        """
        stream = self._checked_stream(account, feature)
        cutoff = self.service.retention_start_ns()
        if _is_v3(version, feature):
            retained = range(stream.first_inserted_after(cutoff - 1), len(stream))
            return render_positions(stream, retained, self.account(account).account_uuid)
        v2 = _is_v2(version)
        render = stream.renderer.render
        texts = [
            render(position, stamp, v2=v2)
            for position, stamp in enumerate(stream.timestamps())
            if stamp >= cutoff
        ]
        return json.loads("[" + ",".join(texts) + "]")  # type: ignore[no-any-return]

    def add_events(
        self,
        account: str,
        feature: str,
        count: int = 1,
        *,
        late: bool = False,
        version: str = "v2",
    ) -> list[dict[str, Any]]:
        """Ingest ``count`` new events now and return them as ``version`` serves them.

        With ``late=True`` their timestamps lie up to an hour before the newest event already
        ingested (never before the retention window): the service's eventual consistency,
        which a cursor catches and a timestamp-based resume misses. Audit events are inserted
        now, all of them at one instant (whole milliseconds; a late event too: v3 serves it
        after everything inserted before).
        """
        v3 = _is_v3(version, feature)
        v2 = v3 or _is_v2(version)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            msg = "count must be a positive integer"
            raise ValueError(msg)
        stream = self._checked_stream(account, feature)
        seed = derive_key(self.seed, "added", account, feature, len(stream), late)
        rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
        now = self.clock.now_ns()
        newest = stream.newest_ns if len(stream) else now
        if late:
            floor = max(
                self.service.retention_start_ns() + NANOS_PER_SECOND,
                newest - 3600 * NANOS_PER_SECOND,
            )
            span = max(newest - floor, 1)
            stamps = sorted(floor + int(rng.random() * span) for _ in range(count))
            stamps = [min(stamp, newest - 1) for stamp in stamps]
        else:
            base = max(now - count * 1_000_000, newest + 1)
            stamps = [base + index * 1_000_000 + rng.randrange(1_000_000) for index in range(count)]
            stamps = [
                truncated
                if (truncated := truncate_precision(stamp, rng.randrange(10))) > newest
                else stamp
                for stamp in stamps
            ]
        positions = stream.append(stamps, now if stream.keeps_insertion_times else None)
        if v3:
            return render_positions(stream, positions, self.account(account).account_uuid)
        render = stream.renderer.render
        texts = [render(position, stream.timestamp(position), v2=v2) for position in positions]
        return json.loads("[" + ",".join(texts) + "]")  # type: ignore[no-any-return]

    # -- faults, secrets, limits, time -----------------------------------------------------

    def fail_next(self, path: str, fault: str, count: int = 1, **params: Any) -> Fault:  # noqa: ANN401
        """Make the next ``count`` requests to ``path`` (or ``"*"``) fail with ``fault``.

        Faults: ``"429"`` (``retry_after=None|seconds``), ``"500"``, ``"502"``, ``"503"``,
        ``"reset"``, ``"hang"`` (``seconds=S``, then a normal answer), ``"truncate"``
        (``incomplete=True`` announces the full length and drops the connection),
        ``"empty_page"`` and ``"reject_cursor"``. ``after=N`` lets N matching requests pass
        first.
        """
        return self.faults.schedule(path, str(fault), count, **params)

    @property
    def re_serve_final_page(self) -> bool:
        """Whether a final page's cursor points at that page's first event (default False).

        Then re-posting the cursor of a ``has_more: false`` page serves that page again, plus
        anything ingested since: the behaviour other collectors report of the real API.
        """
        return self.service.settings.re_serve_final_page

    @re_serve_final_page.setter
    def re_serve_final_page(self, value: bool) -> None:
        self.service.settings.re_serve_final_page = bool(value)

    def revoke_token(self, token: str) -> None:
        """Answer 401 to ``token`` (any token this emulator minted) until it is restored.

        Raises:
            ValueError: when ``token`` is not one this emulator minted.

        """
        self.service.revoked.add(self._jti_of(token))

    def restore_token(self, token: str) -> None:
        """Accept a revoked ``token`` again."""
        self.service.revoked.discard(self._jti_of(token))

    def _jti_of(self, token: str) -> str:
        try:
            return self._authority.verify(token, 0).jti
        except TokenError as exc:
            msg = f"not a token of this emulator ({exc})"
            raise ValueError(msg) from None

    def clear_faults(self) -> None:
        """Drop every fault not yet consumed."""
        self.faults.clear()

    def rotate_secret(self) -> None:
        """Sign cursors with a new secret: every cursor issued so far now gets 400."""
        self.service.rotate_secret(os.urandom(32))

    def reset_rate_limits(self) -> None:
        """Forget the requests counted against every token's rate limits."""
        self.service.limiter.reset()

    @property
    def now(self) -> datetime:
        """Return the emulator clock's current time (UTC)."""
        return self.clock.now()

    def advance_time(self, seconds: float) -> None:
        """Move the emulator clock forward by ``seconds`` (rate windows, retention, expiry)."""
        self.clock.advance(seconds)

    def set_time(self, when: datetime) -> None:
        """Make the emulator clock read ``when`` (an aware datetime) from now on."""
        self.clock.set(when)

    # -- request log -----------------------------------------------------------------------

    def record(self, entry: RequestRecord) -> None:
        """Append an API request to the log (called by the HTTP layer)."""
        with self._requests_lock:
            self._requests.append(entry)

    @property
    def requests(self) -> list[RequestRecord]:
        """Return the API requests seen so far (the last ``REQUEST_LOG_SIZE``), oldest first."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._requests_lock:
            self._requests.clear()

    # -- the /_emulator/ control routes ----------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Return the line the command line prints: base URL and accounts with tokens."""
        return {
            "base_url": self.base_url,
            "accounts": [
                {key: value for key, value in account.to_json().items() if key != "msp"}
                for account in self._accounts
            ],
        }

    def control(  # noqa: C901, PLR0911, PLR0912 - one branch per documented control route
        self, method: str, path: str, query: dict[str, list[str]], payload: dict[str, Any]
    ) -> dict[str, Any]:
        """Carry out a ``/_emulator/`` control request and return its JSON answer.

        Raises:
            ControlError: for an unknown route or method (404) or bad arguments (400).

        """
        route = path[len(CONTROL_PREFIX) :].rstrip("/")
        args = {key: values[-1] for key, values in query.items()} | payload
        if (method, route) == ("GET", "accounts"):
            return {**self.describe(), "accounts": [a.to_json() for a in self._accounts]}
        if (method, route) == ("POST", "tokens"):
            token = self.mint_token(
                _required(args, "account"), args.get("features"), args.get("exp"), args.get("aud")
            )
            return {"token": token}
        if (method, route) in (("POST", "tokens/revoke"), ("POST", "tokens/restore")):
            token = str(_required(args, "token"))
            if route == "tokens/revoke":
                self.revoke_token(token)
            else:
                self.restore_token(token)
            return {"revoked": route == "tokens/revoke"}
        if route == "switches" and method in ("GET", "POST"):
            if "re_serve_final_page" in args:
                self.re_serve_final_page = bool(args["re_serve_final_page"])
            return {"re_serve_final_page": self.re_serve_final_page}
        if (method, route) == ("GET", "events"):
            return {
                "items": self.events(
                    _required(args, "account"),
                    _required(args, "feature"),
                    args.get("version", "v2"),
                )
            }
        if (method, route) == ("POST", "events"):
            return {
                "items": self.add_events(
                    _required(args, "account"),
                    _required(args, "feature"),
                    int(args.get("count", 1)),
                    late=bool(args.get("late", False)),
                    version=args.get("version", "v2"),
                )
            }
        if (method, route) == ("POST", "faults"):
            params = {k: v for k, v in args.items() if k not in ("path", "fault", "count")}
            fault = self.fail_next(
                _required(args, "path"), _required(args, "fault"), args.get("count", 1), **params
            )
            return {"scheduled": fault.to_json()}
        if route == "faults" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.clear_faults()
            return {"faults": [fault.to_json() for fault in self.faults.pending()]}
        if route == "requests" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.clear_requests()
            return {"requests": [record.to_json() for record in self.requests]}
        if (method, route) == ("POST", "rotate-secret"):
            self.rotate_secret()
            return {"rotated": True}
        if (method, route) == ("POST", "rate-limits/reset"):
            self.reset_rate_limits()
            return {"reset": True}
        if route == "time" and method in ("GET", "POST"):
            if "advance" in args:
                self.advance_time(float(args["advance"]))
            if "set" in args:
                self.set_time(_aware(parse_ns(str(args["set"]))))
            return {"now": format_ns(self.clock.now_ns())}
        msg = f"no control route {method} {path}"
        raise ControlError(msg, status=404)


def _is_v3(version: str, feature: str) -> bool:
    if version == "v3" and feature != V3_FEATURE:
        msg = f"version v3 serves {V3_FEATURE} only"
        raise ValueError(msg)
    return version == "v3"


def _is_v2(version: str) -> bool:
    if version not in ("v1", "v2"):
        msg = "version must be 'v1', 'v2' or (audit events) 'v3'"
        raise ValueError(msg)
    return version == "v2"


def _required(args: dict[str, Any], key: str) -> Any:  # noqa: ANN401 - any JSON value
    if key not in args:
        msg = f"missing {key!r}"
        raise ControlError(msg)
    return args[key]


def _aware(nanos: int) -> datetime:
    from datetime import timezone  # noqa: PLC0415 - only the control route needs it

    return datetime.fromtimestamp(nanos / NANOS_PER_SECOND, tz=timezone.utc)
