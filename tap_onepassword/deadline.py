"""A deadline for a whole response: `request_timeout` bounds headers and body together.

requests' `timeout` bounds each wait for bytes, so a server (or a proxy) that sends its answer
a few bytes at a time never trips it and can hold a run for as long as it likes. The sessions
of the tap use `DeadlineAdapter`, whose connections check, before each read from the socket,
the deadline the calling thread set with `response_deadline`: a read waits at most until the
deadline, and once it has passed the read fails as a time-out, which the tap retries like any
other. Without a deadline set, reads behave as before.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import override
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

if TYPE_CHECKING:
    from collections.abc import Iterator

_deadline = threading.local()
_now = time.perf_counter
"""Elapsed real time, the clock socket time-outs run on."""


@contextmanager
def response_deadline(seconds: float) -> Iterator[None]:
    """Bound every socket read of this thread's requests to `seconds` from now.

    Args:
        seconds: The time the whole response (headers and body) may take.

    Yields:
        Nothing; the deadline holds inside the `with` block.

    Raises:
        Timeout: A request inside failed because the deadline passed.

    """
    _deadline.at = _now() + seconds
    try:
        yield
    except requests.exceptions.RequestException as exc:
        if deadline_passed() and not isinstance(exc, requests.exceptions.SSLError):
            # Cut off mid-answer, requests reports a broken connection: it is a time-out.
            raise requests.exceptions.Timeout from None
        raise
    finally:
        _deadline.at = None


def deadline_passed() -> bool:
    """Tell whether this thread's response deadline has passed (False when none is set).

    Returns:
        True after the deadline.

    """
    at: float | None = getattr(_deadline, "at", None)
    return at is not None and _now() >= at


class _DeadlineSocket:
    """A connected socket whose reads stop at the calling thread's deadline.

    Everything but reading (and the reference counting of the file objects http.client
    reads through, copied from `socket.socket`) is the wrapped socket's.
    """

    def __init__(self, sock: Any) -> None:  # noqa: ANN401 - a socket or urllib3's TLS socket
        self._sock = sock
        self._io_refs = 0
        self._closed = False

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - whatever the socket has
        return getattr(self._sock, name)

    def recv_into(self, buffer: Any, *args: Any) -> int:  # noqa: ANN401
        at: float | None = getattr(_deadline, "at", None)
        if at is None:
            return int(self._sock.recv_into(buffer, *args))
        remaining = at - _now()
        if remaining <= 0:
            msg = "the whole answer did not arrive within request_timeout"
            raise TimeoutError(msg)
        before = self._sock.gettimeout()
        self._sock.settimeout(remaining if before is None else min(before, remaining))
        try:
            return int(self._sock.recv_into(buffer, *args))
        finally:
            self._sock.settimeout(before)

    def recv(self, size: int, *args: Any) -> bytes:  # noqa: ANN401
        buffer = bytearray(size)
        received = self.recv_into(buffer, size, *args)
        return bytes(buffer[:received])

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        **_: Any,  # noqa: ANN401 - socket.makefile's other options, unused for reading
    ) -> io.BufferedReader:
        if mode not in {"r", "rb"}:  # pragma: no cover - http.client only reads through it
            msg = f"mode {mode!r} is not supported"
            raise ValueError(msg)
        self._io_refs += 1
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type] # reads via recv_into
        size = buffering if buffering and buffering > 0 else io.DEFAULT_BUFFER_SIZE
        return io.BufferedReader(raw, size)

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def close(self) -> None:
        self._closed = True
        if self._io_refs <= 0:
            self._sock.close()


class _DeadlineHTTPConnection(HTTPConnection):
    @override
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _DeadlineHTTPSConnection(HTTPSConnection):
    @override
    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock)


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOLS = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


def deadline_session() -> requests.Session:
    """Make a requests session whose connections keep `response_deadline`.

    Returns:
        The session.

    """
    session = requests.Session()
    session.mount("https://", DeadlineAdapter())
    session.mount("http://", DeadlineAdapter())
    return session


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter, its connections bounded by `response_deadline`."""

    @override
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    @override
    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools bring their own connections
            manager.pool_classes_by_scheme = _POOLS
        return manager
