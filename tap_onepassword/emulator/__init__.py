"""A local 1Password Events API (v1 and v2) for tests, demos and benchmarks.

The emulator serves the eight documented routes with deterministic, realistic data for several
accounts, and lets a test inject faults, move time and watch requests. It uses only the
standard library and never imports the tap.

Python API::

    from tap_onepassword.emulator import Emulator, AccountSpec

    with Emulator(seed=1, events=1000) as emu:        # starts on a free 127.0.0.1 port
        emu.base_url                                   # "http://127.0.0.1:PORT"
        emu.accounts                                   # [Account(name, account_uuid, features, msp, token)]
        emu.account("acme").token                      # JWT-shaped bearer token
        emu.mint_token("acme", features=["itemusages"], exp=None, aud=None)
        emu.events("acme", "signinattempts", version="v2")   # list[dict], as served
        emu.add_events("acme", "auditevents", 5, late=False) # ingest now (late=True: older stamps)
        emu.fail_next("/api/v2/itemusages", "503", count=2)  # or "*" for every API path
        emu.requests                                   # [RequestRecord(method, path, body, status, account, time, ...)]
        emu.rotate_secret()                            # every cursor issued so far -> 400
        emu.advance_time(61)                           # the emulator clock: emu.now, emu.set_time(dt)

Constructor: ``Emulator(seed=1, events=1000, accounts=None, latency_ms=0, retry_after=None,
error_style="legacy", rate_limit_per_minute=600, rate_limit_per_hour=30_000)``; ``start(host,
port)`` returns the emulator; ``stop()`` ends it. Default accounts: ``acme`` (all features),
``globex`` (all features, MSP), ``initech`` (sign-in attempts and audit events only).

HTTP controls (JSON in, JSON out) under ``/_emulator/``::

    GET    /_emulator/accounts          base_url and accounts (name, token, account_uuid, features, msp)
    POST   /_emulator/tokens            {"account", "features"?, "exp"?, "aud"?} -> {"token"}
    GET    /_emulator/events?account=A&feature=F[&version=v1]   -> {"items": [...]}
    POST   /_emulator/events            {"account", "feature", "count"?, "late"?, "version"?} -> {"items"}
    POST   /_emulator/faults            {"path", "fault", "count"?, "retry_after"?, "seconds"?, "incomplete"?}
    GET    /_emulator/faults            pending faults;  DELETE clears them
    GET    /_emulator/requests          the request log; DELETE clears it
    POST   /_emulator/rotate-secret     new cursor secret
    POST   /_emulator/rate-limits/reset forget counted requests
    GET    /_emulator/time              {"now"};  POST {"advance": seconds} or {"set": "RFC 3339"}
"""

from __future__ import annotations

from tap_onepassword.emulator.accounts import DEFAULT_ACCOUNTS, Account, AccountSpec
from tap_onepassword.emulator.emulator import Emulator
from tap_onepassword.emulator.server import RequestRecord

__all__ = ["DEFAULT_ACCOUNTS", "Account", "AccountSpec", "Emulator", "RequestRecord"]
