"""`python -m tap_onepassword`: the same command as `tap-onepassword`."""

from __future__ import annotations

from tap_onepassword.cli import main

main()
