"""SimSession against real simulators: start, reuse, restart, reset, health checks, death, cleanup.

Every test leases its ROS domain through domains.acquire_domain (shared state dir), like the plugin.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends.base import SimConfig
from pytest_simtwin.backends.processes import partition_members
from pytest_simtwin.errors import BackendError, ControlError, SimulatorDiedError, SimulatorError, SimulatorStartError
from pytest_simtwin.ros import domains
from pytest_simtwin.runtime.session import SimSession, WorkerInfo
from pytest_simtwin.runtime.settings import Settings
from pytest_simtwin.runtime.sim import Sim


def make_settings(tmp_path: Path, backend: str = "embedded", **sim: Any) -> Settings:
    timeout = float(sim.pop("start_timeout", 30.0))
    return Settings(
        backend=backend,
        sim=SimConfig(start_timeout=timeout, **sim),
        domain_ids=tuple(domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)),
        reset="test",
        timeout=timeout,
        artifacts=tmp_path / "artifacts",
    )


def _lease_record(session: SimSession) -> str:
    assert session.lease is not None
    return session.lease.path.read_text()


# -- simulators that never become ready --------------------------------------------------------
def test_process_sim_that_never_publishes_fails_within_the_timeout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "process", command="sleep 600", start_timeout=3.0)
    with SimSession(settings, WorkerInfo()) as session:
        t0 = time.monotonic()
        with pytest.raises(SimulatorStartError) as info:
            session.ensure(settings.sim)
        elapsed = time.monotonic() - t0
        text = str(info.value)
        assert 2.9 < elapsed < 8.0, elapsed
        assert "/odom" in text and f"ROS_DOMAIN_ID {session.domain_id}" in text and "publishers on /odom: 0" in text
        assert "--simtwin-timeout" in text and "$ sleep 600" in text  # the log tail names the command
        assert session.backend is None and not partition_members(session.partition)
        assert '"children": []' in _lease_record(session)


def test_process_sim_that_exits_reports_code_and_log(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "process", command="echo world {world} broken >&2; exit 3", start_timeout=20.0)
    world = tmp_path / "w.sdf"
    world.write_text("<sdf/>")
    with SimSession(settings, WorkerInfo()) as session:
        t0 = time.monotonic()
        with pytest.raises(SimulatorStartError) as info:
            session.ensure(settings.sim.with_(world=world))
        assert time.monotonic() - t0 < 5.0  # does not wait for the timeout once the process is gone
        text = str(info.value)
        assert "exited with code 3" in text and f"world {world} broken" in text


def test_missing_executable_is_a_backend_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "process", command="no-such-simulator-xyz --seed {seed}")
    with SimSession(settings, WorkerInfo()) as session, pytest.raises(BackendError, match="no-such-simulator-xyz"):
        session.ensure(settings.sim)


def test_template_needing_a_world_without_one(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "process", command="gz sim -s {world}")
    with SimSession(settings, WorkerInfo()) as session, pytest.raises(BackendError, match="no world file"):
        session.ensure(settings.sim)


def test_embedded_missing_world_fails_fast_with_the_simulators_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sdf"
    bad.write_text("<sdf version='1.9'><world name='w'><model name='m'><link name='l'></model></world></sdf>")
    settings = make_settings(tmp_path, world=bad)
    with SimSession(settings, WorkerInfo()) as session:
        t0 = time.monotonic()
        with pytest.raises(SimulatorStartError) as info:
            session.ensure(settings.sim)
        assert time.monotonic() - t0 < 15.0
        assert "exited with code 2" in str(info.value) and "bad.sdf" in str(info.value)


# -- the embedded simulator over a whole session -------------------------------------------------
@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = make_settings(tmp_path_factory.mktemp("embedded"))
    with SimSession(settings, WorkerInfo()) as session:
        yield session


def test_start_reuse_and_health(embedded: SimSession) -> None:
    cfg = embedded.settings.sim
    embedded.ensure(cfg)
    starts = embedded.starts
    assert embedded.alive and embedded.backend is not None
    assert embedded.ensure(cfg) is False and embedded.starts == starts  # same config: same simulator
    embedded.check_health()
    sim = Sim(embedded)
    assert sim.domain_id == embedded.domain_id and sim.env["ROS_DOMAIN_ID"] == str(embedded.domain_id)
    assert sim.env["GZ_PARTITION"] == embedded.partition
    state = sim.state()
    assert state["state"] == "playing" and state["seed"] == 0
    # The simulator really runs on our leased domain with our partition in its environment.
    assert embedded.backend is not None and embedded.backend._proc is not None  # type: ignore[attr-defined]
    assert embedded.backend._proc.pid in partition_members(embedded.partition)  # type: ignore[attr-defined]


def test_reset_restores_the_initial_pose(embedded: SimSession) -> None:
    embedded.begin_test(embedded.settings.sim, "test", scope="a")
    sim = Sim(embedded)
    start = sim.get_pose()
    sim.set_pose(x=start["x"] + 1.0, y=start["y"] + 0.5)
    moved = sim.get_pose()
    assert abs(moved["x"] - start["x"] - 1.0) < 1e-6
    embedded.begin_test(embedded.settings.sim, "test", scope="a")
    again = sim.get_pose()
    assert abs(again["x"] - start["x"]) < 1e-6 and abs(again["y"] - start["y"]) < 1e-6


def test_reset_never_keeps_state(embedded: SimSession) -> None:
    embedded.begin_test(embedded.settings.sim, "test", scope="b")
    sim = Sim(embedded)
    x0 = sim.get_pose()["x"]
    sim.set_pose(x=x0 + 0.3)
    embedded.begin_test(embedded.settings.sim, "never", scope="b")
    assert abs(sim.get_pose()["x"] - x0 - 0.3) < 1e-6
    embedded.begin_test(embedded.settings.sim, "module", scope="b")  # same module: no reset
    assert abs(sim.get_pose()["x"] - x0 - 0.3) < 1e-6
    embedded.begin_test(embedded.settings.sim, "module", scope="c")  # new module: reset
    assert abs(sim.get_pose()["x"] - x0) < 1e-6


def test_changed_config_restarts_the_simulator(embedded: SimSession) -> None:
    cfg = embedded.settings.sim
    embedded.ensure(cfg)
    old_pid = embedded.backend._proc.pid  # type: ignore[union-attr]
    assert embedded.ensure(cfg.with_(seed=5)) is True
    assert Sim(embedded).state()["seed"] == 5
    assert not domains.process_alive(old_pid)
    embedded.ensure(cfg)


def test_a_restart_closes_our_participant_before_the_old_simulator_leaves(
    embedded: SimSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A departing participant can deadlock the one that stays (eProsima/Fast-DDS#6502): ours goes first."""
    cfg = embedded.settings.sim
    embedded.ensure(cfg)
    assert embedded.ros is not None and embedded.ros.active
    old_context, backend = embedded.ros.context, embedded.backend
    assert backend is not None
    seen: list[bool] = []
    stop = backend.stop

    def recording_stop(*args: Any, **kwargs: Any) -> None:
        seen.append(embedded.ros is not None and embedded.ros.active)
        stop(*args, **kwargs)

    monkeypatch.setattr(backend, "stop", recording_stop)
    assert embedded.ensure(cfg.with_(seed=6)) is True
    assert seen == [False]  # our ROS side was closed when the old simulator was told to stop
    assert embedded.ros.active and embedded.ros.context is not old_context  # a new participant ...
    assert Sim(embedded).state()["seed"] == 6  # ... that talks to the new simulator
    embedded.ensure(cfg)


def test_killed_simulator_is_reported_and_replaced(embedded: SimSession) -> None:
    cfg = embedded.settings.sim
    embedded.ensure(cfg)
    pid = embedded.backend._proc.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    wait_until(embedded.death_reason, 5.0, what="the killed simulator to be seen as dead")
    with pytest.raises(SimulatorDiedError) as info:
        embedded.check_health()
    assert "exited with code -9" in str(info.value) and "log" in str(info.value)
    assert embedded.ensure(cfg) is True and embedded.alive
    embedded.check_health()


def test_control_call_to_a_dead_simulator_fails_at_once_with_its_log(embedded: SimSession) -> None:
    cfg = embedded.settings.sim
    embedded.ensure(cfg)
    control = embedded.control_or_none()
    assert control is not None
    control.state()
    os.kill(embedded.backend._proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
    wait_until(embedded.death_reason, 5.0, what="the killed simulator to be seen as dead")
    t0 = time.monotonic()
    with pytest.raises(SimulatorDiedError) as info:
        control.call("get_simulation_state", timeout=30.0)
    assert time.monotonic() - t0 < 5.0  # not the 30 s timeout
    assert "exited with code -9 while answering get_simulation_state" in str(info.value)
    assert info.value.log_tail
    assert embedded.ensure(cfg) is True


def test_frozen_simulator_fails_the_health_check(embedded: SimSession) -> None:
    cfg = embedded.settings.sim
    embedded.ensure(cfg)
    pid = embedded.backend._proc.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGSTOP)  # alive but its clock stops and it answers nothing
    try:
        t0 = time.monotonic()
        with pytest.raises(SimulatorError) as info:
            embedded.check_health(timeout=2.0)
        assert time.monotonic() - t0 < 6.0
        assert "does not answer" in str(info.value) or "does not advance" in str(info.value)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    embedded.ensure(cfg)  # the unhealthy simulator was stopped: a fresh one starts
    embedded.check_health()
    assert embedded.backend._proc.pid != pid  # type: ignore[union-attr]


def test_control_errors_are_clear(embedded: SimSession) -> None:
    embedded.ensure(embedded.settings.sim)
    with pytest.raises(ControlError, match="no_such_entity"):
        Sim(embedded).get_pose("no_such_entity")


def test_close_leaves_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    session = SimSession(settings, WorkerInfo()).open()
    session.ensure(settings.sim)
    pid = session.backend._proc.pid  # type: ignore[union-attr]
    lease_path, partition = session.lease.path, session.partition  # type: ignore[union-attr]
    session.close()
    assert not domains.process_alive(pid)
    assert not partition_members(partition)
    # The lock is free again: another holder gets it at once.
    fd = domains._try_lock(lease_path)
    assert fd is not None
    os.close(fd)


def test_sim_facade_control_calls(embedded: SimSession) -> None:
    embedded.begin_test(embedded.settings.sim, "test", scope="facade")
    sim = Sim(embedded)
    assert sim.backend == "embedded" and sim.alive and sim.log_path() is not None
    assert any("ready in" in line for line in sim.log_tail(50))
    sim.pause()
    t0 = sim.sim_time
    assert abs(sim.step(duration=0.5)["sim_time"] - t0 - 0.5) < 0.01
    assert abs(sim.sim_time - t0 - 0.5) < 0.01  # paused: time stands still between calls
    sim.play()
    name = sim.spawn_obstacle("crate", "box", (0.3, 0.3, 0.4), x=1.0, y=-1.0)
    assert name in sim.entities()
    assert abs(sim.get_pose(name)["z"] - 0.2) < 0.02  # resting on the ground
    sim.remove_obstacle(name)
    assert name not in sim.entities()
    sim.set_pose(x=0.5, y=0.25, yaw=1.0)
    truth = sim.ground_truth()
    assert abs(truth["pose"]["x"] - 0.5) < 1e-3 and abs(truth["pose"]["yaw"] - 1.0) < 1e-3
    assert sim.robot_name() == sim.state()["robot"]
    assert sim.rtf > 0


def test_worker_identity_comes_from_xdist_not_the_inherited_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest started by a test inside an xdist worker inherits PYTEST_XDIST_WORKER but is no worker."""
    from types import SimpleNamespace

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert WorkerInfo.from_config(SimpleNamespace()) == WorkerInfo("master", 0, 1)
    worker = SimpleNamespace(workerinput={"workerid": "gw3", "workercount": 8})
    assert WorkerInfo.from_config(worker) == WorkerInfo("gw3", 3, 8)


def test_the_health_check_counts_the_clock_from_the_tests_reset(embedded: SimSession) -> None:
    cfg = embedded.settings.sim
    embedded.ensure(cfg)
    reset_at = embedded.reset(cfg)
    assert reset_at is not None and reset_at < 0.1  # the reply's state: the world's start
    embedded.check_health(advanced_from=reset_at)  # playing since the reset: advanced
    # A clock that never gets past the given time is unhealthy, whatever the simulator answers.
    with pytest.raises(SimulatorError, match="does not advance"):
        embedded.check_health(timeout=1.0, advanced_from=1e9)
    embedded.ensure(cfg)  # the unhealthy simulator was stopped: a fresh one starts
    embedded.check_health()
