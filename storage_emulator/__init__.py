"""storage-emulator: a local, filesystem-backed emulator of the Apify API v2 storage."""

from .accounts import DEFAULT_ACCOUNT, Account
from .key_value_stores import KeysPage, KeyValueStoreRepository
from .models import DatasetMetadata, KeyValueStoreMetadata
from .repository import DatasetPage, DatasetRepository, ItemsPage
from .request_queues import RequestQueueRepository

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
    "RequestQueueRepository",
]
__version__ = "0.1.0"
