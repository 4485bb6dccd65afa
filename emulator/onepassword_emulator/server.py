"""The HTTP layer: a threaded standard-library server for the API and the ``/_emulator/`` controls.

API requests go to :class:`~.service.EventsService`; this layer adds what only a socket can
do (reset the connection, hang, send a cut body), the optional fixed latency, and the request
log. Control requests under ``/_emulator/`` (JSON in, JSON out) drive the same methods the
Python API offers, so a separate process can steer a command-line emulator.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from onepassword_emulator.rfc3339 import TimestampError
from onepassword_emulator.service import NOT_FOUND_BODY, ApiResponse, route_of

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if TYPE_CHECKING:
    from datetime import datetime

    from onepassword_emulator.emulator import Emulator

CONTROL_PREFIX = "/_emulator/"
_DRIP_INTERVAL = 0.1
"""Seconds between two pieces of a dripping answer."""
_REASON_PHRASES = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the emulator saw it (control requests are not logged).

    ``body`` is the parsed JSON body (``None`` when absent or not JSON), ``status`` is ``0``
    when the connection was reset instead of answered, ``account`` is the name of the
    account whose valid token was sent (``None`` otherwise), ``time`` is the emulator clock.
    """

    method: str
    path: str
    body: Any
    status: int
    account: str | None
    time: datetime
    fault: str | None = None
    cpu_seconds: float = 0.0
    user_agent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    query: str = ""
    """The URL's query string as sent (v3 passes its parameters there)."""

    @property
    def params(self) -> dict[str, str]:
        """The query parameters, decoded (the last value of each)."""
        return {key: values[-1] for key, values in parse_qs(self.query).items()}

    def to_json(self) -> dict[str, Any]:
        """Return the record as ``GET /_emulator/requests`` lists it."""
        return {
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "status": self.status,
            "account": self.account,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "fault": self.fault,
            "cpu_seconds": self.cpu_seconds,
            "user_agent": self.user_agent,
            "query": self.query,
        }


class ControlError(Exception):
    """A control request was malformed; answered 400 (or the given status) with its message."""

    def __init__(self, message: str, status: int = 400) -> None:
        """Carry the message and status to answer with."""
        super().__init__(message)
        self.status = status


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that knows its emulator."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a tap opening a connection per account and stream
    # at once would see the rest of its SYNs dropped and resent a second later, a stall no
    # real API shows.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        """Bind to ``address`` and serve ``emulator``."""
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, EmulatorRequestHandler)

    @override
    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection so that ``close_connections`` can end it."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    @override
    def shutdown_request(self, request: Any) -> None:
        """Forget the connection once its handler is done with it."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open connection, so a stopped emulator answers no kept-alive client."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    @override
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (timeouts, resets); report anything else."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Routes each request to the API or the controls; keeps connections alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK would add ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer
    server_version = "events-api-emulator"
    sys_version = ""

    @override
    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the request log is the record of what happened."""

    def do_GET(self) -> None:
        """Answer a GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Answer a POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Answer a PUT (always 404 on the API)."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Answer a DELETE (control routes only)."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Answer a PATCH (always 404 on the API)."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Answer a HEAD (always 404 on the API; headers only)."""
        self._dispatch()

    def do_OPTIONS(self) -> None:
        """Answer an OPTIONS (always 404 on the API)."""
        self._dispatch()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        arrived = time.monotonic()
        started_cpu = time.thread_time()
        split = urlsplit(self.path)
        body = self._read_body()
        if split.path.startswith(CONTROL_PREFIX):
            self._control(split.path, parse_qs(split.query), body)
            return
        emulator = self.server.emulator
        route = route_of(self.command, split.path)
        if route is None:
            self._record(
                split.path,
                body=_json_or_none(body),
                status=404,
                account=None,
                cpu=time.thread_time() - started_cpu,
                fault=None,
            )
            self._send(404, NOT_FOUND_BODY, "text/plain; charset=utf-8")
            return
        fault = emulator.faults.take(split.path)
        kind = fault.kind if fault else None
        params = fault.params if fault else {}
        headers = {key.lower(): value for key, value in self.headers.items()}
        if kind == "reset":
            account = emulator.service.identify(headers)[1]
            self._record(
                split.path,
                body=_json_or_none(body),
                status=0,
                account=account.name if account else None,
                cpu=time.thread_time() - started_cpu,
                fault=kind,
            )
            self._reset_connection()
            return
        if kind == "hang":
            emulator.stopping.wait(float(params.get("seconds", 30)))
        response = emulator.service.handle(route, headers, body, kind, params, split.query)
        cpu = time.thread_time() - started_cpu
        if emulator.latency_ms:
            # The answer leaves latency_ms after the request arrived: handling is part of it.
            answer_at = arrived + emulator.latency_ms / 1000
            emulator.stopping.wait(max(0.0, answer_at - time.monotonic()))
        self._record(
            split.path,
            body=response.request_body,
            status=response.status,
            account=response.account,
            cpu=cpu,
            fault=kind,
            query=split.query,
        )
        if kind == "truncate":
            self._send_truncated(response, incomplete=bool(params.get("incomplete")))
            return
        if kind == "drip":
            self._send_dripping(response, float(params.get("seconds", 10)))
            return
        self._send(response.status, response.body, response.content_type, response.headers)

    def _record(  # noqa: PLR0913 - every field of the record, by keyword
        self,
        path: str,
        *,
        body: Any,  # noqa: ANN401 - any JSON body
        status: int,
        account: str | None,
        cpu: float,
        fault: str | None,
        query: str = "",
    ) -> None:
        emulator = self.server.emulator
        emulator.record(
            RequestRecord(
                method=self.command,
                path=path,
                body=body,
                status=status,
                account=account,
                time=emulator.now,
                fault=fault,
                cpu_seconds=cpu,
                user_agent=self.headers.get("User-Agent"),
                query=query,
            )
        )

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_truncated(self, response: ApiResponse, *, incomplete: bool) -> None:
        cut = response.body[: max(1, len(response.body) // 2)]
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        # Either a well-framed body that is not valid JSON, or a body shorter than announced.
        self.send_header("Content-Length", str(len(response.body) if incomplete else len(cut)))
        self.end_headers()
        self.wfile.write(cut)
        self.wfile.flush()
        if incomplete:
            self.close_connection = True
            self._reset_connection()

    def _send_dripping(self, response: ApiResponse, seconds: float) -> None:
        """Send the whole answer, status line to last byte, in pieces spread over ``seconds``.

        Every piece comes well within any per-read time-out: only a deadline for the whole
        answer stops a client from waiting the full ``seconds``.
        """
        head = (
            f"HTTP/1.1 {response.status} {_REASON_PHRASES.get(response.status, 'OK')}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            + "".join(f"{key}: {value}\r\n" for key, value in response.headers.items())
            + "\r\n"
        ).encode()
        answer = head + response.body
        pieces = max(1, int(seconds / _DRIP_INTERVAL))
        size = -(-len(answer) // pieces)
        stopping = self.server.emulator.stopping
        for start in range(0, len(answer), size):
            if start and stopping.wait(_DRIP_INTERVAL):
                break
            self.wfile.write(answer[start : start + size])
            self.wfile.flush()
        self.close_connection = True

    def _reset_connection(self) -> None:
        self.close_connection = True
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    # -- control routes --------------------------------------------------------------------

    def _control(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        try:
            payload = json.loads(body) if body else {}
            result = self.server.emulator.control(self.command, path, query, payload)
        except ControlError as exc:
            self._send(exc.status, json.dumps({"error": str(exc)}).encode(), "application/json")
            return
        except (ValueError, KeyError, TypeError, TimestampError) as exc:
            message = f"bad control request: {exc}"
            self._send(400, json.dumps({"error": message}).encode(), "application/json")
            return
        self._send(200, json.dumps(result).encode(), "application/json")


def _json_or_none(body: bytes) -> Any:  # noqa: ANN401 - any JSON value
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def start_server(
    emulator: Emulator, host: str, port: int
) -> tuple[EmulatorHTTPServer, threading.Thread]:
    """Bind and start serving in a background thread; return the server and its thread."""
    server = EmulatorHTTPServer((host, port), emulator)
    # A short poll interval keeps stop() quick; idle polling costs next to nothing.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.02},
        name="events-api-emulator",
        daemon=True,
    )
    thread.start()
    return server, thread
