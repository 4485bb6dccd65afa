"""Time warp for tap subprocesses started by the reliability tests (never used in production).

Why: a fault soak drives hundreds of retries, 429 waits and rate-budget pauses. Sleeping them
for real would make the CI-sized soak take many minutes. When ``TAP_RELIABILITY_WARP=1`` this
module (put on ``PYTHONPATH`` by the harness, so Python imports it at start-up before the tap)
turns ``time.sleep`` into an instant jump of a virtual offset that ``time.monotonic`` includes,
so every wait the tap asks for still "passes" on the monotonic clock, only faster. Each wait is
appended to ``TAP_RELIABILITY_SLEEP_LOG`` (wall time and seconds asked) so a test can check that
a ``Retry-After`` was honoured. Waits that do not go through ``time.sleep`` (socket timeouts,
``Event.wait``) stay real.

With ``TAP_RELIABILITY_WARP_EMULATOR=<emulator base URL>`` every jump is first mirrored to the
emulator's clock (``POST /_emulator/time {"advance": s}``), so the emulator's rate windows and
request log run on the same virtual time as the tap. Concurrent sleepers each add their own
wait, so virtual time can run ahead of a real run, never behind it.
"""

from __future__ import annotations

import os
import threading
import time

if os.environ.get("TAP_RELIABILITY_WARP") == "1":
    _real_sleep = time.sleep
    _real_monotonic = time.monotonic
    _real_time = time.time
    _lock = threading.Lock()
    _offset = [0.0]
    _log_path = os.environ.get("TAP_RELIABILITY_SLEEP_LOG")
    _mirror = os.environ.get("TAP_RELIABILITY_WARP_EMULATOR")
    _opener = None
    if _mirror:
        import json
        import urllib.request

        _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _advance_emulator(seconds: float) -> None:
        """Move the emulator's clock by the same jump, before the tap's clock moves."""
        if _opener is None:
            return
        request = urllib.request.Request(
            f"{_mirror}/_emulator/time",
            data=json.dumps({"advance": seconds}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with _opener.open(request, timeout=10) as answer:
            answer.read()

    def _warped_monotonic() -> float:
        """Real monotonic time plus every wait slept so far."""
        return _real_monotonic() + _offset[0]

    def _warped_sleep(seconds: float) -> None:
        """Advance the virtual clock instead of waiting; log what was asked."""
        if seconds > 0:
            with _lock:
                _advance_emulator(seconds)
                _offset[0] += seconds
                if _log_path:
                    with open(_log_path, "a", encoding="utf-8") as log:  # noqa: PTH123
                        log.write(f"{_real_time():.6f}\t{seconds:.6f}\n")
        _real_sleep(0)

    time.sleep = _warped_sleep  # type: ignore[assignment] # takes the float it is given
    time.monotonic = _warped_monotonic
