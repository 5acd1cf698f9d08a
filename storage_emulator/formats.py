"""Streaming writers for the seven item formats of ``GET /v2/datasets/{id}/items``.

Every writer yields ``bytes`` in chunks of about 64 KiB and never holds the whole body. Tabular formats
(csv, html, xlsx) read the items twice through ``items_factory``: once to learn the columns, once to
write the rows. xlsx is a zip that has to be finished before it can be sent, so it is built in a
temporary file (openpyxl's write-only mode keeps rows out of memory) and then streamed from there.
"""

from __future__ import annotations

import csv
import html
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES

from storage_emulator.errors import InvalidParameter

Item = dict[str, Any]
ItemsFactory = Callable[[], Iterable[Item]]

FORMATS: dict[str, str] = {
    "json": "application/json; charset=utf-8",
    "jsonl": "application/jsonl",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xml": "application/xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
}

CHUNK_SIZE = 64 * 1024
BOM = "\ufeff"
# Apify's limits for tabular formats (API reference, "Get dataset items"): 2000 columns, and column
# names of at most 200 characters. Extra columns are dropped and long names cut.
MAX_COLUMNS = 2000
MAX_COLUMN_NAME = 200
# Nested values become columns named by their path joined with "/": `location/lat`, `images/0`,
# `metadata/jsonLd/0/headline`. The docs do not state this; it is what Apify's own csv/xlsx exports
# name their columns, as the many tools that read those files show (e.g. `crawl/loadedUrl`). A `flatten`
# parameter has already turned its fields into top-level `a.b` keys, which stay as they are.
COLUMN_PATH_SEPARATOR = "/"
# Excel refuses longer cells, and numbers beyond 2**53 would silently lose digits as doubles.
XLSX_MAX_CELL = 32767
XLSX_MAX_EXACT_INT = 2**53


@dataclass(frozen=True)
class ExportOptions:
    """Hold the format options of an items request; tabular-only and xml-only ones are ignored elsewhere."""

    bom: bool | None = None
    delimiter: str = ","
    skip_header_row: bool = False
    xml_root: str = "items"
    xml_row: str = "item"
    fields: tuple[str, ...] | None = None
    feed_title: str = "Dataset items"
    feed_description: str = "Items in the dataset."
    feed_link: str = ""


def render(fmt: str, items_factory: ItemsFactory, options: ExportOptions) -> Iterator[bytes]:
    """Stream the items in format ``fmt`` as byte chunks; raise ``InvalidParameter`` for an unknown format.

    Parameters are checked now, so a bad request fails before a response starts; the items are read only
    as the chunks are pulled.
    """
    check_options(fmt, options)
    if fmt == "xlsx":
        return _xlsx_chunks(items_factory, options)
    bom = options.bom if options.bom is not None else fmt == "csv"
    return _chunked(_TEXT_WRITERS[fmt](items_factory, options), bom=bom)


def check_options(fmt: str, options: ExportOptions) -> None:
    """Raise ``InvalidParameter`` for an unknown format or a bad csv delimiter, before any item is read."""
    if fmt not in FORMATS:
        raise InvalidParameter("format", "must be one of json, jsonl, csv, html, xlsx, xml, rss")
    if fmt == "csv":
        _check_delimiter(options.delimiter)


def _chunked(pieces: Iterable[str], *, bom: bool) -> Iterator[bytes]:
    """Encode small string pieces as UTF-8 and batch them into chunks of about ``CHUNK_SIZE`` bytes."""
    buffer = bytearray(BOM.encode() if bom else b"")
    for piece in pieces:
        # A lone surrogate (JSON allows "\\ud800") cannot be UTF-8; written back as an escape it is still
        # valid JSON, and readable text elsewhere.
        buffer += piece.encode("utf-8", "backslashreplace")
        if len(buffer) >= CHUNK_SIZE:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


# --- json, jsonl ---------------------------------------------------------------------------------


_COMPACT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # shared: see item_store


def _dumps(item: Any) -> str:
    return _COMPACT_ENCODER.encode(item)


def _json_pieces(items_factory: ItemsFactory, options: ExportOptions) -> Iterator[str]:
    yield "["
    separator = ""
    for item in items_factory():
        yield separator
        yield _dumps(item)
        separator = ",\n"
    yield "]"


def _jsonl_pieces(items_factory: ItemsFactory, options: ExportOptions) -> Iterator[str]:
    for item in items_factory():
        yield _dumps(item)
        yield "\n"


# --- tabular: columns --------------------------------------------------------------------------------


def _cells(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(column, scalar)`` for every leaf under ``value``; empty objects and arrays give none."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _cells(child, f"{path}{COLUMN_PATH_SEPARATOR}{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _cells(child, f"{path}{COLUMN_PATH_SEPARATOR}{index}")
    else:
        yield path[:MAX_COLUMN_NAME], value


def _row_cells(item: Item) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(top-level key, column, scalar)`` for every leaf of the item."""
    for key, value in item.items():
        for column, scalar in _cells(value, key):
            yield key, column, scalar


def _columns(items_factory: ItemsFactory, fields: tuple[str, ...] | None) -> list[str]:
    """Read all items once and list their columns in order of first appearance, or grouped by ``fields``."""
    root_of: dict[str, str] = {}
    for item in items_factory():
        for key, column, _ in _row_cells(item):
            # Past the limit nothing new can make it into the table, so stop collecting names (and memory).
            if column not in root_of and len(root_of) < MAX_COLUMNS:
                root_of[column] = key
    if fields is None:
        return list(root_of)
    return _columns_by_fields(root_of, fields)[:MAX_COLUMNS]


def _columns_by_fields(root_of: Mapping[str, str], fields: tuple[str, ...]) -> list[str]:
    # `fields` fixes the output format: each field keeps its place and gets a column even when no item
    # has it; its nested columns follow in order of first appearance.
    by_root: dict[str, list[str]] = {}
    for column, root in root_of.items():
        by_root.setdefault(root, []).append(column)
    columns: list[str] = []
    for field in dict.fromkeys(fields):
        columns.extend(by_root.pop(field, [field[:MAX_COLUMN_NAME]]))
    for leftover in by_root.values():
        columns.extend(leftover)
    return list(dict.fromkeys(columns))


def _rows(items_factory: ItemsFactory, columns: list[str]) -> Iterator[list[Any]]:
    """Read all items a second time and yield each as a list of scalars (``None`` where it has nothing)."""
    index = {column: position for position, column in enumerate(columns)}
    for item in items_factory():
        row: list[Any] = [None] * len(columns)
        for _, column, scalar in _row_cells(item):
            position = index.get(column)
            if position is not None:
                row[position] = scalar
        yield row


def _text(value: Any) -> str:
    """Render a scalar as csv/html text the way JSON spells it: ``true``, ``1.5``; null is empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _dumps(value)


# --- csv, html ----------------------------------------------------------------------------------------


class _LineSink:
    """Collect what ``csv.writer`` writes, one row at a time."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def drain(self) -> Iterator[str]:
        yield from self.parts
        self.parts.clear()


def _csv_pieces(items_factory: ItemsFactory, options: ExportOptions) -> Iterator[str]:
    columns = _columns(items_factory, options.fields)
    sink = _LineSink()
    writer = csv.writer(sink, delimiter=options.delimiter, lineterminator="\r\n")
    # No columns (no items, no fields): no header line either, rather than a blank one.
    if columns and not options.skip_header_row:
        writer.writerow(columns)
        yield from sink.drain()
    for row in _rows(items_factory, columns):
        writer.writerow([_text(value) for value in row])
        yield from sink.drain()


def _check_delimiter(delimiter: str) -> None:
    # One character, and not one that csv needs for quoting or line ends (the output would not parse back).
    if len(delimiter) != 1 or delimiter in '"\r\n\x00':
        raise InvalidParameter("delimiter", "must be a single character other than a quote, a line break or NUL")


def _html_pieces(items_factory: ItemsFactory, options: ExportOptions) -> Iterator[str]:
    columns = _columns(items_factory, options.fields)
    yield '<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>Dataset items</title></head>\n'
    yield "<body>\n<table>\n"
    yield "<tr>" + "".join(f"<th>{html.escape(column)}</th>" for column in columns) + "</tr>\n"
    for row in _rows(items_factory, columns):
        yield "<tr>" + "".join(f"<td>{html.escape(_text(value))}</td>" for value in row) + "</tr>\n"
    yield "</table>\n</body>\n</html>\n"


# --- xlsx ---------------------------------------------------------------------------------------------


def _xlsx_chunks(items_factory: ItemsFactory, options: ExportOptions) -> Iterator[bytes]:
    # Spooled: a small workbook never touches the disk, a big one moves there past 8 MiB.
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        _write_workbook(spool, items_factory, options)
        spool.seek(0)
        while chunk := spool.read(CHUNK_SIZE):
            yield chunk


def _write_workbook(target: IO[bytes], items_factory: ItemsFactory, options: ExportOptions) -> None:
    columns = _columns(items_factory, options.fields)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Items")
    sheet.append([_xlsx_value(sheet, column) for column in columns])
    for row in _rows(items_factory, columns):
        sheet.append([_xlsx_value(sheet, value) for value in row])
    workbook.save(target)


_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_value(sheet: Any, value: Any) -> Any:
    """Turn a scalar into what an Excel cell can hold, keeping numbers and booleans typed."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) <= XLSX_MAX_EXACT_INT else str(value)
    text = _XLSX_ILLEGAL.sub("", str(value))[:XLSX_MAX_CELL]
    if text.startswith("=") or text in ERROR_CODES:
        # openpyxl would store "=..." as a formula and "#N/A" as an error; data is text.
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        return cell
    return text


# --- xml, rss -----------------------------------------------------------------------------------------

# XML 1.0 (5th edition) name characters; anything else in a property name becomes "_".
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NAME_REST = _NAME_START + r"\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"
_INVALID_NAME_CHAR = re.compile(f"[^{_NAME_REST}]")
_VALID_NAME_START = re.compile(f"[{_NAME_START}]")
# Characters XML 1.0 cannot carry at all, not even escaped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
ATTRIBUTES_KEY = "@"
TEXT_KEY = "#"


def xml_tag(name: str) -> str:
    """Make ``name`` a valid XML element name: invalid characters become ``_``, a bad start gets ``_``."""
    tag = _INVALID_NAME_CHAR.sub("_", name)
    if not tag or not _VALID_NAME_START.match(tag):
        tag = "_" + tag
    return tag


def _xml_text(value: Any) -> str:
    text = value if isinstance(value, str) else _dumps(value)
    return html.escape(_XML_ILLEGAL.sub("", text), quote=False)


def _xml_attributes(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    # Keyed by the sanitized name: two keys that sanitize alike must not give a duplicate attribute.
    attributes = {
        xml_tag(key): html.escape(_XML_ILLEGAL.sub("", _text(child)), quote=True)
        for key, child in value.items()
        if not isinstance(child, dict | list)
    }
    return "".join(f' {name}="{text}"' for name, text in attributes.items())


def _xml_element(name: str, value: Any) -> Iterator[str]:
    """Yield ``value`` as element(s) ``name``: arrays repeat the tag, objects nest, null is empty."""
    if isinstance(value, list):
        for element in value:
            yield from _xml_element(name, element)
        return
    tag = xml_tag(name)
    if value is None:
        yield f"<{tag}/>"
    elif isinstance(value, dict):
        yield from _xml_object(tag, value)
    else:
        yield f"<{tag}>{_xml_text(value)}</{tag}>"


def _xml_object(tag: str, value: Item) -> Iterator[str]:
    # Apify's XML extension (docs.apify.com/storage/dataset, "XML format extension"): the "@" object
    # gives the element's attributes, and "#" its text when it has no child elements.
    attributes = _xml_attributes(value.get(ATTRIBUTES_KEY))
    children = [(key, child) for key, child in value.items() if key not in (ATTRIBUTES_KEY, TEXT_KEY)]
    if children:
        yield f"<{tag}{attributes}>"
        for key, child in children:
            yield from _xml_element(key, child)
        yield f"</{tag}>"
    elif value.get(TEXT_KEY) is not None:
        yield f"<{tag}{attributes}>{_xml_text(value[TEXT_KEY])}</{tag}>"
    else:
        yield f"<{tag}{attributes}/>"


def _xml_pieces(items_factory: ItemsFactory, options: ExportOptions) -> Iterator[str]:
    root = xml_tag(options.xml_root)
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>\n'
    for item in items_factory():
        yield from _xml_object(xml_tag(options.xml_row), item)
        yield "\n"
    yield f"</{root}>\n"


def _rss_pieces(items_factory: ItemsFactory, options: ExportOptions) -> Iterator[str]:
    yield '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n'
    yield f"<title>{_xml_text(options.feed_title)}</title>\n"
    yield f"<link>{_xml_text(options.feed_link)}</link>\n"
    yield f"<description>{_xml_text(options.feed_description)}</description>\n"
    for item in items_factory():
        yield from _xml_object("item", item)
        yield "\n"
    yield "</channel>\n</rss>\n"


_TEXT_WRITERS: dict[str, Callable[[ItemsFactory, ExportOptions], Iterator[str]]] = {
    "json": _json_pieces,
    "jsonl": _jsonl_pieces,
    "csv": _csv_pieces,
    "html": _html_pieces,
    "xml": _xml_pieces,
    "rss": _rss_pieces,
}
