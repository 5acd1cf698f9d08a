"""Accounts: who owns a dataset and who is calling.

Open mode (no accounts file): every request, with any token or none, acts as the default local account.
Enforced mode (an accounts file exists): tokens identify accounts and access rules apply. The file is
``<root>/.storage-emulator/accounts.json`` unless ``--accounts FILE`` names another::

    {"accounts": [{"username": "alice", "token": "alice-secret", "id": "optional17charsId",
                   "orgs": ["team"], "general_access": "RESTRICTED", "admin": false}]}

``"admin": true`` lets an account's token run the emulator's own operations that change everything
(``POST /_emulator/reset``, adding or clearing injected faults); no account is an admin unless it says so.

Tokens are stored as written: they are local test credentials, never real ones.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from .errors import InvalidInput
from .files import atomic_write_text
from .models import EMULATOR_DIR, GENERAL_ACCESS_VALUES
from .naming import check_name, id_for_folder

ACCOUNTS_FILENAME = "accounts.json"
TOKEN_PREFIX = "local_api_"


@dataclass(frozen=True)
class Account:
    """An account of the emulator: what the real service calls a user (and the org dialect an org)."""

    id: str
    """17-character user id, returned as ``userId``."""
    username: str
    """Username: the ``username`` of ``username~name`` and the org of the org listing."""
    token: str | None = field(default=None, repr=False)
    """API token (enforced mode only)."""
    orgs: tuple[str, ...] = ()
    """Other orgs (usernames) whose org listing this account may read."""
    general_access: str = "RESTRICTED"
    """The account setting that datasets with ``FOLLOW_USER_SETTING`` follow."""
    admin: bool = False
    """May reset the emulator and inject faults in enforced mode (``"admin": true`` in the accounts file)."""


DEFAULT_ACCOUNT = Account(id="localEmulatorUser", username="local")
"""The account that owns what is created in open mode and every dataset written by other tools."""


def account_id_for(username: str) -> str:
    """Return the id an account of this username has when its accounts entry names none."""
    return DEFAULT_ACCOUNT.id if username == DEFAULT_ACCOUNT.username else id_for_folder(f"account:{username}")


def default_accounts_path(root: Path) -> Path:
    """Return where a storage root keeps its accounts file."""
    return root / EMULATOR_DIR / ACCOUNTS_FILENAME


class AccountRegistry:
    """The accounts known to a storage root, and whether access rules are enforced."""

    def __init__(self, accounts: list[Account], *, enforced: bool) -> None:
        self.enforced = enforced
        self._by_token = {a.token: a for a in accounts if a.token}
        self._by_username = {a.username: a for a in accounts}
        self._by_id = {a.id: a for a in accounts}
        if DEFAULT_ACCOUNT.username not in self._by_username:
            self._by_username[DEFAULT_ACCOUNT.username] = DEFAULT_ACCOUNT
            self._by_id.setdefault(DEFAULT_ACCOUNT.id, DEFAULT_ACCOUNT)

    @classmethod
    def load(cls, root: Path, accounts_file: Path | None = None) -> AccountRegistry:
        """Read the accounts file (enforced mode) or, when there is none, return open mode."""
        path = accounts_file or default_accounts_path(root)
        if not path.exists():
            if accounts_file is not None:
                raise InvalidInput(f"The accounts file {path} does not exist")
            return cls([], enforced=False)
        return cls(read_accounts(path), enforced=True)

    def by_token(self, token: str) -> Account | None:
        """Return the account this token belongs to, if any."""
        return self._by_token.get(token)

    def by_username(self, username: str) -> Account | None:
        """Return the account with this username, if any."""
        return self._by_username.get(username)

    def by_id(self, account_id: str) -> Account | None:
        """Return the account with this id, if any."""
        return self._by_id.get(account_id)

    def all(self) -> list[Account]:
        """Return every account, the default one included."""
        return list(self._by_username.values())


def _account_from_json(raw: Any, path: Path) -> Account:
    if not isinstance(raw, dict) or not isinstance(raw.get("username"), str):
        raise InvalidInput(f"{path}: every account needs a 'username' string")
    username = check_name(raw["username"], parameter="username")
    default_id = account_id_for(username)  # the local account keeps owning what other tools wrote
    general_access = raw.get("general_access", "RESTRICTED")
    if general_access not in GENERAL_ACCESS_VALUES:
        raise InvalidInput(f"{path}: account '{username}' has an unknown general_access {general_access!r}")
    admin = raw.get("admin", False)
    if not isinstance(admin, bool):
        raise InvalidInput(f"{path}: account '{username}' has a non-boolean admin {admin!r} (use true or false)")
    return Account(
        id=str(raw.get("id") or default_id),
        username=username,
        token=raw.get("token") or None,
        orgs=tuple(raw.get("orgs") or ()),
        general_access=general_access,
        admin=admin,
    )


def read_accounts(path: Path) -> list[Account]:
    """Parse an accounts file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"The accounts file {path} cannot be read: {exc}") from exc
    entries = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput(f'{path}: expected {{"accounts": [...]}}')
    return [_account_from_json(entry, path) for entry in entries]


def add_account(path: Path, username: str, *, orgs: tuple[str, ...] = (), admin: bool = False) -> Account:
    """Add an account (or give an existing one a new token) to an accounts file; return it with its token."""
    check_name(username, parameter="username")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(path.name + ".lock")):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"accounts": []}
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        entries = [e for e in data["accounts"] if e.get("username") != username]
        previous: dict[str, Any] = next((e for e in data["accounts"] if e.get("username") == username), {})
        entry = {**previous, "username": username, "token": token}
        if orgs:
            entry["orgs"] = sorted(set(previous.get("orgs", [])) | set(orgs))
        if admin:
            entry["admin"] = True
        entries.append(entry)
        data["accounts"] = entries
        atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return _account_from_json(entry, path)
