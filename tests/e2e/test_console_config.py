"""The console from any directory (issue 14, item 5): `--config FILE` on every command or TOKENWARD_CONFIG
find the instance; without them, a command that finds no database says so and creates nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.serve_process import PASSWORD, TOKENWARD


def run(*args: str, cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("TOKENWARD_")}
    return subprocess.run(
        [TOKENWARD, *args],
        cwd=cwd,
        env={**clean, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_no_database_where_one_was_expected_is_an_error(tmp_path: Path) -> None:
    refused = run("user", "list", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"error: no Tokenward database at {tmp_path / 'instance' / 'tokenward.db'}"
    )
    assert "--config" in refused.stderr and "Traceback" not in refused.stderr
    assert list(tmp_path.iterdir()) == []  # no ./instance made on the way


def test_a_database_without_its_encryption_key_is_an_error(tmp_path: Path, database_url: str) -> None:
    """A console run elsewhere with the database URL alone would seal new secrets with a new key."""
    refused = run("token", "list", cwd=tmp_path, TOKENWARD_DATABASE_URL=database_url)
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"error: no encryption key at {tmp_path / 'instance' / 'encryption.key'}"
    )
    assert not (tmp_path / "instance").exists()


def test_a_config_file_finds_the_instance_from_anywhere(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    config = home / "tokenward.toml"
    config.write_text('instance_dir = "state"\naccess_ttl = 900\nrate_limits = "off"\n')

    added = run(
        "user", "add", "alice", "--password-stdin", "--config", str(config), cwd=elsewhere, stdin=PASSWORD
    )
    assert added.returncode == 0, added.stderr
    assert (home / "state" / "tokenward.db").exists()
    assert list(elsewhere.iterdir()) == []

    listed = run("user", "list", "--json", cwd=tmp_path, TOKENWARD_CONFIG=str(config))
    assert [user["username"] for user in json.loads(listed.stdout)] == ["alice"]
    rotated = run(
        "--config", str(config), "keys", "rotate", "--json", cwd=elsewhere, TOKENWARD_ACCESS_TTL="60"
    )
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["previous_key_published_seconds"] == 60  # the environment wins

    config.write_text('instance_dir = "state"\nacess_ttl = 900\n')
    refused = run("user", "list", "--config", str(config), cwd=elsewhere)
    assert refused.returncode == 1
    assert "unknown setting 'acess_ttl'" in refused.stderr
