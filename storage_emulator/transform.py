"""Item transformations of ``GET /v2/datasets/{id}/items``: pure, lazy functions over dicts.

Each step sees the output of the one before; the order follows Apify's documentation where it says
something, and the comments mark where it does not:

1. ``skipFailedPages`` drops items that have an ``errorInfo`` field (a property of the stored page).
2. ``unwind``, field by field in the order given.
3. ``flatten``.
   Both come before ``fields``: the dataset-schema docs (docs.apify.com/storage/dataset-schema, "Handle
   nested structures") pick unwound keys (``reviewText``) and flattened names (``address.street``) with
   ``fields``.
4. ``skipHidden`` drops top-level ``#`` fields. Open in the docs: it runs after unwind/flatten so a ``#``
   key brought up to the top level is hidden too, and before ``fields`` so that hidden-ness is judged on
   the stored names, not on ``outputFields`` renames.
5. ``omit``, on the stored names; it "takes precedence" over ``fields`` (docs.apify.com/storage/dataset).
6. ``fields`` picks and orders; ``outputFields`` renames them by position.
7. ``skipEmpty`` drops items that are ``{}`` *in the output* (the API reference says empty items are
   skipped "from the output"), so an item that ``fields`` leaves empty is skipped too. Open in the docs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from storage_emulator.errors import InvalidParameter

Item = dict[str, Any]

HIDDEN_PREFIX = "#"
ERROR_INFO_FIELD = "errorInfo"
FLATTEN_SEPARATOR = "."


@dataclass(frozen=True)
class ItemTransform:
    """Say how to reshape items on their way out; ``None`` means "parameter not given"."""

    fields: tuple[str, ...] | None = None
    output_fields: tuple[str, ...] | None = None
    omit: tuple[str, ...] | None = None
    unwind: tuple[str, ...] | None = None
    flatten: tuple[str, ...] | None = None
    skip_hidden: bool = False
    skip_empty: bool = False
    skip_failed_pages: bool = False

    def with_view(self, view: Mapping[str, Any]) -> ItemTransform:
        """Fill the parameters not given from a dataset-schema view's ``transformation``.

        Explicit parameters win, one by one. The view's ``limit`` and ``desc`` are about paging, not
        about items, so they are the caller's business.
        """
        transformation = view.get("transformation") or {}
        return replace(
            self,
            fields=_prefer(self.fields, transformation.get("fields")),
            omit=_prefer(self.omit, transformation.get("omit")),
            unwind=_prefer(self.unwind, transformation.get("unwind")),
            flatten=_prefer(self.flatten, transformation.get("flatten")),
        )

    def validate(self) -> None:
        """Raise ``InvalidParameter`` unless ``outputFields`` pairs one-to-one with ``fields``."""
        if self.output_fields is None:
            return
        if self.fields is None:
            raise InvalidParameter("outputFields", "requires the 'fields' parameter")
        if len(self.output_fields) != len(self.fields):
            raise InvalidParameter("outputFields", "must have as many names as 'fields'")


def transform_items(items: Iterable[Item], transform: ItemTransform) -> Iterator[Item]:
    """Apply ``transform`` to each item, lazily; one stored item may yield zero or more.

    Validation runs now, not on the first ``next()``, so a bad request fails before a response starts.
    """
    transform.validate()
    return _transformed(items, transform)


def is_empty_item(item: Mapping[str, Any]) -> bool:
    """Tell whether the item has no fields at all."""
    return not item


def is_clean_item(item: Mapping[str, Any]) -> bool:
    """Tell whether the item keeps at least one field once hidden ``#`` fields are dropped."""
    return any(not key.startswith(HIDDEN_PREFIX) for key in item)


def _transformed(items: Iterable[Item], transform: ItemTransform) -> Iterator[Item]:
    for item in items:
        if transform.skip_failed_pages and ERROR_INFO_FIELD in item:
            continue
        for record in _unwound(item, transform.unwind or ()):
            record = _reshaped(record, transform)
            if transform.skip_empty and is_empty_item(record):
                continue
            yield record


def _reshaped(record: Item, transform: ItemTransform) -> Item:
    for name in transform.flatten or ():
        record = _flatten_field(record, name)
    if transform.skip_hidden:
        record = {key: value for key, value in record.items() if not key.startswith(HIDDEN_PREFIX)}
    for name in transform.omit or ():
        record = _omit_field(record, name)
    if transform.fields is not None:
        record = _pick_fields(record, transform.fields, transform.output_fields or transform.fields)
    return record


def _unwound(item: Item, names: tuple[str, ...]) -> Iterator[Item]:
    """Unwind ``names[0]`` of ``item``, then the rest of ``names`` on each record that gives."""
    if not names:
        yield item
        return
    for record in _unwind_field(item, names[0]):
        yield from _unwound(record, names[1:])


def _unwind_field(item: Item, name: str) -> Iterator[Item]:
    value = item.get(name)
    if isinstance(value, dict):
        yield _merged_with_parent(item, name, value)
    elif isinstance(value, list) and value:
        for element in value:
            if isinstance(element, dict):
                yield _merged_with_parent(item, name, element)
            else:
                # Open in the docs: a scalar (or nested array) element cannot be merged into the parent,
                # so it takes the array's place, one record per element, as MongoDB's $unwind does.
                yield {**item, name: element}
    else:
        # Missing, scalar or null: "the item gets preserved as it is" (API reference, unwind).
        # Open in the docs: an empty array gives no element to merge, so it is preserved the same way
        # rather than making the item vanish from the output.
        yield item


def _merged_with_parent(item: Item, name: str, child: Item) -> Item:
    # The child's keys win on a clash, as a JavaScript spread `{...parent, ...child}` would have it.
    parent = {key: value for key, value in item.items() if key != name}
    return {**parent, **child}


def _flatten_field(item: Item, name: str) -> Item:
    value = item.get(name)
    if not isinstance(value, dict) or not value:
        # Only objects are flattened (the docs speak of "nested objects"); an empty one has no leaf
        # to name, so it stays as it is.
        return item
    flattened: Item = {}
    for key, field_value in item.items():
        if key == name:
            flattened.update(_flat_object(value, name))
        else:
            flattened[key] = field_value
    return flattened


def _flat_object(value: Item, prefix: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted.path, leaf)`` pairs; arrays and empty objects are leaves."""
    for key, child in value.items():
        path = f"{prefix}{FLATTEN_SEPARATOR}{key}"
        if isinstance(child, dict) and child:
            yield from _flat_object(child, path)
        else:
            yield path, child


def _omit_field(item: Item, name: str) -> Item:
    if name in item:
        return {key: value for key, value in item.items() if key != name}
    # The dataset-schema reference says `omit` "supports nested field names": when no top-level key has
    # the dotted name, treat it as a path into nested objects.
    head, dot, rest = name.partition(FLATTEN_SEPARATOR)
    if dot and isinstance(item.get(head), dict):
        return {**item, head: _omit_field(item[head], rest)}
    return item


def _pick_fields(item: Item, fields: tuple[str, ...], output_names: tuple[str, ...]) -> Item:
    # A field the item lacks stays absent rather than becoming null ("missing field values display as
    # undefined", dataset-schema reference).
    return {output: item[field] for field, output in zip(fields, output_names, strict=True) if field in item}


def _prefer(explicit: tuple[str, ...] | None, from_view: Any) -> tuple[str, ...] | None:
    """Keep the explicit names if given, else read the view's list (a comma-separated string is accepted)."""
    if explicit is not None or from_view is None:
        return explicit
    if isinstance(from_view, str):
        return tuple(name for name in from_view.split(",") if name)
    return tuple(str(name) for name in from_view)
