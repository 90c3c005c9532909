"""Database URLs (libpq's ``postgresql://``): parse, refuse a stored password, mask for display."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from devtrack.errors import UsageError

SCHEMES = ("postgresql", "postgres")
MASK = "***"
_HOST_PORT = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(?::(?P<port>[^:]*))?$")
PASSWORD_HELP = ("supply the password the way libpq does instead: the PGPASSWORD environment "
                 "variable, a ~/.pgpass file (see PGPASSFILE) or a service file (PGSERVICE)")


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed libpq URL. ``hosts`` keeps libpq's comma-separated host list in order."""

    user: str | None
    password: str | None
    hosts: tuple[tuple[str, int | None], ...]
    database: str | None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def has_password(self) -> bool:
        return self.password is not None or "password" in self.params


def is_postgres_url(text: str) -> bool:
    """Whether ``text`` names a PostgreSQL database (and so needs psycopg)."""
    return text.split("://", 1)[0].lower() in SCHEMES and "://" in text


def parse_database_url(text: str) -> DatabaseUrl:
    """Parse ``postgresql://user@host:port/db?sslmode=...``; UsageError (password masked) if
    it is not one."""
    if not is_postgres_url(text):
        raise UsageError(f"{mask_password(text)!r} is not a PostgreSQL URL; expected "
                         "postgresql://USER@HOST:PORT/DATABASE")
    rest = text.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    user = password = None
    if at:
        name, colon, secret = userinfo.partition(":")
        user = unquote(name) or None
        password = unquote(secret) if colon else None
    hosts = tuple(_host(part, text) for part in hostlist.split(",")) if hostlist else ()
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise UsageError(f"{mask_password(text)!r} has a malformed query string "
                         "(expected ?name=value&name=value)") from None
    return DatabaseUrl(user, password, hosts, unquote(path) or None, params)


def _host(part: str, text: str) -> tuple[str, int | None]:
    match = _HOST_PORT.match(part)
    port_text = match.group("port") if match else None
    if match is None or (port_text is not None and not _valid_port(port_text)):
        raise UsageError(f"{mask_password(text)!r} has a bad host or port {part!r}; expected "
                         "HOST or HOST:PORT with a port from 1 to 65535")
    return unquote(match.group("host")), int(port_text) if port_text else None


def _valid_port(text: str) -> bool:
    return text.isdigit() and 1 <= int(text) <= 65535


def refuse_stored_password(text: str) -> DatabaseUrl:
    """The URL, parsed, if it may be written to a config file: it must carry no password."""
    url = parse_database_url(text)
    if url.has_password:
        raise UsageError(f"the database URL {mask_password(text)} contains a password, which "
                         f"devtrack will not write to a file; remove it and {PASSWORD_HELP}")
    return url


def mask_password(text: str) -> str:
    """``text`` with any password (in the user part or a ``password=`` parameter) shown as
    ``***``; everything else as given."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    rest, qmark, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    if qmark:
        query = re.sub(r"(^|&)(password=)[^&]*", rf"\g<1>\g<2>{MASK}", query)
    return f"{scheme}{sep}{userinfo}{at}{hostlist}{slash}{path}{qmark}{query}"
