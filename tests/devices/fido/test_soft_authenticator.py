"""The software authenticator as python-fido2's client and server see it: getInfo, registration and
assertions, per-credential counters, discoverable credentials, user presence and verification."""

from __future__ import annotations

import pytest
from fido2.client import ClientError
from fido2.cose import ES256
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.hid import CTAPHID
from fido2.webauthn import ResidentKeyRequirement, UserVerificationRequirement

from devices.fido.presence import Presence, PresenceRequest
from devices.fido.soft_authenticator import SOFT_AUTHENTICATOR_AAGUID, SoftAuthenticator
from tests.devices.fido.relying_party import Interaction, RelyingParty, counter_of, credential_of

REQUIRED = ResidentKeyRequirement.REQUIRED
UV_REQUIRED = UserVerificationRequirement.REQUIRED


def test_get_info_describes_a_ctap21_es256_key(authenticator: SoftAuthenticator) -> None:
    info = Ctap2(authenticator).info
    assert info.versions == ["FIDO_2_0", "FIDO_2_1"]
    assert info.aaguid == SOFT_AUTHENTICATOR_AAGUID
    assert info.options["rk"] is True and info.options["up"] is True
    assert info.options["clientPin"] is False  # supported, not set
    assert "uv" not in info.options  # no built-in user verification unless asked for
    assert info.pin_uv_protocols == [2, 1]
    assert info.algorithms == [{"alg": ES256.ALGORITHM, "type": "public-key"}]
    assert info.max_msg_size == 1200
    assert info.transports == ["usb"]
    assert info.min_pin_length == 4
    assert Ctap2(SoftAuthenticator(builtin_uv=True)).info.options["uv"] is True


def test_ping_wink_and_unknown_ctaphid_commands(authenticator: SoftAuthenticator) -> None:
    assert authenticator.call(CTAPHID.PING, b"echo") == b"echo"
    assert authenticator.call(CTAPHID.WINK) == b""
    with pytest.raises(CtapError) as refused:
        authenticator.call(CTAPHID.MSG, b"\x00\x01")  # U2F: not offered
    assert refused.value.code == CtapError.ERR.INVALID_COMMAND


def test_register_then_authenticate(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    interaction = Interaction()
    registered = rp.register(authenticator, interaction=interaction)
    assert registered.credential_data is not None
    assert registered.credential_data.aaguid == SOFT_AUTHENTICATOR_AAGUID
    assert registered.is_user_present() and not registered.is_user_verified()
    assert registered.counter == 0
    response, matched = rp.login(authenticator, [credential_of(registered)], interaction=interaction)
    assert matched.credential_id == credential_of(registered).credential_id
    assert counter_of(response) == 1
    assert interaction.touches == 2  # one touch per ceremony, announced by a keepalive
    [stored] = authenticator.credentials()
    assert (stored.rp_id, stored.user_id, stored.discoverable) == ("localhost", b"user-1", False)


def test_counters_increase_per_credential(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    first = credential_of(rp.register(authenticator, user=b"user-1"))
    second = credential_of(rp.register(authenticator, user=b"user-2", name="bob"))
    seen = [counter_of(rp.login(authenticator, [first])[0]) for _ in range(3)]
    assert seen == [1, 2, 3]
    assert counter_of(rp.login(authenticator, [second])[0]) == 1  # its own counter
    assert counter_of(rp.login(authenticator, [first])[0]) == 4
    counts = {c.credential_id: c.sign_count for c in authenticator.credentials()}
    assert counts == {first.credential_id: 4, second.credential_id: 1}


def test_set_sign_count_simulates_a_clone(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    credential = credential_of(rp.register(authenticator))
    rp.login(authenticator, [credential])
    authenticator.set_sign_count(credential.credential_id, 0)
    assert counter_of(rp.login(authenticator, [credential])[0]) == 1
    with pytest.raises(KeyError):
        authenticator.set_sign_count(b"unknown", 1)
    with pytest.raises(ValueError, match="32-bit"):
        authenticator.set_sign_count(credential.credential_id, 2**32)


def test_discoverable_credentials_answer_without_allow_credentials(
    rp: RelyingParty, authenticator: SoftAuthenticator
) -> None:
    alice = credential_of(rp.register(authenticator, user=b"alice", name="alice", resident_key=REQUIRED))
    bob = credential_of(rp.register(authenticator, user=b"bob", name="bob", resident_key=REQUIRED))
    rp.register(authenticator, user=b"carol", name="carol")  # not discoverable: never offered
    newest, _ = rp.login(authenticator, [alice, bob], allow=False)
    assert newest.raw_id == bob.credential_id  # most recently created first
    assert newest.response.user_handle == b"bob"
    older, matched = rp.login(authenticator, [alice, bob], allow=False, choose=1)
    assert older.response.user_handle == b"alice" and matched.credential_id == alice.credential_id
    assert [c.discoverable for c in authenticator.credentials()] == [True, True, False]


def test_a_new_discoverable_credential_replaces_the_same_users_old_one(
    rp: RelyingParty, authenticator: SoftAuthenticator
) -> None:
    rp.register(authenticator, user=b"alice", resident_key=REQUIRED)
    rp.register(authenticator, user=b"alice", resident_key=REQUIRED)
    assert len(authenticator.credentials()) == 1


def test_no_discoverable_credential_for_the_rp(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    credential = credential_of(rp.register(authenticator))  # server-side only
    with pytest.raises(ClientError) as refused:
        rp.login(authenticator, [credential], allow=False)
    assert isinstance(refused.value.cause, CtapError)
    assert refused.value.cause.code == CtapError.ERR.NO_CREDENTIALS


def test_exclude_list_refuses_a_second_registration(
    rp: RelyingParty, authenticator: SoftAuthenticator
) -> None:
    credential = credential_of(rp.register(authenticator))
    with pytest.raises(ClientError) as refused:
        rp.register(authenticator, exclude=[credential])
    assert refused.value.code == ClientError.ERR.DEVICE_INELIGIBLE
    assert len(authenticator.credentials()) == 1


def test_built_in_user_verification_sets_the_uv_flag(rp: RelyingParty) -> None:
    fingerprint = SoftAuthenticator(builtin_uv=True)
    registered = rp.register(fingerprint, resident_key=REQUIRED, user_verification=UV_REQUIRED)
    assert registered.is_user_verified()
    response, _ = rp.login(
        fingerprint, [credential_of(registered)], allow=False, user_verification=UV_REQUIRED
    )
    assert response.response.authenticator_data.is_user_verified()
    assert response.response.authenticator_data.is_user_present()


def test_user_verification_required_without_any_method_is_refused(
    rp: RelyingParty, authenticator: SoftAuthenticator
) -> None:
    with pytest.raises(ClientError):
        rp.register(authenticator, user_verification=UV_REQUIRED)
    assert authenticator.credentials() == []


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (Presence.DENIED, CtapError.ERR.OPERATION_DENIED),
        (Presence.TIMED_OUT, CtapError.ERR.USER_ACTION_TIMEOUT),
    ],
)
def test_no_touch_no_credential(rp: RelyingParty, answer: Presence, code: CtapError.ERR) -> None:
    asked: list[PresenceRequest] = []

    def person(request: PresenceRequest) -> Presence:
        asked.append(request)
        return answer

    untouched = SoftAuthenticator(user_presence=person)
    with pytest.raises(ClientError) as refused:
        rp.register(untouched)
    assert isinstance(refused.value.cause, CtapError) and refused.value.cause.code == code
    assert asked == [PresenceRequest("makeCredential", "localhost")]
    assert untouched.credentials() == []


def test_clear_credentials_forgets_every_account(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    credential = credential_of(rp.register(authenticator))
    authenticator.clear_credentials()
    with pytest.raises(ClientError):
        rp.login(authenticator, [credential])


def test_reset_needs_a_touch_and_wipes_the_key(rp: RelyingParty, authenticator: SoftAuthenticator) -> None:
    rp.register(authenticator, resident_key=REQUIRED)
    Ctap2(authenticator).reset()
    assert authenticator.credentials() == []
