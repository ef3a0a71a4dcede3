"""The pages under the address a person typed (issue 14, item 1): a loopback address goes to the public
URL's `localhost`, and a page of another origin is refused with what to set."""

from __future__ import annotations

from flask.testing import FlaskClient

from server.http.auth import CSRF_HEADER


def test_a_page_opened_on_a_loopback_address_goes_to_localhost(client: FlaskClient) -> None:
    answer = client.get("/login?next=/account", base_url="http://127.0.0.1:5000")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "http://localhost:5000/login?next=/account"
    assert client.get("/", base_url="http://[::1]:5000").headers["Location"] == "http://localhost:5000/"
    # Already on the public name: no redirect loop. The API is never redirected (curl, other programs).
    assert client.get("/login", base_url="http://localhost:5000").status_code == 200
    assert client.get("/healthz", base_url="http://127.0.0.1:5000").status_code == 200
    assert client.get("/api/v1/openapi.json", base_url="http://127.0.0.1:5000").status_code == 200


def test_a_page_from_another_origin_is_told_what_to_set(client: FlaskClient) -> None:
    client.set_cookie("tw_csrf", "csrf-value")
    headers = {CSRF_HEADER: "csrf-value", "Origin": "http://127.0.0.1:5000"}
    refused = client.post("/web/session/login", json={"username": "a", "password": "b"}, headers=headers)
    assert refused.status_code == 403
    assert refused.json["code"] == "wrong_origin"
    assert "http://localhost:5000" in refused.json["detail"]
    assert "TOKENWARD_PUBLIC_URL" in refused.json["detail"]
    assert "127.0.0.1" not in refused.json["detail"]  # the request's own header is not echoed
