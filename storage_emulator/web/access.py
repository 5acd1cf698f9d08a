"""Who is calling, and turning the access policy's answers into the errors the real service gives.

The rules themselves live in ``policy.AccessPolicy`` (HTTP-free, shared with the repository, the
serializers and the org listing); this module only finds the caller of a request and raises. Enforced
mode answers a missing token 401 ``token-not-provided``, an unknown token 401 ``invalid-token``, no right
403 ``insufficient-permissions``. A ``username~name`` reference that the caller may not read answers 404,
so that guessable names do not reveal which datasets exist; ids are random, so a 403 on an id reveals nothing.
"""

from __future__ import annotations

from flask import current_app, request

from ..accounts import DEFAULT_ACCOUNT, Account, AccountRegistry
from ..errors import DatasetNotFound, InsufficientPermissions, InvalidToken, TokenNotProvided
from ..models import DatasetMetadata
from ..policy import AccessPolicy
from ..repository import DatasetRepository
from ..signing import verify_signature

BEARER_PREFIX = "bearer "
# The platform's own wording (the official Python client's integration tests match it).
INSUFFICIENT_PERMISSIONS_MESSAGE = (
    "Insufficient permissions for the dataset. Make sure you're passing a correct API token and that it has "
    "the required permissions."
)


def registry() -> AccountRegistry:
    """Return the app's account registry."""
    return current_app.extensions["storage_emulator_accounts"]  # type: ignore[no-any-return]


def repo() -> DatasetRepository:
    """Return the app's repository."""
    return current_app.extensions["storage_emulator"]  # type: ignore[no-any-return]


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


def resolve_for_read(ref: str, *, signature: str | None = None) -> tuple[DatasetMetadata, Account | None]:
    """Resolve ``ref`` for reading by this request's caller, or raise the error the real service gives."""
    caller = current_caller()
    if ref.startswith("~") and caller is None:
        raise token_not_provided()
    if "~" in ref and not ref.startswith("~"):
        return _resolve_username_name(ref, caller), caller
    dataset = repo().get_dataset(ref, caller=caller)
    if signature is not None:
        if not verify_signature(signature, dataset.id, dataset.url_signing_secret_key):
            raise InsufficientPermissions("The signature is invalid or has expired")
        return dataset, caller
    if not policy().may_read(dataset, caller):
        if caller is None:
            raise token_not_provided()
        raise InsufficientPermissions(INSUFFICIENT_PERMISSIONS_MESSAGE)
    return dataset, caller


def _resolve_username_name(ref: str, caller: Account | None) -> DatasetMetadata:
    try:
        dataset = repo().get_dataset(ref, caller=caller)
    except DatasetNotFound:
        if caller is None and registry().enforced:
            raise token_not_provided() from None
        raise
    if policy().readable_by_name(dataset):
        return dataset
    if caller is None:
        raise token_not_provided()
    if not policy().may_read(dataset, caller):
        raise DatasetNotFound(ref)
    return dataset


def resolve_for_write(ref: str) -> tuple[DatasetMetadata, Account]:
    """Resolve ``ref`` for a change by this request's caller, who must own it."""
    caller = require_caller()
    dataset, _ = resolve_for_read(ref)
    if not policy().may_write(dataset, caller):
        raise InsufficientPermissions(INSUFFICIENT_PERMISSIONS_MESSAGE)
    return dataset, caller
