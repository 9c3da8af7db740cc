"""Baseline files, comparisons and verdicts, the pytest options around them, and crash safety."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_simtwin.errors import BaselineError
from pytest_simtwin.results import baselines as bl
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import TestRecord


def make_record(
    nodeid: str = "tests/test_nav.py::test_drive[0.5]", speed: float = 0.5, err: float = 0.004
) -> TestRecord:
    rec = TestRecord(nodeid)
    rec.add_metric(MetricRecord("speed", speed, "m/s", 0.3, "higher"))
    rec.add_metric(MetricRecord("position_error", err, "m", 0.01, "lower"))
    rec.add_metric(MetricRecord("yaw_bias", 0.001, "rad", 0.05, "two-sided"))
    t = [i * 0.01 for i in range(1000)]
    rec.trajectory = {"t": t, "x": [speed * v for v in t], "y": [0.0] * 1000, "vx": [speed] * 1000}
    rec.provenance = {"plugin_version": "0.1.0", "backend": "embedded", "world_sha256": "ab" * 32}
    return rec


def test_filenames_are_safe_readable_and_distinct() -> None:
    a = bl.baseline_filename("tests/test_nav.py::TestX::test_drive[0.5-/odom]")
    b = bl.baseline_filename("tests/test_nav.py::TestX::test_drive[0.5-:odom]")
    assert a != b
    for name in (a, b):
        assert name.endswith(".json")
        assert "/" not in name and ":" not in name and " " not in name
        assert name.startswith("tests-test_nav.py--TestX--test_drive")
    assert bl.baseline_filename("x" * 1000).__len__() < 140


def test_save_is_sorted_one_value_per_line_and_does_not_churn(tmp_path: Path) -> None:
    store = bl.BaselineStore(tmp_path)
    rec = make_record()
    path, changed = store.save(rec)
    assert changed
    text = path.read_text()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["metrics"]["speed"] == {"direction": "higher", "tolerance": 0.3, "unit": "m/s", "value": 0.5}
    assert len(data["trajectory"]["x"]) == bl.BASELINE_TRAJECTORY_POINTS  # downsampled
    assert data["provenance"]["world_sha256"] == "ab" * 32
    # one scalar per line: a changed metric value is a one-line diff
    assert '   "value": 0.5' in text.splitlines()
    mtime = path.stat().st_mtime_ns
    time.sleep(0.01)
    path2, changed2 = store.save(make_record())
    assert (path2, changed2) == (path, False)
    assert path.stat().st_mtime_ns == mtime and path.read_text() == text
    _, changed3 = store.save(make_record(speed=0.45))
    assert changed3
    diff = set(text.splitlines()) ^ set(path.read_text().splitlines())
    assert any('"value": 0.45' in line for line in diff)


def test_stable_float_formatting() -> None:
    assert bl.stable_float(0.1 + 0.2) == 0.3
    assert bl.stable_float(1 / 3) == 0.333333333
    assert bl.stable_float(math.inf) == "inf"


@pytest.mark.parametrize(
    ("direction", "base", "cur", "expected"),
    [
        ("lower", 1.0, 1.1, "regression"),
        ("lower", 1.0, 0.9, "improvement"),
        ("lower", 1.0, 1.04, "unchanged"),
        ("higher", 1.0, 0.9, "regression"),
        ("higher", 1.0, 1.1, "improvement"),
        ("higher", 1.0, 0.97, "unchanged"),
        ("two-sided", 0.1, -0.2, "regression"),
        ("two-sided", -0.2, 0.1, "improvement"),
        ("two-sided", 0.1, -0.101, "unchanged"),
        ("lower", 1.0, math.nan, "regression"),
    ],
)
def test_directions(direction: str, base: float, cur: float, expected: str) -> None:
    b = MetricRecord("m", base, direction=direction)  # type: ignore[arg-type]
    c = MetricRecord("m", cur, direction=direction)  # type: ignore[arg-type]
    assert bl.compare_metric(b, c).verdict == expected


def test_band_uses_tolerance_for_errors_near_zero_and_per_metric_overrides() -> None:
    # 0.1 mm -> 0.15 mm is +50 % but far inside a 1 cm tolerance: 1 % of it (0.1 mm) is the band
    b = MetricRecord("position_error", 0.0001, "m", 0.01)
    assert bl.compare_metric(b, MetricRecord("position_error", 0.00015, "m", 0.01)).verdict == "unchanged"
    assert bl.compare_metric(b, MetricRecord("position_error", 0.0003, "m", 0.01)).verdict == "regression"
    strict = MetricRecord("t_goal", 4.0, "s", 10.0, extra={"baseline_rtol": 0.01, "baseline_atol": 0.0})
    assert bl.compare_metric(strict, MetricRecord("t_goal", 4.1, "s", 10.0)).verdict == "regression"
    assert bl.compare_metric(strict, MetricRecord("t_goal", 4.1, "s", 10.0), rtol=0.05).verdict == "regression"
    loose = MetricRecord("t_goal", 4.0, "s", 10.0)
    assert bl.compare_metric(loose, MetricRecord("t_goal", 4.1, "s", 10.0)).verdict == "unchanged"


def test_ten_percent_slower_is_a_regression_and_revert_is_unchanged(tmp_path: Path) -> None:
    store = bl.BaselineStore(tmp_path)
    store.save(make_record(speed=0.5))
    slow = make_record(speed=0.45)
    bl.evaluate(slow, store)
    assert slow.baseline_verdict == "regression"
    assert [v["name"] for v in bl.regressions(slow)] == ["speed"]
    assert slow.baseline_trajectory["x"]  # drawn under the current one in reports
    back = make_record(speed=0.5)
    bl.evaluate(back, store)
    assert back.baseline_verdict == "unchanged"
    assert {v["verdict"] for v in back.baseline} == {"unchanged"}


def test_new_and_missing_metrics(tmp_path: Path) -> None:
    store = bl.BaselineStore(tmp_path)
    rec = make_record()
    bl.evaluate(rec, store)
    assert rec.baseline_verdict == "new"
    store.save(rec)
    changed = make_record()
    changed.metrics = [m for m in changed.metrics if m.name != "yaw_bias"]
    changed.add_metric(MetricRecord("latency", 0.01, "s", 0.02))
    bl.evaluate(changed, store)
    verdicts = {v["name"]: v["verdict"] for v in changed.baseline}
    assert verdicts == {"latency": "new", "position_error": "unchanged", "speed": "unchanged", "yaw_bias": "missing"}
    assert changed.baseline_verdict == "unchanged"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "is not valid JSON"),
        ('{"format": "other"}', "expected format 'simtwin-baseline'"),
        ('{"format": "simtwin-baseline", "metrics": []}', "expected a 'metrics' object"),
        ('{"format": "simtwin-baseline", "metrics": {"speed": {"value": "fast"}}}', "metric 'speed' needs a numeric"),
        ("", "is not valid JSON"),
    ],
)
def test_corrupt_baseline_is_a_clear_error_naming_the_file(tmp_path: Path, content: str, needle: str) -> None:
    store = bl.BaselineStore(tmp_path)
    rec = make_record()
    store.path_for(rec.nodeid).write_text(content)
    with pytest.raises(BaselineError) as info:
        store.load(rec.nodeid)
    assert needle in str(info.value)
    assert str(store.path_for(rec.nodeid)) in str(info.value)
    assert "--simtwin-update-baseline" in str(info.value)
    # evaluate() reports it instead of raising
    bl.evaluate(rec, store)
    assert rec.baseline_verdict == "error"
    assert str(store.path_for(rec.nodeid)) in rec.baseline[0]["error"]


def test_missing_folder_is_reported_for_load_all(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="does not exist"):
        bl.BaselineStore(tmp_path / "nope").load_all()


TEST_MODULE = """
    import os
    import pytest

    SPEED = float(os.environ.get("ROBOT_SPEED", "0.5"))

    @pytest.mark.parametrize("leg", [1, 2])
    def test_drive(record_metric, leg):
        record_metric("speed", SPEED, "m/s", tolerance=0.3, direction="higher")
        if not os.environ.get("DROP_ERROR_METRIC"):
            record_metric("position_error", 0.004, "m", tolerance=0.01)

    def test_no_metrics():
        pass
"""


def run_suite(pytester: pytest.Pytester, *args: str, speed: float = 0.5) -> pytest.RunResult:
    os.environ["ROBOT_SPEED"] = str(speed)
    try:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *args)
    finally:
        os.environ.pop("ROBOT_SPEED", None)


def test_update_then_regression_then_fail_on_regression(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_robot=textwrap.dedent(TEST_MODULE))
    base_dir = pytester.path / "simtwin_baselines"
    result = run_suite(pytester, "--simtwin-update-baseline")
    result.assert_outcomes(passed=3)
    files = sorted(p.name for p in base_dir.glob("*.json"))
    assert len(files) == 2, files  # the test without metrics has no baseline
    result.stdout.fnmatch_lines(["*baselines in *simtwin_baselines: 2 written*"])

    result = run_suite(pytester, "--simtwin-metrics-json=m.json", speed=0.45)
    result.assert_outcomes(passed=3)  # reported, not failed, without --simtwin-fail-on-regression
    result.stdout.fnmatch_lines(
        ["*regressions (2 tests):*", "*test_drive?1?: speed: 0.5 -> 0.45 m/s (-10.0 %*regression"]
    )
    data = json.loads((pytester.path / "m.json").read_text())
    verdicts = {t["nodeid"]: t["baseline_verdict"] for t in data["tests"]}
    assert verdicts == {
        "test_robot.py::test_drive[1]": "regression",
        "test_robot.py::test_drive[2]": "regression",
        "test_robot.py::test_no_metrics": "none",
    }

    result = run_suite(pytester, "--simtwin-fail-on-regression", speed=0.45)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*regressed against the baseline*", "*speed: 0.5 -> 0.45*"])

    result = run_suite(pytester, "--simtwin-fail-on-regression", speed=0.5)
    result.assert_outcomes(passed=3)
    result.stdout.no_fnmatch_line("*regressions (*")

    # a metric the baseline has but the run no longer records is reported, not fatal
    os.environ["DROP_ERROR_METRIC"] = "1"
    try:
        result = run_suite(pytester, "--simtwin-fail-on-regression", speed=0.5)
    finally:
        os.environ.pop("DROP_ERROR_METRIC")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_drive?1?: metric position_error in the baseline but not recorded"])

    # an improvement is listed, not failed
    result = run_suite(pytester, "--simtwin-fail-on-regression", speed=0.6)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*improvements (2 tests):*"])


def test_corrupt_baseline_file_is_reported_not_a_crash(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_robot=textwrap.dedent(TEST_MODULE))
    run_suite(pytester, "--simtwin-update-baseline").assert_outcomes(passed=3)
    victim = sorted((pytester.path / "simtwin_baselines").glob("*.json"))[0]
    victim.write_text('{"format": "simtwin-baseline", "metrics": {"speed": ')
    result = run_suite(pytester, "--simtwin-fail-on-regression")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*baseline errors (1 tests):*", f"*baseline {victim}*is not valid JSON*"])


WRITER = """
import sys, time
from pathlib import Path
from pytest_simtwin.results.baselines import BaselineStore
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import TestRecord

store = BaselineStore(Path(sys.argv[1]))
i = 0
print("ready", flush=True)
while True:
    for k in range(40):
        rec = TestRecord(f"tests/test_many.py::test_{k}")
        rec.add_metric(MetricRecord("value", float(i * 100 + k), "m", 1e9))
        rec.trajectory = {"t": [j * 0.1 for j in range(300)], "x": [float(i + j) for j in range(300)]}
        store.save(rec)
    i += 1
"""


def test_killing_an_update_leaves_every_baseline_parseable(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    folder = tmp_path / "baselines"
    rng = random.Random(1234)
    kills = 0
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, str(script), str(folder)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        good, bad = bl.BaselineStore(folder).load_all()
        assert not bad, bad
        for b in good.values():
            assert len(b.trajectory["x"]) == bl.BASELINE_TRAJECTORY_POINTS
    assert kills == 8
    assert len(good) > 0
    leftovers = [p.name for p in folder.iterdir() if not p.name.endswith(".json")]
    # an interrupted write can leave a temp file behind, never a torn .json
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers)


DASH_SUITE = """
    import pytest

    @pytest.mark.parametrize("seconds", [1.5, 2.0])
    def test_dash(sim, robot, record_metric, seconds):
        robot.send_velocity(1.0, 0.0, seconds)  # above the limit: the robot's max velocity decides
        record_metric("distance", robot.displacement, "m", tolerance=0.3, direction="higher")
"""


def robot_with_max_speed(folder: Path, vmax: float) -> Path:
    """The built-in robot with another <max_linear_velocity> (a slower or faster robot)."""
    import importlib.resources

    src = Path(str(importlib.resources.files("pytest_simtwin") / "sim/defaults/models/simtwin_bot/model.sdf"))
    text = src.read_text()
    assert "<max_linear_velocity>0.6</max_linear_velocity>" in text
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "model.sdf"
    out.write_text(text.replace("<max_linear_velocity>0.6<", f"<max_linear_velocity>{vmax}<"))
    return out


def test_slower_robot_is_a_regression_with_the_real_simulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_dash=textwrap.dedent(DASH_SUITE))
    normal = robot_with_max_speed(pytester.path / "normal_bot", 0.6)
    slow = robot_with_max_speed(pytester.path / "slow_bot", 0.54)  # 10 % slower
    common = ("-p", "no:cacheprovider", "-n", "2")

    pytester.runpytest_subprocess(*common, f"--simtwin-robot={normal}", "--simtwin-update-baseline").assert_outcomes(
        passed=2
    )
    base_dir = pytester.path / "simtwin_baselines"
    stored = [json.loads(p.read_text()) for p in sorted(base_dir.glob("*.json"))]
    assert len(stored) == 2
    assert all(s["provenance"]["simulator"] == "simtwin-sim" for s in stored)
    assert all(len(s["provenance"]["robot_sha256"]) == 64 for s in stored)
    assert all(len(s["trajectory"]["x"]) > 10 for s in stored)

    result = pytester.runpytest_subprocess(
        *common, f"--simtwin-robot={slow}", "--simtwin-fail-on-regression", "--simtwin-metrics-json=slow.json"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*regressions (2 tests):*", "*distance: * -> * m (-*regression"])
    slow_doc = json.loads((pytester.path / "slow.json").read_text())
    assert {t["baseline_verdict"] for t in slow_doc["tests"]} == {"regression"}
    for t in slow_doc["tests"]:
        (v,) = t["baseline"]
        assert -0.12 < (v["current"] - v["baseline"]) / v["baseline"] < -0.06, v  # about 10 % shorter

    diff = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.cli", "diff", str(base_dir), str(pytester.path / "slow.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "2 regression" in diff.stdout

    result = pytester.runpytest_subprocess(
        *common, f"--simtwin-robot={normal}", "--simtwin-fail-on-regression", "--simtwin-metrics-json=back.json"
    )
    result.assert_outcomes(passed=2)
    back_doc = json.loads((pytester.path / "back.json").read_text())
    assert {t["baseline_verdict"] for t in back_doc["tests"]} == {"unchanged"}
    diff = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.cli", "diff", str(base_dir), str(pytester.path / "back.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "2 unchanged" in diff.stdout
