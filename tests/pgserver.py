"""A throwaway PostgreSQL cluster for the test session, and a fresh database per test.

The suite starts its own server (ARCHITECTURE.md, "Testing on PostgreSQL"): the binaries are
found through ``pg_config --bindir`` (or the distribution's ``/usr/lib/postgresql/*/bin``);
``initdb`` writes a cluster into a temp dir under /tmp; ``pg_ctl`` starts it on a free port of
127.0.0.1 with its socket in that dir and ``fsync=off``, and stops it (``-m immediate``) when the
session ends. PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the
unprivileged ``postgres`` user and its programs run through ``runuser``. Connections over TCP
need a password (scram), which the tests read from a passfile (``PGPASSFILE``), as a user's
``~/.pgpass`` would give it. When the server cannot start, a test that needs it fails under CI
(env ``CI``) and is skipped elsewhere with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER = "devtrack"
START_TIMEOUT_S = 30
PG_ENV_PREFIX = "PG"


class ServerUnavailable(Exception):
    """The test cluster could not be started; ``str()`` says why."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres (``DEVTRACK_PG_BINDIR`` overrides
    the search)."""
    forced = os.environ.get("DEVTRACK_PG_BINDIR")
    candidates: list[Path] = [Path(forced)] if forced else []
    pg_config = None if forced else shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            candidates.append(Path(out))
    if not forced:
        candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                               key=lambda p: int(p.split("/")[-2]),
                                               reverse=True)]
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ServerUnavailable("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via "
                            "'pg_config --bindir' or /usr/lib/postgresql/*/bin; install the "
                            "distribution's postgresql package")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A running throwaway cluster: connect as ``SUPERUSER`` over TCP with ``password``."""

    bindir: Path
    root: Path
    port: int
    password: str
    passfile: Path
    run_as: str | None
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres", *, user: str = SUPERUSER) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser on the maintenance database."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def fresh_database(self, template: str = "template0") -> str:
        """A new database copied from ``template``. FILE_COPY (PostgreSQL 15+) copies the
        template's files (a checkpoint, cheap with fsync off): 0.11 s here against 0.41 s for
        15's default WAL_LOG, which writes every page of the copy to the WAL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        strategy = " STRATEGY FILE_COPY" if self.version >= 150000 else ""
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
        return name

    @functools.cached_property
    def version(self) -> int:
        """The server's ``server_version_num`` (150004 for 15.4)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        return int(row[0]) if row else 0

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                    "-w", "-t", "20", "stop"], check=False)
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: end the postmaster we started
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(server: PgServer | None, argv: list[str], *, run_as: str | None = None,
         check: bool = True, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    who = server.run_as if server is not None else run_as
    if who is not None:
        argv = ["runuser", "-u", who, "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        text = (result.stderr or result.stdout).strip().splitlines()
        raise ServerUnavailable(f"{' '.join(argv)} failed: {text[-1] if text else result}")
    return result


def start_server(passfile_dir: Path, *, durable: bool = False) -> PgServer:
    """initdb and start a cluster; raise ServerUnavailable saying why not. Tests run it with
    fsync off; ``durable`` keeps PostgreSQL's defaults (benchmarks compare with SQLite's)."""
    bindir = find_bindir()
    run_as = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise ServerUnavailable("running as root, and there is no 'postgres' user to run "
                                    "the test cluster as (PostgreSQL refuses root)") from None
        if shutil.which("runuser") is None:
            raise ServerUnavailable("running as root without 'runuser' to start PostgreSQL as "
                                    "the 'postgres' user")
        run_as = "postgres"
    reap_orphans(bindir, run_as)
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir="/tmp"))
    (root / OWNER_FILE).write_text(str(os.getpid()))  # reap_orphans: who started it
    password = secrets.token_hex(16)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if run_as is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    os.chmod(root, 0o700)
    os.chmod(pwfile, 0o600)
    passfile = passfile_dir / "pgpass"
    server = PgServer(bindir, root, 0, password, passfile, run_as)
    try:
        _run(server, [str(bindir / "initdb"), "-D", str(server.datadir), "-U", SUPERUSER,
                      "--auth-local=trust", "--auth-host=scram-sha-256",
                      f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
        pwfile.unlink()
        for _attempt in range(3):  # the free port may be taken before the server binds it
            server.port = free_port()
            options = f"-p {server.port} -k {root} -h 127.0.0.1 -c max_connections=60"
            if not durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            started = _run(server, [str(bindir / "pg_ctl"), "-D", str(server.datadir), "-o",
                                    options, "-l", str(root / "log"), "-w", "-t",
                                    str(START_TIMEOUT_S), "start"],
                           check=False, timeout=START_TIMEOUT_S + 10)
            if started.returncode == 0:
                break
        else:
            log = (root / "log").read_text(errors="replace").strip().splitlines()
            raise ServerUnavailable(f"pg_ctl start failed: {log[-1] if log else started.stderr}")
        passfile.write_text(f"127.0.0.1:{server.port}:*:{SUPERUSER}:{password}\n")
        passfile.chmod(0o600)
    except BaseException:
        server.stop()
        raise
    return server


ROOT_PREFIX = "devtrack-pg-"
OWNER_FILE = "owner"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(bindir: Path, run_as: str | None) -> None:
    """Stop and remove the clusters of test sessions that died without stopping theirs (a
    killed pytest never runs its fixtures' teardown, and pg_ctl's server outlives it)."""
    for root in Path("/tmp").glob(f"{ROOT_PREFIX}*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours to judge (no owner recorded), or still being created
        if _alive(owner):
            continue
        orphan = PgServer(bindir, root, 0, "", root / "unused", run_as)
        with contextlib.suppress(OSError, subprocess.SubprocessError, ServerUnavailable):
            orphan.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    """One throwaway cluster per session; fails under CI if it cannot start, else skips."""
    try:
        server = start_server(tmp_path_factory.mktemp("pgpass"))
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        reason = f"cannot start a test PostgreSQL server: {exc}"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):  # the developer's own PGHOST, PGPASSWORD, … never leak in
            if name.startswith(PG_ENV_PREFIX):
                patch.delenv(name)
        patch.setenv("PGPASSFILE", str(server.passfile))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A libpq URL (no password in it) of a fresh, empty database of its own, dropped after."""
    name = pg_server.fresh_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)
