"""The OCSF marts' metadata as a warehouse holds it, for checking that the three marts agree.

Every ocsf_* mart carries OCSF's `metadata` twice, as flat columns (metadata_product_name...)
and as the nested JSON object; the product, vendor and OCSF version must be the same in all
three, and the object's ids each row's own. The SQL here runs on PostgreSQL and on DuckDB.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

from .conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable

MARTS = "onepassword_marts"
OCSF_MARTS = ("ocsf_authentication", "ocsf_web_resources_activity", "ocsf_audit_activity")
METADATA_COLUMNS_SQL = f"""
    SELECT table_name, column_name, data_type FROM information_schema.columns
    WHERE table_schema = '{MARTS}' AND column_name LIKE 'metadata%'
      AND table_name IN ({", ".join(f"'{mart}'" for mart in OCSF_MARTS)})
    ORDER BY table_name, ordinal_position"""


def metadata_rows_sql(mart: str) -> str:
    """Return the query for every row's metadata in one mart, with the ids it must carry."""
    return (
        "SELECT metadata_uid, event_key, account_uuid, metadata_product_name, "
        f"metadata_product_vendor_name, metadata_version, metadata FROM {MARTS}.{mart}"
    )


def ocsf_version() -> str:
    """Return the OCSF version the dbt project declares (its variable ocsf_version)."""
    project = yaml.safe_load((PROJECT_ROOT / "transform" / "dbt_project.yml").read_text())
    return str(project["vars"]["ocsf_version"])


def metadata_columns(rows: list[tuple[Any, ...]]) -> dict[str, list[tuple[str, str]]]:
    """Return each mart's metadata columns and types, in order, from METADATA_COLUMNS_SQL."""
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        columns.setdefault(str(table), []).append((str(column), str(data_type)))
    return columns


def described_metadata(rows: list[tuple[Any, ...]]) -> set[str]:
    """Return the distinct metadata of a mart's rows (from `metadata_rows_sql`), as JSON texts.

    The flat columns and the nested object go in as they are, except the object's `uid` and
    `tenant_uid`, which differ per row: each becomes whether it is the row's own event uuid
    (the end of event_key) or account uuid. A mart right on every row describes one metadata.
    """
    described = set()
    for uid, event_key, account_uuid, product, vendor, version, metadata in rows:
        nested = json.loads(metadata) if isinstance(metadata, str) else dict(metadata)
        nested["uid"] = nested.get("uid") == uid == str(event_key).rpartition(":")[2]
        nested["tenant_uid"] = nested.get("tenant_uid") == account_uuid
        flat = {"product_name": product, "product_vendor_name": vendor, "version": version}
        described.add(json.dumps({"columns": flat, "object": nested}, sort_keys=True))
    return described


def metadata_disagreements(query: Callable[[str], list[tuple[Any, ...]]]) -> list[str]:
    """Return what the OCSF marts disagree on or get wrong in their metadata (none: agreed).

    `query` runs one SQL text in the warehouse the job built and returns its rows.
    """
    columns = metadata_columns(query(METADATA_COLUMNS_SQL))
    described = {mart: described_metadata(query(metadata_rows_sql(mart))) for mart in OCSF_MARTS}
    first = OCSF_MARTS[0]
    problems = [
        f"{mart} has the metadata columns {columns.get(mart)}, {first} {columns.get(first)}"
        for mart in OCSF_MARTS
        if not columns.get(mart) or columns.get(mart) != columns.get(first)
    ]
    problems += [
        f"{mart} carries the metadata {sorted(described[mart])}, {first} {sorted(described[first])}"
        for mart in OCSF_MARTS
        if described[mart] != described[first]
    ]
    problems += [
        f"{mart} carries the metadata {text}, but one per mart at version {ocsf_version()}, with "
        "its columns saying what its object says and the rows' own ids"
        for mart in OCSF_MARTS
        for text in sorted(described[mart])
        if len(described[mart]) != 1 or not consistent(text)
    ]
    return problems


def consistent(text: str) -> bool:
    """Return whether one described metadata is right on its own.

    Right: the rows' own ids, the project's OCSF version, and columns that say what the
    object says.
    """
    described = json.loads(text)
    flat, nested = described["columns"], described["object"]
    product = nested.get("product") or {}
    return (
        nested["uid"] is True
        and nested["tenant_uid"] is True
        and nested.get("version") == flat["version"] == ocsf_version()
        and product.get("name") == flat["product_name"]
        and product.get("vendor_name") == flat["product_vendor_name"]
    )
