"""Turn the tap's config into checked settings and a list of accounts, before any request.

`config_jsonschema` (in `tap.py`) is the single source of truth for names and defaults; this
module reads the defaults from it and adds the checks JSON Schema cannot express: exactly one
of `token` and `accounts`, tokens that are JWTs, unique account names, base URLs that keep the
token off plain HTTP, parsable dates in order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from jsonschema import Draft7Validator  # type: ignore[import-untyped]

from tap_onepassword.errors import ConfigError
from tap_onepassword.timestamps import format_timestamp, normalise_timestamp, parse_timestamp
from tap_onepassword.tokens import check_base_url, events_base_url, read_claims

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_ACCOUNT_NAME = "default"
"""The account name a single `token` setting gets (in contexts, state and records)."""

RETENTION = timedelta(days=120)
"""The API serves only the last 120 days of events."""


@dataclass(frozen=True)
class Account:
    """One configured 1Password account: a name for state and records, a token, a host."""

    name: str
    token: str = field(repr=False)
    base_url: str
    expires_at: int | None = None
    """The token's `exp` claim (Unix seconds), None when it never expires."""

    @property
    def token_id(self) -> str:
        """A stable, non-secret identity of the token (accounts sharing a token share a budget)."""
        return hashlib.sha256(self.token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Settings:
    """Everything the streams need from the config, checked and with defaults applied."""

    accounts: tuple[Account, ...]
    api_version: str
    start_date: datetime | None
    end_date: datetime | None
    page_size: int
    request_timeout: float
    max_requests_per_minute: int
    max_requests_per_hour: int
    lookback: timedelta
    ca_bundle: str | None
    state_interval: float = 5.0
    start_bound: str | None = None
    """`start_date` normalised to the nanosecond (inclusive), for comparing with events."""
    end_bound: str | None = None
    """`end_date` normalised to the nanosecond (exclusive), for comparing with events."""
    strict_events: bool = False
    v3_parameter_names: str = "current"

    def account(self, name: str) -> Account:
        """Find an account by its configured name.

        Args:
            name: The name in a partition context.

        Returns:
            The account.

        """
        account = self._by_name.get(name)
        if account is None:
            msg = f"no account named '{name}' is configured"
            raise ConfigError(msg)
        return account

    @cached_property
    def _by_name(self) -> dict[str, Account]:
        # Asked on every request: a thousand accounts make a list search count.
        return {account.name: account for account in self.accounts}


def _describe_schema_error(path: str, validator: str, expected: object) -> str:
    """Say what a setting must be without echoing its value (it may be a token)."""
    wants = {
        "type": f"must be of type {expected}",
        "minimum": f"must be at least {expected}",
        "maximum": f"must be at most {expected}",
        "exclusiveMinimum": f"must be greater than {expected}",
        "enum": f"must be one of {expected}",
        "format": f"must be a {expected}",
        "minLength": "must not be empty",
        "minItems": "must list at least one account",
    }.get(validator)
    return f"{path} {wants}" if wants else f"{path} is invalid ({validator})"


def schema_errors(config: Mapping[str, Any], schema: dict[str, Any]) -> list[str]:
    """Check the config against the settings schema; messages never include values.

    Args:
        config: The merged config.
        schema: The tap's `config_jsonschema`.

    Returns:
        One message per problem, in a stable order.

    """
    problems = []
    for error in sorted(Draft7Validator(schema).iter_errors(dict(config)), key=str):
        path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        ).lstrip(".")
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else "a setting"
            where = f"{path} " if path else ""
            problems.append(f"{where}needs '{missing}'".strip())
        elif error.validator == "additionalProperties":
            problems.append(f"{path or 'config'}: {error.message}")
        else:
            kind, expected = str(error.validator), error.validator_value
            problems.append(_describe_schema_error(path or "config", kind, expected))
    return problems


def _default(schema: dict[str, Any], name: str) -> Any:  # noqa: ANN401 - any setting's type
    return schema["properties"][name].get("default")


def _date_setting(config: Mapping[str, Any], name: str) -> datetime | None:
    """Read a date setting: RFC 3339, or leniently a date or a time without offset (UTC)."""
    value = config.get(name)
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        msg = f"{name} is empty; remove it to use the default, or set an RFC 3339 date-time"
        raise ConfigError(msg)
    if isinstance(value, str):
        try:
            return parse_timestamp(value.strip())
        except ValueError:
            pass
        try:
            lenient = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return lenient if lenient.tzinfo else lenient.replace(tzinfo=timezone.utc)
    msg = f"{name} is not a date-time; use RFC 3339, e.g. 2025-01-31T00:00:00Z"
    raise ConfigError(msg)


def _bound(config: Mapping[str, Any], name: str, parsed: datetime | None) -> str | None:
    """Write a date setting as a normalised timestamp at its full precision (ns, offsets).

    `parsed` (a datetime) keeps only microseconds; events carry up to nanoseconds.
    """
    if parsed is None:
        return None
    try:
        return normalise_timestamp(str(config[name]).strip())
    except ValueError:  # a lenient date or time without offset: whole microseconds
        return format_timestamp(parsed)


def _token(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        msg = f"{where} is empty; paste the Events API token issued in 1Password"
        raise ConfigError(msg)
    return value.strip()


def _account(name: str, token: str, base_url: object, where: str) -> Account:
    claims = read_claims(token, name)
    if base_url is None:
        url = events_base_url(claims, name)
    elif isinstance(base_url, str) and not base_url.strip():
        msg = f"{where} is empty; remove it to use the host named in the token, or set a URL"
        raise ConfigError(msg)
    elif isinstance(base_url, str):
        url = check_base_url(base_url, where)
    else:
        msg = f"{where} must be a URL string"
        raise ConfigError(msg)
    return Account(name=name, token=token, base_url=url, expires_at=claims.expires_at)


def _accounts(config: Mapping[str, Any]) -> tuple[Account, ...]:
    token, listed = config.get("token"), config.get("accounts")
    default_url = config.get("base_url")
    if token not in (None, "") and listed:
        msg = (
            "set either token (one account) or accounts (several), not both; "
            "move the single token into accounts with a name"
        )
        raise ConfigError(msg)
    if listed:
        accounts: list[Account] = []
        for index, entry in enumerate(listed):
            name = str(entry.get("name", "")).strip()
            if not name:
                msg = f"accounts[{index}].name is empty; give each account a stable name"
                raise ConfigError(msg)
            if any(a.name == name for a in accounts):
                msg = f"accounts[{index}]: the name '{name}' is used twice; names must be unique"
                raise ConfigError(msg)
            account_token = _token(entry.get("token"), f"accounts[{index}].token")
            own_url = entry.get("base_url")
            url = default_url if own_url is None else own_url
            where = "base_url" if own_url is None else f"accounts[{index}].base_url"
            accounts.append(_account(name, account_token, url, where))
        return tuple(accounts)
    if token in (None, ""):
        msg = (
            "no token configured: set token to the Events API bearer token of your account "
            "(or accounts to a list of {name, token} for several)"
        )
        raise ConfigError(msg)
    return (_account(DEFAULT_ACCOUNT_NAME, _token(token, "token"), default_url, "base_url"),)


def load_settings(config: Mapping[str, Any], schema: dict[str, Any]) -> Settings:
    """Check the config and return the settings the streams use.

    Args:
        config: The merged config (files and environment).
        schema: The tap's `config_jsonschema`, whose defaults apply to missing settings.

    Returns:
        Checked settings.

    Raises:
        ConfigError: The first problem found, as one line that says what to change.

    """
    if "batch_config" in config:
        # The SDK would act on it although the tap leaves out the `batch` capability: it did
        # not make the pipeline faster, and the per-page STATE would get ahead of BATCH files.
        msg = (
            "batch_config: batch mode is not supported by this tap; remove batch_config "
            "(records go out as RECORD messages, which target-postgres loads with COPY)"
        )
        raise ConfigError(msg)
    problems = schema_errors(config, schema)
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems))

    def setting(name: str) -> Any:  # noqa: ANN401 - any setting's type
        value = config.get(name)
        return _default(schema, name) if value is None else value

    start_date = _date_setting(config, "start_date")
    end_date = _date_setting(config, "end_date")
    if start_date and end_date and end_date <= start_date:
        msg = "end_date must be later than start_date"
        raise ConfigError(msg)
    ca_bundle = config.get("ca_bundle")
    if isinstance(ca_bundle, str) and not ca_bundle.strip():
        msg = "ca_bundle is empty; remove it to use the system's CA certificates, or set a path"
        raise ConfigError(msg)
    if ca_bundle is not None:
        try:
            with open(ca_bundle, "rb"):  # noqa: PTH123 - a readable file is all that matters
                pass
        except OSError:
            msg = f"ca_bundle: cannot read '{ca_bundle}'; point it at a PEM file of CA certificates"
            raise ConfigError(msg) from None
    return Settings(
        accounts=_accounts(config),
        api_version=setting("api_version"),
        start_date=start_date,
        end_date=end_date,
        page_size=int(setting("page_size")),
        request_timeout=float(setting("request_timeout")),
        max_requests_per_minute=int(setting("max_requests_per_minute")),
        max_requests_per_hour=int(setting("max_requests_per_hour")),
        lookback=timedelta(minutes=float(setting("lookback_minutes"))),
        ca_bundle=ca_bundle,
        state_interval=float(setting("state_interval_seconds")),
        start_bound=_bound(config, "start_date", start_date),
        end_bound=_bound(config, "end_date", end_date),
        strict_events=bool(setting("strict_events")),
        v3_parameter_names=setting("v3_parameter_names"),
    )


def retention_start(now: datetime | None = None) -> datetime:
    """Return the oldest instant the API still serves.

    Args:
        now: The current time (default: now).

    Returns:
        `now` minus 120 days.

    """
    return (now or datetime.now(timezone.utc)) - RETENTION
