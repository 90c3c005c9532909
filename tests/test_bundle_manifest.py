"""The bundle manifest and the import event's seals, as plain data (no files, no database)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtrack.core.audit_state import cross_check, release_fields_digest, text_digest
from devtrack.core.bundle_manifest import (
    FORMAT_VERSION,
    Manifest,
    Member,
    bundle_digest,
    check_member_name,
    manifest_bytes,
    parse_manifest,
    run_identity,
)
from devtrack.errors import UsageError

SHA = "ab" * 32


def _manifest(**changes: Any) -> dict[str, Any]:
    data = Manifest(FORMAT_VERSION, "0.1.0", "lab-7", "ana", "2026-01-01T00:00:00Z",
                    {"bundle.json": Member("bundle.json", SHA, 10),
                     f"artifacts/{SHA}": Member(f"artifacts/{SHA}", SHA, 20)}).to_dict()
    data.update(changes)
    return data


def _parse(data: dict[str, Any]) -> Manifest:
    return parse_manifest(json.dumps(data).encode(), "0.1.0")


def test_a_written_manifest_reads_back_and_its_digest_is_its_identity() -> None:
    raw = _parse(_manifest())
    assert raw.total_size == 30 and raw.host == "lab-7"
    assert parse_manifest(manifest_bytes(raw), "0.1.0") == raw
    assert bundle_digest(manifest_bytes(raw)) == bundle_digest(manifest_bytes(raw))
    other = _parse(_manifest(host="lab-8"))
    assert bundle_digest(manifest_bytes(raw)) != bundle_digest(manifest_bytes(other))


@pytest.mark.parametrize("name", [
    "../evil", "/etc/passwd", "artifacts/../../x", "artifacts\\" + SHA, "artifacts/" + SHA + "/",
    "artifacts/short", "models/" + SHA, "bundle.json/..", "", "./bundle.json",
])
def test_member_names_devtrack_does_not_write_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="not a path devtrack writes"):
        check_member_name(name)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"format_version": FORMAT_VERSION + 1, "devtrack_version": "9.9"}, "newer devtrack (9.9"),
    ({"format_version": "1"}, "no format_version"),
    ({"format": "zip"}, "not a devtrack bundle"),
    ({"members": {}}, "naming bundle.json"),
    ({"members": {"bundle.json": {"sha256": "x", "size": 1}}}, "sha256 of bundle.json"),
    ({"members": {"bundle.json": {"sha256": SHA, "size": -1}}}, "size of bundle.json"),
    ({"members": {"bundle.json": {"sha256": SHA, "size": 1},
                  f"artifacts/{'cd' * 32}": {"sha256": SHA, "size": 1}}}, "named by its sha256"),
    ({"members": {"bundle.json": {"sha256": SHA, "size": 1 << 40}}}, "declares"),
    ({"host": None}, "who wrote it"),
])
def test_a_bad_manifest_is_refused(changes: dict[str, Any], needle: str) -> None:
    with pytest.raises(UsageError, match="nothing was written") as raised:
        _parse(_manifest(**changes))
    assert needle in str(raised.value)


def test_not_json_is_refused() -> None:
    with pytest.raises(UsageError, match="not JSON"):
        parse_manifest(b"\xff\x00", "0.1.0")


def test_a_run_identity_changes_with_its_release_fields_or_samples() -> None:
    base = run_identity(SHA, "f" * 64, "s" * 64)
    assert base == run_identity(SHA, "f" * 64, "s" * 64)
    assert len({base, run_identity("cd" * 32, "f" * 64, "s" * 64),
                run_identity(SHA, "e" * 64, "s" * 64), run_identity(SHA, "f" * 64, None)}) == 4


def _release_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": 1, "model": "kws", "version": "1.0", "artifact_sha256": SHA,
        "status": "candidate", "notes": "n", "parent": None, "data_version": None,
        "data_sha256": None, "config": None, "run_id": None, "tags": "{}",
        "input_specs": "[]", "fills": "[]", "source_name": "kws.onnx", "git_commit": None,
        "git_dirty": None, "created_by": "ana", "host": "lab-7",
        "created_at": "2026-01-01T00:00:00Z", "devtrack_version": "0.1.0", "summary": "{}"}
    row.update(changes)
    return row


def _import_event(release: dict[str, Any]) -> dict[str, Any]:
    seal = {"model": "kws", "version": "1.0", "sha256": SHA, "parent": None, "task": "other",
            "notes_sha256": text_digest("n"), "fields_sha256": release_fields_digest(release)}
    return {"id": 1, "ts": "2026-02-01T00:00:00Z", "actor": "bo", "kind": "import",
            "model": "kws", "version": None,
            "payload": json.dumps({"bundle": SHA, "from_host": "lab-7", "releases": [seal],
                                   "runs": [], "datasets": []})}


def _check(event: dict[str, Any], releases: list[dict[str, Any]]) -> list[str]:
    models = [{"id": 1, "name": "kws", "task": "other", "default_dataset": None,
               "created_at": event["ts"]}]
    return [p.message for p in cross_check([event], releases=releases, runs=[], evaluations=[],
                                           checks=[], deployments=[], datasets=[],
                                           models=models)]


def test_an_import_seal_stands_for_the_register_event_of_its_release() -> None:
    release = _release_row()
    assert _check(_import_event(release), [release]) == []


def test_an_imported_release_edited_or_removed_is_named_with_the_import_event() -> None:
    event = _import_event(_release_row())
    (edited,) = _check(event, [_release_row(host="elsewhere")])
    assert "kws@1.0" in edited and "event 1" in edited
    (missing,) = _check(event, [])
    assert "kws@1.0 (registered in event 1) is missing" in missing
