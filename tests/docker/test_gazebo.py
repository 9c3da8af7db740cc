"""Gazebo recipe: bridge YAML, command lines and the entrypoint, checked without Gazebo.

The integration test at the end runs the docker/gazebo image when it exists (it cannot be built here:
osrf/ros images need a registry) and skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends import gazebo

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "gazebo" / "entrypoint.sh"

WORLD = """<?xml version="1.0"?>
<sdf version="1.9">
  <world name="warehouse">
    <model name="ground"><static>true</static><link name="l"/></model>
    <model name="tb">
      <link name="base_link">
        <sensor name="lidar" type="gpu_lidar"><topic>scan_front</topic><update_rate>5</update_rate></sensor>
      </link>
      <plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive">
        <left_joint>l</left_joint><right_joint>r</right_joint>
        <topic>/tb/cmd_vel</topic><odom_topic>tb/odom</odom_topic>
      </plugin>
      <plugin filename="gz-sim-joint-state-publisher-system" name="gz::sim::systems::JointStatePublisher">
        <topic>/tb/joints</topic>
      </plugin>
    </model>
  </world>
</sdf>
"""

#: ros_gz_bridge's documented keys and values (README "configuring the bridge via YAML").
REQUIRED_KEYS = {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}
DIRECTIONS = {"BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ"}


@pytest.fixture
def world(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.sdf"
    path.write_text(WORLD)
    return path


def test_topics_from_sdf_read_plugin_parameters(world: Path) -> None:
    t = gazebo.topics_from_sdf(world)
    assert (t.world, t.model) == ("warehouse", "tb")
    assert t.cmd_vel_gz == "/tb/cmd_vel"
    assert t.odom_gz == "/tb/odom"  # relative names get a leading slash like gz-transport does
    assert t.scan_gz == "/scan_front"
    assert t.joint_states_gz == "/tb/joints"


def test_topics_defaults_without_overrides(tmp_path: Path) -> None:
    p = tmp_path / "w.sdf"
    p.write_text(
        '<sdf version="1.9"><world name="w"><model name="bot"><link name="chassis">'
        '<sensor name="laser" type="lidar"/></link>'
        '<plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive"/></model></world></sdf>'
    )
    t = gazebo.topics_from_sdf(p)
    assert t.cmd_vel_gz == "/model/bot/cmd_vel"
    assert t.odom_gz == "/model/bot/odometry"
    assert t.joint_states_gz == "/world/w/model/bot/joint_state"
    assert t.scan_gz == "/world/w/model/bot/link/chassis/sensor/laser/scan"


def test_included_robot_is_found_through_the_resource_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The example project's arena includes its robot as model://diffbot, as most robot repos do.
    project = Path(__file__).resolve().parents[2] / "example_project"
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(project / "models"))
    t = gazebo.topics_from_sdf(project / "worlds" / "test_arena.sdf")
    assert (t.world, t.model) == ("test_arena", "diffbot")
    assert t.cmd_vel_gz and t.odom_gz and t.scan_gz
    named = gazebo.topics_from_sdf(project / "worlds" / "test_arena.sdf", model="diffbot")
    assert named == t
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", "")
    with pytest.raises(ValueError, match=r"test_arena\.sdf: .*cannot resolve <uri>model://obstacle_box</uri>"):
        gazebo.topics_from_sdf(project / "worlds" / "test_arena.sdf")


def test_bad_world_files_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sdf"
    bad.write_text("<sdf><world name='x'>")
    with pytest.raises(ValueError, match="cannot read it as SDF"):
        gazebo.topics_from_sdf(bad)
    empty = tmp_path / "empty.sdf"
    empty.write_text("<sdf><world name='x'><model name='box'/></world></sdf>")
    with pytest.raises(ValueError, match="DiffDrive"):
        gazebo.topics_from_sdf(empty)


def test_bridge_yaml_follows_the_documented_format(world: Path) -> None:
    text = gazebo.bridge_yaml(gazebo.topics_from_sdf(world, cmd_vel_type="twist_stamped"))
    entries = yaml.safe_load(text)
    assert isinstance(entries, list) and len(entries) == 5
    for e in entries:
        assert set(e) >= REQUIRED_KEYS, e
        assert e["direction"] in DIRECTIONS
        assert e["gz_type_name"] == gazebo.GZ_TYPES[e["ros_type_name"]]
    by_ros = {e["ros_topic_name"]: e for e in entries}
    assert by_ros["/cmd_vel"] == {
        "ros_topic_name": "/cmd_vel",
        "gz_topic_name": "/tb/cmd_vel",
        "ros_type_name": "geometry_msgs/msg/TwistStamped",
        "gz_type_name": "gz.msgs.Twist",
        "direction": "ROS_TO_GZ",
    }
    assert by_ros["/odom"]["gz_type_name"] == "gz.msgs.Odometry" and by_ros["/odom"]["direction"] == "GZ_TO_ROS"
    assert by_ros["/scan"]["gz_topic_name"] == "/scan_front"
    assert by_ros["/joint_states"]["gz_type_name"] == "gz.msgs.Model"
    assert by_ros["/clock"]["ros_type_name"] == "rosgraph_msgs/msg/Clock"


def test_our_simulator_reads_the_generated_bridge(world: Path, tmp_path: Path) -> None:
    """The embedded simulator's --bridge parser accepts what we generate (same file for both)."""
    import importlib

    load_bridge = None
    for name in ("pytest_simtwin.sim.topics", "pytest_simtwin.sim.node"):
        try:
            load_bridge = getattr(importlib.import_module(name), "load_bridge", None)
        except ImportError:
            continue
        if load_bridge is not None:
            break
    if load_bridge is None:
        pytest.skip("the simulator's bridge parser (load_bridge) is not available")
    path = tmp_path / "bridge.yaml"
    path.write_text(gazebo.bridge_yaml(gazebo.topics_from_sdf(world)))
    loaded = load_bridge(path)
    assert len(loaded) == 5


def test_robot_without_lidar_gets_no_scan_entry() -> None:
    t = gazebo.RobotTopics.for_model("w", "bot", scan_gz=None)
    names = [e.ros_topic_name for e in gazebo.bridge_entries(t)]
    assert names == ["/cmd_vel", "/odom", "/joint_states", "/clock"]
    only = gazebo.RobotTopics.for_model("w", "bot", only=("odom", "clock"))
    assert [e.ros_topic_name for e in gazebo.bridge_entries(only)] == ["/odom", "/clock"]
    with pytest.raises(ValueError, match="unknown topic kind"):
        gazebo.RobotTopics.for_model("w", "bot", only=("tf",))


def test_command_lines() -> None:
    assert gazebo.gz_server_command("/w/world.sdf") == [
        "gz", "sim", "-s", "-r", "--headless-rendering", "-v", "3", "/w/world.sdf",
    ]  # fmt: skip
    assert gazebo.gz_server_command("w.sdf", seed=4, iterations=100, verbose=1)[-5:] == [
        "--seed", "4", "--iterations", "100", "w.sdf",
    ]  # fmt: skip
    assert gazebo.bridge_command("/tmp/b.yaml") == [
        "ros2", "run", "ros_gz_bridge", "parameter_bridge", "--ros-args", "-p", "config_file:=/tmp/b.yaml",
    ]  # fmt: skip


def _entry_env(path: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GZ_", "SIMTWIN_"))}
    env.update(PATH=path, SIMTWIN_PYTHON=sys.executable, **extra)
    env.pop("ROS_DISTRO", None)
    return env


def _fake_tools(bindir: Path, record: Path) -> None:
    """gz and ros2 stand-ins that record argv + GZ_PARTITION and run until terminated."""
    bindir.mkdir()
    for tool in ("gz", "ros2"):
        script = bindir / tool
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{tool} $GZ_PARTITION $*" >> {record}\n'
            "trap 'exit 0' TERM\n"
            "while :; do sleep 0.1; done\n"
        )
        script.chmod(0o755)


def test_entrypoint_without_gz_and_ros2_says_what_is_missing(world: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), str(world)],
        env=_entry_env(f"{empty}:/bin"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == gazebo.EXIT_MISSING_TOOL, proc.stderr
    assert "gz and ros2 not found on PATH" in proc.stderr
    assert "osrf/ros:<distro>-simulation-<os>" in proc.stderr


def test_entrypoint_without_world_fails_with_usage(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), str(tmp_path / "nope.sdf")],
        env=_entry_env("/bin"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == gazebo.EXIT_USAGE
    assert "nope.sdf not found inside the container" in proc.stderr


def test_entrypoint_dry_run_prints_the_plan(world: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    _fake_tools(bindir, tmp_path / "record.txt")
    proc = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), "--dry-run", str(world)],
        env=_entry_env(f"{bindir}:/bin:/usr/bin", ROS_DOMAIN_ID="42", GZ_PARTITION="part42",
                       SIMTWIN_WORKDIR=str(tmp_path / "wd")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["gz_argv"] == [str(bindir / "gz"), "sim", "-s", "-r", "--headless-rendering", "-v", "3", str(world)]
    assert plan["bridge_argv"][1:] == ["run", "ros_gz_bridge", "parameter_bridge", "--ros-args", "-p",
                                       f"config_file:={tmp_path / 'wd' / 'bridge.yaml'}"]  # fmt: skip
    assert plan["partition"] == "part42" and plan["env"]["GZ_PARTITION"] == "part42"
    assert yaml.safe_load(plan["bridge_yaml"])[0]["gz_topic_name"] == "/tb/cmd_vel"
    assert not (tmp_path / "record.txt").exists()  # dry run starts nothing


def test_entrypoint_runs_both_and_stops_them_on_sigterm(world: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    record = tmp_path / "record.txt"
    _fake_tools(bindir, record)
    proc = subprocess.Popen(
        ["/bin/sh", str(ENTRYPOINT), str(world)],
        env=_entry_env(f"{bindir}:/bin:/usr/bin", ROS_DOMAIN_ID="42", SIMTWIN_WORKDIR=str(tmp_path / "wd")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: record.exists() and len(record.read_text().splitlines()) == 2, 30.0,
                   what="gz and ros2 to start")  # fmt: skip
        lines = sorted(record.read_text().splitlines())
        partition = lines[0].split()[1]
        assert partition.endswith("_42")  # GZ_PARTITION derived from the domain when not given
        assert lines[0].startswith(f"gz {partition} sim -s -r --headless-rendering")
        assert lines[1] == f"ros2 {partition} run ros_gz_bridge parameter_bridge --ros-args -p " \
            f"config_file:={tmp_path / 'wd' / 'bridge.yaml'}"  # fmt: skip
        assert yaml.safe_load((tmp_path / "wd" / "bridge.yaml").read_text())[1]["ros_topic_name"] == "/odom"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_entrypoint_exits_when_gz_dies(world: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    _fake_tools(bindir, tmp_path / "record.txt")
    (bindir / "gz").write_text("#!/bin/sh\necho 'gz: cannot load world' >&2\nexit 3\n")
    start = time.monotonic()
    proc = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), str(world)],
        env=_entry_env(f"{bindir}:/bin:/usr/bin", SIMTWIN_WORKDIR=str(tmp_path / "wd")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3
    assert "cannot load world" in proc.stderr and "exited with code 3" in proc.stderr
    assert time.monotonic() - start < 30


GAZEBO_IMAGE = os.environ.get("SIMTWIN_GAZEBO_IMAGE", "pytest-simtwin/gazebo:jazzy")
GAZEBO_WORLD = os.environ.get("SIMTWIN_GAZEBO_WORLD", str(ROOT / "example_project" / "worlds" / "test_arena.sdf"))


@pytest.mark.docker
def test_gazebo_image_through_the_docker_backend(docker_client: object, tmp_path: Path) -> None:
    """gz sim + bridge in the recipe image publish /odom on the worker's domain; where the image exists."""
    from nav_msgs.msg import Odometry

    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.backends.containers.docker import DockerBackend, check_image
    from pytest_simtwin.errors import BackendError
    from pytest_simtwin.ros import domains
    from pytest_simtwin.ros import environment as rosenv
    from pytest_simtwin.ros.session import RosSession

    try:
        check_image(docker_client, GAZEBO_IMAGE)
    except BackendError:
        pytest.skip(
            f"Gazebo image {GAZEBO_IMAGE} not built here (needs osrf/ros:<distro>-simulation-<os> from a registry): "
            f"docker build -f docker/gazebo/Dockerfile -t {GAZEBO_IMAGE} ."
        )
    ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
    with domains.acquire_domain(ids, owner="gazebo-image-test") as lease:
        env = rosenv.ros_environment(lease.domain_id, lease.partition)
        with RosSession(lease.domain_id, env) as ros:
            cfg = SimConfig(image=GAZEBO_IMAGE, world=Path(GAZEBO_WORLD), start_timeout=120.0)
            with DockerBackend(cfg, lease=lease, ros=ros, env=env, workdir=tmp_path) as backend:
                msg = ros.wait_for_message("/odom", Odometry, timeout=30.0, since=0.0)
                assert msg.header.frame_id
                assert "GZ_PARTITION=" in "\n".join(backend.log_tail(200))


def test_cli_writes_the_bridge_file(tmp_path: Path) -> None:
    out = tmp_path / "bridge.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.cli", "image", "bridge", "--world", "arena", "--model", "bot",
         "--topics", "cmd_vel,odom,clock", "--cmd-vel-type", "twist_stamped", "-o", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    entries = yaml.safe_load(out.read_text())
    assert [e["gz_topic_name"] for e in entries] == ["/model/bot/cmd_vel", "/model/bot/odometry", "/clock"]
    assert entries[0]["ros_type_name"] == "geometry_msgs/msg/TwistStamped"
