"""Who is calling, and what they may do: the access rules of both dialects in one place.

Open mode skips every rule: the caller is always the default local account. Enforced mode follows the
real service: missing token 401 ``token-not-provided``, unknown token 401 ``invalid-token``, no right 403
``insufficient-permissions``. A ``username~name`` reference that the caller may not read answers 404, so
that guessable names do not reveal which datasets exist; ids are random, so a 403 on an id reveals nothing.
"""

from __future__ import annotations

from flask import current_app, request

from ..accounts import DEFAULT_ACCOUNT, Account, AccountRegistry
from ..errors import DatasetNotFound, InsufficientPermissions, InvalidToken, TokenNotProvided
from ..models import DatasetMetadata
from ..repository import DatasetRepository
from ..signing import verify_signature

READABLE_BY_ID = ("ANYONE_WITH_ID_CAN_READ", "ANYONE_WITH_NAME_CAN_READ")
BEARER_PREFIX = "bearer "


def registry() -> AccountRegistry:
    """Return the app's account registry."""
    return current_app.extensions["storage_emulator_accounts"]  # type: ignore[no-any-return]


def repo() -> DatasetRepository:
    """Return the app's repository."""
    return current_app.extensions["storage_emulator"]  # type: ignore[no-any-return]


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


def is_owner(dataset: DatasetMetadata, caller: Account | None) -> bool:
    """Tell whether the caller owns the dataset."""
    return caller is not None and repo().owner_id(dataset) == caller.id


def _publicly_readable(dataset: DatasetMetadata) -> bool:
    access: str = dataset.general_access
    if access == "FOLLOW_USER_SETTING":
        owner = registry().by_id(repo().owner_id(dataset))
        access = owner.general_access if owner else "RESTRICTED"
    return access in READABLE_BY_ID


def may_read(dataset: DatasetMetadata, caller: Account | None) -> bool:
    """Tell whether the caller may read the dataset (owner, shared with, or readable by anyone with its id)."""
    if not registry().enforced:
        return True
    if is_owner(dataset, caller) or (caller is not None and caller.id in dataset.shared_with):
        return True
    return _publicly_readable(dataset)


def may_write(dataset: DatasetMetadata, caller: Account | None) -> bool:
    """Tell whether the caller may change the dataset (only its owner may)."""
    return not registry().enforced or is_owner(dataset, caller)


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
    if not may_read(dataset, caller):
        if caller is None:
            raise token_not_provided()
        raise InsufficientPermissions(f"You do not have permission to read dataset {dataset.id}")
    return dataset, caller


def _resolve_username_name(ref: str, caller: Account | None) -> DatasetMetadata:
    try:
        dataset = repo().get_dataset(ref, caller=caller)
    except DatasetNotFound:
        if caller is None and registry().enforced:
            raise token_not_provided() from None
        raise
    if dataset.general_access == "ANYONE_WITH_NAME_CAN_READ" or not registry().enforced:
        return dataset
    if caller is None:
        raise token_not_provided()
    if not may_read(dataset, caller):
        raise DatasetNotFound(ref)
    return dataset


def resolve_for_write(ref: str) -> tuple[DatasetMetadata, Account]:
    """Resolve ``ref`` for a change by this request's caller, who must own it."""
    caller = require_caller()
    dataset, _ = resolve_for_read(ref)
    if not may_write(dataset, caller):
        raise InsufficientPermissions(f"You do not have permission to change dataset {dataset.id}")
    return dataset, caller


def may_list_org(org: str, caller: Account | None) -> bool:
    """Tell whether the caller may list this org: its own, or one it is a member of."""
    if not registry().enforced:
        return True
    return caller is not None and (caller.username == org or org in caller.orgs)
