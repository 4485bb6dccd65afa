"""A tiny loopback HTTP server that serves scripted (hostile) Events API answers and counts.

Why not the emulator: the emulator is faithful on purpose. These tests need answers no faithful
server gives (a wrong type, a missing cursor, invalid UTF-8), full control of each byte, and a
record of every request that reaches the port, including proxy ``CONNECT`` attempts, so that
"no request was sent" can be proved.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from typing_extensions import Self

if TYPE_CHECKING:
    import ssl

DATA_PATH_PREFIXES = ("/api/v1/", "/api/v2/")
INTROSPECTION_PATHS = ("/api/v2/auth/introspect", "/api/auth/introspect")


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-exchange is part of the test, not an error to print."""

    def handle_error(self, request: object, client_address: object) -> None:
        """Ignore it."""


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Exchange:
    """One request that reached the server and the answer it got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    reply: Reply | None = None

    def json_body(self) -> Any:
        """The request body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class ScriptedEventsAPI:
    """Serve introspection plus scripted data pages; record every request.

    ``script[feature]`` is the list of replies for that endpoint, served in order; once it is
    used up the endpoint answers an empty final page with cursor ``END-<feature>``.
    """

    features: list[str] = field(default_factory=lambda: ["signinattempts"])
    script: dict[str, list[Reply]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    redirect_all_to: str | None = None
    reflect_authorization: Reply | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self._server.server_address[1]}"

    @property
    def host_port(self) -> str:
        """``127.0.0.1:PORT``: what a token's ``aud`` names."""
        return self.base_url.split("://", 1)[1]

    def start(self) -> ScriptedEventsAPI:
        """Listen on a free loopback port in a daemon thread."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Stay quiet: the test reads the exchange list instead."""

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                exchange = Exchange(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = api.reply_for(exchange)
                exchange.reply = reply
                with api._lock:
                    api.exchanges.append(exchange)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_CONNECT = _answer  # noqa: N815

        self._server = _QuietServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and join the server thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        """Start on entry."""
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop on exit."""
        self.stop()

    def reply_for(self, exchange: Exchange) -> Reply:  # noqa: PLR0911 - one answer per route
        """Pick the scripted answer for one request."""
        path = exchange.path.split("?", 1)[0]
        if self.reflect_authorization is not None:
            # A careless gateway echoing the request: "{auth}" becomes the Authorization header.
            template = self.reflect_authorization
            auth = exchange.headers.get("authorization", "")
            return Reply(
                template.status,
                template.body.replace(b"{auth}", auth.encode()),
                template.content_type,
                template.headers,
            )
        if self.redirect_all_to is not None:
            return Reply(307, b"", "text/plain", {"Location": self.redirect_all_to + path})
        if exchange.method == "CONNECT":
            return Reply(502, b"proxy refused", "text/plain")
        if exchange.method == "GET" and path in INTROSPECTION_PATHS:
            if path == "/api/v2/auth/introspect":
                payload = {
                    "uuid": "SCRIPTEDINTEGRATIONUUID001",
                    "issued_at": "2025-10-02T14:05:11Z",
                    "features": self.features,
                    "account_uuid": "RELIABILITYACCOUNTUUID0001",
                }
            else:
                payload = {
                    "UUID": "SCRIPTEDINTEGRATIONUUID001",
                    "IssuedAt": "2025-10-02T14:05:11Z",
                    "Features": self.features,
                }
            return Reply(200, json.dumps(payload).encode())
        if exchange.method == "POST" and path.startswith(DATA_PATH_PREFIXES):
            feature = path.rsplit("/", 1)[-1]
            with self._lock:
                queue = self.script.get(feature)
                if queue:
                    return queue.pop(0)
            final = {"cursor": f"END-{feature}", "has_more": False, "items": []}
            return Reply(200, json.dumps(final).encode())
        return Reply(404, b"404 page not found", "text/plain; charset=utf-8")

    def data_exchanges(self) -> list[Exchange]:
        """Requests to the data endpoints, in arrival order."""
        with self._lock:
            return [
                e
                for e in self.exchanges
                if e.method == "POST" and e.path.startswith(DATA_PATH_PREFIXES)
            ]
