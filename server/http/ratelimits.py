"""Per-client-IP and per-user limits on the endpoints that check secrets (Flask-Limiter).

Storage comes from `TOKENWARD_RATELIMIT_STORAGE`: `database://` (the default) counts in the application's
database, shared by every worker of a node and, on PostgreSQL, by every node (fixed windows,
server.services.ratelimit_storage); `redis://…` shares the counts between nodes (moving windows); `memory://`
counts per process. The per-user bucket is keyed by the user and the client IP, and shared by login and
verify (switching endpoints gains nothing): a flood from one address does not lock the user out elsewhere,
while the per-IP limit still bounds each address, but a registered client's (see _registered_client_calls).
A transaction's answer counts against its user.
Refusals are counted in the metrics and audited in aggregate (server.services.ratelimit_audit).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter, RequestLimit

from server.db import begin_reads, current_session
from server.errors import TokenwardError
from server.http import metrics
from server.http.auth import authenticate_login_form, authenticate_request, basic_credentials
from server.http.context import _request_state, actor, client_ip, json_body, runtime
from server.http.contract import OPERATIONS
from server.http.outages import DATABASE_FAILURES, RATE_LIMIT_STORE_FAILURES
from server.http.schemas import is_transaction_id
from server.services import ratelimit_audit
from server.services.ratelimit_storage import SCHEME as DATABASE_SCHEME  # and registers database://
from server.services.ratelimit_storage import storage_options
from server.services.runtime import Runtime
from server.services.transaction_owner import transaction_owner

log = logging.getLogger(__name__)

# Endpoints that check a secret of the signed-in user (no username in the body): counted against that user.
_SESSION_USER_ENDPOINTS = frozenset({"passwords.change_own_password"})
IP_SCOPE, USER_SCOPE = "secret-checks-ip", "secret-checks-user"
_MAX_USERNAME_LENGTH = 64


def _ip_key() -> str:
    return "ip:" + client_ip()


def _limited_user() -> str | None:
    """The user a request tries to sign in as: the body's `username`, or the owner of the body's
    `transaction_id` (looked up once per request). Lower case, so that spellings share one bucket."""
    state = _request_state()
    if "limited_user" not in state:
        state["limited_user"] = _find_limited_user()
    user: str | None = state["limited_user"]
    return user


def _find_limited_user() -> str | None:
    if request.endpoint in _SESSION_USER_ENDPOINTS:
        return _session_user()
    try:
        body = json_body()
    except TokenwardError:
        return None
    username, transaction_id = body.get("username"), body.get("transaction_id")
    if isinstance(username, str) and 0 < len(username) <= _MAX_USERNAME_LENGTH:
        return username.lower()
    # Looked up before the body is validated: only what could be a transaction id reaches the database (a
    # lone surrogate cannot even be encoded for it).
    if not is_transaction_id(transaction_id):
        return None
    session = current_session()
    try:
        owner = transaction_owner(session, transaction_id=transaction_id)
    finally:
        # End the read at once: on SQLite every transaction holds the write lock, which the counters'
        # own connection (database://) is about to need.
        session.rollback()
    return owner.lower() if owner else None


def _session_user() -> str | None:
    """The signed-in user, when the request's session is valid (else the view refuses it anyway)."""
    try:
        username = authenticate_request("session").user.username.lower()
    except TokenwardError:
        return None
    finally:
        current_session().rollback()  # as above: free SQLite's write lock for the counters
    return username


def _registered_client_calls() -> bool:
    """A registered client's call (valid HTTP Basic credentials, looked at once per request): its address is
    the application's server, which speaks for all of its users as a NAS does, so the per-address limit
    would let anyone who can submit that application's login form shut all of them out. The per-user limit
    still holds; wrong credentials count against the address."""
    state = _request_state()
    if "registered_client" not in state:
        state["registered_client"] = _authenticates_as_a_client()
    registered: bool = state["registered_client"]
    return registered


def _authenticates_as_a_client() -> bool:
    try:
        if basic_credentials() is None:
            return False  # no credentials: nothing to look up
        session = current_session()
        begin_reads(session)  # on SQLite, without the write lock (the counters' connection needs it)
        try:
            authenticate_login_form()  # the view's own check, kept for it
            return True
        finally:
            session.rollback()
    except TokenwardError:
        return False


def _user_key() -> str:
    return f"user:{_limited_user() or ''}|ip:{client_ip()}"


def _refused(limit: RequestLimit) -> None:
    """Counts a refusal in the metrics and audits it in aggregate: the storage counts the refusals of this
    limit key in a window of the limit's length, and the first one writes the audit event."""
    scope = "user" if USER_SCOPE in limit.request_args else "ip"
    metrics.observe_refusal(scope, request.endpoint or "")
    rt = runtime()
    window_seconds = limit.limit.get_expiry()
    try:
        refused = limit.limiter.storage.incr(f"refused/{limit.key}", window_seconds)
        session = current_session()
        subject = ratelimit_audit.refusal_subject(
            session, scope=scope, username=_limited_user(), client_ip=client_ip()
        )
        ratelimit_audit.record_refusal(
            session,
            subject=subject,
            refused=refused,
            window_seconds=window_seconds,
            actor=actor(),
            now=rt.now(),
        )
    except Exception:  # the refusal stands whether or not its audit could be written
        current_session().rollback()
        log.exception("could not audit a rate-limit refusal")


def limited_endpoints() -> list[str]:
    """The endpoints whose operation declares `rate_limited=True` (server.http.contract.operation)."""
    return [op.endpoint for op in OPERATIONS if op.rate_limited]


def install_rate_limits(app: Flask, rt: Runtime) -> Limiter:
    """Call once every blueprint is registered: the limits wrap the rate-limited views the app has."""
    limits = rt.settings.rate_limits
    storage = rt.settings.ratelimit_storage
    in_database = storage.split(":", 1)[0] == DATABASE_SCHEME
    limiter = Limiter(
        key_func=_ip_key,
        app=app,
        storage_uri=storage,
        storage_options=storage_options(rt.settings),
        # Headers come from _add_limit_headers: a store failing there must not turn an answer into a 500.
        headers_enabled=False,
        # The database counts fixed windows (one row per key); Redis and memory keep moving windows.
        strategy="fixed-window" if in_database else "moving-window",
        enabled=limits.enabled,
        key_prefix="tokenward",
        on_breach=_refused,
    )
    per_ip = limiter.shared_limit(
        ";".join(limits.per_ip), scope=IP_SCOPE, key_func=_ip_key, exempt_when=_registered_client_calls
    )
    per_user = limiter.shared_limit(
        ";".join(limits.per_user),
        scope=USER_SCOPE,
        key_func=_user_key,
        exempt_when=lambda: _limited_user() is None,
    )
    for endpoint in limited_endpoints():
        view: Any = app.view_functions.get(endpoint)
        if view is None:
            continue
        # Flask-Limiter checks decorated limits in the wrapper it returns (all limits of the view at once).
        if limits.per_ip:
            view = per_ip(view)
        if limits.per_user:
            view = per_user(view)
        app.view_functions[endpoint] = view
    app.after_request(lambda response: _add_limit_headers(limiter, response))
    return limiter


def _add_limit_headers(limiter: Limiter, response: Response) -> Response:
    """X-RateLimit-* on every counted answer, for the limit that refuses first (the fewest requests left; of
    those, the one whose window ends last), and Retry-After on a refusal. The headers read the store once
    more per limit: if it failed since the check (which already failed closed), the answer goes out without
    them."""
    counted = limiter.current_limits
    if not counted:
        return response
    try:
        windows = [(limit.remaining, limit.reset_at, limit) for limit in counted]
    except (*RATE_LIMIT_STORE_FAILURES, *DATABASE_FAILURES) as err:
        log.warning("rate-limit headers left off: the store failed (%s)", type(err).__name__)
        return response
    remaining, reset_at, limit = min(windows, key=lambda window: (window[0], -window[1]))
    response.headers["X-RateLimit-Limit"] = str(limit.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(reset_at)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, int(reset_at - time.time())))
    return response
