"""The generated events: documented fields and enums, version and MSP differences, formats."""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from onepassword_emulator import Emulator
from onepassword_emulator.data import FEATURES

if TYPE_CHECKING:
    from collections.abc import Iterator

# Enumerations copied from the reference (events-api.md §9), not from the generator.
CATEGORIES = {
    "success",
    "credentials_failed",
    "mfa_failed",
    "sso_failed",
    "modern_version_failed",
    "firewall_failed",
    "firewall_reported_success",
}
TYPES = {
    "all_blocked",
    "anonymous_blocked",
    "code_bad",
    "code_disabled",
    "code_timeout",
    "continent_blocked",
    "country_blocked",
    "credentials_ok",
    "duo_bad",
    "duo_disabled",
    "duo_native_bad",
    "duo_timeout",
    "federated",
    "ip_blocked",
    "mfa_missing",
    "mfa_ok",
    "modern_version_missing",
    "modern_version_old",
    "non_sso_user",
    "password_secret_bad",
    "platform_secret_bad",
    "platform_secret_disabled",
    "platform_secret_proxy",
    "service_account_sso_denied",
    "sso_user_mismatch",
    "totp_bad",
    "totp_disabled",
    "totp_timeout",
    "u2f_bad",
    "u2f_disabled",
    "u2f_timeout",
}
ITEM_ACTIONS = {
    "enter-item-edit-mode",
    "export",
    "fill",
    "other",
    "reveal",
    "secure-copy",
    "select-sso-provider",
    "server-create",
    "server-fetch",
    "server-update",
    "share",
}
AUDIT_ACTIONS = {
    "activate",
    "addgsso",
    "begin",
    "beginr",
    "cancel",
    "cancelr",
    "changeks",
    "changela",
    "changemp",
    "changenm",
    "changesk",
    "chngasso",
    "chngdsso",
    "chngpsso",
    "complete",
    "completr",
    "convert",
    "create",
    "dealldev",
    "delete",
    "delgsso",
    "delshare",
    "deolddev",
    "detchild",
    "disblduo",
    "disblmfa",
    "disblsso",
    "dlgsess",
    "dvrfydmn",
    "enblduo",
    "enblmfa",
    "enblsso",
    "expire",
    "export",
    "grant",
    "hide",
    "join",
    "launchi",
    "leave",
    "musercom",
    "muserdec",
    "patch",
    "propose",
    "provsn",
    "prsndall",
    "purge",
    "rdmchild",
    "reactive",
    "reauth",
    "replace",
    "resendts",
    "revoke",
    "role",
    "sdvcsso",
    "sendpkg",
    "sendts",
    "share",
    "ssotknv",
    "suspend",
    "tdvcsso",
    "trename",
    "trevoke",
    "trvlaway",
    "trvlback",
    "tverify",
    "uisas",
    "unhide",
    "unknown",
    "unlink",
    "updatduo",
    "update",
    "updatea",
    "updatfw",
    "updatmfa",
    "upguest",
    "uvrfydmn",
    "verify",
    "view",
    "vrfydmn",
}
OBJECT_TYPES = {
    "account",
    "card",
    "cred",
    "device",
    "dlgdsess",
    "ec",
    "famchild",
    "file",
    "gm",
    "group",
    "gva",
    "invite",
    "item",
    "itemhist",
    "items",
    "miguser",
    "mngdacc",
    "pm",
    "report",
    "sa",
    "satoken",
    "slackapp",
    "sso",
    "ssotkn",
    "sub",
    "template",
    "user",
    "uva",
    "vault",
    "vaultkey",
}
V2_ONLY = {"account_uuid", "actor_type", "actor_account_uuid"}
USER_V2_ONLY = {"user_type", "user_account_uuid"}

SIGN_IN_KEYS = {
    "uuid",
    "session_uuid",
    "timestamp",
    "category",
    "type",
    "country",
    "details",
    "target_user",
    "client",
    "location",
}
ITEM_USAGE_KEYS = {
    "uuid",
    "timestamp",
    "used_version",
    "vault_uuid",
    "item_uuid",
    "action",
    "user",
    "client",
    "location",
}
AUDIT_KEYS = {
    "uuid",
    "timestamp",
    "actor_uuid",
    "actor_details",
    "action",
    "object_type",
    "object_uuid",
    "object_details",
    "aux_id",
    "aux_uuid",
    "aux_details",
    "aux_info",
    "session",
    "location",
}
CLIENT_KEYS = {
    "app_name",
    "app_version",
    "platform_name",
    "platform_version",
    "os_name",
    "os_version",
    "ip_address",
}
LOCATION_KEYS = {"country", "region", "city", "latitude", "longitude"}
UPPER_UUID = re.compile(r"[A-Z2-7]{26}")
LOWER_UUID = re.compile(r"[a-z2-7]{26}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")


class Cached(Emulator):
    """Memoises ``events`` so the tests below render each stream once."""

    @functools.cache  # noqa: B019 - one instance per module, discarded afterwards
    def cached(self, account: str, feature: str, version: str) -> list[dict]:
        return super().events(account, feature, version)

    def events(self, account: str, feature: str, version: str = "v2") -> list[dict]:
        return self.cached(account, feature, version)


@pytest.fixture(scope="module")
def big() -> Emulator:
    """3,000 events per stream; no server needed to read them through the Python API."""
    return Cached(seed=11, events=3000)


def _users(event: dict) -> Iterator[dict]:
    for key in ("target_user", "user", "actor_details", "object_details", "aux_details"):
        if key in event:
            yield event[key]


def test_sign_in_attempts_cover_every_category_and_type_in_sensible_pairs(big: Emulator) -> None:
    events = big.events("acme", "signinattempts", version="v1")
    assert {e["category"] for e in events} == CATEGORIES
    assert {e["type"] for e in events} == TYPES
    assert "u2f_timout" not in {e["type"] for e in events}
    for event in events:
        category, kind = event["category"], event["type"]
        if category == "success":
            assert kind in {"credentials_ok", "mfa_ok", "federated"}
        elif category.startswith("firewall"):
            assert kind.endswith("_blocked")
            assert isinstance(event["details"], dict)
            assert event["details"]["value"]
        elif category == "sso_failed":
            assert kind in {"non_sso_user", "sso_user_mismatch", "service_account_sso_denied"}
        elif category == "modern_version_failed":
            assert kind.startswith("modern_version_")
        elif category == "mfa_failed":
            assert kind == "mfa_missing" or kind.split("_")[0] in {"code", "duo", "totp", "u2f"}
        else:
            assert kind.endswith(("_bad", "_disabled", "_proxy"))
            assert "secret" in kind
    details = Counter(type(e["details"]).__name__ for e in events)
    assert details["NoneType"] > 1000
    assert details["dict"] > 100


def test_item_usages_cover_every_action(big: Emulator) -> None:
    events = big.events("globex", "itemusages", version="v1")
    assert {e["action"] for e in events} == ITEM_ACTIONS
    assert all(isinstance(e["used_version"], int) and e["used_version"] >= 0 for e in events)


def test_audit_events_cover_every_action_and_object_type(big: Emulator) -> None:
    events = big.events("acme", "auditevents", version="v1") + big.events(
        "globex", "auditevents", version="v1"
    )
    assert {e["action"] for e in events} == AUDIT_ACTIONS
    assert {e["object_type"] for e in events} == OBJECT_TYPES
    joins = [e for e in events if e["object_type"] == "gm" and e["action"] == "join"]
    assert joins
    assert all({"aux_uuid", "aux_details", "aux_info"} <= set(e) for e in joins)
    devices = [e for e in events if e["object_type"] == "device" and e["action"] == "create"]
    assert devices
    assert all(
        isinstance(e["aux_id"], int) and e["aux_id"] > 0 and "aux_details" in e for e in devices
    )
    users = [e for e in events if e["object_type"] == "user"]
    assert all(e["object_details"]["uuid"] == e["object_uuid"] for e in users)
    assert not any("object_details" in e for e in events if e["object_type"] != "user")


@pytest.mark.parametrize(
    ("feature", "keys"),
    [
        ("signinattempts", SIGN_IN_KEYS),
        ("itemusages", ITEM_USAGE_KEYS),
        ("auditevents", AUDIT_KEYS),
    ],
)
def test_every_documented_v1_field_occurs_and_nothing_else(
    big: Emulator, feature: str, keys: set[str]
) -> None:
    events = big.events("acme", feature, version="v1")
    seen = set().union(*(event.keys() for event in events))
    assert seen == keys
    for event in events:
        assert "uuid" in event
        assert "timestamp" in event
        for user in _users(event):
            assert set(user) == {"uuid", "name", "email"}
            assert "@" in user["email"]
        if "client" in event:
            assert set(event["client"]) == CLIENT_KEYS
        if "location" in event:
            assert set(event["location"]) == LOCATION_KEYS
            assert -90 <= event["location"]["latitude"] <= 90
            assert -180 <= event["location"]["longitude"] <= 180
        if "session" in event:
            assert set(event["session"]) == {"uuid", "login_time", "device_uuid", "ip"}
            assert TIMESTAMP.fullmatch(event["session"]["login_time"])
    missing_location = sum("location" not in e for e in events)
    assert 0.05 * len(events) < missing_location < 0.3 * len(events)


def test_v2_adds_only_v2_fields_and_msp_fields_only_on_msp_accounts(big: Emulator) -> None:
    for account, msp in (("acme", False), ("globex", True)):
        for feature in FEATURES:
            v1 = big.events(account, feature, version="v1")
            v2 = big.events(account, feature, version="v2")
            assert [e["uuid"] for e in v1] == [e["uuid"] for e in v2]
            for old, new in zip(v1, v2, strict=False):
                added = set(new) - set(old)
                assert not V2_ONLY & set(old)
                for user in _users(old):
                    assert not USER_V2_ONLY & set(user)
                if feature == "auditevents":
                    assert new["actor_type"] in {"user", "external_user"}
                    assert added == (
                        {"actor_type", "actor_account_uuid", "account_uuid"}
                        if msp
                        else {"actor_type"}
                    )
                    assert set(new["actor_details"]) - set(old["actor_details"]) == (
                        USER_V2_ONLY if msp else set()
                    )
                    for key in ("object_details", "aux_details"):
                        if key in new:
                            assert new[key] == old[key]
                else:
                    assert added == ({"account_uuid"} if msp else set())
                    user_key = "target_user" if feature == "signinattempts" else "user"
                    assert set(new[user_key]) - set(old[user_key]) == (
                        USER_V2_ONLY if msp else set()
                    )
                if msp:
                    assert new["account_uuid"] == big.account(account).account_uuid


def test_msp_accounts_have_external_users_and_actors(big: Emulator) -> None:
    audit = big.events("globex", "auditevents")
    assert Counter(e["actor_type"] for e in audit).keys() == {"user", "external_user"}
    for event in audit:
        details = event["actor_details"]
        assert details["user_type"] == event["actor_type"]
        assert details["user_account_uuid"] == event["actor_account_uuid"]
        if event["actor_type"] == "user":
            assert event["actor_account_uuid"] == event["account_uuid"]
        else:
            assert event["actor_account_uuid"] != event["account_uuid"]
    sign_ins = big.events("globex", "signinattempts")
    assert {e["target_user"]["user_type"] for e in sign_ins} == {"user", "external_user"}
    acme_audit = big.events("acme", "auditevents")
    assert {e["actor_type"] for e in acme_audit} == {"user"}


def test_timestamps_are_utc_with_0_to_9_fractional_digits(big: Emulator) -> None:
    digits = Counter()
    for feature in ("signinattempts", "auditevents"):
        for event in big.events("acme", feature):
            match = TIMESTAMP.fullmatch(event["timestamp"])
            assert match, event["timestamp"]
            digits[len(match.group(1) or ".") - 1] += 1
    assert set(digits) == set(range(10))


def test_uuid_case_follows_the_real_payloads(big: Emulator) -> None:
    for event in big.events("acme", "itemusages"):
        assert UPPER_UUID.fullmatch(event["uuid"])
        assert LOWER_UUID.fullmatch(event["vault_uuid"])
        assert LOWER_UUID.fullmatch(event["item_uuid"])
        assert UPPER_UUID.fullmatch(event["user"]["uuid"])
    for event in big.events("acme", "auditevents"):
        assert UPPER_UUID.fullmatch(event["actor_uuid"])
        assert UPPER_UUID.fullmatch(event["session"]["uuid"])
        assert LOWER_UUID.fullmatch(event["session"]["device_uuid"])
    for event in big.events("acme", "signinattempts"):
        assert UPPER_UUID.fullmatch(event["session_uuid"])
        assert re.fullmatch(r"[A-Z]{2}", event["country"])


def test_uuids_are_unique_across_streams_and_accounts(big: Emulator) -> None:
    uuids = [
        e["uuid"]
        for account in big.accounts
        for feature in account.features
        for e in big.events(account.name, feature)
    ]
    assert len(uuids) == len(set(uuids)) == 8 * 3000


def test_events_span_weeks_in_ingestion_order_with_some_late_arrivals(big: Emulator) -> None:
    events = big.events("acme", "auditevents")
    stamps = [datetime.fromisoformat(e["timestamp"][:19] + "+00:00") for e in events]
    assert (stamps[-1] - stamps[0]).days >= 60
    assert (big.now - stamps[-1]).total_seconds() < 3600
    late = sum(1 for earlier, later in itertools.pairwise(stamps) if later < earlier)
    assert 1 <= late <= 60


def _without_times(event: dict) -> dict:
    """Drop what depends on when the emulator started (events sit in the last 90 days)."""
    copy = {key: value for key, value in event.items() if key != "timestamp"}
    if "session" in copy:
        copy["session"] = {k: v for k, v in copy["session"].items() if k != "login_time"}
    return copy


def test_the_same_seed_gives_the_same_events_and_another_seed_does_not() -> None:
    first = Emulator(seed=5, events=200)
    again = Emulator(seed=5, events=200)
    other = Emulator(seed=6, events=200)
    for account in ("acme", "globex"):
        for feature in FEATURES:
            mine = [_without_times(e) for e in first.events(account, feature)]
            assert mine == [_without_times(e) for e in again.events(account, feature)]
            assert mine != [_without_times(e) for e in other.events(account, feature)]
    assert first.account("acme").account_uuid == again.account("acme").account_uuid
    assert first.account("acme").account_uuid != other.account("acme").account_uuid
