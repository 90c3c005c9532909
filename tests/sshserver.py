"""A throwaway SSH "device" on 127.0.0.1 for the device-lab tests: a real server, a real client.

The server is asyncssh's (``tests/ssh_server_main.py``, its own process) on a free port, with
a host key and one authorised client key made for the session in a temp dir; the real
OpenSSH client reaches it with ``-F /dev/null -i KEY -o UserKnownHostsFile=…``, so nothing of
the user's ~/.ssh is read. Commands run through ``/bin/sh -c`` in a home of their own, with
``python3`` on PATH being the *device* interpreter: a separate venv whose site-packages points
(by a ``.pth`` line) at the test venv's site-packages, so numpy and the runtimes import there,
but devtrack does not: its editable-install hook is a ``.pth`` file in the test venv's
site-packages, which Python only reads in a site directory, not in a path added this way.
(``test_lab_ssh.py`` checks that ``import devtrack`` fails there.) When the server cannot
start, a test that needs it fails under CI (env ``CI``) and is skipped elsewhere, with the
reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pgserver import free_port, in_ci

START_TIMEOUT_S = 20
SERVER = Path(__file__).with_name("ssh_server_main.py")
USER = "tester"


class SshUnavailable(Exception):
    """The test SSH server could not be started; ``str()`` says why."""


@dataclass
class SshLab:
    """A running test server and the device it stands for."""

    root: Path
    port: int
    client_key: Path
    known_hosts: Path
    device_venv: Path
    home: Path
    sessions: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"ssh://{USER}@127.0.0.1:{self.port}"

    @property
    def device_python(self) -> Path:
        return self.device_venv / "bin" / "python3"

    @property
    def workdir(self) -> Path:
        return self.home / ".cache" / "devtrack"

    def options(self, key: Path | None = None) -> list[str]:
        return ["-F", "/dev/null", "-i", str(key or self.client_key),
                "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes"]

    def profile_toml(self, name: str, *, extra_ssh: str = "", target: str | None = None,
                     body: str = "", key: Path | None = None, execution: str = "") -> str:
        options = ", ".join(f'"{o}"' for o in self.options(key))
        return (f'name = "{name}"\nformats = ["onnx", "tflite"]\n'
                f'[execution]\ntarget = "{target or self.target}"\nthreads = 1\n'
                f"timeout_s = 30\n{execution}"
                f"[measurement]\nwarmup_runs = 2\nmin_runs = 5\nmin_time_s = 0.2\n"
                f"max_time_s = 0.5\n{body}"
                f"[ssh]\noptions = [{options}]\nconnect_timeout_s = 5\n{extra_ssh}")

    def start(self) -> None:
        env = {"HOME": str(self.home), "PATH": f"{self.device_venv / 'bin'}:/usr/bin:/bin",
               "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "ignore", str(SERVER), str(self.port),
             str(self.root / "host_key"), str(self.root / "client_key.pub"),
             str(self.sessions)],
            cwd=self.home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        assert self.proc.stdout is not None
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_TIMEOUT_S):
            self.kill()
            raise SshUnavailable(f"the test SSH server did not start in {START_TIMEOUT_S} s")
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            self.kill()
            raise SshUnavailable(f"the test SSH server failed: {line} {err.strip()[-300:]}")

    def kill(self) -> None:
        """SIGKILL the server (its connections drop, as when a link dies)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def session_pids(self, containing: str = "") -> list[int]:
        """Process ids (each a session/group leader) of the commands running now."""
        pids = []
        for marker in self.sessions.iterdir():
            with contextlib.suppress(OSError, ValueError):
                if containing in marker.read_text(encoding="utf-8"):
                    pids.append(int(marker.name))
        return pids


def _make_keys(root: Path) -> None:
    import asyncssh

    for name in ("host_key", "client_key", "other_key"):
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(root / name))
        key.write_public_key(str(root / f"{name}.pub"))
        os.chmod(root / name, 0o600)


def make_device_venv(path: Path, *, with_host_packages: bool = True) -> Path:
    """A venv (no pip) that sees the test venv's packages through one ``.pth`` path line."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   capture_output=True, timeout=120)
    if with_host_packages:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site = path / "lib" / version / "site-packages"
        (site / "host_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n",
                                                encoding="utf-8")
    return path


def start_lab(root: Path) -> SshLab:
    if shutil.which("ssh") is None:
        raise SshUnavailable("no OpenSSH client (ssh) on PATH; install openssh-client")
    try:
        import asyncssh  # noqa: F401
    except ImportError as exc:
        raise SshUnavailable(
            f"asyncssh is not installed (pip install -e '.[test]'): {exc}") from None
    _make_keys(root)
    port = free_port()
    host_pub = (root / "host_key.pub").read_text().strip()
    known = root / "known_hosts"
    # 127.0.0.1 and localhost: two names of one server, two "boards" to a bench (a board is
    # its host and port)
    known.write_text(f"[127.0.0.1]:{port} {host_pub}\n[localhost]:{port} {host_pub}\n")
    home = root / "home"
    home.mkdir()
    lab = SshLab(root=root, port=port, client_key=root / "client_key", known_hosts=known,
                 device_venv=make_device_venv(root / "device-venv"), home=home,
                 sessions=root / "sessions")
    lab.sessions.mkdir()
    lab.start()
    return lab


@pytest.fixture(scope="session")
def ssh_lab() -> Iterator[SshLab]:
    """One throwaway SSH device per session; fails under CI if it cannot start, else skips."""
    root = Path(tempfile.mkdtemp(prefix="devtrack-sshlab-", dir="/tmp"))
    try:
        lab = start_lab(root)
    except (SshUnavailable, OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        reason = f"test SSH server unavailable: {exc}"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield lab
    finally:
        lab.kill()
        shutil.rmtree(root, ignore_errors=True)
