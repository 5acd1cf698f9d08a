"""Run the app on a real HTTP server: cheroot threads in one process, or gunicorn worker processes.

Why these servers: Werkzeug's development server closes every connection, so the official clients'
connection pools never help. cheroot (CherryPy's server, maintained under the CherryPy/jaraco projects)
speaks HTTP/1.1 with keep-alive, is pure Python on every platform, serves from a thread pool, parks idle
keep-alive connections in a selector instead of a thread, binds port 0 before serving (so the real port
is known at once) and stops cleanly from another thread, which the test helpers need. Waitress was
measured too and stalled on keep-alive requests from ``httpx`` on this machine. Several processes run
under gunicorn (``gthread`` workers, keep-alive too), which runs on Unix only; every worker serves the
same root, whose files are the source of truth.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from cheroot import wsgi
from flask import Flask

DROPPED_ENVIRON_KEY = "storage_emulator.dropped"
"""Set when a fault dropped the request's connection (the request log then records status 0)."""
SOCKET_ENVIRON_KEY = "storage_emulator.socket"
"""Where the request's client socket is exposed to the app (the fault injector drops connections with it)."""
DEFAULT_THREADS = 16
KEEP_ALIVE_SECONDS = 5
REPO_EXTENSION = "storage_emulator"


class _SocketGateway(wsgi.Gateway_10):
    """cheroot's WSGI 1.0 gateway, plus the client socket in the environ."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # cheroot's stub says None
        environ: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        environ[SOCKET_ENVIRON_KEY] = self.req.conn.socket
        return environ


def make_server(app: Flask, host: str, port: int, *, threads: int = DEFAULT_THREADS) -> wsgi.Server:
    """Bind a cheroot server for the app (port 0 picks a free one); ``server.bind_addr[1]`` is the real port."""
    server = wsgi.Server((host, port), app, numthreads=threads, timeout=KEEP_ALIVE_SECONDS, shutdown_timeout=5)
    server.gateway = _SocketGateway
    server.prepare()  # binds and listens: the server accepts connections from here on
    return server


def server_url(host: str, port: int) -> str:
    """Return the base URL of a server on this interface and port."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def warm_up(app: Flask) -> None:
    """Read every metadata file in the background, so the first request does not pay for it."""
    threading.Thread(target=app.extensions[REPO_EXTENSION].all_datasets, name="warm-up", daemon=True).start()


def close_app(app: Flask) -> None:
    """Write the pending read counters and close the request record."""
    from .web.access import storage_kinds  # here: the web package imports this module (faults)

    for kind in storage_kinds(app):
        kind.flush_reads()
    request_log = app.extensions.get("storage_emulator_request_log")
    if request_log is not None:
        request_log.close()


def serve_threaded(
    app: Flask, host: str, port: int, *, threads: int = DEFAULT_THREADS, on_ready: Callable[[str], None]
) -> int:
    """Serve in this process until SIGINT or SIGTERM, then write the pending counters; return the exit status."""
    server = make_server(app, host, port, threads=threads)
    warm_up(app)
    # SIGTERM (process managers, `docker stop`) ends the server like Ctrl-C, so the finally below runs;
    # installed before the URL is announced, so a signal sent as soon as it is seen is handled too.
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        on_ready(server_url(host, server.bind_addr[1]))
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
        close_app(app)
    return 0


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def workers_supported() -> str | None:
    """Return why ``--workers`` cannot run here, or ``None`` when it can."""
    if sys.platform == "win32":
        return "--workers needs gunicorn, which does not run on Windows; serve with one process (drop --workers)"
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return "--workers needs gunicorn: pip install gunicorn"
    return None


def serve_workers(
    build_app: Callable[[], Flask],
    host: str,
    port: int,
    *,
    workers: int,
    threads: int = DEFAULT_THREADS,
    on_ready: Callable[[str], None],
) -> int:
    """Serve with ``workers`` gunicorn processes over one root until SIGINT or SIGTERM; return the exit status.

    Each worker builds its own app (no preloading: nothing in memory is shared) and writes its pending
    read counters when it exits.
    """
    from gunicorn.app.base import BaseApplication

    class EmulatorApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
                "workers": workers,
                "worker_class": "gthread",
                "threads": threads,
                "keepalive": KEEP_ALIVE_SECONDS,
                "graceful_timeout": 10,
                "accesslog": None,  # the app writes its own access line (and the --record file)
                "errorlog": "-",
                "loglevel": "warning",
                "when_ready": _when_ready,
                "worker_exit": _worker_exit,
                "post_worker_init": _post_worker_init,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return build_app()

    def _when_ready(arbiter: Any) -> None:
        listener = arbiter.LISTENERS[0]
        on_ready(server_url(host, listener.sock.getsockname()[1]))

    EmulatorApplication().run()  # exits the process through SystemExit when the arbiter stops
    return 0


def _post_worker_init(worker: Any) -> None:
    warm_up(worker.wsgi)


def _worker_exit(arbiter: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        close_app(app)


def drop_connection(environ: dict[str, Any]) -> bool:
    """Shut the request's client socket down (the client sees the connection close); tell whether it could."""
    sock = environ.get(SOCKET_ENVIRON_KEY) or environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone
    environ[DROPPED_ENVIRON_KEY] = True
    return True
