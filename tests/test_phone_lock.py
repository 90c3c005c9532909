"""A phone's lock (bench/phone_lock.py), for real: the lock's shell scripts run in a real
/bin/sh on the stand-in adb's phone folder (tests/fake_adb.py); benches are real
processes where a signal or a second host is involved."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import fake_adb
from tests.fake_adb import Phone
from tests.test_adb_bench import DATA, PHONE, SERIAL

HOLDER = {"holder": "ci@runner7", "pid": 4242, "what": "bench", "token": "t0"}
SINCE = 1_796_464_800  # 2026-12-05T10:00:00Z


@pytest.fixture(name="phone")
def _phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Phone:
    return fake_adb.start(tmp_path, monkeypatch, DATA / "recent_info.log")


@pytest.fixture
def phone_ws(in_ws: Path, mlp_tflite: Path, run_cli, phone: Phone) -> Path:
    (in_ws / "device_profiles" / "pixel8.toml").write_text(PHONE, encoding="utf-8")
    assert run_cli("register", mlp_tflite, "-m", "kws", "-v", "1.0.0").exit_code == 0
    return in_ws


def lock_dir(phone: Phone) -> Path:
    return phone.state / "device" / "data" / "local" / "tmp" / "devtrack" / "lock"


def hold(phone: Phone, expires: float, holder: dict[str, Any] = HOLDER) -> Path:
    """Lock the phone as another host's measurement would have (the holder file's format)."""
    path = lock_dir(phone)
    path.mkdir(parents=True)
    (path / "holder").write_text(f"{int(expires)} {SINCE} {json.dumps(holder)}\n")
    return path


def lock_attempts(phone: Phone) -> int:
    return sum(1 for c in phone.calls() if c[2:3] == ["shell"] and "mkdir /data" in c[-1])


def runs(run_cli) -> list[dict[str, Any]]:
    return json.loads(run_cli("results", "kws@1.0.0", "--json").out)


def details(ws: Path) -> dict[str, Any]:
    import sqlite3

    with sqlite3.connect(ws / ".devtrack" / "devtrack.db") as conn:
        (text,) = conn.execute("SELECT details FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    return dict(json.loads(text))


def test_a_held_phone_makes_a_bench_wait_then_run(phone_ws: Path, phone: Phone,
                                                  run_cli) -> None:
    held = hold(phone, time.time() + 3600)

    def release_after_two_tries() -> None:  # let go 1 s after the bench found it busy
        deadline = time.monotonic() + 60
        while lock_attempts(phone) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        shutil.rmtree(held)

    releaser = threading.Thread(target=release_after_two_tries, daemon=True)
    releaser.start()
    result = run_cli("bench", "kws@1.0.0", "-p", "pixel8")
    releaser.join(5)
    assert result.exit_code == 0, result.err
    assert ("kws@1.0.0 on pixel8: waiting for pixel8: held by ci@runner7 pid 4242 since "
            "2026-12-05T10:00:00Z (bench)") in result.err
    lock = details(phone_ws)["isolation"]["device_lock"]
    assert lock["waited_s"] >= 1.0 and lock["held_s"] > 0
    assert runs(run_cli)[0]["status"] == "ok"
    assert not lock_dir(phone).exists()  # released after the run


def test_a_phone_busy_past_lock_timeout_fails_naming_the_holder(phone_ws: Path, phone: Phone,
                                                                run_cli) -> None:
    (phone_ws / "device_profiles" / "pixel8.toml").write_text(
        PHONE + "[adb]\nlock_timeout_s = 1\n")
    hold(phone, time.time() + 3600)
    result = run_cli("bench", "kws@1.0.0", "-p", "pixel8")
    assert result.exit_code == 1 and "Traceback" not in result.err
    run = runs(run_cli)[0]
    assert run["status"] == "failed"
    assert run["error"] == ("device busy: held by ci@runner7 pid 4242 since "
                            "2026-12-05T10:00:00Z (bench); waited 1 s "
                            "(adb.lock_timeout_s = 1)")
    assert phone.benchmark_commands() == [] and phone.pushes() == []
    assert lock_dir(phone).exists()  # someone else's lock is left alone


def test_a_stale_lease_is_taken_over_and_the_run_says_so(phone_ws: Path, phone: Phone,
                                                         run_cli) -> None:
    hold(phone, time.time() - 5)  # a host that crashed mid-measurement
    result = run_cli("bench", "kws@1.0.0", "-p", "pixel8", "--json")
    assert result.exit_code == 0, result.err
    run = runs(run_cli)[0]
    assert run["status"] == "ok"
    (warning,) = [w for w in run["warnings"] if "stale lock" in w]
    assert warning.startswith(f"took over a stale lock on {SERIAL}: held by ci@runner7 pid "
                              "4242 since 2026-12-05T10:00:00Z (bench), its lease ended at ")
    assert details(phone_ws)["isolation"]["device_lock"]["took_over"]["holder"] == "ci@runner7"
    assert not lock_dir(phone).exists()


def test_the_lock_is_held_during_the_run_with_a_lease_and_gone_after_a_failed_one(
        phone_ws: Path, phone: Phone, run_cli) -> None:
    phone.configure(output=str(DATA / "crashed_allocate.log"), exit_code=1)
    assert run_cli("bench", "kws@1.0.0", "-p", "pixel8").exit_code == 1
    assert runs(run_cli)[0]["status"] == "failed"
    assert not lock_dir(phone).exists()
    lock = details(phone_ws)["isolation"]["device_lock"]
    # the lease: timeout_s (20) + the push allowance + a margin, in the phone's clock
    assert lock["lease_s"] >= 20 + 120 and lock["waited_s"] < 5


def start_bench(ws: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "devtrack", "bench", "kws@1.0.0", "-p",
                             "pixel8"], cwd=ws, env=dict(os.environ), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, timeout_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_sigterm_d_bench_releases_the_phone(phone_ws: Path, phone: Phone, run_cli) -> None:
    phone.configure(sleep_s=30)
    bench = start_bench(phone_ws)
    try:
        wait_for(lambda: phone.benchmark_commands() != [])
        holder = (lock_dir(phone) / "holder").read_text()
        assert f'"pid": {bench.pid}' in holder  # held by that bench, while it measures
        listed = {r["profile"]: r for r in json.loads(run_cli("lab", "--json").out)}
        assert listed["pixel8"]["holder"]["pid"] == bench.pid  # `devtrack lab` says who
        bench.send_signal(signal.SIGTERM)
        _out, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 143, err
    assert "Traceback" not in err
    assert not lock_dir(phone).exists()
    assert runs(run_cli)[0]["status"] == "aborted"


def test_two_benches_on_one_phone_take_turns(phone_ws: Path, phone: Phone) -> None:
    phone.configure(sleep_s=1.0)
    benches = [start_bench(phone_ws), start_bench(phone_ws)]
    try:
        for bench in benches:
            _out, err = bench.communicate(timeout=120)
            assert bench.returncode == 0, err
    finally:
        for bench in benches:
            if bench.poll() is None:
                bench.kill()
    ran = [json.loads(line) for line in
           (phone.state / "benchmarks.jsonl").read_text().splitlines()]
    assert len(ran) == 2
    (_, first_end), (second_start, _) = sorted(ran)
    assert first_end <= second_start  # never at once on the phone
    assert not lock_dir(phone).exists()


def test_lab_says_who_holds_a_phone(phone_ws: Path, phone: Phone, run_cli) -> None:
    listed = {r["profile"]: r for r in json.loads(run_cli("lab", "--json").out)}
    assert listed["pixel8"]["holder"] is None
    hold(phone, time.time() + 3600)
    listed = {r["profile"]: r for r in json.loads(run_cli("lab", "--json").out)}
    assert listed["pixel8"]["holder"]["holder"] == "ci@runner7"
    table = run_cli("lab")
    assert "held by ci@runner7 pid 4242" in table.out
    checked = run_cli("lab", "check", "pixel8")
    assert checked.exit_code == 0
    assert ("held by ci@runner7 pid 4242 since 2026-12-05T10:00:00Z (bench)"
            in checked.out)


def test_a_stop_request_while_waiting_or_measuring_leaves_no_lock(
        phone_ws: Path, phone: Phone, mlp_tflite: Path) -> None:
    """The app's ctrl+x raises Aborted from the progress callback: while the phone is busy
    (nothing taken, the other holder's lock kept) and while measuring (the lock released)."""
    import hashlib

    from devtrack.bench.adb import run_on_phone
    from devtrack.errors import Aborted
    from devtrack.profiles import load_profile

    job = {"artifact_path": str(mlp_tflite),
           "sha256": hashlib.sha256(mlp_tflite.read_bytes()).hexdigest()}
    phases: list[str] = []

    def stop_on_third(p: Any) -> None:
        phases.append(p.phase)
        if len(phases) >= 3:
            raise Aborted("measurement stopped on request")

    held = hold(phone, time.time() + 3600)
    with pytest.raises(Aborted):
        run_on_phone(job, load_profile("pixel8", phone_ws), progress=stop_on_third)
    assert phases[0].startswith("waiting for pixel8: held by ci@runner7 pid 4242")
    assert held.exists() and "ci@runner7" in (held / "holder").read_text()
    shutil.rmtree(held)
    phone.configure(sleep_s=30)
    phases.clear()
    with pytest.raises(Aborted):
        run_on_phone(job, load_profile("pixel8", phone_ws), progress=stop_on_third)
    assert phases == ["measure"] * 3
    assert not lock_dir(phone).exists()
