"""The public API at the package root, typed fixtures, and no third-party warnings in users' runs."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_simtwin


def test_the_root_exports_what_tests_use() -> None:
    from pytest_simtwin import Robot, Sim, SimPool, assert_within_tolerance, record_metric

    assert Robot.__module__ == "pytest_simtwin.helpers.robot"
    assert Sim.__module__ == "pytest_simtwin.runtime.sim"
    assert SimPool.__module__ == "pytest_simtwin.batch.pool"
    assert callable(assert_within_tolerance) and callable(record_metric)


def test_every_exported_name_resolves_and_all_lists_them() -> None:
    assert set(pytest_simtwin.__all__) == {"__version__", *pytest_simtwin._EXPORTS, *pytest_simtwin._MODULES}
    assert pytest_simtwin.faults is importlib.import_module("pytest_simtwin.control.faults")
    for name, module in pytest_simtwin._EXPORTS.items():
        assert getattr(pytest_simtwin, name) is getattr(importlib.import_module(module), name), name
    assert issubclass(pytest_simtwin.ConfigError, pytest_simtwin.SimTwinError)
    with pytest.raises(AttributeError, match="no attribute 'Robott'"):
        _ = pytest_simtwin.Robott


def test_old_import_paths_in_the_docs_keep_working() -> None:
    from pytest_simtwin.helpers.assertions import assert_within_tolerance
    from pytest_simtwin.twin import Trajectory, validate

    assert assert_within_tolerance is pytest_simtwin.assert_within_tolerance
    assert callable(validate) and Trajectory is not None


def test_mypy_sees_the_fixture_types(tmp_path: Path) -> None:
    """A test typed with the root's classes type-checks, and the fixtures declare those types."""
    source = tmp_path / "test_typed.py"
    source.write_text(
        "from collections.abc import Iterator\n"
        "from pytest_simtwin import MetricRecorder, Robot, Sim\n"
        "\n"
        "def test_drive(robot: Robot, sim: Sim, record_metric: MetricRecorder) -> None:\n"
        "    robot.send_velocity(0.5, 0.0, 1.0)\n"
        "    reveal_type(robot.ground_truth)\n"
        "    sim.step(duration=0.1)\n"
        "    robot.send_velocity('fast', 0.0, 1.0)  # a type error mypy must catch\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", str(source)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    out = proc.stdout
    assert 'Argument 1 to "send_velocity" of "Robot" has incompatible type "str"' in out, out
    assert "Revealed type is" in out and "Pose2D" in out, out  # robot.ground_truth is a typed Pose2D
    assert out.count("error:") == 1, out


@pytest.mark.parametrize(
    ("fixture", "declared"),
    [
        ("sim", "Iterator[Sim]"),
        ("robot", "Iterator[Robot]"),
        ("ros_node", "RosNodeHelper"),
        ("launch_node", "Iterator[NodeLauncher]"),
        ("record_metric", "MetricRecorder"),
        ("twin_validation", "TwinValidation"),
        ("simtwin_session", "Iterator[SimSession]"),
        ("faults", "FaultInjector"),
    ],
)
def test_fixtures_declare_the_public_types(fixture: str, declared: str) -> None:
    from pytest_simtwin.plugin import hooks

    function = getattr(hooks, fixture)._get_wrapped_function()
    assert inspect.signature(function).return_annotation == declared
    name = declared.removeprefix("Iterator[").rstrip("]")
    assert hasattr(pytest_simtwin, name) or name == "SimSession"


SIM_TEST = """
def test_drives(robot):
    robot.send_velocity(0.3, 0.0, 1.0)
    assert robot.ground_truth.x > 0.2
"""


def test_a_simulation_run_passes_with_deprecation_warnings_as_errors(pytester: pytest.Pytester) -> None:
    """Nothing we import warns in the user's run (lark's sre_parse warnings used to)."""
    pytester.makepyfile(test_w=SIM_TEST)
    result = pytester.runpytest_subprocess(
        "-W", "error::DeprecationWarning", "-p", "no:cacheprovider", "-W", "error::PendingDeprecationWarning"
    )
    result.assert_outcomes(passed=1)
    assert "DeprecationWarning" not in result.stdout.str()
