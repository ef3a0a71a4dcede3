"""RADIUS clients (NASes: VPN gateways, switches, PAM on a host) in the one client registry.

A NAS is a `clients` row like every other caller (its name, allowed methods and required sign-in; no HTTP
secret, so it never authenticates over HTTP) plus a `radius_clients` row: the network it speaks from and
its shared secret. RADIUS needs the secret itself (to check the Message-Authenticator and to decrypt
User-Password), so it is sealed with the instance key (AES-GCM, `radius:<client_id>` as associated data),
as token seeds are, not hashed.
"""

from __future__ import annotations

import ipaddress
import secrets
import string
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.errors import Conflict, NotFound, ValidationFailed
from server.models import Client, RadiusClient
from server.services import clients
from server.services.audit import Actor, record_event
from server.services.runtime import Runtime

# RFC 2865 asks for at least 16 octets; pam_radius_auth and most NASes take up to 64 printable characters.
MIN_SECRET_LENGTH, MAX_SECRET_LENGTH = 16, 64
_SECRET_CHARACTERS = frozenset(string.ascii_letters + string.digits + string.punctuation)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class RadiusPeer:
    """A registered NAS as the RADIUS door needs it for one request."""

    client: Client
    name: str
    network: Network
    secret: bytes
    code_only: bool
    require_message_authenticator: bool


@dataclass(frozen=True)
class NewRadiusClient:
    peer: RadiusPeer
    secret: str | None  # shown once when generated; None when the administrator supplied it


def _checked_network(address: str) -> Network:
    try:
        return ipaddress.ip_network(address.strip(), strict=True)
    except ValueError as err:
        raise ValidationFailed(f"address: not a network in CIDR notation ({err})") from None


def _checked_secret(secret: str) -> str:
    if not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH or not set(secret) <= _SECRET_CHARACTERS:
        raise ValidationFailed(
            f"secret: {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} printable ASCII characters, no spaces"
        )
    return secret


def _sealed_secret(rt: Runtime, client_id: str, secret: str) -> bytes:
    return rt.box.seal(secret.encode(), associated_data=f"radius:{client_id}")


def _peer(rt: Runtime, client: Client, row: RadiusClient) -> RadiusPeer:
    secret = rt.box.open(row.secret_encrypted, associated_data=f"radius:{client.id}")
    network = ipaddress.ip_network(row.address)
    return RadiusPeer(client, client.name, network, secret, row.code_only, row.require_message_authenticator)


def add_radius_client(
    session: Session,
    rt: Runtime,
    *,
    name: str,
    address: str,
    secret: str | None = None,
    code_only: bool = False,
    require_message_authenticator: bool = True,
    allow: list[str] | None = None,
    require: str = "",
    actor: Actor,
) -> NewRadiusClient:
    """Registers a NAS; generates its shared secret unless one is given. Commits."""
    network = _checked_network(address)
    given = _checked_secret(secret) if secret is not None else None
    shared = given or secrets.token_urlsafe(24)  # 32 characters, 192 bits
    if "webauthn" in (allow or []):
        raise ValidationFailed("allow: RADIUS carries otp and fob answers, not WebAuthn")
    if code_only and require:
        # Tokenward sees a code alone (the NAS checked the password): single-factor, refused by every request.
        raise ValidationFailed(
            "require: a code-only NAS checks the password itself; its sign-ins are single-factor"
        )
    created = clients.add_client(
        session, rt, name=name, allow=allow or ["otp", "fob"], public=True, require=require, actor=actor
    )
    client = created.client
    row = RadiusClient(
        client_id=client.id,
        address=str(network),
        secret_encrypted=_sealed_secret(rt, client.id, shared),
        code_only=code_only,
        require_message_authenticator=require_message_authenticator,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as err:
        session.rollback()
        session.delete(client)
        session.commit()
        raise Conflict(f"A RADIUS client for {network} exists") from err
    record_event(
        session, actor=actor, action="radius_client.add", result="success", now=rt.now(), target=name
    )
    session.commit()
    return NewRadiusClient(_peer(rt, client, row), None if given else shared)


def list_radius_clients(session: Session, rt: Runtime) -> list[RadiusPeer]:
    rows = session.execute(
        select(Client, RadiusClient)
        .join(RadiusClient, RadiusClient.client_id == Client.id)
        .order_by(Client.name)
    ).all()
    return [_peer(rt, client, row) for client, row in rows]


def remove_radius_client(session: Session, rt: Runtime, *, name: str, actor: Actor) -> None:
    """Removes the NAS and its registry entry (its pending challenges go with it). Commits."""
    client = clients.get_client(session, name=name)
    if session.get(RadiusClient, client.id) is None:
        raise NotFound("No such RADIUS client")
    clients.remove_client(session, rt, name=name, actor=actor)


def peer_for_address(session: Session, rt: Runtime, *, address: Address) -> RadiusPeer | None:
    """The NAS registered for the network holding `address` (the most specific one), or None."""
    best: tuple[Client, RadiusClient, Network] | None = None
    for client, row in session.execute(
        select(Client, RadiusClient).join(RadiusClient, RadiusClient.client_id == Client.id)
    ).all():
        network = ipaddress.ip_network(row.address)
        if address in network and (best is None or network.prefixlen > best[2].prefixlen):
            best = (client, row, network)
    return _peer(rt, best[0], best[1]) if best is not None else None


def radius_client_view(peer: RadiusPeer) -> dict[str, Any]:
    return {
        "name": peer.name,
        "client_id": peer.client.id,
        "address": str(peer.network),
        "code_only": peer.code_only,
        "require_message_authenticator": peer.require_message_authenticator,
        "allow": peer.client.allowed_methods.split(),
        "require": peer.client.required_acr or None,
    }
