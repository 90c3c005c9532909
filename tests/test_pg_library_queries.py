"""Every query the library makes, replayed on PostgreSQL against a copy of the same data.

It builds the demo (~30 s; it runs in every test run, CI included). It records each
distinct statement the library sends through ``Store.query`` while building the demo and
reading it back as the app, ``check`` and ``audit verify`` do, copies the workspace into a
fresh PostgreSQL database (``devtrack db copy``), and runs each statement on both: the results
must be equal (as sets of rows where the statement sets no order), and none may fail there
(``KNOWN_TO_FAIL`` is empty): a query only SQLite understands shows up here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtrack.errors import DatabaseError
from devtrack.postgres.backend import open_postgres_store
from devtrack.store import Store

# What breaks on PostgreSQL today, by a fragment of the statement (issue 12): nothing. A
# statement that fails there is named by this test until the library's SQL is made portable.
KNOWN_TO_FAIL: dict[str, str] = {}
def _rows(rows: list[dict[str, Any]], sql: str) -> list[Any]:
    """The rows as the statement promises them: in order only under an ORDER BY."""
    if "ORDER BY" in sql.upper():
        return rows
    return sorted((sorted(row.items()) for row in rows), key=repr)


def _read_everything(root: Path) -> None:
    from devtrack import auditing, overview, registry, trends
    from devtrack.errors import DevtrackError
    from devtrack.workspace import open_workspace

    ws = open_workspace(root)
    try:
        model = overview.list_model_overview(ws)[0].name
        for profile in [*overview.profile_names(ws), None]:
            overview.release_overview(ws, model, profile)
        for version in overview.release_versions(ws, model):
            overview.release_detail(ws, f"{model}@{version}")
            overview.compare_baseline(ws, model, version)
        overview.profiles_with_runs(ws, model)
        overview.event_kinds(ws)
        overview.audit_events(ws)
        for profile in overview.profile_names(ws):
            for metric in ("p50_ms", "peak_rss_mb", "accuracy"):
                with contextlib.suppress(DevtrackError):  # not measured on that profile
                    trends.trend(ws, model, profile, metric)
        auditing.verify_audit(ws)
        registry.list_models(ws)
        registry.list_releases(ws)
    finally:
        ws.close()


def test_the_librarys_queries_give_the_same_rows_on_postgres(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from devtrack.demo.build import build_demo

    recorded: dict[str, tuple[str, Any]] = {}
    plain_query, plain_iterate = Store.query, Store.iterate

    def recording(self: Store, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        recorded.setdefault(" ".join(sql.split()), (sql, params))
        return plain_query(self, sql, params)

    def recording_iterate(self: Store, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        recorded.setdefault(" ".join(sql.split()), (sql, params))
        return plain_iterate(self, sql, params)

    monkeypatch.setattr(Store, "query", recording)
    monkeypatch.setattr(Store, "iterate", recording_iterate)
    root = tmp_path / "demo"
    build_demo(root)
    _read_everything(root)
    monkeypatch.undo()
    assert len(recorded) > 50

    from devtrack.dbcopy import copy_database
    from devtrack.store import open_store
    from devtrack.workspace import open_workspace

    with open_workspace(root) as ws:  # devtrack db copy: every row, ids kept, chain verified
        copy_database(ws, pg_url)
    lite = open_store(root / ".devtrack" / "devtrack.db")
    postgres = open_postgres_store(pg_url)
    try:
        assert postgres.verify_events() is None
        failed, differ = set(), []
        for key, (sql, params) in recorded.items():
            try:
                got = postgres.query(sql, params)
            except DatabaseError:
                failed.add(next((k for k in KNOWN_TO_FAIL if k in key), key))
                continue
            if _rows(got, sql) != _rows(lite.query(sql, params), sql):
                differ.append(key)
        assert differ == []
        assert failed == set(KNOWN_TO_FAIL)
    finally:
        lite.close()
        postgres.close()
