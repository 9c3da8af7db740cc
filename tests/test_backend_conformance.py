"""The contract every simulator backend meets (modelled on Gymnasium's env checker).

start -> ready (first message, no fixed sleep) -> topics -> control (when supported) -> stop ->
nothing left running. The process backend runs our own simulator through a command template; the
attach backend attaches to a simulator this test started (and must leave it running).
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_simtwin.backends.base import Backend, SimConfig, backend_class
from pytest_simtwin.backends.processes import ManagedProcess, partition_members
from pytest_simtwin.control import protocol
from pytest_simtwin.errors import ControlError
from pytest_simtwin.ros import domains
from pytest_simtwin.ros import environment as rosenv
from pytest_simtwin.ros.session import RosSession

SIM_TEMPLATE = f"{sys.executable} -m pytest_simtwin.sim --seed {{seed}} --rtf {{rtf}}"
BACKENDS = ["embedded", "process", "attach", "docker"]


class Domain:
    """A leased domain with its environment and a started RosSession."""

    def __init__(self) -> None:
        ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
        self.lease = domains.acquire_domain(ids, owner="conformance", prefer=ids[len(ids) // 2])
        self.env = rosenv.ros_environment(self.lease.domain_id, self.lease.partition)
        self.ros = RosSession(self.lease.domain_id, self.env).start()

    def close(self) -> None:
        self.ros.close()
        self.lease.release()


@pytest.fixture
def domain() -> Iterator[Domain]:
    d = Domain()
    try:
        yield d
    finally:
        d.close()


def _docker_ready() -> bool:
    if importlib.util.find_spec("pytest_simtwin.backends.containers.docker") is None or shutil.which("docker") is None:
        return False
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env().ping()
    except Exception:
        return False
    return True


@pytest.fixture
def backend(request: pytest.FixtureRequest, domain: Domain, tmp_path: Path) -> Iterator[Backend]:
    name = request.param
    config = SimConfig(start_timeout=30.0)
    external: ManagedProcess | None = None
    if name == "process":
        config = config.with_(command=SIM_TEMPLATE)
    elif name == "attach":
        # The simulator someone else runs: started here, outside the backend, on the same domain.
        external = ManagedProcess(
            [sys.executable, "-m", "pytest_simtwin.sim"],
            env=domain.env,
            log_path=tmp_path / "external.log",
            lease=domain.lease,
        ).start()
        config = config.with_(attach_domain=domain.lease.domain_id)
    elif name == "docker" and not _docker_ready():
        pytest.skip("docker backend: no docker daemon / docker SDK / backends.docker module here")
    cls = backend_class(name)
    instance = cls(config, lease=domain.lease, ros=domain.ros, env=domain.env, workdir=tmp_path / "work")
    try:
        yield instance
    finally:
        instance.stop()
        if external is not None:
            assert external.is_alive(), "the attach backend must never stop the simulator it attached to"
            external.stop()


def _topic_types(ros: RosSession, names: list[str], timeout: float = 10.0) -> dict[str, list[str]]:
    def probe() -> dict[str, list[str]] | None:
        types = ros.topic_types()
        return types if all(n in types for n in names) else None

    from pytest_simtwin._internal.waiting import wait_until

    return wait_until(probe, timeout, what=f"topics {names}", describe=lambda: str(sorted(ros.topic_types())))


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_backend_conformance(backend: Backend, domain: Domain) -> None:
    # 1. start -> ready: the context manager waits for the first ready-topic message.
    t0 = time.monotonic()
    with backend:
        ready_s = time.monotonic() - t0
        assert backend.is_alive() and backend.returncode() is None
        assert str(domain.lease.domain_id) in backend.describe()
        print(f"{backend.name}: ready in {ready_s:.2f} s")

        # 2. topics: the standard robot topics with standard types.
        types = _topic_types(domain.ros, [protocol.ODOM, protocol.CLOCK, protocol.JOINT_STATES, protocol.CMD_VEL])
        assert types[protocol.ODOM] == ["nav_msgs/msg/Odometry"]
        assert types[protocol.CLOCK] == ["rosgraph_msgs/msg/Clock"]
        from nav_msgs.msg import Odometry
        from rosgraph_msgs.msg import Clock

        first = domain.ros.wait_for_message(protocol.CLOCK, Clock, timeout=5.0)
        later = domain.ros.wait_for_message(
            protocol.CLOCK,
            Clock,
            timeout=5.0,
            predicate=lambda m: m.clock.sec + m.clock.nanosec * 1e-9 > first.clock.sec + first.clock.nanosec * 1e-9,
        )
        assert later is not None  # time advances
        domain.ros.wait_for_message(protocol.ODOM, Odometry, timeout=5.0)

        # 3. control, when the backend supports it.
        if backend.supports_control:
            _check_control(domain.ros)
        else:
            from pytest_simtwin.control.client import ControlClient

            with pytest.raises(ControlError):
                ControlClient(domain.ros).call("get_simulator_features", timeout=2.0)

        # 4. logs
        if backend.name != "attach":
            assert backend.log_tail(), "a started simulator has a log"
            assert backend.log_path() is not None and backend.log_path().is_file()  # type: ignore[union-attr]
    # 5. stop -> nothing left (attach: the simulator keeps running, checked by the fixture).
    backend.stop()  # idempotent
    if backend.name != "attach":
        assert not backend.is_alive() and backend.returncode() is not None
        assert not partition_members(domain.lease.partition)
        assert all(c.get("kind") == "simulator" for c in domain.lease.children) and not domain.lease.children


def _check_control(ros: RosSession) -> None:
    from pytest_simtwin.control.client import ControlClient

    control = ControlClient(ros)
    features = control.features()
    assert features["topics"]["odom"] == protocol.ODOM and features["name"]
    state = control.pause()
    assert state["state"] == "paused"
    t0 = float(control.state()["sim_time"])
    after = control.step(duration=0.25)
    assert math.isclose(float(after["sim_time"]) - t0, 0.25, abs_tol=float(after["step_size"]) + 1e-9)
    robot = str(after["robot"])
    control.set_entity_state(robot, pose={"x": 1.0, "y": -0.5, "yaw": 0.3})
    pose = control.get_entity_state(robot)["pose"]
    assert math.isclose(pose["x"], 1.0, abs_tol=1e-6) and math.isclose(pose["yaw"], 0.3, abs_tol=1e-6)
    name = control.spawn("conformance_box", "box", [0.2, 0.2, 0.2], {"x": 2.0, "y": 2.0, "z": 0.1})
    assert name in control.entities()
    control.delete(name)
    assert name not in control.entities()
    with pytest.raises(ControlError):
        control.get_entity_state("no_such_entity")
    reset = control.reset("all")
    assert float(reset["sim_time"]) < 1e-9
    assert math.isclose(control.get_entity_state(robot)["pose"]["x"], 0.0, abs_tol=0.05)
    assert control.play()["state"] == "playing"


def test_process_backend_without_control_says_so(domain: Domain, tmp_path: Path) -> None:
    """A foreign simulator (here: our simulator under another service namespace) has no /simtwin control."""
    config = SimConfig(command=SIM_TEMPLATE + " --namespace /elsewhere", start_timeout=30.0)
    from pytest_simtwin.runtime.session import SimSession, WorkerInfo
    from pytest_simtwin.runtime.settings import Settings
    from pytest_simtwin.runtime.sim import Sim

    settings = Settings(
        backend="process",
        sim=config,
        domain_ids=(domain.lease.domain_id,),
        reset="test",
        timeout=30.0,
        artifacts=tmp_path,
    )
    domain.close()  # the session leases the same domain itself
    with SimSession(settings, WorkerInfo()) as session:
        session.ensure(config)
        session.check_health()
        with pytest.raises(ControlError, match="has no control"):
            Sim(session).step(steps=1)
        from pytest_simtwin import faults
        from pytest_simtwin.errors import ConfigError

        with pytest.raises(ConfigError, match=r"fault blackout: the process simulator .* cannot apply simulator "
                           r"faults \(blackout, .*node faults \(launch_node's node.kill\(\)"):
            Sim(session).inject(faults.sensor_blackout("/scan"))
