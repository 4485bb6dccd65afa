"""A page's body is read in a few large reads, not 10 KiB at a time, and the connection is
kept; and every thread allocates from one C heap."""

from __future__ import annotations

import platform
import socket
from typing import TYPE_CHECKING, Any

from onepassword_emulator import Emulator
from tap_onepassword.events import EventStream
from tap_onepassword.run import one_malloc_arena
from tap_onepassword.tap import TapOnePassword

if TYPE_CHECKING:
    import pytest

PAGE = 1000  # events, some 700 KB of JSON


def test_a_page_is_read_in_a_few_reads_over_one_kept_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Emulator(seed=4, events=2 * PAGE) as emulator:
        account = emulator.accounts[0]
        tap = TapOnePassword(
            config={"token": account.token, "base_url": emulator.base_url},
            parse_env_config=False,
        )
        read_two_pages(tap, monkeypatch)


def read_two_pages(tap: TapOnePassword, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = tap.streams["audit_events"]
    assert isinstance(stream, EventStream)
    reads: list[int] = []
    connects: list[Any] = []
    real_recv_into, real_connect = socket.socket.recv_into, socket.socket.connect

    def recv_into(self: socket.socket, *args: Any) -> int:
        got = real_recv_into(self, *args)
        reads.append(got)
        return got

    def connect(self: socket.socket, address: Any) -> None:
        connects.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "recv_into", recv_into)
    monkeypatch.setattr(socket.socket, "connect", connect)
    context = {"account_name": "default"}
    body = {"limit": PAGE, "start_time": "2000-01-01T00:00:00Z"}
    pages = stream.request_pages(context, body)
    first, second = next(pages), next(pages)
    pages.close()
    assert len(first.items) == len(second.items) == PAGE
    assert sum(reads) > 2 * 500_000
    assert len(reads) < 2 * 15  # some 80 a page when read 10 KiB at a time
    assert len(connects) == 1  # both pages over one connection: it went back to the pool


def test_every_thread_allocates_from_one_heap_where_the_c_library_is_glibc() -> None:
    assert one_malloc_arena() is (platform.libc_ver()[0] == "glibc")
