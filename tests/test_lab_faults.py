"""An SSH device's lock and faults, for real: a held lock, a killed session, a dead server,
SIGTERM to devtrack, an unreachable host and a refused key (tests/sshserver.py)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshserver import SshLab

LONG_BODY = "target_rel_ci = 0.0001\n"  # with min_time_s = max_time_s: the loop runs them out


def write_profile(ws: Path, lab: SshLab, name: str = "pi4", **kwargs: object) -> None:
    (ws / "device_profiles" / f"{name}.toml").write_text(lab.profile_toml(name, **kwargs))


def long_profile(ws: Path, lab: SshLab, name: str = "pi4-long") -> None:
    text = lab.profile_toml(name, body=LONG_BODY).replace(
        "min_time_s = 0.2\nmax_time_s = 0.5", "min_time_s = 20\nmax_time_s = 20").replace(
        "timeout_s = 30", "timeout_s = 60")
    (ws / "device_profiles" / f"{name}.toml").write_text(text)


@contextlib.contextmanager
def held_lock(lab: SshLab) -> Iterator[int]:
    """Hold the device's lock as another measurement would (flock + holder text)."""
    lab.workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lab.workdir / "device.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"holder": "ci@runner7", "pid": 4242, "what": "bench",
                                 "since": "2026-12-05T10:00:00+00:00"}).encode())
        yield fd
    finally:
        os.close(fd)


def opened_by_another_process(path: Path) -> bool:
    """Whether a process other than this one has ``path`` open (Linux: /proc/PID/fd)."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        if fd_dir.parent.name == str(os.getpid()):
            continue
        try:
            if any(os.readlink(link) == str(path) for link in fd_dir.iterdir()):
                return True
        except OSError:  # the process exited, or is not ours to read
            continue
    return False


def release_once_waited_on(fd: int, path: Path, after_s: float, bound_s: float = 60.0) -> None:
    """Unlock ``fd`` ``after_s`` seconds after another process opened ``path`` (the device's
    supervisor trying the lock), or after ``bound_s`` at the latest."""
    deadline = time.monotonic() + bound_s
    while not opened_by_another_process(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(after_s)
    fcntl.flock(fd, fcntl.LOCK_UN)


def lock_is_free(lab: SshLab) -> bool:
    fd = os.open(lab.workdir / "device.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def wait_for(condition, timeout_s: float = 30.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def device_workers(lab: SshLab) -> list[int]:
    """Worker processes running on the device's Python (there is no other user of it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv[0] == str(lab.device_python).encode() and b"devtrack.bench.worker" in argv:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        return (Path(f"/proc/{pid}/stat").read_text().split()[2]) != "Z"
    return False


def stored_runs(ws: Path) -> list[dict]:
    with contextlib.closing(sqlite3.connect(ws / ".devtrack" / "devtrack.db")) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT status, error, started_at, finished_at, details FROM runs ORDER BY id")]


def start_bench(ws: Path, profile: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DEVTRACK_USER": "tester"}
    return subprocess.Popen([sys.executable, "-m", "devtrack", "bench", "kws@1.0",
                             "--profile", profile], cwd=ws, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def ws(in_ws: Path, ssh_lab: SshLab, mlp_onnx: Path, run_cli) -> Path:
    write_profile(in_ws, ssh_lab)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    return in_ws


def test_a_busy_device_fails_after_lock_timeout_naming_the_holder(ws: Path, ssh_lab: SshLab,
                                                                   run_cli) -> None:
    write_profile(ws, ssh_lab, "pi4-impatient", extra_ssh="lock_timeout_s = 1\n")
    with held_lock(ssh_lab):
        result = run_cli("bench", "kws@1.0", "--profile", "pi4-impatient", "--json")
    assert result.exit_code == 1
    run = json.loads(result.out)[0]
    assert run["status"] == "failed"
    assert run["error"].startswith("device busy: held by ci@runner7 pid 4242 since "
                                   "2026-12-05T10:00:00+00:00 (bench); waited 1 s")
    assert "ssh.lock_timeout_s = 1" in run["error"]
    # while it waited, the log said who holds the device
    assert ("kws@1.0 on pi4-impatient: waiting for pi4-impatient: held by ci@runner7 pid 4242"
            in result.err)


def test_a_second_measurement_waits_for_the_lock_then_runs(ws: Path, ssh_lab: SshLab,
                                                           run_cli) -> None:
    with held_lock(ssh_lab) as fd:
        # Let go 1 s after the measurement started waiting (a fixed delay from now would race
        # with connecting and shipping the worker on a loaded machine).
        lock_path = ssh_lab.workdir / "device.lock"
        threading.Thread(target=release_once_waited_on, args=(fd, lock_path, 1.0),
                         daemon=True).start()
        result = run_cli("bench", "kws@1.0", "--profile", "pi4", "--json")
    assert result.exit_code == 0, result.err
    run = stored_runs(ws)[-1]
    assert run["status"] == "ok"
    lock = json.loads(run["details"])["isolation"]["device_lock"]
    assert lock["waited_s"] >= 1.0
    # the run's own times bound the time it held the device
    assert run["started_at"] <= lock["acquired_at"] <= lock["released_at"] <= run["finished_at"]


def test_killed_session_is_a_failed_run_naming_the_connection_and_frees_the_device(
        ws: Path, ssh_lab: SshLab, run_cli) -> None:
    long_profile(ws, ssh_lab)
    bench = start_bench(ws, "pi4-long")
    try:
        wait_for(lambda: device_workers(ssh_lab), what="the worker on the device")
        worker = device_workers(ssh_lab)[0]
        for session in ssh_lab.session_pids("supervise"):
            os.killpg(session, signal.SIGKILL)  # the device's session dies mid-run
        _out, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 1, err
    assert "Traceback" not in err
    run = stored_runs(ws)[-1]
    assert run["status"] == "failed"
    assert run["error"].startswith("lost the connection to pi4-long (ssh://tester@127.0.0.1:")
    wait_for(lambda: not alive(worker), 10, "the orphaned worker to die")
    assert lock_is_free(ssh_lab)
    after = run_cli("bench", "kws@1.0", "--profile", "pi4", "--json")
    assert after.exit_code == 0 and json.loads(after.out)[0]["status"] == "ok"


def test_a_dead_server_mid_run_fails_the_run_and_the_next_one_proceeds(
        ws: Path, ssh_lab: SshLab, run_cli) -> None:
    long_profile(ws, ssh_lab)
    bench = start_bench(ws, "pi4-long")
    try:
        wait_for(lambda: device_workers(ssh_lab), what="the worker on the device")
        worker = device_workers(ssh_lab)[0]
        ssh_lab.kill()  # every connection drops at once
        _out, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
        if ssh_lab.proc is None:
            ssh_lab.start()
    assert bench.returncode == 1, err
    run = stored_runs(ws)[-1]
    assert run["status"] == "failed"
    assert run["error"].startswith("lost the connection to pi4-long")
    assert "closed by remote host" in run["error"] or "ssh exit 255" in run["error"]
    # the device notices its stdin closed: the worker is stopped, the lock released
    wait_for(lambda: not alive(worker), 15, "the device's worker to stop")
    wait_for(lambda: lock_is_free(ssh_lab), 15, "the device lock")
    after = run_cli("bench", "kws@1.0", "--profile", "pi4", "--json")
    assert after.exit_code == 0 and json.loads(after.out)[0]["status"] == "ok"


def test_sigterm_stops_the_worker_on_the_device(ws: Path, ssh_lab: SshLab) -> None:
    long_profile(ws, ssh_lab)
    bench = start_bench(ws, "pi4-long")
    try:
        wait_for(lambda: device_workers(ssh_lab), what="the worker on the device")
        worker = device_workers(ssh_lab)[0]
        bench.send_signal(signal.SIGTERM)
        _out, err = bench.communicate(timeout=30)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 143, err
    assert "Traceback" not in err
    assert not alive(worker)  # stopped before devtrack exited
    assert lock_is_free(ssh_lab)
    run = stored_runs(ws)[-1]
    assert run["status"] == "aborted" and "SIGTERM" in run["error"]


def test_unreachable_host_and_refused_key_fail_within_the_connect_timeout(
        ws: Path, ssh_lab: SshLab, run_cli) -> None:
    from pgserver import free_port

    write_profile(ws, ssh_lab, "gone", target=f"ssh://tester@127.0.0.1:{free_port()}")
    write_profile(ws, ssh_lab, "wrong-key", key=ssh_lab.root / "other_key")
    for profile, message in (("gone", "Connection refused"),
                             ("wrong-key", "Permission denied (publickey)")):
        started = time.monotonic()
        result = run_cli("bench", "kws@1.0", "--profile", profile, "--json")
        assert time.monotonic() - started < 5 + 30  # connect_timeout_s = 5, plus the step slack
        assert result.exit_code == 1
        run = json.loads(result.out)[0]
        assert run["status"] == "failed"
        assert run["error"].startswith(f"cannot reach {profile} (ssh://tester@127.0.0.1:")
        assert message in run["error"]


def test_a_hung_device_is_a_failed_run_after_its_silence_not_a_hang(
        ws: Path, ssh_lab: SshLab, mlp_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from devtrack.bench import remote
    from devtrack.bench.ssh_transport import SshDevice
    from devtrack.core.targets import SshSettings

    monkeypatch.setattr(remote, "SILENCE_S", 3.0)  # the real one is 20 s
    monkeypatch.setattr(remote, "HANG_UP_WAIT_S", 1.0)  # a frozen device cannot stop anyway
    device = SshDevice.of("pi4", ssh_lab.target,
                          SshSettings(options=tuple(ssh_lab.options()), connect_timeout_s=5))
    job = {"artifact_path": str(mlp_onnx), "format": "onnx", "options": {},
           "sha256": hashlib.sha256(mlp_onnx.read_bytes()).hexdigest(),
           "measurement": {"warmup_runs": 2, "min_runs": 5, "min_time_s": 20,
                           "max_time_s": 20, "target_rel_ci": 0.0001}}
    stopped: list[int] = []

    def freeze() -> None:  # the device's supervisor stops answering (SIGSTOP), mid-run
        wait_for(lambda: device_workers(ssh_lab), what="the worker on the device")
        holder = json.loads((ssh_lab.workdir / "device.lock").read_text())
        os.kill(holder["device_pid"], signal.SIGSTOP)
        stopped.append(holder["device_pid"])

    freezer = threading.Thread(target=freeze)
    freezer.start()
    started = time.monotonic()
    try:
        result = remote.run_remote_job(job, device, threads=1, cpu_affinity=None,
                                       memory_limit_mb=None, timeout_s=60)
    finally:
        freezer.join(timeout=60)
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)  # it then sees its stdin closed and cleans up
    assert time.monotonic() - started < 20  # the measurement alone would have taken 20 s
    assert result["status"] == "failed"
    assert result["error"].startswith("lost the connection to pi4 (ssh://tester@127.0.0.1:")
    assert "no word from the device for 3 s during " in result["error"]
    wait_for(lambda: lock_is_free(ssh_lab), 15, "the device lock after the supervisor resumed")
    wait_for(lambda: not device_workers(ssh_lab), 15, "the device's worker to stop")
