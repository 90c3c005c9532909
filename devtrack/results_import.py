"""`devtrack results import`: a benchmark_model log stored as a run that holds only aggregates."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from devtrack.core.aggregate_runs import AGGREGATES_STOP_REASON, result_from_log
from devtrack.core.benchmark_model_log import BenchmarkLog, parse_log
from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.errors import DuplicateError, UsageError
from devtrack.workspace import Workspace

FORMATS = ("benchmark_model",)
MAX_LOG_BYTES = 64 * 1024 * 1024  # op tables of a large model are a few MB at most


def read_log(path: Path) -> tuple[str, str]:
    """(text, sha256) of a log file; UsageError when it cannot be read or is too large."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise UsageError(f"{path} is not a file")
        if size > MAX_LOG_BYTES:
            raise UsageError(f"{path} is {size} bytes; a benchmark_model log is at most "
                             f"{MAX_LOG_BYTES // (1024 * 1024)} MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"no such log file: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return data.decode("utf-8", errors="replace"), hashlib.sha256(data).hexdigest()


def check_log_fits(log: BenchmarkLog, release: Release, profile: Profile, source: str) -> None:
    """UsageError unless the log can stand for ``release`` on ``profile``: a TFLite release, a
    profile that runs TFLite, and the threads and XNNPACK setting the log printed (when it
    printed them) equal to the profile's conditions."""
    if release.format != "tflite":
        raise UsageError(f"{release.ref} is a {release.format} release; benchmark_model "
                         "measures .tflite models")
    if not profile.runs_format("tflite"):
        raise UsageError(f"profile {profile.name!r} does not run tflite models; its formats: "
                         f"{', '.join(profile.formats)}")
    threads = log.param("Num threads", "#threads used for CPU inference")
    if threads is not None and threads.lstrip("-").isdigit() and int(threads) > 0 \
            and int(threads) != profile.execution.threads:
        raise UsageError(f"{source} ran with {threads} threads; profile {profile.name} has "
                         f"execution.threads = {profile.execution.threads}: import it under a "
                         "profile with the same threads")
    xnnpack = log.param("Use xnnpack")
    if xnnpack is not None and xnnpack.lower() in ("0", "1", "true", "false"):
        used = xnnpack.lower() in ("1", "true")
        if used != profile.litert.xnnpack:
            raise UsageError(f"{source} ran with XNNPACK {'on' if used else 'off'}; profile "
                             f"{profile.name} has litert.xnnpack = "
                             f"{str(profile.litert.xnnpack).lower()}")


def _already_imported(ws: Workspace, release: Release, profile: str, sha256: str) -> int | None:
    import json

    from devtrack import queries

    for row in queries.runs_stopped_by(ws.store, release.id, profile, AGGREGATES_STOP_REASON):
        source = json.loads(row["details"] or "{}").get("source") or {}
        if source.get("log_sha256") == sha256:
            return int(row["id"])
    return None


def import_log(ws: Workspace, path: Path, release_ref: str, profile_name: str,
               fmt: str = "benchmark_model") -> dict[str, Any]:
    """Store the benchmark_model run in ``path`` as a run of ``release_ref`` on
    ``profile_name`` (its row and its ``bench`` event in one transaction); the stored run.

    Everything is checked before anything is written: the format, the log (a crashed or
    truncated one is refused), the release, the profile and that they fit together; a log
    already imported for that release and profile is refused too. Raises UsageError."""
    from devtrack.benchmarking import Measurement, get_run, store_run
    from devtrack.pairing import measured_profile
    from devtrack.profiles import load_profile
    from devtrack.registry import get_release
    from devtrack.store import utc_now

    if fmt not in FORMATS:
        raise UsageError(f"unknown log format {fmt!r}; supported: {', '.join(FORMATS)}")
    text, sha256 = read_log(path)
    log = parse_log(text, source=str(path))
    release = get_release(ws, release_ref)
    profile = measured_profile(load_profile(profile_name, ws.root))
    check_log_fits(log, release, profile, str(path))
    earlier = _already_imported(ws, release, profile.name, sha256)
    if earlier is not None:
        raise DuplicateError(f"{path} is already imported for {release.ref} on {profile.name} "
                             f"(run {earlier}); nothing was added")
    result = result_from_log(log, {"origin": "import", "log_name": path.name,
                                   "log_sha256": sha256})
    started = utc_now()
    run_id = store_run(ws, Measurement(release, profile, [], []), result, started)
    return get_run(ws, run_id)
