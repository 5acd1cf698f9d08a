"""Turn key-value store metadata and key pages into the Apify API's JSON shapes."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from .key_value_stores import KeysPage
from .models import KeyValueStoreMetadata
from .policy import AccessPolicy
from .record_store import RecordInfo
from .serializers import storage_fields
from .signing import create_signature, record_signature

KEYS_URL_VALID_MS = 14 * 24 * 3600 * 1000
"""The platform's signed keys URL is valid for 14 days."""


def key_value_store_resource(
    store: KeyValueStoreMetadata,
    policy: AccessPolicy,
    *,
    base_url: str,
    public_url: str,
    may_write: bool,
) -> dict[str, Any]:
    """Return the Apify ``KeyValueStore`` object; the signing key and signed URLs only for writers."""
    store_url = f"{public_url}/v2/key-value-stores/{store.id}"
    keys_url, records_url = f"{store_url}/keys", f"{store_url}/records"
    resource: dict[str, Any] = {
        **storage_fields(store, policy),
        "name": store.name,
        "schema": store.kv_schema,
        "consoleUrl": f"{base_url}/view/key-value-stores/{store.id}",
        "stats": {
            "readCount": store.read_count,
            "writeCount": store.write_count,
            "deleteCount": store.delete_count,
            "listCount": store.list_count,
            "s3StorageBytes": 0,
            "storageBytes": 0,
        },
    }
    if may_write and store.url_signing_secret_key:
        resource["urlSigningSecretKey"] = store.url_signing_secret_key
        expires = int(time.time() * 1000) + KEYS_URL_VALID_MS
        signature = create_signature(store.id, store.url_signing_secret_key, expires_at_ms=expires)
        keys_url += f"?signature={signature}"
        records_url += f"?signature={signature}"
    resource["keysPublicUrl"] = keys_url
    resource["recordsPublicUrl"] = records_url
    return resource


def record_public_url(store: KeyValueStoreMetadata, info: RecordInfo, public_url: str) -> str:
    """Return a record's absolute URL, signed when the store has a signing key (the clients need one per key)."""
    url = f"{public_url}/v2/key-value-stores/{store.id}/records/{quote(info.key, safe='')}"
    if store.url_signing_secret_key:
        url += "?signature=" + record_signature(info.key, store.url_signing_secret_key)
    return url


def keys_page(page: KeysPage, public_url: str) -> dict[str, Any]:
    """Return the ``ListOfKeys`` object: ``nextExclusiveStartKey`` is an explicit ``null`` on the last page."""
    return {
        "items": [
            {"key": info.key, "size": info.size, "recordPublicUrl": record_public_url(page.store, info, public_url)}
            for info in page.items
        ],
        "count": len(page.items),
        "limit": page.limit,
        "exclusiveStartKey": page.exclusive_start_key,
        "isTruncated": page.is_truncated,
        "nextExclusiveStartKey": page.next_exclusive_start_key,
    }
