"""Pin the semantics of each items parameter: fields, outputFields, omit, unwind, flatten, skip*."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from storage_emulator.errors import InvalidParameter
from storage_emulator.transform import ItemTransform, is_clean_item, is_empty_item, transform_items


def run(items: list[dict[str, Any]], **params: Any) -> list[dict[str, Any]]:
    """Transform ``items`` with the given ItemTransform parameters and collect the result."""
    return list(transform_items(items, ItemTransform(**params)))


def test_no_parameters_returns_items_unchanged() -> None:
    items = [{"a": 1, "#h": 2}, {}, {"b": [1, 2]}]
    assert run(items) == items


def test_input_items_are_never_modified() -> None:
    items = [{"a": {"b": 1, "c": 2}, "u": [{"x": 1}, {"x": 2}], "#h": 1, "o": {"p": 1}}]
    before = copy.deepcopy(items)
    run(items, unwind=("u", "o"), flatten=("a",), omit=("a.b",), skip_hidden=True)
    run(items, omit=("a.b",))
    assert items == before


# --- fields, outputFields, omit ----------------------------------------------------------------------


def test_fields_keeps_only_listed_fields_in_the_listed_order() -> None:
    result = run([{"a": 1, "b": 2, "c": 3}], fields=("c", "a"))
    assert result == [{"c": 3, "a": 1}]
    assert list(result[0]) == ["c", "a"]


def test_fields_leaves_a_missing_field_absent_not_null() -> None:
    assert run([{"a": 1}], fields=("a", "missing")) == [{"a": 1}]


def test_output_fields_rename_fields_by_position() -> None:
    item = {"headline": "H", "url": "U", "x": 0}
    result = run([item], fields=("headline", "url"), output_fields=("title", "link"))
    assert result == [{"title": "H", "link": "U"}]
    assert list(result[0]) == ["title", "link"]


def test_output_fields_skip_a_field_the_item_lacks() -> None:
    assert run([{"url": "U"}], fields=("headline", "url"), output_fields=("title", "link")) == [{"link": "U"}]


def test_output_fields_without_fields_is_rejected_before_iteration() -> None:
    with pytest.raises(InvalidParameter) as caught:
        transform_items(iter([]), ItemTransform(output_fields=("x",)))
    assert caught.value.parameter == "outputFields"


def test_output_fields_count_must_match_fields() -> None:
    with pytest.raises(InvalidParameter) as caught:
        transform_items(iter([]), ItemTransform(fields=("a", "b"), output_fields=("x",)))
    assert caught.value.parameter == "outputFields"


def test_omit_drops_fields() -> None:
    assert run([{"a": 1, "b": 2, "c": 3}], omit=("b", "zzz")) == [{"a": 1, "c": 3}]


def test_omit_wins_over_fields() -> None:
    assert run([{"a": 1, "b": 2, "c": 3}], fields=("a", "b"), omit=("b",)) == [{"a": 1}]


def test_omit_refers_to_stored_names_even_when_output_fields_rename() -> None:
    result = run([{"a": 1, "b": 2}], fields=("a", "b"), output_fields=("x", "y"), omit=("a",))
    assert result == [{"y": 2}]


def test_omit_accepts_a_nested_dotted_name() -> None:
    assert run([{"a": {"b": 1, "c": 2}, "d": 3}], omit=("a.b",)) == [{"a": {"c": 2}, "d": 3}]


def test_omit_prefers_a_top_level_dotted_key_to_the_nested_path() -> None:
    assert run([{"a.b": 1, "a": {"b": 2}}], omit=("a.b",)) == [{"a": {"b": 2}}]


# --- unwind ------------------------------------------------------------------------------------------


def test_unwind_array_of_objects_gives_one_record_per_element_merged_with_parent() -> None:
    item = {"name": "p", "reviews": [{"text": "good", "rating": 5}, {"text": "bad", "rating": 1}]}
    assert run([item], unwind=("reviews",)) == [
        {"name": "p", "text": "good", "rating": 5},
        {"name": "p", "text": "bad", "rating": 1},
    ]


def test_unwind_element_keys_win_over_parent_keys() -> None:
    assert run([{"a": 1, "b": 2, "u": [{"a": 9}]}], unwind=("u",)) == [{"a": 9, "b": 2}]


def test_unwind_object_is_merged_into_parent() -> None:
    assert run([{"foo": {"bar": "hello"}, "x": 1}], unwind=("foo",)) == [{"x": 1, "bar": "hello"}]


@pytest.mark.parametrize("value", ["text", 7, None, True])
def test_unwind_scalar_or_null_field_keeps_item_as_it_is(value: Any) -> None:
    assert run([{"a": 1, "u": value}], unwind=("u",)) == [{"a": 1, "u": value}]


def test_unwind_missing_field_keeps_item_as_it_is() -> None:
    assert run([{"a": 1}], unwind=("u",)) == [{"a": 1}]


def test_unwind_empty_array_keeps_item_as_it_is() -> None:
    assert run([{"a": 1, "u": []}], unwind=("u",)) == [{"a": 1, "u": []}]


def test_unwind_scalar_elements_take_the_arrays_place() -> None:
    assert run([{"a": 1, "tags": ["x", "y"]}], unwind=("tags",)) == [
        {"a": 1, "tags": "x"},
        {"a": 1, "tags": "y"},
    ]


def test_unwind_mixed_elements() -> None:
    assert run([{"a": 1, "u": [{"b": 2}, 3]}], unwind=("u",)) == [{"a": 1, "b": 2}, {"a": 1, "u": 3}]


def test_unwind_fields_apply_in_the_order_given() -> None:
    item = {"id": 1, "orders": [{"no": "A", "lines": [{"sku": 1}, {"sku": 2}]}, {"no": "B", "lines": []}]}
    assert run([item], unwind=("orders", "lines")) == [
        {"id": 1, "no": "A", "sku": 1},
        {"id": 1, "no": "A", "sku": 2},
        {"id": 1, "no": "B", "lines": []},
    ]
    # The other order: "lines" does not exist yet when it is unwound, so it is left for nobody.
    assert run([item], unwind=("lines", "orders")) == [
        {"id": 1, "no": "A", "lines": [{"sku": 1}, {"sku": 2}]},
        {"id": 1, "no": "B", "lines": []},
    ]


def test_unwind_runs_before_fields_so_fields_can_pick_unwound_keys() -> None:
    item = {"productName": "P", "price": 3, "reviews": [{"reviewText": "ok", "rating": 4}]}
    result = run([item], unwind=("reviews",), fields=("productName", "reviewText", "rating"))
    assert result == [{"productName": "P", "reviewText": "ok", "rating": 4}]


# --- flatten -----------------------------------------------------------------------------------------


def test_flatten_turns_a_nested_object_into_dotted_keys() -> None:
    assert run([{"foo": {"bar": "hello"}}], flatten=("foo",)) == [{"foo.bar": "hello"}]


def test_flatten_goes_all_the_way_down_and_keeps_the_field_position() -> None:
    item = {"a": 0, "foo": {"bar": {"baz": 1}, "list": [1, {"x": 2}], "empty": {}}, "z": 9}
    result = run([item], flatten=("foo",))
    assert result == [{"a": 0, "foo.bar.baz": 1, "foo.list": [1, {"x": 2}], "foo.empty": {}, "z": 9}]
    assert list(result[0]) == ["a", "foo.bar.baz", "foo.list", "foo.empty", "z"]


@pytest.mark.parametrize("value", [[1, 2], "s", None, {}])
def test_flatten_leaves_non_objects_unchanged(value: Any) -> None:
    assert run([{"foo": value}], flatten=("foo",)) == [{"foo": value}]


def test_flatten_only_touches_listed_fields() -> None:
    assert run([{"a": {"b": 1}, "c": {"d": 2}}], flatten=("a",)) == [{"a.b": 1, "c": {"d": 2}}]


def test_flatten_runs_before_fields_so_fields_can_pick_dotted_names() -> None:
    item = {"name": "n", "address": {"street": "Main St", "city": "NYC", "zip": "1"}}
    result = run([item], flatten=("address",), fields=("name", "address.street", "address.city"))
    assert result == [{"name": "n", "address.street": "Main St", "address.city": "NYC"}]


# --- skipHidden, skipEmpty, clean, skipFailedPages ---------------------------------------------------


def test_skip_hidden_drops_top_level_hash_fields_only() -> None:
    item = {"url": "u", "#debug": {"x": 1}, "data": {"#keep": 1}}
    assert run([item], skip_hidden=True) == [{"url": "u", "data": {"#keep": 1}}]


def test_skip_hidden_also_hides_hash_keys_brought_up_by_unwind() -> None:
    assert run([{"a": 1, "u": {"#secret": 2, "b": 3}}], unwind=("u",), skip_hidden=True) == [{"a": 1, "b": 3}]


def test_skip_hidden_wins_over_fields() -> None:
    assert run([{"#id": 1, "a": 2}], fields=("#id", "a"), skip_hidden=True) == [{"a": 2}]


def test_skip_empty_drops_empty_items() -> None:
    assert run([{"a": 1}, {}, {"b": None}], skip_empty=True) == [{"a": 1}, {"b": None}]


def test_skip_empty_judges_the_output_item() -> None:
    assert run([{"a": 1}, {"b": 2}], fields=("a",), skip_empty=True) == [{"a": 1}]


def test_without_skip_empty_emptied_items_stay() -> None:
    assert run([{"a": 1}, {"b": 2}], fields=("a",)) == [{"a": 1}, {}]


def test_clean_drops_hidden_fields_and_then_items_left_empty() -> None:
    items = [{"#only": 1}, {}, {"#h": 1, "v": 2}, {"v": 3}]
    assert run(items, skip_hidden=True, skip_empty=True) == [{"v": 2}, {"v": 3}]


def test_skip_failed_pages_drops_items_with_error_info() -> None:
    items = [{"url": "a", "errorInfo": "timeout"}, {"url": "b"}, {"url": "c", "errorInfo": None}]
    assert run(items, skip_failed_pages=True) == [{"url": "b"}]
    assert run(items) == items


def test_skip_failed_pages_looks_at_the_stored_item_before_fields() -> None:
    items = [{"url": "a", "errorInfo": "x"}, {"url": "b"}]
    assert run(items, fields=("url",), skip_failed_pages=True) == [{"url": "b"}]


def test_is_empty_item() -> None:
    assert is_empty_item({})
    assert not is_empty_item({"a": None})
    assert not is_empty_item({"#h": 1})


@pytest.mark.parametrize(
    ("item", "clean"),
    [
        ({}, False),
        ({"#a": 1}, False),
        ({"#a": 1, "#b": 2}, False),
        ({"#a": 1, "b": None}, True),
        ({"x": 1}, True),
    ],
)
def test_is_clean_item(item: dict[str, Any], clean: bool) -> None:
    assert is_clean_item(item) is clean


# --- views -------------------------------------------------------------------------------------------


VIEW = {
    "title": "Overview",
    "transformation": {"fields": ["name", "rating"], "unwind": ["reviews"], "flatten": [], "omit": ["x"]},
    "display": {"component": "table"},
}


def test_with_view_fills_parameters_from_the_views_transformation() -> None:
    transform = ItemTransform().with_view(VIEW)
    assert transform == ItemTransform(fields=("name", "rating"), unwind=("reviews",), flatten=(), omit=("x",))
    item = {"name": "n", "x": 0, "reviews": [{"rating": 5, "text": "t"}]}
    assert list(transform_items([item], transform)) == [{"name": "n", "rating": 5}]


def test_with_view_explicit_parameters_win_one_by_one() -> None:
    explicit = ItemTransform(fields=("name",), omit=(), skip_hidden=True, output_fields=("title",))
    transform = explicit.with_view(VIEW)
    assert transform.fields == ("name",)
    assert transform.omit == ()
    assert transform.unwind == ("reviews",)
    assert transform.skip_hidden is True
    assert transform.output_fields == ("title",)


def test_with_view_lets_output_fields_pair_with_the_views_fields() -> None:
    transform = ItemTransform(output_fields=("title", "stars")).with_view(VIEW)
    item = {"name": "n", "reviews": {"rating": 5}}
    assert list(transform_items([item], transform)) == [{"title": "n", "stars": 5}]


def test_with_view_without_transformation_changes_nothing() -> None:
    assert ItemTransform(fields=("a",)).with_view({"title": "t"}) == ItemTransform(fields=("a",))


def test_with_view_accepts_comma_separated_names() -> None:
    assert ItemTransform().with_view({"transformation": {"fields": "a,b"}}).fields == ("a", "b")


# --- laziness ----------------------------------------------------------------------------------------


def test_transform_items_is_lazy() -> None:
    def endless() -> Iterator[dict[str, Any]]:
        for number in itertools.count():
            yield {"n": number, "u": [1, 2]}

    first = list(itertools.islice(transform_items(endless(), ItemTransform(unwind=("u",))), 5))
    assert first == [{"n": 0, "u": 1}, {"n": 0, "u": 2}, {"n": 1, "u": 1}, {"n": 1, "u": 2}, {"n": 2, "u": 1}]
