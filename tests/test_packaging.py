"""The package installs and exposes its console script."""

import shutil
import subprocess


def test_console_script_prints_about() -> None:
    exe = shutil.which("tap-onepassword")
    assert exe is not None
    out = subprocess.run(
        [exe, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    assert '"name": "tap-onepassword"' in out.stdout
