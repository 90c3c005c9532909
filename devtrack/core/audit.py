"""The audit trail's hash chain: pure functions to seal and verify events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
SEALED_FIELDS = ("id", "ts", "actor", "kind", "model", "version", "payload", "reason")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    """Hash of one event's sealed fields chained to the previous event's hash."""
    sealed = {key: event.get(key) for key in SEALED_FIELDS}
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update(canonical_json(sealed).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    """The first event at which the chain breaks, and why."""

    event_id: int | None
    message: str


def verify_chain(
    events: Iterable[Mapping[str, Any]], head: tuple[int, str] | None
) -> ChainProblem | None:
    """Recompute the chain over events in id order; ``head`` is the recorded (count, last hash).

    Detects an edited row (its hash no longer matches), a removed row (the next row's
    ``prev_hash`` or id sequence no longer matches) and a removed tail (the recorded head).
    """
    prev = GENESIS_HASH
    expected_id = 1
    count = 0
    for event in events:
        event_id = int(event["id"])
        if event_id != expected_id:
            return ChainProblem(
                expected_id, f"event {expected_id} is missing (next present is {event_id})"
            )
        if event["prev_hash"] != prev:
            return ChainProblem(event_id, f"event {event_id} does not follow the event before it")
        recomputed = event_hash(prev, event)
        if recomputed != event["hash"]:
            return ChainProblem(
                event_id,
                f"event {event_id} ({event.get('kind')}) was altered: its contents no longer "
                "match its hash",
            )
        prev = recomputed
        expected_id += 1
        count += 1
    if head is not None and (count, prev) != head:
        recorded_count, _ = head
        if count < recorded_count:
            return ChainProblem(count + 1, f"event {count + 1} and later were removed "
                                f"({recorded_count} recorded, {count} present)")
        return ChainProblem(None, "the recorded head of the chain does not match the events")
    return None


def payload_summary(payload: Mapping[str, Any]) -> str:
    """An event's payload as a log line: ``key=value, …``, hashes shortened to 12 characters,
    lists of records (an import's seals) as their count, empty values and the digests
    ``audit verify`` checks (``*_sha256``) left out."""
    parts = []
    for key, value in payload.items():
        if value in (None, "", [], {}) or (key.endswith("_sha256")):
            continue
        if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
            parts.append(f"{key}={len(value)}")
            continue
        parts.append(f"{key}={_short(value)}")
    return ", ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    if len(text) >= 32 and all(c in "0123456789abcdef" for c in text):
        return text[:12]  # a hash: the prefix identifies it
    return text
