"""Render every format, parse it back with a real parser, and compare with the items."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import openpyxl
import pytest

from storage_emulator.errors import InvalidParameter
from storage_emulator.formats import CHUNK_SIZE, FORMATS, ExportOptions, render

ITEMS: list[dict[str, Any]] = [
    {"name": "Paul", "age": 40, "ok": True, "score": 1.5, "address": {"city": "Chicago", "zip": None}},
    {"name": 'Ann, "the" <b>', "tags": ["x", "y"], "note": "line1\nline2", "age": None},
    {"emoji": "žluť 🐎", "name": "=1+1"},
]
ITEMS_COLUMNS = ["name", "age", "ok", "score", "address/city", "address/zip"]
ITEMS_COLUMNS += ["tags/0", "tags/1", "note", "emoji"]


def factory(items: list[dict[str, Any]]) -> Callable[[], Iterator[dict[str, Any]]]:
    """Return a factory that hands out a fresh iterator over ``items`` on each call."""
    return lambda: iter(items)


def body(fmt: str, items: list[dict[str, Any]], **options: Any) -> bytes:
    """Render ``items`` in ``fmt`` and join the chunks."""
    return b"".join(render(fmt, factory(items), ExportOptions(**options)))


def csv_rows(data: bytes, delimiter: str = ",") -> list[list[str]]:
    """Parse a csv body (BOM tolerated) into rows."""
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))


def test_media_types_are_exactly_the_contracts() -> None:
    assert FORMATS == {
        "json": "application/json; charset=utf-8",
        "jsonl": "application/jsonl",
        "csv": "text/csv; charset=utf-8",
        "html": "text/html; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xml": "application/xml; charset=utf-8",
        "rss": "application/rss+xml; charset=utf-8",
    }


@pytest.mark.parametrize("fmt", ["yaml", "", "JSON", "xls"])
def test_unknown_format_is_rejected_before_any_item_is_read(fmt: str) -> None:
    def untouchable() -> Iterator[dict[str, Any]]:
        raise AssertionError("the items must not be read")

    with pytest.raises(InvalidParameter) as caught:
        render(fmt, untouchable, ExportOptions())
    assert caught.value.parameter == "format"
    assert "json, jsonl, csv, html, xlsx, xml, rss" in caught.value.rule


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_render_reads_nothing_until_the_first_chunk_is_pulled(fmt: str) -> None:
    calls = []

    def counting() -> Iterator[dict[str, Any]]:
        calls.append(1)
        return iter(ITEMS)

    chunks = render(fmt, counting, ExportOptions())
    assert calls == []
    assert b"".join(chunks)
    assert len(calls) == (2 if fmt in ("csv", "html", "xlsx") else 1)


# --- json, jsonl -------------------------------------------------------------------------------------


def test_json_is_an_array_of_the_items() -> None:
    data = body("json", ITEMS)
    assert json.loads(data.decode("utf-8")) == ITEMS
    assert "žluť 🐎".encode() in data  # UTF-8, not \u escapes


def test_json_of_no_items_is_an_empty_array() -> None:
    assert json.loads(body("json", [])) == []


def test_json_has_no_bom_unless_asked() -> None:
    assert body("json", ITEMS)[:1] == b"["
    with_bom = body("json", ITEMS, bom=True)
    assert with_bom.startswith(b"\xef\xbb\xbf")
    assert json.loads(with_bom.decode("utf-8-sig")) == ITEMS


def test_json_keeps_a_lone_surrogate_as_valid_json() -> None:
    item = json.loads('{"s": "a\\ud800b"}')
    assert json.loads(body("json", [item])) == [item]


def test_jsonl_is_one_compact_object_per_line() -> None:
    data = body("jsonl", ITEMS).decode("utf-8")
    lines = data.split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == ITEMS
    assert body("jsonl", []) == b""


# --- csv ---------------------------------------------------------------------------------------------


def test_csv_has_a_bom_by_default_and_a_header_of_all_columns_in_order_of_first_appearance() -> None:
    data = body("csv", ITEMS)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(data)
    assert rows[0] == ITEMS_COLUMNS
    assert rows[1] == ["Paul", "40", "true", "1.5", "Chicago", "", "", "", "", ""]
    assert rows[2] == ['Ann, "the" <b>', "", "", "", "", "", "x", "y", "line1\nline2", ""]
    assert rows[3] == ["=1+1", "", "", "", "", "", "", "", "", "žluť 🐎"]
    assert len(rows) == 4


def test_csv_names_nested_columns_by_path() -> None:
    item = {"a": {"b": {"c": 1}}, "list": [{"x": 1}, [2, 3]], "empty": {}, "none": [], "flat.key": 4}
    assert csv_rows(body("csv", [item])) == [
        ["a/b/c", "list/0/x", "list/1/0", "list/1/1", "flat.key"],
        ["1", "1", "2", "3", "4"],
    ]


def test_csv_without_bom() -> None:
    data = body("csv", ITEMS, bom=False)
    assert data.startswith(b"name,")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiter(delimiter: str) -> None:
    data = body("csv", [{"a": "1;2", "b": "x\ty"}], delimiter=delimiter)
    assert data.decode("utf-8-sig").splitlines()[0] == f"a{delimiter}b"
    assert csv_rows(data, delimiter) == [["a", "b"], ["1;2", "x\ty"]]


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "\n"])
def test_csv_bad_delimiter_is_rejected_at_once(delimiter: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        render("csv", factory(ITEMS), ExportOptions(delimiter=delimiter))
    assert caught.value.parameter == "delimiter"


def test_csv_skip_header_row() -> None:
    rows = csv_rows(body("csv", [{"a": 1, "b": 2}], skip_header_row=True))
    assert rows == [["1", "2"]]


def test_csv_of_no_items_is_only_the_bom_or_the_fields_header() -> None:
    assert body("csv", []) == b"\xef\xbb\xbf"
    assert body("csv", [], bom=False) == b""
    assert body("csv", [], fields=("a", "b")) == b"\xef\xbb\xbfa,b\r\n"


def test_csv_fields_fix_the_column_order_and_keep_columns_no_item_has() -> None:
    items = [{"b": {"x": 1, "y": 2}, "a": 1}, {"a": 2, "b": {"z": 3}}]
    rows = csv_rows(body("csv", items, fields=("a", "missing", "b")))
    assert rows == [["a", "missing", "b/x", "b/y", "b/z"], ["1", "", "1", "2", ""], ["2", "", "", "", "3"]]


def test_tabular_formats_stop_at_2000_columns() -> None:
    item = {f"c{number}": number for number in range(2100)}
    rows = csv_rows(body("csv", [item]))
    assert len(rows[0]) == 2000
    assert rows[0][-1] == "c1999"
    assert rows[1][-1] == "1999"


def test_tabular_column_names_are_cut_at_200_characters() -> None:
    rows = csv_rows(body("csv", [{"k" * 250: 1}]))
    assert rows[0] == ["k" * 200]


# --- html --------------------------------------------------------------------------------------------


class TableParser(HTMLParser):
    """Collect the cells of an HTML table, row by row, and whether each row is a header row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[bool, list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append((False, []))
        elif tag in ("th", "td"):
            self._cell = []
            if tag == "th":
                self.rows[-1] = (True, self.rows[-1][1])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            self.rows[-1][1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_is_an_escaped_table_with_a_header_row() -> None:
    data = body("html", ITEMS)
    assert not data.startswith(b"\xef\xbb\xbf")
    parser = TableParser()
    parser.feed(data.decode("utf-8"))
    header, *rows = parser.rows
    assert header == (True, ITEMS_COLUMNS)
    assert rows[0] == (False, ["Paul", "40", "true", "1.5", "Chicago", "", "", "", "", ""])
    assert rows[1] == (False, ['Ann, "the" <b>', "", "", "", "", "", "x", "y", "line1\nline2", ""])
    assert rows[2] == (False, ["=1+1", "", "", "", "", "", "", "", "", "žluť 🐎"])
    assert b"<b>" not in data


# --- xlsx --------------------------------------------------------------------------------------------


def test_xlsx_is_a_workbook_with_a_header_row_and_typed_cells() -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(body("xlsx", ITEMS)))
    assert len(workbook.worksheets) == 1
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert rows == [
        ("name", "age", "ok", "score", "address/city", "address/zip", "tags/0", "tags/1", "note", "emoji"),
        ("Paul", 40, True, 1.5, "Chicago", None, None, None, None, None),
        ('Ann, "the" <b>', None, None, None, None, None, "x", "y", "line1\nline2", None),
        ("=1+1", None, None, None, None, None, None, None, None, "žluť 🐎"),
    ]
    cell = workbook.worksheets[0]["A4"]
    assert cell.data_type == "s"  # data, not a formula


def test_xlsx_survives_characters_excel_refuses_and_huge_numbers() -> None:
    item = {"ctrl": "a\x01b\x1fc", "big": 2**60, "error": "#N/A"}
    sheet = openpyxl.load_workbook(io.BytesIO(body("xlsx", [item]))).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows == [("ctrl", "big", "error"), ("abc", str(2**60), "#N/A")]


def test_xlsx_of_no_items_is_still_a_workbook() -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(body("xlsx", [], fields=("a", "b"))))
    assert list(workbook.worksheets[0].iter_rows(values_only=True)) == [("a", "b")]


def test_xlsx_is_streamed_in_chunks() -> None:
    # Hashes, so that the zip cannot squeeze the sheet into a single chunk.
    items = [{"n": n, "hash": hashlib.sha256(str(n).encode()).hexdigest()} for n in range(3000)]
    chunks = list(render("xlsx", factory(items), ExportOptions()))
    assert len(chunks) > 1
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)


# --- xml, rss ----------------------------------------------------------------------------------------


def test_xml_turns_properties_into_tags() -> None:
    root = ET.fromstring(body("xml", ITEMS))
    assert root.tag == "items"
    rows = list(root)
    assert [row.tag for row in rows] == ["item", "item", "item"]
    paul = rows[0]
    assert [child.tag for child in paul] == ["name", "age", "ok", "score", "address"]
    assert paul.findtext("name") == "Paul"
    assert paul.findtext("age") == "40"
    assert paul.findtext("ok") == "true"
    assert paul.findtext("address/city") == "Chicago"
    zip_code = paul.find("address/zip")
    assert zip_code is not None and zip_code.text is None and len(zip_code) == 0
    ann = rows[1]
    assert ann.findtext("name") == 'Ann, "the" <b>'
    assert [tag.text for tag in ann.findall("tags")] == ["x", "y"]
    assert ann.findtext("note") == "line1\nline2"
    assert ann.find("age") is not None and ann.find("age").text is None  # type: ignore[union-attr]
    assert rows[2].findtext("emoji") == "žluť 🐎"


def test_xml_arrays_of_objects_repeat_the_tag_as_in_apifys_example() -> None:
    item = {
        "name": "Rashida Jones",
        "address": [
            {"type": "home", "street": "21st", "city": "Chicago"},
            {"type": "office", "street": None, "city": None},
        ],
    }
    data = body("xml", [item]).decode("utf-8")
    assert (
        "<address><type>home</type><street>21st</street><city>Chicago</city></address>"
        "<address><type>office</type><street/><city/></address>"
    ) in data


def test_xml_at_and_hash_give_attributes_and_text() -> None:
    item = {"address": [{"@": {"type": "home"}, "street": "21st"}, {"@": {"type": "office"}, "#": "unknown"}]}
    row = ET.fromstring(body("xml", [item]))[0]
    home, office = row.findall("address")
    assert home.attrib == {"type": "home"} and home.findtext("street") == "21st"
    assert office.attrib == {"type": "office"} and office.text == "unknown"


def test_xml_sanitizes_tag_names_and_drops_characters_xml_cannot_carry() -> None:
    item = {"#debug": 1, "1st": 2, "a b/c": 3, "": 4, "ok-name.1": 5, "ctrl": "x\x00\x1fy"}
    row = ET.fromstring(body("xml", [item]))[0]
    assert [child.tag for child in row] == ["_debug", "_1st", "a_b_c", "_", "ok-name.1", "ctrl"]
    assert row.findtext("ctrl") == "xy"


def test_xml_root_and_row_names_and_bom() -> None:
    data = body("xml", [{"a": 1}], xml_root="results", xml_row="page", bom=True)
    assert data.startswith(b"\xef\xbb\xbf<?xml")
    root = ET.fromstring(data.decode("utf-8-sig").encode())
    assert root.tag == "results"
    assert [row.tag for row in root] == ["page"]


def test_xml_of_no_items_is_an_empty_root() -> None:
    root = ET.fromstring(body("xml", []))
    assert root.tag == "items" and len(root) == 0


def test_rss_is_an_rss_2_feed_with_one_item_per_item() -> None:
    rss = ET.fromstring(body("rss", ITEMS, feed_title="My feed", feed_link="http://127.0.0.1/x"))
    assert rss.tag == "rss" and rss.attrib == {"version": "2.0"}
    channel = rss.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "My feed"
    assert channel.findtext("link") == "http://127.0.0.1/x"
    assert channel.findtext("description")
    items = channel.findall("item")
    assert len(items) == 3
    assert items[0].findtext("name") == "Paul"
    assert items[0].findtext("address/city") == "Chicago"
    assert [tag.text for tag in items[1].findall("tags")] == ["x", "y"]


# --- streaming ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "html", "xml", "rss"])
def test_text_formats_come_in_chunks_of_about_64_kib(fmt: str) -> None:
    items = [{"n": number, "text": "x" * 100} for number in range(3000)]
    chunks = list(render(fmt, factory(items), ExportOptions()))
    assert len(chunks) > 3
    assert all(len(chunk) < CHUNK_SIZE + 1024 for chunk in chunks)
    assert all(len(chunk) >= CHUNK_SIZE for chunk in chunks[:-1])


def generated_items(count: int) -> Callable[[], Iterator[dict[str, Any]]]:
    """Return a factory of ``count`` freshly built items, none of them kept."""

    def items() -> Iterator[dict[str, Any]]:
        for number in range(count):
            yield {"id": number, "name": f"item {number}", "text": "lorem " * 20, "nested": {"tags": ["a"]}}

    return items


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_render_streams_with_flat_memory(fmt: str) -> None:
    count = 50_000
    tracemalloc.start()
    try:
        total = 0
        for chunk in render(fmt, generated_items(count), ExportOptions()):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # About 0.3 MB held at the peak for a body of 7 to 10 MB: nothing grows with the item count.
    assert total > 5_000_000
    assert peak < 1_000_000
