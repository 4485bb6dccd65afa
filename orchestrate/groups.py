"""The account groups of a Meltano project, read from its own files.

A group is one extractor block that inherits from `tap-onepassword` and is named
`tap-onepassword--<group>`: its `accounts` are the group's accounts, and Meltano gives it its own
state ID (`<environment>:tap-onepassword--<group>-to-<loader>`). The block is the only place a
group is declared: everything the orchestrator runs follows from it. The files read are the ones
Meltano reads: `meltano.yml` and the files its `include_paths` patterns match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from pathlib import Path

BASE_EXTRACTOR = "tap-onepassword"
GROUP_PREFIX = f"{BASE_EXTRACTOR}--"
_GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


class GroupsError(ValueError):
    """The project declares its groups in a way the orchestrator cannot run."""


@dataclass(frozen=True)
class AccountGroup:
    """One group: its extractor in the Meltano project and the names of its accounts."""

    extractor: str
    accounts: tuple[str, ...]

    @property
    def name(self) -> str:
        """The group's name: the extractor's name after `tap-onepassword--`."""
        return self.extractor.removeprefix(GROUP_PREFIX)

    @property
    def identifier(self) -> str:
        """The group's name as a Python identifier (what Dagster accepts as an op name)."""
        return self.name.replace("-", "_")


def project_files(project_root: Path) -> list[Path]:
    """Return `meltano.yml` and the files its `include_paths` patterns match, as Meltano does."""
    meltano_yml = project_root / "meltano.yml"
    if not meltano_yml.is_file():
        msg = f"no meltano.yml in {project_root}: set MELTANO_PROJECT_ROOT to the Meltano project"
        raise GroupsError(msg)
    patterns = load_yaml(meltano_yml).get("include_paths") or []
    included = {path for pattern in patterns for path in project_root.glob(pattern)}
    return [meltano_yml, *sorted(included - {meltano_yml})]


def read_groups(project_root: Path) -> list[AccountGroup]:
    """Return the project's groups in name order; refuse a declaration that cannot run safely.

    Raises:
        GroupsError: a group lists no accounts, or one account is in two groups (two parallel
            runs would then read it twice, sharing its token's request budget).

    """
    groups: list[AccountGroup] = []
    for path in project_files(project_root):
        extractors = (load_yaml(path).get("plugins") or {}).get("extractors") or []
        groups.extend(
            _group_of(extractor, path)
            for extractor in extractors
            if str(extractor.get("name", "")).startswith(GROUP_PREFIX)
        )
    owner: dict[str, str] = {}
    for group in groups:
        for account in group.accounts:
            if account in owner:
                msg = (
                    f"account {account!r} is in groups {owner[account]!r} and {group.name!r}: "
                    "list each account in one group only"
                )
                raise GroupsError(msg)
            owner[account] = group.name
    return sorted(groups, key=lambda group: group.name)


def _group_of(extractor: dict[str, Any], path: Path) -> AccountGroup:
    """Return the group one extractor block declares."""
    name = str(extractor["name"])
    group = name.removeprefix(GROUP_PREFIX)
    if not _GROUP_NAME.fullmatch(group):
        msg = (
            f"{path.name}: extractor {name!r}: a group name is lower-case letters, digits, "
            "'-' and '_'"
        )
        raise GroupsError(msg)
    if extractor.get("inherit_from") != BASE_EXTRACTOR:
        msg = f"{path.name}: extractor {name!r} must set `inherit_from: {BASE_EXTRACTOR}`"
        raise GroupsError(msg)
    accounts = (extractor.get("config") or {}).get("accounts") or []
    names = tuple(str(account.get("name", "")) for account in accounts if isinstance(account, dict))
    if not names or "" in names or len(names) != len(accounts):
        msg = (
            f"{path.name}: extractor {name!r} must list its accounts under `config: accounts:`"
            ", each with a name"
        )
        raise GroupsError(msg)
    return AccountGroup(extractor=name, accounts=names)


def load_yaml(path: Path) -> dict[str, Any]:
    """Return one YAML file of the project as a mapping."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        msg = f"{path} is not valid YAML: {error}"
        raise GroupsError(msg) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        msg = f"{path} does not hold a mapping"
        raise GroupsError(msg)
    return loaded
