"""A release as devtrack shows it: one artifact plus its provenance and model summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devtrack.core.inputspec import FillSpec, InputSpec
from devtrack.core.summary import ModelSummary

STATUSES = ("candidate", "approved", "rejected", "yanked")


@dataclass(frozen=True)
class Release:
    id: int
    model: str
    version: str
    sha256: str
    format: str
    size_bytes: int
    created_at: str
    status: str
    parent: str | None  # version of the parent release in the same model line
    notes: str
    data_version: str | None
    data_sha256: str | None
    config: dict[str, Any] | None
    run_id: str | None
    tags: dict[str, str]
    input_specs: list[InputSpec]
    fills: list[FillSpec]
    source_name: str | None
    git_commit: str | None
    git_dirty: bool | None
    created_by: str
    host: str
    devtrack_version: str
    summary: ModelSummary
    same_artifact_as: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        summary = self.summary
        return {
            "model": self.model,
            "version": self.version,
            "sha256": self.sha256,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
            "status": self.status,
            "parent": self.parent,
            "notes": self.notes,
            "data_version": self.data_version,
            "data_sha256": self.data_sha256,
            "config": self.config,
            "run_id": self.run_id,
            "tags": self.tags,
            "input_specs": [s.to_text() for s in self.input_specs],
            "fills": [f.to_text() for f in self.fills],
            "source_name": self.source_name,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "created_by": self.created_by,
            "host": self.host,
            "devtrack_version": self.devtrack_version,
            "same_artifact_as": self.same_artifact_as,
            "inputs": [t.to_dict() for t in summary.inputs],
            "outputs": [t.to_dict() for t in summary.outputs],
            "ops": summary.ops,
            "params": summary.params,
            "weight_dtypes": summary.weight_dtypes,
            "quantization": summary.quantization,
            "opset": summary.opset,
            "producer": summary.producer,
        }

    def to_list_dict(self) -> dict[str, Any]:
        """The short form used by ``devtrack releases --json``."""
        full = self.to_dict()
        return {key: full[key] for key in LIST_KEYS}


LIST_KEYS = ("model", "version", "sha256", "format", "size_bytes", "created_at", "status",
             "parent", "quantization", "params", "same_artifact_as")
