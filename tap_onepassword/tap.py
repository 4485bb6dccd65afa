"""tap-onepassword: the Tap class (placeholder until the streams land)."""

from __future__ import annotations

from singer_sdk import Tap
from singer_sdk import typing as th


class TapOnePassword(Tap):
    """Singer tap for the 1Password Events API."""

    name = "tap-onepassword"
    config_jsonschema = th.PropertiesList(
        th.Property("token", th.StringType, secret=True, description="Events API bearer token."),
    ).to_dict()

    def discover_streams(self) -> list:  # type: ignore[type-arg]
        """Return no streams yet."""
        return []


if __name__ == "__main__":
    TapOnePassword.cli()
