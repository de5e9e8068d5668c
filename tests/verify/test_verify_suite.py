"""The suite driver: case list, statuses, table and JSON."""

import json
import sys

import pytest

from diffflux.verify import suite
from diffflux.verify.suite import CASES, format_table, run_verification, to_json


def test_case_list():
    assert CASES[0] == "williamson1" and "exchange_time" in CASES and len(set(CASES)) == len(CASES)
    with pytest.raises(ValueError, match="unknown case"):
        run_verification(only=["nope"])


def test_run_table_json_and_not_available(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffflux.met.exchange", None)  # import fails
    lines = []
    res = run_verification(only=["exchange_time", "diffusion_vertical"], progress=lines.append)
    assert [r["name"] for r in res] == ["diffusion_vertical", "exchange_time"]
    dv, ex = res
    assert dv["passed"] is True and dv["status"] == "pass"
    assert dv["checks"]["decay_rel_err"] and dv["metrics"]["decay_rel_err"] <= 1e-10
    assert ex["passed"] is None and ex["status"] == "not available"
    table = format_table(res)
    assert "diffusion_vertical" in table and "NOT AVAILABLE" in table and "1 passed" in table
    path = tmp_path / "v.json"
    to_json(res, path)
    back = json.loads(path.read_text())
    assert back[0]["thresholds"]["decay_rel_err"] == ["<=", 1e-10]
    assert any("diffusion_vertical" in s for s in lines)


def test_failing_and_erroring_cases_are_reported(monkeypatch):
    monkeypatch.setitem(suite._RUNNERS, "chemistry",
                        lambda quick, say: ({"x": 2.0}, {"x": ("<=", 1.0)}, {}, ""))

    def boom(quick, say):
        raise RuntimeError("kaput")

    monkeypatch.setitem(suite._RUNNERS, "taylor", boom)
    res = run_verification(only=["chemistry", "taylor"], progress=None)
    assert res[0]["status"] == "fail" and res[0]["passed"] is False
    assert res[1]["status"] == "error" and "kaput" in res[1]["notes"]
    assert "FAIL" in format_table(res)
