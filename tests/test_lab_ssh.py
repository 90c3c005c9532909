"""Measuring on an SSH device end to end: the real OpenSSH client, a real server on 127.0.0.1,
a device Python that has numpy and the runtimes but not devtrack (tests/sshserver.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sshserver import SshLab


def write_profile(ws: Path, lab: SshLab, name: str = "pi4", **kwargs: object) -> None:
    (ws / "device_profiles" / f"{name}.toml").write_text(lab.profile_toml(name, **kwargs))


def test_device_python_has_the_runtimes_but_not_devtrack(ssh_lab: SshLab) -> None:
    # (the test venv's site-packages holds devtrack/_shipped_profiles/, data of the editable
    # install: "devtrack" alone imports there as an empty namespace package, nothing more)
    probe = "import numpy, onnxruntime, ai_edge_litert; import devtrack.bench.worker"
    done = subprocess.run([str(ssh_lab.device_python), "-c", probe], capture_output=True,
                          text=True, timeout=60, cwd=ssh_lab.home)
    assert done.returncode == 1
    assert "No module named 'devtrack.bench'" in done.stderr


def test_shipment_holds_the_measurement_code_only() -> None:
    from devtrack.bench.shipment import build_shipment, module_closure

    app = build_shipment()
    assert {"devtrack.bench.worker", "devtrack.bench.interleaved", "devtrack.bench.op_pair",
            "devtrack.bench.evaluation", "devtrack.runtimes.onnxruntime_rt",
            "devtrack.runtimes.litert_rt", "devtrack.core.stats"} <= set(app.modules)
    for absent in ("devtrack.store", "devtrack.workspace", "devtrack.benchmarking",
                   "devtrack.cli", "devtrack.tui.app", "devtrack.bench.remote"):
        assert absent not in app.modules
    assert app.name.startswith("devtrack-") and app.sha256[:16] in app.name
    assert set(module_closure()) == set(app.modules)  # built from the same walk


def test_bench_on_an_ssh_profile_measures_on_the_device(in_ws: Path, ssh_lab: SshLab,
                                                        mlp_onnx: Path, run_cli) -> None:
    write_profile(in_ws, ssh_lab, execution="cpu_affinity = [0]\n")
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    first = run_cli("bench", "kws@1.0", "--profile", "pi4", "--json")
    assert first.exit_code == 0, first.err
    run = json.loads(first.out)[0]
    assert run["status"] == "ok", run
    shown = run_cli("results", "kws@1.0", "--json")
    stored = json.loads(shown.out)[0]
    assert stored["n"] >= 5 and stored["p50_ms"] > 0
    env = stored["environment"]  # the worker's own view, on the device
    assert env["cpu_affinity"] == [0] and env["thread_env"]["OMP_NUM_THREADS"] == "1"
    assert env["kernel"] and env["host"]
    sha = stored.get("sha256") or json.loads(run_cli("show", "kws@1.0", "--json").out)["sha256"]
    assert (ssh_lab.workdir / "blobs" / sha).is_file()  # the artifact was sent, by sha256
    assert len(list((ssh_lab.workdir / "app").glob("devtrack-*.pyz"))) == 1


def test_accuracy_and_fidelity_are_measured_on_the_device(in_ws: Path, ssh_lab: SshLab,
                                                          tmp_path: Path, run_cli) -> None:
    import numpy as np

    from devtrack.builders import mlp_reference, mlp_weights
    from devtrack.builders.onnx_models import build_mlp

    weights = mlp_weights(16, (12,), 10, seed=3)
    model = build_mlp(tmp_path / "float.onnx", weights=weights)
    x = np.random.default_rng(7).standard_normal((200, 16)).astype(np.float32)
    labels = mlp_reference(weights, x).argmax(axis=1)
    labels[::4] = (labels[::4] + 1) % 10  # a quarter wrong on purpose: accuracy 0.75
    np.savez(tmp_path / "digits.npz", input=x, labels=labels)
    write_profile(in_ws, ssh_lab)
    run_cli("register", model, "-m", "kws", "-v", "1.0")
    run_cli("register", model, "-m", "kws", "-v", "1.1", "--parent", "1.0")
    assert run_cli("dataset", "add", tmp_path / "digits.npz", "--name", "digits").exit_code == 0
    result = run_cli("bench", "kws@1.1", "--profile", "pi4", "--eval", "digits", "--json")
    assert result.exit_code == 0, result.err
    run = json.loads(result.out)[0]
    assert run["status"] == "ok", run
    assert run["samples_evaluated"] == 200
    assert run["accuracy"] == 0.75
    assert run["fidelity"]["top1_agreement"] == 1.0  # against the parent: the same weights


def test_lab_check_reports_a_ready_device(in_ws: Path, ssh_lab: SshLab, run_cli) -> None:
    write_profile(in_ws, ssh_lab)
    result = run_cli("lab", "check", "pi4", "--json")
    assert result.exit_code == 0, result.err
    report = json.loads(result.out)[0]
    assert report["ready"] and report["reachable"] and report["problems"] == []
    assert report["info"]["python"] == str(ssh_lab.device_python)
    assert report["info"]["logical_cores"] >= 1 and report["info"]["cpu_model"]
    import numpy
    import onnxruntime

    assert report["versions"]["numpy"] == numpy.__version__
    assert report["versions"]["onnxruntime"] == onnxruntime.__version__
    text = run_cli("lab", "check", "pi4")
    assert text.exit_code == 0 and "pi4 (ssh://tester@127.0.0.1:" in text.out
    assert "ready" in text.out and f"numpy {numpy.__version__}" in text.out


def test_lab_check_names_what_the_device_lacks(in_ws: Path, ssh_lab: SshLab,
                                               tmp_path: Path, run_cli) -> None:
    from sshserver import make_device_venv

    bare = make_device_venv(tmp_path / "bare", with_host_packages=False)
    python = bare / "bin" / "python3"
    write_profile(in_ws, ssh_lab, "bare-board", extra_ssh=f'python = "{python}"\n')
    result = run_cli("lab", "check", "bare-board")
    assert result.exit_code == 1
    assert f"onnxruntime is not importable by {python} on bare-board" in result.err
    assert f"numpy is not importable by {python} on bare-board" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "NOT READY" in result.out


def test_lab_check_of_an_unreachable_device_gives_sshs_message(in_ws: Path, ssh_lab: SshLab,
                                                               run_cli) -> None:
    from pgserver import free_port

    write_profile(in_ws, ssh_lab, "gone", target=f"ssh://tester@127.0.0.1:{free_port()}")
    write_profile(in_ws, ssh_lab, "wrong-key", key=ssh_lab.root / "other_key")
    gone = run_cli("lab", "check", "gone")
    assert gone.exit_code == 1 and "Connection refused" in gone.err
    assert gone.err.startswith("error: cannot reach gone (ssh://tester@127.0.0.1:")
    refused = run_cli("lab", "check", "wrong-key", "--json")
    assert refused.exit_code == 1 and "Permission denied" in refused.err
    assert json.loads(refused.out)[0]["reachable"] is False


def test_lab_check_bad_input_is_one_line_exit_2(in_ws: Path, run_cli) -> None:
    from tests.test_cli_errors import assert_clean_error

    assert_clean_error(run_cli("lab", "check", "pi44"), "unknown device profile 'pi44'")
    missing = run_cli("lab", "check")
    assert missing.exit_code == 2 and "Missing argument 'PROFILE...'" in missing.err


def test_lab_lists_targets_reachability_and_who_holds_a_device(in_ws: Path, ssh_lab: SshLab,
                                                               run_cli) -> None:
    import fcntl
    import os

    write_profile(in_ws, ssh_lab)
    ssh_lab.workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(ssh_lab.workdir / "device.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"holder": "ci@runner7", "pid": 4242, "what": "bench",
                                 "since": "2026-12-05T10:00:00+00:00"}).encode())
        rows = {r["profile"]: r for r in json.loads(run_cli("lab", "--json").out)}
        assert rows["pi4"]["reachable"] is True
        assert rows["pi4"]["holder"]["holder"] == "ci@runner7"
        assert rows["ci-host"]["target"] == "local" and rows["ci-host"]["reachable"] is None
        table = run_cli("lab")
        assert "held by ci@runner7 pid 4242" in table.out
    finally:
        os.close(fd)
    rows = {r["profile"]: r for r in json.loads(run_cli("lab", "--json").out)}
    assert rows["pi4"]["holder"] is None  # released: the lock is the open file, not the text


def test_an_ssh_profile_gates_deploys_explains_and_rolls_back_like_a_local_one(
        in_ws: Path, ssh_lab: SshLab, mlp_onnx: Path, mlp_onnx_b: Path, run_cli) -> None:
    write_profile(in_ws, ssh_lab, body="target_rel_ci = 0.5\n[budgets]\n"
                                      "max_latency_regression_pct = 50\n")
    for path, version, parent in ((mlp_onnx, "1.0", None), (mlp_onnx_b, "1.1", "1.0")):
        args = ["register", path, "-m", "kws", "-v", version, "--notes", f"build {version}"]
        assert run_cli(*args, *(["--parent", parent] if parent else [])).exit_code == 0
    first = run_cli("check", "kws@1.0", "--profile", "pi4", "--bench", "--json")
    assert first.exit_code == 0, first.err
    assert run_cli("promote", "kws@1.0", "--to", "approved", "--reason", "ok").exit_code == 0
    assert run_cli("deploy", "kws@1.0", "-p", "pi4", "--reason", "rollout").exit_code == 0
    # the gate re-measures the candidate against the deployed release side by side, there
    gate = run_cli("check", "kws@1.1", "--profile", "pi4", "--bench", "--repeats", "4",
                   "--json")
    assert gate.exit_code == 0, gate.err  # two same-sized models: far within 50%
    profile = json.loads(gate.out)["profiles"][0]
    assert profile["baseline"] == "kws@1.0" and profile["status"] == "pass"
    latency = profile["latency"]  # repeats of interleaved blocks, on the device
    assert latency["n"] >= 4 and latency["ci_low"] <= latency["ratio"] <= latency["ci_high"]
    shas = {json.loads(run_cli("show", f"kws@{v}", "--json").out)["sha256"]
            for v in ("1.0", "1.1")}
    assert all((ssh_lab.workdir / "blobs" / sha).is_file() for sha in shas)
    explained = run_cli("explain", "kws@1.0", "kws@1.1", "--profile", "pi4", "--repeats", "2",
                        "--json")
    assert explained.exit_code == 0, explained.err
    assert json.loads(explained.out)["nodes"]  # per-operator times, profiled on the device
    assert run_cli("deploy", "kws@1.1", "-p", "pi4", "--reason", "next", "--force").exit_code == 0
    back = run_cli("rollback", "kws", "--profile", "pi4", "--dry-run", "--json")
    assert back.exit_code == 0, back.err
    assert json.loads(back.out)["target"] == "1.0"


def test_a_device_without_the_profiles_python_is_reachable_but_not_ready(
        in_ws: Path, ssh_lab: SshLab, mlp_onnx: Path, run_cli) -> None:
    write_profile(in_ws, ssh_lab, "nopy", extra_ssh='python = "/opt/none/python3"\n')
    result = run_cli("lab", "check", "nopy", "--json")
    assert result.exit_code == 1
    assert "/opt/none/python3 is not found on nopy (ssh://tester@127.0.0.1:" in result.err
    assert "(set ssh.python)" in result.err
    report = json.loads(result.out)[0]
    assert report["reachable"] is True and report["ready"] is False
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    bench = run_cli("bench", "kws@1.0", "--profile", "nopy", "--json")
    assert bench.exit_code == 1
    assert json.loads(bench.out)[0]["error"].startswith("/opt/none/python3 is not found on nopy")


def test_the_memory_cap_is_enforced_on_the_device(in_ws: Path, ssh_lab: SshLab,
                                                  mlp_onnx: Path, run_cli) -> None:
    write_profile(in_ws, ssh_lab, "pi4-tiny", execution="memory_limit_mb = 5\n")
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    result = run_cli("bench", "kws@1.0", "--profile", "pi4-tiny", "--json")
    assert result.exit_code == 1
    run = json.loads(result.out)[0]
    assert run["status"] == "failed"
    assert run["error"].startswith("exceeded memory limit of 5 MB (resident ")


def test_two_boards_measure_at_the_same_time_each_under_its_own_lock(
        in_ws: Path, ssh_lab: SshLab, mlp_onnx: Path, run_cli) -> None:
    import sqlite3

    # two "boards": two host names (so two devices to the bench), two workdirs (two locks)
    loop = "min_time_s = 0.2\nmax_time_s = 0.5"
    for name, target in (("board-a", ssh_lab.target),
                         ("board-b", f"ssh://localhost:{ssh_lab.port}")):
        text = ssh_lab.profile_toml(name, target=target, body="target_rel_ci = 0.0001\n",
                                    extra_ssh=f'workdir = "~/{name}"\n')
        (in_ws / "device_profiles" / f"{name}.toml").write_text(
            text.replace(loop, "min_time_s = 1.5\nmax_time_s = 1.5"))
    run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0")
    result = run_cli("bench", "kws@1.0", "-p", "board-a", "-p", "board-b", "--json")
    assert result.exit_code == 0, result.err
    with sqlite3.connect(in_ws / ".devtrack" / "devtrack.db") as conn:
        rows = conn.execute("SELECT profile, details FROM runs ORDER BY profile").fetchall()
    locks = {p: json.loads(d)["isolation"]["device_lock"] for p, d in rows}
    workdirs = {p: json.loads(d)["isolation"]["workdir"] for p, d in rows}
    assert workdirs == {"board-a": str(ssh_lab.home / "board-a"),
                        "board-b": str(ssh_lab.home / "board-b")}
    a, b = locks["board-a"], locks["board-b"]
    # each held its own device's lock, and the two holds overlapped: measured in parallel
    assert a["acquired_at"] < b["released_at"] and b["acquired_at"] < a["released_at"]
