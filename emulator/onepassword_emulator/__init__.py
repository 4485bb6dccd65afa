"""A local 1Password Events API (v1, v2 and the v3 audit events beta) for tests and demos.

The emulator serves the two introspection GETs, the six data POSTs and the v3 beta's
``GET /api/v3/auditevents`` (see ``v3.py``: the v3 event shape beyond ``insert_time`` and
``action`` is the emulator's own) with deterministic, realistic events for several accounts,
and lets a caller inject faults, move time and read the requests it saw. It runs on the
standard library's threaded HTTP server and never imports the tap. Anything else answers 404
with the plain text ``404 page not found``.

Python API::

    from onepassword_emulator import AccountSpec, Emulator

    with Emulator(seed=1, events=1000) as emu:         # serves on a free port of 127.0.0.1
        emu.base_url                                    # "http://127.0.0.1:PORT"
        emu.accounts                                    # [Account]: .name .token .account_uuid
                                                        #   .features (list[str]) .msp (bool)
        emu.account("acme").token                       # JWT-shaped bearer token
        emu.mint_token("acme", features=["itemusages"], exp=None, aud=None)
        emu.events("acme", "signinattempts", version="v2")    # list[dict] exactly as served
        emu.events("acme", "auditevents", version="v3")       # v3: in insertion order
        emu.add_events("acme", "auditevents", 5, late=False)  # ingest now; late=True: stamps
                                                              #   older than events served
        emu.fail_next("/api/v2/itemusages", "503", count=2)   # or path "*"; see below
        emu.clear_faults()
        emu.requests                                    # [RequestRecord]: .method .path .body
                                                        #   .status .account .time .fault
                                                        #   .cpu_seconds .user_agent
        emu.clear_requests()
        emu.rotate_secret()                             # every cursor issued so far -> 400
        emu.reset_rate_limits()
        emu.revoke_token(token); emu.restore_token(token)   # 401 for that token meanwhile
        emu.re_serve_final_page = True                  # a final page's cursor points at its
                                                        #   first event: re-posted, it serves
                                                        #   the page again plus anything new
        emu.now; emu.advance_time(61); emu.set_time(datetime(2030, 1, 1, tzinfo=timezone.utc))

``Emulator(seed=1, events=1000, accounts=None, latency_ms=0, retry_after=None,
error_style="legacy", rate_limit_per_minute=600, rate_limit_per_hour=30_000,
re_serve_final_page=False, v3_legacy_names=False)``;
``start(host="127.0.0.1", port=0)`` returns the emulator, ``stop()`` ends it.
``events`` is per stream (account and feature), spread over the last 90 days with about one
event in 400 arriving late. Default accounts (``DEFAULT_ACCOUNTS``): ``acme`` (all three
features), ``globex`` (all three, MSP: v2 adds ``account_uuid``, ``user_type``,
``user_account_uuid``, ``actor_account_uuid``; some people are ``external_user``) and
``initech`` (sign-in attempts and audit events only). ``AccountSpec(name, features, msp,
account_uuid)`` describes others.

Faults (``fail_next(path, fault, count=1, **params)``): ``"429"`` (``retry_after=seconds`` sends
``Retry-After``), ``"500"``, ``"502"``, ``"503"``, ``"reset"`` (connection reset),
``"hang"`` (``seconds=S``, then a normal answer), ``"truncate"`` (half the body;
``incomplete=True`` announces the full length and drops the connection), ``"empty_page"``
(200, ``has_more: true``, the request's cursor, no items), ``"reject_cursor"`` (400),
``"drip"`` (``seconds=S``, default 10: the whole answer, status line to last byte, sent a few
bytes at a time over S seconds, every piece within 0.1 s of the last).
Any fault takes ``after=N``: N matching requests pass first; ``"reject_cursor"`` on v3 is a
rejected page token.

The clock (``emu.now``) drives rate-limit windows (600 a minute and 30,000 an hour per token),
the 120-day retention, the default ``start_time`` (one hour back), token expiry and the
timestamps of added events. It is the real time plus an offset, so it keeps running.

HTTP controls under ``/_emulator/`` (JSON in, JSON out; not rate-limited, not logged)::

    GET    /_emulator/accounts           {"base_url", "accounts": [{name, token, account_uuid,
                                          features, msp}]}
    POST   /_emulator/tokens             {"account", "features"?, "exp"?, "aud"?} -> {"token"}
    POST   /_emulator/tokens/revoke      {"token"} -> {"revoked": true} (401 until restored)
    POST   /_emulator/tokens/restore     {"token"} -> {"revoked": false}
    GET    /_emulator/switches           {"re_serve_final_page": bool}; POST sets it
    GET    /_emulator/events?account=A&feature=F&version=v2      -> {"items": [...]}
    POST   /_emulator/events             {"account", "feature", "count"?, "late"?, "version"?}
                                          -> {"items": [...]}
    POST   /_emulator/faults             {"path", "fault", "count"?, "retry_after"?,
                                          "seconds"?, "incomplete"?} -> {"scheduled": {...}}
    GET    /_emulator/faults             {"faults": [...]} (pending); DELETE clears them
    GET    /_emulator/requests           {"requests": [...]} (the log); DELETE clears it
    POST   /_emulator/rotate-secret      {"rotated": true}
    POST   /_emulator/rate-limits/reset  {"reset": true}
    GET    /_emulator/time               {"now": "RFC 3339"}
    POST   /_emulator/time               {"advance": seconds} or {"set": "RFC 3339"} -> {"now"}

Bad control requests answer 400 (404 for an unknown route) with ``{"error": "..."}``. The
request log keeps the last ``REQUEST_LOG_SIZE`` (100,000) API requests.

Command line: ``tap-onepassword-emulator --port 0 --seed 1 --events 1000 [--latency-ms L]
[--retry-after S] [--error-style legacy|status] [--rate-limit-per-minute N]
[--rate-limit-per-hour N] [--re-serve-final-page] [--v3-legacy-names] [--host H]`` prints one
JSON line
``{"base_url", "accounts": [{name, token, account_uuid, features}]}`` and serves until
Ctrl-C or SIGTERM. Tokens are signed with a key derived from the seed, so they stay valid
across restarts with the same seed;
cursors are signed with a per-process secret, so they do not.
"""

from __future__ import annotations

from onepassword_emulator.accounts import DEFAULT_ACCOUNTS, Account, AccountSpec
from onepassword_emulator.emulator import Emulator
from onepassword_emulator.server import RequestRecord

__all__ = ["DEFAULT_ACCOUNTS", "Account", "AccountSpec", "Emulator", "RequestRecord"]
