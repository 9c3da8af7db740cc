"""Recordings: rosbag2 MCAP bags from the real simulator, read back with an independent reader."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.results import recording
from pytest_simtwin.ros.session import sensor_qos


def test_topic_lines_and_types() -> None:
    specs = recording.parse_topic_lines(
        ["# comment", "", "/tf_static  std_msgs/msg/String", " /battery std_msgs/msg/Float32 "]
    )
    assert specs == [
        recording.TopicSpec("/tf_static", "std_msgs/msg/String"),
        recording.TopicSpec("/battery", "std_msgs/msg/Float32"),
    ]
    with pytest.raises(ConfigError, match="expected '/topic package/msg/Type' per line, found 'odom'"):
        recording.parse_topic_lines(["odom"])
    with pytest.raises(ConfigError, match="bad message type 'Odometry'"):
        recording.import_type("Odometry")
    with pytest.raises(ConfigError, match="not installed in this Python environment"):
        recording.import_type("no_such_msgs/msg/Thing")
    from nav_msgs.msg import Odometry

    assert recording.type_name_of(Odometry) == "nav_msgs/msg/Odometry"
    topics = recording.default_topics({"cmd_vel": "/r1/cmd_vel", "cmd_vel_type": "twist_stamped", "scan": None})
    assert recording.TopicSpec("/r1/cmd_vel", "geometry_msgs/msg/TwistStamped") in topics
    assert not [s for s in topics if s.type_name == "sensor_msgs/msg/LaserScan"]


def test_rerun_command_keeps_only_what_reproduces_one_test(tmp_path: Path) -> None:
    cmd = recording.rerun_command(
        "tests/test_nav.py::test_stop[0.5]",
        ["-n", "4", "-p", "xdist", "-p", "no:randomly", "--simtwin-world", "w.sdf", "--simtwin-seed=3",
         "--simtwin-update-baseline", "--simtwin-metrics-json", "m.json", "-o", "simtwin_rtf=0", "tests"],
        tmp_path,
    )  # fmt: skip
    assert cmd.startswith(f"cd {tmp_path} && ")
    assert "'tests/test_nav.py::test_stop[0.5]'" in cmd
    assert "-p no:randomly --simtwin-world w.sdf --simtwin-seed=3 -o simtwin_rtf=0" in cmd
    for gone in ("-n", "xdist", "update-baseline", "metrics-json", "m.json", " tests"):
        assert gone not in cmd.split("pytest", 1)[1].replace("test_nav", ""), gone


def test_read_counts_rejects_a_folder_without_bag(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"holds no \.mcap file"):
        recording.read_counts(tmp_path)


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _msg: Any) -> None:
        self.count += 1


def _quiet(bufs: dict[str, Any], quiet_for: float = 0.4, timeout: float = 10.0) -> dict[str, int]:
    """Wait until no message arrived on any buffer for ``quiet_for`` seconds; return the counts."""
    state = {"counts": {k: b.count for k, b in bufs.items()}, "since": time.monotonic()}

    def settled() -> dict[str, int] | None:
        now = {k: b.count for k, b in bufs.items()}
        if now != state["counts"]:
            state["counts"], state["since"] = now, time.monotonic()
            return None
        return now if time.monotonic() - state["since"] >= quiet_for else None

    return wait_until(settled, timeout, what="the simulator's topics to go quiet")


@pytest.mark.simtwin(paused=True)
def test_bag_matches_what_the_test_saw(sim: Any, robot: Any, tmp_path: Path) -> None:
    """Recorder (raw subscriptions) and the test's own subscriptions see the same messages; the
    bag written with rosbags, read back with the mcap library, holds exactly that many per topic."""
    specs = recording.default_topics(sim.features()["topics"])
    recorder = recording.recorder_for(sim.ros, specs)
    assert recording.recorder_for(sim.ros, specs) is recorder  # one per session
    # the test's own subscriptions (deep queues: lockstep publishes in bursts)
    bufs: dict[str, Counter] = {}
    for s in specs:
        if "cmd_vel" not in s.topic:
            bufs[s.topic] = Counter()
            sim.ros.node.create_subscription(s.msg_class(), s.topic, bufs[s.topic], sensor_qos(1000))
    robot.wait_for_odom()
    sim.pause()
    before = _quiet(bufs)
    recorder.start()
    robot.send_velocity(0.4, 0.3, 1.0)  # lockstep: steps the paused simulator, publishes /cmd_vel twice
    after = _quiet(bufs)
    take = recorder.stop()
    saw = {t: after[t] - before[t] for t in bufs}
    assert saw["/odom"] >= 25 and saw["/clock"] >= 50, saw  # 1 s of sim time at 30 Hz / 100 Hz
    counts = take.counts()
    assert {t: counts[t] for t in saw} == saw
    assert counts["/cmd_vel"] >= 2
    bag = take.write(tmp_path / "bag")
    assert (bag / "metadata.yaml").is_file()
    assert recording.read_counts(bag) == counts  # independent reader: mcap

    # the bag is a standard rosbag2 MCAP: ros2msg schemas, cdr encoding, decodable messages
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message

    mcap_file = next(bag.glob("*.mcap"))
    with mcap_file.open("rb") as fh:
        reader = make_reader(fh)
        summary = reader.get_summary()
        assert summary is not None
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
        odoms = [m for _s, c, m in reader.iter_messages(topics=["/odom"])]
    from nav_msgs.msg import Odometry

    last = deserialize_message(odoms[-1].data, Odometry)
    assert last.pose.pose.position.x == pytest.approx(robot.pose.x, abs=1e-6)
    meta = (bag / "metadata.yaml").read_text()
    assert "storage_identifier: mcap" in meta and "message_count" in meta


TALKER = """
import rclpy
from std_msgs.msg import String

rclpy.init()
node = rclpy.create_node("talker")
pub = node.create_publisher(String, "/chatter", 10)
node.create_timer(0.05, lambda: pub.publish(String(data="hello")))
print("talker up", flush=True)
try:
    rclpy.spin(node)
except Exception:
    pass
"""

SIM_SUITE = """
    import sys

    import pytest

    def test_ok(sim, robot, record_metric):
        robot.send_velocity(0.3, 0.0, 0.5)
        record_metric("distance", robot.displacement, "m", tolerance=0.1, direction="higher")

    def test_bad(sim, robot, launch_node):
        # a node under test in its own process: its log goes into the bundle, its topic into the bag
        launch_node([sys.executable, "talker.py"], name="talker", ready_topic="/chatter", ready_type="std_msgs/msg/String")
        robot.send_velocity(0.3, 0.4, 0.5)
        assert robot.displacement > 5.0, "robot did not reach the goal"
"""


@pytest.mark.parametrize("mode", ["failed", "all"])
def test_record_modes_and_failure_bundle(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(test_sim=textwrap.dedent(SIM_SUITE), talker=TALKER)
    pytester.makeini("[pytest]\nsimtwin_record_topics =\n    /chatter std_msgs/msg/String\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--simtwin-record={mode}", "--simtwin-metrics-json=m.json"
    )
    result.assert_outcomes(passed=1, failed=1)
    art = pytester.path / "simtwin-artifacts"
    tests = {t["nodeid"]: t for t in json.loads((pytester.path / "m.json").read_text())["tests"]}
    bad, ok = tests["test_sim.py::test_bad"], tests["test_sim.py::test_ok"]
    bundle = Path(bad["artifacts"]["bundle"])
    assert bundle.parent == art / "failures"
    assert {p.name for p in bundle.iterdir()} >= {
        "bag",
        "simulator.log",
        "trajectory.png",
        "velocity.png",
        "rerun.sh",
        "record.json",
    }
    assert recording.read_counts(bundle / "bag") == bad["recorded"]
    assert bad["recorded"]["/odom"] > 5
    assert bad["recorded"]["/chatter"] >= 1  # the ini-configured extra topic, from the node under test
    (node_log,) = bundle.glob("node-talker*.log")
    assert "talker up" in node_log.read_text()
    rerun = (bundle / "rerun.sh").read_text()
    assert " test_sim.py::test_bad " in rerun and f"--simtwin-record={mode}" in rerun and "metrics-json" not in rerun
    if mode == "all":
        assert recording.read_counts(Path(ok["artifacts"]["bag"])) == ok["recorded"]
    else:
        assert "bag" not in ok["artifacts"] and not (art / "bags").exists()
    result.stdout.fnmatch_lines([f"*failure bundle: {bundle}"])


def test_bad_record_topics_ini_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "simtwin_record_topics=odom nav_msgs/msg/Odometry"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*simtwin_record_topics: expected '/topic package/msg/Type' per line, found 'odom *"])
