"""The org-scoped dataset listing (Dreadnode-style): filters, sort and pages over the shared storage."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .models import DatasetMetadata
from .repository import DatasetRepository
from .serializers import org_summary, size_category

SORT_FIELDS = ("name", "created_at", "updated_at", "row_count", "file_size_bytes")
SORT_DIRECTIONS = ("asc", "desc")


@dataclass(frozen=True)
class OrgDatasetQuery:
    """What the org listing was asked for, already validated."""

    org: str
    name: str | None = None
    search: str | None = None
    tags: tuple[str, ...] = ()
    license: tuple[str, ...] = ()
    task_categories: tuple[str, ...] = ()
    format: tuple[str, ...] = ()
    size_category: tuple[str, ...] = ()
    sort_by: str = "created_at"
    sort_dir: str = "desc"
    page: int = 1
    limit: int = 50
    include_public: bool = False


def list_org_datasets(repo: DatasetRepository, query: OrgDatasetQuery) -> dict[str, Any]:
    """Return the org listing's response body for ``query``."""
    # Filter and sort once per state of the root and question; paging through it then costs only the stats.
    matches = repo.select(("org", replace(query, page=1, limit=1)), lambda datasets: _select(datasets, repo, query))
    total = len(matches)
    total_pages = math.ceil(total / query.limit)
    start = (query.page - 1) * query.limit
    return {
        "datasets": [org_summary(repo.reads.merged(dataset), repo) for dataset in matches[start : start + query.limit]],
        "has_next": query.page < total_pages,
        "has_prev": query.page > 1,
        "limit": query.limit,
        "page": query.page,
        "total": total,
        "total_pages": total_pages,
    }


def org_exists(repo: DatasetRepository, org: str) -> bool:
    """Tell whether the org is known: an account, an account's org, or the owner of some dataset."""
    if repo.policy.org_known(org):
        return True
    owned = repo.select(
        ("org-owner", org), lambda datasets: [d for d in datasets if repo.policy.owner_username(d) == org]
    )
    return bool(owned)


def _select(datasets: list[DatasetMetadata], repo: DatasetRepository, query: OrgDatasetQuery) -> list[DatasetMetadata]:
    """Return the named datasets the query asks for, in its order (ties by id)."""
    matches = [
        dataset
        for dataset in datasets
        if dataset.name is not None and _in_scope(dataset, repo, query) and _matches(dataset, query)
    ]
    matches.sort(key=lambda dataset: dataset.id)  # the stable tie-break, kept by the stable sort below
    matches.sort(key=lambda dataset: _sort_value(dataset, repo, query.sort_by), reverse=query.sort_dir == "desc")
    return matches


def _in_scope(dataset: DatasetMetadata, repo: DatasetRepository, query: OrgDatasetQuery) -> bool:
    if repo.policy.owner_username(dataset) == query.org:
        return True
    return query.include_public and repo.policy.is_public(dataset)


def _matches(dataset: DatasetMetadata, query: OrgDatasetQuery) -> bool:
    name = dataset.name or ""
    if query.name is not None and query.name not in (name, f"{query.org}/{name}"):
        return False
    if query.search is not None:
        needle = query.search.lower()
        if needle not in name.lower() and needle not in (dataset.summary or "").lower():
            return False
    if query.tags and not set(query.tags) & set(dataset.tags):
        return False
    if query.task_categories and not set(query.task_categories) & set(dataset.task_categories):
        return False
    if query.license and dataset.license not in query.license:
        return False
    if query.format and dataset.format not in query.format:
        return False
    category = dataset.size_category or size_category(dataset.item_count)
    return not (query.size_category and category not in query.size_category)


def _sort_value(dataset: DatasetMetadata, repo: DatasetRepository, sort_by: str) -> Any:
    """Return the value the org listing sorts by, read from the metadata (the row's own field names)."""
    if sort_by == "name":
        return f"{repo.policy.owner_username(dataset)}/{dataset.name}".lower()
    if sort_by == "created_at":
        return dataset.created_at
    if sort_by == "updated_at":
        return dataset.modified_at
    if sort_by == "row_count":
        return dataset.item_count
    return dataset.storage_bytes  # file_size_bytes
