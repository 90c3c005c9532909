"""The run that counts, side by side: the one rule (counted_runs) vs the SQL it replaced.

Builds the review-app benchmark's workspace (``tui_startup.build_workspace``: 1,000 releases
× 4 profiles, plus N extra runs per release under other conditions, as ``bench --threads``
leaves them) and times, interleaved in one process, what the release table reads:

- before: the window-function query the table used (newest ok run per release, preferring
  the current profile hash) plus its accuracy query;
- after: ``counted_runs`` + ``counted_evaluations`` (one query each, the rule applied in
  Python), and one release's choice (``choose``) as the detail view and ``check`` read it.

Prints medians and the after/before ratio. Usage: python benchmarks/counted_runs.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tui_startup import build_workspace

from devtrack.counted_runs import choose, counted_evaluations, counted_runs
from devtrack.profiles import load_profile
from devtrack.workspace import open_workspace

# The query release_overview ran before the rule moved to counted_runs (kept verbatim).
OLD_RUNS_SQL = """
SELECT id, release_id, status, error, profile_hash, p50_ms, p90_ms, peak_rss_mb, warnings,
       n_runs, newest_status, newest_error, newest_id
FROM (
  SELECT runs.id, runs.release_id, runs.status, runs.error, runs.profile_hash, runs.p50_ms,
         runs.p90_ms, runs.peak_rss_mb, runs.warnings,
         ROW_NUMBER() OVER (PARTITION BY runs.release_id, runs.status = 'ok'
                            ORDER BY runs.profile_hash = :hash DESC, runs.id DESC) AS rn,
         COUNT(*) OVER (PARTITION BY runs.release_id) AS n_runs,
         FIRST_VALUE(runs.status) OVER (PARTITION BY runs.release_id
                                        ORDER BY runs.id DESC) AS newest_status,
         FIRST_VALUE(runs.error) OVER (PARTITION BY runs.release_id
                                       ORDER BY runs.id DESC) AS newest_error,
         MAX(runs.id) OVER (PARTITION BY runs.release_id) AS newest_id
  FROM runs JOIN releases r ON r.id = runs.release_id
  WHERE r.model_id = :model AND runs.profile = :profile
) AS ranked
WHERE rn = 1
"""
OLD_ACCURACY_SQL = """
SELECT runs.release_id, runs.profile_hash, e.accuracy, e.dataset_id
FROM evaluations e JOIN runs ON runs.id = e.run_id JOIN releases r ON r.id = runs.release_id
WHERE r.model_id = ? AND runs.profile = ? AND runs.status = 'ok' AND e.accuracy IS NOT NULL
ORDER BY e.id
"""


def _add_other_runs(root: Path, per_release: int) -> int:
    """Copy each ok run ``per_release`` times under other conditions (newer ids)."""
    with open_workspace(root) as ws, ws.store.transaction():
        for i in range(per_release):
            ws.store.conn.execute(
                "INSERT INTO runs (release_id, profile, profile_hash, profile_snapshot, "
                "conditions_hash, status, started_at, finished_at, actor, host, p50_ms, "
                "p90_ms, peak_rss_mb, warnings) SELECT release_id, profile, profile_hash, "
                f"profile_snapshot, 'other-{i}', status, started_at, finished_at, actor, "
                "host, p50_ms * 0.8, p90_ms, peak_rss_mb, warnings FROM runs "
                "WHERE conditions_hash NOT LIKE 'other-%'")
        row = ws.store.one("SELECT COUNT(*) AS n FROM runs")
        return int(row["n"]) if row else 0


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--other-runs", type=int, default=2,
                        help="extra runs per release and profile under other conditions")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="devtrack-counted-")) / "ws"
    build_workspace(root, args.releases)
    runs = _add_other_runs(root, args.other_runs)
    profile = load_profile("ci-host", root)
    with open_workspace(root) as ws:
        model = ws.store.one("SELECT id FROM models WHERE name = 'big'")
        assert model is not None
        model_id = int(model["id"])
        release = ws.store.one("SELECT MAX(id) AS id FROM releases WHERE model_id = ?",
                               (model_id,))
        assert release is not None

        def before() -> object:
            rows = ws.store.query(OLD_RUNS_SQL, {"model": model_id, "profile": profile.name,
                                                 "hash": profile.hash})
            return rows, ws.store.query(OLD_ACCURACY_SQL, (model_id, profile.name))

        def after() -> object:
            choices = counted_runs(ws, model_id, profile.name, profile.conditions_hash)
            return choices, counted_evaluations(ws, model_id, profile.name, choices)

        def one() -> object:
            return choose(ws, int(release["id"]), profile.name, profile.conditions_hash)

        choices = counted_runs(ws, model_id, profile.name, profile.conditions_hash)
        assert all(c.run is not None and c.newer_other == args.other_runs
                   for c in choices.values())
        times: dict[str, list[float]] = {"before": [], "after": [], "one": []}
        for _ in range(args.repeat):  # interleaved, so drift hits both alike
            times["before"] += _time(before, 1)
            times["after"] += _time(after, 1)
            times["one"] += _time(one, 1)
    median = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"{args.releases} releases, {runs} runs ({args.other_runs} per release and profile "
          f"under other conditions), profile ci-host, {args.repeat} interleaved repeats")
    print(f"  release table, before (window SQL + accuracy)   {median['before']:7.1f} ms")
    print(f"  release table, after (counted_runs + accuracy)  {median['after']:7.1f} ms  "
          f"ratio {median['after'] / median['before']:.2f}")
    print(f"  one release's choice (detail view, check)       {median['one']:7.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
