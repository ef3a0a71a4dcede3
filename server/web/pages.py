"""The pages: sign-in, the user's account, administration. Server-rendered shells; the data comes from the
JSON API through small JavaScript modules (static/js/), authenticated by the session cookies."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, url_for

from server.http.auth import CSRF_HEADER, cookie_names
from server.http.context import runtime
from server.services import users
from server.services.assurance import FULL_SCOPE, RECOVERY_AMR
from server.web.cookies import set_csrf_cookie, signed_in
from server.web.error_pages import render_error_page

bp = Blueprint(
    "pages", __name__, template_folder="templates", static_folder="static", static_url_path="/assets"
)

# Where the sign-in page may send the browser afterwards (`?next=`): our pages, nothing else.
NEXT_PAGES = ("/account", "/admin", "/admin/tokens", "/admin/audit", "/admin/clients")
ADMIN_SECTIONS = {"users": "Users", "tokens": "Tokens", "clients": "Clients", "audit": "Audit log"}


@bp.app_context_processor
def _page_globals() -> dict[str, Any]:
    return {
        "csrf_cookie": cookie_names(runtime().settings).csrf,
        "csrf_header": CSRF_HEADER,
        "admin_sections": ADMIN_SECTIONS,
    }


@bp.after_request
def _ensure_csrf_cookie(response: Response) -> Response:
    """Every page leaves a CSRF value for its scripts (the sign-in page's POST needs one too)."""
    if response.mimetype == "text/html" and cookie_names(runtime().settings).csrf not in request.cookies:
        set_csrf_cookie(response, runtime().settings)
    return response


@bp.before_request
def _to_the_public_name() -> Any:
    """A browser that came to a loopback address (http://127.0.0.1:5000, what the server binds) goes to
    the public URL's `localhost`: WebAuthn needs a name, and the pages' requests must come from the
    public origin. Only for a localhost public URL: behind a proxy the address is the proxy's business."""
    settings = runtime().settings
    if request.method not in ("GET", "HEAD") or urlsplit(settings.public_url).hostname != "localhost":
        return None
    try:
        address = ipaddress.ip_address(urlsplit(f"//{request.host}").hostname or "")
    except ValueError:
        return None
    if not address.is_loopback:
        return None
    query = request.query_string.decode("ascii", "replace")
    return redirect(settings.public_origin + request.path + (f"?{query}" if query else ""))


@bp.errorhandler(Exception)
def _error_page(err: Exception) -> Any:
    return render_error_page(err)


def _to_login() -> Any:
    """To the sign-in page, which refreshes an expired session silently when it can and comes back."""
    return redirect(url_for("pages.login_page", next=request.path))


def _safe_next(candidate: str | None) -> str:
    return candidate if candidate in NEXT_PAGES else "/account"


@bp.get("/")
def home() -> Any:
    return redirect(url_for("pages.account"))


@bp.get("/login")
def login_page() -> Any:
    next_page = _safe_next(request.args.get("next"))
    principal = signed_in()
    if principal is not None and principal.scope == FULL_SCOPE:
        return redirect(next_page)
    return render_template(
        "login.html",
        next_page=next_page,
        try_refresh="next" in request.args and request.args.get("reason") != "expired",
        session_ended=request.args.get("reason") == "expired",
    )


@bp.get("/account")
def account() -> Any:
    principal = signed_in()
    if principal is None:
        return _to_login()
    # Which code stood in for a lost factor, if one did: the enroll notice says so.
    recovering = next((method for method in principal.amr if method in RECOVERY_AMR), None)
    return render_template(
        "account.html",
        user=users.user_view(principal.user),
        enroll_only=principal.scope != FULL_SCOPE,
        recovering=recovering,
    )


def _admin_page(section: str) -> Any:
    principal = signed_in()
    if principal is None:
        return _to_login()
    if principal.scope != FULL_SCOPE:
        return redirect(url_for("pages.account"))
    user = users.user_view(principal.user)
    if user["role"] != "admin":
        return render_error_page(403, detail="This page is for administrators.", user=user)
    return render_template(f"admin_{section}.html", user=user, section=section)


@bp.get("/admin")
def admin_users() -> Any:
    return _admin_page("users")


@bp.get("/admin/tokens")
def admin_tokens() -> Any:
    return _admin_page("tokens")


@bp.get("/admin/clients")
def admin_clients() -> Any:
    return _admin_page("clients")


@bp.get("/admin/audit")
def admin_audit() -> Any:
    return _admin_page("audit")
