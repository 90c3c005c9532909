"""The README's test command is exactly what CI runs, and it checks the architecture's walls."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("Set up and run the whole test suite", 1)[1]
    match = re.search(r"```bash\n(.+?)\n```", section, flags=re.DOTALL)
    assert match is not None, "the README lost its test command block"
    return match.group(1).strip()


def _ci_command() -> str:
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    return lines[-1].strip()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    assert _ci_command() == _readme_test_command()


def test_the_test_command_lints_types_checks_the_walls_and_tests() -> None:
    steps = [step.strip() for step in _readme_test_command().split("&&")]
    assert steps[-4:] == [".venv/bin/ruff check .", ".venv/bin/mypy", ".venv/bin/lint-imports",
                          ".venv/bin/pytest -q -n auto --maxprocesses 4 --dist loadfile"]
    assert "pip install -e '.[test]'" in steps[1]
