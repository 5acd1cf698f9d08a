"""Who owns a storage and who may do what with it: the one access policy, HTTP-free.

The repository (listings), the web layer (every request), the serializers (``is_public``) and the org
listing all ask this module, so they can never disagree about who may read what.

Open mode (no accounts file) skips every rule: everyone acts as the default account and may do anything.
Enforced mode follows the real service: writes are owner-only; reads by id need the owner, a share, or a
``generalAccess`` that lets anyone with the id read (``FOLLOW_USER_SETTING`` follows the owner account's
setting); ``username~name`` reads need a token unless the storage is ``ANYONE_WITH_NAME_CAN_READ``.
"""

from __future__ import annotations

from .accounts import DEFAULT_ACCOUNT, Account, AccountRegistry, account_id_for
from .models import StorageMetadata

READABLE_BY_ID = ("ANYONE_WITH_ID_CAN_READ", "ANYONE_WITH_NAME_CAN_READ")
READABLE_BY_NAME = "ANYONE_WITH_NAME_CAN_READ"
OWNERSHIP_VALUES = ("ownedByMe", "sharedWithMe")


class AccessPolicy:
    """Ownership and access rules over one account registry."""

    def __init__(self, accounts: AccountRegistry, *, default_account: Account = DEFAULT_ACCOUNT) -> None:
        self.accounts = accounts
        self.default_account = default_account

    @property
    def enforced(self) -> bool:
        """Tell whether access rules apply (an accounts file exists)."""
        return self.accounts.enforced

    # ----- ownership -------------------------------------------------------------------------------

    def owner_id(self, storage: StorageMetadata) -> str:
        """Return the owner's account id; storages written by other tools belong to the default account."""
        if storage.user_id:
            return storage.user_id
        if storage.username and storage.username != self.default_account.username:
            account = self.accounts.by_username(storage.username)
            return account.id if account else account_id_for(storage.username)
        return self.default_account.id

    def owner_username(self, storage: StorageMetadata) -> str:
        """Return the owner's username."""
        if storage.username:
            return storage.username
        owner_id = self.owner_id(storage)
        if owner_id == self.default_account.id:
            return self.default_account.username
        account = self.accounts.by_id(owner_id)
        return account.username if account else owner_id

    def is_owner(self, storage: StorageMetadata, caller: Account | None) -> bool:
        """Tell whether the caller owns the storage."""
        return caller is not None and self.owner_id(storage) == caller.id

    # ----- reading and writing ---------------------------------------------------------------------

    def general_access(self, storage: StorageMetadata) -> str:
        """Return the storage's effective general access (``FOLLOW_USER_SETTING`` resolved to the owner's)."""
        access: str = storage.general_access
        if access == "FOLLOW_USER_SETTING":
            owner = self.accounts.by_id(self.owner_id(storage))
            access = owner.general_access if owner else "RESTRICTED"
        return access

    def is_public(self, storage: StorageMetadata) -> bool:
        """Tell whether anyone with the id may read the storage, whatever the mode."""
        return self.general_access(storage) in READABLE_BY_ID

    def may_read(self, storage: StorageMetadata, caller: Account | None) -> bool:
        """Tell whether the caller may read the storage by id (owner, shared with, or public)."""
        if not self.enforced:
            return True
        if self.is_owner(storage, caller) or (caller is not None and caller.id in storage.shared_with):
            return True
        return self.is_public(storage)

    def readable_by_name(self, storage: StorageMetadata) -> bool:
        """Tell whether anyone may read the storage through its ``username~name`` without a token."""
        return not self.enforced or self.general_access(storage) == READABLE_BY_NAME

    def may_write(self, storage: StorageMetadata, caller: Account | None) -> bool:
        """Tell whether the caller may change the storage (only its owner may)."""
        return not self.enforced or self.is_owner(storage, caller)

    # ----- listings ---------------------------------------------------------------------------------

    def visible_in_listing(self, storage: StorageMetadata, caller: Account, ownership: str | None) -> bool:
        """Tell whether the caller's listing shows the storage: own ones and those shared with it."""
        owned = self.owner_id(storage) == caller.id
        shared = caller.id in storage.shared_with
        if ownership == "ownedByMe":
            return owned
        if ownership == "sharedWithMe":
            return shared and not owned
        return owned or shared

    def may_list_org(self, org: str, caller: Account | None) -> bool:
        """Tell whether the caller may list this org: its own, or one it is a member of."""
        if not self.enforced:
            return True
        return caller is not None and (caller.username == org or org in caller.orgs)

    def org_known(self, org: str) -> bool:
        """Tell whether an org of this name is known to the accounts (the default account's always is)."""
        if org == self.default_account.username or self.accounts.by_username(org) is not None:
            return True
        return any(org in account.orgs for account in self.accounts.all())
