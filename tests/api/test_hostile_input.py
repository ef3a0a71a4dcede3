"""Hostile input on every endpoint: always a 4xx `application/problem+json`, never a 500 (API.md, Errors).

The operations come from the published OpenAPI document (`/api/v1/openapi.json`), so an endpoint is covered
as soon as it is declared. Each test signs in once (an administrator's full session, so that authentication is
not what refuses the request) and collects every bad answer before failing, so one run lists them all.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from server.app import create_app
from server.clock import FrozenClock
from server.config import RateLimits, Settings
from server.http.auth import CSRF_COOKIE, CSRF_HEADER
from tests.accounts import PASSWORD, Accounts, bearer, dispose_app

OPENAPI = "/api/v1/openapi.json"
MAX_BODY_BYTES = 64 * 1024  # API.md: a larger body is a 413
PROBLEM_FIELDS: dict[str, type] = {"type": str, "title": str, "status": int, "detail": str, "code": str}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

HOSTILE_STRINGS: dict[str, str] = {
    "NUL": "\x00",
    "NUL inside": "ali\x00ce",
    "lone high surrogate": "\ud800",
    "swapped surrogates": "a\udc00\ud800b",
    "RTL override": "\u202eecila\u202c",
    "emoji": "\U0001f469\U0001f3fd\u200d\U0001f4bb\U0001f510",
    "combining marks": "a" + "\u0301\u0308" * 100,
    "zero width and BOM": "\u200b\ufeffalice\u2060",
    "noncharacters": "\uffff\U0010ffff",
    "10k characters": "x" * 10_000,
    "terminal escapes": "\x1b[31malice\r\n\t\x7f",
    "SQL or": "' OR 1=1 --",
    "SQL drop": '"; DROP TABLE users; --',
    "SQL union": "x' UNION SELECT password_hash FROM users --",
    "LIKE wildcard": "%",
    "path traversal": "../../etc/passwd",
}
SQL_LOOKING = ("SQL or", "SQL drop", "SQL union", "LIKE wildcard")

# A value of each JSON type; a field is sent each one its schema does not allow.
WRONG_VALUES: dict[str, Any] = {
    "integer": 12345,
    "number": 1.5,
    "string": "a string",
    "boolean": True,
    "null": None,
    "array": ["a", 1],
    "object": {"nested": "object"},
}

# Field values that pass validation, so a hostile value in another field reaches the service behind it.
# Usernames name `alice`, a user with a phone: failures and lockouts land on her, not on the admin.
PLAUSIBLE: dict[str, Any] = {
    "username": "alice",
    "password": PASSWORD,
    "otp": "123456",
    "otp1": "123456",
    "otp2": "654321",
    "fob_response": "12345678",
    "refresh_token": "no-such-refresh-token",
    "type": "totp",
    "credential": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}},
}
# Bodies that take one of several sets of fields (API.md, Sessions and Tokens): a valid set for each field.
FORMS: dict[str, list[tuple[str, ...]]] = {
    "sessions_verify": [
        ("username", "otp", "password"),
        ("transaction_id", "otp"),
        ("transaction_id", "fob_response"),
        ("transaction_id", "credential"),
        ("username",),
    ],
    "tokens_activate_token": [("otp",), ("credential",)],
}
NO_SUCH = "no-such-thing"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def allowed_types(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a (dereferenced) schema admits; None when it does not restrict them."""
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        kinds: set[str] = set()
        for branch in branches:
            allowed = allowed_types(branch)
            if allowed is None:
                return None
            kinds |= allowed
        return kinds
    if "enum" in schema:
        return {json_type(value) for value in schema["enum"]}
    if "const" in schema:
        return {json_type(schema["const"])}
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return kinds | {"integer"} if "number" in kinds else kinds


def admits(schema: dict[str, Any], value: Any) -> bool:
    kinds = allowed_types(schema)
    return kinds is None or json_type(value) in kinds


def sample(schema: dict[str, Any]) -> Any:
    """A simple value of the schema's first non-null shape."""
    for branch in schema.get("anyOf") or schema.get("oneOf") or []:
        if branch.get("type") != "null":
            return sample(branch)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    return {
        "integer": schema.get("minimum", 1),
        "number": 1.5,
        "boolean": True,
        "object": {},
        "array": [],
    }.get(kind, "a" * max(1, schema.get("minLength", 1)))


def dereference(node: Any, document: dict[str, Any], depth: int = 0) -> Any:
    assert depth < 50, "reference cycle in the OpenAPI document"
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return dereference(target, document, depth + 1)
        return {key: dereference(value, document, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [dereference(item, document, depth + 1) for item in node]
    return node


def url_quote(value: str) -> str:
    """Percent-encodes anything, lone surrogates included (as the invalid UTF-8 a client could send)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    secured: bool
    path_params: tuple[str, ...]
    query_params: dict[str, dict[str, Any]]
    body: dict[str, Any] | None  # the dereferenced request body schema

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def shapes(self) -> list[dict[str, Any]]:
        """The object shapes the body may take: its `oneOf` (a discriminated union) or `anyOf` forms, or
        itself."""
        body = self.body or {}
        return list(body.get("oneOf") or body.get("anyOf") or [body])

    @property
    def fields(self) -> dict[str, dict[str, Any]]:
        """Every member any form names (the first form's schema of it)."""
        merged: dict[str, dict[str, Any]] = {}
        for shape in self.shapes:
            for name, schema in shape.get("properties", {}).items():
                merged.setdefault(name, schema)
        return merged

    @property
    def required(self) -> tuple[str, ...]:
        """The members every form requires."""
        shapes = self.shapes
        common = set.intersection(*(set(shape.get("required", ())) for shape in shapes))
        return tuple(name for name in shapes[0].get("required", ()) if name in common)

    def url(self, values: dict[str, str] | None = None, query: str = "") -> str:
        path = self.path
        for name in self.path_params:
            path = path.replace("{" + name + "}", url_quote((values or {}).get(name, NO_SUCH)))
        return f"{path}?{query}" if query else path


def load_operations(client: FlaskClient) -> list[Operation]:
    document = client.get(OPENAPI).json
    assert document is not None
    operations = []
    for path, entries in document["paths"].items():
        for method, entry in entries.items():
            parameters = dereference(entry.get("parameters", []), document)
            body = entry.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    operation_id=entry["operationId"],
                    secured=bool(entry.get("security")),
                    path_params=tuple(p["name"] for p in parameters if p["in"] == "path"),
                    query_params={p["name"]: p["schema"] for p in parameters if p["in"] == "query"},
                    body=dereference(body, document) if body is not None else None,
                )
            )
    assert len(operations) > 20, "the document lost its operations"
    return operations


def problem_errors(response: TestResponse) -> list[str]:
    """What is wrong with an answer to bad input: a 5xx, or an error that is not a full problem document."""
    status, errors = response.status_code, []
    if status >= 500:
        errors.append(f"status {status}")
    if status >= 400:
        if response.mimetype != "application/problem+json":
            errors.append(f"content type {response.content_type!r}")
        body = response.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            errors.append("body is not a JSON object")
        else:
            errors += [f"no {name} ({kind.__name__})" for name, kind in PROBLEM_FIELDS.items()
                       if not isinstance(body.get(name), kind)]  # fmt: skip
            if body.get("status") != status:
                errors.append(f"problem status {body.get('status')!r} is not the HTTP status")
    return errors


class Findings:
    """Bad answers, gathered so that one failing test lists every endpoint and input at fault."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.checked = 0

    def check(
        self,
        response: TestResponse,
        what: str,
        *,
        statuses: tuple[int, ...] | range | None = None,
        code: str | None = None,
        detail_mentions: str | None = None,
    ) -> None:
        self.checked += 1
        errors = problem_errors(response)
        status = response.status_code
        if statuses is not None and status not in statuses:
            errors.append(f"status {status}, expected {_statuses(statuses)}")
        body = response.get_json(force=True, silent=True)
        body = body if isinstance(body, dict) else {}
        if code is not None and body.get("code") != code:
            errors.append(f"code {body.get('code')!r}, expected {code!r}")
        if detail_mentions is not None and detail_mentions not in str(body.get("detail")):
            errors.append(f"detail does not name {detail_mentions!r}")
        if errors:
            answer = response.get_data(as_text=True)[:160]
            self.items.append(f"{what}: {'; '.join(errors)} -- {answer!r}")

    def assert_none(self) -> None:
        assert self.checked > 0, "nothing was checked"
        shown = "\n".join(self.items[:60])
        assert not self.items, f"{len(self.items)} of {self.checked} answers are wrong:\n{shown}"


def _statuses(statuses: tuple[int, ...] | range) -> str:
    return f"{statuses.start}..{statuses.stop - 1}" if isinstance(statuses, range) else str(statuses)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


class Caller:
    """Sends requests as an administrator (full session) and keeps that session alive: a hostile body that
    happens to be a valid logout ends it, and the next request would then be refused for the wrong reason."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts, self.client = accounts, accounts.client
        accounts.user_with_phone("alice")  # the user that bodies name
        self._admin_phone = accounts.user_with_phone("root", role="admin")
        self.session = accounts.full_session("root", self._admin_phone)
        # The OpenID Connect endpoints answer in OAuth's own error format (RFC 6749 5.2) and, for the browser,
        # with pages: tests/web/test_oidc_protocol.py holds them to that. Every other route answers
        # problem+json, which is what this module checks.
        self.operations = [op for op in load_operations(self.client) if not op.path.startswith(OAUTH_PATHS)]

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.session)

    def with_body(self) -> list[Operation]:
        return [op for op in self.operations if op.body is not None]

    def send(
        self,
        op: Operation,
        *,
        data: bytes | None = None,
        content_type: str | None = "application/json",
        path: dict[str, str] | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> TestResponse:
        sent = {**(self.auth if op.secured else {}), **self._same_site(), **(headers or {})}
        response = self.client.open(
            op.url(path, query),
            method=op.method,
            data=data,
            content_type=content_type if data is not None else None,
            headers=sent,
            **options,
        )
        if op.secured and response.status_code < 300 and op.method != "GET":
            self._stay_signed_in()
        return response

    def _same_site(self) -> dict[str, str]:
        """What the pages send (Origin, CSRF double submit), so `/web/session/*` checks the body too."""
        cookie = self.client.get_cookie(CSRF_COOKIE)
        if cookie is None:
            self.client.set_cookie(CSRF_COOKIE, "hostile-input-csrf")
            cookie = self.client.get_cookie(CSRF_COOKIE)
        assert cookie is not None
        return {"Origin": "http://localhost:5000", CSRF_HEADER: cookie.value}

    def send_json(self, op: Operation, body: Any, **options: Any) -> TestResponse:
        return self.send(op, data=json.dumps(body).encode(), **options)

    def _stay_signed_in(self) -> None:
        if self.client.get("/api/v1/me", headers=self.auth).status_code == 401:
            self.session = self.accounts.full_session("root", self._admin_phone)

    def plausible(self, op: Operation, name: str) -> Any:
        schema = op.fields[name]
        if name == "transaction_id":  # a live one, so the answer beside it is really checked
            started = self.client.post("/api/v1/verify", json={"username": "alice"})
            if started.status_code == 200:
                return started.json["transaction_id"]
        value = PLAUSIBLE.get(name)
        return value if value is not None and admits(schema, value) else sample(schema)

    def shapes(self, op: Operation, field: str) -> list[tuple[str, ...]]:
        """The sets of companion fields `field` is sent with: the required ones, and each form holding it."""
        found = [op.required]
        for form in FORMS.get(op.operation_id, []):
            if field in form:
                found.append(tuple(dict.fromkeys(op.required + form)))
        return list(dict.fromkeys(found))

    def body_with(self, op: Operation, field: str, value: Any, shape: tuple[str, ...]) -> dict[str, Any]:
        body = {name: self.plausible(op, name) for name in shape if name != field}
        body[field] = value
        return body

    def baseline(self, op: Operation) -> dict[str, Any]:
        """A body that passes validation: the required fields and the first form."""
        forms = FORMS.get(op.operation_id, [()])
        names = tuple(dict.fromkeys(op.required + forms[0]))
        return {name: self.plausible(op, name) for name in names}


@pytest.fixture
def caller(accounts: Accounts) -> Caller:
    return Caller(accounts)


def test_forms_name_documented_operations_and_fields(caller: Caller) -> None:
    """The FORMS table above goes stale silently when an operation is renamed; this makes it loud."""
    by_id = {op.operation_id: op for op in caller.operations}
    for operation_id, forms in FORMS.items():
        assert operation_id in by_id, operation_id
        for form in forms:
            assert set(form) <= set(by_id[operation_id].fields), (operation_id, form)


MALFORMED_BODIES: dict[str, bytes] = {
    "unclosed object": b"{bad",
    "array": b"[]",
    "string": b'"str"',
    "null": b"null",
    "true": b"true",
    "number": b"42",
    "overflowing number": b"1e999",
    "NaN": b"NaN",
    "trailing comma": b'{"username": "alice",}',
    "single quotes": b"{'username': 'alice'}",
    "truncated": b'{"username": "ali',
    "invalid UTF-8": b'{"username": "\xff\xfe\xed\xa0\x80"}',
    "raw NUL byte": b'{"username"\x00: "alice"}',
    "two documents": b"{} {}",
    "comment": b'{"username": "alice" /* hi */}',
}


def test_malformed_json_is_400_or_422_on_every_body_operation(caller: Caller) -> None:
    findings = Findings()
    for op in caller.with_body():
        for label, data in MALFORMED_BODIES.items():
            findings.check(caller.send(op, data=data), f"{op.name} {label}", statuses=(400, 422))
    for op in caller.operations:  # the rest ignore a body, but must not choke on one
        if op.body is None:
            for label, data in MALFORMED_BODIES.items():
                findings.check(caller.send(op, data=data), f"{op.name} {label}")
    findings.assert_none()


DEEP = 10_000
DEEPLY_NESTED: dict[str, bytes] = {
    "10k nested arrays": b"[" * DEEP + b"]" * DEEP,
    "10k nested objects": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "10k nested arrays in a field": b'{"credential": ' + b"[" * DEEP + b"]" * DEEP + b"}",
}


def test_deeply_nested_json_is_refused_not_crashed(caller: Caller) -> None:
    findings = Findings()
    for op in caller.with_body():
        for label, data in DEEPLY_NESTED.items():
            findings.check(caller.send(op, data=data), f"{op.name} {label}", statuses=(400, 413, 422))
    findings.assert_none()


def test_wrong_json_types_in_every_field_are_422(caller: Caller) -> None:
    findings = Findings()
    for op in caller.with_body():
        for field, schema in op.fields.items():
            for kind, value in WRONG_VALUES.items():
                if admits(schema, value):
                    continue
                for shape in caller.shapes(op, field):
                    response = caller.send_json(op, caller.body_with(op, field, value, shape))
                    findings.check(
                        response,
                        f"{op.name} {field}={kind} with {shape}",
                        statuses=(422,),
                        code="validation_error",
                        detail_mentions=field,
                    )
    findings.assert_none()


def test_unknown_fields_are_422(caller: Caller) -> None:
    findings = Findings()
    for op in caller.with_body():
        body = {**caller.baseline(op), "unexpected_field": "x"}
        findings.check(
            caller.send_json(op, body),
            f"{op.name} {short(body)}",
            statuses=(422,),
            code="validation_error",
            detail_mentions="unexpected_field",
        )
    findings.assert_none()


def test_bodies_over_64_kib_are_413(caller: Caller) -> None:
    findings = Findings()
    for op in caller.with_body():
        padded = json.dumps({**caller.baseline(op), "padding": "x" * MAX_BODY_BYTES}).encode()
        bodies = {"padded JSON": padded, "raw bytes": b"x" * (MAX_BODY_BYTES + 1)}
        for label, data in bodies.items():
            findings.check(
                caller.send(op, data=data), f"{op.name} {label}", statuses=(413,), code="body_too_large"
            )
    findings.assert_none()


def test_chunked_bodies_over_64_kib_are_413(caller: Caller) -> None:
    """Without a Content-Length (chunked; gunicorn sets wsgi.input_terminated) the server must count what it
    reads, and never parse the first 64 KiB of a longer body as if it were all of it."""
    findings = Findings()
    for op in caller.with_body():
        document = json.dumps(caller.baseline(op)).encode()
        bodies = {
            "padded JSON": json.dumps({**caller.baseline(op), "padding": "x" * MAX_BODY_BYTES}).encode(),
            "whitespace after a document": document + b" " * MAX_BODY_BYTES,
        }
        for label, data in bodies.items():
            response = caller.send(
                op,
                input_stream=io.BytesIO(data),
                headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
                environ_overrides={"wsgi.input_terminated": True},
            )
            findings.check(response, f"{op.name} chunked {label}", statuses=(413,), code="body_too_large")
    findings.assert_none()


def test_a_body_of_exactly_64_kib_is_read(caller: Caller) -> None:
    """The limit is inclusive: 64 KiB is parsed (here: refused for its unknown field, not for its size)."""
    findings = Findings()
    for op in caller.with_body():
        data = json.dumps({**caller.baseline(op), "unexpected_field": ""}).encode()
        data = data[:-2] + b"x" * (MAX_BODY_BYTES - len(data)) + data[-2:]
        assert len(data) == MAX_BODY_BYTES
        findings.check(
            caller.send(op, data=data), f"{op.name} 64 KiB", statuses=(422,), code="validation_error"
        )
    findings.assert_none()


def test_hostile_strings_in_every_body_string_field(caller: Caller) -> None:
    findings = Findings()
    for op in caller.with_body():
        for field, schema in op.fields.items():
            if not admits(schema, ""):
                continue
            for label, value in HOSTILE_STRINGS.items():
                for shape in caller.shapes(op, field):
                    body = caller.body_with(op, field, value, shape)
                    findings.check(caller.send_json(op, body), f"{op.name} {field}={label} with {shape}")
    findings.assert_none()


def test_hostile_strings_in_every_path_parameter(caller: Caller) -> None:
    """No resource is named like this: 404 (or 422 for a refused body), never a 2xx, never a 5xx."""
    findings = Findings()
    for op in caller.operations:
        for name in op.path_params:
            for label, value in HOSTILE_STRINGS.items():
                data = json.dumps(caller.baseline(op)).encode() if op.body is not None else None
                response = caller.send(op, data=data, path={name: value})
                findings.check(response, f"{op.name} {name}={label}", statuses=range(400, 500))
    findings.assert_none()


def test_hostile_strings_in_every_query_parameter(caller: Caller) -> None:
    """Refused (4xx) or answered; a SQL-looking filter matches nothing (the admin and alice have tokens)."""
    findings = Findings()
    for op in caller.operations:
        if op.method != "GET":
            continue
        names = [*op.query_params, "unexpected"]
        for name in names:
            for label, value in HOSTILE_STRINGS.items():
                response = caller.send(op, query=f"{name}={url_quote(value)}")
                findings.check(response, f"{op.name} ?{name}={label}")
                body = response.get_json(silent=True)
                matched = (
                    body.get("total", 0) if isinstance(body, dict) and response.status_code == 200 else 0
                )
                if label in SQL_LOOKING and matched != 0:
                    findings.items.append(f"{op.name} ?{name}={label} matched {body['total']} rows")
        hostile_name = url_quote(HOSTILE_STRINGS["NUL inside"] + HOSTILE_STRINGS["lone high surrogate"])
        findings.check(caller.send(op, query=f"{hostile_name}=1"), f"{op.name} hostile parameter name")
    findings.assert_none()


def test_sql_looking_credentials_never_sign_in_and_tables_survive(caller: Caller) -> None:
    client = caller.client
    users_before = client.get("/api/v1/admin/users", headers=caller.auth).json["total"]
    attempts = [
        ("/api/v1/login", {"username": HOSTILE_STRINGS["SQL or"], "password": HOSTILE_STRINGS["SQL or"]}),
        ("/api/v1/login", {"username": "alice' --", "password": "x"}),
        ("/api/v1/login", {"username": "alice", "password": "' OR '1'='1"}),
        ("/api/v1/verify", {"username": "alice' --", "otp": "123456"}),
        ("/api/v1/verify", {"username": "alice", "otp": "' OR 1=1 --"}),
        ("/api/v1/verify", {"transaction_id": "x' OR '1'='1", "otp": "123456"}),
        ("/api/v1/token/refresh", {"refresh_token": "' OR 1=1 --"}),
        ("/api/v1/login", {"username": HOSTILE_STRINGS["SQL drop"], "password": HOSTILE_STRINGS["SQL drop"]}),
    ]
    findings = Findings()
    for path, body in attempts:
        response = client.post(path, json=body)
        findings.check(response, f"POST {path} {short(body)}", statuses=(401, 403, 422))
    findings.assert_none()
    after = client.get("/api/v1/admin/users", headers=caller.auth)
    assert after.status_code == 200 and after.json["total"] == users_before
    assert caller.accounts.login("alice")["status"] == "second_factor"


WRONG_CONTENT: dict[str, tuple[Any, str | None]] = {
    "form": (b"username=alice&password=x", "application/x-www-form-urlencoded"),
    "multipart": ({"file": (io.BytesIO(b'{"a": 1}'), "a.json")}, None),
    "text": (b"hello", "text/plain"),
    "xml": (b"<login><username>alice</username></login>", "application/xml"),
    "binary": (bytes(range(256)), "application/octet-stream"),
}


def test_wrong_content_types_are_refused(caller: Caller) -> None:
    findings = Findings()
    for op in caller.with_body():
        for label, (data, content_type) in WRONG_CONTENT.items():
            if isinstance(data, dict):  # a fresh stream each time
                data = {name: (io.BytesIO(b'{"a": 1}'), file) for name, (_, file) in data.items()}
                response = caller.send(op, data=data, content_type="multipart/form-data")
            else:
                response = caller.send(op, data=data, content_type=content_type)
            findings.check(response, f"{op.name} {label}", statuses=range(400, 500))
    findings.assert_none()


def test_undocumented_methods_are_405_with_allow(caller: Caller) -> None:
    findings = Findings()
    documented: dict[str, set[str]] = {}
    for op in caller.operations:
        documented.setdefault(op.path, set()).add(op.method)
    for op in caller.operations:
        if op.method != min(documented[op.path]):
            continue  # once per path
        for method in sorted(set(HTTP_METHODS) - documented[op.path]):
            response = caller.client.open(op.url(), method=method, headers=caller.auth)
            what = f"{method} {op.path}"
            findings.check(response, what, statuses=(405,), code="method_not_allowed")
            allow = {m.strip() for m in response.headers.get("Allow", "").split(",")} - {
                "HEAD",
                "OPTIONS",
                "",
            }
            if allow != documented[op.path]:
                findings.items.append(f"{what}: Allow {allow}, documented {documented[op.path]}")
    findings.assert_none()


OAUTH_PATHS = ("/oauth2/", "/.well-known/openid-configuration")
UNKNOWN_PATHS = [
    "/api/v1/nope",
    "/api/v1/",
    "/api/v2/login",
    "/api/v1/login/extra",
    "/api/v1/tokens/a/b/c",
    "/api/v1/admin/users/a/b",
    "/api/v1/admin/",
    "/.well-known/openid-configuratio",
    "/%00",
    "/api/v1/%ED%A0%80",
    "/api/v1/" + "a" * 10_000,
    "/static/../../etc/passwd",
    "/static/%2e%2e/server/app.py",
    "/api/v1/login%00",
    "/API/V1/LOGIN",
]


def test_unknown_paths_are_404_problems(caller: Caller) -> None:
    findings = Findings()
    for path in UNKNOWN_PATHS:
        response = caller.client.get(path, headers=caller.auth)
        findings.check(response, f"GET {short(path)}", statuses=(404,), code="not_found")
        response = caller.client.post(path, headers=caller.auth)
        if path.startswith("/static/"):  # a GET-only rule matches: 405 is right too
            findings.check(response, f"POST {short(path)}", statuses=(404, 405))
        else:
            findings.check(response, f"POST {short(path)}", statuses=(404,), code="not_found")
    findings.assert_none()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged_tokens(access_token: str) -> dict[str, str]:
    header_part, payload_part, signature = access_token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    payload = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    unsigned = _b64(json.dumps({**header, "alg": "none"}).encode()) + "." + payload_part
    tampered = _b64(json.dumps({**payload, "sub": "someone-else", "scope": "admin"}).encode())
    return {
        "alg none": unsigned + ".",
        "alg none, signature kept": f"{unsigned}.{signature}",
        "tampered claims": f"{header_part}.{tampered}.{signature}",
        "signature cut": f"{header_part}.{payload_part}.",
        "signature of another token": f"{header_part}.{payload_part}.{_b64(b'x' * 64)}",
    }


def test_secured_operations_refuse_missing_and_garbage_credentials(caller: Caller) -> None:
    garbage = {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "garbage bearer": {"Authorization": "Bearer garbage"},
        "three dots": {"Authorization": "Bearer a.b.c"},
        "basic": {"Authorization": "Basic cm9vdDpjb3JyZWN0IGhvcnNl"},
        "huge bearer": {"Authorization": "Bearer " + "A" * 10_000},
        "latin-1 bearer": {"Authorization": "Bearer \u00e9\u00ff.\u00e9.\u00e9"},
        "SQL bearer": {"Authorization": "Bearer ' OR 1=1 --"},
        "garbage cookie": {"Cookie": "tw_access=garbage"},
        **{
            name: {"Authorization": f"Bearer {token}"}
            for name, token in _forged_tokens(caller.session["access_token"]).items()
        },
    }
    findings = Findings()
    secured = [op for op in caller.operations if op.secured]
    assert secured
    for op in secured:
        data = json.dumps(caller.baseline(op)).encode() if op.body is not None else None
        for label, headers in garbage.items():
            response = caller.client.open(
                op.url(), method=op.method, data=data, content_type="application/json", headers=headers
            )
            findings.check(response, f"{op.name} {label}", statuses=(401,))
    findings.assert_none()


def test_admin_operations_refuse_a_users_session(caller: Caller) -> None:
    phone = caller.accounts.user_with_phone("bob")
    user = bearer(caller.accounts.full_session("bob", phone))
    findings = Findings()
    admin_ops = [op for op in caller.operations if op.path.startswith("/api/v1/admin/")]
    assert admin_ops
    for op in admin_ops:
        data = json.dumps(caller.baseline(op)).encode() if op.body is not None else None
        response = caller.client.open(
            op.url({name: "alice" for name in op.path_params}),
            method=op.method,
            data=data,
            content_type="application/json",
            headers=user,
        )
        findings.check(response, op.name, statuses=(403,), code="forbidden")
    findings.assert_none()


def _json_text() -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(
        list(HOSTILE_STRINGS.values())
    )


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _json_text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_text(), inner, max_size=4),
    max_leaves=12,
)


def _bodies(op: Operation) -> st.SearchStrategy[Any]:
    """Any JSON value, or an object made of the operation's own field names with any values."""
    known = {name: JSON_VALUES | st.sampled_from([PLAUSIBLE.get(name, "x"), None]) for name in op.fields}
    return JSON_VALUES | st.fixed_dictionaries({}, optional=known)


def test_any_json_value_posted_anywhere_is_answered_without_a_crash(caller: Caller) -> None:
    """Property: whatever JSON arrives at a POST operation, the answer is < 500, and a problem when >= 400.
    The session is made once, outside the examples (each sign-in costs an Argon2 hash)."""
    posts = [op for op in caller.operations if op.method == "POST"]
    assert posts

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def post_everywhere(data: st.DataObject) -> None:
        for op in posts:
            body = data.draw(_bodies(op), label=op.name)
            path = {name: data.draw(_json_text(), label=name) or NO_SUCH for name in op.path_params}
            response = caller.send_json(op, body, path=path)
            assert problem_errors(response) == [], (op.name, response.get_data(as_text=True)[:300])

    post_everywhere()


@pytest.fixture
def limited_client(settings: Settings, clock: FrozenClock) -> Iterator[FlaskClient]:
    """An app with rate limits on (as in production), high enough never to answer 429 here: the limiter's
    key functions read the body before the view does, and must not choke on it either."""
    limits = RateLimits.parse("ip=100000/minute user=100000/minute")
    application: Flask = create_app(replace(settings, rate_limits=limits), clock=clock)
    yield application.test_client()
    dispose_app(application)


def test_hostile_bodies_with_rate_limits_on(limited_client: FlaskClient) -> None:
    document = limited_client.get(OPENAPI).json
    assert document is not None
    limited = ["/api/v1/login", "/api/v1/verify", "/api/v1/login/passkey"]
    assert set(limited) <= set(document["paths"])
    refused = {
        **MALFORMED_BODIES,
        **DEEPLY_NESTED,
        "too large": b"x" * (MAX_BODY_BYTES + 1),
        "username not a string": b'{"username": {"a": 1}, "otp": "123456"}',
    }
    # `{"username"}` alone starts a (decoy) challenge on /verify: answered or refused, never a crash.
    answered = {f"username {label}": {"username": value} for label, value in HOSTILE_STRINGS.items()}
    findings = Findings()
    for path in limited:
        for label, data in refused.items():
            response = limited_client.post(path, data=data, content_type="application/json")
            findings.check(response, f"POST {path} {label}", statuses=range(400, 500))
        for label, body in answered.items():
            findings.check(limited_client.post(path, json=body), f"POST {path} {label}")
    findings.assert_none()
