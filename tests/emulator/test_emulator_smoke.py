"""First end-to-end check: a full v2 read of one stream matches the Python view of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

    from onepassword_emulator import Emulator


def test_full_read_by_cursor_matches_events(emu: Emulator, http: requests.Session) -> None:
    headers = {"Authorization": f"Bearer {emu.account('acme').token}"}
    url = f"{emu.base_url}/api/v2/auditevents"
    page = http.post(
        url, json={"limit": 1000, "start_time": "2020-01-01T00:00:00Z"}, headers=headers, timeout=10
    ).json()
    uuids = [item["uuid"] for item in page["items"]]
    while page["has_more"]:
        page = http.post(url, json={"cursor": page["cursor"]}, headers=headers, timeout=10).json()
        uuids += [item["uuid"] for item in page["items"]]
    assert uuids == [event["uuid"] for event in emu.events("acme", "auditevents")]
    assert len(uuids) == 1000
