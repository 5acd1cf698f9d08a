"""Who is calling, and turning the access policy's answers into the errors the real service gives.

The rules themselves live in ``policy.AccessPolicy`` (HTTP-free, shared with the repository, the
serializers and the org listing); this module only finds the caller of a request and raises. Enforced
mode answers a missing token 401 ``token-not-provided``, an unknown token 401 ``invalid-token``, no right
403 ``insufficient-permissions``. A ``username~name`` reference that the caller may not read answers 404,
so that guessable names do not reveal which datasets exist; ids are random, so a 403 on an id reveals nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request

from ..accounts import DEFAULT_ACCOUNT, Account, AccountRegistry
from ..errors import InsufficientPermissions, InvalidToken, StorageNotFound, TokenNotProvided
from ..models import StorageMetadata
from ..policy import AccessPolicy
from ..repository import DatasetRepository
from ..request_queues import RequestQueueRepository
from ..signing import verify_signature
from ..storage_collection import StorageCollection

M = TypeVar("M", bound=StorageMetadata)

BEARER_PREFIX = "bearer "


def insufficient_permissions(kind: StorageCollection[Any]) -> InsufficientPermissions:
    """Return the platform's 403 for a storage of this kind (the official clients' tests match its text)."""
    return InsufficientPermissions(
        f"Insufficient permissions for the {kind.LABEL}. Make sure you're passing a correct API token and "
        "that it has the required permissions."
    )


STORAGE_KINDS_EXTENSION = "storage_emulator_kinds"


def storage_kinds(app: Flask) -> list[StorageCollection[Any]]:
    """Return the app's repository of every storage kind (datasets first)."""
    return app.extensions[STORAGE_KINDS_EXTENSION]  # type: ignore[no-any-return]


def registry() -> AccountRegistry:
    """Return the app's account registry."""
    return current_app.extensions["storage_emulator_accounts"]  # type: ignore[no-any-return]


def repo() -> DatasetRepository:
    """Return the app's repository."""
    return current_app.extensions["storage_emulator"]  # type: ignore[no-any-return]


def request_queues() -> RequestQueueRepository:
    """Return the app's request-queue repository."""
    return current_app.extensions["storage_emulator_request_queues"]  # type: ignore[no-any-return]


def policy() -> AccessPolicy:
    """Return the access policy the repository uses."""
    return repo().policy


def request_token() -> str | None:
    """Return the token of this request: ``Authorization: Bearer``, ``?token=`` or ``X-API-Key``."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith(BEARER_PREFIX) and header[len(BEARER_PREFIX) :].strip():
        return header[len(BEARER_PREFIX) :].strip()
    return request.args.get("token") or request.headers.get("X-API-Key") or None


def current_caller() -> Account | None:
    """Return the calling account (``None``: anonymous), or raise ``InvalidToken`` for an unknown token."""
    accounts = registry()
    if not accounts.enforced:
        return DEFAULT_ACCOUNT
    token = request_token()
    if token is None:
        return None
    account = accounts.by_token(token)
    if account is None:
        raise InvalidToken("User was not found or authentication token is not valid")
    return account


def token_not_provided() -> TokenNotProvided:
    """Return the error for an anonymous request that needs a token."""
    return TokenNotProvided("Authentication token was not provided")


def require_caller() -> Account:
    """Return the calling account, or raise ``TokenNotProvided`` if the request is anonymous."""
    caller = current_caller()
    if caller is None:
        raise token_not_provided()
    return caller


def resolve_for_read(
    kind: StorageCollection[M],
    ref: str,
    *,
    signature: str | None = None,
    signature_valid: Callable[[str, M], bool] | None = None,
) -> tuple[M, Account | None]:
    """Resolve ``ref`` among the storages of ``kind`` for reading by this request's caller, or raise.

    The errors are the ones the real service gives. A ``signature`` grants the read when
    ``signature_valid(signature, storage)`` holds (by default: a signed URL of the storage's id).
    """
    caller = current_caller()
    if ref.startswith("~") and caller is None:
        raise token_not_provided()
    if "~" in ref and not ref.startswith("~"):
        return _resolve_username_name(kind, ref, caller), caller
    storage = kind.get(ref, caller=caller)
    if signature is not None:
        valid = signature_valid or signed_for_id
        if not valid(signature, storage):
            raise InsufficientPermissions("The signature is invalid or has expired")
        return storage, caller
    if not policy().may_read(storage, caller):
        if caller is None:
            raise token_not_provided()
        raise insufficient_permissions(kind)
    return storage, caller


def signed_for_id(signature: str, storage: StorageMetadata) -> bool:
    """Tell whether ``signature`` is a (possibly expiring) signed URL of this storage's id."""
    return verify_signature(signature, storage.id, storage.url_signing_secret_key)


def _resolve_username_name(kind: StorageCollection[M], ref: str, caller: Account | None) -> M:
    try:
        storage = kind.get(ref, caller=caller)
    except StorageNotFound:
        if caller is None and registry().enforced:
            raise token_not_provided() from None
        raise
    if policy().readable_by_name(storage):
        return storage
    if caller is None:
        raise token_not_provided()
    if not policy().may_read(storage, caller):
        raise kind.NOT_FOUND(ref)
    return storage


def resolve_for_write(kind: StorageCollection[M], ref: str) -> tuple[M, Account]:
    """Resolve ``ref`` among the storages of ``kind`` for a change by this request's caller, who must own it."""
    caller = require_caller()
    storage, _ = resolve_for_read(kind, ref)
    if not policy().may_write(storage, caller):
        raise insufficient_permissions(kind)
    return storage, caller
