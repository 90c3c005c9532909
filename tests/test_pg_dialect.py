"""SQL written for SQLite becomes psycopg's: placeholders outside literals, percent signs kept."""

from __future__ import annotations

import pytest

from devtrack.postgres.dialect import to_psycopg


@pytest.mark.parametrize(("sqlite", "psycopg"), [
    ("SELECT * FROM t WHERE a = ? AND b IN (?, ?)",
     "SELECT * FROM t WHERE a = %s AND b IN (%s, %s)"),
    ("SELECT 'why?' AS q, a FROM t WHERE b = ?", "SELECT 'why?' AS q, a FROM t WHERE b = %s"),
    ("SELECT 'it''s ?' || ? FROM t", "SELECT 'it''s ?' || %s FROM t"),
    ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = %s'),
    ("SELECT a FROM t WHERE n LIKE '10%' AND m = ?",
     "SELECT a FROM t WHERE n LIKE '10%%' AND m = %s"),
    ("SELECT a % 3 FROM t -- why? 5%\nWHERE b = ?",
     "SELECT a %% 3 FROM t -- why? 5%%\nWHERE b = %s"),
    ("SELECT /* a? */ ? ", "SELECT /* a? */ %s "),
    ("SELECT x::text FROM t WHERE y = ?", "SELECT x::text FROM t WHERE y = %s"),
    ("SELECT 'unclosed ?", "SELECT 'unclosed ?"),
])
def test_positional_placeholders(sqlite: str, psycopg: str) -> None:
    assert to_psycopg(sqlite) == psycopg


def test_named_placeholders_only_outside_literals_and_never_casts() -> None:
    sql = "SELECT ':no', x::text FROM t WHERE a = :name AND b = :other_1 AND c = '?'"
    assert to_psycopg(sql, named=True) == (
        "SELECT ':no', x::text FROM t WHERE a = %(name)s AND b = %(other_1)s AND c = '?'")


def test_literals_survive_a_real_server(pg_url: str) -> None:
    from devtrack.postgres.backend import open_postgres_store

    store = open_postgres_store(pg_url)
    try:
        row = store.one("SELECT 'why?' AS q, '100%' AS pct, ? AS v, 7 % 4 AS m", ("x",))
        assert row == {"q": "why?", "pct": "100%", "v": "x", "m": 3}
        assert store.one("SELECT '50%' AS pct") == {"pct": "50%"}
        assert store.one("SELECT :a AS a, ':b' AS b", {"a": 1}) == {"a": 1, "b": ":b"}
    finally:
        store.close()
