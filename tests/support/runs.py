"""Running the tap in the tests, and what it must produce.

Most tests run the tap in this process (fast, and retry waits can be shortened); tests about
what a user sees on the console (one-line errors, secrecy at DEBUG, a kill mid-run) run the
real `tap-onepassword` command.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tap_onepassword.streams import EVENT_FEATURES
from tap_onepassword.tap import TapOnePassword
from tap_onepassword.timestamps import normalise_timestamp

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

TAP = Path(sys.executable).with_name("tap-onepassword")
FEATURE_OF = EVENT_FEATURES
"""Each event stream's token feature (and endpoint), as the tap declares them."""
EVENT_STREAMS = tuple(FEATURE_OF)


@dataclass
class SyncResult:
    """What one run of the tap wrote to stdout."""

    messages: list[dict[str, Any]]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])

    @property
    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict[str, Any]:
        """The last STATE value."""
        return self.states[-1]

    def of(self, stream: str, account: str) -> list[dict[str, Any]]:
        """Records of one stream and account, in emitted order."""
        return [r for r in self.records.get(stream, []) if r["account_name"] == account]


def partition(state: dict[str, Any], stream: str, account: str) -> dict[str, Any]:
    """The state of one stream and account."""
    for entry in state["bookmarks"][stream]["partitions"]:
        if entry["context"] == {"account_name": account}:
            return entry
    msg = f"no partition for {stream}/{account}"
    raise KeyError(msg)


def expected_records(emu: Emulator, account: str, stream: str, version: str = "v2") -> list:
    """What the tap must emit for one stream and account: the emulator's events, each with
    its timestamp normalised and the account name added."""
    out = []
    for event in emu.events(account, FEATURE_OF[stream], version=version):
        record = dict(event)
        record["timestamp"] = normalise_timestamp(record["timestamp"])
        record["account_name"] = account
        out.append(record)
    return out


def tap_config(emu: Emulator, names: list[str] | None = None, **settings: Any) -> dict:
    """A config reading the emulator's accounts (all, or those named) over loopback HTTP."""
    chosen = [a for a in emu.accounts if names is None or a.name in names]
    return {
        "accounts": [{"name": a.name, "token": a.token} for a in chosen],
        "base_url": emu.base_url,
        **settings,
    }


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
) -> SyncResult:
    """Run a full sync in this process and parse what it wrote."""
    tap = TapOnePassword(config=config, state=state, catalog=catalog)
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(stdout):
        tap.sync_all()
    stdout.seek(0)
    return SyncResult([json.loads(line) for line in stdout.read().splitlines()])


def run_cli(
    *args: str, config: dict[str, Any] | None = None, tmp_path: Path, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `tap-onepassword` command with a config file."""
    command = [str(TAP), *args]
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        command += ["--config", str(path)]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_ONEPASSWORD_")}
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean_env, **(env or {})},
        check=False,
    )


def duplicates(records: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Primary keys seen more than once (the SDK's own uniqueness test cannot fail in 0.54)."""
    counts = Counter((r["account_name"], r["uuid"]) for r in records)
    return {key: n for key, n in counts.items() if n > 1}


def make_token(claims: dict[str, Any] | None = None, *, aud: Any = "events.1password.eu") -> str:
    """A JWT-shaped Events token with the given claims (unsigned: the tap never verifies)."""

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    body: dict[str, Any] = {"1password.com/fts": ["signinattempts"], "iat": 1_700_000_000}
    if aud is not None:
        body["aud"] = aud if isinstance(aud, list) else [aud]
    body.update(claims or {})
    return f"{part({'alg': 'ES256', 'typ': 'JWT'})}.{part(body)}.c2lnbmF0dXJl"


def selecting(config: dict[str, Any], *streams: str) -> dict[str, Any]:
    """The tap's discovered catalog with exactly `streams` selected (as Meltano's select does)."""
    catalog = TapOnePassword(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog
