"""The registry commands as a user runs them: init, register, models, releases, show, log."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from devtrack.workspace import DOT_DIR

# Registering and reading releases on each backend (init without a workspace: SQLite's).
pytestmark = pytest.mark.both_backends


def test_init_creates_database_store_and_editable_profiles(tmp_path: Path, run_cli) -> None:
    result = run_cli("init", tmp_path / "fresh")
    assert result.exit_code == 0, result.err
    assert (tmp_path / "fresh" / DOT_DIR / "devtrack.db").is_file()
    assert (tmp_path / "fresh" / DOT_DIR / "artifacts" / "sha256").is_dir()
    assert len(list((tmp_path / "fresh" / "device_profiles").glob("*.toml"))) >= 4
    again = run_cli("init", tmp_path / "fresh", "--json")
    assert again.exit_code == 0
    assert json.loads(again.out)["created"] is False


def test_register_onnx_then_list_and_show_as_json(in_ws: Path, mlp_onnx: Path, run_cli) -> None:
    result = run_cli("register", mlp_onnx, "--model", "kws", "--version", "1.0.0",
                     "--notes", "first build", "--data-version", "2024-05", "--run-id", "r42",
                     "--tag", "device=pixel8", "--tag", "team=audio")
    assert result.exit_code == 0, result.err
    assert "Registered kws@1.0.0" in result.out

    listed = json.loads(run_cli("releases", "--json").out)
    assert len(listed) == 1
    row = listed[0]
    assert {"model", "version", "sha256", "format", "size_bytes", "created_at"} <= set(row)
    assert row["model"] == "kws" and row["version"] == "1.0.0" and row["format"] == "onnx"
    assert row["size_bytes"] == mlp_onnx.stat().st_size

    shown = json.loads(run_cli("show", "kws@1.0.0", "--json").out)
    assert shown["inputs"][0]["name"] == "input"
    assert shown["inputs"][0]["dtype"] == "float32"
    assert shown["outputs"] and shown["ops"]["MatMul"] == 2
    assert shown["params"] == 16 * 8 + 8 + 8 * 4 + 4
    assert shown["quantization"] == "none"
    assert shown["notes"] == "first build"
    assert shown["data_version"] == "2024-05" and shown["run_id"] == "r42"
    assert shown["tags"] == {"device": "pixel8", "team": "audio"}
    assert shown["created_by"] == "tester"
    assert shown["host"] and shown["devtrack_version"]
    stored = in_ws / DOT_DIR / "artifacts" / "sha256" / shown["sha256"][:2] / shown["sha256"]
    assert stored.read_bytes() == mlp_onnx.read_bytes()


def test_register_tflite_and_latest_alias(in_ws: Path, mlp_onnx: Path, mlp_tflite: Path,
                                          run_cli) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0.0").exit_code == 0
    result = run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.1.0", "--parent", "1.0.0")
    assert result.exit_code == 0, result.err
    shown = json.loads(run_cli("show", "kws@latest", "--json").out)
    assert shown["version"] == "1.1.0"
    assert shown["format"] == "tflite"
    assert shown["parent"] == "1.0.0"
    assert shown["inputs"][0]["shape"] == [1, 16]


def test_same_bytes_under_another_version_is_recorded(in_ws: Path, mlp_onnx: Path,
                                                      run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0.0")
    result = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0.1")
    assert result.exit_code == 0
    assert "same artifact as kws@1.0.0" in result.out
    shown = json.loads(run_cli("show", "kws@1.0.1", "--json").out)
    assert shown["same_artifact_as"] == ["kws@1.0.0"]
    assert "same artifact as kws@1.0.1" in run_cli("releases", "kws").out


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".json", '{"lr": 0.001, "layers": [8, 4]}'),
        (".toml", "lr = 0.001\nlayers = [8, 4]\n"),
        (".yaml", "lr: 0.001\nlayers:\n  - 8\n  - 4\n"),
    ],
)
def test_config_in_any_format_is_stored_as_json(in_ws: Path, mlp_onnx: Path, run_cli,
                                                suffix: str, text: str) -> None:
    config = in_ws / f"train{suffix}"
    config.write_text(text)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--config", config).exit_code == 0
    shown = json.loads(run_cli("show", "kws@1", "--json").out)
    assert shown["config"] == {"lr": 0.001, "layers": [8, 4]}


def test_data_file_hash_and_notes_file_are_recorded(in_ws: Path, mlp_onnx: Path,
                                                    run_cli) -> None:
    data = in_ws / "calib.bin"
    data.write_bytes(b"calibration data")
    notes = in_ws / "NOTES.md"
    notes.write_text("line one\nline two\n")
    result = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--data-file", data,
                     "--notes-file", notes)
    assert result.exit_code == 0, result.err
    shown = json.loads(run_cli("show", "kws@1", "--json").out)
    assert shown["data_sha256"] == hashlib.sha256(b"calibration data").hexdigest()
    assert shown["notes"] == "line one\nline two\n"


def test_git_commit_and_dirty_flag_are_captured(tmp_path: Path, mlp_onnx: Path, run_cli,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                              text=True).stdout.strip()
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (repo / "train.py").write_text("print(1)\n")
    git("add", "train.py")
    git("commit", "-qm", "init")
    commit = git("rev-parse", "HEAD")
    monkeypatch.chdir(repo)
    assert run_cli("init").exit_code == 0
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1").exit_code == 0
    (repo / "train.py").write_text("print(2)\n")
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "2").exit_code == 0
    first = json.loads(run_cli("show", "kws@1", "--json").out)
    second = json.loads(run_cli("show", "kws@2", "--json").out)
    assert first["git_commit"] == commit and first["git_dirty"] is False
    assert second["git_commit"] == commit and second["git_dirty"] is True


def test_input_specs_and_fills_are_stored(in_ws: Path, dynamic_onnx: Path, run_cli) -> None:
    result = run_cli("register", dynamic_onnx, "-m", "vad", "-v", "5.0", "--input",
                     "input=1x512", "--fill", "sr=16000")
    assert result.exit_code == 0, result.err
    shown = json.loads(run_cli("show", "vad@5.0", "--json").out)
    assert shown["input_specs"] == ["input=1x512"]
    assert shown["fills"] == ["sr=16000"]
    by_name = {t["name"]: t for t in shown["inputs"]}
    assert by_name["sr"]["shape"] == [] and by_name["sr"]["dtype"] == "int64"
    assert any(not isinstance(d, int) for d in by_name["input"]["shape"])


def test_models_and_releases_tables_show_user_text_literally(in_ws: Path, mlp_onnx: Path,
                                                             run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--notes",
            "[red]ALERT[/red] [b]x :fire:", "--tag", "k=[bold]v[/bold]")
    assert "[red]ALERT[/red] [b]x :fire:" in run_cli("releases").out
    shown = run_cli("show", "kws@1").out
    assert "[red]ALERT[/red] [b]x :fire:" in shown
    assert "k=[bold]v[/bold]" in shown
    models = run_cli("models")
    assert models.exit_code == 0 and "kws" in models.out
    assert json.loads(run_cli("models", "--json").out)[0]["releases"] == 1


def test_releases_fit_the_terminal_and_show_more_columns_when_wide(
        in_ws: Path, mlp_onnx: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli("register", mlp_onnx, "-m", "keyword-spotter-large", "-v", "1.0.0", "--notes",
            "A long first line of notes that has no chance of fitting in eighty columns " * 2)
    monkeypatch.setenv("COLUMNS", "80")
    narrow = run_cli("releases").out
    assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
    assert "keyword-spotter-large@1.0.0" in narrow and "A long …" in narrow
    assert "params" not in narrow and "…" in narrow
    monkeypatch.setenv("COLUMNS", "160")
    wide = run_cli("releases", "keyword-spotter-large").out
    assert "params" in wide and "created" in wide and "1.0.0" in wide
    assert max(len(line) for line in wide.splitlines()) <= 160, wide


def test_log_shows_chained_events(in_ws: Path, mlp_onnx: Path, run_cli) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1")
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "2")
    events = json.loads(run_cli("log", "kws", "--json").out)
    assert [e["kind"] for e in events] == ["register", "register"]
    assert events[1]["prev_hash"] == events[0]["hash"]
    assert events[0]["actor"] == "tester"
    assert "register" in run_cli("log").out


def test_workspace_is_found_from_a_subfolder_and_by_option_or_env(
    ws_dir: Path, tmp_path: Path, mlp_onnx: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = ws_dir / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert json.loads(run_cli("releases", "--json", "--workspace", ws_dir).out)[0]["version"] == "1"
    assert json.loads(run_cli("--workspace", ws_dir, "releases", "--json").out)
    monkeypatch.setenv("DEVTRACK_WORKSPACE", str(ws_dir))
    assert json.loads(run_cli("releases", "--json").out)


def test_empty_workspace_says_how_to_add_a_release(in_ws: Path, run_cli) -> None:
    assert "devtrack register" in run_cli("releases").out
    assert "devtrack register" in run_cli("models").out


def test_show_lists_the_config_as_dotted_keys_literally(in_ws: Path, mlp_onnx: Path,
                                                        run_cli) -> None:
    config = in_ws / "train.toml"
    config.write_text('seed = 0\n[red]\nx = "[bold]y[/bold]"\n[opt]\nlr = 0.1\n'
                      'layers = [64, 32]\n', encoding="utf-8")
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--config", config).exit_code == 0
    lines = [line.rstrip() for line in run_cli("show", "kws@1").out.splitlines()]
    config_lines = lines[lines.index("Config") + 1:lines.index("Notes")]
    assert [line.split()[0] for line in config_lines] == ["seed", "red.x", "opt.lr",
                                                          "opt.layers"]
    assert any(line.endswith("[bold]y[/bold]") for line in config_lines)
    assert any(line.endswith("[64, 32]") for line in config_lines)


def test_escape_sequences_in_user_text_never_reach_the_terminal(in_ws: Path, mlp_onnx: Path,
                                                                run_cli) -> None:
    evil = "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07 line two\nline three"
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--notes", evil).exit_code == 0
    assert run_cli("notes", "kws@1", "--set", evil + " (edited)", "--reason",
                   "\x1b[2Jwhy").exit_code == 0
    for args in (("releases",), ("show", "kws@1"), ("log",), ("log", "--json")):
        out = run_cli(*args).out
        assert "\x1b" not in out and "\x07" not in out, args
    shown = run_cli("show", "kws@1").out
    assert "\\x1b[31mRED\\x1b[0m" in shown and "line three" in shown
    assert "\\x1b[2Jwhy" in run_cli("log").out


def test_a_group_without_its_subcommand_shows_its_help(in_ws: Path, run_cli) -> None:
    result = run_cli("audit")
    assert result.exit_code == 2 and "Commands:" in result.err and "verify" in result.err
