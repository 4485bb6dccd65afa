"""A million events in one stream: held, paged deep, and served as 1,000-item pages.

Timings are figures (see scale_figures.py), not assertions: this checks that the data is there
and is served correctly at that size.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from onepassword_emulator import AccountSpec, Emulator

if TYPE_CHECKING:
    import requests


def _when(text: str) -> datetime:
    whole, _, fraction = text.removesuffix("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00") + timedelta(
        microseconds=int((fraction + "000000")[:6])
    )


def test_a_million_events_per_stream(http: requests.Session) -> None:
    with Emulator(
        seed=4, events=1_000_000, accounts=[AccountSpec("big", features=("auditevents",))]
    ) as emu:
        headers = {"Authorization": f"Bearer {emu.account('big').token}"}
        url = f"{emu.base_url}/api/v2/auditevents"
        # Whole seconds, as the request below sends it: with the fraction, an event in the
        # second before `start` would be served (rightly) and counted as outside the window.
        start = (emu.now - timedelta(days=45)).replace(microsecond=0)
        window = {
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "limit": 1000,
        }
        page = http.post(url, json=window, headers=headers, timeout=30).json()
        # 1,000,000 events over 90 days is one every 7.8 s: about 926 in two hours.
        assert 850 < len(page["items"]) < 1000
        assert page["has_more"] is False
        assert all(
            start <= _when(item["timestamp"]) < start + timedelta(hours=2) for item in page["items"]
        )
        deep = http.post(
            url,
            json={"start_time": window["start_time"], "limit": 1000},
            headers=headers,
            timeout=30,
        ).json()
        assert len(deep["items"]) == 1000
        assert deep["has_more"] is True
        following = http.post(
            url, json={"cursor": deep["cursor"]}, headers=headers, timeout=30
        ).json()
        assert len(following["items"]) == 1000
        served = [i["uuid"] for i in deep["items"] + following["items"]]
        assert len(set(served)) == 2000
        # The bounded window is the same events in the same (ingestion) order; a late arrival
        # inside the window may come after events that lie beyond its end_time.
        assert [uuid for uuid in served if uuid in {i["uuid"] for i in page["items"]}] == [
            i["uuid"] for i in page["items"]
        ]
        tail = http.post(
            url, json={"limit": 1000}, headers=headers, timeout=30
        ).json()  # the last hour
        assert 350 < len(tail["items"]) < 600
        assert tail["has_more"] is False
        assert all(record.cpu_seconds > 0 for record in emu.requests)
