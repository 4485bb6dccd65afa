"""The README's ten questions, and their answers computed from the emulator's own events.

The questions and their SQL are read from the README (so the documented one-liners are the
ones tested); the expected answers come from the events the emulator serves, through its
Python API, with no use of the models or the lookups.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

STREAM_OF_FEATURE = {
    "signinattempts": "sign_in_attempts",
    "itemusages": "item_usages",
    "auditevents": "audit_events",
}
SUCCESS_CATEGORIES = {"success", "firewall_reported_success"}
SECRET_EXPOSURES = {"reveal", "secure-copy", "export", "share"}
NETWORK_PREFIX = "203.0.113."
TOP = 5

_QUESTION = re.compile(
    r"^\s*(\d+)\. \*\*(.+?)\*\*[^\n]*\n\n\s*```sql\n\s*(.+?)\n\s*```", re.MULTILINE | re.DOTALL
)


@dataclass(frozen=True)
class Question:
    """One numbered question of the README and its one-line query."""

    number: int
    text: str
    sql: str


def readme_questions() -> dict[int, Question]:
    """Return the README's numbered questions with their SQL, by number."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("### Ten questions, one query each", 1)[1].split("\n### ", 1)[0]
    found = {
        int(number): Question(int(number), text, sql.strip().rstrip(";"))
        for number, text, sql in _QUESTION.findall(section)
    }
    assert sorted(found) == list(range(1, 11)), f"the README lists questions {sorted(found)}"
    return found


def utc_instant(timestamp: str) -> datetime:
    """Parse an RFC 3339 time (up to nanoseconds) into an aware UTC datetime (µs)."""
    head, _, rest = timestamp.partition(".")
    if rest:
        digits = "".join(ch for ch in rest if ch.isdigit())
        timestamp = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(timezone.utc)


@dataclass
class Event:
    """One served event with the account it belongs to."""

    stream: str
    account_name: str
    account_uuid: str
    body: dict[str, Any]

    @property
    def time(self) -> datetime:
        """When the event happened."""
        return utc_instant(self.body["timestamp"])

    @property
    def ip(self) -> str | None:
        """The IP address the event came from (client, or the audit session's)."""
        holder = (
            self.body.get("session") if self.stream == "audit_events" else self.body.get("client")
        )
        return (holder or {}).get("ip" if self.stream == "audit_events" else "ip_address")


def served_events(emulator: Emulator) -> list[Event]:
    """Return every event the emulator serves (v2), with its account."""
    return [
        Event(STREAM_OF_FEATURE[feature], account.name, account.account_uuid, body)
        for account in emulator.accounts
        for feature in account.features
        for body in emulator.events(account.name, feature, version="v2")
    ]


def top(counter: Counter[Any]) -> list[tuple[Any, int]]:
    """Return the TOP most common keys, ties broken by key, as the README's queries order them."""
    return sorted(counter.items(), key=lambda pair: (-pair[1], pair[0]))[:TOP]


class Expected:
    """The answers to the README's questions, from the emulator's events alone."""

    def __init__(self, events: list[Event]) -> None:
        """Index the events by stream."""
        self.events = events
        self.sign_ins = [event for event in events if event.stream == "sign_in_attempts"]
        self.usages = [event for event in events if event.stream == "item_usages"]
        self.audits = [event for event in events if event.stream == "audit_events"]
        self.failed = [
            event for event in self.sign_ins if event.body["category"] not in SUCCESS_CATEGORIES
        ]

    def last_hour(self, now: datetime) -> dict[str, int]:
        """Question 1: events per stream after `now` minus one hour."""
        since = now - timedelta(hours=1)
        return dict(Counter(event.stream for event in self.events if event.time > since))

    def failed_on(self, day: date) -> int:
        """Question 2: failed sign-ins on one UTC day."""
        return sum(1 for event in self.failed if event.time.date() == day)

    def failures_by_user(self) -> list[tuple[Any, int]]:
        """Question 3."""
        return top(Counter(event.body["target_user"]["email"] for event in self.failed))

    def failures_by_country(self) -> list[tuple[Any, int]]:
        """Question 4."""
        return top(Counter(event.body["country"] for event in self.failed))

    def without_mfa(self) -> list[tuple[Any, int]]:
        """Question 5: successes with credentials only (type credentials_ok), per account."""
        return sorted(
            Counter(
                event.account_name
                for event in self.sign_ins
                if event.body["category"] == "success" and event.body["type"] == "credentials_ok"
            ).items()
        )

    def revealed_or_copied(self) -> list[tuple[Any, int]]:
        """Question 6."""
        return top(
            Counter(
                event.body["item_uuid"]
                for event in self.usages
                if event.body["action"] in {"reveal", "secure-copy"}
            )
        )

    def exposures_by_user(self) -> list[tuple[Any, int]]:
        """Question 7."""
        return top(
            Counter(
                event.body["user"]["email"]
                for event in self.usages
                if event.body["action"] in SECRET_EXPOSURES
            )
        )

    def vault_access(self) -> list[tuple[Any, ...]]:
        """Question 8: grants and revocations of user or group vault access."""
        counts = Counter(
            (event.account_name, event.body["action"])
            for event in self.audits
            if event.body["action"] in {"grant", "revoke"}
            and event.body["object_type"] in {"uva", "gva"}
        )
        return [(*key, count) for key, count in sorted(counts.items())]

    def per_account_uuid(self) -> list[tuple[Any, int]]:
        """Question 9."""
        return sorted(Counter(event.account_uuid for event in self.events).items())

    def from_network(self) -> list[tuple[Any, int]]:
        """Question 10: events per stream whose source IP is in 203.0.113.0/24."""
        return sorted(
            Counter(
                event.stream for event in self.events if (event.ip or "").startswith(NETWORK_PREFIX)
            ).items()
        )

    def first_seen_countries(self) -> dict[tuple[str, str], str]:
        """Per (account UUID, user UUID), the location country of the earliest located event."""
        earliest: dict[tuple[str, str], tuple[datetime, str]] = {}
        for event in self.events:
            country = (event.body.get("location") or {}).get("country")
            person = (
                event.body.get(
                    {"sign_in_attempts": "target_user", "item_usages": "user"}.get(
                        event.stream, "actor_details"
                    )
                )
                or {}
            )
            if not country or not person.get("uuid"):
                continue
            key = (event.account_uuid, person["uuid"])
            if key not in earliest or event.time < earliest[key][0]:
                earliest[key] = (event.time, country)
        return {key: country for key, (_, country) in earliest.items()}
