"""The Singer SDK's standard tap tests, against the emulator.

The SDK fixes the tap's config when the test class is built, so the emulator starts when this
module is imported and stops when the module's tests are done (or the interpreter exits).
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

import pytest
from singer_sdk.testing import get_tap_test_class

from onepassword_emulator import Emulator
from tap_onepassword.tap import TapOnePassword

if TYPE_CHECKING:
    from collections.abc import Iterator

_EMULATOR = Emulator(seed=3, events=200).start()
atexit.register(_EMULATOR.stop)


@pytest.fixture(scope="module", autouse=True)
def _stop_emulator() -> Iterator[None]:
    yield
    _EMULATOR.stop()


# The suite reads the first 150 records of each stream, that is of the first account: the MSP
# account comes first so that those records carry every field the schema lists (the SDK warns
# about schema fields no record has, and warnings fail this project's tests).
_ACCOUNTS = sorted(_EMULATOR.accounts, key=lambda account: not account.msp)

# `unreadable_timestamp` is set only on an event whose timestamp the API garbled; the
# emulator's data has none (tests/tap/test_tap_edges.py checks the field).
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Fields in transformed catalog but not in records. \(\{'unreadable_timestamp'\}\)"
    ":UserWarning"
)

_CONFIG = {
    "accounts": [{"name": a.name, "token": a.token} for a in _ACCOUNTS],
    "base_url": _EMULATOR.base_url,
}

# Every stream selected, the opt-in audit_events_v3 too: the suite's dry run selects them all
# anyway, but after the stream maps were built from the catalog.
_CATALOG = TapOnePassword(config=_CONFIG).catalog_dict
for _entry in _CATALOG["streams"]:
    for _metadata in _entry["metadata"]:
        if _metadata["breadcrumb"] == []:
            _metadata["metadata"]["selected"] = True

TestTapOnePasswordStandard = get_tap_test_class(TapOnePassword, config=_CONFIG, catalog=_CATALOG)
