"""CORS for browser apps calling the emulator: off unless origins are configured (``--cors-origin``)."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding, X-API-Key"
EXPOSED_HEADERS = (
    "Location, Content-Disposition, X-Apify-Pagination-Offset, X-Apify-Pagination-Limit, "
    "X-Apify-Pagination-Count, X-Apify-Pagination-Total, X-Apify-Pagination-Desc"
)


def enable_cors(app: Flask, origins: list[str]) -> None:
    """Answer preflights and add CORS headers for the given origins (``*`` allows any)."""

    def allowed_origin() -> str | None:
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        if "*" in origins:
            return "*"
        return origin if origin in origins else None

    @app.before_request
    def preflight() -> Response | None:
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return Response(status=204)
        return None

    @app.after_request
    def add_headers(response: Response) -> Response:
        origin = allowed_origin()
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
            if origin != "*":
                response.headers["Vary"] = "Origin"
        return response
