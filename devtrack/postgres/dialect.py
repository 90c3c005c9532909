"""SQL written for SQLite, made runnable by psycopg: placeholders and literal percent signs."""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_psycopg(sql: str, *, named: bool = False) -> str:
    """``sql`` with SQLite's ``?`` (or ``:name`` when ``named``) as psycopg's ``%s``
    (``%(name)s``), and every literal ``%`` doubled, as psycopg reads ``%`` everywhere.

    A ``?`` or ``:name`` inside a string literal, a quoted identifier or a comment is left as
    it is; ``::`` (a PostgreSQL cast) is never a parameter.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":
            end = _closing_quote(sql, i)
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif ch == "%":
            out.append("%%")
            i += 1
        elif ch == "?" and not named:
            out.append("%s")
            i += 1
        elif ch == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
        elif ch == ":" and named and (match := _NAME.match(sql, i + 1)):
            out.append(f"%({match.group()})s")
            i = match.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _closing_quote(sql: str, start: int) -> int:
    """The index just past the quote that closes the literal opened at ``start`` (a doubled
    quote is an escaped one); the end of ``sql`` if it is never closed."""
    quote = sql[start]
    i = start + 1
    while True:
        i = sql.find(quote, i)
        if i < 0:
            return len(sql)
        if sql.startswith(quote * 2, i):
            i += 2
            continue
        return i + 1
