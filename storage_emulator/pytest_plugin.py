"""The pytest plugin (entry point ``pytest11``): fixtures that serve the emulator to a test suite.

``apify_emulator``          a fresh server and root for each test (``url``, ``root``, ``repo``, ``reset()``)
``apify_emulator_session``  one server for the whole session (one per pytest-xdist worker); ``reset()`` it
``apify_client``            the official ``ApifyClient`` pointed at ``apify_emulator`` (skips without apify-client)
``apify_client_async``      the same, ``ApifyClientAsync``

Disable it with ``-p no:storage_emulator``. Imports are deferred to the fixtures, so merely having the
package installed adds nothing to a suite that does not use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import EmulatorServer

CLIENT_TOKEN = "local"


@pytest.fixture(scope="session")
def apify_emulator_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """Serve one storage root for the whole test session (per xdist worker) on 127.0.0.1 and a free port."""
    from .testing import EmulatorServer

    with EmulatorServer(root=tmp_path_factory.mktemp("apify-emulator") / "storage") as server:
        yield server


@pytest.fixture
def apify_emulator(tmp_path: Path) -> Iterator[EmulatorServer]:
    """Serve a fresh storage root in ``tmp_path`` for one test on 127.0.0.1 and a free port."""
    from .testing import EmulatorServer

    with EmulatorServer(root=tmp_path / "apify-storage") as server:
        yield server


@pytest.fixture
def apify_client(apify_emulator: EmulatorServer) -> Any:
    """Return the official ``ApifyClient`` pointed at ``apify_emulator``."""
    module = pytest.importorskip("apify_client", reason="the apify_client fixture needs apify-client installed")
    url = apify_emulator.url
    return module.ApifyClient(token=CLIENT_TOKEN, api_url=url, api_public_url=url)


@pytest.fixture
def apify_client_async(apify_emulator: EmulatorServer) -> Any:
    """Return the official ``ApifyClientAsync`` pointed at ``apify_emulator``."""
    module = pytest.importorskip("apify_client", reason="the apify_client_async fixture needs apify-client installed")
    url = apify_emulator.url
    return module.ApifyClientAsync(token=CLIENT_TOKEN, api_url=url, api_public_url=url)
