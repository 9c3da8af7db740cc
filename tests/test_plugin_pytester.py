"""The plugin end to end: real pytest runs (pytester subprocesses) against the real embedded simulator."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

MOTION = """
import math
import time

import pytest

WALL = {}

@pytest.fixture(autouse=True)
def _wall(request):
    yield
    with open("walls.txt", "a") as fh:   # xdist does not forward -s output
        fh.write(f"WALL {request.node.name} {WALL.get(request.node.name, -1):.3f}\\n")

def _drive(request, robot, vx, wz, duration):
    t0 = time.monotonic()
    robot.send_velocity(vx, wz, duration)
    WALL[request.node.name] = time.monotonic() - t0
    # Stepped in sim time, the command lasts exactly its duration on the simulator's clock; timed
    # by wall-clock sleeps it would carry DDS latency (milliseconds at least).
    cmd_t = robot.trajectory["cmd_t"]
    assert abs(cmd_t[-1] - cmd_t[-2] - duration) < 1e-6, list(cmd_t)

def test_forward(request, robot):
    start = robot.pose
    _drive(request, robot, 0.5, 0.0, 2.0)
    end = robot.pose
    assert 0.8 <= math.hypot(end.x - start.x, end.y - start.y) <= 1.2

def test_rotation(request, robot):
    def yaw():
        q = robot.latest_odom().pose.pose.orientation
        return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
    robot.wait_for_odom()
    y0 = yaw()
    _drive(request, robot, 0.0, 0.5, 2.0)
    turned = math.atan2(math.sin(yaw() - y0), math.cos(yaw() - y0))
    assert 0.8 <= turned <= 1.2

def test_stop(request, robot):
    _drive(request, robot, 0.5, 0.0, 2.0)
    assert abs(robot.velocity.vx) < 0.05
"""


def _walls(path: Path) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"WALL (\w+) ([-\d.]+)", path.read_text())}


def test_tutorial_motion_tests_pass_with_8_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_motion=MOTION)
    result = pytester.runpytest_subprocess("-n", "8", "-p", "no:cacheprovider", "--durations=0", timeout=240)
    result.assert_outcomes(passed=3)
    walls = _walls(pytester.path / "walls.txt")
    assert set(walls) == {"test_forward", "test_rotation", "test_stop"}
    total = sum(walls.values())
    # Wall time depends on the machine's load (8 workers on 2 cores): printed, not asserted; that
    # the motion was stepped in sim time is asserted inside each test (_drive).
    print(f"commanded 6.0 s of motion took {total:.2f} s wall ({6.0 / total:.1f}x real time)")


HARMLESS = """
import os, sys

def test_nothing_started(pytestconfig):
    assert "rclpy" not in sys.modules
    assert "ROS_DOMAIN_ID" not in os.environ or os.environ["ROS_DOMAIN_ID"] == "{outer}"
    assert not (pytestconfig.rootpath / "simtwin-artifacts").exists()
"""


def test_installed_plugin_is_harmless(pytester: pytest.Pytester) -> None:
    import os

    pytester.makepyfile(HARMLESS.replace("{outer}", os.environ.get("ROS_DOMAIN_ID", "")))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=1)


USER_ROS = """
import time

import rclpy
from std_msgs.msg import String

def _roundtrip(name):
    rclpy.init()
    try:
        node = rclpy.create_node(name)
        got = []
        node.create_subscription(String, "/user_topic", got.append, 10)
        pub = node.create_publisher(String, "/user_topic", 10)
        deadline = time.monotonic() + 15
        while not got and time.monotonic() < deadline:
            pub.publish(String(data="hi"))
            rclpy.spin_once(node, timeout_sec=0.05)
        assert got and got[0].data == "hi"
        node.destroy_node()
    finally:
        rclpy.shutdown()

def test_a_user_before():
    _roundtrip("user_before")

def test_b_sim(sim):
    assert sim.state()["state"] == "playing"

def test_c_user_after():
    _roundtrip("user_after")

def test_d_sim_again(sim):
    assert sim.state()["state"] == "playing"
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_users_own_rclpy_init_keeps_working(
    pytester: pytest.Pytester, workers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range

    pytester.makepyfile(test_user=USER_ROS)
    # The users' own nodes run on the domain their environment names. This worker's environment
    # names its own simulator's domain; give the inner run a quiet leased one, as a user's shell has.
    # (Once, on a loaded CI run, rclpy's destroy_node segfaulted in the user's test while sharing
    # the busy domain; rclpy issue 178 reports such occasional destroy_node crashes.)
    with acquire_domain(parse_domain_range(DEFAULT_DOMAIN_RANGE), owner="tests/user-rclpy") as lease:
        monkeypatch.setenv("ROS_DOMAIN_ID", str(lease.domain_id))
        monkeypatch.delenv("GZ_PARTITION", raising=False)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers, timeout=180)
    result.assert_outcomes(passed=4)


DEATH = """
import os, signal

from pytest_simtwin.backends.processes import partition_members

def test_a_sim_dies(sim, robot):
    for pid in partition_members(sim.partition):
        os.kill(pid, signal.SIGKILL)
    robot.send_velocity(0.2, 0.0, 1.0)

def test_b_next_gets_a_fresh_simulator(sim, robot):
    robot.send_velocity(0.2, 0.0, 0.5)
    assert sim.alive
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_simulator_death_is_an_error_and_the_next_test_runs(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(test_death=DEATH)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--simtwin-timeout", "20", "--junitxml=j.xml", *workers, timeout=180
    )
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "SimulatorDiedError" in out and "exited with code -9 during the test" in out
    assert "lines of simulator log" in out
    # JUnit has no "error" for the call phase: the testcase says it was the infrastructure
    import xml.etree.ElementTree as ET

    cases = {c.get("name"): c for c in ET.parse(pytester.path / "j.xml").getroot().iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["test_a_sim_dies"].iter("property")}
    assert (props.get("simtwin_error") or "").startswith("infrastructure: "), props
    assert "simtwin_error" not in {p.get("name") for p in cases["test_b_next_gets_a_fresh_simulator"].iter("property")}


MARKED = """
import pytest

def test_a_default(sim):
    assert sim.state()["seed"] == 0

@pytest.mark.simtwin(seed=7, rtf=0)
def test_b_marked(sim):
    assert sim.state()["seed"] == 7 and sim.config.rtf == 0

def test_c_default_again(sim):
    assert sim.state()["seed"] == 0

@pytest.mark.simtwin(world="{world}")
def test_d_world(sim):
    assert sim.state()["world"]

@pytest.mark.simtwin(lockstep=True)
def test_e_lockstep(sim, robot):
    state = sim.state()
    assert state["lockstep"] and state["state"] == "paused"
    robot.send_velocity(0.5, 0.0, 1.0)
    assert 0.4 < robot.pose.x < 0.6
"""


def test_marker_restarts_the_simulator_with_the_new_config(pytester: pytest.Pytester) -> None:
    from importlib import resources

    world = resources.files("pytest_simtwin") / "sim" / "defaults" / "arena.sdf"
    pytester.makepyfile(test_marked=MARKED.replace("{world}", str(world)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=180)
    result.assert_outcomes(passed=5)
    logs = sorted((pytester.path / "simtwin-artifacts" / "master").glob("embedded-sim-*.log"))
    assert len(logs) == 5, logs  # default, seed 7, default again, other world, lockstep


def test_bad_marker_under_xdist_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bad="import pytest\n\n@pytest.mark.simtwin(rtf=-1)\ndef test_x(sim):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", timeout=120)
    # Under xdist a worker cannot raise a usage error cleanly: the test errors before it runs.
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "test_bad.py::test_x: @pytest.mark.simtwin(rtf=...): expected a number >= 0, found -1" in text
    assert "simtwin-artifacts" not in {p.name for p in pytester.path.iterdir()}  # no simulator was started


def test_bad_option_under_xdist_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--simtwin-rtf", "-3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--simtwin-rtf: expected a real-time factor >= 0" in result.stderr.str()


def test_metrics_and_records_reach_the_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_metric="def test_m(sim, record_metric):\n    record_metric('lap_time', 1.5, unit='s', tolerance=2.0)\n"
    )
    out = pytester.path / "metrics.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--simtwin-metrics-json={out}", timeout=120)
    result.assert_outcomes(passed=1)
    text = json.dumps(json.loads(out.read_text()))
    assert "lap_time" in text and '"embedded"' in text


NODE = """
import rclpy
from nav_msgs.msg import Odometry
from std_msgs.msg import String

rclpy.init()
node = rclpy.create_node("odom_echo")
pub = node.create_publisher(String, "/odom_echo", 10)
node.create_subscription(Odometry, "/odom", lambda m: pub.publish(String(data=f"{m.pose.pose.position.x:.4f}")), 10)
try:
    rclpy.spin(node)
except BaseException:
    pass
"""

NODE_TEST = """
import sys

def test_node_under_test_sees_the_simulator(sim, robot, launch_node, ros_node):
    node = launch_node(sys.executable, args=["odom_echo.py"], ready_topic="/odom_echo", ready_type="std_msgs/msg/String")
    robot.send_velocity(0.4, 0.0, 1.0)
    x = robot.pose.x
    msg = ros_node.wait_for_message("/odom_echo", "std_msgs/msg/String", timeout=10,
                                    predicate=lambda m: abs(float(m.data) - x) < 0.005)
    assert node.alive and abs(float(msg.data) - x) < 0.005 and x > 0.3
"""


def test_launch_node_and_ros_node_share_the_simulation_domain(pytester: pytest.Pytester) -> None:
    pytester.makefile(".py", odom_echo=NODE)
    pytester.makepyfile(test_node=NODE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=180)
    result.assert_outcomes(passed=1)
    logs = list((pytester.path / "simtwin-artifacts" / "master").rglob("node-*.log"))
    assert logs, "the node's log is kept in the test's artifacts directory"


def test_attach_backend_uses_a_running_simulator_and_leaves_it_running(pytester: pytest.Pytester) -> None:
    import sys

    from pytest_simtwin.backends.processes import ManagedProcess
    from pytest_simtwin.ros import domains
    from pytest_simtwin.ros import environment as rosenv

    ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
    with domains.acquire_domain(ids, owner="attach test", prefer=ids[-1]) as lease:
        env = rosenv.ros_environment(lease.domain_id, lease.partition)
        with ManagedProcess(
            [sys.executable, "-m", "pytest_simtwin.sim"], env=env, log_path=pytester.path / "ext.log", lease=lease
        ) as external:
            pytester.makepyfile(
                test_attach=f"def test_drive(sim, robot):\n"
                f"    assert sim.domain_id == {lease.domain_id}\n"
                f"    robot.send_velocity(0.5, 0.0, 1.0)\n"
                f"    assert 0.4 < robot.displacement < 0.6\n"
            )
            result = pytester.runpytest_subprocess(
                "-p",
                "no:cacheprovider",
                "--simtwin-backend=attach",
                f"--simtwin-attach-domain={lease.domain_id}",
                timeout=120,
            )
            result.assert_outcomes(passed=1)
            assert external.is_alive(), "attach must never stop the simulator it attached to"


PROCESS_TEST = """
import os

def test_drive(sim, robot):
    with open("partition.txt", "w") as fh:
        fh.write(sim.partition)
    robot.send_velocity(0.5, 0.0, 1.0)
    assert 0.4 < robot.displacement < 0.6
"""


def test_process_backend_runs_a_shell_pipeline_and_stops_all_of_it(pytester: pytest.Pytester) -> None:
    import sys

    from pytest_simtwin.backends.processes import partition_members

    pytester.makepyfile(test_proc=PROCESS_TEST)
    command = f"{sys.executable} -m pytest_simtwin.sim --seed {{seed}} --rtf {{rtf}} 2>&1 | cat"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--simtwin-backend=process", f"--simtwin-command={command}", timeout=120
    )
    result.assert_outcomes(passed=1)
    partition = (pytester.path / "partition.txt").read_text()
    assert not partition_members(partition), "the pipeline's processes (python and cat) are all gone"


def test_process_backend_that_never_publishes_errors_within_the_timeout(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_quiet="def test_a(sim):\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--simtwin-backend=process",
        "--simtwin-command=sleep 600",
        "--simtwin-timeout=3",
        "--durations=0",
        timeout=120,
    )
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "SimulatorStartError: timed out after 3.00 s waiting for the first nav_msgs/msg/Odometry on /odom" in out
    assert "$ sleep 600" in out  # the simulator's log tail
    setup = re.search(r"([\d.]+)s setup +test_quiet.py::test_a", out)
    assert setup is not None and float(setup.group(1)) < 8.0, out


# Loaded with -p, before the installed plugins: sees the start at the plugin's registration too.
WARMUP_RECORDER = """
import traceback
from pathlib import Path

from pytest_simtwin.backends import forkclient


def _record():
    names = {frame.name for frame in traceback.extract_stack()}
    phase = next((p for hook, p in HOOKS if hook in names), "collection")
    with Path.cwd().joinpath("prewarm.log").open("a") as log:
        log.write(phase + "\\n")


HOOKS = (("pytest_addoption", "registration"), ("pytest_configure", "configure"))
forkclient.prewarm = _record  # observed, not started
"""


def test_the_fork_server_starts_at_registration_when_the_same_command_used_it(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No simulator runs here (collection only): a private state directory is safe.
    monkeypatch.setenv("SIMTWIN_STATE_DIR", str(tmp_path / "state"))
    pytester.makepyfile(record_prewarm=WARMUP_RECORDER)
    pytester.makepyfile(test_motion="def test_drive(sim):\n    pass\n")
    log = pytester.path / "prewarm.log"

    def run(*args: str) -> list[str]:
        log.unlink(missing_ok=True)
        argv = ("--collect-only", "-q", "-p", "no:cacheprovider", "-p", "record_prewarm", *args)
        # pytester.run, not runpytest_subprocess: that adds a new --basetemp (another command) each time
        pytester.run(sys.executable, "-m", "pytest", *argv, timeout=120).assert_outcomes()
        return log.read_text().split() if log.exists() else []

    assert run() == ["collection"]  # first run: known only once a test using `sim` is collected
    assert run() == ["registration"]  # the same command used the fork server last time: at once
    assert run("test_motion.py") == ["collection"]  # another command, another memory
    assert run("--simtwin-backend", "process", "--simtwin-command", "true") == []  # no fork server
    assert run("--simtwin-backend", "process", "--simtwin-command", "true") == []  # ... nothing remembered
    pytester.makepyfile(test_motion="def test_pure():\n    pass\n")
    assert run() == ["registration"]  # one wrong guess (an idle server that exits after the run) ...
    assert run() == []  # ... and the memory follows what was collected
