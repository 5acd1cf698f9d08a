"""The Apify Dataset API v2 routes: thin views over the repository."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any

from flask import Blueprint, Response, current_app, request

from ..errors import InvalidParameter
from ..formats import FORMATS, ExportOptions, check_options, render
from ..item_schema import field_statistics
from ..push_body import parse_items, read_body
from ..serializers import ListItemEncoder, dataset_resource
from ..transform import ItemTransform, transform_items
from .access import policy, repo, require_caller, resolve_for_read, resolve_for_write
from .envelopes import json_page_response, json_response
from .params import bool_param, int_param, list_param
from .storage_views import create_schema, list_arguments, page_head, update_changes

bp = Blueprint("apify", __name__, url_prefix="/v2")

NO_LIMIT_HEADER_VALUE = "999999999999"


def base_url() -> str:
    """Return the URL the emulator is reached at, for ``Location`` and ``consoleUrl``."""
    return request.host_url.rstrip("/")


def public_url() -> str:
    """Return the public base URL (``--public-url``), used for ``itemsPublicUrl``."""
    return (current_app.config.get("PUBLIC_URL") or base_url()).rstrip("/")


def render_dataset(dataset: Any, *, may_write: bool) -> dict[str, Any]:
    """Serialize one dataset; the signing key and public URL only for callers who may write."""
    return dataset_resource(dataset, repo(), base_url=base_url(), public_url=public_url(), may_write=may_write)


@bp.get("/datasets")
def list_datasets() -> Response:
    """List the caller's datasets."""
    page = repo().list_datasets(caller=require_caller(), **list_arguments())
    encoder: ListItemEncoder = current_app.extensions["storage_emulator_list_items"]
    return json_page_response(page_head(page), [encoder.encode(dataset) for dataset in page.items])


@bp.post("/datasets")
def get_or_create_dataset() -> Response:
    """Create a dataset; with ``?name=``, return the existing one of that name if there is one."""
    caller = require_caller()
    name = request.args.get("name")
    if name == "":
        name = None
    schema = create_schema()
    dataset, created = repo().get_or_create_dataset(name=name, schema=schema, owner=caller)
    if not created:
        return json_response({"data": render_dataset(dataset, may_write=True)}, 200)
    location = f"{base_url()}/v2/datasets/{dataset.id}"
    return json_response({"data": render_dataset(dataset, may_write=True)}, 201, headers={"Location": location})


@bp.get("/datasets/<ref>")
def get_dataset(ref: str) -> Response:
    """Return one dataset's metadata."""
    dataset, caller = resolve_for_read(repo(), ref)
    touched = repo().get_dataset(dataset.id, touch_accessed=True)
    return json_response({"data": render_dataset(touched, may_write=policy().may_write(touched, caller))})


@bp.put("/datasets/<ref>")
def update_dataset(ref: str) -> Response:
    """Rename a dataset, or set its ``generalAccess`` or ``title``."""
    dataset, _caller = resolve_for_write(repo(), ref)
    updated = repo().update_dataset(dataset.id, **update_changes())
    return json_response({"data": render_dataset(updated, may_write=True)})


@bp.delete("/datasets/<ref>")
def delete_dataset(ref: str) -> Response:
    """Delete a dataset."""
    dataset, _caller = resolve_for_write(repo(), ref)
    repo().delete_dataset(dataset.id)
    return Response(status=204)


@bp.post("/datasets/<ref>/items")
def push_items(ref: str) -> Response:
    """Append one item or an array of items, all or nothing."""
    dataset, _caller = resolve_for_write(repo(), ref)
    items = parse_items(read_body(request.stream, request.headers.get("Content-Encoding")))
    repo().push_items(dataset.id, items)  # checks the items against the dataset schema
    location = f"{base_url()}/v2/datasets/{dataset.id}/items"
    return json_response({}, 201, headers={"Location": location})


@bp.route("/datasets/<ref>/items", methods=["GET", "HEAD"])
def read_items(ref: str) -> Response:
    """Read a page of items in one of seven formats, with the five pagination headers."""
    args = request.args
    fmt = (args.get("format") or "json").lower()
    offset = int_param(args, "offset", 0) or 0
    limit = int_param(args, "limit", None) or None  # 0 or absent: no limit
    desc = bool_param(args, "desc")
    transform = _item_transform(args)
    bom = bool_param(args, "bom", fmt == "csv")
    skip_header_row = bool_param(args, "skipHeaderRow")
    attachment = bool_param(args, "attachment")
    dataset, _caller = resolve_for_read(repo(), ref, signature=args.get("signature"))
    if args.get("view"):
        transform = transform.with_view(_view(dataset.dataset_schema, args["view"]))
    transform.validate()
    title = dataset.title or dataset.name or dataset.id
    options = ExportOptions(
        bom=bom,
        delimiter=args.get("delimiter") or ",",
        skip_header_row=skip_header_row,
        xml_root=args.get("xmlRoot") or "items",
        xml_row=args.get("xmlRow") or "item",
        fields=transform.output_fields or transform.fields,
        feed_title=f"Dataset {title}",
        feed_link=f"{base_url()}/view/datasets/{dataset.id}",
    )
    check_options(fmt, options)  # every parameter is checked before the read is counted
    page = repo().read_items(dataset.id, offset=offset, limit=limit, desc=desc, count_read=request.method == "GET")
    body = render(fmt, lambda: transform_items(page.items(), transform), options)
    headers = {
        "X-Apify-Pagination-Offset": str(offset),
        "X-Apify-Pagination-Limit": str(limit) if limit is not None else NO_LIMIT_HEADER_VALUE,
        "X-Apify-Pagination-Count": str(page.count),
        "X-Apify-Pagination-Total": str(page.total),
        "X-Apify-Pagination-Desc": "true" if desc else "false",
    }
    if attachment:
        headers["Content-Disposition"] = f'attachment; filename="dataset_{page.dataset.id}.{fmt}"'
    if request.method == "HEAD":
        return Response(status=200, headers=headers, content_type=FORMATS[fmt])
    return Response(_started(body), status=200, headers=headers, content_type=FORMATS[fmt], direct_passthrough=True)


def _started(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Render the first chunk now, so that a damaged item file in it is a 409, not a cut-off 200.

    A page smaller than a chunk (and a tabular export, which reads every item for its columns first) is
    then checked whole before the status is sent. Past the first chunk the status is already out: a
    damaged file there aborts the transfer, so the client sees an error, never a short body.
    """
    first = next(chunks, None)
    return chain([] if first is None else [first], chunks)


def _item_transform(args: Any) -> ItemTransform:
    clean = bool_param(args, "clean")
    return ItemTransform(
        fields=list_param(args, "fields"),
        output_fields=list_param(args, "outputFields"),
        omit=list_param(args, "omit"),
        unwind=list_param(args, "unwind"),
        flatten=list_param(args, "flatten"),
        skip_hidden=clean or bool_param(args, "skipHidden"),
        skip_empty=clean or bool_param(args, "skipEmpty"),
        skip_failed_pages=bool_param(args, "skipFailedPages"),
    )


def _view(schema: dict[str, Any] | None, name: str) -> dict[str, Any]:
    views = (schema or {}).get("views") or {}
    view = views.get(name) if isinstance(views, dict) else None
    if not isinstance(view, dict):
        known = ", ".join(views) if isinstance(views, dict) and views else "none"
        raise InvalidParameter("view", f"the dataset schema has no view '{name}' (views: {known})")
    return view


@bp.get("/datasets/<ref>/statistics")
def get_statistics(ref: str) -> Response:
    """Return field statistics for the fields the dataset schema declares."""
    dataset, _caller = resolve_for_read(repo(), ref)
    page = repo().read_items(dataset.id, count_read=False)
    stats = field_statistics(page.items(), page.dataset.dataset_schema)
    return json_response({"data": {"fieldStatistics": stats}})
