"""Routes declared once: the URL rule, who may call it, the body it takes and what it answers.

The same declaration registers the Flask view, validates the body and query string, authenticates the
caller and feeds the OpenAPI document, so the document cannot drift from the routes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError

from server.errors import ValidationFailed
from server.http.auth import authenticate_request
from server.http.context import describe_validation_error, parse_body
from server.services.assurance import Access


@dataclass(frozen=True)
class Answer:
    """A response that is not the operation's usual kind: a JSON body of another model (an OAuth error), an
    HTML page, or a redirect (`media=""`: no body)."""

    description: str
    model: type[BaseModel] | None = None
    media: str = "application/json"


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from a success answer to an operation on what it created: `parameters` maps the
    target's parameter names to runtime expressions (`$response.body#/id`)."""

    endpoint: str  # the target's Flask endpoint, e.g. "admin.show_user"
    parameters: dict[str, str]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI form: /api/v1/tokens/{token_id}
    summary: str
    tag: str
    access: Access
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[int, str | Answer]
    endpoint: str
    response_media: str = "application/json"
    client_auth: bool = False  # the view authenticates a registered client (HTTP Basic) for some bodies
    model: type[BaseModel] | None = None  # the success body (JSON)
    uses_database: bool = True  # so it answers 503 when the database is unavailable
    path_schemas: dict[str, dict[str, Any]] | None = None  # JSON Schemas of path parameters, by name
    links: dict[str, Link] | None = None  # from the success answer, by name
    rate_limited: bool = False  # counted by the secret-check rate limits (server.http.ratelimits)


OPERATIONS: list[Operation] = []


def _openapi_path(rule: str) -> str:
    """`/tokens/<token_id>` → `/tokens/{token_id}` (converters such as `<int:x>` are not used here)."""
    return rule.replace("<", "{").replace(">", "}")


def operation(
    blueprint: Blueprint,
    rule: str,
    method: str,
    *,
    summary: str,
    responses: dict[int, str | Answer],
    model: type[BaseModel] | None = None,
    access: Access = "public",
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response_media: str = "application/json",
    client_auth: bool = False,
    uses_database: bool = True,
    path_schemas: dict[str, dict[str, Any]] | None = None,
    links: dict[str, Link] | None = None,
    rate_limited: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Registers a view. The view receives `body=` / `query=` / `principal=` keyword arguments when declared.

    `access`: what the caller's session must be (server.services.assurance.Access): public, any,
    session, enroll, user, step_up, admin or admin_step_up. `model`: the success body; what the view returns
    (a dict, or a `(dict, status[, headers])` tuple) is validated against it and serialized from it.
    `rate_limited`: the view checks a secret, so the per-IP and per-user limits count it
    (server.http.ratelimits)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def handle(**path_args: Any) -> Any:
            if access != "public":
                path_args["principal"] = authenticate_request(access)
            if body is not None:
                path_args["body"] = parse_body(body)
            if query is not None:
                path_args["query"] = _parse_query(query)
            return _serialized(view(**path_args), model)

        blueprint.add_url_rule(rule, view_func=handle, methods=[method])
        OPERATIONS.append(
            Operation(
                method=method.lower(),
                path=_openapi_path((blueprint.url_prefix or "") + rule),
                summary=summary,
                tag=blueprint.name,
                access=access,
                body=body,
                query=query,
                responses=responses,
                endpoint=f"{blueprint.name}.{view.__name__}",
                response_media=response_media,
                client_auth=client_auth,
                model=model,
                uses_database=uses_database,
                path_schemas=path_schemas,
                links=links,
                rate_limited=rate_limited,
            )
        )
        return handle

    return decorate


def _serialized(result: Any, model: type[BaseModel] | None) -> Any:
    """The view's answer through its declared model; responses the view built itself pass untouched."""
    if model is None or isinstance(result, Response):
        return result
    body, *rest = result if isinstance(result, tuple) else (result,)
    if isinstance(body, Response):
        return result
    checked = body if isinstance(body, model) else model.model_validate(body)
    payload = checked.model_dump(mode="json", exclude_unset=True)
    return (payload, *rest) if rest else payload


def _parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string through its model; a name given twice is refused (which one would count?)."""
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise ValidationFailed(f"{', '.join(repeated)[:200]}: given more than once")
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as err:
        raise ValidationFailed(describe_validation_error(err)) from err
