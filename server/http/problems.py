"""The one place errors become `application/problem+json` (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from server.errors import InvalidClient, ServiceUnavailable, TokenwardError
from server.http.context import request_id

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://tokenward.dev/problems/"

# Stable codes for werkzeug's HTTP errors (they carry no code of their own).
_HTTP_CODES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def problem(*, status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def tokenward_problem(err: TokenwardError) -> Response:
    if err.status >= 500:
        log.error("%s [request %s]: %s", type(err).__name__, request_id(), err.detail)
    response = problem(status=err.status, code=err.code, title=err.title, detail=err.detail, **err.extra)
    if isinstance(err, InvalidClient):
        response.headers["WWW-Authenticate"] = 'Basic realm="tokenward"'
    if isinstance(err, ServiceUnavailable) and err.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(err.retry_after_seconds)
    return response


def _http_error(err: HTTPException) -> Response:
    status = err.code or 500
    code = _HTTP_CODES.get(status, "http_error")
    title = err.name
    detail = {
        404: "No resource at this address",
        405: "This method is not allowed here",
        413: "The request body is too large",
        429: "Too many requests; retry later",
    }.get(status, title)
    response = problem(status=status, code=code, title=title, detail=detail)
    headers = dict(err.get_headers())
    for name in ("Allow", "Retry-After"):
        if name in headers:
            response.headers[name] = headers[name]
    return response


def _unexpected(err: Exception) -> Response:
    incident = request_id()
    log.exception("unexpected error [request %s]", incident)
    return problem(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail=f"An unexpected error occurred; quote incident {incident} to the operator",
        incident=incident,
    )


def register_problem_handlers(app: Flask) -> None:
    app.register_error_handler(TokenwardError, tokenward_problem)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
