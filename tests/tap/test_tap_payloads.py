"""Payloads shaped like real ones (tests/tap/fixtures) come out of the tap field for field.

A tiny local server answers each route with the fixture's pages in order, so the tap's whole
path (request, parse, page handling, records, state) runs on them.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tap_onepassword.pages import Page, decode_page
from tap_onepassword.streams import SignInAttemptsStream
from tap_onepassword.tap import TapOnePassword
from tap_onepassword.timestamps import normalise_timestamp
from tests.support.runs import partition, run_tap
from tests.support.tokens import make_token

if TYPE_CHECKING:
    from collections.abc import Iterator

    from typing_extensions import Self

FIXTURES = Path(__file__).parent / "fixtures"
STREAM_OF = {
    "signinattempts": "sign_in_attempts",
    "itemusages": "item_usages",
    "auditevents": "audit_events",
}


class PayloadServer:
    """Answers `/api/...` routes with fixed bodies; data routes with their pages in order."""

    def __init__(self, payloads: dict[str, Any], version: str) -> None:
        self.routes: dict[str, Any] = {}
        introspect = "/api/auth/introspect" if version == "v1" else "/api/v2/auth/introspect"
        self.routes[introspect] = payloads["introspection"]
        for feature in STREAM_OF:
            self.routes[f"/api/{version}/{feature}"] = list(payloads[feature])
        self.bodies: list[tuple[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(None)

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                self._answer(json.loads(self.rfile.read(size)))

            def _answer(self, body: Any) -> None:
                server.bodies.append((self.path, body))
                route = server.routes.get(self.path)
                if isinstance(route, list):
                    route = route.pop(0) if route else None
                if route is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(route).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(params=["v1", "v2"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[PayloadServer, dict, str]]:
    version = request.param
    payloads = load(f"payloads-{version}.json")
    with PayloadServer(copy.deepcopy(payloads), version) as server:
        yield server, payloads, version


def config_for(server: PayloadServer, version: str) -> dict[str, Any]:
    return {"token": make_token(), "base_url": server.base_url, "api_version": version}


def as_records(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for page in pages:
        for item in page["items"]:
            record = copy.deepcopy(item)
            record["timestamp"] = normalise_timestamp(item["timestamp"])
            record["account_name"] = "default"
            records.append(record)
    return records


def test_every_payload_comes_out_field_for_field(served: tuple) -> None:
    server, payloads, version = served
    result = run_tap(config_for(server, version))
    for feature, stream in STREAM_OF.items():
        assert result.records.get(stream, []) == as_records(payloads[feature])
    # Nested keys the schema does not know (client.ip) survived, and nested times are as sent.
    if version == "v1":
        grove_like = result.records["sign_in_attempts"][1]
        assert grove_like["client"]["ip"] == "198.51.100.77"
        assert grove_like["timestamp"] == "2025-04-01T08:20:30.000000000Z"
        assert result.records["audit_events"][2]["session"]["login_time"] == (
            "2025-04-03T16:33:50-03:00"
        )


def test_pages_are_followed_by_cursor_until_has_more_is_false(served: tuple) -> None:
    server, payloads, version = served
    result = run_tap(config_for(server, version))
    for feature, stream in STREAM_OF.items():
        path = f"/api/{version}/{feature}"
        bodies = [body for seen, body in server.bodies if seen == path]
        pages = payloads[feature]
        assert len(bodies) == len(pages)
        assert set(bodies[0]) == {"limit", "start_time"}
        assert bodies[1:] == [{"cursor": page["cursor"]} for page in pages[:-1]]
        entry = partition(result.final_state, stream, "default")
        assert entry["cursor"] == pages[-1]["cursor"]
        assert entry["cursor_endpoint"] == path


def test_introspection_answers_of_both_versions_become_one_record(served: tuple) -> None:
    server, payloads, version = served
    result = run_tap(config_for(server, version))
    (record,) = result.records["introspection"]
    answer = payloads["introspection"]
    if version == "v1":
        assert record == {
            "account_name": "default",
            "uuid": answer["UUID"],
            "issued_at": answer["IssuedAt"],
            "features": answer["Features"],
        }
    else:
        assert record == {"account_name": "default", **answer}


def test_an_unknown_top_level_field_is_dropped_and_named_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payloads = load("payloads-v1.json")
    for page in payloads["signinattempts"]:
        for item in page["items"]:
            item["risk_score"] = 7
            item["client"]["tls_version"] = "1.3"
    caplog.set_level(logging.WARNING)
    with PayloadServer(payloads, "v1") as server:
        result = run_tap(config_for(server, "v1"))
    records = result.records["sign_in_attempts"]
    assert len(records) == 3
    assert all("risk_score" not in r for r in records)
    assert all(r["client"]["tls_version"] == "1.3" for r in records)
    named = [r.getMessage() for r in caplog.records if "risk_score" in r.getMessage()]
    assert len(named) == 1
    assert "sign_in_attempts" in named[0]


def test_decode_page_accepts_any_key_order_and_empty_pages() -> None:
    page = decode_page(b'{"items": [], "has_more": true, "cursor": "x"}')
    assert page == Page(cursor="x", has_more=True, items=[])


def test_item_shaping_on_its_own() -> None:
    tap = TapOnePassword(config={"token": make_token()})
    stream = SignInAttemptsStream(tap, tap.run)
    item = {"uuid": "U", "timestamp": "2021-03-01T16:32:50-03:00", "client": {"ip": "1.2.3.4"}}
    record = stream.event_records.shape(item, "default")
    assert record == {
        "uuid": "U",
        "timestamp": "2021-03-01T19:32:50.000000000Z",
        "client": {"ip": "1.2.3.4"},
        "account_name": "default",
    }
