"""Batch mode is refused: a `batch_config` key ends the run before any request, in one line.

The SDK would honour `batch_config` even though the tap does not advertise the `batch`
capability, writing records to files and STATE messages that could get ahead of the BATCH
messages holding their records. It did not make `meltano run` into target-postgres measurably
faster either (`make bench --only pipeline --pipeline-batch`), so the tap refuses it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tap_onepassword.errors import ConfigError
from tap_onepassword.tap import TapOnePassword
from tests.support.runs import run_cli, tap_config

if TYPE_CHECKING:
    from pathlib import Path

    from onepassword_emulator import Emulator

REFUSAL = "batch mode is not supported"


def batch_config(root: Path) -> dict[str, Any]:
    """A batch_config the SDK would accept and act on."""
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": root.as_uri(), "prefix": "refused-"},
    }


def test_a_batch_config_ends_the_run_before_any_request(emulator: Emulator, tmp_path: Path) -> None:
    batches = tmp_path / "batches"
    batches.mkdir()
    config = {**tap_config(emulator), "batch_config": batch_config(batches)}
    result = run_cli(config=config, tmp_path=tmp_path)
    assert result.returncode == 1
    # Besides the SDK's version banner (INFO), one line: the refusal.
    lines = [line for line in result.stderr.splitlines() if "| INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tap-onepassword: error: batch_config: ")
    assert REFUSAL in lines[0]
    assert result.stdout == ""
    assert emulator.requests == []
    assert list(batches.iterdir()) == []
    for account in emulator.accounts:
        assert account.token not in result.stderr


@pytest.mark.parametrize("value", [{}, None, "jsonl"], ids=["empty", "null", "text"])
def test_any_batch_config_key_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match=REFUSAL):
        TapOnePassword(config={"token": "x.y.z", "batch_config": value})


def test_a_tap_made_without_config_checks_still_refuses_to_sync(
    emulator: Emulator, tmp_path: Path
) -> None:
    """Embedding code can skip the check at construction; the sync itself still refuses."""
    config = {**tap_config(emulator), "batch_config": batch_config(tmp_path)}
    tap = TapOnePassword(config=config, validate_config=False)
    with pytest.raises(ConfigError, match=REFUSAL):
        tap.sync_all()
    assert emulator.requests == []
    assert list(tmp_path.iterdir()) == []


def test_the_batch_capability_is_not_advertised(tmp_path: Path) -> None:
    result = run_cli("--about", "--format=json", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    assert "batch" not in about["capabilities"]
    assert "batch_config" not in about["settings"]["properties"]
