"""The one place that turns errors into each dialect's JSON envelope."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import EmulatorError, InvalidParameter
from ..push_body import raw_body_too_large

log = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
ORG_PATH_PREFIX = "/api/"

# The org dialect's snake_case types for each status (its error type names are its own).
ORG_ERROR_TYPES = {
    400: "bad_request",
    401: "authentication_error",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}
# HTTP status -> Apify error type for errors raised by Flask/werkzeug itself (routing, body parsing).
APIFY_HTTP_ERROR_TYPES = {404: "record-not-found", 405: "method-not-allowed", 413: "request-too-large"}


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return ``payload`` as ``application/json; charset=utf-8``."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, headers=headers, content_type=JSON_MEDIA_TYPE)


def json_page_response(page: dict[str, Any], encoded_items: list[str]) -> Response:
    """Return ``{"data": {**page, "items": [...]}}`` with items that are already JSON text."""
    head = json.dumps(page, ensure_ascii=False, separators=(",", ":"))
    body = f'{{"data":{head[:-1]},"items":[{",".join(encoded_items)}]}}}}'
    return Response(body, content_type=JSON_MEDIA_TYPE)


def is_org_path(path: str) -> bool:
    """Tell whether a path belongs to the org (Dreadnode-style) dialect."""
    return path.startswith(ORG_PATH_PREFIX)


def error_response(exc: Exception) -> Response:
    """Answer any exception in the envelope of the dialect the request's path belongs to."""
    if isinstance(exc, RequestEntityTooLarge) and request.max_content_length is not None:
        # Werkzeug's own refusal of a body over MAX_CONTENT_LENGTH, said with the limit and length.
        exc = raw_body_too_large(request.max_content_length, request.content_length)
    if isinstance(exc, EmulatorError):
        status, kind, message, data = exc.status, exc.error_type, exc.message, exc.data
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        kind = APIFY_HTTP_ERROR_TYPES.get(status, "invalid-input" if status < 500 else "internal-error")
        message = _http_message(status, exc)
        data = None
    else:
        # Never leak exception text; the traceback goes to the log.
        log.exception("unexpected error on %s %s", request.method, request.path)
        status, kind, message, data = 500, "internal-error", "Internal server error", None
    if is_org_path(request.path):
        response = _org_error(exc, status, message)
    else:
        error: dict[str, Any] = {"type": kind, "message": message}
        if data is not None:
            error["data"] = data
        response = json_response({"error": error}, status)
    if isinstance(exc, EmulatorError) and exc.headers:
        response.headers.update(exc.headers)
    if isinstance(exc, HTTPException):
        # Keep werkzeug's Allow on a 405 (RFC 9110 requires it); its other headers describe its HTML page.
        for name, value in exc.get_headers():
            if name.lower() == "allow":
                response.headers[name] = value
    return response


def _http_message(status: int, exc: HTTPException) -> str:
    if status == 404:
        return f"The route {request.method} {request.path} was not found"
    if status == 405:
        return f"The method {request.method} is not allowed for {request.path}"
    return exc.description or exc.name


def _org_error(exc: Exception, status: int, message: str) -> Response:
    if isinstance(exc, InvalidParameter):
        return org_validation_error([exc])
    if status == 401:
        # The documented 401 body, exactly: no other keys, whatever went wrong with the token.
        return json_response({"code": 401, "detail": "Authentication failed", "type": "authentication_error"}, 401)
    body = {"code": status, "detail": message, "type": ORG_ERROR_TYPES.get(status, "error"), "errors": None}
    return json_response(body, status)


def org_validation_error(problems: list[InvalidParameter]) -> Response:
    """Answer several parameter problems at once, as the org API's validation does."""
    errors = [{"loc": [p.location, p.parameter], "msg": p.rule, "type": "value_error"} for p in problems]
    detail = "; ".join(p.message for p in problems)
    body = {"code": 422, "detail": detail, "type": ORG_ERROR_TYPES[422], "errors": errors}
    return json_response(body, 422)
