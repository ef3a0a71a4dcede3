"""The client registry: every caller that is not a person signed in with two factors (an application's
login form calling one-step verify; later OpenID Connect relying parties and RADIUS NASes).

Secrets are 256 random bits, shown once and stored as HMAC-SHA256 under a per-client salt: a guess-proof
secret needs no slow password hash, so the verify hot path pays one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import Conflict, InvalidClient, MethodNotAllowed, NotFound, ValidationFailed
from server.models import Client
from server.services.assurance import Acr
from server.services.audit import Actor, record_event
from server.services.runtime import Runtime
from server.services.verify_rows import ClientRow, read_client

__all__ = [
    "Client",  # the model, re-exported for the HTTP layer's type hints (it may not import models)
    "ClientRow",
    "NewClient",
    "add_client",
    "allowed_methods",
    "authenticate_client",
    "authenticate_client_row",
    "client_view",
    "get_client",
    "list_clients",
    "remove_client",
    "require_method",
    "rotate_secret",
]

METHODS = ("otp", "fob", "webauthn")
CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CLIENT_ID = re.compile(r"^[0-9a-f]{32}$")
REQUIRABLE = (Acr.MFA, Acr.PHISHING_RESISTANT)
# An unknown client_id still costs one HMAC, so a guess at ids learns nothing from the time taken.
_DUMMY_SALT = secrets.token_bytes(16)
# Built once: a client is read on every one-step verify (session.get would build its query each time).
_CLIENT_BY_ID = select(Client).where(Client.id == bindparam("client_id"))


@dataclass(frozen=True)
class NewClient:
    client: Client
    secret: str | None  # shown once; None for a public client, which cannot keep one


def _digest(salt: bytes, secret: str) -> str:
    return hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()


def _new_secret(client: Client) -> str:
    secret = secrets.token_urlsafe(32)
    client.secret_salt = secrets.token_bytes(16)
    client.secret_hash = _digest(client.secret_salt, secret)
    return secret


def _checked_methods(allow: list[str] | None) -> str:
    methods = allow if allow else list(METHODS)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValidationFailed(f"allow: unknown method {', '.join(unknown)} (known: {', '.join(METHODS)})")
    return " ".join(method for method in METHODS if method in methods)


def add_client(
    session: Session,
    rt: Runtime,
    *,
    name: str,
    audience: str | None = None,
    allow: list[str] | None = None,
    redirect_uris: list[str] | None = None,
    public: bool = False,
    require: str = "",
    first_party: bool = False,
    actor: Actor,
) -> NewClient:
    if not CLIENT_NAME.match(name):
        raise ValidationFailed("name: 1-64 letters, digits or . _ -, starting with a letter or digit")
    if require and require not in REQUIRABLE:
        raise ValidationFailed("require: mfa or phishing-resistant")
    for uri in redirect_uris or []:
        _check_redirect_uri(uri)
    client_id = secrets.token_hex(16)
    if audience is not None and not 0 < len(audience) <= 255:
        raise ValidationFailed("audience: 1 to 255 characters")
    if audience is not None and (audience != audience.strip() or not audience.isprintable()):
        raise ValidationFailed("audience: no surrounding spaces or control characters")
    if audience == rt.settings.jwt_audience:
        # A client's sessions would pass for Tokenward's own wherever that audience is accepted.
        raise ValidationFailed(f"audience: {audience!r} is Tokenward's own (TOKENWARD_JWT_AUDIENCE)")
    if audience is not None and session.scalar(
        select(Client.id).where(or_(Client.audience == audience, Client.id == audience))
    ):
        # Its sessions would pass for the other client's, whose policy (required level, methods) it may lack.
        raise Conflict(f"audience: {audience!r} is another client's")
    client = Client(
        id=client_id,
        name=name,
        audience=audience or client_id,
        allowed_methods=_checked_methods(allow),
        redirect_uris="\n".join(redirect_uris or []),
        public=public,
        required_acr=require,
        first_party=first_party,
        created_at=rt.now(),
    )
    secret = None if public else _new_secret(client)
    if public:
        client.secret_salt, client.secret_hash = b"", ""  # nothing to authenticate with: it keeps no secret
    session.add(client)
    try:
        session.flush()
    except IntegrityError as err:
        session.rollback()
        raise Conflict("A client with this name exists") from err
    record_event(session, actor=actor, action="client.add", result="success", now=rt.now(), target=name)
    session.commit()
    return NewClient(client, secret)


def _check_redirect_uri(uri: str) -> None:
    """An absolute http(s) URI without fragment or wildcard: it is matched exactly (OpenID Connect)."""
    try:
        parts = urlsplit(uri)
        hostname = parts.hostname
    except ValueError:  # a bracketed host that is no IPv6 address, or an unclosed bracket
        hostname = None
    if parts.scheme not in ("http", "https") or not hostname or parts.fragment or "*" in uri:
        raise ValidationFailed(f"redirect-uri: {uri[:100]!r} is not an absolute http(s) URI without fragment")
    if len(uri) > 2000 or "\n" in uri:
        raise ValidationFailed("redirect-uri: too long")


def get_client(session: Session, *, name: str) -> Client:
    client: Client | None = (
        session.scalar(select(Client).where(Client.name == name)) if CLIENT_NAME.match(name) else None
    )
    if client is None:
        raise NotFound("No such client")
    return client


def list_clients(session: Session) -> list[Client]:
    return list(session.scalars(select(Client).order_by(Client.name)))


def remove_client(session: Session, rt: Runtime, *, name: str, actor: Actor) -> None:
    """Removes the client; its pending transactions and its sessions go with it (ON DELETE CASCADE)."""
    client = get_client(session, name=name)
    session.delete(client)
    record_event(session, actor=actor, action="client.remove", result="success", now=rt.now(), target=name)
    session.commit()


def rotate_secret(session: Session, rt: Runtime, *, name: str, actor: Actor) -> NewClient:
    client = get_client(session, name=name)
    if client.public:
        raise Conflict("A public client has no secret")
    secret = _new_secret(client)
    record_event(
        session, actor=actor, action="client.rotate_secret", result="success", now=rt.now(), target=name
    )
    session.commit()
    return NewClient(client, secret)


def authenticate_client(session: Session, *, client_id: str, secret: str) -> Client:
    """The confidential client whose id and secret these are; InvalidClient otherwise (same cost either
    way). A public client has no secret and never authenticates here."""
    client: Client | None = (
        session.scalar(_CLIENT_BY_ID, {"client_id": client_id}) if CLIENT_ID.match(client_id) else None
    )
    _check_secret(client, secret)
    assert client is not None
    return client


def authenticate_client_row(session: Session, *, client_id: str, secret: str) -> ClientRow:
    """`authenticate_client` read as a plain row, off the ORM session's unit of work (the one-step verify's
    hot path, server.services.one_step)."""
    client = read_client(session.connection(), client_id=client_id) if CLIENT_ID.match(client_id) else None
    _check_secret(client, secret)
    assert client is not None
    return client


def _check_secret(client: Client | ClientRow | None, secret: str) -> None:
    """InvalidClient unless `client` is a confidential client and `secret` its secret; one HMAC either way."""
    known = client is not None and not client.public
    expected = client.secret_hash if client is not None and known else ""
    presented = _digest(client.secret_salt if client is not None and known else _DUMMY_SALT, secret[:256])
    if client is None or not known or not hmac.compare_digest(expected, presented):
        raise InvalidClient()


def allowed_methods(client: Client | ClientRow | None) -> tuple[str, ...]:
    return tuple(client.allowed_methods.split()) if client is not None else METHODS


def require_method(client: Client | ClientRow | None, method: str) -> None:
    if method not in allowed_methods(client):
        raise MethodNotAllowed()


def client_view(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.id,
        "name": client.name,
        "audience": client.audience,
        "allow": client.allowed_methods.split(),
        "redirect_uris": [uri for uri in client.redirect_uris.split("\n") if uri],
        "public": client.public,
        "require": client.required_acr or None,
        "first_party": client.first_party,
        "created_at": client.created_at,
    }
