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
    write_profile(in_ws, ssh_lab)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    first = run_cli("bench", "kws@1.0", "--profile", "pi4", "--json")
    assert first.exit_code == 0, first.err
    run = json.loads(first.out)[0]
    assert run["status"] == "ok", run
    shown = run_cli("results", "kws@1.0", "--json")
    stored = json.loads(shown.out)[0]
    assert stored["n"] >= 5 and stored["p50_ms"] > 0
    sha = stored.get("sha256") or json.loads(run_cli("show", "kws@1.0", "--json").out)["sha256"]
    assert (ssh_lab.workdir / "blobs" / sha).is_file()  # the artifact was sent, by sha256
    assert len(list((ssh_lab.workdir / "app").glob("devtrack-*.pyz"))) == 1
