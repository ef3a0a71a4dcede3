"""The OpenAPI 3.1 document, generated from the route declarations in `contract` and the pydantic schemas."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from server.config import Settings
from server.http.context import runtime
from server.http.contract import OPERATIONS, Answer, Operation, operation
from server.http.responses import OpenApiDocument

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable machine-readable code"},
        "incident": {"type": "string", "description": "500 only: quote it to the operator"},
    },
}
REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM_MEDIA = "application/problem+json"
PROBLEM_REF = {"$ref": REF_TEMPLATE.format(model="Problem")}
RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}
ACCESS_DESCRIPTIONS = {
    "public": "No session needed.",
    "any": "Any valid session, an application's (a client's, with `azp`) included.",
    "session": "Any of Tokenward's own sessions, an enroll-only one included.",
    "enroll": "An enroll-only session, or a multi-factor session whose second factor was answered within "
    "TOKENWARD_STEP_UP_MAX_AGE (else 403 `step_up_required`).",
    "user": "A full session.",
    "step_up": "A multi-factor session whose second factor was answered within TOKENWARD_STEP_UP_MAX_AGE "
    "(else 403 `step_up_required`; answer POST /api/v1/step-up).",
    "admin": "A multi-factor session of a user with role admin (else 403 `mfa_required` or `forbidden`).",
    "admin_step_up": "A multi-factor session of a user with role admin whose second factor was answered "
    "within TOKENWARD_STEP_UP_MAX_AGE (else 403 `mfa_required`, `forbidden` or `step_up_required`; answer "
    "POST /api/v1/step-up).",
}


def _schema_ref(
    model: type[BaseModel], components: dict[str, Any], *, mode: JsonSchemaMode
) -> dict[str, str]:
    """The model's schema in components (request bodies in validation mode, answers in serialization
    mode), named after it; a request and an answer never share a model name."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _parameters(op: Operation) -> list[dict[str, Any]]:
    path_schemas = op.path_schemas or {}
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": path_schemas.get(name, {"type": "string", "minLength": 1}),
        }
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        for name, schema in op.query.model_json_schema()["properties"].items():
            params.append({"name": name, "in": "query", "required": False, "schema": schema})
    return params


def _content(media: str, model: type[BaseModel] | None, components: dict[str, Any]) -> dict[str, Any]:
    if not media:
        return {}
    if model is not None:
        schema: dict[str, Any] = _schema_ref(model, components, mode="serialization")
    elif media.startswith("image/"):
        schema = {"type": "string", "format": "binary"}
    else:
        schema = {"type": "string"}  # text/html pages, the Prometheus text format
    return {"content": {media: {"schema": schema}}}


def _generic_responses(op: Operation) -> dict[int, str]:
    """What any operation of its kind may answer, beside what it declares."""
    # Answered by the serving layer before any route (server/gunicorn_worker.py), for every request.
    generic: dict[int, str] = {
        400: "The request is malformed (`malformed_request`)",
        408: "The request did not arrive whole within TOKENWARD_CLIENT_REQUEST_TIMEOUT (`request_timeout`)",
        414: "The request line is too long (`request_line_too_long`)",
        431: "The headers are too many or too large (`headers_too_large`)",
    }
    if op.body is not None:
        generic[400] = "The body is not a JSON object (`malformed_request`)"
        generic[413] = "The body is larger than TOKENWARD_MAX_BODY_BYTES (`body_too_large`)"
    if op.body is not None or op.query is not None:
        generic[422] = "The body or query does not match its schema (`validation_error`)"
    if "{" in op.path:
        generic[404] = "No such resource (`not_found`)"
    if op.access != "public" or op.client_auth:
        generic[401] = "No valid access token (`unauthenticated`, `invalid_token`)"
    if op.access not in ("public", "any") or (op.access == "any" and op.method not in ("get", "head")):
        generic[403] = (
            "Not allowed for this session (`forbidden`: role or enroll-only scope; `mfa_required`, "
            "`step_up_required`; `csrf_failed` for a cookie session without the CSRF header)"
        )
    if op.uses_database:
        generic[503] = "A backing service (the database) is unavailable; retry after Retry-After seconds"
    return generic


def _responses(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    declared = {**_generic_responses(op), **op.responses}
    for status, answer in sorted(declared.items()):
        if isinstance(answer, Answer):
            entry = {"description": answer.description, **_content(answer.media, answer.model, components)}
        elif status >= 400:
            entry = {"description": answer, "content": {PROBLEM_MEDIA: {"schema": PROBLEM_REF}}}
        elif status == 204 or 300 <= status < 400:
            entry = {"description": answer}
        else:
            entry = {"description": answer, **_content(op.response_media, op.model, components)}
        if status == 429 or (status == 503 and "content" in entry):
            entry["headers"] = {"Retry-After": RETRY_AFTER}
        if 300 <= status < 400:
            entry["headers"] = {"Location": {"description": "Where to go", "schema": {"type": "string"}}}
        if op.links and 200 <= status < 300:
            entry["links"] = {
                name: {"operationId": operation_id(link.endpoint), "parameters": link.parameters}
                for name, link in op.links.items()
            }
        responses[str(status)] = entry
    return responses


def operation_id(endpoint: str) -> str:
    return endpoint.replace(".", "_")


def openapi_document(settings: Settings) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": operation_id(op.endpoint),
            "summary": op.summary,
            "tags": [op.tag],
            "responses": _responses(op, components),
        }
        if params := _parameters(op):
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": _schema_ref(op.body, components, mode="validation")}
                },
            }
        entry["security"] = [] if op.access == "public" else [{"bearer": []}]
        if op.client_auth:
            entry["security"] = [{"client": []}, {}]
        entry["description"] = ACCESS_DESCRIPTIONS[op.access]
        paths.setdefault(op.path, {})[op.method] = entry
    _configured_limits(components, settings)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tokenward",
            "version": "1",
            "description": "Second-factor authentication server: "
            "TOTP/HOTP, FIDO2/WebAuthn and OCRA fobs, with JWT sessions.",
        },
        "servers": [{"url": settings.public_url}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "client": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A registered client's client_id and client_secret",
                },
            },
        },
    }


def _configured_limits(components: dict[str, Any], settings: Settings) -> None:
    """Bounds that come from the configuration rather than the code, so the document states this server's."""
    ttl = components.get("TemporaryCodeRequest", {}).get("properties", {}).get("ttl")
    if ttl is not None:
        ttl["maximum"] = settings.temporary_code_max_ttl


@operation(
    bp,
    "/openapi.json",
    "GET",
    summary="This document",
    responses={200: "OpenAPI 3.1"},
    model=OpenApiDocument,
    uses_database=False,
)
def openapi_json() -> Any:
    return openapi_document(runtime().settings)
