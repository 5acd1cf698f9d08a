"""Dataset schemas: checking them at create time, validating pushes (AJV-shaped errors), field statistics."""

from __future__ import annotations

from typing import Any

import pytest

from storage_emulator import item_schema
from storage_emulator.errors import InvalidInput, InvalidParameter, SchemaValidationFailed
from storage_emulator.item_schema import check_schema, field_statistics, schema_fields, validate_items

PRODUCT_FIELDS: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "price": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "note": {"type": "string", "nullable": True},
    },
    "required": ["name", "price"],
}
PRODUCT_SCHEMA: dict[str, Any] = {"actorSpecification": 1, "fields": PRODUCT_FIELDS, "views": {}}


def invalid_items(items: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate ``items`` expecting failure; return ``data.invalidItems``."""
    with pytest.raises(SchemaValidationFailed) as caught:
        validate_items(items, schema)
    assert caught.value.message == "Schema validation failed"
    assert caught.value.status == 400
    assert caught.value.error_type == "schema-validation-error"
    assert caught.value.data is not None
    result: list[dict[str, Any]] = caught.value.data["invalidItems"]
    return result


def errors_of(item: dict[str, Any], fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the AJV-shaped errors of one invalid item."""
    (only,) = invalid_items([item], {"fields": fields})
    assert only["itemPosition"] == 0
    errors: list[dict[str, Any]] = only["validationErrors"]
    return errors


# --- schema_fields and check_schema ------------------------------------------------------------------


@pytest.mark.parametrize("schema", [None, {}, {"fields": None}, {"views": {}}, {"fields": "nope"}])
def test_schema_without_fields_has_none(schema: Any) -> None:
    assert schema_fields(schema) is None


def test_schema_fields_returns_the_json_schema() -> None:
    assert schema_fields(PRODUCT_SCHEMA) == PRODUCT_FIELDS


@pytest.mark.parametrize(
    "schema",
    [
        None,
        {},
        {"views": {"overview": {}}},
        PRODUCT_SCHEMA,
        {"fields": {"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{}]}},
    ],
)
def test_valid_dataset_schemas_pass_the_check(schema: Any) -> None:
    check_schema(schema)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ([], "must be a JSON object"),
        ("fields", "must be a JSON object"),
        ({"fields": []}, "'fields' must be a JSON Schema object"),
        ({"fields": {"type": "text"}}, "not a valid JSON Schema"),
        ({"fields": {"properties": {"a": {"minimum": "zero"}}}}, "at /properties/a/minimum"),
        ({"fields": {"required": "name"}}, "not a valid JSON Schema"),
        ({"fields": {"$schema": "http://example.com/my-draft"}}, "no known JSON Schema draft"),
    ],
)
def test_invalid_dataset_schemas_are_refused_naming_the_problem(schema: Any, expected: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        check_schema(schema)
    assert caught.value.parameter == "schema"
    assert expected in caught.value.message
    assert caught.value.status == 400


# --- validate_items ----------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [None, {}, {"views": {}}])
def test_without_fields_anything_goes(schema: Any) -> None:
    validate_items([{"anything": [1, {"x": None}]}, {}], schema)


def test_valid_items_pass() -> None:
    validate_items(
        [
            {"name": "a", "price": 1},
            {"name": "b", "price": 0.5, "currency": "EUR", "tags": ["x"], "note": None, "extra": True},
        ],
        PRODUCT_SCHEMA,
    )


def test_every_invalid_item_is_reported_at_its_position() -> None:
    items = [
        {"name": "ok", "price": 1},
        {"name": 5, "price": 1},
        {"name": "ok", "price": 2},
        {"price": -1, "currency": "GBP"},
        {"name": "ok", "price": 3},
        {"name": "", "price": 1, "tags": ["a", 2, "c", "d"]},
    ]
    reported = invalid_items(items, PRODUCT_SCHEMA)
    assert [entry["itemPosition"] for entry in reported] == [1, 3, 5]
    assert reported[0]["validationErrors"] == [
        {
            "instancePath": "/name",
            "schemaPath": "#/properties/name/type",
            "keyword": "type",
            "params": {"type": "string"},
            "message": "must be string",
        }
    ]
    assert reported[1]["validationErrors"] == [
        {
            "instancePath": "/price",
            "schemaPath": "#/properties/price/minimum",
            "keyword": "minimum",
            "params": {"comparison": ">=", "limit": 0},
            "message": "must be >= 0",
        },
        {
            "instancePath": "/currency",
            "schemaPath": "#/properties/currency/enum",
            "keyword": "enum",
            "params": {"allowedValues": ["EUR", "USD"]},
            "message": "must be equal to one of the allowed values",
        },
        {
            "instancePath": "",
            "schemaPath": "#/required",
            "keyword": "required",
            "params": {"missingProperty": "name"},
            "message": "must have required property 'name'",
        },
    ]
    assert {(error["instancePath"], error["keyword"]) for error in reported[2]["validationErrors"]} == {
        ("/name", "minLength"),
        ("/tags/1", "type"),
        ("/tags", "maxItems"),
    }


def test_error_objects_have_exactly_the_ajv_keys() -> None:
    (error,) = errors_of({"name": "a"}, PRODUCT_FIELDS)
    assert set(error) == {"instancePath", "schemaPath", "keyword", "params", "message"}


def test_each_missing_required_property_is_its_own_error() -> None:
    errors = errors_of({}, {"required": ["a", "b"]})
    assert [error["params"] for error in errors] == [{"missingProperty": "a"}, {"missingProperty": "b"}]


def test_each_additional_property_is_its_own_error() -> None:
    fields = {"properties": {"a": {}}, "patternProperties": {"^x-": {}}, "additionalProperties": False}
    errors = errors_of({"a": 1, "x-ok": 2, "b": 3, "c": 4}, fields)
    assert [(error["keyword"], error["params"]) for error in errors] == [
        ("additionalProperties", {"additionalProperty": "b"}),
        ("additionalProperties", {"additionalProperty": "c"}),
    ]
    assert errors[0]["message"] == "must NOT have additional properties"


def test_nullable_admits_null_as_ajv_does() -> None:
    fields = {"properties": {"note": {"type": "string", "nullable": True}, "plain": {"type": "string"}}}
    validate_items([{"note": None, "plain": "x"}], {"fields": fields})
    (error,) = errors_of({"note": None, "plain": None}, fields)
    assert error["instancePath"] == "/plain"


def test_any_of_lists_each_branch_then_the_combinator() -> None:
    errors = errors_of({"a": [1]}, {"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "number"}]}}})
    assert [(error["schemaPath"], error["message"]) for error in errors] == [
        ("#/properties/a/anyOf/0/type", "must be string"),
        ("#/properties/a/anyOf/1/type", "must be number"),
        ("#/properties/a/anyOf", "must match a schema in anyOf"),
    ]


def test_one_of_matching_twice_names_the_passing_branches() -> None:
    (error,) = errors_of({"n": 3}, {"properties": {"n": {"oneOf": [{"type": "integer"}, {"minimum": 0}]}}})
    assert error["params"] == {"passingSchemas": [0, 1]}


@pytest.mark.parametrize(
    ("fields", "value", "message", "params"),
    [
        ({"type": ["string", "null"]}, 1, "must be string,null", {"type": ["string", "null"]}),
        ({"maxLength": 2}, "abc", "must NOT have more than 2 characters", {"limit": 2}),
        ({"minItems": 2}, [1], "must NOT have fewer than 2 items", {"limit": 2}),
        ({"exclusiveMaximum": 10.0}, 10, "must be < 10", {"comparison": "<", "limit": 10.0}),
        ({"multipleOf": 5}, 7, "must be multiple of 5", {"multipleOf": 5}),
        ({"pattern": "^a"}, "b", 'must match pattern "^a"', {"pattern": "^a"}),
        ({"const": "x"}, "y", "must be equal to constant", {"allowedValue": "x"}),
        ({"not": {"type": "string"}}, "s", "must NOT be valid", {}),
        (
            {"uniqueItems": True},
            [{"k": 1}, 2, {"k": 1}],
            "must NOT have duplicate items (items ## 0 and 2 are identical)",
            {"i": 2, "j": 0},
        ),
        (
            {"items": {"type": "integer"}, "uniqueItems": True},
            [1, 2, 1],
            "must NOT have duplicate items (items ## 2 and 0 are identical)",
            {"i": 0, "j": 2},
        ),
    ],
)
def test_keyword_messages_and_params_follow_ajv(
    fields: dict[str, Any], value: Any, message: str, params: dict[str, Any]
) -> None:
    (error,) = errors_of({"v": value}, {"properties": {"v": fields}})
    assert (error["message"], error["params"]) == (message, params)
    assert error["instancePath"] == "/v"


def test_paths_are_escaped_json_pointers() -> None:
    (error,) = errors_of({"a/b~c d": 1}, {"properties": {"a/b~c d": {"type": "string"}}})
    assert error["instancePath"] == "/a~1b~0c d"
    assert error["schemaPath"] == "#/properties/a~1b~0c%20d/type"


def test_dollar_schema_chooses_the_draft() -> None:
    # prefixItems exists only from 2020-12 on; draft-07 (the default) ignores it.
    fields = {"properties": {"pair": {"prefixItems": [{"type": "string"}]}}}
    item = {"pair": [1]}
    validate_items([item], {"fields": fields})
    modern = {"$schema": "https://json-schema.org/draft/2020-12/schema", **fields}
    (error,) = errors_of(item, modern)
    assert error["instancePath"] == "/pair/0"


def test_unresolvable_ref_is_invalid_input_not_a_crash() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_items([{"a": 1}], {"fields": {"properties": {"a": {"$ref": "#/definitions/missing"}}}})
    assert "definitions/missing" in caught.value.message
    assert not isinstance(caught.value, SchemaValidationFailed)


# --- field_statistics --------------------------------------------------------------------------------


STATS_FIELDS: dict[str, Any] = {
    "properties": {
        "price": {"type": "number"},
        "title": {"type": "string"},
        "tags": {"type": "array"},
        "meta": {"type": "object"},
        "inStock": {"type": "boolean"},
        "never": {},
    }
}
STATS_ITEMS: list[dict[str, Any]] = [
    {"price": 10, "title": "abc", "tags": [1, 2], "meta": {"a": 1}, "inStock": False, "undeclared": 1},
    {"price": -2.5, "title": "", "tags": [], "meta": {}, "inStock": None},
    {"price": None, "title": "😀x", "meta": {"a": 1, "b": 2, "c": 3}},
    {"price": 7, "title": None, "tags": [1, 2, 3, 4], "inStock": True},
    {},
]


def test_statistics_are_none_without_fields() -> None:
    assert field_statistics(STATS_ITEMS, None) is None
    assert field_statistics(STATS_ITEMS, {"views": {}}) is None


def test_statistics_of_a_small_table() -> None:
    assert field_statistics(STATS_ITEMS, {"fields": STATS_FIELDS}) == {
        "price": {"min": -2.5, "max": 10, "nullCount": 1, "emptyCount": 1},
        # Lengths count UTF-16 code units, as JavaScript does: "😀x" is 3 long.
        "title": {"min": 0, "max": 3, "nullCount": 1, "emptyCount": 1},
        "tags": {"min": 0, "max": 4, "nullCount": 0, "emptyCount": 2},
        "meta": {"min": 0, "max": 3, "nullCount": 0, "emptyCount": 2},
        # Booleans: the minimum is always 0, the maximum 1 once one is true (Apify's documented rule).
        "inStock": {"min": 0, "max": 1, "nullCount": 1, "emptyCount": 2},
        "never": {"min": None, "max": None, "nullCount": 0, "emptyCount": 5},
    }


def test_statistics_read_items_in_one_pass() -> None:
    stats = field_statistics((dict(item) for item in STATS_ITEMS), {"fields": STATS_FIELDS})
    assert stats is not None and stats["price"]["emptyCount"] == 1


def test_statistics_of_an_empty_dataset() -> None:
    assert field_statistics([], {"fields": {"properties": {"a": {}}}}) == {
        "a": {"min": None, "max": None, "nullCount": 0, "emptyCount": 0}
    }


def test_statistics_without_declared_properties_are_empty() -> None:
    assert field_statistics(STATS_ITEMS, {"fields": {"type": "object"}}) == {}


def test_boolean_minimum_is_always_zero_and_maximum_says_whether_one_was_true() -> None:
    items = [{"yes": True, "no": False}, {"yes": True, "no": False}]
    stats = field_statistics(items, {"fields": {"properties": {"yes": {}, "no": {}}}})
    assert stats == {
        "yes": {"min": 0, "max": 1, "nullCount": 0, "emptyCount": 0},
        "no": {"min": 0, "max": 0, "nullCount": 0, "emptyCount": 0},
    }


# --- uniqueItems: duplicates found in linear time, with AJV's pair -------------------------------------


def _pairwise_reference(items: list[Any]) -> tuple[int, int] | None:
    """The pair AJV reports, by its own quadratic loop: the last item against each earlier one, going back."""

    def equal(left: Any, right: Any) -> bool:
        if isinstance(left, bool) or isinstance(right, bool):
            return isinstance(left, bool) and isinstance(right, bool) and left == right
        if isinstance(left, list) and isinstance(right, list):
            return len(left) == len(right) and all(map(equal, left, right))
        if isinstance(left, dict) and isinstance(right, dict):
            return left.keys() == right.keys() and all(equal(left[key], right[key]) for key in left)
        if isinstance(left, int | float) and isinstance(right, int | float):
            return left == right
        return type(left) is type(right) and left == right

    for later in range(len(items) - 1, 0, -1):
        for earlier in range(later - 1, -1, -1):
            if equal(items[later], items[earlier]):
                return later, earlier
    return None


DUPLICATE_CASES: list[tuple[list[Any], tuple[int, int] | None]] = [
    ([], None),
    ([1], None),
    ([1, 1.0], (1, 0)),
    ([True, 1], None),
    ([False, 0, 0.0], (2, 1)),
    ([1, True, 1.0], (2, 0)),
    ([-0.0, 0], (1, 0)),
    ([2**53 + 1, float(2**53)], None),
    ([10**400, 10**400], (1, 0)),
    (["1", 1], None),
    ([None, None], (1, 0)),
    ([None, False, 0, "", [], {}], None),
    ([[], []], (1, 0)),
    ([{}, {}], (1, 0)),
    ([[1, 2], [2, 1]], None),
    ([{"a": 1, "b": 2}, {"b": 2, "a": 1}], (1, 0)),
    ([{"a": [1, {"b": True}]}, {"a": [1.0, {"b": True}]}], (1, 0)),
    ([{"a": [1, {"b": True}]}, {"a": [1, {"b": 1}]}], None),
    ([{"a": 1}, {"a": 1, "b": None}], None),
    ([[True], [1], [True]], (2, 0)),
    ([[1], [True], [1]], (2, 0)),
    ([1, 2, 1, 2], (3, 1)),
    ([1, 2, 2, 1], (3, 0)),
    ([1, 1, 2], (1, 0)),
    ([1, 1, 1], (2, 1)),
    ([{"k": 1}, 2, {"k": 1}], (2, 0)),
    ([["boolean", 1], ["boolean", True]], None),
    ([True, ["boolean", True]], None),
    ([None, [None], "a", ["a"], 1, [1]], None),
    ([{"a": "b"}, [["a", "b"]], {"a": ["b"]}], None),
    ([float("nan"), float("nan")], None),  # not JSON, but NaN equals nothing
    ([[float("nan")], [float("nan")]], None),
    ([(1, 2), (1, 2)], (1, 0)),  # not JSON: compared by type and ==
    ([{"x": {1, 2}}, {"x": {1, 2}}], (1, 0)),  # unhashable and not JSON
]


@pytest.mark.parametrize(("items", "pair"), DUPLICATE_CASES)
def test_duplicate_pair_is_the_one_ajv_reports(items: list[Any], pair: tuple[int, int] | None) -> None:
    assert _pairwise_reference(items) == pair  # the table itself is right
    assert item_schema._deep_duplicate(items) == pair


def test_duplicate_search_does_not_compare_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pair early in a long array was found after comparing every later item with every earlier one.
    comparisons = 0
    compare = item_schema._json_equal

    def counting(left: Any, right: Any) -> bool:
        nonlocal comparisons
        comparisons += 1
        return compare(left, right)

    monkeypatch.setattr(item_schema, "_json_equal", counting)
    items = [{"id": 0}, {"id": 0}, *({"id": n} for n in range(1, 1000))]
    assert item_schema._deep_duplicate(items) == (1, 0)
    assert comparisons <= len(items)


def test_unique_items_sees_duplicates_that_sort_apart() -> None:
    # jsonschema sorts the array and compares neighbours; [True] sorts as [1], so the two [1] were not
    # neighbours and the duplicate went unseen. AJV finds it.
    (error,) = errors_of({"v": [[1], [True], [1]]}, {"properties": {"v": {"uniqueItems": True}}})
    assert error["params"] == {"i": 2, "j": 0}


def test_unique_items_checks_a_large_array_of_objects() -> None:
    schema = {"fields": {"properties": {"v": {"type": "array", "uniqueItems": True}}}}
    distinct = [{"id": n} for n in range(200_000)]
    validate_items([{"v": distinct}], schema)
    (invalid,) = invalid_items([{"v": [{"id": 0.0}, *distinct]}], schema)
    (error,) = invalid["validationErrors"]
    assert error["keyword"] == "uniqueItems"
    assert error["params"] == {"i": 1, "j": 0}


@pytest.mark.parametrize("depth", [600, 900])
def test_an_item_nested_too_deeply_to_validate_is_a_400(depth: int) -> None:
    # JSON this deep parses (the parser allows about 1,000 levels), but checking it recursed past
    # Python's limit: a RecursionError, answered 500, which clients retry.
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    schema = {"fields": {"properties": {"v": {"type": "array", "uniqueItems": True}}}}
    with pytest.raises(InvalidInput) as caught:
        validate_items([{"v": [nested, nested]}], schema)
    assert "nested too deeply" in caught.value.message
