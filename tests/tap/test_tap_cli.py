"""The real command: secrecy, a refused token, `--test`, and a kill mid-run followed by a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from onepassword_emulator import Emulator
from tests.support.runs import (
    EVENT_STREAMS,
    FEATURE_OF,
    TAP,
    duplicates,
    expected_records,
    run_cli,
    selecting,
    tap_config,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_tokens_never_appear_in_output_even_at_debug(emulator: Emulator, tmp_path: Path) -> None:
    emulator.fail_next("/api/v2/itemusages", "500")  # a retry is logged too
    config = tap_config(emulator, page_size=100, request_timeout=5)
    result = run_cli(config=config, tmp_path=tmp_path, env={"LOGLEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DEBUG" in result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(m["type"] == "RECORD" for m in messages)
    for account in emulator.accounts:
        assert account.token not in result.stdout
        assert account.token not in result.stderr
        # Not even a recognisable piece of it (the signature part is the secret one).
        assert account.token.split(".")[2][:20] not in result.stderr
    about = run_cli("--about", "--format=json", tmp_path=tmp_path)
    settings = json.loads(about.stdout)["settings"]["properties"]
    assert settings["token"]["secret"] is True
    assert settings["accounts"]["secret"] is True
    assert settings["accounts"]["items"]["properties"]["token"]["secret"] is True


def test_a_refused_single_token_is_one_line_naming_the_account_and_causes(
    emulator: Emulator, tmp_path: Path
) -> None:
    # With one `token` a refused token stops the run before any event is read (with
    # `accounts`, the others go on: tests/tap/test_tap_edges.py).
    with Emulator(seed=99, events=1) as stranger:
        foreign = stranger.account("acme").token  # signed by another key: 401 here
    config = {"token": foreign, "base_url": emulator.base_url}
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("tap-onepassword: error:")]
    assert "account 'default'" in line
    assert "region" in line
    assert "revoked" in line
    assert "expired" in line
    assert foreign not in result.stderr
    # Every account is introspected before any events are read.
    assert not [r for r in emulator.requests if "introspect" not in r.path]
    assert not [m for m in result.stdout.splitlines() if '"RECORD"' in m]


def test_test_mode_says_what_works_for_each_account(emulator: Emulator, tmp_path: Path) -> None:
    result = run_cli("--test", config=tap_config(emulator), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "account 'acme'" in out
    assert "token accepted" in out
    assert "item_usages: skipped, the token lacks the 'itemusages' feature" in out
    assert out.count(": OK, reading works") == 8  # 3 + 3 + 2 permitted streams
    assert "all accounts work" in out
    data = [r for r in emulator.requests if "introspect" not in r.path]
    assert len(data) == 8
    assert all(r.body["limit"] == 1 for r in data)


def test_test_mode_tries_one_v3_request_per_account_when_the_v3_stream_is_selected(
    emulator: Emulator, tmp_path: Path
) -> None:
    config = tap_config(emulator, ["acme", "initech"])
    lacking = emulator.mint_token("globex", features=["signinattempts", "itemusages"])
    config["accounts"].append({"name": "no-audit", "token": lacking})
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(selecting(config, "audit_events_v3")))
    # --test before --catalog: the catalog is read first all the same.
    result = run_cli("--test", "--catalog", str(catalog), config=config, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("audit_events_v3: OK, reading works (events found)") == 2
    assert "audit_events_v3: skipped, the token lacks the 'auditevents' feature" in out
    v3 = [r for r in emulator.requests if r.path == "/api/v3/auditevents"]
    assert len(v3) == 2
    assert {r.account for r in v3} == {"acme", "initech"}
    assert all(set(r.params) == {"max_page_size", "start_time"} for r in v3)
    assert all(r.params["max_page_size"] == "1" for r in v3)
    assert out.count(": OK, reading works") == 2 + 3 + 2 + 2  # v3, acme, initech, no-audit
    assert "all accounts work" in out


def test_test_mode_reports_a_refused_token(emulator: Emulator, tmp_path: Path) -> None:
    config = tap_config(emulator, ["acme"])
    with Emulator(seed=98, events=1) as stranger:
        config["accounts"].append({"name": "other", "token": stranger.account("acme").token})
    result = run_cli("--test", config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "account 'other': FAILED" in result.stdout
    assert "some checks FAILED" in result.stdout


def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tap_onepassword", "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert json.loads(result.stdout)["name"] == "tap-onepassword"


def read_until_killed(process: subprocess.Popen[str], records_wanted: int) -> list[str]:
    """Read the tap's stdout until enough records went by, then SIGKILL it."""
    lines: list[str] = []
    seen = 0
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if '"type":"RECORD"' in line and '"introspection"' not in line:
            seen += 1
            if seen >= records_wanted:
                break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    return lines


def test_a_kill_mid_run_then_resume_from_the_last_state_loses_nothing(tmp_path: Path) -> None:
    with Emulator(seed=11, events=400, latency_ms=15) as emu:
        config = tap_config(emu, page_size=50)
        (tmp_path / "config.json").write_text(json.dumps(config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_ONEPASSWORD_")}
        committed: list[dict] = []  # records followed by a STATE the target received
        received: list[dict] = []  # every record the target received
        after_state: list[dict] = []  # records of killed runs after their last STATE
        state: dict | None = None
        for kill_after in (700, 1500, None):
            command = [str(TAP), "--config", str(tmp_path / "config.json")]
            if state is not None:
                (tmp_path / "state.json").write_text(json.dumps(state))
                command += ["--state", str(tmp_path / "state.json")]
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
            )
            if kill_after is None:
                out, _ = process.communicate(timeout=120)
                lines = out.splitlines()
                assert process.returncode == 0
            else:
                lines = read_until_killed(process, kill_after)
                assert process.returncode == -signal.SIGKILL
            messages = [json.loads(line) for line in lines if line.endswith(("}", "}\n"))]
            # What a target would have kept: records up to the last STATE it received.
            last_state = max(
                (i for i, m in enumerate(messages) if m["type"] == "STATE"), default=-1
            )
            kept = messages[: last_state + 1] if kill_after is not None else messages
            committed += [
                m["record"] | {"_stream": m["stream"]}
                for m in kept
                if m["type"] == "RECORD" and m["stream"] != "introspection"
            ]
            received += [
                m["record"] | {"_stream": m["stream"]}
                for m in messages
                if m["type"] == "RECORD" and m["stream"] != "introspection"
            ]
            if kill_after is not None:
                after_state += [
                    m["record"] | {"_stream": m["stream"]}
                    for m in messages[last_state + 1 :]
                    if m["type"] == "RECORD" and m["stream"] != "introspection"
                ]
            if last_state >= 0:
                state = messages[last_state]["value"]

        for account in emu.accounts:
            for stream in EVENT_STREAMS:
                if FEATURE_OF[stream] not in account.features:
                    continue
                want = {r["uuid"] for r in expected_records(emu, account.name, stream)}

                def of(records: list[dict], stream: str = stream, name: str = account.name) -> list:
                    return [
                        r for r in records if r["_stream"] == stream and r["account_name"] == name
                    ]

                # Resuming from the last STATE re-reads exactly what came after it: nothing
                # lost, nothing twice.
                assert {r["uuid"] for r in of(committed)} == want, (stream, account.name)
                assert duplicates(of(committed)) == {}
                # A target that also kept the records after that STATE sees those again, and
                # only those: what a kill costs is what was emitted since the last STATE.
                extra = sum(duplicates(of(received)).values()) - len(duplicates(of(received)))
                assert extra <= len(of(after_state))
                twice = {uuid for _, uuid in duplicates(of(received))}
                assert twice <= {r["uuid"] for r in of(after_state)}
