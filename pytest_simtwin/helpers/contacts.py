"""Contact (bumper) sensor helpers of the ``robot`` fixture.

A ``<sensor type="contact">`` publishes ros_gz_interfaces/Contacts, as ros_gz_bridge does for gz-sim:
one entry per (sensor collision, touched collision) pair with scoped names (``model::link::collision``),
and per contact point the world position, the normal (from the touched collision towards the
sensor's), the penetration depth and the force on the sensor's collision. gz-sim publishes only while
something touches. ``robot.wait_for_contact(touching="box")`` waits for one; ``robot.contacts`` is
what the sensor touches now.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_simtwin._internal.tracebacks import hide_frames
from pytest_simtwin.backends.messages import contacts_type
from pytest_simtwin.errors import WaitTimeout
from pytest_simtwin.helpers.sensors import SensorObserver
from pytest_simtwin.ros.messages import stamp_seconds


@dataclass(frozen=True)
class Contact:
    """One touched collision: ``positions``, ``normals`` and ``forces`` are (n, 3) arrays (world frame,
    one row per contact point; forces act on ``collision1``, the sensor's), ``depths`` (n,) metres."""

    collision1: str
    collision2: str
    positions: npt.NDArray[np.float64]
    normals: npt.NDArray[np.float64]
    depths: npt.NDArray[np.float64]
    forces: npt.NDArray[np.float64]

    @property
    def force(self) -> npt.NDArray[np.float64]:
        """The total force (N) on the sensor's collision from this one."""
        return self.forces.sum(axis=0) if len(self.forces) else np.zeros(3)


@dataclass(frozen=True)
class ContactReading:
    """One Contacts message: its sim time stamp and the touched collisions."""

    stamp: float
    contacts: list[Contact]
    msg: Any

    @property
    def names(self) -> list[str]:
        """The touched collisions' scoped names."""
        return [c.collision2 for c in self.contacts]

    def touching(self, name: str | None = None) -> bool:
        """Whether anything (or a collision whose scoped name contains ``name``) is touched."""
        return any(name is None or name in c.collision2 for c in self.contacts)


def _rows(values: Any) -> npt.NDArray[np.float64]:
    return np.array([[v.x, v.y, v.z] for v in values], dtype=float).reshape(-1, 3)


def contact_reading(msg: Any) -> ContactReading:
    contacts = []
    for c in msg.contacts:
        forces = _rows(w.body_1_wrench.force for w in c.wrenches)
        depths = np.array(c.depths, dtype=float)
        contacts.append(Contact(c.collision1.name, c.collision2.name, _rows(c.positions), _rows(c.normals), depths, forces))
    return ContactReading(stamp_seconds(msg.header.stamp), contacts, msg)


class ContactObserver(SensorObserver):
    """Contact sensors of the simulated robot (mixed into ``Robot``)."""

    def _contact_topic(self, sensor: str | None) -> str:
        return self._sensor_topic(sensor, ("contact",), "contact topic")

    @hide_frames
    def wait_for_contact(
        self, sensor: str | None = None, *, touching: str | None = None, timeout: float = 5.0
    ) -> ContactReading:
        """Wait (sim seconds) for contact sensor ``sensor`` (name or topic; None = the first) to report a
        contact, with a collision whose scoped name contains ``touching`` when given."""
        topic = self._contact_topic(sensor)
        buf = self.ros.subscribe(topic, contacts_type())
        start = time.monotonic()

        def hit() -> Any | None:
            for r in buf.since(start):
                if any(touching is None or touching in c.collision2.name for c in r.msg.contacts):
                    return r.msg
            return None

        what = f"a contact with {touching!r}" if touching else "a contact"
        self.wait_for_condition(lambda: hit() is not None, timeout, what=f"{what} on {topic}",
                                describe=lambda: self._describe_contacts(buf))  # fmt: skip
        return contact_reading(hit())

    def _describe_contacts(self, buf: Any) -> str:
        last = buf.latest()
        if last is None:
            return self._describe_topic(buf)
        reading = contact_reading(last)
        return f"the last contact (t={reading.stamp:.3f} s) touched {', '.join(reading.names) or 'nothing'}"

    @property
    def contacts(self) -> ContactReading:
        """What the first contact sensor touches now: its latest message if it is from the last 0.1 s of sim
        time, else an empty reading (gz publishes only while touching). Subscribes at first use."""
        topic = self._contact_topic(None)
        buf = self.ros.subscribe(topic, contacts_type())
        st = self.control.state() if self.control is not None else None
        now = float(st["sim_time"]) if st is not None else self.sim_time()
        sent = (st.get("sensor_stamps") or {}).get(topic) if st is not None else None
        if sent is not None and now is not None and sent >= now - 0.1:
            # The simulator says what it sent last: wait for that message, it can arrive after the reply
            # of the step that published it (reading the latest one then saw "not touching").
            with contextlib.suppress(WaitTimeout):
                self._wait(lambda: _newest_stamp(buf) >= sent - 1e-9, 2.0, f"the contact message stamped {sent:.3f} s")
        msg = buf.latest()
        if msg is None or (now is not None and stamp_seconds(msg.header.stamp) < now - 0.1):
            return ContactReading(now or 0.0, [], None)
        return contact_reading(msg)


def _newest_stamp(buf: Any) -> float:
    msg = buf.latest()
    return stamp_seconds(msg.header.stamp) if msg is not None else -math.inf
