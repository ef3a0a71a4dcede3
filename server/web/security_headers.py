"""Security headers for everything the web layer serves (pages, their static files, `/web/session/*`) and
for any HTML answer (the app-wide 404 page); HSTS on every answer when the public URL is https."""

from __future__ import annotations

from flask import Response, request

from server.http.context import runtime

WEB_BLUEPRINTS = frozenset({"pages", "web_session"})

# Scripts and styles from our own files only (no inline code, no CDN); `data:` images for the QR code;
# nothing may frame a page that asks for passwords and security keys.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
# WebAuthn for this origin; no device or sensor access for anyone.
PERMISSIONS_POLICY = ", ".join(
    (
        "publickey-credentials-create=(self)",
        "publickey-credentials-get=(self)",
        "camera=()",
        "microphone=()",
        "geolocation=()",
        "payment=()",
        "usb=()",
        "serial=()",
        "hid=()",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Permissions-Policy": PERMISSIONS_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


# Under an https public URL, every answer tells browsers to use https only, for a year (the least HSTS
# preload lists accept). No includeSubDomains: other hosts under the domain are not this server's to pin.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def add_transport_security(response: Response) -> Response:
    """Every response, API and errors included (registered app-wide), when the public URL is https."""
    if runtime().settings.public_https:
        response.headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
    return response


def add_security_headers(response: Response) -> Response:
    is_html = response.mimetype == "text/html"
    if request.blueprint not in WEB_BLUEPRINTS and not is_html:
        return response
    for name, value in HEADERS.items():
        # A page may widen one (the OpenID Connect consent form posts on to the application's origin).
        response.headers.setdefault(name, value)
    if request.endpoint == "pages.static":
        response.headers["Cache-Control"] = "no-cache"  # revalidate (ETag): no build step fingerprints files
    else:
        response.headers["Cache-Control"] = "no-store"
    return response
