"""`tokenward serve` builds the app before gunicorn forks its workers (preload), and freezes what is loaded
then out of the garbage collector's work: a worker's collections skip the app's long-lived objects instead
of walking them again and again (and leave the pages they share with the master unwritten)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.serve import PreloadedApplication
from tests.accounts import dispose_app


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # the rest of the test process collects as usual


@pytest.mark.usefixtures("unfrozen")
def test_the_preloaded_app_is_left_out_of_the_workers_collections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENWARD_INSTANCE_DIR", str(tmp_path / "instance"))
    monkeypatch.delenv("TOKENWARD_DATABASE_URL", raising=False)
    app = PreloadedApplication(["--bind", "127.0.0.1:0"]).load_wsgiapp()
    try:
        assert gc.get_freeze_count() > 0
        assert not any(tracked is app.extensions for tracked in gc.get_objects())  # frozen
    finally:
        dispose_app(app)
