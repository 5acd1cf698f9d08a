"""The platform's events websocket for ``storage-emulator run``: ``persistState`` on an interval, ``aborting``.

The SDKs connect to ``ACTOR_EVENTS_WEBSOCKET_URL`` in ``Actor.init`` (Python raises if that first connect
fails) and read JSON text frames ``{"name": ..., "data": ...}``; they send nothing that matters here.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from .models import utc_now
from .serializers import iso_time

log = logging.getLogger(__name__)


class PlatformEvents:
    """A websocket server on 127.0.0.1 and a free port that sends platform events to every connected Actor."""

    def __init__(self, *, persist_state_interval: float) -> None:
        self.persist_state_interval = persist_state_interval
        self._clients: set[ServerConnection] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.server: Server = serve(self._serve_client, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        self._threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._persist_state_loop, daemon=True),
        ]

    def __enter__(self) -> PlatformEvents:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self.server.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)

    @property
    def connected(self) -> int:
        """Return how many Actors are connected."""
        with self._lock:
            return len(self._clients)

    def _serve_client(self, connection: ServerConnection) -> None:
        with self._lock:
            self._clients.add(connection)
        try:
            for _ in connection:  # the SDKs send nothing we need; wait for the close
                pass
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._clients.discard(connection)

    def send(self, name: str, data: dict[str, Any]) -> None:
        """Send one event to every connected Actor (one that went away meanwhile is skipped)."""
        frame = json.dumps({"name": name, "data": data})
        with self._lock:
            clients = list(self._clients)
        for connection in clients:
            try:
                connection.send(frame)
            except ConnectionClosed:
                log.debug("events: a client left before %s", name)

    def _persist_state_loop(self) -> None:
        while not self._stopped.wait(self.persist_state_interval):
            self.send("persistState", {"isMigrating": False})

    def abort(self) -> None:
        """Tell the Actors the run is being aborted (``aborting``), as the platform does before it stops them."""
        self.send("aborting", {"createdAt": iso_time(utc_now())})
