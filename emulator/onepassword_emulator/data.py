"""The deterministic event generator.

Nothing here keeps an event as a dict: an event is its position in a stream's ingestion order
plus its stored timestamp, and its JSON is rendered on demand from (stream key, position,
timestamp, API version). Everything else an event says (its uuid, user, client, location,
action, ...) follows from a 64-bit mix of the stream key and the position, picking from small
per-account pools whose JSON fragments are serialized once. That keeps a million events per
stream in a few megabytes and a 1,000-item page in a few milliseconds, and makes the data
repeatable for a given seed.

Vocabulary follows the reference: every documented enum value occurs, sign-in categories come
with the types that belong to them, v2-only fields appear only on v2 (the MSP ones only for MSP
accounts), ``details`` is often ``null``, ``location`` is sometimes absent, and timestamps are
UTC with 0 to 9 fractional digits.
"""

from __future__ import annotations

import hashlib
import json
import random
from array import array
from dataclasses import dataclass

from onepassword_emulator.rfc3339 import NANOS_PER_SECOND, format_ns

_MASK64 = (1 << 64) - 1
DAY_NS = 86_400 * NANOS_PER_SECOND
HISTORY_DAYS = 90
"""Initial events spread over this many days before the emulator starts (inside retention)."""

SIGN_IN_OUTCOMES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    # (category, weight per mille, the types that category is reported with)
    ("success", 560, ("credentials_ok", "mfa_ok", "federated")),
    (
        "credentials_failed",
        120,
        (
            "password_secret_bad",
            "platform_secret_bad",
            "platform_secret_disabled",
            "platform_secret_proxy",
        ),
    ),
    (
        "mfa_failed",
        140,
        (
            "mfa_missing",
            "code_bad",
            "code_disabled",
            "code_timeout",
            "duo_bad",
            "duo_disabled",
            "duo_native_bad",
            "duo_timeout",
            "totp_bad",
            "totp_disabled",
            "totp_timeout",
            "u2f_bad",
            "u2f_disabled",
            "u2f_timeout",
        ),
    ),
    ("sso_failed", 50, ("non_sso_user", "sso_user_mismatch", "service_account_sso_denied")),
    ("modern_version_failed", 30, ("modern_version_missing", "modern_version_old")),
    (
        "firewall_failed",
        70,
        (
            "all_blocked",
            "anonymous_blocked",
            "continent_blocked",
            "country_blocked",
            "ip_blocked",
        ),
    ),
    (
        "firewall_reported_success",
        30,
        (
            "anonymous_blocked",
            "continent_blocked",
            "country_blocked",
            "ip_blocked",
        ),
    ),
)

ITEM_USAGE_ACTIONS: tuple[tuple[str, int], ...] = (
    # (action, weight per mille)
    ("fill", 330),
    ("secure-copy", 200),
    ("reveal", 150),
    ("server-fetch", 100),
    ("enter-item-edit-mode", 50),
    ("server-update", 50),
    ("server-create", 30),
    ("select-sso-provider", 30),
    ("share", 25),
    ("other", 20),
    ("export", 15),
)

# (action, object_type, extra): extra says which optional keys the event carries:
# "user" -> object_details of the user object; "device" -> aux_id and aux_details (the owner);
# "member" -> aux_uuid, aux_details and aux_info of a group member; "" -> none.
AUDIT_ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("activate", "account", ""),
    ("activate", "user", "user"),
    ("addgsso", "sso", ""),
    ("begin", "user", "user"),
    ("beginr", "user", "user"),
    ("cancel", "invite", ""),
    ("cancelr", "user", "user"),
    ("changeks", "user", "user"),
    ("changela", "account", ""),
    ("changemp", "user", "user"),
    ("changenm", "user", "user"),
    ("changenm", "vault", ""),
    ("changenm", "group", ""),
    ("changesk", "user", "user"),
    ("chngasso", "sso", ""),
    ("chngdsso", "sso", ""),
    ("chngpsso", "sso", ""),
    ("complete", "user", "user"),
    ("completr", "user", "user"),
    ("convert", "user", "user"),
    ("create", "device", "device"),
    ("create", "group", ""),
    ("create", "vault", ""),
    ("create", "item", ""),
    ("create", "invite", ""),
    ("create", "template", ""),
    ("create", "file", ""),
    ("create", "sa", ""),
    ("create", "satoken", ""),
    ("create", "cred", ""),
    ("create", "report", ""),
    ("create", "ec", ""),
    ("create", "card", ""),
    ("create", "mngdacc", ""),
    ("create", "slackapp", ""),
    ("create", "famchild", ""),
    ("dealldev", "user", "user"),
    ("delete", "item", ""),
    ("delete", "vault", ""),
    ("delete", "group", ""),
    ("delete", "user", "user"),
    ("delete", "cred", ""),
    ("delete", "file", ""),
    ("delete", "template", ""),
    ("delete", "slackapp", ""),
    ("delgsso", "sso", ""),
    ("delshare", "item", ""),
    ("deolddev", "device", "device"),
    ("detchild", "famchild", ""),
    ("disblduo", "account", ""),
    ("disblmfa", "account", ""),
    ("disblsso", "sso", ""),
    ("dlgsess", "dlgdsess", ""),
    ("dvrfydmn", "account", ""),
    ("enblduo", "account", ""),
    ("enblmfa", "account", ""),
    ("enblsso", "sso", ""),
    ("expire", "satoken", ""),
    ("export", "items", ""),
    ("export", "vault", ""),
    ("grant", "gva", ""),
    ("grant", "uva", ""),
    ("hide", "vault", ""),
    ("join", "gm", "member"),
    ("launchi", "item", ""),
    ("leave", "gm", "member"),
    ("musercom", "miguser", ""),
    ("muserdec", "miguser", ""),
    ("patch", "item", ""),
    ("propose", "user", "user"),
    ("provsn", "user", "user"),
    ("prsndall", "invite", ""),
    ("purge", "itemhist", ""),
    ("purge", "items", ""),
    ("rdmchild", "famchild", ""),
    ("reactive", "user", "user"),
    ("reauth", "device", "device"),
    ("replace", "vaultkey", ""),
    ("resendts", "user", "user"),
    ("revoke", "gva", ""),
    ("revoke", "uva", ""),
    ("role", "gm", "member"),
    ("role", "pm", ""),
    ("sdvcsso", "sso", ""),
    ("sendpkg", "user", "user"),
    ("sendts", "user", "user"),
    ("share", "item", ""),
    ("ssotknv", "ssotkn", ""),
    ("suspend", "user", "user"),
    ("suspend", "device", "device"),
    ("tdvcsso", "sso", ""),
    ("trename", "satoken", ""),
    ("trevoke", "satoken", ""),
    ("trvlaway", "user", "user"),
    ("trvlback", "user", "user"),
    ("tverify", "ssotkn", ""),
    ("uisas", "sa", ""),
    ("unhide", "vault", ""),
    ("unknown", "account", ""),
    ("unlink", "mngdacc", ""),
    ("unlink", "slackapp", ""),
    ("updatduo", "account", ""),
    ("update", "account", ""),
    ("update", "item", ""),
    ("update", "vault", ""),
    ("update", "group", ""),
    ("update", "user", "user"),
    ("update", "sub", ""),
    ("update", "card", ""),
    ("updatea", "vault", ""),
    ("updatfw", "account", ""),
    ("updatmfa", "user", "user"),
    ("upguest", "user", "user"),
    ("uvrfydmn", "account", ""),
    ("verify", "user", "user"),
    ("view", "report", ""),
    ("view", "itemhist", ""),
    ("vrfydmn", "account", ""),
)

_FIRST_NAMES = (
    "Mara",
    "Jonas",
    "Aiko",
    "Priya",
    "Lucas",
    "Amara",
    "Mateo",
    "Ingrid",
    "Kwame",
    "Sofia",
    "Hiro",
    "Leila",
    "Owen",
    "Nadia",
    "Tomasz",
    "Elena",
    "Ravi",
    "Chloe",
    "Diego",
    "Freya",
    "Yusuf",
    "Hannah",
    "Kenji",
    "Zoe",
    "Andre",
    "Maya",
    "Felix",
    "Noor",
    "Emil",
    "Rosa",
)
_LAST_NAMES = (
    "Lindqvist",
    "Okafor",
    "Tanaka",
    "Sharma",
    "Moreau",
    "Mensah",
    "Garcia",
    "Berg",
    "Novak",
    "Rossi",
    "Kim",
    "Haddad",
    "Walsh",
    "Petrova",
    "Kowalski",
    "Silva",
    "Iyer",
    "Dubois",
    "Fernandez",
    "Larsen",
    "Demir",
    "Schmidt",
    "Sato",
    "Nguyen",
    "Costa",
    "Patel",
    "Wagner",
    "Rahman",
    "Jensen",
    "Alvarez",
)

# (ISO code, country name, region, city, latitude, longitude, continent)
_PLACES = (
    ("CA", "Canada", "Ontario", "Toronto", 43.6532, -79.3832, "North America"),
    ("CA", "Canada", "British Columbia", "Vancouver", 49.2827, -123.1207, "North America"),
    ("US", "United States", "California", "San Francisco", 37.7749, -122.4194, "North America"),
    ("US", "United States", "New York", "New York", 40.7128, -74.006, "North America"),
    ("US", "United States", "Texas", "Austin", 30.2672, -97.7431, "North America"),
    ("DE", "Germany", "Berlin", "Berlin", 52.52, 13.405, "Europe"),
    ("GB", "United Kingdom", "England", "London", 51.5072, -0.1276, "Europe"),
    ("FR", "France", "Ile-de-France", "Paris", 48.8566, 2.3522, "Europe"),
    ("NL", "Netherlands", "North Holland", "Amsterdam", 52.3676, 4.9041, "Europe"),
    ("SE", "Sweden", "Stockholm County", "Stockholm", 59.3293, 18.0686, "Europe"),
    ("PL", "Poland", "Masovian Voivodeship", "Warsaw", 52.2297, 21.0122, "Europe"),
    ("JP", "Japan", "Tokyo", "Tokyo", 35.6762, 139.6503, "Asia"),
    ("IN", "India", "Karnataka", "Bengaluru", 12.9716, 77.5946, "Asia"),
    ("SG", "Singapore", "Central Singapore", "Singapore", 1.3521, 103.8198, "Asia"),
    ("AU", "Australia", "New South Wales", "Sydney", -33.8688, 151.2093, "Oceania"),
    ("BR", "Brazil", "Sao Paulo", "Sao Paulo", -23.5558, -46.6396, "South America"),
    ("AR", "Argentina", "Buenos Aires", "Buenos Aires", -34.6037, -58.3816, "South America"),
    ("ZA", "South Africa", "Western Cape", "Cape Town", -33.9249, 18.4241, "Africa"),
    ("IL", "Israel", "Tel Aviv District", "Tel Aviv", 32.0853, 34.7818, "Asia"),
    ("NG", "Nigeria", "Lagos", "Lagos", 6.5244, 3.3792, "Africa"),
)

# Client builds: app name and version, platform name and version, OS name and version.
_CLIENTS = (
    ("1Password Browser Extension", "81080048", "Chrome", "131.0.6778.86", "MacOSX", "14.6.1"),
    ("1Password Browser Extension", "81080048", "Firefox", "133.0", "Windows", "10.0.22631"),
    ("1Password Browser Extension", "81072032", "Edge", "130.0.2849.68", "Windows", "10.0.19045"),
    ("1Password Browser Extension", "81080048", "Safari", "18.1", "MacOSX", "15.1"),
    ("1Password Browser Extension", "2290", "Chrome", "93.0.4577.62", "Linux", "6.8"),
    ("1Password for Mac", "81080048", "MacBookPro18,3", "", "MacOSX", "15.1"),
    ("1Password for Mac", "81072032", "Mac14,2", "", "MacOSX", "14.7"),
    ("1Password for Windows", "81080048", "Dell Inc. XPS 15 9530", "", "Windows", "10.0.22631"),
    ("1Password for Linux", "81080048", "LENOVO 21CB", "", "Linux", "6.8.0-48-generic"),
    ("1Password for iOS", "81080048", "iPhone15,2", "", "iOS", "18.1"),
    ("1Password for Android", "81079011", "Google Pixel 8", "", "Android", "14"),
    ("1Password for Web", "1109", "Chrome", "131.0.0.0", "Windows", "10"),
    ("1Password CLI", "2300301", "", "arm64", "MacOSX", "15.1"),
    ("1Password CLI", "2300301", "", "x86_64", "Linux", "6.8.0"),
)

_IP_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.", "89.160.20.", "81.2.69.")


def mix64(value: int) -> int:
    """SplitMix64 finaliser: a fast, well-spread 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_key(*parts: object) -> int:
    """Return a stable 64-bit key for a tuple of names (seed, account, feature, ...)."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_PAIRS_UPPER = tuple(a + b for a in _BASE32 for b in _BASE32)
_PAIRS_LOWER = tuple(pair.lower() for pair in _PAIRS_UPPER)
_TEN_BITS = 1023


def uuid26(high: int, low: int, *, lower: bool = False) -> str:
    """Return a 26-character base32 identifier like the service's UUIDs from 128 bits.

    Hand-rolled (two characters per table lookup) because ``base64.b32encode`` is pure Python
    and would dominate the cost of rendering a page.
    """
    pairs = _PAIRS_LOWER if lower else _PAIRS_UPPER
    bits = (high << 66) | (low << 2) | (high & 3)
    return (
        pairs[bits >> 120 & _TEN_BITS]
        + pairs[bits >> 110 & _TEN_BITS]
        + pairs[bits >> 100 & _TEN_BITS]
        + pairs[bits >> 90 & _TEN_BITS]
        + pairs[bits >> 80 & _TEN_BITS]
        + pairs[bits >> 70 & _TEN_BITS]
        + pairs[bits >> 60 & _TEN_BITS]
        + pairs[bits >> 50 & _TEN_BITS]
        + pairs[bits >> 40 & _TEN_BITS]
        + pairs[bits >> 30 & _TEN_BITS]
        + pairs[bits >> 20 & _TEN_BITS]
        + pairs[bits >> 10 & _TEN_BITS]
        + pairs[bits & _TEN_BITS]
    )


def derived_uuid(*parts: object, lower: bool = False) -> str:
    """Return a stable 26-character UUID for a tuple of names."""
    key = derive_key(*parts)
    return uuid26(mix64(key), mix64(key ^ 0x5555), lower=lower)


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class Person:
    """A member of an account, with its user objects pre-serialized for v1 and v2."""

    uuid: str
    name: str
    email: str
    external: bool
    home_account_uuid: str
    v1_json: str
    v2_json: str


class AccountProfile:
    """The pools an account's events draw from: people, clients, places, vaults and items."""

    def __init__(self, *, seed: int, name: str, account_uuid: str, msp: bool) -> None:
        """Build the pools deterministically from ``seed`` and the account name."""
        self.name = name
        self.account_uuid = account_uuid
        self.msp = msp
        rng = random.Random(derive_key(seed, "profile", name))  # noqa: S311 - synthetic data
        domain = f"{name}.example.com"
        provider_uuid = derived_uuid(seed, "msp-provider", name)
        people = []
        for index in range(40):
            first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            # On an MSP account a quarter of the people are the provider's technicians.
            external = msp and index % 4 == 1
            email_domain = "msp-partner.example.net" if external else domain
            uuid = uuid26(rng.getrandbits(64), rng.getrandbits(64))
            home = provider_uuid if external else account_uuid
            user = {
                "uuid": uuid,
                "name": f"{first} {last}",
                "email": f"{first}.{last}{index}@{email_domain}".lower(),
            }
            user_v2 = dict(user)
            if msp:
                user_v2["user_type"] = "external_user" if external else "user"
                user_v2["user_account_uuid"] = home
            people.append(
                Person(
                    uuid, user["name"], user["email"], external, home, _dumps(user), _dumps(user_v2)
                )
            )
        self.people: tuple[Person, ...] = tuple(people)
        self.admins: tuple[Person, ...] = self.people[:6]
        clients = []
        for app, version, platform, platform_version, os_name, os_version in _CLIENTS:
            for _ in range(4):
                ip = rng.choice(_IP_PREFIXES) + str(rng.randrange(1, 255))
                clients.append(
                    (
                        ip,
                        _dumps(
                            {
                                "app_name": app,
                                "app_version": version,
                                "platform_name": platform,
                                "platform_version": platform_version,
                                "os_name": os_name,
                                "os_version": os_version,
                                "ip_address": ip,
                            }
                        ),
                    )
                )
        self.clients: tuple[tuple[str, str], ...] = tuple(clients)
        self.places: tuple[tuple[str, str, str, str], ...] = tuple(
            (
                code,
                country,
                continent,
                _dumps(
                    {
                        "country": country,
                        "region": region,
                        "city": city,
                        "latitude": latitude,
                        "longitude": longitude,
                    }
                ),
            )
            for code, country, region, city, latitude, longitude, continent in _PLACES
        )
        vaults = [uuid26(rng.getrandbits(64), rng.getrandbits(64), lower=True) for _ in range(8)]
        self.vaults: tuple[str, ...] = tuple(vaults)
        self.items: tuple[tuple[str, str], ...] = tuple(
            (uuid26(rng.getrandbits(64), rng.getrandbits(64), lower=True), rng.choice(vaults))
            for _ in range(300)
        )
        # Sessions and devices recur across events, as a person's sessions do.
        self.sessions: tuple[str, ...] = tuple(
            uuid26(rng.getrandbits(64), rng.getrandbits(64)) for _ in range(500)
        )
        self.devices: tuple[str, ...] = tuple(
            uuid26(rng.getrandbits(64), rng.getrandbits(64), lower=True) for _ in range(120)
        )
        self.objects: tuple[str, ...] = tuple(
            uuid26(rng.getrandbits(64), rng.getrandbits(64)) for _ in range(400)
        )


def _weighted_table(weights: tuple[int, ...]) -> tuple[int, ...]:
    table: list[int] = []
    for index, weight in enumerate(weights):
        table.extend([index] * weight)
    return tuple(table)


_SIGN_IN_TABLE = _weighted_table(tuple(weight for _, weight, _ in SIGN_IN_OUTCOMES))
_ITEM_ACTION_TABLE = _weighted_table(tuple(weight for _, weight in ITEM_USAGE_ACTIONS))
FEATURES = ("signinattempts", "itemusages", "auditevents")
"""Every feature (event stream) the emulator serves, in the order the service lists them."""


class StreamRenderer:
    """Renders the events of one account's feature from their position and timestamp."""

    def __init__(self, profile: AccountProfile, feature: str, key: int) -> None:
        """Bind the renderer to an account's pools and the stream's 64-bit key."""
        if feature not in FEATURES:
            msg = f"unknown feature {feature!r}"
            raise ValueError(msg)
        self.profile = profile
        self.feature = feature
        self.key = key
        self._render = {
            "signinattempts": self._sign_in_attempt,
            "itemusages": self._item_usage,
            "auditevents": self._audit_event,
        }[feature]

    def render(self, position: int, timestamp_ns: int, *, v2: bool) -> str:
        """Return the event's JSON exactly as the v1 or v2 endpoint serves it."""
        first = mix64(self.key + position)
        second = mix64(first ^ 0x6A09E667F3BCC908)
        third = mix64(second ^ 0xBB67AE8584CAA73B)
        return self._render(first, second, third, format_ns(timestamp_ns), timestamp_ns, v2=v2)

    def _user(self, person: Person, *, v2: bool) -> str:
        return person.v2_json if v2 else person.v1_json

    def _sign_in_attempt(
        self, first: int, second: int, third: int, timestamp: str, _ns: int, *, v2: bool
    ) -> str:
        profile = self.profile
        category, _, types = SIGN_IN_OUTCOMES[_SIGN_IN_TABLE[third % 1000]]
        kind = types[(third >> 10) % len(types)]
        person_index = (third >> 16) % len(profile.people)
        person = profile.people[person_index]
        ip, client = profile.clients[(third >> 24) % len(profile.clients)]
        code, country, continent, place = profile.places[
            (person_index + ((third >> 32) & 1) * 7) % len(profile.places)
        ]
        details = "null"
        if category.startswith("firewall"):
            value = {
                "continent_blocked": continent,
                "country_blocked": country,
                "ip_blocked": ip,
                "anonymous_blocked": ip,
            }.get(kind, "All")
            details = _dumps({"value": value})
        session = profile.sessions[(second >> 8) % len(profile.sessions)]
        body = (
            f'{{"uuid":"{uuid26(first, second)}","session_uuid":"{session}",'
            f'"timestamp":"{timestamp}","category":"{category}","type":"{kind}",'
            f'"country":"{code}","details":{details},'
            f'"target_user":{self._user(person, v2=v2)},"client":{client}'
        )
        if (third >> 40) % 100 >= 15:  # noqa: PLR2004 - location unknown for 15 %
            body += f',"location":{place}'
        if v2 and profile.msp:
            body += f',"account_uuid":"{profile.account_uuid}"'
        return body + "}"

    def _item_usage(
        self, first: int, second: int, third: int, timestamp: str, _ns: int, *, v2: bool
    ) -> str:
        profile = self.profile
        action = ITEM_USAGE_ACTIONS[_ITEM_ACTION_TABLE[third % 1000]][0]
        item_uuid, vault_uuid = profile.items[(third >> 10) % len(profile.items)]
        person_index = (third >> 20) % len(profile.people)
        person = profile.people[person_index]
        _, client = profile.clients[(third >> 28) % len(profile.clients)]
        place = profile.places[(person_index + ((third >> 36) & 1) * 7) % len(profile.places)][3]
        used_version = 1 if action == "server-create" else 1 + (third >> 40) % 24
        body = (
            f'{{"uuid":"{uuid26(first, second)}","timestamp":"{timestamp}",'
            f'"used_version":{used_version},"vault_uuid":"{vault_uuid}",'
            f'"item_uuid":"{item_uuid}","action":"{action}",'
            f'"user":{self._user(person, v2=v2)},"client":{client}'
        )
        if (third >> 48) % 100 >= 20:  # noqa: PLR2004 - location unknown for 20 %
            body += f',"location":{place}'
        if v2 and profile.msp:
            body += f',"account_uuid":"{profile.account_uuid}"'
        return body + "}"

    def _object_uuid(
        self, object_type: str, subject: Person | None, second: int, third: int
    ) -> str:
        """Pick the object's UUID: the user itself, the account, a vault, an item, or another."""
        profile = self.profile
        if subject is not None:
            return subject.uuid
        if object_type == "account":
            return profile.account_uuid
        if object_type == "vault":
            return profile.vaults[(third >> 20) % len(profile.vaults)]
        if object_type == "item":
            return profile.items[(third >> 20) % len(profile.items)][0]
        return profile.objects[(second >> 16) % len(profile.objects)]

    def _audit_event(  # noqa: PLR0913 - the three hash words plus the event time
        self, first: int, second: int, third: int, timestamp: str, ns: int, *, v2: bool
    ) -> str:
        profile = self.profile
        action, object_type, extra = AUDIT_ACTIONS[third % len(AUDIT_ACTIONS)]
        people = profile.people
        actor = (
            profile.admins[(third >> 8) % len(profile.admins)]
            if (third >> 12) % 100 < 85  # noqa: PLR2004 - most audit events are admin work
            else people[(third >> 8) % len(people)]
        )
        subject = people[(third >> 20) % len(people)]
        body = (
            f'{{"uuid":"{uuid26(first, second)}","timestamp":"{timestamp}",'
            f'"actor_uuid":"{actor.uuid}","actor_details":{self._user(actor, v2=v2)}'
        )
        if v2:
            body += f',"actor_type":"{"external_user" if actor.external else "user"}"'
            if profile.msp:
                body += (
                    f',"actor_account_uuid":"{actor.home_account_uuid}"'
                    f',"account_uuid":"{profile.account_uuid}"'
                )
        object_uuid = self._object_uuid(
            object_type, subject if extra == "user" else None, second, third
        )
        body += f',"action":"{action}","object_type":"{object_type}","object_uuid":"{object_uuid}"'
        if extra == "user":
            body += f',"object_details":{subject.v1_json}'
        elif extra == "device":
            body += f',"aux_id":{1000 + (second >> 40) % 9_000_000},"aux_details":{actor.v1_json}'
        elif extra == "member":
            role = "A" if (second >> 8) & 1 else "R"
            body += (
                f',"aux_uuid":"{subject.uuid}","aux_details":{subject.v1_json},"aux_info":"{role}"'
            )
        ip, _ = profile.clients[(third >> 28) % len(profile.clients)]
        login_ns = ns - (second % (8 * 3600 * NANOS_PER_SECOND))
        body += (
            f',"session":{{"uuid":"{profile.sessions[(second >> 24) % len(profile.sessions)]}",'
            f'"login_time":"{format_ns(login_ns)}",'
            f'"device_uuid":"{profile.devices[(second >> 32) % len(profile.devices)]}",'
            f'"ip":"{ip}"}}'
        )
        if (third >> 44) % 100 >= 10:  # noqa: PLR2004 - location unknown for 10 %
            place = profile.places[((third >> 48) & 0xFF) % len(profile.places)][3]
            body += f',"location":{place}'
        return body + "}"


_CHUNK = 65_536
_PRECISION_WEIGHTS = (10, 2, 3, 20, 4, 4, 10, 4, 8, 35)
"""How often a timestamp is written with 0..9 fractional digits (before trimming zeros)."""


def truncate_precision(nanos: int, digits: int) -> int:
    """Drop the fractional digits beyond ``digits`` so the rendered text has at most that many."""
    unit: int = 10 ** (9 - digits)
    return nanos - nanos % unit


def initial_timestamps(key: int, count: int, end_ns: int) -> array[int]:
    """Return ``count`` ingestion-ordered timestamps spread over ``HISTORY_DAYS`` before ``end_ns``.

    Timestamps rise with ingestion order, except that about one event in 400 arrived late:
    its timestamp is up to six hours older than events ingested before it.
    """
    rng = random.Random(key)  # noqa: S311 - synthetic data, not secrets
    start_ns = end_ns - HISTORY_DAYS * DAY_NS
    step = (end_ns - start_ns) // max(count, 1)
    units = [10 ** (9 - digits) for digits in range(10)]
    fraction = rng.random
    stamps: array[int] = array("q")
    # Built in chunks so that a million stamps never exist as a million Python ints at once.
    for chunk_start in range(0, count, _CHUNK):
        chunk_units = rng.choices(
            units, weights=_PRECISION_WEIGHTS, k=min(_CHUNK, count - chunk_start)
        )
        stamps.extend(
            [
                (nanos := start_ns + position * step + int(fraction() * step)) - nanos % unit
                for position, unit in enumerate(chunk_units, chunk_start)
            ]
        )
    late_window = 6 * 3600 * NANOS_PER_SECOND
    for position in rng.sample(range(count), count // 400):
        nanos = stamps[position] - int(fraction() * late_window)
        stamps[position] = nanos - nanos % units[rng.choices(range(10), _PRECISION_WEIGHTS)[0]]
    return stamps
