"""API fixtures shared by the security key tests."""

from __future__ import annotations

import pytest

from devices.fido.soft_authenticator import SoftAuthenticator
from tests.accounts import Accounts
from tests.webauthn_client import SecurityKey


@pytest.fixture
def passkey(accounts: Accounts) -> SecurityKey:
    """alice with one enrolled passkey: the soft authenticator with built-in user verification."""
    accounts.create_user("alice")
    key = SecurityKey(accounts.client, device=SoftAuthenticator(builtin_uv=True))
    key.enroll(accounts.enroll_session("alice"))
    return key
