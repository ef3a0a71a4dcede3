"""The software authenticator's credential commands: authenticatorMakeCredential, authenticatorGetAssertion
and authenticatorGetNextAssertion (CTAP 2.1, sections 6.1 to 6.3), ES256 only.

Deviation kept on purpose: a silent assertion (option up=false, what clients send to probe an allowList)
does not advance the signature counter, so the counter a relying party sees counts real uses.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.ctap import CtapError
from fido2.ctap2.base import AssertionResponse
from fido2.webauthn import Aaguid, AttestedCredentialData, AuthenticatorData

from devices.fido.attestation import AttestationFormat, AttestationIdentity, attestation_statement, sign_es256
from devices.fido.client_pin import ClientPinAuthority, Permission
from devices.fido.credential_store import AuthenticatorState, StoredCredential
from devices.fido.ctap_requests import GetAssertionRequest, MakeCredentialRequest
from devices.fido.presence import Interaction, PresenceCheck, PresenceRequest, require_presence

__all__ = ["CREDENTIAL_ID_BYTES", "MAX_SIGN_COUNT", "AuthenticatorProfile", "CredentialCommands"]

ERR = CtapError.ERR
FLAG = AuthenticatorData.FLAG
CREDENTIAL_ID_BYTES = 32
MAX_SIGN_COUNT = 0xFFFF_FFFF  # authenticatorData holds 32 bits
_COMMAND_NAMES = {Permission.MAKE_CREDENTIAL: "makeCredential", Permission.GET_ASSERTION: "getAssertion"}


@dataclass(frozen=True)
class AuthenticatorProfile:
    """What model of key this is: its AAGUID, whether it has built-in UV (a fingerprint reader), and how it
    attests new credentials."""

    aaguid: Aaguid
    builtin_uv: bool
    attestation: AttestationFormat
    attestation_identity: AttestationIdentity | None


@dataclass(frozen=True)
class _PendingAssertions:
    """Credentials left for getNextAssertion after a usernameless getAssertion."""

    rp_id: str
    client_data_hash: bytes
    flags: AuthenticatorData.FLAG
    credential_ids: tuple[bytes, ...]


def _rp_id_hash(rp_id: str) -> bytes:
    return hashlib.sha256(rp_id.encode("utf-8")).digest()


class CredentialCommands:
    """Runs the credential commands on `state`; `save` makes each change durable before the answer."""

    def __init__(
        self,
        state: AuthenticatorState,
        *,
        profile: AuthenticatorProfile,
        pin: ClientPinAuthority,
        presence: PresenceCheck,
        save: Callable[[], None],
    ) -> None:
        self._state = state
        self._profile = profile
        self._pin = pin
        self._presence = presence
        self._save = save
        self._pending: _PendingAssertions | None = None

    def end_assertion_sequence(self) -> None:
        """Any command but getNextAssertion ends the sequence a usernameless getAssertion started."""
        self._pending = None

    def make_credential(self, request: MakeCredentialRequest, interaction: Interaction) -> dict[int, Any]:
        if ES256.ALGORITHM not in request.algorithms:
            raise CtapError(ERR.UNSUPPORTED_ALGORITHM)
        if request.options.get("up") is False:
            raise CtapError(ERR.INVALID_OPTION)
        discoverable = request.options.get("rk", False)
        verified = self._verify_user(request, Permission.MAKE_CREDENTIAL, interaction)
        if discoverable and not verified and (self._pin.pin_is_set or self._profile.builtin_uv):
            raise CtapError(ERR.PUAT_REQUIRED)  # makeCredUvNotRqd covers non-discoverable credentials only
        excluded = any(self._state.find(request.rp_id, i) is not None for i in request.exclude_ids)
        self._require_presence(Permission.MAKE_CREDENTIAL, request.rp_id, interaction)
        if excluded:
            raise CtapError(ERR.CREDENTIAL_EXCLUDED)
        credential = self._store_new_credential(request, discoverable=discoverable)
        public_key = ES256.from_cryptography_key(credential.private_key.public_key())  # type: ignore[no-untyped-call]
        auth_data = AuthenticatorData.create(
            _rp_id_hash(request.rp_id),
            FLAG.UP | FLAG.AT | (FLAG.UV if verified else FLAG(0)),
            credential.sign_count,
            AttestedCredentialData.create(self._profile.aaguid, credential.credential_id, public_key),
        )
        statement = attestation_statement(
            self._profile.attestation,
            signed_data=auth_data + request.client_data_hash,
            credential_key=credential.private_key,
            identity=self._profile.attestation_identity,
        )
        return {0x01: self._profile.attestation, 0x02: auth_data, 0x03: statement}

    def get_assertion(self, request: GetAssertionRequest, interaction: Interaction) -> Mapping[int, Any]:
        if "rk" in request.options:
            raise CtapError(ERR.UNSUPPORTED_OPTION)
        present = request.options.get("up", True)
        verified = self._verify_user(request, Permission.GET_ASSERTION, interaction)
        if request.allow_ids:
            allowed = (self._state.find(request.rp_id, credential_id) for credential_id in request.allow_ids)
            found = [credential for credential in allowed if credential is not None][:1]
        else:
            found = self._state.discoverable(request.rp_id)
        if present:  # asked even when nothing matches: the answer must not reveal what the key holds
            self._require_presence(Permission.GET_ASSERTION, request.rp_id, interaction)
        if not found:
            raise CtapError(ERR.NO_CREDENTIALS)
        flags = (FLAG.UP if present else FLAG(0)) | (FLAG.UV if verified else FLAG(0))
        first, *rest = found
        if rest:
            remaining = tuple(credential.credential_id for credential in rest)
            self._pending = _PendingAssertions(request.rp_id, request.client_data_hash, flags, remaining)
        return self._assertion(first, request.client_data_hash, flags, total=len(found) if rest else None)

    def get_next_assertion(self) -> Mapping[int, Any]:
        pending, self._pending = self._pending, None
        if pending is None:
            raise CtapError(ERR.NOT_ALLOWED)
        credential_id, *remaining = pending.credential_ids
        credential = self._state.find(pending.rp_id, credential_id)
        if credential is None:  # the credentials were cleared in between
            raise CtapError(ERR.NOT_ALLOWED)
        if remaining:
            self._pending = _PendingAssertions(
                pending.rp_id, pending.client_data_hash, pending.flags, tuple(remaining)
            )
        return self._assertion(credential, pending.client_data_hash, pending.flags, total=None)

    def _store_new_credential(
        self, request: MakeCredentialRequest, *, discoverable: bool
    ) -> StoredCredential:
        """A new key pair; a discoverable credential replaces the RP's one for the same user (CTAP 2.1)."""
        credential = StoredCredential(
            credential_id=secrets.token_bytes(CREDENTIAL_ID_BYTES),
            rp_id=request.rp_id,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            user_id=request.user.id,
            user_name=request.user.name,
            user_display_name=request.user.display_name,
            discoverable=discoverable,
            sequence=self._state.next_sequence(),
        )
        before = list(self._state.credentials)
        if discoverable:
            replaced = {
                c.credential_id
                for c in self._state.discoverable(request.rp_id)
                if c.user_id == request.user.id
            }
            self._state.credentials[:] = [
                c for c in self._state.credentials if c.credential_id not in replaced
            ]
        self._state.credentials.append(credential)
        try:
            self._save()
        except BaseException:  # nothing stored: the key holds what its state file holds
            self._state.credentials[:] = before
            raise
        return credential

    def _assertion(
        self,
        credential: StoredCredential,
        client_data_hash: bytes,
        flags: AuthenticatorData.FLAG,
        *,
        total: int | None,
    ) -> Mapping[int, Any]:
        if flags & FLAG.UP:
            credential.sign_count = min(credential.sign_count + 1, MAX_SIGN_COUNT)
            self._save()
        auth_data = AuthenticatorData.create(_rp_id_hash(credential.rp_id), flags, credential.sign_count)
        user: dict[str, Any] | None = None
        if credential.discoverable:
            user = {"id": credential.user_id}
            if flags & FLAG.UV:  # CTAP 2.1: names only after user verification
                names = {"name": credential.user_name, "displayName": credential.user_display_name}
                user.update({key: value for key, value in names.items() if value is not None})
        response = AssertionResponse(
            credential={"id": credential.credential_id, "type": "public-key"},
            auth_data=auth_data,
            signature=sign_es256(credential.private_key, auth_data + client_data_hash),
            user=user,
            number_of_credentials=total,
        )
        return dict(response)

    def _verify_user(
        self,
        request: MakeCredentialRequest | GetAssertionRequest,
        permission: Permission,
        interaction: Interaction,
    ) -> bool:
        """Whether user verification was performed: a valid pinUvAuthParam (made with a token from the PIN or
        from built-in UV), or the "uv" option on a key with built-in UV."""
        auth = request.auth
        if auth.param is not None:
            if not auth.param:  # empty: CTAP 2.0's way for a platform to ask which key the person touches
                self._require_presence(permission, request.rp_id, interaction)
                raise CtapError(ERR.PIN_INVALID if self._pin.pin_is_set else ERR.PIN_NOT_SET)
            self._pin.verify(
                auth.param,
                auth.protocol,
                client_data_hash=request.client_data_hash,
                permission=permission,
                rp_id=request.rp_id,
            )
            return True
        if request.options.get("uv", False):
            if not self._profile.builtin_uv:
                raise CtapError(ERR.INVALID_OPTION)
            return True
        return False

    def _require_presence(self, permission: Permission, rp_id: str, interaction: Interaction) -> None:
        require_presence(self._presence, PresenceRequest(_COMMAND_NAMES[permission], rp_id), interaction)
