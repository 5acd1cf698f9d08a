"""storage-emulator: a local, filesystem-backed emulator of the Apify Dataset API v2."""

from .accounts import DEFAULT_ACCOUNT, Account
from .models import DatasetMetadata
from .repository import DatasetPage, DatasetRepository, ItemsPage

__all__ = ["DEFAULT_ACCOUNT", "Account", "DatasetMetadata", "DatasetPage", "DatasetRepository", "ItemsPage"]
__version__ = "0.1.0"
