"""Database URLs: parsed as libpq reads them, a password never stored, always masked."""

from __future__ import annotations

import pytest

from devtrack.core.database_url import (
    is_postgres_url,
    mask_password,
    parse_database_url,
    refuse_stored_password,
)
from devtrack.errors import UsageError


def test_a_full_url_is_parsed_into_its_parts() -> None:
    url = parse_database_url("postgresql://ci%40team@db.example:6543/registry?sslmode=verify-full"
                             "&sslrootcert=/etc/ca.pem")
    assert url.user == "ci@team"
    assert url.password is None
    assert url.hosts == (("db.example", 6543),)
    assert url.database == "registry"
    assert url.params == {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem"}


@pytest.mark.parametrize(("text", "hosts"), [
    ("postgres://h/db", (("h", None),)),
    ("postgresql://[::1]:5433/db", (("[::1]", 5433),)),
    ("postgresql://a:1,b:2/db", (("a", 1), ("b", 2))),
    ("postgresql:///db?host=/var/run/postgresql", ()),
])
def test_hosts_ports_and_socket_urls(text: str, hosts: tuple[tuple[str, int | None], ...]) -> None:
    assert parse_database_url(text).hosts == hosts


@pytest.mark.parametrize("text", ["sqlite:///x.db", "/tmp/x.db", "postgresql:/h/db", ""])
def test_other_urls_are_not_postgres(text: str) -> None:
    assert not is_postgres_url(text)
    with pytest.raises(UsageError, match="not a PostgreSQL URL"):
        parse_database_url(text)


@pytest.mark.parametrize("text", ["postgresql://h:0/db", "postgresql://h:99999/db",
                                  "postgresql://h:port/db", "postgresql://u:pw@h:x/db"])
def test_a_bad_port_is_refused_with_the_password_masked(text: str) -> None:
    with pytest.raises(UsageError, match="bad host or port") as info:
        parse_database_url(text)
    assert "pw@" not in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["postgresql://ci:hunter2@db/registry",
                                  "postgresql://ci@db/registry?password=hunter2",
                                  "postgresql://ci:@db/registry"])
def test_a_url_with_a_password_is_never_stored(text: str) -> None:
    with pytest.raises(UsageError) as info:
        refuse_stored_password(text)
    message = str(info.value)
    assert "hunter2" not in message
    assert "PGPASSWORD" in message and "pgpass" in message and "service" in message


def test_a_url_without_a_password_may_be_stored() -> None:
    assert refuse_stored_password("postgresql://ci@db:5432/registry").database == "registry"


@pytest.mark.parametrize(("text", "shown"), [
    ("postgresql://ci:hunter2@db/r", "postgresql://ci:***@db/r"),
    ("postgresql://ci:p%40ss@db/r?sslmode=require", "postgresql://ci:***@db/r?sslmode=require"),
    ("postgresql://ci@db/r?sslmode=require&password=hunter2",
     "postgresql://ci@db/r?sslmode=require&password=***"),
    ("postgresql://ci:a@b@db/r", "postgresql://ci:***@db/r"),
    ("postgresql://ci@db/r", "postgresql://ci@db/r"),
    ("not a url", "not a url"),
])
def test_passwords_are_masked_for_display(text: str, shown: str) -> None:
    assert mask_password(text) == shown
