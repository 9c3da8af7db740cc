"""`simtwin validate | synth | calibrate` end to end on files (exit codes 0 pass / 1 fail / 2 error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pytest_simtwin.cli import main
from pytest_simtwin.twin.data import Trajectory

from .bagtools import write_bag


@pytest.fixture(scope="module")
def files(sim_run: Trajectory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    sim = sim_run.save_json(d / "sim.json")
    assert main(["synth", str(sim), "-o", str(d / "real_ok.json"), "--seed", "3"]) == 0
    assert (
        main(
            [
                "synth",
                str(sim),
                "-o",
                str(d / "real_r3.json"),
                "--radius-scale",
                "1.03",
                "--rate",
                "50",
                "--time-offset",
                "500",
            ]
        )
        == 0
    )
    return {"dir": d, "sim": sim, "ok": d / "real_ok.json", "r3": d / "real_r3.json"}


def test_validate_pass_writes_metrics_and_png(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["dir"] / "out_ok"
    assert main(["validate", str(files["ok"]), str(files["sim"]), "--out", str(out), "--progress"]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["verdict"] == "pass" and doc["passed"] is True
    pe = doc["metrics"]["position_error"]
    assert pe["tolerance"] == 0.01 and pe["pass"] is True and "rmse" in pe["extra"] and "max" in pe["extra"]
    assert doc["metrics"]["velocity_tracking"]["tolerance"] == 0.05
    assert doc["metrics"]["sensor_latency"]["tolerance"] == 0.01
    png = (out / "validation_report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    captured = capsys.readouterr()
    assert "PASS" in captured.out and "100%" in captured.err  # the progress bar went to stderr


def test_validate_fail_exit_code_1(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["dir"] / "out_r3"
    assert main(["validate", str(files["r3"]), str(files["sim"]), "--out", str(out), "--no-png"]) == 1
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["verdict"] == "fail" and doc["metrics"]["position_error"]["pass"] is False
    assert not (out / "validation_report.png").exists()
    assert "FAIL" in capsys.readouterr().out


def test_validate_errors_exit_code_2(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["validate", str(bad), str(files["sim"]), "--out", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["validate", str(files["ok"]), "--out", str(tmp_path)]) == 2
    assert "--replay" in capsys.readouterr().err


def test_validate_bags_end_to_end(files: dict[str, Path], sim_run: Trajectory, tmp_path: Path) -> None:
    """ROS 1 real data against a rosbag2 MCAP simulated run, and sqlite3 against MCAP."""
    from pytest_simtwin.twin.loaders import load_trajectory

    real = load_trajectory(files["ok"])
    real_bag = write_bag(real.shifted(1000.0), tmp_path / "real.bag", "ros1")
    real_db = write_bag(real.shifted(1000.0), tmp_path / "real_db", "sqlite3")
    sim_bag = write_bag(sim_run.shifted(5.0), tmp_path / "sim_mcap", "mcap")
    for r in (real_bag, real_db):
        assert main(["validate", str(r), str(sim_bag), "--out", str(tmp_path / r.stem), "--no-png"]) == 0
        assert json.loads((tmp_path / r.stem / "metrics.json").read_text())["alignment"]["offset"] == pytest.approx(
            995.0
        )


def test_metric_subset_and_offset_options(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sub"
    code = main(
        [
            "validate",
            str(files["r3"]),
            str(files["sim"]),
            "--out",
            str(out),
            "--no-png",
            "--metrics",
            "velocity_tracking",
            "--offset",
            "xcorr",
        ]
    )
    assert code == 0  # 3 % speed error is within the 5 % velocity tolerance
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["metrics"]) == ["velocity_tracking"] and doc["alignment"]["method"] == "xcorr"


def test_calibrate_then_validate_with_the_model(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    d = files["dir"]
    code = main(["calibrate", str(files["r3"]), "--out", str(d / "cal.yaml"), "--sdf-out", str(d / "cal.sdf")])
    assert code == 0
    out = capsys.readouterr().out
    assert "held-out check" in out and "REFUSED" not in out
    assert (d / "cal.sdf").is_file() and "wheel_radius" in (d / "cal.yaml").read_text()
    doc = yaml.safe_load((d / "cal.yaml").read_text())
    assert doc["robot"]["diff_drive"]["wheel_radius"] == pytest.approx(0.033 * 1.03, rel=0.005)
    assert doc["calibration"]["parameters"]["wheel_radius"]["identified"] is True
    assert doc["calibration"]["parameters"]["wheel_radius"]["stderr"] < 1e-4
    page = (d / "cal.html").read_text()
    assert "Twin calibration: <span class=pass>accepted" in page and "wheel_radius" in page
    out = d / "validated"
    assert (
        main(["validate", str(files["r3"]), str(files["sim"]), "--out", str(out), "--twin", str(d / "cal.yaml")]) == 1
    )
    report = (out / "validation_report.html").read_text()  # the parameters table of the twin used
    assert "Twin parameters" in report and "1-sigma" in report and "data:image/png;base64," in report


def test_calibrate_from_a_ros1_bag_with_plain_twist_commands(files: dict[str, Path], tmp_path: Path) -> None:
    """As users have it: a ROS 1 bag, /cmd_vel as plain Twist (no stamp: bag receive times are used)."""
    from pytest_simtwin.twin.loaders import load_trajectory

    real = load_trajectory(files["r3"])
    bag = write_bag(real, tmp_path / "robot.bag", "ros1", cmd_topic="/mobile_base/cmd_vel")  # discovered by type
    out = tmp_path / "cal.yaml"
    assert main(["calibrate", str(bag), "--out", str(out)]) == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["robot"]["diff_drive"]["wheel_radius"] == pytest.approx(0.033 * 1.03, rel=0.005)
    assert doc["calibration"]["data"] == str(bag)
