"""explain and bisect end to end: real onnxruntime workers on a built line with one bad step.

One module-wide workspace holds ``mm``: 1.0 and 1.1 (4 MatMul layers), 1.2 (a TFLite model
the onnx-only profile cannot run), 1.3 (an ONNX custom op no runtime has: its measurement
fails), 1.4 (4 layers), 1.5 (12 layers: the bad step) and 1.6 (12 layers), each the parent
of the next; and ``other@1.0``. Only explain's and bisect's records are written to it
(``tests/test_investigations.py`` checks those).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtrack.workspace import open_workspace
from tests import hook_server
from tests.test_cli_errors import assert_clean_error
from tests.test_comparison import TINY_PROFILE
from tests.test_diff import make_release

hook = hook_server.hook

LINE = ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6")


@pytest.fixture(scope="module")
def line_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from devtrack.builders.onnx_models import build_custom_op, build_matmul_chain
    from devtrack.builders.tflite_models import build_tflite_mlp
    from devtrack.registry import RegisterRequest, register_release
    from devtrack.workspace import init_workspace

    root = tmp_path_factory.mktemp("explain") / "ws"
    models = tmp_path_factory.mktemp("explain_models")
    ws, _ = init_workspace(root)
    (root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    files = {
        "1.0": build_matmul_chain(models / "c4a.onnx", size=128, layers=4, seed=0),
        "1.1": build_matmul_chain(models / "c4b.onnx", size=128, layers=4, seed=1),
        "1.2": build_tflite_mlp(models / "mlp.tflite"),
        "1.3": build_custom_op(models / "custom.onnx"),
        "1.4": build_matmul_chain(models / "c4c.onnx", size=128, layers=4, seed=4),
        "1.5": build_matmul_chain(models / "c12a.onnx", size=128, layers=12, seed=5),
        "1.6": build_matmul_chain(models / "c12b.onnx", size=128, layers=12, seed=6),
    }
    parent = None
    for version in LINE:
        register_release(ws, RegisterRequest(file=files[version], model="mm", version=version,
                                             parent=parent), cwd=root)
        parent = version
    register_release(ws, RegisterRequest(file=files["1.0"], model="other", version="1.0"),
                     cwd=root)
    ws.close()
    return root


def test_explain_names_the_added_matmuls_as_the_cause(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "explain", "mm@1.4", "mm@1.5", "--profile", "tiny",
                     "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert data["source"] and data["delta_ms"] > 0
    top = data["nodes"][0]
    assert top["op"] == "MatMul" and top["status"] == "added" and top["a_ms"] is None
    assert {n["name"] for n in data["nodes"] if n["status"] == "added"} == (
        {f"mm{i}" for i in range(4, 12)} | {f"relu{i}" for i in range(4, 12)})
    assert all(n["status"] == "same" for n in data["nodes"] if n["name"] in ("mm0", "mm3"))
    assert data["op_types"][0]["op"] == "MatMul"
    assert (data["op_types"][0]["nodes_a"], data["op_types"][0]["nodes_b"]) == (4, 12)
    assert 0.5 < data["attributed_share"] < 1.5  # the benchmark holds it to ±10%
    assert "added MatMul nodes mm4, mm5, mm6" in data["headline"]
    assert "ops MatMul 4→12" in data["headline"]


def test_explain_prints_the_sentence_and_the_ranked_table(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "explain", "mm@1.4", "mm@1.5", "-p", "tiny", "--top", "3")
    assert result.exit_code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "Explain mm@1.4 (A) → mm@1.5 (B) on tiny"
    assert lines[2].startswith("+") and "added MatMul nodes" in lines[2]
    assert "… 21 more nodes" in result.out
    assert "profiling mm@1.4 and mm@1.5 side by side" in result.err


def test_explain_a_tflite_release_from_its_structure(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "explain", "mm@1.1", "mm@1.2", "-p", "tiny", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert data["source"] is None and data["nodes"] == []
    assert "LiteRT's Python API has no per-operator profiler" in data["note"]
    assert "format onnx → tflite" in data["headline"]
    assert "Traceback" not in result.err


def test_explain_a_failed_measurement_is_one_line_exit_1(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "explain", "mm@1.1", "mm@1.3", "-p", "tiny")
    assert result.exit_code == 1, (result.out, result.err)
    lines = [ln for ln in result.err.splitlines() if ln.strip() and "profiling" not in ln]
    assert len(lines) == 1 and "failed" in lines[0] and "FancyGelu" in lines[0], result.err


@pytest.mark.parametrize(("args", "needle"), [
    (("mm@1.0", "mm@9.9", "-p", "tiny"), "9.9"),
    (("mm@1.0", "mm@1.5", "-p", "nosuch"), "nosuch"),
    (("mm@1.0", "other@1.0", "-p", "tiny"), "different models"),
    (("mm@1.0", "mm@1.5", "-p", "tiny", "--repeats", "3"), "even"),
    (("mm@1.0", "mm@1.5", "-p", "tiny", "--repeats", "60"), "timeout_s"),
    (("mm", "mm@1.5", "-p", "tiny"), "mm"),
    (("mm@1.0", "mm@1.5"), "--profile"),
    (("mm@1.0", "mm@1.5", "-p", "tiny", "--top", "0"), "--top"),
])
def test_explain_bad_input_is_one_line_exit_2(line_ws: Path, run_cli, args, needle) -> None:
    assert_clean_error(run_cli("-w", line_ws, "explain", *args), needle)


def test_bisect_finds_the_bad_step_skips_what_cannot_run(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.0", "--bad", "1.6",
                     "--profile", "tiny", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert data["first_bad"] == "mm@1.5" and data["last_good"] == "mm@1.4"
    assert data["path"] == [f"mm@{v}" for v in LINE] and data["path_kind"] == "parent chain"
    steps = {s["ref"]: s for s in data["steps"]}
    assert steps["mm@1.6"]["verdict"] == "bad" and steps["mm@1.6"]["ci_low"] > 1.05
    assert steps["mm@1.5"]["verdict"] == "bad" and steps["mm@1.4"]["verdict"] == "good"
    skipped = {s["ref"]: s["reason"] for s in data["skipped"]}
    assert "tflite" in skipped.get("mm@1.2", "") or "mm@1.2" not in steps
    assert "measurement failed" in skipped.get("mm@1.3", "") or "mm@1.3" not in steps
    assert skipped, "the search passes over the middle: it must meet an unrunnable release"
    assert data["measurements"] <= 4
    assert data["explanation"]["b"] == "mm@1.5" and data["explanation"]["a"] == "mm@1.4"
    assert data["explanation"]["nodes"][0]["status"] == "added"
    assert "bisect mm on tiny: 7 releases along the parent chain" in result.err


def test_bisect_text_shows_plan_steps_and_answer(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.4", "--bad", "1.6",
                     "-p", "tiny", "--no-explain")
    assert result.exit_code == 0, result.err
    assert "first bad: mm@1.5; last good: mm@1.4; 2 side-by-side measurements" in result.out
    assert "recorded as event " in result.out and "devtrack history mm" in result.out
    assert "Explain" not in result.out
    assert "measure mm@1.6 against mm@1.4 side by side" in result.err


def test_bisect_when_bad_is_not_slower_says_so(line_ws: Path, run_cli) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.0", "--bad", "1.1",
                     "-p", "tiny", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    assert data["first_bad"] is None and "nothing to bisect" in data["note"]
    assert data["measurements"] == 1


@pytest.mark.parametrize(("args", "needle"), [
    (("mm", "--good", "9.9", "--bad", "1.6", "-p", "tiny"), "--good"),
    (("mm", "--good", "1.0", "--bad", "9.9", "-p", "tiny"), "--bad"),
    (("mm", "--good", "1.4", "--bad", "1.4", "-p", "tiny"), "same release"),
    (("mm", "--good", "1.5", "--bad", "1.1", "-p", "tiny"), "not before"),
    (("nosuch", "--good", "1.0", "--bad", "1.1", "-p", "tiny"), "nosuch"),
    (("mm", "--good", "1.0", "--bad", "1.6", "-p", "nosuch"), "nosuch"),
    (("mm", "--good", "1.2", "--bad", "1.6", "-p", "tiny"), "does not run tflite"),
    (("mm", "--bad", "1.6", "-p", "tiny"), "--good"),
    (("mm", "--good", "", "--bad", "1.6", "-p", "tiny"), "--good"),
])
def test_bisect_bad_input_is_one_line_exit_2(line_ws: Path, run_cli, args, needle) -> None:
    assert_clean_error(run_cli("-w", line_ws, "bisect", *args), needle)


def test_release_path_follows_the_chain_else_creation_order() -> None:
    from dataclasses import replace

    from devtrack.bisecting import release_path
    from devtrack.errors import UsageError

    line = [replace(make_release(v), id=i, parent=None) for i, v in enumerate("abcde")]
    path, kind = release_path(line, line[1], line[3])
    assert [r.version for r in path] == ["b", "c", "d"] and kind == "creation order"
    chained = [line[0], replace(line[1], parent="a"), line[2], replace(line[3], parent="b"),
               replace(line[4], parent="d")]
    path, kind = release_path(chained, chained[0], chained[4])
    assert [r.version for r in path] == ["a", "b", "d", "e"] and kind == "parent chain"
    with pytest.raises(UsageError, match="not before"):
        release_path(line, line[3], line[1])
    with pytest.raises(UsageError, match="same release"):
        release_path(line, line[2], line[2])


def test_node_samples_skip_the_warmup_and_sum_a_node_within_a_run() -> None:
    from devtrack.runtimes.onnxruntime_rt import node_samples

    def run(ts: int) -> list[dict]:
        return [{"cat": "Session", "name": "model_run", "ts": ts, "dur": 50},
                {"cat": "Node", "name": "mm0_kernel_time", "ts": ts + 1, "dur": 10 + ts,
                 "args": {"op_name": "MatMul", "input_type_shape": [{"float": [1, 64]}]}},
                {"cat": "Node", "name": "loop_kernel_time", "ts": ts + 2, "dur": 3,
                 "args": {"op_name": "Add"}},
                {"cat": "Node", "name": "loop_kernel_time", "ts": ts + 3, "dur": 4,
                 "args": {"op_name": "Add"}}]

    events = run(0) + run(100) + run(200)
    nodes = {n["name"]: n for n in node_samples(events, skip_runs=1)}
    assert nodes["mm0"]["samples_us"] == [110.0, 210.0]
    assert nodes["mm0"]["op"] == "MatMul" and nodes["mm0"]["inputs"] == ["float[1,64]"]
    assert nodes["loop"]["samples_us"] == [7.0, 7.0]
    assert [n["name"] for n in node_samples(events)] == ["mm0", "loop"]


def test_bisect_posts_its_answer_once_to_notify(line_ws: Path, run_cli, hook) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.4", "--bad", "1.6",
                     "-p", "tiny", "--notify", hook.url(), "--json")
    assert result.exit_code == 0, result.err
    assert json.loads(result.out)["first_bad"] == "mm@1.5"
    assert len(hook.requests) == 1
    posted = hook.requests[0].json()
    assert posted["type"] == "failure"
    assert "mm@1.5 is the first release of mm slower than" in posted["title"]
    body = posted["message"]
    assert "Last good: mm@1.4" in body and "Why:" in body and "added MatMul" in body
    assert "Reproduce: devtrack bisect mm --good 1.4 --bad 1.6 --profile tiny" in body
    with open_workspace(line_ws) as ws:
        events = ws.store.events(kind="notify")
    assert json.loads(events[-1]["payload"])["decision"] == "bisect"


def test_bisect_that_finds_nothing_sends_nothing(line_ws: Path, run_cli, hook) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.0", "--bad", "1.1",
                     "-p", "tiny", "--notify", hook.url())
    assert result.exit_code == 0, result.err
    assert hook.requests == []


def test_bisect_with_a_malformed_notify_url_is_exit_2_before_measuring(line_ws: Path,
                                                                        run_cli) -> None:
    result = run_cli("-w", line_ws, "bisect", "mm", "--good", "1.0", "--bad", "1.6",
                     "-p", "tiny", "--notify", "not a url")
    assert result.exit_code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "bisect" not in result.err.split(":")[0]


def test_the_gate_and_explain_build_their_worker_jobs_in_one_place(line_ws: Path) -> None:
    from devtrack.pairing import measured_profile, pair_job
    from devtrack.profiles import load_profile
    from devtrack.registry import get_release

    with open_workspace(line_ws) as ws:
        a, b = get_release(ws, "mm@1.0"), get_release(ws, "mm@1.5")
        profile = measured_profile(load_profile("tiny", ws.root))
        pair = pair_job(ws, a, b, profile, "pair", 0.5)
        op_pair = pair_job(ws, a, b, profile, "op_pair", 0.3)
    assert [s["sha256"] for s in pair["pair"]] == [a.sha256, b.sha256]
    assert [s["sha256"] for s in op_pair["op_pair"]] == [a.sha256, b.sha256]
    assert pair["measurement"]["min_time_s"] == 0.5
    assert op_pair["measurement"]["min_time_s"] == 0.3
    assert "artifact_path" not in op_pair and "evaluation" not in op_pair
    rest = ("pair", "op_pair", "measurement")
    assert ({k: v for k, v in pair.items() if k not in rest}
            == {k: v for k, v in op_pair.items() if k not in rest})
