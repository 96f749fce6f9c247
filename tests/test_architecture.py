"""The layering rules of pyproject.toml's import-linter contracts hold for the whole code base."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


def test_every_import_contract_is_kept(pytestconfig: pytest.Config) -> None:
    root = pytestconfig.rootpath
    contracts = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    lint_imports = Path(sys.executable).with_name("lint-imports")
    command = str(lint_imports) if lint_imports.exists() else shutil.which("lint-imports")
    assert command is not None, "lint-imports (import-linter) is not installed"

    result = subprocess.run(  # noqa: S603 (a fixed command of our own tooling)
        [command, "--config", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    for contract in contracts:
        assert f"{contract['name']} KEPT" in report, report
