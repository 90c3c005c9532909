"""records.py is the one list of columns: both backends' schemas have exactly its columns, in
its order, and the lists derived from it agree with the ones frozen elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtrack.postgres.backend import open_postgres_store
from devtrack.records import TABLES, Run, columns, from_row, table_columns
from devtrack.store import create_store
from devtrack.store_contract import StoreBackend


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path):
    store: StoreBackend
    if request.param == "sqlite":
        store = create_store(tmp_path / "devtrack.db")
    else:
        store = open_postgres_store(request.getfixturevalue("pg_url"))
    try:
        yield store
    finally:
        store.close()


def test_each_schema_has_exactly_the_records_columns_in_order(fresh: StoreBackend) -> None:
    found = fresh.tables()
    assert set(found) == set(TABLES)
    for name, shape in found.items():
        assert shape.columns == table_columns(name), name


_SQL_TYPES = {"sqlite": {"int": "INTEGER", "float": "REAL", "str": "TEXT", "bytes": "BLOB"},
              "postgres": {"int": "bigint", "float": "double precision", "str": "text",
                           "bytes": "bytea"}}


def _declared(store: StoreBackend, backend: str, table: str) -> dict[str, tuple[str, bool]]:
    """Each column's declared type and whether it may hold NULL, from the catalog."""
    if backend == "sqlite":
        return {r["name"]: (r["type"], not (r["notnull"] or r["pk"]))
                for r in store.query(f"PRAGMA table_info({table})")}
    return {r["column_name"]: (r["data_type"], r["is_nullable"] == "YES")
            for r in store.query("SELECT column_name, data_type, is_nullable FROM "
                                 "information_schema.columns WHERE table_schema = "
                                 "current_schema() AND table_name = ?", (table,))}


def test_each_schema_has_the_records_types_and_nullability(
        fresh: StoreBackend, request: pytest.FixtureRequest) -> None:
    from dataclasses import fields

    backend = request.node.callspec.params["fresh"]
    for table, record in TABLES.items():
        declared = _declared(fresh, backend, table)
        for field in fields(record):
            text = str(field.type)
            base = text.replace(" | None", "")
            expected = (_SQL_TYPES[backend][base], text.endswith("| None"))
            assert declared[field.name] == expected, (table, field.name)


def test_a_sealed_run_is_every_column_but_its_keys_and_samples() -> None:
    from devtrack.core.audit_state import RUN_SEALED_FIELDS

    # RUN_SEALED_FIELDS is frozen (digests depend on it): a new run column must be decided on
    # (sealed under a new payload key, or left out here on purpose), not added silently.
    unsealed = {"id", "release_id", "samples", "conditions_hash"}
    assert tuple(c for c in columns(Run) if c not in unsealed) == RUN_SEALED_FIELDS


def test_from_row_takes_a_whole_row_and_ignores_joined_names() -> None:
    row = {name: None for name in columns(Run)} | {"id": 3, "model": "kws"}
    run = from_row(Run, row)
    assert run.id == 3 and not hasattr(run, "model")
    with pytest.raises(KeyError):
        from_row(Run, {"id": 3})


def test_the_figures_queries_read_are_run_columns() -> None:
    from devtrack.queries import RUN_FIGURES

    assert set(RUN_FIGURES) <= set(columns(Run))


def test_releases_does_not_create_the_records(in_ws: Path, mlp_onnx: Path, run_cli) -> None:
    """Creating a dozen dataclasses costs ~10 ms: `devtrack releases`, whose start-up is a
    budget (tests/test_cli_help.py), reaches queries.py but builds no record."""
    import json
    import subprocess
    import sys

    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1")
    probe = ("import sys\nfrom devtrack.cli import main\nmain(['releases'])\n"
             "print(__import__('json').dumps('devtrack.records' in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=in_ws, check=True, timeout=60)
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False
