"""The official Python apify-client against a live server: the dataset collection calls."""

from __future__ import annotations

import time
from pathlib import Path

from storage_emulator import DEFAULT_ACCOUNT


def test_get_or_create_twice_gives_the_same_dataset(apify, storage_root: Path) -> None:  # type: ignore[no-untyped-def]
    first = apify.datasets().get_or_create(name="client-made")
    second = apify.datasets().get_or_create(name="client-made")

    assert first.id == second.id
    assert first.name == "client-made" and first.user_id == DEFAULT_ACCOUNT.id
    assert first.created_at.tzinfo is not None
    assert (storage_root / "datasets" / "client-made" / "__metadata__.json").is_file()


def test_get_or_create_with_schema(apify) -> None:  # type: ignore[no-untyped-def]
    schema = {"actorSpecification": 1, "fields": {"type": "object", "properties": {"url": {"type": "string"}}}}

    dataset = apify.datasets().get_or_create(name="with-schema", schema=schema)

    assert dataset.schema_ == schema
    assert apify.dataset(dataset.id).get().schema_ == schema


def test_list_and_iterate(apify) -> None:  # type: ignore[no-untyped-def]
    ids = [apify.datasets().get_or_create(name=f"listed-{i}").id for i in range(3)]
    unnamed = apify.datasets().get_or_create().id

    page = apify.datasets().list()
    assert [item.id for item in page.items] == ids
    assert (page.total, page.count, page.limit) == (3, 3, 1000)

    assert [item.id for item in apify.datasets().list(desc=True, limit=2).items] == [ids[2], ids[1]]
    assert [item.id for item in apify.datasets().iterate()] == ids
    assert [item.id for item in apify.datasets().iterate(chunk_size=2)] == ids
    with_unnamed = [item.id for item in apify.datasets().iterate(unnamed=True)]
    assert with_unnamed == [*ids, unnamed]


def test_iterate_over_more_than_one_page(apify, repo) -> None:  # type: ignore[no-untyped-def]
    ids = [repo.get_or_create_dataset(name=f"many-{i:04d}")[0].id for i in range(1005)]

    assert [item.id for item in apify.datasets().iterate()] == ids


def test_get_by_id_and_by_tilde_name(apify) -> None:  # type: ignore[no-untyped-def]
    created = apify.datasets().get_or_create(name="by-name")

    assert apify.dataset(created.id).get().id == created.id
    assert apify.dataset("~by-name").get().id == created.id
    assert apify.dataset(f"{DEFAULT_ACCOUNT.username}/by-name").get().id == created.id


def test_missing_dataset_is_none(apify) -> None:  # type: ignore[no-untyped-def]
    assert apify.dataset("aaaaaaaaaaaaaaaaa").get() is None
    assert apify.dataset("~not-there").get() is None


def test_get_moves_accessed_at_in_the_response_itself(apify) -> None:  # type: ignore[no-untyped-def]
    """The first access after a quiet second writes the counters at once; the response must show them."""
    created = apify.datasets().get_or_create(name="touched")
    time.sleep(0.01)  # the times are kept to the millisecond on the wire

    fetched = apify.dataset(created.id).get()

    assert fetched.accessed_at > created.accessed_at
    assert fetched.modified_at == created.modified_at
