"""export and import: a bundle round-trips between workspaces, verified, sealed, idempotent;
every hostile or conflicting bundle is refused with one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from devtrack.workspace import DOT_DIR
from tests.conftest import CliResult, raw_sql, snapshot_workspace
from tests.test_cli_bench import TINY_PROFILE
from tests.test_cli_errors import assert_clean_error

# The lab that exports is a SQLite workspace; the workspace that imports is on each backend.
pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def origin_template(tmp_path_factory: pytest.TempPathFactory, mlp_onnx: Path,
                    mlp_onnx_b: Path) -> Path:
    """A lab workspace: a dataset, kws@1.0 and its child kws@1.1 benched with an evaluation,
    and the bundle of kws@1.1 exported from it (by the CLI)."""
    from devtrack.cli import main

    base = tmp_path_factory.mktemp("bundle-origin")
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    np.savez(base / "digits.npz", input=x, labels=np.arange(8) % 4)
    root = base / "lab"
    assert main(["init", str(root)]) == 0
    (root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    for step in (["dataset", "add", base / "digits.npz", "--name", "digits"],
                 ["register", mlp_onnx, "-m", "kws", "-v", "1.0"],
                 ["register", mlp_onnx_b, "-m", "kws", "-v", "1.1", "--parent", "1.0"],
                 ["bench", "kws@1.1", "--profile", "tiny", "--eval", "digits"],
                 ["export", "kws@1.1", "-o", base / "kws.zip"]):
        assert main([str(a) for a in [*step, "-w", root]]) == 0, step
    return base


@pytest.fixture
def bundle(origin_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "kws.zip"
    shutil.copy(origin_template / "kws.zip", copy)
    return copy


def _rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    return raw_sql(root, sql)


def _samples(root: Path) -> list[bytes]:
    return [row[0] for row in _rows(root, "SELECT samples FROM runs ORDER BY id")]


def test_round_trip_keeps_every_sample_and_verifies_on_both_ends(
        origin_template: Path, bundle: Path, ws_dir: Path, run_cli) -> None:
    result = run_cli("import", bundle, "-w", ws_dir, "--json")
    assert result.exit_code == 0, result.err
    report = json.loads(result.out)
    assert report["releases_added"] == ["kws@1.0", "kws@1.1"]
    assert report["runs_added"] == 1 and report["datasets_added"] == ["digits"]
    assert report["from_host"] and len(report["bundle_sha256"]) == 64
    assert _samples(ws_dir) == _samples(origin_template / "lab")
    assert _rows(ws_dir, "SELECT accuracy, predictions FROM evaluations") == _rows(
        origin_template / "lab", "SELECT accuracy, predictions FROM evaluations")
    for root in (ws_dir, origin_template / "lab"):
        verified = run_cli("audit", "verify", "-w", root)
        assert verified.exit_code == 0, verified.out
    (event,) = _rows(ws_dir, "SELECT kind, payload FROM events")
    assert event[0] == "import"
    payload = json.loads(str(event[1]))
    assert payload["bundle"] == report["bundle_sha256"]
    # Each row names the event that sealed it in the lab's chain, to trace it back there.
    origin = {(kind, model, version): (eid, digest) for eid, kind, model, version, digest
              in _rows(origin_template / "lab", "SELECT id, kind, model, version, hash "
                                                "FROM events")}
    sealed = payload["releases"][1]
    assert sealed["version"] == "1.1"
    assert (sealed["origin_event"]["id"], sealed["origin_event"]["hash"]) == origin[
        ("register", "kws", "1.1")]
    (run,) = payload["runs"]
    assert (run["origin_event"]["id"], run["origin_event"]["hash"]) == origin[
        ("bench", "kws", "1.1")]
    log = json.loads(run_cli("log", "kws", "-w", ws_dir, "--json").out)
    assert [e["kind"] for e in log] == ["import"]
    from devtrack.core.audit import payload_summary

    assert "releases=2, runs=1" in payload_summary(payload)
    shown = run_cli("show", "kws@1.1", "-w", ws_dir, "--json")
    assert json.loads(shown.out)["parent"] == "1.0"


def test_the_imported_release_benches_and_checks(bundle: Path, ws_dir: Path, run_cli) -> None:
    assert run_cli("import", bundle, "-w", ws_dir).exit_code == 0
    (ws_dir / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    benched = run_cli("bench", "kws@1.1", "--profile", "tiny", "-w", ws_dir)
    assert benched.exit_code == 0, benched.err
    checked = run_cli("check", "kws@1.1", "--profile", "tiny", "-w", ws_dir)
    assert checked.exit_code == 0, checked.out + checked.err
    assert len(_samples(ws_dir)) == 2
    assert run_cli("audit", "verify", "-w", ws_dir).exit_code == 0


def test_an_imported_row_edited_by_hand_is_found_by_audit_verify(
        bundle: Path, ws_dir: Path, run_cli) -> None:
    assert run_cli("import", bundle, "-w", ws_dir).exit_code == 0
    raw_sql(ws_dir, "UPDATE runs SET p90_ms = p90_ms * 0.5")
    verified = run_cli("audit", "verify", "-w", ws_dir)
    assert verified.exit_code == 1
    assert "stored fields differ from what event 1 recorded" in verified.err


def test_the_same_bundle_twice_adds_nothing(bundle: Path, ws_dir: Path, run_cli) -> None:
    assert run_cli("import", bundle, "-w", ws_dir).exit_code == 0
    before = snapshot_workspace(ws_dir)
    again = run_cli("import", bundle, "-w", ws_dir, "--json")
    assert again.exit_code == 0, again.err
    report = json.loads(again.out)
    assert report["event"] is None and report["runs_present"] == 1
    assert report["releases_present"] == ["kws@1.0", "kws@1.1"]
    assert snapshot_workspace(ws_dir) == before
    assert "Nothing to add" in run_cli("import", bundle, "-w", ws_dir).out


def test_a_re_export_of_imported_runs_imports_back_as_nothing_new(
        origin_template: Path, bundle: Path, ws_dir: Path, tmp_path: Path, run_cli) -> None:
    """Runs keep their identity across stores: the lab's runs, exported back from the
    team workspace, are recognised in the lab."""
    lab = tmp_path / "lab"
    shutil.copytree(origin_template / "lab", lab)
    assert run_cli("import", bundle, "-w", ws_dir).exit_code == 0
    assert run_cli("export", "kws", "-o", tmp_path / "back.zip", "-w", ws_dir).exit_code == 0
    before = snapshot_workspace(lab)
    back = run_cli("import", tmp_path / "back.zip", "-w", lab, "--json")
    assert back.exit_code == 0, back.err
    assert json.loads(back.out)["event"] is None
    assert snapshot_workspace(lab) == before


def test_two_imports_at_once_add_the_bundle_once(bundle: Path, ws_dir: Path, run_cli) -> None:
    command = [sys.executable, "-m", "devtrack", "import", str(bundle), "-w", str(ws_dir),
               "--json"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outcomes = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outcomes
    events = [json.loads(out)["event"] for out, _ in outcomes]
    assert events.count(None) == 1  # the second to take the write lock found it all there
    assert _rows(ws_dir, "SELECT COUNT(*) FROM runs") == [(1,)]
    assert _rows(ws_dir, "SELECT COUNT(*) FROM events WHERE kind = 'import'") == [(1,)]
    assert run_cli("audit", "verify", "-w", ws_dir).exit_code == 0


# -- refusals -------------------------------------------------------------------------------

def _rewrite(source: Path, dest: Path,
             change: Callable[[str, bytes], tuple[zipfile.ZipInfo | str, bytes] | None],
             extra: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> Path:
    """A copy of the bundle with each member passed through ``change`` (None: dropped)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w") as out:
        for info in src.infolist():
            changed = change(info.filename, src.read(info))
            if changed is not None:
                out.writestr(changed[0], changed[1])
        for name, data in extra:
            out.writestr(name, data)
    return dest


def _manifest_edit(edit: Callable[[dict], None]) -> Callable[[str, bytes], tuple[str, bytes]]:
    def change(name: str, data: bytes) -> tuple[str, bytes]:
        if name == "manifest.json":
            manifest = json.loads(data)
            edit(manifest)
            data = json.dumps(manifest).encode()
        return name, data
    return change


def _keep(name: str, data: bytes) -> tuple[str, bytes]:
    return name, data


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info


def _artifact_member(bundle: Path) -> str:
    with zipfile.ZipFile(bundle) as zf:
        return next(n for n in zf.namelist() if n.startswith("artifacts/"))


def _hostile(kind: str, bundle: Path, tmp: Path) -> tuple[Path, str]:
    dest = tmp / f"{kind}.zip"
    member = _artifact_member(bundle)
    if kind == "escaping_path":
        return _rewrite(bundle, dest, _keep, [("../../evil.onnx", b"x")]), "escapes"
    if kind == "absolute_path":
        return _rewrite(bundle, dest, _keep, [("/tmp/evil.onnx", b"x")]), "escapes"
    if kind == "symlink":
        return _rewrite(bundle, dest, _keep, [(_symlink("artifacts/" + "a" * 64),
                                               b"/etc/passwd")]), "symbolic link"
    if kind == "hash_mismatch":
        def flip(name: str, data: bytes) -> tuple[str, bytes]:
            return name, (data[:-1] + bytes([data[-1] ^ 1])) if name == member else data
        return _rewrite(bundle, dest, flip), "does not match its manifest"
    if kind == "truncated":
        raw = bundle.read_bytes()
        dest.write_bytes(raw[: len(raw) // 2])
        return dest, "truncated"
    if kind == "newer_format":
        edit = _manifest_edit(lambda m: m.update(format_version=99, devtrack_version="9.0"))
        return _rewrite(bundle, dest, edit, [("signatures/lab.sig", b"x")]), "newer devtrack"
    if kind == "size_lie":
        edit = _manifest_edit(lambda m: m["members"][member].update(size=1))
        return _rewrite(bundle, dest, edit), "its manifest says 1"
    if kind == "unlisted_member":
        return _rewrite(bundle, dest, _keep, [("datasets/" + "b" * 64, b"x")]), \
            "not in its manifest"
    if kind == "missing_member":
        def drop(name: str, data: bytes) -> tuple[str, bytes] | None:
            return None if name == member else (name, data)
        return _rewrite(bundle, dest, drop), "is missing"
    if kind == "other_compression":
        def bzip(name: str, data: bytes) -> tuple[zipfile.ZipInfo | str, bytes]:
            if name != member:
                return name, data
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_BZIP2
            return info, data
        return _rewrite(bundle, dest, bzip), "compression method"
    if kind == "not_a_zip":
        dest.write_bytes(b"PK\x03\x04 not really a zip")
        return dest, "not a complete zip"
    raise AssertionError(kind)


HOSTILE = ["escaping_path", "absolute_path", "symlink", "hash_mismatch", "truncated",
           "newer_format", "size_lie", "unlisted_member", "missing_member", "other_compression",
           "not_a_zip"]


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_bundle_is_refused_in_one_line_and_nothing_is_written(
        kind: str, bundle: Path, ws_dir: Path, tmp_path: Path, run_cli,
        unchanged: Callable[[], None]) -> None:
    hostile, needle = _hostile(kind, bundle, tmp_path)
    result: CliResult = run_cli("import", hostile, "-w", ws_dir)
    assert_clean_error(result, needle)
    unchanged()


def test_a_bundle_over_max_size_is_refused_before_reading(bundle: Path, ws_dir: Path,
                                                          run_cli, unchanged) -> None:
    result = run_cli("import", bundle, "--max-size", "1KB", "-w", ws_dir)
    assert_clean_error(result, "over the limit", "--max-size")
    unchanged()


def test_a_conflicting_release_is_refused_and_nothing_is_written(
        bundle: Path, ws_dir: Path, mlp_tflite: Path, run_cli) -> None:
    assert run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.0", "-w", ws_dir).exit_code == 0
    before = snapshot_workspace(ws_dir)
    result = run_cli("import", bundle, "-w", ws_dir)
    assert_clean_error(result, "kws@1.0", "other bytes")
    assert snapshot_workspace(ws_dir) == before


def test_a_conflicting_dataset_is_refused(bundle: Path, ws_dir: Path, tmp_path: Path,
                                          run_cli) -> None:
    other = tmp_path / "other.npz"
    np.savez(other, input=np.zeros((4, 16), np.float32), labels=np.arange(4))
    assert run_cli("dataset", "add", other, "--name", "digits", "-w", ws_dir).exit_code == 0
    before = snapshot_workspace(ws_dir)
    assert_clean_error(run_cli("import", bundle, "-w", ws_dir), "dataset", "digits")
    assert snapshot_workspace(ws_dir) == before


@pytest.mark.parametrize(("args", "needle"), [
    (("import", "nowhere.zip"), "does not exist"),
    (("import", "."), "is not a file"),
    (("import", "x.zip", "--max-size", "lots"), "--max-size"),
    (("export", "-o", "out.zip"), "name at least one release"),
    (("export", "nosuch@1.0", "-o", "out.zip"), "unknown model"),
    (("export", "kws@1.0"), "--output"),
])
def test_bad_arguments_get_one_line_and_exit_2(args: tuple[str, ...], needle: str,
                                               in_ws: Path, run_cli) -> None:
    assert_clean_error(run_cli(*args), needle)


def test_export_into_a_folder_is_refused(origin_template: Path, tmp_path: Path,
                                         run_cli) -> None:
    result = run_cli("export", "kws@1.1", "-o", tmp_path, "-w", origin_template / "lab")
    assert_clean_error(result, "is a folder")


def test_a_failure_half_way_through_the_write_leaves_the_workspace_unchanged(
        bundle: Path, ws_dir: Path, monkeypatch: pytest.MonkeyPatch,
        unchanged: Callable[[], None]) -> None:
    """One transaction: releases and the dataset are inserted before the runs; a failure at
    the run rolls all of it back, and the files stored for it are removed again."""
    from devtrack import bundles
    from devtrack.workspace import open_workspace

    def broken(*args: object) -> None:
        raise OSError("disk failed")

    monkeypatch.setattr(bundles._Writer, "_run", broken)
    with open_workspace(ws_dir) as ws, pytest.raises(OSError, match="disk failed"):
        bundles.import_bundle(ws, bundle)
    unchanged()


def test_progress_counts_every_verified_byte(bundle: Path, ws_dir: Path) -> None:
    from devtrack.bundles import import_bundle
    from devtrack.workspace import open_workspace

    seen: list[tuple[int, int]] = []
    with open_workspace(ws_dir) as ws:
        import_bundle(ws, bundle, progress=lambda done, total: seen.append((done, total)))
    with zipfile.ZipFile(bundle) as zf:
        total = sum(i.file_size for i in zf.infolist() if i.filename != "manifest.json")
    assert seen[-1] == (total, total)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_export_refuses_a_modified_stored_file_and_writes_no_bundle(
        origin_template: Path, tmp_path: Path, run_cli) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(origin_template / "lab", lab)
    (stored,) = [p for p in (lab / DOT_DIR / "artifacts").rglob("*")
                 if p.is_file() and p.stat().st_size > 1000 and p.suffix == ""
                 and _rows(lab, f"SELECT 1 FROM releases WHERE artifact_sha256 = '{p.name}' "
                                "AND version = '1.1'")]
    stored.chmod(0o644)
    stored.write_bytes(stored.read_bytes()[:-1] + b"\0")
    result = run_cli("export", "kws@1.1", "-o", tmp_path / "out.zip", "-w", lab)
    assert_clean_error(result, "was modified")
    assert not (tmp_path / "out.zip").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.zip")]
