"""launch_node and ros_node against real rclpy node processes on a leased ROS domain."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_simtwin.errors import ConfigError, WaitTimeout
from pytest_simtwin.helpers import nodes
from pytest_simtwin.helpers.nodes import NodeLauncher, RosNodeHelper, node_argv
from pytest_simtwin.results.records import TestRecord
from pytest_simtwin.ros import environment as rosenv
from pytest_simtwin.ros.domains import (
    DEFAULT_DOMAIN_RANGE,
    DomainLease,
    acquire_domain,
    parse_domain_range,
    process_alive,
)
from pytest_simtwin.ros.session import RosSession

ECHO_NODE = textwrap.dedent(
    """
    import os
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from std_msgs.msg import String
    from std_srvs.srv import SetBool

    class Echo(Node):
        def __init__(self):
            super().__init__("echo")
            self.out = self.create_publisher(String, "/echo_out", 10)
            self.ready = self.create_publisher(String, "/echo_ready", 10)
            self.create_subscription(String, "/echo_in", self.on_msg, 10)
            self.create_service(SetBool, "/echo_toggle", self.on_toggle)
            self.create_timer(0.1, lambda: self.ready.publish(String(data="ready")))

        def on_msg(self, msg):
            self.out.publish(String(data="echo: " + msg.data))

        def on_toggle(self, req, resp):
            resp.success = True
            resp.message = f"toggled to {req.data}"
            return resp

    print("domain", os.environ.get("ROS_DOMAIN_ID"), "var", os.environ.get("MY_VAR"), flush=True)
    rclpy.init()
    node = Echo()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        print("clean shutdown", flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    """
)

HANGING_NODE = textwrap.dedent(
    """
    import signal, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("SIGNALS IGNORED", flush=True)
    while True:
        time.sleep(1)
    """
)

CRASHING_NODE = textwrap.dedent(
    """
    print("booting the planner", flush=True)
    raise RuntimeError("boom: map file missing")
    """
)


@pytest.fixture(scope="module")
def lease() -> Iterator[DomainLease]:
    # Mid-range start: tests that use a private SIMTWIN_STATE_DIR take low ids without seeing leases.
    ids = parse_domain_range(DEFAULT_DOMAIN_RANGE)
    with acquire_domain(ids, owner=f"test_nodes pid {os.getpid()}", prefer=ids[len(ids) // 2 + 7]) as held:
        yield held


@pytest.fixture(scope="module")
def env(lease: DomainLease) -> Iterator[dict[str, str]]:
    environment = rosenv.ros_environment(lease.domain_id, lease.partition)
    previous = rosenv.apply_environment(environment)
    yield environment
    rosenv.restore_environment(previous)


@pytest.fixture(scope="module")
def ros(lease: DomainLease, env: dict[str, str]) -> Iterator[RosSession]:
    with RosSession(lease.domain_id, env, name="test_nodes") as session:
        yield session


@pytest.fixture
def launcher(ros: RosSession, env: dict[str, str], lease: DomainLease, tmp_path: Path) -> Iterator[NodeLauncher]:
    with NodeLauncher(ros, env, lease=lease, workdir=tmp_path, record=TestRecord(nodeid="x")) as launch:
        yield launch


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_node_argv_forms(tmp_path: Path) -> None:
    py = script(tmp_path, "talker.py", "")
    assert node_argv(py, ["--x"]) == [sys.executable, str(py.resolve()), "--x"]
    assert node_argv(["ros2", "run", "pkg", "exe"]) == ["ros2", "run", "pkg", "exe"]
    assert node_argv("sh -c 'echo hi'") == ["sh", "-c", "echo hi"]
    assert node_argv("pytest_simtwin.sim", ["--help"]) == [sys.executable, "-m", "pytest_simtwin.sim", "--help"]
    assert node_argv("true") == ["true"]
    with pytest.raises(ConfigError, match=r"node script .*missing\.py does not exist"):
        node_argv(tmp_path / "missing.py")
    with pytest.raises(ConfigError, match=r"cannot run node 'no_such_pkg_xyz\.node'"):
        node_argv("no_such_pkg_xyz.node")


def test_echo_node_round_trip_service_env_and_clean_sigint(
    launcher: NodeLauncher, ros: RosSession, lease: DomainLease, tmp_path: Path
) -> None:
    path = script(tmp_path, "echo_node.py", ECHO_NODE)
    node = launcher(path, env={"MY_VAR": "42"}, ready_topic="/echo_ready", ready_type="std_msgs/msg/String")
    assert node.alive and node.returncode is None
    assert any(c["pid"] == node.pid and c["kind"] == "node" for c in lease.children)
    assert launcher.record is not None and launcher.record.artifacts["node:echo_node"] == str(node.log_path)

    helper = RosNodeHelper(ros)
    helper.wait_for_publishers("/echo_out", "std_msgs/msg/String")  # else the one reply can be missed
    sent = time.monotonic()
    helper.publish("/echo_in", "std_msgs/msg/String", {"data": "hello"})
    reply = helper.wait_for_message("/echo_out", "std_msgs/msg/String", timeout=5.0, since=sent)
    assert reply.data == "echo: hello"

    response = helper.call_service("std_srvs/srv/SetBool", "/echo_toggle", {"data": True}, timeout=5.0)
    assert response.success and response.message == "toggled to True"

    assert f"domain {lease.domain_id} var 42" in node.log_text()
    assert node.stop() == 0  # SIGINT: rclpy shuts down and the script exits normally
    assert "clean shutdown" in node.log_text()
    assert not node.alive and not process_alive(node.pid)
    assert all(c["pid"] != node.pid for c in lease.children)


def test_wait_for_message_names_what_did_not_match(launcher: NodeLauncher, ros: RosSession, tmp_path: Path) -> None:
    launcher(script(tmp_path, "echo.py", ECHO_NODE), ready_topic="/echo_ready", ready_type="std_msgs/msg/String")
    helper = RosNodeHelper(ros, log_tail=lambda: ["sim line 1", "sim line 2"])
    with pytest.raises(WaitTimeout) as info:
        helper.wait_for_message("/echo_ready", "std_msgs/msg/String", 0.6, lambda m: m.data == "go")
    text = str(info.value)
    assert "waiting for a String on /echo_ready matching the predicate" in text
    assert f"ROS_DOMAIN_ID {ros.domain_id}, publishers on /echo_ready: 1" in text
    assert "none matched the predicate" in text and "data='ready'" in text
    assert "sim line 2" in text
    with pytest.raises(WaitTimeout, match="no message arrived"):
        helper.wait_for_message("/nobody_publishes", "std_msgs/msg/String", 0.3)


def test_fill_fields_nested() -> None:
    from geometry_msgs.msg import Twist

    msg = nodes.fill_fields(Twist(), {"linear": {"x": 0.5}, "angular": {"z": -1.0}})
    assert (msg.linear.x, msg.angular.z) == (0.5, -1.0)
    with pytest.raises(ConfigError, match=r"Vector3 has no field 'linear\.w'"):
        nodes.fill_fields(Twist(), {"linear": {"w": 1.0}})


def test_publish_rejects_unknown_fields(ros: RosSession) -> None:
    with pytest.raises(ConfigError, match="String has no field 'text'; its fields: data"):
        RosNodeHelper(ros).publish("/x", "std_msgs/msg/String", {"text": "hi"}, wait_for_subscribers=0)


def test_crashing_node_fails_fast_with_exit_code_and_log_tail(launcher: NodeLauncher, tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        launcher(
            script(tmp_path, "planner.py", CRASHING_NODE),
            ready_topic="/plan",
            ready_type="std_msgs/msg/String",
            timeout=20.0,
        )
    assert time.monotonic() - start < 10.0  # noticed the exit, did not wait for the timeout
    text = str(info.value)
    assert "node planner (pid" in text and "exited with code 1" in text
    assert "last" in text and "lines of node planner log" in text
    assert "RuntimeError: boom: map file missing" in text
    assert "booting the planner" in text


def test_assert_alive_reports_a_node_that_died(launcher: NodeLauncher, tmp_path: Path) -> None:
    node = launcher(script(tmp_path, "crasher.py", CRASHING_NODE))
    node._proc.proc.wait(timeout=20)  # type: ignore[union-attr]
    with pytest.raises(AssertionError) as info:
        node.assert_alive()
    text = str(info.value)
    assert "node crasher (pid" in text and "exited with code 1; expected it to keep running" in text
    assert "RuntimeError: boom: map file missing" in text


def test_silent_node_times_out_with_its_log(launcher: NodeLauncher, tmp_path: Path) -> None:
    with pytest.raises(WaitTimeout) as info:
        launcher(
            script(tmp_path, "silent.py", "print('waiting for a map', flush=True)\nimport time\ntime.sleep(60)\n"),
            ready_topic="/map_ready",
            ready_type="std_msgs/msg/String",
            timeout=1.0,
        )
    text = str(info.value)
    assert "timed out after 1.00 s waiting for the first String on /map_ready from node silent" in text
    assert "is running but did not publish" in text and "waiting for a map" in text


def test_hanging_node_is_killed_at_teardown(
    ros: RosSession, env: dict[str, str], lease: DomainLease, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nodes, "SIGINT_GRACE", 0.5)
    monkeypatch.setattr(nodes, "TERM_GRACE", 0.5)
    with (
        pytest.warns(UserWarning, match="ignored SIGINT and SIGTERM and was killed with SIGKILL"),
        NodeLauncher(ros, env, lease=lease, workdir=tmp_path) as launch,
    ):
        node = launch(script(tmp_path, "stuck.py", HANGING_NODE))
        deadline = time.monotonic() + 10
        while "SIGNALS IGNORED" not in node.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # its signal handlers are installed once it printed
        assert node.alive
    assert not process_alive(node.pid)
    assert node.returncode == -9  # ignored SIGINT and SIGTERM: SIGKILL
    assert all(c["pid"] != node.pid for c in lease.children)


VICTIM = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from pytest_simtwin.ros import environment as rosenv
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
    from pytest_simtwin.helpers.nodes import NodeLauncher

    ids = parse_domain_range(DEFAULT_DOMAIN_RANGE)
    lease = acquire_domain(ids, owner="killed worker", prefer=ids[len(ids) // 2 + 11])
    env = rosenv.ros_environment(lease.domain_id, lease.partition)
    launch = NodeLauncher(None, env, lease=lease, workdir=Path(sys.argv[1]))  # no ready topic: no ROS here
    node = launch([sys.executable, "-c", "import time; time.sleep(120)"], name="sleeper")
    print(json.dumps({"node": node.pid, "lease": str(lease.path)}), flush=True)
    time.sleep(120)
    """
)


def test_node_of_a_killed_worker_dies_with_it(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess

    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, str(tmp_path)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert victim.stdout is not None
        info = json.loads(victim.stdout.readline())
        record = json.loads(Path(info["lease"]).read_text())
        assert [c["kind"] for c in record["children"]] == ["node"]  # recorded for stale-lease reaping
        assert process_alive(info["node"])
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        deadline = time.monotonic() + 10
        while process_alive(info["node"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(info["node"])  # PR_SET_PDEATHSIG: it died with the worker
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
