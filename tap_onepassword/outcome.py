"""What a run had to set aside or correct, told once at the end and in the exit status.

With several accounts, one account's failure (its token refused, its retries spent, its cursor
beyond recovery) must not stop the others: the failure is logged once, as an ERROR naming the
account and the reason, the account's remaining streams are skipped, and every other account
is synced to the end. The run then ends with an error naming every failed account, so a
scheduler alerts. `RunOutcome.failed_accounts` is the list a run summary can show.

The outcome also counts the events the API served again at a partition's tail and the tap
dropped as already emitted (one INFO line per run).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tap_onepassword.errors import TapOnePasswordError

if TYPE_CHECKING:
    import logging

RESERVED_LISTED = 10
"""Stream and account pairs named in the re-served events line (the rest are counted)."""


class AccountsFailedError(TapOnePasswordError):
    """Some accounts failed while the others were synced; the run must end with an error."""


@dataclass
class RunOutcome:
    """Failed accounts and re-served events of one run, shared by every stream."""

    failed_accounts: dict[str, str] = field(default_factory=dict)
    """Account name -> why it failed (one line, no secret), in the order they failed."""

    reserved_dropped: dict[tuple[str, str], int] = field(default_factory=dict)
    """(stream, account) -> events the API served again that were dropped as emitted."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fail(self, account_name: str, reason: str, logger: logging.Logger) -> None:
        """Set an account aside for the rest of the run, with one ERROR line (once per account).

        Args:
            account_name: The configured account name.
            reason: What went wrong (a message of the tap's own errors).
            logger: Where the ERROR goes.

        """
        with self._lock:
            if account_name in self.failed_accounts:
                return
            self.failed_accounts[account_name] = reason
        logger.error(
            "account '%s' failed and is skipped for the rest of this run (the other accounts "
            "go on): %s",
            account_name,
            reason.removeprefix(f"account '{account_name}': "),
        )

    def failed(self, account_name: str) -> bool:
        """Tell whether an account was set aside in this run.

        Args:
            account_name: The configured account name.

        Returns:
            True once it failed.

        """
        return account_name in self.failed_accounts

    def count_reserved(self, stream_name: str, account_name: str, dropped: int) -> None:
        """Count events dropped because the partition had emitted them already.

        Args:
            stream_name: The stream.
            account_name: The account.
            dropped: How many.

        """
        if dropped:
            key = (stream_name, account_name)
            self.reserved_dropped[key] = self.reserved_dropped.get(key, 0) + dropped

    def log_reserved(self, logger: logging.Logger) -> None:
        """Log the one INFO line about re-served events (also when there were none).

        Args:
            logger: Where the line goes.

        """
        total = sum(self.reserved_dropped.values())
        if not total:
            logger.info("re-served events: none (no event was served again after it was emitted)")
            return
        listed = sorted(self.reserved_dropped.items(), key=lambda item: -item[1])
        named = ", ".join(
            f"{stream} '{account}' {n}" for (stream, account), n in listed[:RESERVED_LISTED]
        )
        more = len(listed) - RESERVED_LISTED
        logger.info(
            "re-served events: dropped %d the API served again after they were emitted (%s%s)",
            total,
            named,
            f", and {more} more stream and account pairs" if more > 0 else "",
        )

    def raise_if_failed(self, accounts: int) -> None:
        """End the run with an error naming every failed account, if any failed.

        Args:
            accounts: How many accounts were configured.

        Raises:
            AccountsFailedError: At least one account failed.

        """
        if not self.failed_accounts:
            return
        named = "; ".join(
            f"'{name}': {reason.removeprefix(f'account {name!r}: ')}"
            for name, reason in self.failed_accounts.items()
        )
        msg = (
            f"{len(self.failed_accounts)} of {accounts} accounts failed ({named}). The other "
            "accounts were synced and their state saved; the next run reads the failed ones "
            "from where they stopped."
        )
        raise AccountsFailedError(msg)
