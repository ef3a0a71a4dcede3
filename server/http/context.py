"""What a view needs from the request: the runtime, the acting client, and a validated body."""

from __future__ import annotations

import json
import secrets
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from server.errors import MalformedRequest, ValidationFailed
from server.services.audit import Actor
from server.services.runtime import Runtime
from server.services.sessions import Principal

Model = TypeVar("Model", bound=BaseModel)


def runtime() -> Runtime:
    return current_app.extensions["tokenward"]  # type: ignore[no-any-return]


def _request_state() -> dict[str, Any]:
    """Values that live as long as one request. Not `flask.g`: that lives on the app context, which a caller
    holding one open (a console command, a test) shares across every request it makes."""
    state: dict[str, Any] = request.environ.setdefault("tokenward.request_state", {})
    return state


def request_id() -> str:
    state = _request_state()
    if "request_id" not in state:
        state["request_id"] = secrets.token_hex(8)
    return str(state["request_id"])


def set_principal(principal: Principal) -> None:
    _request_state()["principal"] = principal


def current_principal() -> Principal | None:
    principal: Principal | None = _request_state().get("principal")
    return principal


def client_ip() -> str:
    return request.remote_addr or ""


def actor(name: str = "anonymous") -> Actor:
    principal = current_principal()
    return Actor(
        name=principal.user.username if principal else name, client_ip=client_ip(), request_id=request_id()
    )


def _read_body() -> bytes:
    """The raw body, at most MAX_CONTENT_LENGTH bytes. Werkzeug enforces the limit on a Content-Length; a
    chunked body (no length) it silently cuts at the limit, so that one is counted here and refused whole."""
    limit: int = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        raw: bytes = request.environ["wsgi.input"].read(limit + 1)
        if len(raw) > limit:
            raise RequestEntityTooLarge()
        return raw
    return request.get_data(cache=True)


def json_body() -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type; an empty body is `{}`."""
    state = _request_state()
    if "json_body" not in state:
        raw = _read_body()
        if not raw.strip():
            state["json_body"] = {}
        else:
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: hostile nesting depth
                data = None
            if not isinstance(data, dict):
                raise MalformedRequest()
            state["json_body"] = data
    body: dict[str, Any] = state["json_body"]
    return body


def parse_body(model: type[Model]) -> Model:
    try:
        return model.model_validate(json_body())
    except ValidationError as err:
        raise ValidationFailed(describe_validation_error(err)) from err


def describe_validation_error(err: ValidationError) -> str:
    """Field paths and messages only: pydantic's `input` would echo what the client sent (maybe a secret)."""
    parts = []
    for item in err.errors(include_input=False, include_url=False)[:10]:
        where = ".".join(str(part) for part in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
