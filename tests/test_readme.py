"""The README's configuration table is the one `Settings.documented()` generates, variable for variable."""

from __future__ import annotations

import pytest

from csms.settings import Settings


def configuration_table() -> str:
    """The Markdown table pasted in README.md under "Configuration"."""
    rows = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for name, default, description in Settings.documented():
        shown = f"`{default}`" if default else "(unset)"
        rows.append(f"| `{name}` | {shown} | {description.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def test_the_readme_documents_every_setting(pytestconfig: pytest.Config) -> None:
    readme = (pytestconfig.rootpath / "README.md").read_text()
    table = configuration_table()

    assert table in readme, f"Paste this table under README.md's Configuration heading:\n\n{table}\n"
