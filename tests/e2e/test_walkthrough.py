"""The README's walk-through runs as written (issue 14, item 3): `scripts/walkthrough` against a real
`tokenward serve` on a fresh instance, with the default rate limits, an emulated fob and the console of
./.venv; and the README shows exactly the script's steps, so the two cannot drift apart."""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.e2e.serve_process import ServeProcess, server_env

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "walkthrough"
BEGINS, ENDS = "# --- walk-through begins", "# --- walk-through ends ---"


def script_steps() -> str:
    text = SCRIPT.read_text()
    start = text.index("\n", text.index(BEGINS)) + 1
    return text[start : text.index(ENDS)].strip("\n")


def readme_steps() -> str:
    section = ROOT.joinpath("README.md").read_text().split("## Walk-through with curl", 1)[1]
    block = re.search(r"```sh\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, "the README's walk-through has no ```sh block"
    return block.group(1)


def test_the_readme_shows_the_scripts_steps() -> None:
    assert readme_steps() == script_steps(), "README.md's walk-through differs from scripts/walkthrough"


@pytest.mark.timeout(300)  # the script waits (at most 30 s) for the phone app's next code, as a person would
def test_the_walkthrough_runs_against_a_real_server(tmp_path: Path) -> None:
    env = server_env(
        instance_dir=tmp_path / "instance",
        database_url=f"sqlite:///{tmp_path / 'tokenward.db'}",
        encryption_key=secrets.token_hex(32),
    )
    with ServeProcess.start(env, log_path=tmp_path / "serve.log", workers=1) as server:
        run = subprocess.run(
            [str(SCRIPT), server.base_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    out = run.stdout
    assert '"state":"active"' in out
    assert '"code":"replayed_otp"' in out
    assert '"scope":"enroll"' in out and '"recovery_code"' in out
    assert re.search(r'"amr":\["hwk","pwd","mfa"\]|"amr":\["pwd","hwk","mfa"\]', out) or '"hwk"' in out
    assert out.rstrip().endswith("walk-through finished")
