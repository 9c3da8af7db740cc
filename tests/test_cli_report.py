"""``simtwin diff`` and ``simtwin report`` on metrics files and baseline folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_simtwin.cli import main
from pytest_simtwin.results.baselines import BaselineStore
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import ResultsCollector, TestRecord


def metrics_file(path: Path, speed: float, err: float = 0.004, extra_test: bool = False) -> Path:
    collector = ResultsCollector()
    for nodeid in ["t.py::test_a", "t.py::test_b"] + (["t.py::test_new"] if extra_test else []):
        rec = TestRecord(nodeid, outcome="passed", wall_duration=1.0, sim_duration=2.0)
        rec.add_metric(MetricRecord("speed", speed, "m/s", 0.3, "higher"))
        rec.add_metric(MetricRecord("position_error", err, "m", 0.01))
        t = [i * 0.1 for i in range(30)]
        rec.trajectory = {"t": t, "x": [speed * v for v in t], "y": [0.0] * 30}
        collector.records[nodeid] = rec
    collector.write(path)
    return path


def test_diff_flags_a_ten_percent_slower_robot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = metrics_file(tmp_path / "base.json", 0.5)
    slow = metrics_file(tmp_path / "slow.json", 0.45)
    assert main(["diff", str(base), str(slow)]) == 1
    out = capsys.readouterr().out
    assert "t.py::test_a  speed" in out and "-10.0 %  regression" in out
    assert "2 regression, 2 unchanged" in out
    # the same numbers the other way round are an improvement, and exit 0
    assert main(["diff", str(slow), str(base)]) == 0
    assert "2 improvement" in capsys.readouterr().out
    # reverting: unchanged
    assert main(["diff", str(base), str(metrics_file(tmp_path / "again.json", 0.5))]) == 0
    out = capsys.readouterr().out
    assert "4 unchanged" in out and "regression" not in out


def test_diff_baseline_folders_and_mixed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = BaselineStore(tmp_path / "baselines")
    for nodeid in ("t.py::test_a", "t.py::test_b", "t.py::test_gone"):
        rec = TestRecord(nodeid)
        rec.add_metric(MetricRecord("speed", 0.5, "m/s", 0.3, "higher"))
        rec.add_metric(MetricRecord("position_error", 0.004, "m", 0.01))
        store.save(rec)
    current = metrics_file(tmp_path / "cur.json", 0.5, err=0.008, extra_test=True)
    assert main(["diff", str(store.directory), str(current)]) == 1
    out = capsys.readouterr().out
    assert "position_error" in out and "+100.0 %  regression" in out
    assert "t.py::test_gone" in out and "test missing" in out
    assert "t.py::test_new" in out and "new test" in out
    # folder vs folder
    assert main(["diff", str(store.directory), str(store.directory), "--all"]) == 0
    assert "6 unchanged" in capsys.readouterr().out


def test_diff_bad_input_exits_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = metrics_file(tmp_path / "good.json", 0.5)
    assert main(["diff", str(good), str(tmp_path / "missing.json")]) == 2
    assert "does not exist: expected a metrics JSON file or a baseline folder" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"tests": 3}')
    assert main(["diff", str(good), str(bad)]) == 2
    assert "is not a simtwin metrics file" in capsys.readouterr().err
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "broken.json").write_text("{")
    assert main(["diff", str(folder), str(good)]) == 0  # a corrupt baseline is a warning, not a crash
    out = capsys.readouterr().out
    assert "warning: baseline" in out and "broken.json is not valid JSON" in out


def test_report_command_writes_a_self_contained_page(tmp_path: Path) -> None:
    src = metrics_file(tmp_path / "m.json", 0.5)
    out = tmp_path / "sub" / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.cli", "report", str(src), "-o", str(out), "--png", "all"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 tests ->" in proc.stderr
    text = out.read_text()
    assert text.count('src="data:image/png;base64,') == 2  # one trajectory per test (no velocity data)
    assert text.count('class="simtwin-metrics"') == 2
    assert json.loads(src.read_text())["tests"][0]["nodeid"] in text
