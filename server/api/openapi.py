"""The OpenAPI 3.1 document, generated from the route declarations in `contract` and the pydantic schemas."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint
from pydantic import BaseModel

from server.api.context import runtime
from server.api.contract import OPERATIONS, Operation, operation

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
    },
}
REF_TEMPLATE = "#/components/schemas/{model}"
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
}


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    if op.query is not None:
        for name, schema in op.query.model_json_schema()["properties"].items():
            params.append({"name": name, "in": "query", "required": False, "schema": schema})
    return params


def _responses(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, description in op.responses.items():
        if status >= 400:
            content = {"application/problem+json": {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}}
        elif status == 204:
            content = {}
        else:
            content = {
                op.response_media: {"schema": {"type": "string", "format": "binary"}}
                if op.response_media.startswith("image/")
                else {"schema": {}}
            }
        responses[str(status)] = {"description": description, **({"content": content} if content else {})}
    problem = {"application/problem+json": {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}}
    if op.access != "public":
        responses.setdefault("401", {"description": "No valid access token", "content": problem})
    if op.access not in ("public", "any"):
        responses.setdefault(
            "403",
            {
                "description": "Not allowed for this session (role, enroll-only scope, or assurance: "
                "`mfa_required`, `step_up_required`)",
                "content": problem,
            },
        )
    if op.client_auth:
        responses.setdefault("401", {"description": "Client authentication failed", "content": problem})
    responses.setdefault(
        "422" if op.body or op.query else "400",
        {
            "description": "Invalid request",
            "content": {
                "application/problem+json": {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}
            },
        },
    )
    return responses


def openapi_document(public_url: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": op.endpoint.replace(".", "_"),
            "summary": op.summary,
            "tags": [op.tag],
            "responses": _responses(op),
        }
        if params := _parameters(op):
            entry["parameters"] = params
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema_ref(op.body, components)}},
            }
        entry["security"] = [] if op.access == "public" else [{"bearer": []}]
        if op.client_auth:
            entry["security"] = [{"client": []}, {}]
        entry["description"] = ACCESS_DESCRIPTIONS[op.access]
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tokenward",
            "version": "1",
            "description": "Second-factor authentication server: "
            "TOTP/HOTP, FIDO2/WebAuthn and OCRA fobs, with JWT sessions.",
        },
        "servers": [{"url": public_url}],
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


@operation(bp, "/openapi.json", "GET", summary="This document", responses={200: "OpenAPI 3.1"})
def openapi_json() -> Any:
    return openapi_document(runtime().settings.public_url)
