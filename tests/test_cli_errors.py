"""Every bad input gets one line, exit code 2, no traceback, and leaves the workspace as it was."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from devtrack.workspace import DOT_DIR

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


def assert_clean_error(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.out, result.err)
    assert "Traceback" not in result.err
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _bad_files(tmp: Path, mlp_onnx: Path, mlp_tflite: Path) -> dict[str, Path]:
    files = {
        "empty": tmp / "empty.onnx",
        "random": tmp / "random.onnx",
        "truncated_onnx": tmp / "truncated.onnx",
        "truncated_tflite": tmp / "truncated.tflite",
        "png": tmp / "picture.onnx",
    }
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(os.urandom(4096))
    onnx_bytes = mlp_onnx.read_bytes()
    files["truncated_onnx"].write_bytes(onnx_bytes[: len(onnx_bytes) // 2])
    tfl = mlp_tflite.read_bytes()
    files["truncated_tflite"].write_bytes(tfl[: len(tfl) // 2])
    files["png"].write_bytes(PNG_HEADER)
    return files


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("empty", "empty"),
        ("random", "not an ONNX or TFLite"),
        ("truncated_onnx", "truncated"),
        ("truncated_tflite", "truncated"),
        ("png", "PNG"),
    ],
)
def test_register_rejects_a_bad_model_file(in_ws: Path, tmp_path: Path, mlp_onnx: Path,
                                           mlp_tflite: Path, run_cli, unchanged, kind: str,
                                           needle: str) -> None:
    bad = _bad_files(tmp_path, mlp_onnx, mlp_tflite)[kind]
    result = run_cli("register", bad, "--model", "kws", "--version", "1.0.0")
    assert_clean_error(result, bad.name, needle)
    unchanged()


def test_register_missing_file(in_ws: Path, run_cli, unchanged) -> None:
    assert_clean_error(run_cli("register", "nope.onnx", "-m", "kws", "-v", "1"),
                       "nope.onnx", "does not exist")
    unchanged()


def test_register_duplicate_version(in_ws: Path, mlp_onnx: Path, mlp_onnx_b: Path,
                                    run_cli) -> None:
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0.0").exit_code == 0
    from tests.conftest import snapshot_workspace

    before = snapshot_workspace(in_ws)
    result = run_cli("register", mlp_onnx_b, "-m", "kws", "-v", "1.0.0")
    assert_clean_error(result, "kws@1.0.0", "already registered")
    assert snapshot_workspace(in_ws) == before


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("show", "kws"), ("malformed release reference", "MODEL@VERSION")),
        (("show", "kws@"), ("malformed",)),
        (("show", "@1.0"), ("malformed",)),
        (("show", "a@b@c"), ("malformed",)),
        (("show", "ghost@1.0"), ("unknown model 'ghost'",)),
        (("show", "kws@9.9"), ("unknown release kws@9.9", "1.0.0")),
        (("releases", "ghost"), ("unknown model 'ghost'",)),
        (("log", "ghost"), ("unknown model 'ghost'",)),
    ],
)
def test_bad_references(in_ws: Path, mlp_onnx: Path, run_cli, args: tuple[str, ...],
                        needles: tuple[str, ...]) -> None:
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0.0")
    assert_clean_error(run_cli(*args), *needles)


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (("--input", "input=1xAx3"), ("bad --input spec", "'A'")),
        (("--input", "input"), ("bad --input spec",)),
        (("--input", "input=1x16:complex7"), ("unknown dtype",)),
        (("--input", "nosuch=1x16"), ("no input named 'nosuch'",)),
        (("--fill", "sr"), ("bad --fill spec",)),
        (("--fill", "sr=fast"), ("not a number",)),
        (("--tag", "novalue"), ("bad --tag",)),
        (("--parent", "0.9"), ("parent kws@0.9 is not registered",)),
        (("--model", "bad name!"), ("invalid model name",)),
        (("--version", "latest"), ("reserved",)),
    ],
)
def test_register_bad_options(in_ws: Path, mlp_onnx: Path, run_cli, unchanged,
                              extra: tuple[str, ...], needles: tuple[str, ...]) -> None:
    args = ["register", str(mlp_onnx), "-m", "kws", "-v", "1.0.0", *extra]
    result = run_cli(*args)
    assert_clean_error(result, *needles)
    unchanged()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.json", "{not json"),
        ("bad.toml", "lr = = 1"),
        ("bad.yaml", "a: [1, 2"),
        ("list.json", "[1, 2]"),
        ("train.ini", "[x]\na=1"),
    ],
)
def test_register_config_that_does_not_parse(in_ws: Path, mlp_onnx: Path, run_cli, unchanged,
                                             name: str, text: str) -> None:
    config = in_ws / name
    config.write_text(text)
    result = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--config", config)
    assert_clean_error(result, name)
    unchanged()


def test_outside_a_workspace(tmp_path: Path, mlp_onnx: Path, run_cli,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (("releases",), ("register", str(mlp_onnx), "-m", "k", "-v", "1"),
                 ("show", "k@1"), ("log",)):
        assert_clean_error(run_cli(*args), "not inside a devtrack workspace", "devtrack init")
    assert not (tmp_path / DOT_DIR).exists()


def test_workspace_option_pointing_nowhere(tmp_path: Path, run_cli) -> None:
    assert_clean_error(run_cli("releases", "--workspace", tmp_path), "not a devtrack workspace")


def test_database_from_a_newer_devtrack_is_refused_untouched(in_ws: Path, run_cli,
                                                             mlp_onnx: Path) -> None:
    db = in_ws / DOT_DIR / "devtrack.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = db.read_bytes()
    for args in (("releases",), ("register", str(mlp_onnx), "-m", "k", "-v", "1")):
        assert_clean_error(run_cli(*args), "newer devtrack", "schema 99", "upgrade")
    assert db.read_bytes() == before
    assert not (in_ws / DOT_DIR / "devtrack.db-wal").exists() or \
        (in_ws / DOT_DIR / "devtrack.db-wal").stat().st_size == 0


def test_failed_database_write_leaves_no_orphan_artifact(in_ws: Path, mlp_onnx: Path, run_cli,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         unchanged: Callable[[], None]) -> None:
    from devtrack import store

    def boom(self, **kwargs):  # an I/O failure halfway through the transaction
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store.Store, "append_event", boom)
    assert_clean_error(run_cli("register", mlp_onnx, "-m", "kws", "-v", "1"),
                       "database failed: disk I/O error")
    unchanged()


def test_locked_database_is_one_line_and_changes_nothing(in_ws: Path, mlp_onnx: Path, run_cli,
                                                         unchanged, monkeypatch) -> None:
    from devtrack import store

    monkeypatch.setattr(store, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(in_ws / DOT_DIR / "devtrack.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run_cli("register", mlp_onnx, "-m", "kws", "-v", "1")
    finally:
        holder.rollback()
        holder.close()
    assert_clean_error(result, "locked by another devtrack process")
    unchanged()


def test_empty_database_file_is_reported_not_recreated(in_ws: Path, run_cli) -> None:
    db = in_ws / DOT_DIR / "devtrack.db"
    db.write_bytes(b"")
    for name in ("devtrack.db-wal", "devtrack.db-shm"):
        (in_ws / DOT_DIR / name).unlink(missing_ok=True)
    assert_clean_error(run_cli("releases"), "is empty", "restore it from a backup")
    assert db.stat().st_size == 0


def test_init_where_nothing_can_be_written(run_cli) -> None:
    assert_clean_error(run_cli("init", "/proc/devtrack-cannot-be-here"), "/proc")


def test_binary_notes_file_is_refused(in_ws: Path, mlp_onnx: Path, run_cli, unchanged) -> None:
    notes = in_ws / "notes.bin"
    notes.write_bytes(b"\x89\xff\x00binary")
    assert_clean_error(run_cli("register", mlp_onnx, "-m", "kws", "-v", "1", "--notes-file",
                               notes), "not UTF-8 text")
    unchanged()


def test_absurd_input_shape_is_refused_before_anything_runs(in_ws: Path, dynamic_onnx: Path,
                                                            run_cli, unchanged) -> None:
    result = run_cli("register", dynamic_onnx, "-m", "vad", "-v", "1", "--input",
                     "input=100000x100000", "--fill", "sr=16000")
    assert_clean_error(result, "37.3 GiB", "--input")
    unchanged()


@pytest.mark.parametrize(("args", "needles"), [
    (("releasez",), ("No such command 'releasez'. Did you mean 'releases'?", "devtrack --help")),
    (("bench",), ("Missing argument", "'devtrack bench --help'")),
    (("bench", "kws@1", "--bogus"), ("No such option '--bogus'",)),
    (("compare", "kws@1", "kws@2", "--format", "bogus"), ("'bogus' is not one of",)),
    (("audit", "verfy"), ("Did you mean 'verify'?",)),
    (("check", "kws@1", "--inconclusive", "maybe"), ("'maybe' is not one of 'pass', 'fail'",)),
])
def test_click_usage_errors_are_one_line_too(in_ws: Path, run_cli, unchanged,
                                             args: tuple[str, ...],
                                             needles: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert_clean_error(result, *needles)
    assert result.err.startswith("error: ") and "Usage:" not in result.err
