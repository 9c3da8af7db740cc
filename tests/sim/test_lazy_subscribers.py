"""A subscription made just before a step gets that step's messages from the lazy sensors.

IMUs, magnetometers, barometers (and cameras, contacts, unheard scans) publish only to subscribers the
simulator has matched. DDS discovery of a new subscription takes longer than a short step on a loaded
machine; ``step_simulation`` with ``"listened"`` first waits for the match (the robot helper passes the
topics subscribed since its last step).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from simproc import SimProcess

WORLD = str(Path(__file__).parent / "data" / "worlds" / "sensors.sdf")


def test_a_step_right_after_subscribing_delivers_the_lazy_sensors_messages(
    sim_factory: Callable[..., SimProcess],
) -> None:
    from sensor_msgs.msg import FluidPressure, Imu, MagneticField

    sim = sim_factory(WORLD, "--paused", "--no-sensor", "camera")
    for task in os.listdir(f"/proc/{sim.proc.pid}/task"):
        # A starved simulator, as on a loaded machine: its discovery of our subscriptions lags.
        os.setpriority(os.PRIO_PROCESS, int(task), 19)
    sim.ros.take_fresh()  # what start_sim subscribed to (/odom)
    dt = float(sim.control.state()["step_size"])
    # (topic, type, update rate in sensors.sdf)
    for topic, msg_type, rate in (("/imu", Imu, 200), ("/imu_ideal", Imu, 100),
                                  ("/magnetometer", MagneticField, 50), ("/air_pressure", FluidPressure, 20)):  # fmt: skip
        buf = sim.ros.subscribe(topic, msg_type)
        listened = sim.ros.take_fresh()
        assert listened == [topic]
        t0 = float(sim.control.state()["sim_time"])
        st = sim.control.step(duration=0.1, listened=listened)
        period = max(1, round(1.0 / (rate * dt))) * dt  # the rate in whole physics steps
        expected = round((float(st["sim_time"]) - t0) / period - 0.5)  # updates inside (t0, t0 + 0.1]
        deadline = time.monotonic() + 5.0
        while buf.count < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in buf.messages()]
        assert buf.count >= expected, f"{buf.count} of the step's {expected} messages on {topic}"
        assert min(stamps) <= t0 + period + 1e-6, f"the step's first {topic} message was lost: {min(stamps)}"
    assert "listened" in sim.control.features()["features"]
