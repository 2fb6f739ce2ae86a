"""tokenlib is typed: mypy --strict (configured in pyproject.toml) reports no error."""

from __future__ import annotations

from mypy import api

from conftest import ROOT


def test_tokenlib_is_mypy_strict_clean() -> None:
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "tokenlib")])
    assert status == 0, f"mypy found problems:\n{stdout}{stderr}"
