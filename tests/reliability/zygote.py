"""Start tap runs by forking a process that has already imported the tap (test-only).

Why: importing the Singer SDK costs about a second of CPU per process, and the hostile-config
and hostile-response tests start a hundred short tap runs. This script imports the tap once,
then for each request read from stdin (one JSON object a line: argv, env, output files) forks a
child that runs exactly what the console script runs, ``tap_onepassword.cli.main()`` with that argv,
its stdout and stderr sent to the given files. The parent prints the child's pid, then its exit
status. An exception that escapes the CLI is printed as Python would print it, so a traceback
still shows up where a test looks for one.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def run_child(request: dict[str, object]) -> int:
    """In the forked child: set up argv, env and output files, run the CLI, return its code."""
    env: dict[str, object] = request.get("env", {})  # type: ignore[assignment] # JSON object
    os.environ.update({str(k): str(v) for k, v in env.items()})
    stdout_fd = os.open(str(request["stdout"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    stderr_fd = os.open(str(request["stderr"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    sys.argv = ["tap-onepassword", *request["argv"]]  # type: ignore[misc]
    from tap_onepassword.cli import main as tap_main  # noqa: PLC0415 - imported before the fork

    code = 0
    try:
        tap_main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - report it exactly as the interpreter would
        traceback.print_exc()
        code = 1
    return code


def main() -> None:
    """Serve fork requests until stdin closes."""
    import logging  # noqa: PLC0415

    from tap_onepassword.cli import main  # noqa: F401, PLC0415 - the point: import once

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = run_child(request)
            finally:
                try:
                    logging.shutdown()
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)  # noqa: T201
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
