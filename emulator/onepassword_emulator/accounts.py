"""The 1Password accounts an emulator serves, and the three it serves by default."""

from __future__ import annotations

from dataclasses import dataclass, field

from onepassword_emulator.data import FEATURES


@dataclass(frozen=True)
class AccountSpec:
    """How to set up one account: its name, the features its token reads, whether it is MSP.

    ``account_uuid`` defaults to a UUID derived from the seed and the name.
    """

    name: str
    features: tuple[str, ...] = FEATURES
    msp: bool = False
    account_uuid: str | None = None

    def __post_init__(self) -> None:
        """Reject names and features the API could not have."""
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            msg = f"account name must be letters, digits, '-' or '_': {self.name!r}"
            raise ValueError(msg)
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            msg = f"unknown features {sorted(unknown)}; expected some of {list(FEATURES)}"
            raise ValueError(msg)
        object.__setattr__(self, "features", tuple(self.features))


DEFAULT_ACCOUNTS = (
    AccountSpec("acme"),
    AccountSpec("globex", msp=True),
    AccountSpec("initech", features=("signinattempts", "auditevents")),
)
"""``acme`` (all features), ``globex`` (all features, MSP), ``initech`` (no item usages)."""


@dataclass
class Account:
    """A served account: its name, UUID, the features of its token, MSP flag and token.

    ``token`` is minted when the emulator starts (its ``aud`` names the emulator's host:port).
    """

    name: str
    account_uuid: str
    features: list[str] = field(default_factory=list)
    msp: bool = False
    token: str = ""

    def to_json(self) -> dict[str, object]:
        """Return the account as the command line and the control API print it."""
        return {
            "name": self.name,
            "token": self.token,
            "account_uuid": self.account_uuid,
            "features": list(self.features),
            "msp": self.msp,
        }
