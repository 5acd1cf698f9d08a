"""storage-emulator: a local, filesystem-backed emulator of the Apify API v2 storage (datasets, key-value stores)."""

from .accounts import DEFAULT_ACCOUNT, Account
from .key_value_stores import KeysPage, KeyValueStoreRepository
from .models import DatasetMetadata, KeyValueStoreMetadata
from .repository import DatasetPage, DatasetRepository, ItemsPage

__all__ = [
    "DEFAULT_ACCOUNT",
    "Account",
    "DatasetMetadata",
    "DatasetPage",
    "DatasetRepository",
    "ItemsPage",
    "KeyValueStoreMetadata",
    "KeyValueStoreRepository",
    "KeysPage",
]
__version__ = "0.1.0"
