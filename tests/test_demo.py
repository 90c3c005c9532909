"""``devtrack demo``: a real workspace, built offline, whose figures all come from measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_errors import assert_clean_error


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from devtrack.cli import main

    root = tmp_path_factory.mktemp("demo") / "ws"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo", str(root), "--no-tui", "--json"])
    assert code == 0
    return root, json.loads(out.getvalue())


def test_demo_builds_four_releases_with_a_believable_history(demo_ws, run_cli) -> None:
    root, summary = demo_ws
    assert [r["version"] for r in summary["releases"]] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    formats = {r["version"]: (r["format"], r["quantization"]) for r in summary["releases"]}
    assert formats["1.1.0"] == ("onnx", "int8 dynamic")
    assert formats["1.2.0"][0] == "tflite"
    sizes = {r["version"]: r["size_bytes"] for r in summary["releases"]}
    assert sizes["1.1.0"] < sizes["1.0.0"] / 3
    assert summary["deployed"] == {"ci-host": "1.0.0", "big-core-1t": "1.1.0"}
    assert summary["checks"]["digits-mlp@1.3.0 on big-core-1t"] is False
    shown = json.loads(run_cli("show", "digits-mlp@1.3.0", "--json", "-w", root).out)
    assert shown["status"] == "rejected"
    assert shown["data_version"] == "digits-2024-06" and shown["parent"] == "1.1.0"
    assert shown["config"]["architecture"]["hidden"] == [1024, 1024]


def test_every_demo_figure_is_a_real_measurement(demo_ws, run_cli) -> None:
    root, _ = demo_ws
    accuracies = {}
    for version in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        runs = json.loads(run_cli("results", f"digits-mlp@{version}", "--json", "-w", root).out)
        assert {r["profile"] for r in runs} == {"ci-host", "big-core-1t"}
        for run in runs:
            assert run["status"] == "ok" and run["n"] >= 20 and run["p50_ms"] > 0
            assert run["dataset"] == "digits-test" and run["samples_evaluated"] == 539
        accuracies[version] = runs[0]["accuracy"]
    assert accuracies["1.3.0"] < accuracies["1.0.0"] - 0.03
    assert accuracies["1.0.0"] > 0.9
    assert run_cli("audit", "verify", "-w", root).exit_code == 0


def test_demo_refuses_an_existing_workspace(demo_ws, run_cli) -> None:
    root, _ = demo_ws
    assert_clean_error(run_cli("demo", root, "--no-tui"), "already holds a devtrack workspace")


@pytest.mark.parametrize("variable", ["DEVTRACK_DATABASE_URL", "DEVTRACK_ARTIFACTS_URL"])
def test_demo_never_writes_to_a_team_store(variable: str, tmp_path: Path, run_cli,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, "postgresql://ci@127.0.0.1:1/devtrack"
                       if variable == "DEVTRACK_DATABASE_URL" else str(tmp_path))
    assert_clean_error(run_cli("demo", tmp_path / "demo", "--no-tui"), f"${variable} is set")
    assert not (tmp_path / "demo").exists()


def test_model_at_deployed_resolves_on_the_profile_given(demo_ws, run_cli) -> None:
    root, _ = demo_ws
    runs = json.loads(run_cli("results", "digits-mlp@deployed", "-p", "big-core-1t", "--json",
                              "-w", root).out)
    assert {r["version"] for r in runs} == {"1.1.0"}
    assert_clean_error(run_cli("results", "digits-mlp@deployed", "-w", root),
                       "give exactly one --profile")
    assert_clean_error(run_cli("results", "digits-mlp@deployed", "-p", "iot-256mb", "-w", root),
                       "nothing of digits-mlp is deployed on iot-256mb")
