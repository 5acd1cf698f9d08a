"""Ids, dataset names and the one place that turns a client-supplied name into a path."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import string
from pathlib import Path

from .errors import InvalidInput, InvalidParameter

ID_LENGTH = 17
ID_ALPHABET = string.ascii_letters + string.digits
ID_PATTERN = re.compile(r"^[a-zA-Z0-9]{17}$")
NAME_PATTERN = re.compile(r"^([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$")
NAME_MAX_LENGTH = 63
NAME_RULE = "must be 1 to 63 characters of letters, digits and '-', not starting or ending with '-'"
# Ids written by other tools (the JS tools use UUIDs) are accepted when they look like this.
FOREIGN_ID_PATTERN = re.compile(r"^[a-zA-Z0-9-]{1,64}$")


def new_id() -> str:
    """Return a fresh random id of 17 characters of ``[a-zA-Z0-9]``, as the real service uses."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def id_for_folder(folder_name: str) -> str:
    """Return a stable 17-character id for a dataset folder that has no metadata file."""
    digest = int.from_bytes(hashlib.sha256(folder_name.encode()).digest(), "big")
    chars = []
    for _ in range(ID_LENGTH):
        digest, rest = divmod(digest, len(ID_ALPHABET))
        chars.append(ID_ALPHABET[rest])
    return "".join(chars)


def is_valid_name(name: str) -> bool:
    """Tell whether ``name`` is a legal dataset name."""
    return len(name) <= NAME_MAX_LENGTH and NAME_PATTERN.match(name) is not None


def check_name(name: str, *, parameter: str = "name") -> str:
    """Return ``name`` if it is a legal dataset name, else raise ``InvalidParameter``."""
    if not isinstance(name, str) or not is_valid_name(name):
        raise InvalidParameter(parameter, NAME_RULE)
    return name


def safe_child(parent: Path, child: str) -> Path:
    """Return ``parent/child`` if ``child`` is one plain path segment, else raise ``InvalidInput``.

    Names are validated before they get here; this is the second wall, so that no future caller can
    build a path from unchecked input: separators, ``..``, absolute paths and NUL are refused.
    """
    if not child or child in (".", "..") or "/" in child or "\\" in child or "\x00" in child or os.path.isabs(child):
        raise InvalidInput(f"'{child}' is not a valid storage folder name")
    path = parent / child
    if os.path.normpath(path).rsplit(os.sep, 1)[0] != os.path.normpath(parent):
        raise InvalidInput(f"'{child}' is not a valid storage folder name")
    return path


def lock_key(text: str) -> str:
    """Return a file-name-safe key for a lock file."""
    if FOREIGN_ID_PATTERN.match(text):
        return text
    return hashlib.sha1(text.encode()).hexdigest()
