"""Schemathesis over the official Apify dataset OpenAPI document, against a live emulator.

Every operation of ``apify-datasets.openapi.json`` gets generated requests, valid and invalid, with a
fixed seed and a bounded number of examples. Two checks run on every answer: it is not a 5xx
(``not_a_server_error``), and its body matches the schema the document gives for its status
(``response_schema_conformance``).

The other checks stay off, because the official document is looser or stricter than the service it
describes (a long all-checks run shows each of these on a correct emulator):

- ``status_code_conformance``: statuses the service answers are missing from the document, e.g. 409
  ``name-not-unique`` on a rename and 413/415 on most operations.
- ``positive_data_acceptance``: the document leaves out the service's rules (dataset names of letters,
  digits and ``-``; ``limit`` an integer; ``view`` one the dataset's schema defines), and it offers
  ``Content-Encoding: br``/``gzip`` while schemathesis sends the body uncompressed, which is rightly a 400.
- ``negative_data_rejection``: the service ignores unknown query parameters and accepts an empty
  ``Content-Encoding``, as the real one does.
- ``ignored_auth``: the emulator runs in open mode here, where no token is needed.
- ``unsupported_method``: it needs the coverage phase's undeclared methods, which this suite does not
  generate; tests/test_method_not_allowed.py pins the 405 and its ``Allow`` header.
- The stateful checks (``use_after_free``, ``ensure_resource_availability``): this suite runs no
  stateful phase; the long run outside the suite does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import LiveServer
from flask import Flask
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from storage_emulator import DatasetRepository
from storage_emulator.web.params import TRUE_VALUES

# CI checks the repository out with ../shared beside it.
SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "apify-datasets.openapi.json"
if not SPEC.is_file():
    pytest.skip(
        f"the OpenAPI document is not at {SPEC} (../shared/spec beside the repository)", allow_module_level=True
    )

SCHEMA = schemathesis.openapi.from_path(SPEC)
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}
EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[tuple[LiveServer, list[str]]]:
    """Serve a root holding two datasets with items; yield the server and refs that reach them."""
    from storage_emulator.web import create_app

    # Each operation gets its own root: a generated DELETE removes a seeded dataset for good.
    root = tmp_path / "storage"
    repo = DatasetRepository(root)
    refs = []
    for name in ("fuzz-a", "fuzz-b"):
        dataset, _created = repo.get_or_create_dataset(name)
        repo.push_items(dataset.id, [{"n": 1, "s": "x", "list": [1, 2]}, {"n": 2, "nested": {"k": None}}])
        refs += [dataset.id, f"~{name}"]
    app: Flask = create_app({"ROOT": str(root), "TESTING": True})
    with LiveServer(app) as server:
        yield server, refs


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value)
@pytest.mark.parametrize("label", list(OPERATIONS))
def test_operation_answers_no_5xx_and_matches_its_schema(
    fuzzed: tuple[LiveServer, list[str]], label: str, mode: GenerationMode
) -> None:
    server, refs = fuzzed
    operation = OPERATIONS[label]
    strategies = [operation.as_strategy(generation_mode=mode)]
    if "{datasetId}" in operation.path:
        # Random ids mostly miss; these hit the seeded datasets (by id and by ~name).
        strategies += [operation.as_strategy(generation_mode=mode, path_parameters={"datasetId": ref}) for ref in refs]

    @seed(20261204)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def check(case: Any) -> None:
        response = case.call(base_url=server.url)
        checks = [not_a_server_error, response_schema_conformance]
        if str((case.query or {}).get("bom", "")).strip().lower() in TRUE_VALUES:
            # `bom=true` asks for a UTF-8 byte-order mark before the JSON, which the schema check cannot parse.
            checks = [not_a_server_error]
        case.validate_response(response, checks=checks)

    check()
