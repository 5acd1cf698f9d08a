"""Accounts: who owns a dataset and who is calling."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    """An account of the emulator: what the real service calls a user (and the org dialect an org)."""

    id: str
    """17-character user id, returned as ``userId``."""
    username: str
    """Username: the ``username`` of ``username~name`` and the org of the org listing."""


DEFAULT_ACCOUNT = Account(id="localEmulatorUser", username="local")
"""The account that owns what is created in open mode and every dataset written by other tools."""
