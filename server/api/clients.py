"""Administration of registered clients (relying parties): `/api/v1/admin/clients`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from server.db import current_session
from server.http.context import actor, runtime
from server.http.contract import Link, operation
from server.http.responses import ClientList, ClientWithSecret
from server.http.schemas import CLIENT_NAME, ClientCreateRequest
from server.services import clients
from server.services.sessions import Principal

bp = Blueprint("admin_clients", __name__, url_prefix="/api/v1/admin/clients")


def _with_secret(created: clients.NewClient) -> tuple[dict[str, Any], int, dict[str, str]]:
    view = {**clients.client_view(created.client), "client_secret": created.secret}
    return view, 201, {"Cache-Control": "no-store"}


@operation(
    bp,
    "",
    "GET",
    access="admin",
    summary="List clients",
    responses={200: "clients (never their secrets)"},
    model=ClientList,
)
def list_clients(principal: Principal) -> Any:
    return {"clients": [clients.client_view(client) for client in clients.list_clients(current_session())]}


@operation(
    bp,
    "",
    "POST",
    access="admin_step_up",
    body=ClientCreateRequest,
    summary="Register a client; its secret is in this answer only",
    responses={201: "The client with client_id and client_secret", 409: "The name is taken"},
    model=ClientWithSecret,
    links={
        "RotateSecret": Link("admin_clients.rotate_secret", {"name": "$response.body#/name"}),
        "RemoveClient": Link("admin_clients.remove_client", {"name": "$response.body#/name"}),
    },
)
def add_client(body: ClientCreateRequest, principal: Principal) -> Any:
    created = clients.add_client(
        current_session(),
        runtime(),
        name=body.name,
        audience=body.audience,
        allow=list(body.allow) if body.allow is not None else None,
        redirect_uris=list(body.redirect_uris),
        public=body.public,
        require=body.require or "",
        first_party=body.first_party,
        actor=actor(),
    )
    return _with_secret(created)


@operation(
    bp,
    "/<name>",
    "DELETE",
    access="admin_step_up",
    summary="Remove a client; its sessions and pending transactions end",
    responses={204: "Removed", 404: "No such client"},
    path_schemas={"name": CLIENT_NAME},
)
def remove_client(name: str, principal: Principal) -> Any:
    clients.remove_client(current_session(), runtime(), name=name, actor=actor())
    return Response(status=204)


@operation(
    bp,
    "/<name>/rotate-secret",
    "POST",
    access="admin_step_up",
    summary="Give a client a new secret (the old one stops working at once)",
    responses={
        201: "The client with its new client_secret",
        404: "No such client",
        409: "A public client has no secret",
    },
    model=ClientWithSecret,
    path_schemas={"name": CLIENT_NAME},
)
def rotate_secret(name: str, principal: Principal) -> Any:
    return _with_secret(clients.rotate_secret(current_session(), runtime(), name=name, actor=actor()))
