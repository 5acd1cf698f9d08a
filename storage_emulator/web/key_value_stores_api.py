"""The Apify Key-Value Store API v2 routes: thin views over the key-value store repository."""

from __future__ import annotations

import tempfile
import zipfile
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from ..key_value_stores import KEYS_LIMIT_MAX, KeyValueStoreRepository
from ..kv_serializers import key_value_store_resource, keys_page
from ..models import KeyValueStoreMetadata
from ..push_body import decoded_chunks
from ..record_store import iter_file
from ..signing import verify_record_signature
from .access import policy, require_caller, resolve_for_read, resolve_for_write
from .apify_api import base_url, public_url
from .envelopes import json_response
from .params import bool_param, int_param
from .storage_views import create_schema, list_arguments, page_head, update_changes

bp = Blueprint("key_value_stores", __name__, url_prefix="/v2/key-value-stores")

DEFAULT_RECORD_TYPE = "application/octet-stream"
ZIP_SPOOL_BYTES = 8 * 1024 * 1024


def stores() -> KeyValueStoreRepository:
    """Return the app's key-value store repository."""
    return current_app.extensions["storage_emulator_key_value_stores"]  # type: ignore[no-any-return]


def render_store(store: KeyValueStoreMetadata, *, may_write: bool) -> dict[str, Any]:
    """Serialize one store; the signing key and signed URLs only for callers who may write."""
    return key_value_store_resource(
        store, stores().policy, base_url=base_url(), public_url=public_url(), may_write=may_write
    )


@bp.get("")
def list_key_value_stores() -> Response:
    """List the caller's key-value stores."""
    caller = require_caller()
    page = stores().list_key_value_stores(caller=caller, **list_arguments())
    items = [render_store(store, may_write=policy().may_write(store, caller)) for store in page.items]
    return json_response({"data": {**page_head(page), "items": items}})


@bp.post("")
def get_or_create_key_value_store() -> Response:
    """Create a store; with ``?name=``, return the existing one of that name if there is one."""
    caller = require_caller()
    name = request.args.get("name") or None
    schema = create_schema()
    store, created = stores().get_or_create_key_value_store(name=name, schema=schema, owner=caller)
    body = {"data": render_store(store, may_write=True)}
    if not created:
        return json_response(body, 200)
    return json_response(body, 201, headers={"Location": f"{base_url()}/v2/key-value-stores/{store.id}"})


@bp.get("/<ref>")
def get_key_value_store(ref: str) -> Response:
    """Return one store's metadata."""
    store, caller = resolve_for_read(stores(), ref)
    touched = stores().get_key_value_store(store.id, touch_accessed=True)
    return json_response({"data": render_store(touched, may_write=policy().may_write(touched, caller))})


@bp.put("/<ref>")
def update_key_value_store(ref: str) -> Response:
    """Rename a store, or set its ``generalAccess`` or ``title``."""
    store, _caller = resolve_for_write(stores(), ref)
    updated = stores().update_key_value_store(store.id, **update_changes())
    return json_response({"data": render_store(updated, may_write=True)})


@bp.delete("/<ref>")
def delete_key_value_store(ref: str) -> Response:
    """Delete a store and its records."""
    store, _caller = resolve_for_write(stores(), ref)
    stores().delete_key_value_store(store.id)
    return Response(status=204)


@bp.get("/<ref>/keys")
def list_keys(ref: str) -> Response:
    """List a page of keys, ascending, with an absolute ``recordPublicUrl`` on every item."""
    args = request.args
    limit = int_param(args, "limit", KEYS_LIMIT_MAX, minimum=1, maximum=KEYS_LIMIT_MAX) or KEYS_LIMIT_MAX
    store, _caller = resolve_for_read(stores(), ref, signature=args.get("signature"))
    page = stores().list_keys(
        store.id,
        exclusive_start_key=args.get("exclusiveStartKey") or None,
        limit=limit,
        prefix=args.get("prefix") or None,
        collection=args.get("collection") or None,
    )
    return json_response({"data": keys_page(page, public_url())})


@bp.get("/<ref>/records")
def download_records(ref: str) -> Response:
    """Return a ZIP of the store's records (or of those under ``prefix`` / in ``collection``), named by key."""
    args = request.args
    store, _caller = resolve_for_read(stores(), ref, signature=args.get("signature"))
    spool = tempfile.SpooledTemporaryFile(max_size=ZIP_SPOOL_BYTES)  # noqa: SIM115 - streamed, closed below
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, opener in stores().iter_records(
            store.id, prefix=args.get("prefix") or None, collection=args.get("collection") or None
        ):
            with opener as source, archive.open(info.key, "w", force_zip64=True) as target:
                for chunk in iter_file(source):
                    target.write(chunk)
    spool.seek(0)
    headers = {"Content-Disposition": f'attachment; filename="key_value_store_{store.id}.zip"'}
    return Response(iter_file(spool), content_type="application/zip", headers=headers, direct_passthrough=True)


def _record_signature_valid(key: str) -> Any:
    def valid(signature: str, store: KeyValueStoreMetadata) -> bool:
        return verify_record_signature(signature, key, store.url_signing_secret_key)

    return valid


@bp.route("/<ref>/records/<record_key:key>", methods=["GET", "HEAD"])
def get_record(ref: str, key: str) -> Response:
    """Return a record's bytes with its stored ``Content-Type`` (HEAD: whether it exists)."""
    args = request.args
    attachment = bool_param(args, "attachment")
    signature = args.get("signature")
    store, _caller = resolve_for_read(stores(), ref, signature=signature, signature_valid=_record_signature_valid(key))
    if request.method == "HEAD":
        info, handle = stores().get_record(store.id, key, count_read=False)
        handle.close()
        return Response(status=200, content_type=info.content_type, headers={"Content-Length": str(info.size)})
    info, handle = stores().get_record(store.id, key)
    headers = {"Content-Length": str(info.size)}
    if attachment:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(key, safe='')}"
    return Response(iter_file(handle), content_type=info.content_type, headers=headers, direct_passthrough=True)


@bp.route("/<ref>/records/<record_key:key>", methods=["PUT", "POST"])
def set_record(ref: str, key: str) -> Response:
    """Store exactly the bytes sent (decompressed) with the ``Content-Type`` sent, verbatim."""
    store, _caller = resolve_for_write(stores(), ref)
    content_type = request.headers.get("Content-Type") or DEFAULT_RECORD_TYPE
    chunks = decoded_chunks(request.stream, request.headers.get("Content-Encoding"))
    stores().set_record(store.id, key, chunks, content_type=content_type)
    location = f"{base_url()}/v2/key-value-stores/{store.id}/records/{quote(key, safe='')}"
    return json_response({}, 201, headers={"Location": location})


@bp.delete("/<ref>/records/<record_key:key>")
def delete_record(ref: str, key: str) -> Response:
    """Remove a record."""
    store, _caller = resolve_for_write(stores(), ref)
    stores().delete_record(store.id, key)
    return Response(status=204)
