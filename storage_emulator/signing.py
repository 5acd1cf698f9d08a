"""Signed item URLs: the HMAC scheme of the real service, so the official clients' URLs verify here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import string
import time

BASE62_ALPHABET = string.digits + string.ascii_letters
SIGNATURE_VERSION = "0"


def _base62(number: int) -> str:
    if number == 0:
        return BASE62_ALPHABET[0]
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62_ALPHABET[rest])
    return "".join(reversed(digits))


def hmac_signature(secret: str, message: str) -> str:
    """Return base62 of the first 30 hex digits of HMAC-SHA256(secret, message)."""
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()[:30]
    return _base62(int(digest, 16))


def create_signature(dataset_id: str, secret: str, *, expires_at_ms: int = 0) -> str:
    """Return the ``signature`` query value granting read of one dataset's items (0 = never expires)."""
    message = f"{SIGNATURE_VERSION}.{expires_at_ms}.{dataset_id}"
    payload = f"{SIGNATURE_VERSION}.{expires_at_ms}.{hmac_signature(secret, message)}"
    return base64.urlsafe_b64encode(payload.encode()).decode()


def verify_signature(signature: str, dataset_id: str, secret: str | None, *, now_ms: int | None = None) -> bool:
    """Tell whether ``signature`` is valid and unexpired for this dataset; padded or unpadded base64 both work."""
    if not secret or not signature:
        return False
    try:
        padded = signature + "=" * (-len(signature) % 4)
        version, expires, received = base64.urlsafe_b64decode(padded.encode()).decode().split(".")
        expires_at_ms = int(expires)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    if version != SIGNATURE_VERSION:
        return False
    expected = hmac_signature(secret, f"{version}.{expires_at_ms}.{dataset_id}")
    if not hmac.compare_digest(expected, received):
        return False
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return expires_at_ms == 0 or expires_at_ms > now_ms


def record_signature(key: str, secret: str) -> str:
    """Return the permanent ``signature`` of one record's URL: the HMAC of its raw key (the clients' scheme)."""
    return hmac_signature(secret, key)


def verify_record_signature(signature: str, key: str, secret: str | None) -> bool:
    """Tell whether ``signature`` opens the record of this key."""
    return bool(secret) and hmac.compare_digest(record_signature(key, secret or ""), signature)
