"""Bundles: export releases with their runs to a zip, import one into any workspace.

What travels: each named release (and, without their runs, the releases its provenance
points at: parents and fidelity references) with its artifact and provenance; every run of
a named release with every sample and its evaluation; the datasets those evaluations used.
Not: statuses, deployments, checks, comparisons and notes history, which are decisions of
the workspace they were made in. Imported releases start as candidates.

How imported rows are sealed. A hash chain cannot travel: its events hash their
predecessors in their own workspace, so a segment of it would not verify anywhere else.
Instead one ``import`` event, appended to the target's own chain in the transaction that
writes the rows, carries for each row the very seal its own event would have carried had
the row been written here (a register's ``fields_sha256``, a bench's ``fields_sha256``,
``samples_sha256`` and evaluation digest, a dataset_add's), computed from the rows as the
target stores them, plus the bundle's digest and the host and user that exported it.
``audit verify`` reads those seals as the register, bench and dataset_add events they stand
for (core/audit_state.py), so an edited imported row is found as any other. The rows must
reproduce the digests the origin sealed (carried in the bundle), and each seal names the
origin's event (id and hash) that sealed the row, to trace it back to the chain where it
verifies.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtrack import queries
from devtrack.bench.protocol import blob_to_text, text_to_blob
from devtrack.core.audit_state import (
    RELEASE_SEALED_FIELDS,
    RUN_SEALED_FIELDS,
    dataset_fields_digest,
    release_fields_digest,
    run_fields_digest,
    samples_digest,
    snapshot_conditions_hash,
    text_digest,
)
from devtrack.core.bundle_manifest import (
    DATA_NAME,
    FORMAT_VERSION,
    Manifest,
    Member,
    bundle_digest,
    manifest_bytes,
    run_identity,
)
from devtrack.core.refs import parse_ref
from devtrack.core.text import shown
from devtrack.errors import DuplicateError, UsageError
from devtrack.store import utc_now
from devtrack.store_contract import StoreBackend
from devtrack.workspace import Workspace

Progress = Callable[[int, int], None]
_EVALUATION_COLUMNS = ("task", "metrics", "accuracy", "fidelity", "nonfinite", "created_at")
_DATASET_COLUMNS = ("name", "sha256", "task", "samples", "arrays", "has_labels", "source_name",
                    "created_at", "created_by")


@dataclass
class ExportResult:
    """What a bundle holds."""

    path: Path
    digest: str
    releases: list[str]
    runs: int
    datasets: list[str]
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bundle_sha256": self.digest, "releases": self.releases,
                "runs": self.runs, "datasets": self.datasets, "size_bytes": self.size_bytes}


@dataclass
class ImportResult:
    """What an import added, and what the workspace already held."""

    digest: str
    from_host: str
    releases_added: list[str] = field(default_factory=list)
    releases_present: list[str] = field(default_factory=list)
    runs_added: int = 0
    runs_present: int = 0
    datasets_added: list[str] = field(default_factory=list)
    event_id: int | None = None  # None: nothing was new, nothing was written

    def to_dict(self) -> dict[str, Any]:
        return {"bundle_sha256": self.digest, "from_host": self.from_host,
                "releases_added": self.releases_added,
                "releases_present": self.releases_present, "runs_added": self.runs_added,
                "runs_present": self.runs_present, "datasets_added": self.datasets_added,
                "event": self.event_id}


def _b64(blob: bytes | None) -> str | None:
    return blob_to_text(blob) if blob else None


def _unb64(text: Any) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("a blob is not base64 text")
    return text_to_blob(text)


# -- export ---------------------------------------------------------------------------------

def _named_release_ids(ws: Workspace, refs: list[str]) -> list[int]:
    from devtrack.registry import get_release, list_releases

    ids: list[int] = []
    for text in refs:
        if "@" in text:
            ids.append(get_release(ws, parse_ref(text)).id)
        else:
            ids.extend(r.id for r in list_releases(ws, text))
    return list(dict.fromkeys(ids))


class _OriginEvents:
    """Where each exported row was sealed in this workspace's chain: the id and hash of its
    register or bench event, carried so the row can be traced back here (they cannot be
    verified anywhere else: the import event re-seals the row in the target's chain)."""

    def __init__(self, store: StoreBackend) -> None:
        self.registers = {(e["model"], e["version"]): e for e in store.events(kind="register")}
        self.benches: dict[int, dict[str, Any]] = {}
        for event in store.events(kind="bench"):
            run = json.loads(event["payload"]).get("run")
            if isinstance(run, int):
                self.benches[run] = event

    @staticmethod
    def _ref(event: dict[str, Any] | None) -> dict[str, Any] | None:
        return {"id": event["id"], "hash": event["hash"]} if event else None

    def of_release(self, model: str, version: str) -> dict[str, Any] | None:
        return self._ref(self.registers.get((model, version)))

    def of_run(self, run_id: int) -> dict[str, Any] | None:
        return self._ref(self.benches.get(run_id))


def _release_entry(store: StoreBackend, release_id: int) -> dict[str, Any]:
    row = queries.release_for_export(store, release_id)
    assert row is not None
    entry = {key: row[key] for key in ("model", "task", "version", "format", "size_bytes",
                                       "notes", "status")}
    entry.update({key: row[key] for key in RELEASE_SEALED_FIELDS})
    entry["sha256"] = row["artifact_sha256"]
    entry["fields_sha256"] = release_fields_digest(row)
    entry["parent_id"] = row["parent_id"]
    return entry


def _run_entries(store: StoreBackend, release_id: int, model: str, version: str,
                 artifact: str, origin: _OriginEvents) -> list[dict[str, Any]]:
    entries = []
    for run in queries.runs_of_release(store, release_id):
        row = vars(run)
        entry: dict[str, Any] = {key: row[key] for key in RUN_SEALED_FIELDS}
        fields = run_fields_digest(row)
        samples = samples_digest(run.samples)
        entry.update(model=model, version=version, samples=_b64(run.samples),
                     fields_sha256=fields, samples_sha256=samples,
                     identity=run_identity(artifact, fields, samples), evaluation=None,
                     origin_event=origin.of_run(run.id))
        evaluation = queries.first_evaluation(store, run.id)
        if evaluation is not None:
            entry["evaluation"] = {
                **{key: evaluation[key] for key in _EVALUATION_COLUMNS},
                "dataset": evaluation["dataset"], "reference": evaluation["reference"],
                "reference_id": evaluation["reference_id"],
                "predictions": _b64(evaluation["predictions"])}
        entries.append(entry)
    return entries


def export_bundle(ws: Workspace, refs: list[str], out: Path) -> ExportResult:
    """Write the named releases (MODEL@VERSION, MODEL@latest, or MODEL: all of its
    releases), every run of them and what their provenance needs to ``out`` as a zip."""
    from devtrack.bundlefile import write_bundle
    from devtrack.locks import owned_temp_dir
    from devtrack.provenance import current_host, current_user, devtrack_version

    if not refs:
        raise UsageError("name at least one release to export, e.g. devtrack export kws@1.0 "
                         "-o kws.zip")
    if out.exists() and out.is_dir():
        raise UsageError(f"{out} is a folder; give the path of the .zip to write")
    store = ws.store
    named = _named_release_ids(ws, refs)
    releases: dict[int, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    wanted = list(named)
    origin = _OriginEvents(store)
    while wanted:  # the named releases, then what their provenance points at
        release_id = wanted.pop()
        if release_id in releases:
            continue
        entry = releases[release_id] = _release_entry(store, release_id)
        entry["origin_event"] = origin.of_release(entry["model"], entry["version"])
        if entry["parent_id"] is not None:
            wanted.append(int(entry["parent_id"]))
        if release_id in named:
            found = _run_entries(store, release_id, entry["model"], entry["version"],
                                 entry["sha256"], origin)
            runs.extend(found)
            wanted.extend(int(r["evaluation"]["reference_id"]) for r in found
                          if r["evaluation"] and r["evaluation"]["reference_id"] is not None)
    dataset_names = sorted({r["evaluation"]["dataset"] for r in runs if r["evaluation"]})
    datasets = [_dataset_entry(store, name) for name in dataset_names]
    ordered = [releases[key] for key in sorted(releases)]  # parents were registered first
    for entry in ordered:
        entry.pop("parent_id")
    for run in runs:
        if run["evaluation"]:
            run["evaluation"].pop("reference_id")
    data = {"format_version": FORMAT_VERSION, "releases": ordered, "runs": runs,
            "datasets": datasets}
    with owned_temp_dir("devtrack-run-export-") as tmp:
        data_path = tmp / DATA_NAME
        data_path.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        files: dict[str, Path] = {DATA_NAME: data_path}
        members: dict[str, Member] = {}
        from devtrack.artifacts import sha256_file

        members[DATA_NAME] = Member(DATA_NAME, sha256_file(data_path), data_path.stat().st_size)
        for kind, sha, user in (
                [("artifacts", e["sha256"], f"release {e['model']}@{e['version']}")
                 for e in ordered]
                + [("datasets", str(d["sha256"]), f"dataset {d['name']}") for d in datasets if d]):
            stored = ws.artifacts.verify(sha, user)  # a modified stored file is refused here
            name = f"{kind}/{sha}"
            files[name] = stored
            members[name] = Member(name, sha, stored.stat().st_size)
        manifest = Manifest(FORMAT_VERSION, devtrack_version(), current_host(), current_user(),
                            utc_now(), members)
        write_bundle(out, manifest, files)
    return ExportResult(out, bundle_digest(manifest_bytes(manifest)),
                        [f"{e['model']}@{e['version']}" for e in ordered], len(runs),
                        dataset_names, out.stat().st_size)


# -- import ---------------------------------------------------------------------------------

def _malformed(what: str) -> UsageError:
    return UsageError(f"the bundle's data is malformed ({what}); nothing was written")


def _conflict(ref: str, sha: str, held: str) -> DuplicateError:
    return DuplicateError(
        f"{ref} in the bundle is other bytes (sha256 {sha[:12]}) than {ref} here "
        f"({held[:12]}); refusing the bundle, nothing was written — the same MODEL@VERSION "
        "must be the same file in every workspace")


def _dataset_conflict(name: str, sha: str, held: str) -> DuplicateError:
    return DuplicateError(
        f"dataset {shown(name)} in the bundle is another file (sha256 {sha[:12]}) than the "
        f"dataset of that name here ({held[:12]}); refusing the bundle, nothing was written")


def _dataset_entry(store: StoreBackend, name: str) -> dict[str, Any] | None:
    found = queries.dataset(store, name)
    return {key: getattr(found, key) for key in _DATASET_COLUMNS} if found else None


def _check_conflicts(store: StoreBackend, data: dict[str, Any]) -> None:
    for entry in data["releases"]:
        held = queries.release_sha256(store, entry["model"], entry["version"])
        if held is not None and held != entry["sha256"]:
            raise _conflict(f"{entry['model']}@{entry['version']}", entry["sha256"], held)
    for entry in data["datasets"]:
        held_dataset = queries.dataset(store, entry["name"])
        if held_dataset is not None and held_dataset.sha256 != entry["sha256"]:
            raise _dataset_conflict(entry["name"], entry["sha256"], held_dataset.sha256)


def _require(entry: Any, keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in entry]
    if missing:
        raise KeyError(missing[0])


def _check_data(data: Any, manifest: Manifest) -> dict[str, Any]:
    """The bundle's data, its shape checked and every file it names present in the
    manifest (so nothing below meets a KeyError half-way)."""
    from devtrack.core.refs import check_model_name, check_version

    if not isinstance(data, dict):
        raise _malformed("not an object")
    try:
        for entry in data["releases"]:
            check_model_name(entry["model"])
            check_version(entry["version"])
            if f"artifacts/{entry['sha256']}" not in manifest.members:
                raise _malformed(f"the file of {entry['model']}@{entry['version']} is missing")
            _require(entry, ("task", "format", "size_bytes", "notes", "fields_sha256",
                             *RELEASE_SEALED_FIELDS))
        for entry in data["datasets"]:
            if f"datasets/{entry['sha256']}" not in manifest.members:
                raise _malformed(f"the file of dataset {entry['name']} is missing")
            _require(entry, _DATASET_COLUMNS)
        refs = {(e["model"], e["version"]) for e in data["releases"]}
        names = {e["name"] for e in data["datasets"]}
        for run in data["runs"]:
            if (run["model"], run["version"]) not in refs:
                raise _malformed(f"a run of {run['model']}@{run['version']}, not in the bundle")
            _require(run, (*RUN_SEALED_FIELDS, "identity", "samples", "evaluation"))
            evaluation = run["evaluation"]
            if evaluation is not None:
                if evaluation["dataset"] not in names:
                    raise _malformed(f"the dataset {evaluation['dataset']} is missing")
                _require(evaluation, (*_EVALUATION_COLUMNS, "reference", "predictions"))
    except (KeyError, TypeError) as exc:
        raise _malformed(f"missing {exc}") from None
    return data


class _Writer:
    """The rows of one import and their seals; call inside the write transaction."""

    def __init__(self, ws: Workspace, now: str, result: ImportResult) -> None:
        self.ws = ws
        self.store = ws.store
        self.now = now
        self.result = result
        self.seals: dict[str, list[dict[str, Any]]] = {"releases": [], "datasets": [],
                                                       "runs": []}

    def dataset(self, entry: dict[str, Any]) -> None:
        held = queries.dataset(self.store, entry["name"])
        if held is not None:
            if held.sha256 != entry["sha256"]:
                raise _dataset_conflict(entry["name"], entry["sha256"], held.sha256)
            return
        stored = {key: entry[key] for key in _DATASET_COLUMNS}
        self.store.insert("datasets", stored)
        self.seals["datasets"].append({
            "dataset": entry["name"], "sha256": entry["sha256"], "task": entry["task"],
            "samples": entry["samples"], "source_name": entry["source_name"],
            "fields_sha256": dataset_fields_digest(stored)})
        self.result.datasets_added.append(entry["name"])

    def release(self, entry: dict[str, Any]) -> None:
        model, version, sha = entry["model"], entry["version"], entry["sha256"]
        ref = f"{model}@{version}"
        held = queries.release_sha256(self.store, model, version)
        if held is not None:
            if held != sha:
                raise _conflict(ref, sha, held)
            self.result.releases_present.append(ref)
            return
        store = self.store
        model_id = queries.add_model_if_new(store, model, entry["task"], self.now)
        if not queries.artifact_known(store, sha):
            store.insert("artifacts", {"sha256": sha, "format": entry["format"],
                                       "size_bytes": entry["size_bytes"],
                                       "created_at": self.now})
        parent = entry["parent"]
        parent_id = queries.release_id(store, model, parent) if parent is not None else None
        row = {key: entry[key] for key in RELEASE_SEALED_FIELDS if key != "parent"}
        row.update(model_id=model_id, version=version, artifact_sha256=sha,
                   parent_id=parent_id, notes=entry["notes"])
        store.insert("releases", row)
        sealed = {**row, "parent": parent if parent_id is not None else None}
        if release_fields_digest(sealed) != entry["fields_sha256"]:
            raise _malformed(f"the fields of {ref} do not match their digest")
        self.seals["releases"].append({
            "model": model, "version": version, "sha256": sha, "format": entry["format"],
            "size_bytes": entry["size_bytes"], "parent": sealed["parent"],
            "task": queries.model_task(store, model), "notes_sha256": text_digest(entry["notes"]),
            "fields_sha256": release_fields_digest(sealed),
            "origin_event": entry.get("origin_event")})
        self.result.releases_added.append(ref)

    def _identities(self, release_id: int, artifact: str) -> set[str]:
        return {run_identity(artifact, run_fields_digest(vars(run)), samples_digest(run.samples))
                for run in queries.runs_of_release(self.store, release_id)}

    def runs(self, runs: list[dict[str, Any]], releases: dict[tuple[str, str], str]) -> None:
        known: dict[int, set[str]] = {}
        for entry in runs:
            key = (entry["model"], entry["version"])
            release_id = queries.release_id(self.store, *key)
            assert release_id is not None
            artifact = releases[key]
            if release_id not in known:
                known[release_id] = self._identities(release_id, artifact)
            if entry["identity"] in known[release_id]:
                self.result.runs_present += 1
                continue
            self._run(entry, release_id, artifact)
            known[release_id].add(entry["identity"])
            self.result.runs_added += 1

    def _run(self, entry: dict[str, Any], release_id: int, artifact: str) -> None:
        from devtrack.auditing import evaluation_digest

        store = self.store
        row = {key: entry[key] for key in RUN_SEALED_FIELDS}
        row.update(release_id=release_id, samples=_unb64(entry["samples"]),
                   conditions_hash=snapshot_conditions_hash(entry["profile_snapshot"]))
        run_id = store.insert("runs", row)
        stored = queries.run(store, run_id)
        assert stored is not None
        fields, samples = run_fields_digest(vars(stored)), samples_digest(stored.samples)
        if run_identity(artifact, fields, samples) != entry["identity"]:
            raise _malformed(f"a run of {entry['model']}@{entry['version']} does not match "
                             "its identity")
        seal: dict[str, Any] = {
            "model": entry["model"], "version": entry["version"], "run": run_id,
            "profile": row["profile"], "profile_hash": str(row["profile_hash"])[:12],
            "conditions_hash": row["conditions_hash"][:12], "status": row["status"],
            "p50_ms": stored.p50_ms, "peak_rss_mb": stored.peak_rss_mb,
            "error": row["error"], "samples_sha256": samples, "fields_sha256": fields,
            "identity": entry["identity"], "origin_event": entry.get("origin_event"),
            "evaluation": None}
        evaluation = entry["evaluation"]
        if evaluation is not None:
            dataset = queries.dataset(store, evaluation["dataset"])
            assert dataset is not None
            reference = evaluation["reference"]
            reference_id = None
            if reference is not None:
                ref = parse_ref(reference)
                reference_id = queries.release_id(store, ref.model, ref.version)
            evaluation_id = store.insert("evaluations", {
                **{key: evaluation[key] for key in _EVALUATION_COLUMNS},
                "run_id": run_id, "dataset_id": dataset.id,
                "predictions": _unb64(evaluation["predictions"]),
                "reference_release_id": reference_id})
            seal.update(evaluation=evaluation_id, dataset=evaluation["dataset"],
                        accuracy=evaluation["accuracy"], nonfinite=evaluation["nonfinite"],
                        evaluation_sha256=evaluation_digest(self.ws, evaluation_id))
        self.seals["runs"].append(seal)


def _read_data(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _malformed("not JSON") from None


def import_bundle(ws: Workspace, path: Path, max_bytes: int | None = None,
                  progress: Progress | None = None) -> ImportResult:
    """Verify every member of the bundle at ``path``, then add what the workspace lacks in
    one transaction with one ``import`` event; a second import of it adds nothing."""
    from devtrack.bundlefile import DEFAULT_MAX_BYTES, extract_verified, open_bundle
    from devtrack.locks import owned_temp_dir
    from devtrack.provenance import current_user, devtrack_version

    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    # devtrack-run-*: a killed import's temp folder is removed by `devtrack gc`.
    with (open_bundle(path, devtrack_version(), limit) as (zf, manifest, raw),
          owned_temp_dir("devtrack-run-import-") as tmp):
        files = extract_verified(path, zf, manifest, tmp, progress)
        data = _check_data(_read_data(files[DATA_NAME]), manifest)
        result = ImportResult(bundle_digest(raw), manifest.host)
        _check_conflicts(ws.store, data)  # early, before any file is stored; again below
        shas = sorted({e["sha256"] for e in data["releases"]}
                      | {e["sha256"] for e in data["datasets"]})
        sources = {e["sha256"]: files[f"artifacts/{e['sha256']}"] for e in data["releases"]}
        sources.update({e["sha256"]: files[f"datasets/{e['sha256']}"]
                        for e in data["datasets"]})
        new_files: list[str] = []
        try:
            with ExitStack() as pins:
                for sha in shas:  # pinned from before the copy until the rows commit
                    pins.enter_context(ws.artifacts.hold(sha))
                    if ws.artifacts.put(sources[sha], sha) == "new":
                        new_files.append(sha)
                _write(ws, data, manifest, result, current_user())
        except BaseException:
            _discard_quietly(ws, new_files)
            raise
    return result


def _write(ws: Workspace, data: dict[str, Any], manifest: Manifest, result: ImportResult,
           actor: str) -> None:
    store = ws.store
    now = utc_now()
    with store.transaction():
        writer = _Writer(ws, now, result)
        for entry in data["datasets"]:
            writer.dataset(entry)
        for entry in data["releases"]:
            writer.release(entry)
        writer.runs(data["runs"], {(e["model"], e["version"]): e["sha256"]
                                   for e in data["releases"]})
        if not any(writer.seals.values()):
            return  # everything was here already: no event, nothing written
        models = {seal["model"] for seal in writer.seals["releases"] + writer.seals["runs"]}
        event = store.append_event(
            actor=actor, kind="import", version=None, ts=now,
            model=models.pop() if len(models) == 1 else None,  # so `devtrack log MODEL` shows it
            payload={"bundle": result.digest, "from_host": manifest.host,
                     "exported_by": manifest.created_by, "exported_at": manifest.created_at,
                     "exported_with": manifest.devtrack_version, **writer.seals})
        result.event_id = int(event["id"])


def _discard_quietly(ws: Workspace, shas: list[str]) -> None:
    """Remove files this failed import stored, if nothing needs them (gc gets the rest)."""
    from contextlib import suppress

    for sha in shas:
        with suppress(Exception):
            ws.artifacts.discard(ws.artifacts.path_for(sha), sha,
                                 functools.partial(ws.store.references_file, sha))

