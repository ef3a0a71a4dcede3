"""Per-client-IP and per-user limits on the endpoints that check secrets (Flask-Limiter).

Storage comes from `TOKENWARD_RATELIMIT_STORAGE`: `memory://` counts per process, `redis://…` shares the
counts between nodes. The per-user bucket is shared by login and verify, so switching endpoints gains nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_limiter import Limiter

from server.api.context import client_ip, json_body
from server.errors import TokenwardError
from server.services.runtime import Runtime

LIMITED_ENDPOINTS = (
    "sessions.login_password",
    "sessions.verify",
    "sessions.passkey_login",
    "web_session.password_login",
    "web_session.verify_answer",
    "web_session.passkey_login",
)


def _ip_key() -> str:
    return "ip:" + client_ip()


def _named_user() -> str | None:
    try:
        username = json_body().get("username")
    except TokenwardError:
        return None
    return username.lower() if isinstance(username, str) and 0 < len(username) <= 64 else None


def _user_key() -> str:
    return "user:" + (_named_user() or "")


def install_rate_limits(app: Flask, rt: Runtime) -> Limiter:
    limits = rt.settings.rate_limits
    limiter = Limiter(
        key_func=_ip_key,
        app=app,
        storage_uri=rt.settings.ratelimit_storage,
        headers_enabled=True,
        retry_after="delta-seconds",
        strategy="moving-window",
        enabled=limits.enabled,
        key_prefix="tokenward",
    )
    per_ip = limiter.shared_limit(";".join(limits.per_ip), scope="secret-checks-ip", key_func=_ip_key)
    per_user = limiter.shared_limit(
        ";".join(limits.per_user),
        scope="secret-checks-user",
        key_func=_user_key,
        exempt_when=lambda: _named_user() is None,
    )
    for endpoint in LIMITED_ENDPOINTS:
        view: Any = app.view_functions.get(endpoint)
        if view is None:
            continue
        # Flask-Limiter checks decorated limits in the wrapper it returns (all limits of the view at once).
        if limits.per_ip:
            view = per_ip(view)
        if limits.per_user:
            view = per_user(view)
        app.view_functions[endpoint] = view
    return limiter
