"""The measuring helpers of benchmarks/ (a benchmark that measures wrongly is worse than none)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import SuiteRun, TreeSample, compare_runs, sample_tree  # noqa: E402

from pytest_simtwin.results.metrics import MetricRecord  # noqa: E402


def _run(workers: int, outcomes: dict[str, str], metrics: dict[str, dict[str, tuple[float, float]]]) -> SuiteRun:
    records = {
        nodeid: {name: MetricRecord(name, v, "m", tol).to_dict() for name, (v, tol) in ms.items()}
        for nodeid, ms in metrics.items()
    }
    return SuiteRun(workers, 10.0, 0, outcomes, records, TreeSample(), Path("log"))


def test_compare_runs_finds_outcome_and_metric_differences() -> None:
    a = _run(1, {"t::a": "passed", "t::b": "passed"}, {"t::a": {"err": (0.010, 0.05)}, "t::b": {}})
    same = _run(2, {"t::a": "passed", "t::b": "passed"}, {"t::a": {"err": (0.0102, 0.05)}, "t::b": {}})
    assert compare_runs(a, same) == []  # 2 % apart: inside the 5 % band
    drifted = _run(2, {"t::a": "passed", "t::b": "passed"}, {"t::a": {"err": (0.012, 0.05)}, "t::b": {}})
    assert len(compare_runs(a, drifted)) == 1 and "err" in compare_runs(a, drifted)[0]
    flipped = _run(4, {"t::a": "passed", "t::b": "failed"}, {"t::a": {"err": (0.010, 0.05)}, "t::b": {}})
    assert compare_runs(a, flipped) == ["t::b: passed with -n 1, failed with -n 4"]
    # near zero the band is 1 % of the tolerance, not 5 % of a tiny value
    tiny = _run(2, {"t::a": "passed", "t::b": "passed"}, {"t::a": {"err": (0.0003, 0.05)}, "t::b": {}})
    assert compare_runs(_run(1, tiny.outcomes, {"t::a": {"err": (0.0001, 0.05)}, "t::b": {}}), tiny) == []
    # a metric's own baseline_atol (a noisy sensor) widens the band, as for baselines
    noisy_a, noisy_b = (
        _run(1, a.outcomes, {"t::a": {"err": (0.01, 0.04)}}),
        _run(2, a.outcomes, {"t::a": {"err": (0.02, 0.04)}}),
    )
    assert len(compare_runs(noisy_a, noisy_b)) == 1
    noisy_b.metrics["t::a"]["err"]["extra"] = {"baseline_atol": 0.03}
    assert compare_runs(noisy_a, noisy_b) == []


def test_sample_tree_sees_a_grandchild_s_memory() -> None:
    code = (
        "import subprocess, sys; subprocess.run([sys.executable, '-c', "
        "\"b = bytearray(80 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(1.5)\"])"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    with sample_tree(proc.pid, interval=0.05) as sample:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert max(sample.peaks.values()) > 80, sample.peaks  # MiB: the grandchild's touched pages
    assert sample.peak_total > 80 and len(sample.peaks) >= 2


def test_robot_without_lidar_loads_without_a_sensor(tmp_path: Path) -> None:
    pytest.importorskip("mujoco")
    import bench_rtf

    from pytest_simtwin.sim.world.sdf import load_world

    world = load_world(None, bench_rtf.robot_without_lidar(tmp_path))
    assert world.robot.lidars == [] and world.robot.diff_drive is not None
    assert load_world(None, None).robot.lidars  # the built-in robot has one: the copy really removed it
