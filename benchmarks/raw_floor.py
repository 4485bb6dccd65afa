"""The raw floor: the least work that turns Events API pages into Singer RECORD lines.

Why it exists: the tap's CPU cost per record means little on its own. This script does the
same network and output work as the tap with nothing else: one introspection request per
account, the same reset and cursor requests page by page, one JSON decode per page, and one
RECORD line per item (the account name added, the top-level timestamp normalised to UTC with
nanoseconds, `time_extracted` once per page) encoded with msgspec into a buffered stdout.
The benchmark runs it as a child process and divides the tap's CPU time by this one's.

Usage: ``python benchmarks/raw_floor.py JOB.json`` where the job file holds ``base_url``,
``accounts`` (``[{"name", "token"}]``), ``streams`` (``[{"name", "path", "feature"}]``),
``page_size`` and ``start_time``. It writes the Singer lines to stdout and one JSON summary
line (pages, records) to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
import requests

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
_FRACTION_DIGITS = 9


def normalise_timestamp(value: str) -> str:
    """Return an RFC 3339 UTC timestamp as ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``, as the tap does.

    Only the common ``Z`` form is handled by string operations here; the emulator serves ``Z``
    with 0 to 9 fraction digits. Anything else goes through ``datetime`` (microseconds).
    """
    if value.endswith("Z") and len(value) >= 20:  # noqa: PLR2004
        head, _, fraction = value[:-1].partition(".")
        return f"{head}.{fraction.ljust(_FRACTION_DIGITS, '0')}Z"
    parsed = dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def sync_partition(  # noqa: PLR0913, PLR0917
    session: requests.Session,
    base_url: str,
    token: str,
    account_name: str,
    stream: dict[str, str],
    page_size: int,
    start_time: str,
    out: Any,  # noqa: ANN401
) -> tuple[int, int]:
    """Page through one stream of one account; return (pages, records)."""
    url = base_url + stream["path"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body: dict[str, Any] = {"limit": page_size, "start_time": start_time}
    name = stream["name"]
    pages = records = 0
    write = out.write
    encode = _ENCODER.encode
    while True:
        response = session.post(url, data=_ENCODER.encode(body), headers=headers, timeout=60)
        response.raise_for_status()
        page = _DECODER.decode(response.content)
        pages += 1
        extracted = dt.datetime.now(dt.timezone.utc)
        message: dict[str, Any] = {
            "type": "RECORD",
            "stream": name,
            "record": None,
            "time_extracted": extracted,
        }
        for item in page["items"]:
            item["account_name"] = account_name
            item["timestamp"] = normalise_timestamp(item["timestamp"])
            message["record"] = item
            write(encode(message))
            write(b"\n")
        records += len(page["items"])
        if not page["has_more"]:
            return pages, records
        body = {"cursor": page["cursor"]}


def main() -> int:
    """Run the job file named on the command line."""
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    out = open(sys.stdout.fileno(), "wb", buffering=1 << 20, closefd=False)  # noqa: SIM115
    session = requests.Session()
    # No per-request reading of proxy/CA variables and ~/.netrc (the tap reads them once):
    # the floor must not do work the tap avoids.
    session.trust_env = False
    pages = records = 0
    for account in job["accounts"]:
        headers = {"Authorization": f"Bearer {account['token']}"}
        response = session.get(job["base_url"] + "/api/v2/auth/introspect", headers=headers)
        response.raise_for_status()
        features = _DECODER.decode(response.content)["features"]
        for stream in job["streams"]:
            if stream["feature"] not in features:
                continue
            p, r = sync_partition(
                session,
                job["base_url"],
                account["token"],
                account["name"],
                stream,
                job["page_size"],
                job["start_time"],
                out,
            )
            pages += p
            records += r
    out.flush()
    sys.stderr.write(json.dumps({"pages": pages, "records": records}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
