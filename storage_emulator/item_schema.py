"""Dataset schemas: check one at create time, validate pushed items against it, measure field statistics.

A dataset schema's ``fields`` is a JSON Schema for one item. Apify validates pushes with AJV
(``allErrors``), so the errors here are shaped like AJV's: ``instancePath``, ``schemaPath``, ``keyword``,
``message``, ``params``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import referencing.exceptions
from jsonschema import Draft4Validator, Draft7Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator

from storage_emulator.errors import InvalidInput, InvalidParameter, SchemaValidationFailed

# Apify documents draft-07 and AJV defaults to it; a `$schema` naming another known draft wins.
_DEFAULT_VALIDATOR: type[Validator] = Draft7Validator

# Keywords whose one jsonschema error stands for several AJV errors (or whose several jsonschema errors
# carry the details only in prose): they are rebuilt from the instance, once per location.
_EXPANDED_KEYWORDS = frozenset({"required", "additionalProperties", "dependencies", "dependentRequired"})

_COMPARISONS = {"maximum": "<=", "minimum": ">=", "exclusiveMaximum": "<", "exclusiveMinimum": ">"}
_COUNT_LIMITS = {
    "minLength": ("fewer", "characters"),
    "maxLength": ("more", "characters"),
    "minItems": ("fewer", "items"),
    "maxItems": ("more", "items"),
    "minProperties": ("fewer", "properties"),
    "maxProperties": ("more", "properties"),
}


def schema_fields(schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Return the JSON Schema under ``schema["fields"]``, or None when the dataset has none."""
    if not isinstance(schema, Mapping):
        return None
    fields = schema.get("fields")
    if not isinstance(fields, Mapping):
        return None
    return fields if isinstance(fields, dict) else dict(fields)


def check_schema(schema: Any) -> None:
    """Raise InvalidParameter unless ``schema`` is a dataset schema with a valid JSON Schema as ``fields``."""
    if schema is None:
        return
    if not isinstance(schema, Mapping):
        raise InvalidParameter("schema", "must be a JSON object", location="body")
    fields = schema.get("fields")
    if fields is None:
        return
    if not isinstance(fields, Mapping):
        raise InvalidParameter("schema", "'fields' must be a JSON Schema object", location="body")
    validator_class = _validator_class(fields)
    if validator_class is None:
        raise InvalidParameter(
            "schema",
            f"'fields.$schema' names no known JSON Schema draft: {fields['$schema']!r} "
            "(use http://json-schema.org/draft-07/schema# or leave it out)",
            location="body",
        )
    try:
        validator_class.check_schema(dict(fields))
    except SchemaError as exc:
        where = _json_pointer(exc.absolute_path) or "/"
        raise InvalidParameter(
            "schema", f"'fields' is not a valid JSON Schema: {exc.message} (at {where})", location="body"
        ) from exc


def validate_items(items: Sequence[dict[str, Any]], schema: Mapping[str, Any] | None) -> None:
    """Raise SchemaValidationFailed listing every item that breaks the schema's ``fields``, if any does."""
    fields = schema_fields(schema)
    if fields is None:
        return
    validator = _validator(fields)
    invalid_items = []
    try:
        for position, item in enumerate(items):
            errors = list(_ajv_errors(validator, item))
            if errors:
                invalid_items.append({"itemPosition": position, "validationErrors": errors})
    except referencing.exceptions.Unresolvable as exc:
        # Not a 5xx: clients would retry a problem that only a new schema fixes.
        raise InvalidInput(f"The dataset schema's fields cannot be used: cannot resolve $ref {exc.ref!r}") from exc
    except RecursionError as exc:
        # JSON that parsed can still be too deep to walk (the checks recurse several frames per level).
        raise InvalidInput("An item is nested too deeply to validate against the dataset schema") from exc
    if invalid_items:
        raise SchemaValidationFailed("Schema validation failed", data={"invalidItems": invalid_items})


def field_statistics(items: Iterable[dict[str, Any]], schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Measure min, max, nullCount and emptyCount of each field the schema declares, in one pass."""
    fields = schema_fields(schema)
    if fields is None:
        return None
    properties = fields.get("properties")
    stats = {name: _FieldStats() for name in (properties if isinstance(properties, Mapping) else ())}
    for item in items:
        for name, field in stats.items():
            field.observe(item, name)
    return {name: field.as_dict() for name, field in stats.items()}


# --- statistics --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _FieldStats:
    """Running statistics of one field."""

    min: float | None = None
    max: float | None = None
    null_count: int = 0
    empty_count: int = 0

    def observe(self, item: Mapping[str, Any], name: str) -> None:
        """Count one item's value of the field."""
        if name not in item:
            # Apify's "empty" means undefined: an empty string or list still has a size.
            self.empty_count += 1
            return
        value = item[name]
        if value is None:
            self.null_count += 1
            return
        low, high = _measure(value)
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)

    def as_dict(self) -> dict[str, Any]:
        """Return the statistics in the API's shape."""
        return {
            "min": self.min,
            "max": self.max,
            "nullCount": self.null_count,
            "emptyCount": self.empty_count,
        }


def _measure(value: Any) -> tuple[float, float]:
    """Return what one non-null value contributes to (min, max)."""
    if isinstance(value, bool):
        # Apify documents booleans as "set to true": the minimum is always 0, the maximum 1 once one is true.
        return 0, int(value)
    if isinstance(value, int | float):
        return value, value
    if isinstance(value, str):
        # The service runs on JavaScript, whose string length counts UTF-16 code units.
        size = len(value.encode("utf-16-le", "surrogatepass")) // 2
        return size, size
    size = len(value) if isinstance(value, list | dict) else 0
    return size, size


# --- validation --------------------------------------------------------------------------------------


def _validator_class(fields: Mapping[str, Any]) -> type[Validator] | None:
    """Return the validator class for the draft ``fields`` names (draft-07 if none), None if unknown."""
    if "$schema" not in fields:
        return _DEFAULT_VALIDATOR
    if not isinstance(fields["$schema"], str):
        return None
    # validator_for answers its default for a `$schema` it does not know. Asking with two different
    # defaults tells the cases apart: a known draft gives the same class both times.
    known = validators.validator_for(fields, default=Draft7Validator)
    if known is not validators.validator_for(fields, default=Draft4Validator):
        return None
    return known


def _validator(fields: Mapping[str, Any]) -> Validator:
    """Build the validator for ``fields``, honouring its ``$schema`` and AJV's ``nullable``."""
    draft = fields.get("$schema")
    return _ajv_validator_class(draft if isinstance(draft, str) else None)(fields)


@functools.cache
def _ajv_validator_class(draft: str | None) -> type[Validator]:
    """Return the validator class for a ``$schema``, with AJV's ``nullable`` and its ``uniqueItems``."""
    # An unknown `$schema` is refused at create time; one stored by other means falls back to draft-07.
    base = (_validator_class({"$schema": draft}) if draft else None) or _DEFAULT_VALIDATOR
    check_type = base.VALIDATORS["type"]

    def type_or_null(validator: Validator, types: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
        if instance is None and schema.get("nullable") is True:
            return None
        return check_type(validator, types, instance, schema)

    def unique_items(validator: Validator, unique: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
        # jsonschema's own check compares every pair when items do not sort (objects, mixed types), which
        # pins a core on one large push, and when they do sort it compares neighbours only, missing
        # [[1], [True], [1]]. The equality keys find any duplicate in one pass, as AJV would.
        if unique and validator.is_type(instance, "array") and _deep_duplicate(instance) is not None:
            yield ValidationError("has non-unique elements")  # the AJV message is built by the describer

    # typeshed's stub of extend() carries no annotations at all (types-jsonschema 4.26), so mypy strict
    # calls it untyped; jsonschema itself annotates nothing here either. extend() is still the
    # documented way to swap one keyword while keeping the draft's $ref rules, which create() cannot
    # reach without private attributes.
    extended: type[Validator] = validators.extend(base, {"type": type_or_null, "uniqueItems": unique_items})  # type: ignore[no-untyped-call]
    return extended


def _ajv_errors(validator: Validator, item: Any) -> Iterator[dict[str, Any]]:
    """Yield every error of ``item`` as AJV would report it with ``allErrors``."""
    expanded: set[tuple[str, str]] = set()
    for error in _flatten(validator.iter_errors(item)):
        if _expandable(error):
            location = (_json_pointer(error.absolute_path), _schema_pointer(error.absolute_schema_path))
            if location not in expanded:
                expanded.add(location)
                yield from _expand(error, *location)
        elif error.validator is None:
            # A `false` subschema. jsonschema leaves the last step out of both paths here (it does not
            # record where it descended into a boolean schema), so these point at the parent.
            yield _ajv_error(error, "false schema", "boolean schema is false", {})
        else:
            keyword = str(error.validator)
            describe = _DESCRIPTIONS.get(keyword)
            message, params = describe(error, validator) if describe else (error.message, {})
            yield _ajv_error(error, keyword, message, params)


def _expandable(error: ValidationError) -> bool:
    """Tell whether ``error`` is rebuilt per property (not draft 3's boolean ``required``)."""
    if error.validator == "additionalProperties":
        return True
    if error.validator == "required":
        return isinstance(error.validator_value, list)
    return error.validator in _EXPANDED_KEYWORDS and isinstance(error.validator_value, Mapping)


def _flatten(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """Put each anyOf/oneOf branch's errors before the combinator's own error, as AJV lists them."""
    for error in errors:
        yield from _flatten(error.context or ())
        yield error


def _ajv_error(error: ValidationError, keyword: str, message: str, params: dict[str, Any]) -> dict[str, Any]:
    """Assemble an AJV error object at ``error``'s location."""
    return {
        "instancePath": _json_pointer(error.absolute_path),
        "schemaPath": _schema_pointer(error.absolute_schema_path),
        "keyword": keyword,
        "params": params,
        "message": message,
    }


_Description = tuple[str, dict[str, Any]]


def _describe_type(error: ValidationError, validator: Validator) -> _Description:
    """Describe a ``type`` error."""
    return f"must be {_js_text(error.validator_value)}", {"type": error.validator_value}


def _describe_comparison(error: ValidationError, validator: Validator) -> _Description:
    """Describe a ``minimum``/``maximum``/``exclusive*`` error."""
    comparison = _COMPARISONS[str(error.validator)]
    limit = error.validator_value
    return f"must be {comparison} {_js_text(limit)}", {"comparison": comparison, "limit": limit}


def _describe_count(error: ValidationError, validator: Validator) -> _Description:
    """Describe a length, item-count or property-count error."""
    more_or_fewer, unit = _COUNT_LIMITS[str(error.validator)]
    limit = error.validator_value
    return f"must NOT have {more_or_fewer} than {_js_text(limit)} {unit}", {"limit": limit}


def _describe_one_of(error: ValidationError, validator: Validator) -> _Description:
    """Describe a ``oneOf`` error, naming the branches that matched when more than one did."""
    # Errors from iter_errors() always carry the instance; the stub's Unset is for hand-built ones.
    instance: Any = error.instance
    passing = None  # no branch matched: their errors are in the context
    if not error.context and isinstance(error.validator_value, list):
        # Counted as jsonschema's own oneOf counts them (descend() is not in the Validator protocol).
        passing = [
            index
            for index, branch in enumerate(error.validator_value)
            if validator.evolve(schema=branch).is_valid(instance)
        ]
    return "must match exactly one schema in oneOf", {"passingSchemas": passing}


def _describe_unique_items(error: ValidationError, validator: Validator) -> _Description:
    """Describe a ``uniqueItems`` error, naming the duplicate pair AJV would find first."""
    items = error.instance if isinstance(error.instance, list) else []
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    types = _scalar_item_types(schema)
    pair = _scalar_duplicate(items, types) if types else _deep_duplicate(items)
    if pair is None:
        return "must NOT have duplicate items", {}
    i, j = pair
    return f"must NOT have duplicate items (items ## {j} and {i} are identical)", {"i": i, "j": j}


def _scalar_item_types(schema: Mapping[str, Any]) -> set[str]:
    """Return the types ``items`` declares if all are scalar (AJV then uses a lookup table), else none."""
    item_schema = schema.get("items")
    types = item_schema.get("type") if isinstance(item_schema, Mapping) else None
    types = {types} if isinstance(types, str) else set(types) if isinstance(types, list) else set()
    return set() if types & {"object", "array"} else types


def _scalar_duplicate(items: list[Any], types: set[str]) -> tuple[int, int] | None:
    """Find AJV's (i, j) the way its lookup table does: scanning from the end, j the later index."""
    seen: dict[tuple[str, Any], int] = {}
    for index in range(len(items) - 1, -1, -1):
        value = items[index]
        kinds = _json_types(value)
        if not kinds & types:
            continue  # AJV skips items of another type; the `items` keyword reports those
        # The kind keeps true apart from 1 and "1" apart from 1, as JSON equality wants.
        key = ("number" if "number" in kinds else min(kinds), value)
        if key in seen:
            return index, seen[key]
        seen[key] = index
    return None


def _json_types(value: Any) -> set[str]:
    """Return the JSON Schema types a parsed JSON value belongs to."""
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int) or isinstance(value, float) and value.is_integer():
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"}
    if isinstance(value, str):
        return {"string"}
    return {"array"} if isinstance(value, list) else {"object"}


def _deep_duplicate(items: list[Any]) -> tuple[int, int] | None:
    """Find AJV's (i, j) the way its deep comparison does: i the later index, j the closest earlier one."""
    # AJV compares pairs, the last item against each earlier one going back, then the one before it...:
    # the pair it reports is the latest item that has an equal earlier one, with the closest such one.
    # One pass with each value's equality key finds the same pair in linear time.
    try:
        keys = [_json_key(item) for item in items]
    except _NoJsonKey:
        return _pairwise_duplicate(items)
    last_seen: dict[object, int] = {}
    pair = None
    for index, key in enumerate(keys):
        earlier = last_seen.get(key)
        if earlier is not None:
            pair = index, earlier
        last_seen[key] = index
    return pair


def _pairwise_duplicate(items: list[Any]) -> tuple[int, int] | None:
    """Find the pair of `_deep_duplicate` by comparing pairs (quadratic: only for values with no key)."""
    for later in range(len(items) - 1, 0, -1):
        for earlier in range(later - 1, -1, -1):
            if _json_equal(items[later], items[earlier]):
                return later, earlier
    return None


class _NoJsonKey(Exception):
    """A value that is not parsed JSON (NaN, an object of another type) has no equality key."""


def _json_key(value: Any) -> object:
    """Return a hashable key that two values share exactly when `_json_equal` holds between them."""
    # Strings, numbers and null are their own keys: none of them equals another kind, and Python's == and
    # hash agree across int and float, so 1 and 1.0 meet. Everything else is a tagged tuple, so a boolean
    # never meets 1 (True == 1 in Python) and an array never meets a tag. The common cases come first.
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is dict:
        # Object keys are unique, so the set of pairs is the object, whatever its key order.
        return "object", frozenset([(name, _json_key(element)) for name, element in value.items()])
    if kind is list:
        return "array", tuple([_json_key(element) for element in value])
    if isinstance(value, bool):
        return "boolean", value
    if isinstance(value, int | float):
        if value != value:
            raise _NoJsonKey  # NaN equals nothing, not even itself (a dict would find it by identity)
        return value
    if isinstance(value, dict | list):  # subclasses: `_json_equal` compares them as their base
        return _json_key(dict(value) if isinstance(value, dict) else list(value))
    try:
        hash(value)
    except TypeError as exc:
        raise _NoJsonKey from exc
    return "other", type(value), value  # `_json_equal` wants the same type and ==


def _describe_additional_items(error: ValidationError, validator: Validator) -> _Description:
    """Describe an ``additionalItems`` error (the limit is the number of tuple items)."""
    tuple_items = error.schema.get("items") if isinstance(error.schema, Mapping) else None
    limit = len(tuple_items) if isinstance(tuple_items, list) else 0
    return f"must NOT have more than {limit} items", {"limit": limit}


def _describe_fixed(
    message: str, params_key: str | None = None
) -> Callable[[ValidationError, Validator], _Description]:
    """Return a describer with a fixed message and the schema value under ``params_key``."""

    def describe(error: ValidationError, validator: Validator) -> _Description:
        value = error.validator_value
        text = message.format(value=_js_text(value))
        return text, ({params_key: value} if params_key else {})

    return describe


_DESCRIPTIONS: dict[str, Callable[[ValidationError, Validator], _Description]] = {
    "type": _describe_type,
    **dict.fromkeys(_COMPARISONS, _describe_comparison),
    **dict.fromkeys(_COUNT_LIMITS, _describe_count),
    "oneOf": _describe_one_of,
    "uniqueItems": _describe_unique_items,
    "additionalItems": _describe_additional_items,
    "enum": _describe_fixed("must be equal to one of the allowed values", "allowedValues"),
    "const": _describe_fixed("must be equal to constant", "allowedValue"),
    "multipleOf": _describe_fixed("must be multiple of {value}", "multipleOf"),
    "pattern": _describe_fixed('must match pattern "{value}"', "pattern"),
    "format": _describe_fixed('must match format "{value}"', "format"),
    "not": _describe_fixed("must NOT be valid"),
    "anyOf": _describe_fixed("must match a schema in anyOf"),
}


def _expand(error: ValidationError, instance_path: str, schema_path: str) -> Iterator[dict[str, Any]]:
    """Yield one AJV error per missing, extra or dependent property at one location."""
    instance = error.instance if isinstance(error.instance, Mapping) else {}
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    keyword = str(error.validator)

    def make(message: str, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "instancePath": instance_path,
            "schemaPath": schema_path,
            "keyword": keyword,
            "params": params,
            "message": message,
        }

    # _expandable() lets through only a list (required) or a mapping (dependencies) as the value.
    value = error.validator_value
    if keyword == "required":
        for name in value if isinstance(value, list) else ():
            if name not in instance:
                yield make(f"must have required property '{name}'", {"missingProperty": name})
    elif keyword == "additionalProperties":
        for name in _additional_properties(instance, schema):
            yield make("must NOT have additional properties", {"additionalProperty": name})
    else:  # dependencies / dependentRequired with a list of property names
        for name, needed in (value if isinstance(value, Mapping) else {}).items():
            if name in instance and isinstance(needed, list):
                for params in _missing_dependencies(name, needed, instance):
                    noun = "property" if len(needed) == 1 else "properties"
                    yield make(f"must have {noun} {params['deps']} when property {name} is present", params)


def _missing_dependencies(name: str, needed: list[str], instance: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield AJV's params for each property that ``name`` needs and the instance lacks."""
    for missing in needed:
        if missing not in instance:
            yield {
                "property": name,
                "missingProperty": missing,
                "depsCount": len(needed),
                "deps": ", ".join(needed),
            }


def _additional_properties(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """List the instance's properties that neither ``properties`` nor ``patternProperties`` cover."""
    declared = schema.get("properties") or {}
    patterns = [re.compile(pattern) for pattern in schema.get("patternProperties") or {}]
    return [name for name in instance if name not in declared and not any(pattern.search(name) for pattern in patterns)]


# --- small helpers -----------------------------------------------------------------------------------


def _json_pointer(path: Iterable[Any]) -> str:
    """Render a path as a JSON Pointer (RFC 6901), as AJV's instancePath."""
    return "".join("/" + str(step).replace("~", "~0").replace("/", "~1") for step in path)


def _schema_pointer(path: Iterable[Any]) -> str:
    """Render a schema path as a URI-fragment JSON Pointer, as AJV's schemaPath."""
    # AJV escapes each step like JavaScript's encodeURIComponent.
    return "#" + "".join("/" + quote(_json_pointer([step])[1:], safe="!*'()") for step in path)


def _js_text(value: Any) -> str:
    """Render a schema value the way JavaScript's template strings would (5 not 5.0, lists comma-joined)."""
    if isinstance(value, list):
        return ",".join(_js_text(element) for element in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _json_equal(left: Any, right: Any) -> bool:
    """Compare two JSON values the way JSON Schema does (``true`` is not ``1``; ``1`` is ``1.0``)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[key], right[key]) for key in left)
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right
