"""How the CLI opens the app: ``devtrack`` alone or ``devtrack tui``, never on a pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import devtrack.tui.app as tui_app
from devtrack.cli import tui_cmds

HEAVY = ("textual", "onnxruntime", "ai_edge_litert", "tflite_runtime")


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Pretend to be on a terminal and record what the app would have been opened on."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tui_cmds, "on_terminal", lambda: True)
    monkeypatch.setattr(tui_app, "run_app",
                        lambda root, **kw: calls.append({"root": Path(root), **kw}))
    return calls


def test_devtrack_alone_on_a_pipe_prints_help(run_cli) -> None:
    result = run_cli()
    assert result.exit_code == 0
    assert "Usage: devtrack" in result.out and "tui" in result.out


def test_devtrack_alone_on_a_terminal_opens_the_app(seeded: Path, run_cli, opened,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(seeded / "device_profiles")  # found by walking up, like git
    assert run_cli().exit_code == 0
    assert opened == [{"root": seeded.resolve(), "model": None, "profile": None}]


def test_devtrack_alone_outside_a_workspace_prints_help_and_how_to_start(
        tmp_path: Path, run_cli, opened, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli()
    assert result.exit_code == 0 and not opened
    assert "Usage: devtrack" in result.out and "devtrack init" in result.out


def test_tui_command_takes_workspace_model_and_profile(seeded: Path, run_cli,
                                                       opened) -> None:
    result = run_cli("tui", "--workspace", seeded, "--model", "kws", "--profile", "ci-host")
    assert result.exit_code == 0, result.err
    assert opened == [{"root": seeded.resolve(), "model": "kws", "profile": "ci-host"}]


def test_tui_command_errors_are_one_line(tmp_path: Path, run_cli, opened) -> None:
    result = run_cli("tui", "--workspace", tmp_path)
    assert result.exit_code == 2 and "is not a devtrack workspace" in result.err
    assert not opened


def test_tui_command_checks_model_and_profile_names(seeded: Path, run_cli, opened) -> None:
    unknown_model = run_cli("tui", "-w", seeded, "--model", "nope")
    assert unknown_model.exit_code == 2 and "unknown model 'nope'" in unknown_model.err
    unknown_profile = run_cli("tui", "-w", seeded, "--profile", "ci-hots")
    assert unknown_profile.exit_code == 2 and "did you mean 'ci-host'" in unknown_profile.err
    assert not opened


def test_tui_command_refuses_a_pipe(seeded: Path, run_cli) -> None:
    result = run_cli("tui", "--workspace", seeded)
    assert result.exit_code == 2 and "needs a terminal" in result.err


@pytest.mark.parametrize("args", [["--help"], ["releases"], ["tui", "--help"]])
def test_cli_start_up_does_not_import_textual_or_runtimes(seeded: Path, args: list[str]) -> None:
    code = (f"import json, sys\nfrom devtrack.cli import main\nmain({args!r})\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            f"set({HEAVY!r}))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=seeded, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
