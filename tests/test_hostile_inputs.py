"""Hostile and impossible input: lying .npz headers, zip bombs, pickles, fills a dtype cannot
hold. Each is refused with one line, exit 2, nothing changed and bounded memory."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from devtrack.core.dataset import ArraySpec, Dataset
from devtrack.core.inputspec import fill_problem
from devtrack.core.units import format_bytes, parse_size
from devtrack.errors import UsageError
from devtrack.evaluation import EVAL_TIMEOUT_MAX_S, EvalPlan
from devtrack.npzfile import NpzRefused, read_npz
from tests.conftest import snapshot_workspace
from tests.hostile_files import (
    huge_shape_npz,
    overdeclared_zip_npz,
    pickle_npz,
    short_data_npz,
    zip_bomb_npz,
)
from tests.test_cli_errors import assert_clean_error

REPO = Path(__file__).resolve().parents[1]

# -- .npz datasets (issue 10, item 10) ------------------------------------------------------


def test_a_548_byte_file_declaring_64_tb_is_refused_from_its_header(
        in_ws: Path, tmp_path: Path, run_cli, unchanged) -> None:
    path = huge_shape_npz(tmp_path / "huge.npz")
    assert path.stat().st_size < 600
    result = run_cli("dataset", "add", path, "--name", "huge")
    assert_clean_error(result, "array 'input'", "(1000000000000, 16) float32", "64 TB",
                       "over the 1 GiB limit", "--max-size")
    unchanged()


def test_a_zip_bomb_is_refused_quickly_without_allocating(ws_dir: Path, tmp_path: Path,
                                                          unchanged) -> None:
    bomb = zip_bomb_npz(tmp_path / "bomb.npz")  # ~2 MB on disk, 2 GiB inflated
    assert bomb.stat().st_size < 3 << 20
    # A child process with an address-space cap well below the bomb, so that a reader that
    # inflates it fails instead of taking 2 GiB of the machine; its peak RSS is reported.
    script = textwrap.dedent(f"""
        import resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from devtrack.cli import main
        t0 = time.perf_counter()
        code = main(["-w", {str(ws_dir)!r}, "dataset", "add", {str(bomb)!r}, "--name", "bomb"])
        try:  # this process's own peak; ru_maxrss may carry pytest's over the fork
            peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
        except (OSError, IndexError):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(code, peak, time.perf_counter() - t0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert "Traceback" not in done.stderr, done.stderr
    code, peak_kib, seconds = done.stdout.split()
    assert int(code) == 2, done.stderr
    assert "over the 1 GiB limit" in done.stderr and "array 'input'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert int(peak_kib) < 150 * 1024  # the bomb is 2 GiB inflated: it was never inflated
    assert float(seconds) < 5  # generous: refused from the headers in milliseconds
    unchanged()


def _float_npz(path: Path, rows: int) -> Path:
    np.savez(path, input=np.zeros((rows, 256), np.float32), labels=np.zeros(rows, np.int64))
    return path


def test_max_size_raises_the_limit_and_names_it(in_ws: Path, tmp_path: Path, run_cli) -> None:
    path = _float_npz(tmp_path / "d.npz", 2000)  # 2,048,000 + 16,000 bytes of arrays
    before = snapshot_workspace(in_ws)
    result = run_cli("dataset", "add", path, "--name", "d", "--max-size", "2050KB")
    assert_clean_error(result, "over the 2050 KB limit", "array 'labels'",
                       "2064 KB with the arrays before it", "--max-size 2MiB")
    assert snapshot_workspace(in_ws) == before
    ok = run_cli("dataset", "add", path, "--name", "d", "--max-size", "2MiB", "--json")
    assert ok.exit_code == 0, ok.err
    assert json.loads(ok.out)["samples"] == 2000


@pytest.mark.parametrize("text", ["abc", "0", "-1MB", "5XB", "", "1.5.5GB", "nanGB", "0.1B"])
def test_bad_max_size_values_are_refused(in_ws: Path, tmp_path: Path, run_cli, unchanged,
                                         text: str) -> None:
    path = _float_npz(tmp_path / "d.npz", 4)
    assert_clean_error(run_cli("dataset", "add", path, "--name", "d", "--max-size", text),
                       "--max-size")
    unchanged()


@pytest.mark.parametrize(("text", "size"), [
    ("2GiB", 2 << 30), ("500MB", 500 * 10**6), ("1073741824", 1 << 30), ("1.5 kib", 1536),
    ("4tb", 4 * 10**12),
])
def test_sizes_read_as_users_write_them(text: str, size: int) -> None:
    assert parse_size(text) == size
    assert parse_size(format_bytes(size).replace(" ", "")) == size


@pytest.mark.parametrize(("build", "needle"), [
    (short_data_npz, "declares shape (10, 16) float32 (640 bytes) but its member holds 512"),
    (overdeclared_zip_npz, "corrupt"),
])
def test_a_header_that_lies_about_its_size_is_refused(in_ws: Path, tmp_path: Path, run_cli,
                                                      unchanged, build, needle: str) -> None:
    path = build(tmp_path / "liar.npz")
    assert_clean_error(run_cli("dataset", "add", path, "--name", "liar"), needle)
    unchanged()


def test_a_pickled_object_array_is_refused_and_never_unpickled(
        in_ws: Path, tmp_path: Path, run_cli, unchanged) -> None:
    marker = tmp_path / "unpickled"
    path = pickle_npz(tmp_path / "objects.npz", marker)
    assert_clean_error(run_cli("dataset", "add", path, "--name", "objects"), "Python objects")
    assert not marker.exists()
    unchanged()


def test_a_negative_dimension_is_refused_from_the_header(tmp_path: Path) -> None:
    from tests.hostile_files import npy_header, zip_of

    path = tmp_path / "negative.npz"  # (-1, -8): their product is 8, as the data holds
    path.write_bytes(zip_of({"input.npy": npy_header("<f4", (-1, -8)) + bytes(32)}))
    with pytest.raises(NpzRefused, match=r"negative dimension: \(-1, -8\)"):
        read_npz(path)


def test_bzip2_members_are_refused_before_inflating(tmp_path: Path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()  # bzip2 inflates without bounds: 4 KB could be gigabytes
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive, \
            archive.open("input.npy", "w") as member:
        np.save(member, np.zeros((4, 16), np.float32))
    path = tmp_path / "bz2.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(NpzRefused, match="compression method 12; devtrack reads stored or "
                                         "deflated members"):
        read_npz(path)


def test_members_that_are_not_arrays_are_refused(tmp_path: Path) -> None:
    from tests.hostile_files import zip_of

    path = tmp_path / "mixed.npz"
    path.write_bytes(zip_of({"notes.txt": b"hello"}))
    with pytest.raises(NpzRefused, match=r"'notes\.txt' is not an \.npy array"):
        read_npz(path)


def _ws_with_dataset(run_cli, tmp_path: Path, mlp_onnx: Path) -> Path:
    data = tmp_path / "eval.npz"
    np.savez(data, input=np.zeros((6, 16), np.float32), labels=np.arange(6) % 4)
    assert run_cli("register", mlp_onnx, "-m", "kws", "-v", "1.0").exit_code == 0
    assert run_cli("dataset", "add", data, "--name", "ev").exit_code == 0
    return data


def test_a_stored_dataset_swapped_for_a_bomb_is_caught_by_its_hash(
        in_ws: Path, tmp_path: Path, mlp_onnx: Path, run_cli) -> None:
    data = _ws_with_dataset(run_cli, tmp_path, mlp_onnx)
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    stored = in_ws / ".devtrack" / "artifacts" / "sha256" / sha[:2] / sha
    stored.chmod(0o644)
    zip_bomb_npz(stored)
    before = snapshot_workspace(in_ws)
    started = time.perf_counter()
    result = run_cli("bench", "kws@1.0", "--profile", "ci-host", "--eval", "ev")
    assert result.exit_code == 2 and "Traceback" not in result.err
    assert f"error: artifact {sha[:12]} in the store was modified" in result.err
    assert time.perf_counter() - started < 30
    assert snapshot_workspace(in_ws) == before

    from devtrack.bench.evaluation import _load_arrays  # the worker's side of the same check

    with pytest.raises(UsageError, match="sha256 mismatch"):
        _load_arrays({"path": str(stored), "sha256": sha, "nbytes": 6 * 16 * 4 + 6 * 8})


def test_the_worker_reads_datasets_with_the_same_limits(tmp_path: Path) -> None:
    """Were a bomb ever stored under its own hash, the worker still reads headers first."""
    from devtrack.bench.evaluation import _load_arrays

    huge = huge_shape_npz(tmp_path / "huge.npz")
    digest = hashlib.sha256(huge.read_bytes()).hexdigest()
    with pytest.raises(NpzRefused, match="over the 1 GiB limit"):
        _load_arrays({"path": str(huge), "sha256": digest, "nbytes": 384})


def _dataset(samples: int) -> Dataset:
    return Dataset(id=1, name="big", sha256="0" * 64, task="classification", samples=samples,
                   arrays={"input": ArraySpec((samples,), "uint8")}, has_labels=False)


def test_the_evaluation_time_allowance_stays_bounded() -> None:
    small = EvalPlan(_dataset(1000), {"input": "rows"})
    assert small.timeout_allowance_s() == pytest.approx(60 + 1000 * 0.05)
    bomb_sized = EvalPlan(_dataset(33_000_000), {"input": "rows"})  # the bomb: weeks
    assert bomb_sized.timeout_allowance_s() == EVAL_TIMEOUT_MAX_S <= 6 * 3600


# -- fills against the input's dtype (item 12) ----------------------------------------------


@pytest.mark.parametrize(("value", "needle"), [
    ("99999999999999999999999", "out of range (-9223372036854775808..9223372036854775807)"),
    ("nan", "give an integer"),
    ("inf", "give an integer"),
    ("1.5", "give an integer"),
    ("true", "give an integer"),
])
def test_register_refuses_a_fill_an_int64_input_cannot_hold(
        in_ws: Path, dynamic_onnx: Path, run_cli, unchanged, value: str, needle: str) -> None:
    result = run_cli("register", dynamic_onnx, "-m", "vad", "-v", "1", "--input",
                     "input=1x512", "--fill", f"sr={value}")
    assert_clean_error(result, "input 'sr'", "int64", needle)
    unchanged()


def test_bench_refuses_a_fill_override_before_measuring(in_ws: Path, dynamic_onnx: Path,
                                                        run_cli) -> None:
    assert run_cli("register", dynamic_onnx, "-m", "vad", "-v", "1", "--input", "input=1x512",
                   "--fill", "sr=16000").exit_code == 0
    before = snapshot_workspace(in_ws)
    result = run_cli("bench", "vad@1", "--profile", "ci-host", "--fill", "sr=nan")
    assert_clean_error(result, "--fill sr=nan", "input 'sr'", "int64")
    assert snapshot_workspace(in_ws) == before  # no failed run stored


_ONNX_TYPES = {"bool": TensorProto.BOOL, "uint8": TensorProto.UINT8, "int8": TensorProto.INT8,
               "float16": TensorProto.FLOAT16}


def _scalar_model(path: Path, dtype: str) -> Path:
    """A real model whose one input is a scalar of ``dtype`` (returned as it is)."""
    elem = _ONNX_TYPES[dtype]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "scalar",
                              [helper.make_tensor_value_info("x", elem, [])],
                              [helper.make_tensor_value_info("y", elem, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(("dtype", "bad", "good", "needle"), [
    ("bool", "2", "true", "give true or false"),
    ("uint8", "256", "255", "out of range (0..255)"),
    ("uint8", "-1", "0", "out of range (0..255)"),
    ("int8", "-129", "-128", "out of range (-128..127)"),
    ("float16", "70000", "65504", "out of range (±65504"),
])
def test_fills_are_checked_for_small_dtypes(in_ws: Path, tmp_path: Path, run_cli, dtype: str,
                                            bad: str, good: str, needle: str) -> None:
    model = _scalar_model(tmp_path / f"{dtype}.onnx", dtype)
    before = snapshot_workspace(in_ws)
    result = run_cli("register", model, "-m", "s", "-v", "1", "--fill", f"x={bad}")
    assert_clean_error(result, "input 'x'", dtype, needle)
    assert snapshot_workspace(in_ws) == before
    ok = run_cli("register", model, "-m", "s", "-v", "1", "--fill", f"x={good}")
    assert ok.exit_code == 0, ok.err


def test_an_input_spec_dtype_must_be_the_input_dtype(in_ws: Path, tmp_path: Path, run_cli,
                                                     unchanged) -> None:
    model = _scalar_model(tmp_path / "uint8.onnx", "uint8")
    result = run_cli("register", model, "-m", "s", "-v", "1", "--input", "x=scalar:float32")
    assert_clean_error(result, "dtype float32", "input 'x' is uint8")
    unchanged()


@pytest.mark.parametrize(("value", "dtype", "fits"), [
    (16000, "int64", True), (16000.0, "int32", True), (2**63, "int64", False),
    (2**64 - 1, "uint64", True), (-1, "uint32", False), (math.nan, "int16", False),
    (0, "bool", True), (False, "bool", True), (0.5, "bool", False),
    (math.nan, "float32", True), (-math.inf, "float16", True), (1e39, "float32", False),
    (10**400, "float64", False), (True, "float32", False), (7, "complex64", True),
])
def test_fill_values_against_every_dtype(value: float, dtype: str, fits: bool) -> None:
    assert (fill_problem(value, dtype) is None) is fits
