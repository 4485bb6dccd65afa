"""Every record the tap emits conforms to the schema it sends for its stream.

This is why `meltano.yml` lets target-postgres skip its own JSON Schema validation
(`validate_records: false`): the check would only repeat what these tests prove, for every
payload fixture (v1 and v2 quirks) and every stream and account the emulator serves (v1 and
v2). The validator is the SDK's own `JSONSchemaValidator`, the one a target's sink uses, with
format checks on; top-level date-times, which the loader parses into columns, must also be the
tap's normalised RFC 3339 form.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

import pytest
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks.core import JSONSchemaValidator

from tests.support.runs import SyncResult, run_tap, tap_config
from tests.support.tokens import make_token
from tests.tap.test_tap_payloads import STREAM_OF, PayloadServer, load

if TYPE_CHECKING:
    from onepassword_emulator import Emulator

NORMALISED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def schema_problems(result: SyncResult) -> list[str]:
    """Return every way a RECORD of `result` breaks its stream's SCHEMA (empty: none)."""
    schemas = {m["stream"]: m["schema"] for m in result.messages if m["type"] == "SCHEMA"}
    validators = {
        stream: JSONSchemaValidator(schema, validate_formats=True)
        for stream, schema in schemas.items()
    }
    problems = []
    for stream, records in result.records.items():
        properties = schemas[stream]["properties"]
        times = [name for name, spec in properties.items() if spec.get("format") == "date-time"]
        for record in records:
            try:
                validators[stream].validate(record)
            except InvalidRecord as invalid:
                problems.append(f"{stream} {record.get('uuid')}: {invalid}")
            problems.extend(
                f"{stream} {record.get('uuid')}: {name} {record[name]!r} is not normalised"
                for name in times
                if stream != "introspection"
                and record.get(name) is not None
                and not NORMALISED_TIME.fullmatch(record[name])
            )
    return problems


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_fixture_record_conforms_to_its_schema(version: str) -> None:
    payloads = load(f"payloads-{version}.json")
    with PayloadServer(copy.deepcopy(payloads), version) as server:
        result = run_tap(
            {"token": make_token(), "base_url": server.base_url, "api_version": version}
        )
    expected = sum(len(page["items"]) for feature in STREAM_OF for page in payloads[feature])
    assert sum(len(result.records.get(stream, [])) for stream in STREAM_OF.values()) == expected
    assert result.records["introspection"]
    assert schema_problems(result) == []


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_emulator_record_conforms_to_its_schema(emulator: Emulator, version: str) -> None:
    result = run_tap(tap_config(emulator, api_version=version))
    # Three accounts; one (initech) has no item usages: 8 stream-account pairs of 250 events.
    assert sum(len(result.records.get(s, [])) for s in STREAM_OF.values()) == 8 * 250
    assert schema_problems(result) == []


def test_the_check_finds_a_record_that_breaks_its_schema(emulator: Emulator) -> None:
    result = run_tap(tap_config(emulator, ["acme"]))
    broken: dict[str, Any] = result.records["audit_events"][0]
    broken["actor_uuid"] = 42
    result.records["sign_in_attempts"][0]["timestamp"] = "2025-01-01 00:00:00"
    problems = sorted(schema_problems(result))
    assert len(problems) == 2
    assert problems[0].startswith("audit_events ")
    assert "42 is not of type" in problems[0]
    assert problems[1].endswith("timestamp '2025-01-01 00:00:00' is not normalised")
