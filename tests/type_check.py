"""mypy over the code, started with a whole-suite run and read by `test_types`.

On a clean clone mypy takes about 20 s of one core, and as a test it held one of the two workers that long.
Started when the run starts, it runs beside the tests, which spend about half their time waiting for the
servers they drive. A run of part of the suite (`-k`, files) runs it in the test, if the test is selected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
CHECKED = ["server", "devices", "provisioning"]
RESULT_DIR = "TOKENWARD_TEST_TYPE_CHECK_DIR"
# Writes mypy's output, then its exit status: the status file appears once mypy has ended.
_RECORD = (
    'out="$1"; shift; "$@" > "$out/output" 2>&1; '
    'echo $? > "$out/status.tmp"; mv "$out/status.tmp" "$out/status"'
)


def command() -> list[str]:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent)) or "mypy"
    return [mypy, *[path for path in CHECKED if (ROOT / path).exists()]]


def start() -> None:
    """In the run's first process (pytest-xdist's workers inherit the variable that says where to look)."""
    if RESULT_DIR in os.environ:
        return
    directory = tempfile.mkdtemp(prefix="tokenward-types-")
    subprocess.Popen(
        ["sh", "-c", _RECORD, "record", directory, *command()],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.environ[RESULT_DIR] = directory


def result(timeout: float = 300) -> tuple[int, str]:
    """mypy's exit status and output: the background run's, or one run now."""
    directory = os.environ.get(RESULT_DIR)
    if directory is None:
        done = subprocess.run(command(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr
    status = Path(directory) / "status"
    deadline = time.monotonic() + timeout
    while not status.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"mypy did not finish in {timeout} s ({directory})")
        time.sleep(0.1)  # polling for the background run's end
    outcome = int(status.read_text()), (Path(directory) / "output").read_text()
    shutil.rmtree(directory, ignore_errors=True)
    return outcome
