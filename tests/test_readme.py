"""README stays true: its settings table lists exactly the settings the code reads, with their defaults."""

from __future__ import annotations

import re
from pathlib import Path

from crmcore.settings import Settings, env_name

README = Path(__file__).resolve().parents[1] / "README.md"


def _rows() -> dict[str, str]:
    rows = {}
    for line in README.read_text().splitlines():
        m = re.match(r"\| `(CRMAGENTO_[A-Z_]+)` \| ([^|]+) \|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip().strip("`")
    return rows


def test_settings_table_matches_the_code() -> None:
    rows = _rows()
    assert set(rows) == {env_name(name) for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            expected = "(empty)"
        elif field.default is None:
            expected = "(unset)"
        else:
            expected = str(field.default)
        assert rows[env_name(name)] == expected, name


def test_quick_start_is_two_make_commands() -> None:
    text = README.read_text()
    block = text.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in block.strip().splitlines()] == [["make", "demo"], ["make", "test"]]
