"""Release registry: register builds with provenance, list and resolve releases."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from devtrack import queries
from devtrack.core.audit_state import release_fields_digest, text_digest
from devtrack.core.inputspec import FillSpec, InputSpec
from devtrack.core.refs import ReleaseRef, check_model_name, check_version, parse_ref
from devtrack.core.release import Release
from devtrack.core.summary import ModelSummary
from devtrack.core.text import clip, shown
from devtrack.errors import DuplicateError, NotFoundError, UsageError
from devtrack.store import utc_now
from devtrack.store_contract import StoreBackend
from devtrack.workspace import Workspace


@dataclass
class RegisterRequest:
    """Everything ``devtrack register`` needs; validated by :func:`register_release`."""

    file: Path
    model: str
    version: str
    parent: str | None = None
    notes: str = ""
    notes_file: Path | None = None
    data_version: str | None = None
    data_file: Path | None = None
    config_file: Path | None = None
    run_id: str | None = None
    tags: list[str] = field(default_factory=list)
    input_specs: list[InputSpec] = field(default_factory=list)
    fills: list[FillSpec] = field(default_factory=list)
    task: str | None = None


def parse_tags(items: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad --tag {shown(item)}: expected KEY=VALUE, "
                             "e.g. --tag device=pixel8")
        tags[key.strip()] = value
    return tags


def _read_notes(request: RegisterRequest) -> str:
    if request.notes_file is None:
        return request.notes
    if request.notes:
        raise UsageError("give release notes with --notes or --notes-file, not both")
    from devtrack.configfile import read_text_file

    return read_text_file(request.notes_file, "notes file")


def _check_specs_match(
    summary: ModelSummary, specs: list[InputSpec], fills: list[FillSpec]
) -> None:
    """Specs must name real inputs and fit them (rank, fixed sizes, dtype, total size)."""
    from devtrack.core.input_layout import input_layout

    names = {t.name for t in summary.inputs}
    for name in [s.name for s in specs] + [f.name for f in fills]:
        if name not in names:
            known = ", ".join(sorted(names)) or "(none)"
            raise UsageError(f"the model has no input named {shown(name)} (its inputs: {known})")
    given = names & ({s.name for s in specs} | {f.name for f in fills})
    input_layout([t for t in summary.inputs if t.name in given], specs, fills)


def _inspect(path: Path) -> ModelSummary:
    from devtrack.inspection import inspect_model  # imports onnx lazily

    return inspect_model(path)


@dataclass(frozen=True)
class Registered:
    """What :func:`register_or_restore` did: the release, and whether it repaired the
    stored copy."""

    release: Release
    created: bool  # False: MODEL@VERSION already held this very file (see ``restored``)
    restored: str | None = None  # "modified" or "missing": the stored copy was repaired
    note: str | None = None  # e.g. "--parent deployed: nothing is deployed; no parent"


def _duplicate(model: str, version: str) -> DuplicateError:
    return DuplicateError(f"{model}@{version} is already registered; pick a new version "
                          f"(see 'devtrack releases {model}')")


def register_release(ws: Workspace, request: RegisterRequest, cwd: Path | None = None) -> Release:
    """Validate, store the artifact atomically and record the release in one transaction."""
    return register_or_restore(ws, request, cwd).release


def register_or_restore(ws: Workspace, request: RegisterRequest,
                        cwd: Path | None = None) -> Registered:
    """Validate, store the artifact and record the release and its event in one transaction.

    Safe against concurrent writers: whether MODEL@VERSION, the model line and the parent
    exist is decided inside the write transaction, so of two registers of one MODEL@VERSION
    exactly one lands and the other gets DuplicateError; new lines opened at once all land.
    When the stored copy of the file is missing or was modified, it is restored from
    ``request.file`` and an ``artifact_restore`` event records it — also when MODEL@VERSION
    already holds this very file (then nothing else changes and ``created`` is False).
    """
    from devtrack.artifacts import sha256_file
    from devtrack.configfile import load_config
    from devtrack.provenance import current_host, current_user, devtrack_version, git_state

    model = check_model_name(request.model)
    version = check_version(request.version)
    parent, parent_note = _resolve_parent(ws.store, model, request.parent)
    request = replace(request, parent=parent)
    path = request.file
    if not path.exists():
        raise UsageError(f"{path} does not exist; pass the path of a .onnx or .tflite file")
    if not path.is_file():
        raise UsageError(f"{path} is not a file; pass the path of a .onnx or .tflite file")
    notes = _read_notes(request)
    tags = parse_tags(request.tags)
    config = load_config(request.config_file) if request.config_file else None
    data_sha = None
    if request.data_file is not None:
        if not request.data_file.is_file():
            state = "is a folder" if request.data_file.is_dir() else "does not exist"
            raise UsageError(f"data file {request.data_file} {state}; give a file")
        data_sha = sha256_file(request.data_file)
    store = ws.store
    # Early answers save copying a large file for nothing; the transaction decides for real.
    taken = queries.release_sha256(store, model, version)
    sha256 = sha256_file(path)
    if taken is not None and taken != sha256:
        raise _duplicate(model, version)
    if request.parent is not None and taken is None:
        _parent_id(store, model, request.parent)
    summary = _inspect(path)
    _check_specs_match(summary, request.input_specs, request.fills)
    size = path.stat().st_size
    git = git_state(cwd or Path.cwd())
    actor = current_user()
    now = utc_now()
    row: dict[str, Any] = {
        "version": version,
        "artifact_sha256": sha256,
        "notes": notes,
        "data_version": request.data_version,
        "data_sha256": data_sha,
        "config": json.dumps(config) if config is not None else None,
        "run_id": request.run_id,
        "tags": json.dumps(tags),
        "input_specs": json.dumps([s.to_dict() for s in request.input_specs]),
        "fills": json.dumps([f.to_dict() for f in request.fills]),
        "source_name": path.name,
        "git_commit": git.commit,
        "git_dirty": None if git.dirty is None else int(git.dirty),
        "created_by": actor,
        "host": current_host(),
        "created_at": now,
        "devtrack_version": devtrack_version(),
        "summary": json.dumps(summary.to_dict()),
    }
    payload = {"sha256": sha256, "format": summary.format, "size_bytes": size,
               "parent": request.parent, "git_commit": git.commit,
               # audit verify checks the notes (until a notes event) and the rest
               "notes_sha256": text_digest(notes),
               "fields_sha256": release_fields_digest({**row, "parent": request.parent})}
    artifact = {"sha256": sha256, "format": summary.format, "size_bytes": size,
                "created_at": now}

    # The stored file may be another writer's too: it is removed on failure only through
    # discard(), as `devtrack gc` removes it (pin held exclusively, no row references it).
    stored = None
    try:
        with ws.artifacts.hold(sha256):
            # Asked before the copy: a file another writer stores meanwhile is not a repair.
            was_known = queries.artifact_known(store, sha256)
            stored = ws.artifacts.put(path, sha256)
            restored = None if stored == "kept" or not was_known else (
                "modified" if stored == "replaced" else "missing")
            taken = _record(store, model, version, request, row, payload, artifact, restored,
                            actor, now)
    except BaseException:
        if stored == "new":
            _discard_quietly(ws, sha256)
        raise
    return Registered(get_release(ws, ReleaseRef(model, version)), taken is None, restored,
                      parent_note)


DEPLOYED_PARENT = "deployed"


def _resolve_parent(store: StoreBackend, model: str,
                    parent: str | None) -> tuple[str | None, str | None]:
    """``--parent deployed`` → the version live on the model line's profiles (the one a CI
    job on a fresh runner knows only by that name), with a note when nothing is deployed (no
    parent: the line's first release); UsageError when profiles run different releases.
    Any other parent is returned as given."""
    if parent != DEPLOYED_PARENT:
        return parent, None
    live = queries.live_versions(store, model)
    versions = sorted({row["version"] for row in live})
    if not versions:
        return None, (f"--parent deployed: no release of {model} is deployed; registered "
                      "without a parent")
    if len(versions) > 1:
        where = ", ".join(f"{row['version']} on {row['profile']}" for row in live)
        raise UsageError(f"--parent deployed is ambiguous: {model} has {where}; give "
                         "--parent VERSION")
    return versions[0], None


def _record(store: StoreBackend, model: str, version: str, request: RegisterRequest,
            row: dict[str, Any], payload: dict[str, Any], artifact: dict[str, Any],
            restored: str | None, actor: str, now: str) -> str | None:
    """The write transaction of a register; returns the sha256 MODEL@VERSION held before
    (None: it is new and now registered). Every check that decides what is written happens
    here, under the write lock."""
    sha256 = str(artifact["sha256"])
    with store.transaction():
        if restored is not None:
            store.append_event(
                actor=actor, kind="artifact_restore", model=model, version=version,
                payload={"sha256": sha256, "was": restored,
                         "source_name": request.file.name}, ts=now)
        taken = queries.release_sha256(store, model, version)
        if taken is not None and (taken != sha256 or restored is None):
            raise _duplicate(model, version)  # rolls a restore event back too
        if taken is None:
            if not queries.artifact_known(store, sha256):
                store.insert("artifacts", artifact)
            _insert_release(store, model, request.task, request.parent, row, payload)
    return taken


def _discard_quietly(ws: Workspace, sha256: str) -> None:
    """Remove a file this failed register stored, if nothing needs it; never mask the
    failure (gc gets whatever is left)."""
    from contextlib import suppress

    with suppress(Exception):
        ws.artifacts.discard(ws.artifacts.path_for(sha256), sha256,
                             lambda: ws.store.references_file(sha256))


def _parent_id(store: StoreBackend, model: str, parent: str) -> int:
    found = queries.release_id(store, model, parent)
    if found is None:
        raise NotFoundError(
            f"parent {clip(f'{model}@{parent}')} is not registered; register it first or fix "
            "--parent")
    return found


def _insert_release(store: StoreBackend, model: str, task: str | None, parent: str | None,
                    row: dict[str, Any], payload: dict[str, Any]) -> None:
    """Insert the model line (if new), the release and its register event; call inside the
    write transaction, which is what makes each check-then-insert here safe."""
    parent_id = _parent_id(store, model, parent) if parent else None
    model_id = queries.add_model_if_new(store, model, task or "other", row["created_at"])
    store.insert("releases", {"model_id": model_id, "parent_id": parent_id, **row})
    payload = {**payload, "task": queries.model_task(store, model)}  # sealed for verify
    store.append_event(actor=row["created_by"], kind="register", model=model,
                       version=row["version"], payload=payload, ts=row["created_at"])


def _row_to_release(row: dict[str, Any], same: list[str]) -> Release:
    return Release(
        id=row["id"],
        model=row["model"],
        version=row["version"],
        sha256=row["artifact_sha256"],
        format=row["format"],
        size_bytes=row["size_bytes"],
        created_at=row["created_at"],
        status=row["status"],
        parent=row["parent_version"],
        notes=row["notes"],
        data_version=row["data_version"],
        data_sha256=row["data_sha256"],
        config=json.loads(row["config"]) if row["config"] else None,
        run_id=row["run_id"],
        tags=json.loads(row["tags"]),
        input_specs=[InputSpec.from_dict(d) for d in json.loads(row["input_specs"])],
        fills=[FillSpec.from_dict(d) for d in json.loads(row["fills"])],
        source_name=row["source_name"],
        git_commit=row["git_commit"],
        git_dirty=None if row["git_dirty"] is None else bool(row["git_dirty"]),
        created_by=row["created_by"],
        host=row["host"],
        devtrack_version=row["devtrack_version"],
        summary=ModelSummary.from_dict(json.loads(row["summary"])),
        same_artifact_as=same,
    )


def _same_artifact_map(ws: Workspace) -> dict[str, list[tuple[int, str]]]:
    shared: dict[str, list[tuple[int, str]]] = {}
    for row in queries.releases_sharing_artifacts(ws.store):
        shared.setdefault(row["artifact_sha256"], []).append((row["id"], row["ref"]))
    return shared


def _to_releases(ws: Workspace, rows: list[dict[str, Any]]) -> list[Release]:
    shared = _same_artifact_map(ws)
    return [
        _row_to_release(
            row, [ref for rid, ref in shared.get(row["artifact_sha256"], []) if rid != row["id"]]
        )
        for row in rows
    ]


def list_models(ws: Workspace) -> list[dict[str, Any]]:
    """Every model line with its release count and latest version."""
    return queries.models_with_counts(ws.store)


def require_model(ws: Workspace, model: str) -> int:
    found = queries.model_id(ws.store, model)
    if found is None:
        known = ", ".join(m["model"] for m in list_models(ws)) or "none registered yet"
        raise NotFoundError(f"unknown model {shown(model)} (known models: {known})")
    return found


def list_releases(ws: Workspace, model: str | None = None) -> list[Release]:
    model_id = require_model(ws, model) if model is not None else None
    return _to_releases(ws, queries.releases(ws.store, model_id))


def get_release(ws: Workspace, ref: ReleaseRef | str) -> Release:
    """Resolve ``MODEL@VERSION`` or ``MODEL@latest`` to a release."""
    ref = parse_ref(ref) if isinstance(ref, str) else ref
    model_id = require_model(ws, ref.model)
    if ref.version == "deployed":
        raise NotFoundError(
            f"{ref.model}@deployed depends on the profile; name the version here "
            f"(MODEL@VERSION; 'devtrack history {ref.model}' shows what is live where)"
        )
    row = queries.release_row(ws.store, model_id,
                              None if ref.version == "latest" else ref.version)
    if row is None:
        shown = ", ".join(queries.versions(ws.store, model_id)[-8:]) or "none"
        raise NotFoundError(
            f"unknown release {clip(str(ref))}; {ref.model} has versions: {shown}"
        )
    return _to_releases(ws, [row])[0]
