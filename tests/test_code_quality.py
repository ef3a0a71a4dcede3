"""CI holds the house rules: lint and format clean, layer contracts kept, types checked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import type_check

ROOT = Path(__file__).parents[1]
SOURCES = ["server", "devices", "provisioning", "tests", "benchmarks"]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which(command[0], path=str(Path(sys.executable).parent)) or command[0]
    return subprocess.run([executable, *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _existing(paths: list[str]) -> list[str]:
    return [path for path in paths if (ROOT / path).exists()]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "--no-cache"],
        ["ruff", "format", "--check", "--no-cache"],
    ],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff(command: list[str]) -> None:
    result = _run(*command, *_existing(SOURCES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_contracts() -> None:
    """DESIGN.md's arrows: devices never import the server, services never import Flask, and so on."""
    result = _run("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_types() -> None:
    """Strict on devices/ and server/services/ (pyproject.toml), checked everywhere else (mypy may have run
    beside the other tests: tests/type_check.py)."""
    status, output = type_check.result()
    assert status == 0, output
