"""Contact (bumper) sensors of the embedded simulator, over real ROS topics.

The sensor test world's robot (data/worlds/sensors.sdf) has a contact sensor on its chassis collision
(``bumper``, topic /bumper, 50 Hz) and a static red box 1.5 m ahead of its chassis. The simulator
publishes ros_gz_interfaces/Contacts as ros_gz_bridge does for gz-sim's contact system; the message
package is built from the vendored .msg files at first use (here in the test process as well).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from simproc import SimProcess

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.sim.world.sensors import parse_sensor
from pytest_simtwin.sim.world.xmltree import parse_string

WORLD = str(Path(__file__).parent / "data" / "worlds" / "sensors.sdf")
BOX_FRONT_X = 1.55  # red box centre 1.8 m, 0.5 m deep
CHASSIS = "sensor_bot::base_footprint::chassis"
BOX = "red_box::link::collision"


def _contacts_type() -> Any:
    from pytest_simtwin.backends.messages import contacts_type

    return contacts_type()


def _drive(sim: SimProcess, speed: float) -> None:
    from geometry_msgs.msg import Twist

    pub = sim.ros.publisher("/cmd_vel", Twist)
    wait_until(lambda: pub.get_subscription_count() > 0, 10.0, what="the simulator's /cmd_vel subscription")
    cmd = Twist()
    cmd.linear.x = speed
    pub.publish(cmd)
    sim.control.wait_for_commands(1)


def test_contact_sensor_parses_its_collisions_and_gz_topic() -> None:
    sensor = parse_string("""
      <sensor name="bumper" type="contact"><contact><collision>front</collision><collision>rear</collision>
      </contact></sensor>""")
    spec = parse_sensor(sensor, "base_link", "bot", "w", [])
    assert spec is not None and spec.kind == "contact" and spec.collisions == ["front", "rear"]
    # gz-sim's contact system: /world/<world>/<scoped sensor name>/contact without a <topic>
    assert spec.topics == {"contact": "/world/w/model/bot/link/base_link/sensor/bumper/contact"}


def test_a_bumper_driving_into_a_box_reports_the_box_collision(sim_factory: Callable[..., SimProcess]) -> None:
    contacts_msg = _contacts_type()
    sim = sim_factory(WORLD, "--paused", "--no-sensor", "camera", "--no-sensor", "imu", "--no-sensor", "gps")
    bumper = next(s for s in sim.control.features()["sensors"] if s["name"] == "bumper")
    assert bumper["type"] == "contact" and bumper["topics"] == {"contact": "/bumper"}
    buf = sim.ros.subscribe("/bumper", contacts_msg)
    wait_until(lambda: sim.ros.count_publishers("/bumper") > 0, 10.0, what="a publisher on /bumper")
    sim.control.step(duration=1.0)
    assert buf.count == 0, "standing free, the chassis touches nothing: gz-sim publishes no contacts"
    _drive(sim, 0.5)
    for _ in range(60):  # 1.5 m at 0.5 m/s, then pushing against the box
        sim.control.step(duration=0.1)
        if buf.count >= 10:
            break
    wait_until(lambda: buf.count >= 10, 10.0, what="contacts on /bumper")
    msg = buf.latest()
    assert msg.header.stamp.sec >= 2, "no contact before the robot can have reached the box"
    assert len(msg.contacts) == 1
    contact = msg.contacts[0]
    assert (contact.collision1.name, contact.collision2.name) == (CHASSIS, BOX)
    assert contact.collision1.type == contact.collision2.type == 5  # Entity.COLLISION
    n = len(contact.positions)
    assert n >= 1 and len(contact.normals) == len(contact.depths) == len(contact.wrenches) == n
    positions = np.array([[p.x, p.y, p.z] for p in contact.positions])
    assert np.abs(positions[:, 0] - BOX_FRONT_X).max() < 0.01  # on the box's front face
    assert (np.abs(positions[:, 1]) <= 0.07 + 1e-3).all() and (positions[:, 2] > 0.02).all()  # within the chassis
    normals = np.array([[v.x, v.y, v.z] for v in contact.normals])
    assert normals @ np.array([-1.0, 0.0, 0.0]) == pytest.approx(np.ones(n), abs=1e-3)  # box -> chassis
    assert all(0.0 <= d < 0.01 for d in contact.depths)
    forces = np.array([[w.body_1_wrench.force.x, w.body_1_wrench.force.y, w.body_1_wrench.force.z]
                       for w in contact.wrenches])  # fmt: skip
    # the box pushes the chassis back (-x) while the wheels push it on; the box feels the opposite
    assert forces[:, 0].sum() < -0.5
    assert all(w.body_2_wrench.force.x == -w.body_1_wrench.force.x for w in contact.wrenches)
    assert contact.wrenches[0].body_1_name.data == CHASSIS and contact.wrenches[0].body_2_name.data == BOX


def test_bridge_renames_the_contact_topic_and_checks_its_type(
    sim_factory: Callable[..., SimProcess], tmp_path: Path
) -> None:
    contacts_msg = _contacts_type()
    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(
        "- ros_topic_name: /robot/bumper\n  gz_topic_name: bumper\n  ros_type_name: ros_gz_interfaces/msg/Contacts\n"
        "  gz_type_name: gz.msgs.Contacts\n  direction: GZ_TO_ROS\n"
    )
    sim = sim_factory(WORLD, "--paused", "--no-sensor", "camera", "--bridge", str(bridge))
    bumper = next(s for s in sim.control.features()["sensors"] if s["name"] == "bumper")
    assert bumper["topics"] == {"contact": "/robot/bumper"}
    buf = sim.ros.subscribe("/robot/bumper", contacts_msg)
    sim.control.spawn("pusher", "box", [0.1, 0.3, 0.3], {"x": 0.08, "y": 0.0, "z": 0.16})  # against the chassis
    for _ in range(20):
        sim.control.step(duration=0.1)
        if buf.count:
            break
    wait_until(lambda: buf.count > 0, 10.0, what="contacts on /robot/bumper")
    assert "pusher" in buf.latest().contacts[0].collision2.name
