"""``Sim``: what the ``sim`` fixture gives a test -- control calls, the domain, the simulator's log.

A thin facade over :class:`pytest_simtwin.runtime.session.SimSession` (which owns the lifecycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_simtwin.control.faults import Fault, FaultHandle, clear_all
from pytest_simtwin.control.faults import inject as inject_fault
from pytest_simtwin.control.protocol import FAULT_KINDS, NAMESPACE, EntityState, Features, Pose, SimState
from pytest_simtwin.errors import ConfigError

if TYPE_CHECKING:
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.control.client import ControlClient
    from pytest_simtwin.results.records import TestRecord
    from pytest_simtwin.ros.session import RosSession
    from pytest_simtwin.runtime.session import SimSession


class Sim:
    """What the ``sim`` fixture gives a test: control calls, the domain and the simulator's log."""

    def __init__(self, session: SimSession, record: TestRecord | None = None) -> None:
        self._session = session
        self._record = record

    # -- where ---------------------------------------------------------------------------------
    @property
    def domain_id(self) -> int:
        return self._session.domain_id

    @property
    def partition(self) -> str:
        return self._session.partition

    @property
    def env(self) -> dict[str, str]:
        """Environment for your own processes on this simulator's domain (a copy)."""
        return dict(self._session.env)

    @property
    def ros(self) -> RosSession:
        return self._session._require_ros()

    @property
    def config(self) -> SimConfig:
        assert self._session.config is not None
        return self._session.config

    @property
    def backend(self) -> str:
        return self._session.settings.backend

    @property
    def control(self) -> ControlClient:
        return self._session.control

    @property
    def record(self) -> TestRecord | None:
        """This test's result record (metrics, trajectory, faults) when the plugin runs the test."""
        return self._record

    @property
    def alive(self) -> bool:
        return self._session.alive

    def log_tail(self, lines: int = 30) -> list[str]:
        return self._session.log_tail(lines)

    def log_path(self) -> Path | None:
        return self._session.backend.log_path() if self._session.backend is not None else None

    # -- control -------------------------------------------------------------------------------
    def state(self) -> SimState:
        return self.control.state()

    @property
    def sim_time(self) -> float:
        return float(self.state()["sim_time"])

    @property
    def rtf(self) -> float:
        """Measured real-time factor."""
        return float(self.state()["rtf_measured"])

    def step(self, steps: int | None = None, duration: float | None = None) -> SimState:
        # the simulator first matches what this worker just subscribed to (lazy sensors, see Robot._step)
        return self.control.step(steps=steps, duration=duration, listened=self.ros.take_fresh())

    def pause(self) -> SimState:
        return self.control.pause()

    def play(self, pause_at: float | None = None) -> SimState:
        """Play (real time x rtf); ``pause_at``: the simulator pauses itself exactly at that sim time."""
        return self.control.play(pause_at=pause_at)

    def reset(self, scope: str = "all") -> SimState:
        return self.control.reset(scope)

    def features(self) -> Features:
        return self.control.features()

    def entities(self) -> list[str]:
        return list(self.control.entities())

    def robot_name(self) -> str:
        return str(self.state()["robot"])

    def get_pose(self, name: str | None = None) -> Pose:
        return Pose(**self.control.get_entity_state(name or self.robot_name())["pose"])

    def set_pose(
        self,
        name: str | None = None,
        *,
        x: float | None = None,
        y: float | None = None,
        z: float | None = None,
        yaw: float | None = None,
        roll: float | None = None,
        pitch: float | None = None,
    ) -> EntityState:
        """Move an entity (default: the robot); omitted coordinates keep their value."""
        pose = {
            k: v
            for k, v in (("x", x), ("y", y), ("z", z), ("roll", roll), ("pitch", pitch), ("yaw", yaw))
            if v is not None
        }
        return self.control.set_entity_state(name or self.robot_name(), pose=pose)

    def ground_truth(self, name: str | None = None) -> EntityState:
        """True pose and twist (world frame) of an entity, default the robot."""
        return self.control.get_entity_state(name or self.robot_name())

    # -- faults ----------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> FaultHandle:
        """Inject a fault (``pytest_simtwin.faults.*``) now or at ``fault.at``; returns a handle to clear it."""
        control = self.fault_control(f"fault {fault.kind}")
        return inject_fault(control, fault, self._record.faults if self._record is not None else None)

    def clear_faults(self) -> None:
        """Remove every fault the simulator holds."""
        clear_all(self.fault_control("clearing faults"), self._record.faults if self._record is not None else None)

    def fault_control(self, what: str) -> ControlClient:
        """The control client that applies simulator faults; a clear error on a backend that cannot."""
        client = self._session.control_or_none()
        if client is None:
            backend = self._session.backend
            name = backend.describe() if backend is not None else "simulator (not started)"
            raise ConfigError(
                f"{what}: the {name} cannot apply simulator faults ({', '.join(FAULT_KINDS)}); they are applied "
                "inside pytest-simtwin's own simulator, which this backend does not run (it does not answer the "
                f"{NAMESPACE}/* services). Expected --simtwin-backend embedded or docker (or attach to a running "
                "simtwin-sim); node faults (launch_node's node.kill(), pause(), resume(), restart()) work with "
                "every backend."
            )
        return client

    def spawn_obstacle(
        self,
        name: str,
        shape: str = "box",
        size: tuple[float, ...] = (0.2, 0.2, 0.5),
        *,
        x: float = 0.0,
        y: float = 0.0,
        z: float | None = None,
        yaw: float = 0.0,
        static: bool = True,
        mass: float | None = None,
    ) -> str:
        """Add an obstacle (sizes as in the protocol; z defaults to resting on the ground)."""
        if z is None:
            z = size[2] / 2 if shape == "box" and len(size) > 2 else (size[1] / 2 if shape == "cylinder" else size[0])
        pose = {"x": x, "y": y, "z": z, "yaw": yaw}
        spawned = self.control.spawn(name, shape, list(size), pose, static=static, mass=mass)
        if self._record is not None:  # the report draws it in the trajectory plot
            self._record.obstacles.append(
                {"name": spawned, "shape": shape, "size": [float(v) for v in size], "x": x, "y": y, "yaw": yaw}
            )
        return spawned

    def remove_obstacle(self, name: str) -> None:
        self.control.delete(name)
        if self._record is not None:
            self._record.obstacles = [o for o in self._record.obstacles if o.get("name") != name]

    def __repr__(self) -> str:
        return f"<Sim {self.backend} domain={self.domain_id} alive={self.alive}>"
