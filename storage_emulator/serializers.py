"""Turn dataset metadata into each dialect's JSON shapes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from .models import DatasetMetadata, StorageMetadata
from .policy import AccessPolicy
from .repository import DatasetRepository
from .signing import create_signature

# Namespace for the org listing's per-version UUIDs: stable, derived, nothing extra stored.
ORG_ID_NAMESPACE = uuid.UUID("6f1c7f0e-5d0a-4a51-9b1e-2f5c3e8a9d10")
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def iso_time(value: datetime) -> str:
    """Format a time as ISO 8601 in UTC with milliseconds and ``Z``, as the real service does."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def storage_fields(storage: StorageMetadata, policy: AccessPolicy) -> dict[str, Any]:
    """Return the fields every kind's object shares (id, owner, dates, title, access)."""
    return {
        "id": storage.id,
        "userId": policy.owner_id(storage),
        "username": policy.owner_username(storage),
        "createdAt": iso_time(storage.created_at),
        "modifiedAt": iso_time(storage.modified_at),
        "accessedAt": iso_time(storage.accessed_at),
        "actId": None,
        "actRunId": None,
        "title": storage.title,
        "generalAccess": storage.general_access,
    }


def _common_fields(dataset: DatasetMetadata, repo: DatasetRepository) -> dict[str, Any]:
    return {
        **storage_fields(dataset, repo.policy),
        "itemCount": dataset.item_count,
        "cleanItemCount": dataset.clean_item_count if dataset.clean_item_count is not None else dataset.item_count,
    }


def dataset_resource(
    dataset: DatasetMetadata,
    repo: DatasetRepository,
    *,
    base_url: str,
    public_url: str,
    may_write: bool,
) -> dict[str, Any]:
    """Return the Apify ``Dataset`` object (``data`` of GET/POST/PUT)."""
    resource = {
        **_common_fields(dataset, repo),
        "name": dataset.name,
        "fields": _schema_field_names(dataset),
        "schema": dataset.dataset_schema,
        "consoleUrl": f"{base_url}/view/datasets/{dataset.id}",
        "stats": {
            "readCount": dataset.read_count,
            "writeCount": dataset.write_count,
            "storageBytes": dataset.storage_bytes,
        },
    }
    if may_write:
        resource["urlSigningSecretKey"] = dataset.url_signing_secret_key
        items_url = f"{public_url}/v2/datasets/{dataset.id}/items"
        if dataset.url_signing_secret_key:
            # Signed, as the real service does, so the link works without a token.
            items_url += "?signature=" + create_signature(dataset.id, dataset.url_signing_secret_key)
        resource["itemsPublicUrl"] = items_url
    return resource


def _schema_field_names(dataset: DatasetMetadata) -> list[str] | None:
    fields = (dataset.dataset_schema or {}).get("fields")
    properties = fields.get("properties") if isinstance(fields, dict) else None
    return list(properties) if isinstance(properties, dict) else None


def dataset_list_item(dataset: DatasetMetadata, repo: DatasetRepository) -> dict[str, Any]:
    """Return an Apify ``DatasetListItem``; an unnamed dataset's ``name`` is its id (the client needs a string)."""
    return {
        **_common_fields(dataset, repo),
        "name": dataset.name if dataset.name is not None else dataset.id,
        "stats": {"readCount": dataset.read_count, "writeCount": dataset.write_count, "inflatedBytes": 0},
    }


class ListItemEncoder:
    """The JSON text of each dataset's ``DatasetListItem``, kept for its current metadata object.

    Metadata objects are frozen and replaced on every change, so the same object always encodes the same
    way: a warm listing page then costs a join instead of 1,000 encodings (about a third of its time).
    One entry per dataset id, so memory follows the number of datasets, not the number of changes.
    """

    MAX_ENTRIES = 100_000
    """Cleared when full, so the entries of deleted datasets do not pile up."""

    def __init__(self, repo: DatasetRepository) -> None:
        self._repo = repo
        self._encoded: dict[str, tuple[DatasetMetadata, str]] = {}

    def encode(self, dataset: DatasetMetadata) -> str:
        """Return ``dataset_list_item(dataset)`` as compact JSON text."""
        hit = self._encoded.get(dataset.id)
        if hit is not None and hit[0] is dataset:  # the very object encoded last time: nothing changed
            return hit[1]
        text = json.dumps(dataset_list_item(dataset, self._repo), ensure_ascii=False, separators=(",", ":"))
        if len(self._encoded) >= self.MAX_ENTRIES:
            self._encoded.clear()
        self._encoded[dataset.id] = (dataset, text)
        return text

    def __len__(self) -> int:
        """Return how many datasets' JSON is kept."""
        return len(self._encoded)


def size_category(item_count: int) -> str:
    """Return the Hugging-Face-style size bucket for a row count."""
    for bound, label in SIZE_CATEGORIES:
        if item_count < bound:
            return label
    return "n>1M"


def org_summary(dataset: DatasetMetadata, repo: DatasetRepository) -> dict[str, Any]:
    """Return one row of the org listing (one per dataset version)."""
    org = repo.policy.owner_username(dataset)
    return {
        "id": str(uuid.uuid5(ORG_ID_NAMESPACE, f"{dataset.id}@{dataset.version}")),
        "name": f"{org}/{dataset.name or dataset.id}",
        "version": dataset.version,
        "format": dataset.format,
        "is_public": repo.policy.is_public(dataset),
        "download_count": dataset.read_count,
        "created_at": iso_time(dataset.created_at),
        "updated_at": iso_time(dataset.modified_at),
        "origin": dataset.origin,
        "summary": dataset.summary,
        "tags": dataset.tags,
        "license": dataset.license,
        "task_categories": dataset.task_categories,
        "size_category": dataset.size_category or size_category(dataset.item_count),
        "row_count": dataset.item_count,
        "file_size_bytes": dataset.storage_bytes,
    }
