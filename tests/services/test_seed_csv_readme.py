"""The README's OATH CSV example is a file the importer reads as the README describes it."""

from __future__ import annotations

import re
from pathlib import Path

from server.services.seed_files import parse_csv

README = Path(__file__).parents[2] / "README.md"


def test_the_readme_csv_example_imports_as_described() -> None:
    block = re.search(r"```csv\n(.*?)```", README.read_text(), re.DOTALL)
    assert block is not None
    records = parse_csv(block.group(1))
    assert [(r.serial, r.type, r.digits, r.algorithm) for r in records] == [
        ("HW0001", "hotp", 6, "SHA1"),
        ("HW0002", "totp", 8, "SHA256"),
    ]
    assert records[0].counter == 0 and records[1].period == 30
