"""udev-rules/: syntax (our own parser, and `udevadm verify` where a udevadm >= 253 exists) and agreement
with the fob's USB IDs and symlink names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from devices.fob.discovery import DEFAULT_SYMLINK_DIR, SYMLINK_PREFIX
from devices.fob.usb_ids import FOB_USB_PRODUCT_ID, FOB_USB_VENDOR_ID, udev_hex

RULES_DIR = Path(__file__).parents[2] / "udev-rules"
RULES = RULES_DIR / "70-tokenward.rules"
MIN_UDEVADM_WITH_VERIFY = 253

MATCH_OPERATORS = {"==", "!="}
ASSIGN_OPERATORS = {"=", "+=", "-=", ":="}
# udev(7): key -> (whether it takes {attribute}, allowed operators)
KEYS: dict[str, tuple[bool | None, set[str]]] = {
    **{key: (False, MATCH_OPERATORS) for key in ("ACTION", "DEVPATH", "KERNELS", "SUBSYSTEMS", "DRIVERS")},
    **{key: (False, MATCH_OPERATORS) for key in ("KERNEL", "SUBSYSTEM", "DRIVER", "TAGS", "RESULT")},
    **{key: (True, MATCH_OPERATORS) for key in ("ATTRS", "CONST")},
    **{key: (False, MATCH_OPERATORS | ASSIGN_OPERATORS) for key in ("NAME", "SYMLINK", "TAG", "PROGRAM")},
    **{key: (False, ASSIGN_OPERATORS) for key in ("OWNER", "GROUP", "MODE", "OPTIONS")},
    **{key: (True, MATCH_OPERATORS | ASSIGN_OPERATORS) for key in ("ATTR", "SYSCTL", "ENV")},
    "IMPORT": (True, MATCH_OPERATORS | ASSIGN_OPERATORS),
    "RUN": (None, ASSIGN_OPERATORS),
    "TEST": (None, MATCH_OPERATORS),
    "SECLABEL": (True, ASSIGN_OPERATORS),
    "LABEL": (False, {"="}),
    "GOTO": (False, {"="}),
}
TOKEN = re.compile(
    r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^{}"]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"\s*'
)


@dataclass(frozen=True)
class Token:
    key: str
    attr: str | None
    op: str
    value: str


def parse_rule(line: str) -> list[Token]:
    """One rule line as KEY{attr} OP "VALUE" tokens separated by commas; ValueError for anything else."""
    tokens, position = [], 0
    while True:
        match = TOKEN.match(line, position)
        if match is None:
            raise ValueError(f'not KEY OP "VALUE" at column {position}: {line!r}')
        key, attr, op = match["key"], match["attr"], match["op"]
        if key not in KEYS:
            raise ValueError(f"unknown key {key}")
        takes_attr, operators = KEYS[key]
        if takes_attr is not None and takes_attr != (attr is not None):
            raise ValueError(f"{key} {'needs' if takes_attr else 'takes no'} {{attribute}}")
        if op not in operators:
            raise ValueError(f"{key} does not take {op}")
        tokens.append(Token(key, attr, op, match["value"]))
        position = match.end()
        if position == len(line):
            return tokens
        if line[position] != ",":
            raise ValueError(f"a comma is expected at column {position}: {line!r}")
        position += 1


def parse_rules(text: str) -> list[list[Token]]:
    rules = [
        parse_rule(line.strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    labels = [token.value for rule in rules for token in rule if token.key == "LABEL"]
    gotos = {token.value for rule in rules for token in rule if token.key == "GOTO"}
    if len(labels) != len(set(labels)) or not gotos <= set(labels):
        raise ValueError(f"labels {labels} do not match the GOTOs {sorted(gotos)}")
    return rules


def _rules() -> list[list[Token]]:
    return parse_rules(RULES.read_text())


def test_every_line_is_a_well_formed_rule() -> None:
    rules = _rules()
    assert len(rules) >= 8
    assert all("\\" not in line for line in RULES.read_text().splitlines())  # no continuations to get wrong


@pytest.mark.parametrize(
    "text",
    [
        'KERNEL=="x", MODE="0660',  # unbalanced quote
        'KERNEL=="x" MODE="0660"',  # no comma
        'KERNAL=="x"',  # unknown key
        'ATTRS=="1209"',  # attribute missing
        'GROUP=="tokenward"',  # matching an assignment-only key
        'GOTO="nowhere"',  # no such label
        'LABEL="a"\nLABEL="a"',  # label twice
    ],
)
def test_the_parser_catches_mistakes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rules(text)


def test_the_rules_name_the_fob_usb_ids() -> None:
    matches = [rule for rule in _rules() if any(token.key == "ATTRS" for token in rule)]
    assert len(matches) >= 2
    for rule in matches:
        ids = {token.attr: token.value for token in rule if token.key == "ATTRS"}
        assert ids == {"idVendor": udev_hex(FOB_USB_VENDOR_ID), "idProduct": udev_hex(FOB_USB_PRODUCT_ID)}


def test_the_fob_gets_group_symlink_and_modemmanager_ignore() -> None:
    tokens = {(token.key, token.attr, token.op, token.value) for rule in _rules() for token in rule}
    symlink = f"{DEFAULT_SYMLINK_DIR.relative_to('/dev')}/{SYMLINK_PREFIX}$env{{ID_SERIAL_SHORT}}"
    assert ("SYMLINK", None, "+=", symlink) in tokens
    assert ("ENV", "ID_MM_DEVICE_IGNORE", "=", "1") in tokens
    assert ("GROUP", None, "=", "tokenward") in tokens and ("MODE", None, "=", "0660") in tokens


def test_fido_keys_get_the_group() -> None:
    fido = [rule for rule in _rules() if Token("ENV", "ID_FIDO_TOKEN", "==", "1") in rule]
    assert len(fido) == 1
    assert Token("SUBSYSTEM", None, "==", "hidraw") in fido[0]
    assert Token("GROUP", None, "=", "tokenward") in fido[0]


def _udevadm_version(path: str) -> int:
    output = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return int(output.split()[0])


def _udevadm_with_verify() -> str:
    configured = os.environ.get("TOKENWARD_UDEVADM")
    if configured:
        version = _udevadm_version(configured)
        assert version >= MIN_UDEVADM_WITH_VERIFY, f"TOKENWARD_UDEVADM={configured} is udevadm {version}"
        return configured
    found = shutil.which("udevadm")
    if found is None:
        pytest.skip("no udevadm; run udev-rules/fetch-udevadm DIR and set TOKENWARD_UDEVADM=DIR/udevadm")
    version = _udevadm_version(found)
    if version < MIN_UDEVADM_WITH_VERIFY:
        pytest.skip(
            f"udevadm {version} on PATH has no `verify` (needs {MIN_UDEVADM_WITH_VERIFY}); "
            "run udev-rules/fetch-udevadm DIR and set TOKENWARD_UDEVADM=DIR/udevadm"
        )
    return found


def test_udevadm_verify_accepts_the_rules() -> None:
    udevadm = _udevadm_with_verify()
    result = subprocess.run(
        [udevadm, "verify", "-N", "never", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_fetch_udevadm_is_an_executable_bash_script() -> None:
    script = RULES_DIR / "fetch-udevadm"
    assert os.access(script, os.X_OK)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
