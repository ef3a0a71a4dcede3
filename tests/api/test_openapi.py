"""The OpenAPI 3.1 document (`/api/v1/openapi.json`) and the Flask routes stay in step.

Every route is documented (HTML pages and static files excepted), every documented operation is routed, each
operation says what it does and answers, the document is valid OpenAPI 3.1, and its request schemas refuse
what the server refuses.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Rule

from tests.accounts import PASSWORD, Accounts, bearer

OPENAPI = "/api/v1/openapi.json"
ANSWERS = ("otp", "fob_response", "credential", "recovery_code", "temporary_code")
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Flask adds them to every rule
STATIC_ENDPOINT = re.compile(r"(^|\.)static$")


def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get(OPENAPI)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.json
    assert isinstance(body, dict)
    return body


def openapi_path(rule: str) -> str:
    """`/tokens/<token_id>` or `/files/<path:name>` → `/tokens/{token_id}`, `/files/{name}`."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def documented_operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method.upper()): entry
        for path, entries in doc["paths"].items()
        for method, entry in entries.items()
    }


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "some-value", path)


def is_page_or_static(client: FlaskClient, rule: Rule) -> bool:
    """Static files and HTML pages (for people, not programs) need no OpenAPI entry."""
    if STATIC_ENDPOINT.search(rule.endpoint):
        return True
    methods = (rule.methods or set()) - IGNORED_METHODS
    if methods != {"GET"} or rule.arguments:
        return False
    response = client.get(rule.rule, headers={"Accept": "text/html"}, follow_redirects=True)
    return response.mimetype == "text/html"


def test_document_is_openapi_3_1(client: FlaskClient) -> None:
    doc = document(client)
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["paths"]


def test_every_route_is_documented(app: Flask, client: FlaskClient) -> None:
    documented = documented_operations(document(client))
    missing = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            if (openapi_path(rule.rule), method) not in documented and not is_page_or_static(client, rule):
                missing.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not missing, "routes missing from the OpenAPI document:\n" + "\n".join(missing)


def test_every_documented_operation_is_routed_to_its_declared_parameters(
    app: Flask, client: FlaskClient
) -> None:
    doc = document(client)
    adapter = app.url_map.bind("localhost")
    problems = []
    for (path, method), entry in documented_operations(doc).items():
        try:
            endpoint, arguments = adapter.match(concrete(path), method=method)
        except (NotFound, MethodNotAllowed) as err:
            problems.append(f"{method} {path}: not routed ({type(err).__name__})")
            continue
        declared = {p["name"] for p in entry.get("parameters", []) if p["in"] == "path"}
        if declared != set(arguments):
            problems.append(
                f"{method} {path} ({endpoint}): path parameters {declared} vs route {set(arguments)}"
            )
        if set(re.findall(r"{([^}]+)}", path)) != declared:
            problems.append(f"{method} {path}: template and declared path parameters differ")
    assert not problems, "\n".join(problems)


def test_operation_ids_are_unique(client: FlaskClient) -> None:
    ids = [entry["operationId"] for entry in documented_operations(document(client)).values()]
    assert all(ids)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_operation_has_a_summary_and_responses(client: FlaskClient) -> None:
    problems = []
    for (path, method), entry in documented_operations(document(client)).items():
        where = f"{method} {path}"
        if not isinstance(entry.get("summary"), str) or not entry["summary"].strip():
            problems.append(f"{where}: no summary")
        responses = entry.get("responses") or {}
        if not any(str(status).startswith("2") for status in responses):
            problems.append(f"{where}: no 2xx response")
        for status, response in responses.items():
            if not response.get("description"):
                problems.append(f"{where} {status}: no description")
            content = response.get("content", {})
            if str(status)[0] in "45" and not is_standard_error(path, status, content):
                problems.append(f"{where} {status}: an error that is not application/problem+json")
            if str(status)[0] in "245" and status != "204" and not content:
                problems.append(f"{where} {status}: no body described")
            for media, described in content.items():
                if not described.get("schema"):
                    problems.append(f"{where} {status} {media}: an empty schema")
    assert not problems, "\n".join(problems)


def is_standard_error(path: str, status: str, content: dict[str, Any]) -> bool:
    """problem+json, or at an OAuth/OIDC endpoint what its standard says: an OAuth error object (RFC 6749
    5.2, RFC 6750 3.1) for programs, an HTML page for the person at the authorization and logout pages."""
    if "application/problem+json" in content:
        return True
    oauth_error = {"$ref": "#/components/schemas/OAuthError"}
    return path.startswith("/oauth2/") and (
        content.get("application/json", {}).get("schema") == oauth_error or "text/html" in content
    )


def test_secured_operations_document_their_refusals(client: FlaskClient) -> None:
    """A Bearer operation can answer 401 (API.md), an admin one also 403: a generated client should know."""
    missing = []
    for (path, method), entry in documented_operations(document(client)).items():
        if not entry.get("security"):
            continue
        expected = {"401"} | ({"403"} if path.startswith("/api/v1/admin/") else set())
        if absent := expected - set(entry["responses"]):
            missing.append(f"{method} {path}: {sorted(absent)}")
    assert not missing, "secured operations that do not document their refusals:\n" + "\n".join(missing)


def test_document_validates_as_openapi_3_1(client: FlaskClient) -> None:
    from openapi_spec_validator import OpenAPIV31SpecValidator  # test extra: openapi-spec-validator

    doc = document(client)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in OpenAPIV31SpecValidator(doc).iter_errors()
    ]
    assert not errors, "\n".join(errors[:20])


def schema_validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator (the OpenAPI 3.1 dialect) whose `#/components/...` refs resolve."""
    from jsonschema import Draft202012Validator  # test extra, with openapi-spec-validator

    return Draft202012Validator({**schema, "components": doc["components"]})


def body_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path][method.lower()]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


# (method, documented path, body): the server refuses each with 422, and so must the document's schema.
REFUSED_BODIES = [
    ("POST", "/api/v1/tokens", {"type": "totp", "digits": 7}),
    ("POST", "/api/v1/tokens", {"type": "totp", "digits": "6"}),
    ("POST", "/api/v1/tokens", {"type": "totp", "period": 45}),
    ("POST", "/api/v1/tokens", {"type": "totp", "algorithm": "MD5"}),
    ("POST", "/api/v1/tokens", {"type": "sms"}),
    ("POST", "/api/v1/tokens", {"type": "totp", "description": "x" * 129}),
    ("POST", "/api/v1/tokens", {"type": "totp", "colour": "red"}),
    ("POST", "/api/v1/tokens", {}),
    ("POST", "/api/v1/login", {"username": "alice"}),
    ("POST", "/api/v1/login", {"username": "", "password": PASSWORD}),
    ("POST", "/api/v1/login", {"username": "a" * 65, "password": PASSWORD}),
    ("POST", "/api/v1/login", {"username": ["alice"], "password": PASSWORD}),
    ("POST", "/api/v1/login", {"username": "alice", "password": "x" * 1025}),
    ("POST", "/api/v1/login/passkey", {"username": "alice"}),
    ("POST", "/api/v1/verify", {"transaction_id": "not valid!", "otp": "123456"}),
    ("POST", "/api/v1/verify", {"username": "alice", "otp": "1" * 33}),
    ("POST", "/api/v1/verify", {"username": "alice", "otp": 123456}),
    ("POST", "/api/v1/verify", {"transaction_id": "t1", "otp": "123456", "fob_response": "12345678"}),
    ("POST", "/api/v1/verify", {"transaction_id": "t1", "username": "alice", "otp": "123456"}),
    ("POST", "/api/v1/verify", {"transaction_id": "t1"}),
    ("POST", "/api/v1/verify", {"username": "alice", "fob_response": "12345678"}),
    ("POST", "/api/v1/verify", {"username": "alice", "password": PASSWORD}),
    ("POST", "/api/v1/verify", {"username": "alice", "otp": "123456", "password": None}),
    ("POST", "/api/v1/verify", {}),
    ("POST", "/api/v1/token/refresh", {"refresh_token": ""}),
    ("POST", "/api/v1/token/refresh", {"refresh_token": "x" * 513}),
    ("POST", "/api/v1/logout", {"refresh_token": 42}),
    ("POST", "/api/v1/tokens/{token_id}/activate", {"otp": ""}),
    ("POST", "/api/v1/admin/users", {"username": "bob", "role": "root"}),
    ("POST", "/api/v1/admin/users", {"username": "bob", "password": None, "admin": True}),
    ("POST", "/api/v1/admin/tokens/{token_id}/resync", {"otp1": "123456"}),
    ("POST", "/api/v1/admin/tokens/{token_id}/assign", {"username": 7}),
]
# ... and these it accepts, as the schema must too (a schema that refuses everything must not pass).
ACCEPTED_BODIES = [
    ("POST", "/api/v1/tokens", {"type": "totp", "algorithm": "SHA256", "digits": 8, "period": 60}, 201),
    ("POST", "/api/v1/tokens", {"type": "hotp", "description": "spare phone"}, 201),
    ("POST", "/api/v1/login/passkey", {}, 200),
    ("POST", "/api/v1/login", {"username": "alice", "password": PASSWORD}, 200),
    ("POST", "/api/v1/admin/users", {"username": "bob", "role": "admin"}, 201),
    ("POST", "/api/v1/verify", {"username": "alice"}, 200),
]


@pytest.fixture
def admin_headers(accounts: Accounts) -> dict[str, str]:
    accounts.user_with_phone("alice")
    return bearer(accounts.admin_session())


def test_request_schemas_refuse_what_the_server_refuses(
    accounts: Accounts, admin_headers: dict[str, str]
) -> None:
    doc = document(accounts.client)
    disagreements = []
    for method, path, body in REFUSED_BODIES:
        answer = accounts.client.open(concrete(path), method=method, json=body, headers=admin_headers)
        schema_errors = list(schema_validator(doc, body_schema(doc, method, path)).iter_errors(body))
        if answer.status_code != 422:
            disagreements.append(f"{method} {path} {body!r:.80}: server answered {answer.status_code}")
        if not schema_errors:
            disagreements.append(f"{method} {path} {body!r:.80}: the document's schema accepts it")
    for method, path, body, status in ACCEPTED_BODIES:
        answer = accounts.client.open(concrete(path), method=method, json=body, headers=admin_headers)
        schema_errors = list(schema_validator(doc, body_schema(doc, method, path)).iter_errors(body))
        if answer.status_code != status:
            disagreements.append(f"{method} {path} {body!r:.80}: server answered {answer.status_code}")
        if schema_errors:
            disagreements.append(
                f"{method} {path} {body!r:.80}: the schema refuses it: {schema_errors[0].message}"
            )
    assert not disagreements, "\n".join(disagreements)


def test_query_parameters_in_step(accounts: Accounts, admin_headers: dict[str, str]) -> None:
    """Each documented query parameter, given a value its schema admits, is accepted; values its schema
    refuses, and names the document does not list, are refused by the server too."""
    doc = document(accounts.client)
    valid = {"integer": 1, "number": 1.5, "boolean": "true", "string": "alice"}
    problems = []
    for (path, method), entry in documented_operations(doc).items():
        query = [p for p in entry.get("parameters", []) if p["in"] == "query"]
        if method != "GET" or not query:
            continue
        for parameter in query:
            schema, name = parameter["schema"], parameter["name"]
            branches = schema.get("anyOf", [schema])
            first = next(b for b in branches if b.get("type") != "null")
            value = first["enum"][0] if "enum" in first else valid[first["type"]]
            answer = accounts.client.get(f"{path}?{name}={value}", headers=admin_headers)
            if answer.status_code != 200:
                problems.append(f"GET {path}?{name}={value}: {answer.status_code}")
            if first.get("type") == "integer":
                too_small = first.get("minimum", 0) - 1
                refused = schema_validator(doc, schema).is_valid(too_small)
                answer = accounts.client.get(f"{path}?{name}={too_small}", headers=admin_headers)
                if refused or answer.status_code != 422:
                    problems.append(f"GET {path}?{name}={too_small}: {answer.status_code}, schema {refused}")
        answer = accounts.client.get(f"{path}?undocumented=1", headers=admin_headers)
        if answer.status_code != 422:
            problems.append(f"GET {path}?undocumented=1: {answer.status_code}")
    assert not problems, "\n".join(problems)


def test_problem_bodies_match_the_documented_problem_schema(
    accounts: Accounts, admin_headers: dict[str, str]
) -> None:
    doc = document(accounts.client)
    validator = schema_validator(doc, {"$ref": "#/components/schemas/Problem"})
    answers = [
        accounts.client.get("/api/v1/admin/users/nobody", headers=admin_headers),
        accounts.client.post("/api/v1/tokens", json={"type": "sms"}, headers=admin_headers),
        accounts.client.post("/api/v1/login", json={"username": "alice", "password": "wrong password"}),
        accounts.client.get("/api/v1/me"),
        accounts.client.put("/api/v1/me"),
    ]
    for answer in answers:
        assert answer.status_code >= 400 and answer.mimetype == "application/problem+json"
        errors = [error.message for error in validator.iter_errors(answer.json)]
        assert not errors, (answer.status_code, errors)


def test_answers_are_serialized_through_their_declared_models() -> None:
    """A view's answer passes through its operation's model: a member the model does not declare fails
    before anything is sent (the document cannot drift from the views), and optional members the view
    left out stay out rather than becoming nulls."""
    from pydantic import ValidationError

    from server.http.contract import _serialized
    from server.http.responses import Health, TokenActivated, TokenList

    with pytest.raises(ValidationError):
        _serialized({"status": "ok", "undeclared": 1}, Health)
    with pytest.raises(ValidationError):
        _serialized({"id": "x", "state": "pending"}, TokenActivated)  # not a value the document allows
    headers = {"Cache-Control": "no-store"}
    assert _serialized(({"status": "ok"}, 201, headers), Health) == ({"status": "ok"}, 201, headers)
    token = {
        "id": "a" * 32,
        "type": "totp",
        "state": "active",
        "description": "",
        "created_at": 1.0,
        "activated_at": None,
        "last_used_at": None,
        "locked": False,
    }
    assert _serialized({"tokens": [token]}, TokenList) == {"tokens": [token]}


def test_links_name_documented_operations_and_their_parameters(client: FlaskClient) -> None:
    doc = document(client)
    by_id = {entry["operationId"]: entry for entry in documented_operations(doc).values()}
    problems, links = [], 0
    for (path, method), entry in documented_operations(doc).items():
        for status, response in entry["responses"].items():
            for name, link in response.get("links", {}).items():
                links += 1
                target = by_id.get(link["operationId"])
                if target is None:
                    problems.append(f"{method} {path} {status} {name}: no operation {link['operationId']}")
                    continue
                known = {parameter["name"] for parameter in target.get("parameters", [])}
                if unknown := set(link["parameters"]) - known:
                    problems.append(f"{method} {path} {status} {name}: unknown parameters {unknown}")
    assert links and not problems, "\n".join(problems)


# API.md, Sessions: each form of the verify body, (required members, optional members).
VERIFY_FORMS = {
    *((("transaction_id", answer), ()) for answer in ANSWERS),
    (("username", "otp"), ("password",)),
    (("username",), ()),
}


def body_forms(doc: dict[str, Any], method: str, path: str) -> set[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The forms a body's documented schema lists: a `oneOf` of closed objects, each (required, optional)."""
    ref = body_schema(doc, method, path)["$ref"]
    union = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    forms = set()
    for branch in union["oneOf"]:
        form = doc["components"]["schemas"][branch["$ref"].rsplit("/", 1)[1]]
        assert form["type"] == "object" and form["additionalProperties"] is False, form["title"]
        for name, member in form["properties"].items():  # a member is given a value or left out
            assert "anyOf" not in member and member.get("type") != "null", (form["title"], name)
        required = tuple(form["required"])
        forms.add((required, tuple(name for name in form["properties"] if name not in required)))
    return forms


def test_the_verify_body_lists_its_forms(client: FlaskClient) -> None:
    """One closed object per form, so a client's generator or validator knows which members go together
    (the pages take a transaction's answer only)."""
    doc = document(client)
    assert body_forms(doc, "POST", "/api/v1/verify") == VERIFY_FORMS
    answers = {form for form in VERIFY_FORMS if form[0][0] == "transaction_id"}
    assert body_forms(doc, "POST", "/web/session/verify") == answers
