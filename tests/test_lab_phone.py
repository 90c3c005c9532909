"""`devtrack lab` and `lab check` on an adb phone, against the stand-in adb (tests/fake_adb.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import fake_adb
from tests.fake_adb import Phone
from tests.test_adb_bench import DATA, PHONE, SERIAL


@pytest.fixture(name="phone")
def _phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Phone:
    return fake_adb.start(tmp_path, monkeypatch, DATA / "recent_info.log")


@pytest.fixture
def phone_ws(in_ws: Path, phone: Phone) -> Path:
    (in_ws / "device_profiles" / "pixel8.toml").write_text(PHONE, encoding="utf-8")
    return in_ws


def test_lab_check_of_a_ready_phone_is_exit_0(phone_ws: Path, run_cli) -> None:
    result = run_cli("lab", "check", "pixel8", "--json")
    assert result.exit_code == 0, result.err
    report = json.loads(result.out)[0]
    assert report["ready"] and report["reachable"] and report["problems"] == []
    assert report["info"]["host"] == f"adb://{SERIAL}"  # bench.adb.phone_report's facts
    assert "pixel8 (adb://R58M123ABC): ready" in run_cli("lab", "check", "pixel8").out


def test_lab_check_names_what_the_phone_lacks(phone_ws: Path, phone: Phone, run_cli) -> None:
    phone.configure(binary=False)
    result = run_cli("lab", "check", "pixel8")
    assert result.exit_code == 1
    assert "benchmark_model is missing on R58M123ABC" in result.err
    assert result.err.count("\n") == 1
    phone.configure(binary=True, state="missing")
    gone = json.loads(run_cli("lab", "check", "pixel8", "--json").out)[0]
    assert gone["reachable"] is False and "not reachable" in gone["error"]


def test_lab_lists_a_phone_probed_with_its_state(phone_ws: Path, phone: Phone,
                                                 run_cli) -> None:
    phone.configure(state="unauthorized")
    rows = {r["profile"]: r for r in json.loads(run_cli("lab", "--json").out)}
    assert rows["pixel8"]["target"] == f"adb://{SERIAL}"
    assert rows["pixel8"]["reachable"] is False and "unauthorized" in rows["pixel8"]["error"]
