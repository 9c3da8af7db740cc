"""example_project/: its files load, its configuration is valid, its CI workflow is well-formed, and
its suite runs through the plugin (a fast subset here; scripts/example_campaign.sh runs it all)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "example_project"
WORKFLOW = PROJECT / ".github" / "workflows" / "simulation-test.yml"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ROS_", "GZ_"))}
    env["GZ_SIM_RESOURCE_PATH"] = str(PROJECT / "models")
    return env


def _pytest(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=PROJECT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- files ------------------------------------------------------------------------------------------


def test_layout() -> None:
    for rel in (
        "worlds/test_arena.sdf",
        "urdf/robot.urdf.xacro",
        "config/bridge.yaml",
        "launch/sim.launch.py",
        "src/safety_stop/__main__.py",
        "tests/conftest.py",
        "pyproject.toml",
        ".gitignore",
        ".gitattributes",
    ):
        assert (PROJECT / rel).is_file(), rel
    models = sorted(p.name for p in (PROJECT / "models").iterdir())
    assert models == ["diffbot", "diffbot_twin", "obstacle_box", "obstacle_cylinder"]  # diffbot_twin: calibrated
    for name in models:
        config = ET.parse(PROJECT / "models" / name / "model.config").getroot()
        sdf_file = config.findtext("sdf")
        assert sdf_file and (PROJECT / "models" / name / sdf_file).is_file()
    # meshes go through LFS, but this repository stores none (its robot is made of primitives)
    assert "*.stl filter=lfs" in (PROJECT / ".gitattributes").read_text()
    assert not list(PROJECT.rglob("*.stl")) and not list(PROJECT.rglob("*.dae"))


@pytest.mark.parametrize(
    ("world", "robot", "expect"),
    [
        ("worlds/test_arena.sdf", None, ["crate_ahead", "pillar", "diffbot (robot)", "lidar lidar: 360 samples"]),
        ("worlds/empty_room.sdf", "urdf/robot.urdf.xacro", ["diffbot (robot)", "DiffDrive: wheels r 0.035 m"]),
    ],
)
def test_world_and_robot_load_in_the_simulator(world: str, robot: str | None, expect: list[str]) -> None:
    """`simtwin-sim --check` parses the world with its model:// includes (GZ_SIM_RESOURCE_PATH)."""
    if robot is not None:
        pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the URDF")
    cmd = [sys.executable, "-m", "pytest_simtwin.sim", "--check", world, *(["--robot", robot] if robot else [])]
    out = subprocess.run(cmd, cwd=PROJECT, env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    for text in expect:
        assert text in out.stdout + out.stderr


def test_world_without_resource_path_is_a_clear_error() -> None:
    env = _env()
    del env["GZ_SIM_RESOURCE_PATH"]
    cmd = [sys.executable, "-m", "pytest_simtwin.sim", "--check", "worlds/test_arena.sdf"]
    out = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "model://obstacle_box" in out.stderr and "GZ_SIM_RESOURCE_PATH" in out.stderr


def test_bridge_yaml_entries() -> None:
    entries = yaml.safe_load((PROJECT / "config" / "bridge.yaml").read_text())
    assert {e["ros_topic_name"] for e in entries} >= {"/clock", "/cmd_vel", "/odom", "/scan"}
    for entry in entries:
        assert set(entry) >= {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}
        assert entry["direction"] in ("BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ")
        assert entry["gz_type_name"].startswith("gz.msgs.")


def test_launch_file_is_python_and_says_it_cannot_run_here() -> None:
    source = (PROJECT / "launch" / "sim.launch.py").read_text()
    compile(source, "sim.launch.py", "exec")
    assert "def generate_launch_description" in source and "cannot run" in source


def test_ini_keys_are_known_options() -> None:
    """A misspelt simtwin_* key in the example would be silently ignored by pytest: catch it here."""
    from pytest_simtwin.runtime.settings import OPTIONS

    ini = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    known = {o.ini for o in OPTIONS}
    used = {k for k in ini if k.startswith("simtwin_")}
    assert used and used <= known, sorted(used - known)
    assert (PROJECT / ini["simtwin_world"]).is_file()


# -- CI workflow ------------------------------------------------------------------------------------


def _workflow() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def test_workflow_matches_the_github_schema() -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(tool).exists():
        pytest.skip("check-jsonschema is not installed (dev extras): it bundles the GitHub workflow schema")
    out = subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_workflow_jobs() -> None:
    jobs = _workflow()["jobs"]
    runs = {name: "\n".join(str(s.get("run", "")) for s in job["steps"]) for name, job in jobs.items()}
    assert "pytest -n auto" in runs["tests"] and "--html report.html --self-contained-html" in runs["tests"]
    assert "--simtwin-backend docker" in runs["docker"]
    assert jobs["shards"]["strategy"]["matrix"]["shard"] == [1, 2, 3]
    assert "--simtwin-shard ${{ matrix.shard }}/3" in runs["shards"]
    assert jobs["merge"]["needs"] == "shards" and "simtwin merge" in runs["merge"]
    for name in ("tests", "docker", "shards"):
        uploads = [s for s in jobs[name]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
        assert uploads and uploads[0].get("if") == "always()", name  # reports of red runs too
        paths = uploads[0]["with"]["path"]
        assert "metrics" in paths and "simtwin-artifacts/failures/" in paths


# -- the suite through the plugin -----------------------------------------------------------------------


def _collected(*args: str) -> set[str]:
    out = _pytest("--collect-only", "-q", *args, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return {line for line in out.stdout.splitlines() if "::" in line}


def test_example_shards_cover_the_suite_exactly_once() -> None:
    whole = _collected()
    assert len(whole) >= 20
    parts = [_collected("--simtwin-shard", f"{k}/3") for k in (1, 2, 3)]
    assert set().union(*parts) == whole
    assert sum(len(p) for p in parts) == len(whole)


def test_example_unit_tests_pass() -> None:
    out = _pytest("tests/test_safety_logic.py", "tests/test_model_files.py", "-q")
    assert out.returncode == 0, out.stdout[-3000:]


def test_example_simulation_test_runs_with_the_project_configuration(tmp_path: Path) -> None:
    """One real simulation test with the example's ini keys (world, resource path, rtf)."""
    metrics = tmp_path / "metrics.json"
    out = _pytest(
        "tests/test_motion.py::test_drives_forward_one_metre",
        "-q",
        "--simtwin-metrics-json",
        str(metrics),
        "--simtwin-artifacts",
        str(tmp_path / "artifacts"),
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    import json

    (test,) = json.loads(metrics.read_text())["tests"]
    assert test["outcome"] == "passed"
    assert test["world"] and test["world"].endswith("test_arena.sdf")
    assert [m["name"] for m in test["metrics"]] == ["position_error"]
