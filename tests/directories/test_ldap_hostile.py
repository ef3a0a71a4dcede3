"""Hostile usernames never match anyone nor change the filter (RFC 4515 escaping), checked against slapd:
each is tried with alice's real password, which an injected filter that still selects alice would accept."""

from __future__ import annotations

import time

from flask import Flask

from server.directories.ldap import LdapDirectory
from tests.accounts import Accounts
from tests.directories.slapd import Slapd, password_of

HOSTILE = [
    "*",
    "alic*",
    "*lice",
    "a*e",
    ")(uid=*",
    "alice)(uid=*",
    "alice)(|(uid=*",
    "*)(objectClass=*",
    "alice)(objectClass=*",
    "\\",
    "alice\\",
    "\\61lice",  # the escaped form of "alice" typed literally
    "alice\x00",
    "alice\x00)(uid=*",
    "a" * 10_000,
    "alice" + "\u0000" * 3,
    "ålice",
    "\u0430lice",  # Cyrillic a: looks like alice, is not
    "alice\u200b",  # zero-width space
    "(uid=alice)",
]


def test_hostile_names_never_match_in_the_directory(app: Flask) -> None:
    directory = app.extensions["tokenward"].directories.external
    assert isinstance(directory, LdapDirectory)
    matched = [
        name
        for name in HOSTILE
        if directory.check_password(username=name, password=password_of("alice"), known=None) is not None
    ]
    assert matched == []


def test_the_real_name_does_match(app: Flask) -> None:
    """The control: alice's own name signs her in (so the refusals above mean something)."""
    directory = app.extensions["tokenward"].directories.external
    found = directory.check_password(username="alice", password=password_of("alice"), known=None)
    assert found is not None and found.username == "alice"


def test_the_directory_matching_rule_decides_case_and_the_stored_name_is_the_directory_s(app: Flask) -> None:
    """uid matches case-insensitively (caseIgnoreMatch, Unicode folding included): that is the directory's
    own notion of one name, not an injection; the person is who the directory says, under its spelling."""
    directory = app.extensions["tokenward"].directories.external
    for typed in ("ALICE", "Alice", "ALİCE"):
        found = directory.check_password(username=typed, password=password_of("alice"), known=None)
        assert found is not None and found.username == "alice"


def test_hostile_names_over_http_are_refused_without_a_session(accounts: Accounts) -> None:
    for username in HOSTILE:
        response = accounts.client.post(
            "/api/v1/login", json={"username": username, "password": password_of("alice")}
        )
        assert response.status_code in (401, 422), (username, response.status_code)
        assert "access_token" not in response.get_data(as_text=True)
        assert "transaction_id" not in response.get_data(as_text=True)


def test_an_empty_password_is_never_an_unauthenticated_bind(app: Flask) -> None:
    """RFC 4513 5.1.2: a DN with an empty password binds anonymously on many servers."""
    directory = app.extensions["tokenward"].directories.external
    assert directory.check_password(username="alice", password="", known=None) is None


def test_the_filter_escapes_every_special_character(app: Flask) -> None:
    directory = app.extensions["tokenward"].directories.external
    built = directory._user_filter("a*b(c)d\\e\x00f")
    assert built == "(&(objectClass=inetOrgPerson)(uid=a\\2ab\\28c\\29d\\5ce\\00f))"


def _kinds(lines: list[str]) -> list[str]:
    """`BIND`, `SRCH`, `RESULT err=49`…: what was done and how it ended, without DNs or ids."""
    kinds = []
    for line in lines:
        words = line.split()
        if words[0] == "RESULT":
            kinds.append("RESULT " + next(w for w in words if w.startswith("err=")))
        elif words[0] in ("BIND", "SRCH", "UNBIND", "EXT"):
            kinds.append(words[0])
    return kinds


def test_an_unknown_name_costs_the_directory_what_a_wrong_password_does(app: Flask, slapd: Slapd) -> None:
    """Same operations, same results: a search, then a bind that fails with invalidCredentials (49), whether
    the name exists or not. (Timing is not asserted; the work is.)"""
    directory = app.extensions["tokenward"].directories.external
    directory.check_password(username="alice", password="warm-up", known=None)  # pools a service connection

    def settled() -> int:
        """The length of slapd's log once it stops growing: slapd logs just after answering, so the lines of
        one call (including its connection's UNBIND) may arrive after the call returns."""
        length, deadline = len(slapd.operations()), time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if (now := len(slapd.operations())) == length:
                return length
            length = now
        return length

    def work(username: str) -> list[str]:
        before = settled()
        assert directory.check_password(username=username, password="wrong password", known=None) is None
        settled()
        return sorted(_kinds(slapd.operations()[before:]))  # two connections: their lines may interleave

    wrong, unknown = work("alice"), work("nobody-here")
    assert wrong == unknown
    assert "BIND" in wrong and "RESULT err=49" in wrong
