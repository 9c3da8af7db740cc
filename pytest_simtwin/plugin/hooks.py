"""pytest entry point (``pytest11``): wires options, markers, hooks and fixtures; the work lives elsewhere.

Installing the plugin is harmless: nothing touches ROS at import or session start. The first test
that requests ``sim`` (or ``robot``, ``ros_node``, ``launch_node``) makes the worker lease a ROS
domain, create its private ROS context and start its simulator (see :mod:`pytest_simtwin.runtime.session`).

Options live in ``runtime.settings.OPTIONS`` (add yours there); add your hooks below in their own section.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_simtwin.errors import SimTwinError
from pytest_simtwin.plugin.keys import MARKER_ERROR_KEY, OVERRIDES_KEY, PREWARMED_KEY, SESSION_KEY, SETTINGS_KEY
from pytest_simtwin.runtime import settings as cfg
from pytest_simtwin.runtime import spawn

if TYPE_CHECKING:
    from pytest_simtwin.control.faults import FaultInjector
    from pytest_simtwin.helpers.assertions import MetricRecorder
    from pytest_simtwin.helpers.nodes import NodeLauncher, RosNodeHelper
    from pytest_simtwin.helpers.robot import Robot
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.sim import Sim
    from pytest_simtwin.twin.assertions import TwinValidation



# -- options, markers, configuration -------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    cfg.add_options(parser)
    # pytest's first call into an installed plugin: if this same command used the simulator fork
    # server last time, start its ~0.5 s of imports now, before conftests and configuration (plugin/warmup.py).
    from pytest_simtwin.plugin import warmup

    warmup.start_if_used_last_time()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", cfg.MARKER_HELP)
    config.stash[SETTINGS_KEY] = cfg.load_settings(config)  # pytest.UsageError on a bad option
    from pytest_simtwin.plugin import warmup

    if warmup.started_early(config):
        config.stash[PREWARMED_KEY] = True
    elif warmup.used_last_time(config):
        # The same command used the fork server last time (in-process runs miss the earlier start):
        # start its imports now rather than at the first collected simulation test (plugin/warmup.py).
        config.stash[PREWARMED_KEY] = True
        warmup.prewarm(config.stash[SETTINGS_KEY])
    from pytest_simtwin.backends.processes import register_reaper
    from pytest_simtwin.ros.domains import reap_leftovers

    register_reaper()
    backend = config.stash[SETTINGS_KEY].backend_class
    controller = not hasattr(config, "workerinput")
    backend.session_start(controller)  # e.g. docker: the container reaper, a sweep of dead owners' containers
    if controller:
        # Controller or plain run: clean what killed sessions left (dead holders only).
        reap_leftovers()
        if not backend.owns_simulator and config.getoption("numprocesses", None):
            config.issue_config_time_warning(
                pytest.PytestConfigWarning(
                    f"--simtwin-backend {backend.name}: every xdist worker talks to the same simulator, so parallel "
                    "tests are not isolated from each other; run without -n or use the embedded backend"
                ),
                stacklevel=2,
            )
    else:
        from pytest_simtwin.backends.processes import exit_with_parent

        exit_with_parent()
    # Results, metrics file, JUnit properties, HTML extras, baselines, recordings (plugin/reporting.py).
    from pytest_simtwin.plugin.reporting import ReportingPlugin

    config.pluginmanager.register(ReportingPlugin(config), "simtwin-reporting")
    # --simtwin-shard K/N: keep one deterministic slice of the selected tests (plugin/sharding.py).
    from pytest_simtwin.plugin.sharding import ShardPlugin

    config.pluginmanager.register(ShardPlugin(), "simtwin-shard")


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say once what more workers than CPUs costs (users type ``-n 8`` on 2-core CI runners)."""
    workers = getattr(config.option, "numprocesses", None)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not isinstance(workers, int) or workers <= cpus or hasattr(config, "workerinput"):
        return None
    return (
        f"simtwin: -n {workers} on {cpus} CPUs: {workers} simulators share {cpus} cores (idle ones are paused), "
        f"so a test gets about {cpus / workers:.2g} of a core when every worker runs one; "
        f"-n auto would start {cpus} workers"
    )


def _uses_sim(item: pytest.Item) -> bool:
    return "sim" in getattr(item, "fixturenames", ())  # robot, ros_node, ... depend on it


def pytest_itemcollected(item: pytest.Item) -> None:
    if _uses_sim(item) and not item.config.stash.get(PREWARMED_KEY, False):
        # The first test that needs a simulator is known: get the simulator fork server importing
        # while collection and the first set-up go on (a separate process; no ROS here).
        from pytest_simtwin.plugin.warmup import prewarm

        item.config.stash[PREWARMED_KEY] = True
        prewarm(item.config.stash[SETTINGS_KEY])


def pytest_collection_finish(session: pytest.Session) -> None:
    from pytest_simtwin.plugin.warmup import remember, wants_fork_server

    config = session.config
    used = wants_fork_server(config.stash[SETTINGS_KEY]) and any(_uses_sim(item) for item in session.items)
    remember(config, used)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("simtwin") is not None:
            try:
                overrides = cfg.marker_overrides(item, config.rootpath)  # names the test
                if "robot" in overrides or any(key in overrides for key in spawn.SPAWN_KEYS):
                    settings = config.stash[SETTINGS_KEY]
                    spawn.check_spawn(settings.backend, cfg.effective_config(settings, overrides)[0], item.nodeid)
                item.stash[OVERRIDES_KEY] = overrides
            except pytest.UsageError as exc:
                if not hasattr(config, "workerinput"):
                    raise
                # An xdist worker cannot stop the run with a usage error (xdist turns it into an
                # INTERNALERROR that hides the message): the test errors at setup with the message.
                item.stash[MARKER_ERROR_KEY] = str(exc)


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def simtwin_session(pytestconfig: pytest.Config) -> Iterator[SimSession]:
    """The worker's SimSession (domain lease, ROS context, simulator); opened on first use."""
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.workers import WorkerInfo

    with SimSession(pytestconfig.stash[SETTINGS_KEY], WorkerInfo.from_config(pytestconfig)) as session:
        yield session


@pytest.fixture
def sim(request: pytest.FixtureRequest, simtwin_session: SimSession) -> Iterator[Sim]:
    """The running simulator of this worker, configured for this test, reset and health-checked."""
    from pytest_simtwin.runtime.sim import Sim

    item = request.node
    config, reset = cfg.effective_config(request.config.stash[SETTINGS_KEY], item.stash.get(OVERRIDES_KEY, {}))
    simtwin_session.begin_test(config, reset, scope=item.module.__name__ if item.module else item.nodeid)
    item.stash[SESSION_KEY] = simtwin_session
    from pytest_simtwin.results.records import record_for

    record = record_for(item)
    simtwin_session.fill_record(record)
    handle = Sim(simtwin_session, record)
    for fault in item.stash.get(OVERRIDES_KEY, {}).get("faults", ()):
        handle.inject(fault)  # @pytest.mark.simtwin(faults=[...]): a bad one is a ConfigError before the body
    yield handle
    if record.faults:
        with contextlib.suppress(SimTwinError):  # a dead simulator is reported by the test itself
            handle.clear_faults()
    simtwin_session.end_test()  # idle until the next test: paused, costs no CPU


@pytest.fixture
def faults(sim: Sim) -> FaultInjector:
    """``faults.inject(faults.sensor_blackout("/scan", at=2.0))``: faults on demand; cleared after the test."""
    from pytest_simtwin.control.faults import FaultInjector  # lazy: see the module docstring

    return FaultInjector(sim.control, sim.record.faults if sim.record is not None else None)


@pytest.fixture
def robot(request: pytest.FixtureRequest, sim: Sim, simtwin_session: SimSession) -> Iterator[Robot]:
    """The simulated robot (pytest_simtwin.helpers.robot.Robot) on this worker's simulator: the world's only
    robot, or the one named by ``robot_name`` (marker), ``simtwin_robot_name`` (ini), ``--simtwin-robot-name``."""
    from pytest_simtwin.helpers.robot import Robot
    from pytest_simtwin.helpers.robots import robot_topics
    from pytest_simtwin.results.records import record_for

    name = request.node.stash.get(OVERRIDES_KEY, {}).get("robot_name") or cfg.get_option(request.config, "robot-name")
    with Robot(
        simtwin_session.ros_session,
        simtwin_session.control_or_none(),
        robot_topics(simtwin_session.topics(), name),
        record=record_for(request.node),
        log_tail=simtwin_session.log_tail,
        abort=simtwin_session.death_reason,
        cmd_vel_type=sim.config.cmd_vel_type,
    ) as helper:
        yield helper


@pytest.fixture
def robots(request: pytest.FixtureRequest, sim: Sim, simtwin_session: SimSession) -> Iterator[dict[str, Robot]]:
    """Every robot of the world by model name (a Robot helper each), for multi-robot tests."""
    from pytest_simtwin.helpers.robot import Robot  # lazy: see the module docstring
    from pytest_simtwin.helpers.robots import robot_names, robot_topics
    from pytest_simtwin.results.records import record_for

    topics = simtwin_session.topics()
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(
                Robot(
                    simtwin_session.ros_session,
                    simtwin_session.control_or_none(),
                    robot_topics(topics, name),
                    record=record_for(request.node),
                    log_tail=simtwin_session.log_tail,
                    abort=simtwin_session.death_reason,
                    cmd_vel_type=sim.config.cmd_vel_type,
                )
            )
            for name in robot_names(topics)
        }


@pytest.fixture
def ros_node(simtwin_session: SimSession) -> RosNodeHelper:
    """Helpers around the worker's rclpy node on the simulation domain (``.node`` is the raw node)."""
    from pytest_simtwin.helpers.nodes import RosNodeHelper

    return RosNodeHelper(
        simtwin_session.ros_session, log_tail=simtwin_session.log_tail, abort=simtwin_session.death_reason
    )


@pytest.fixture
def launch_node(request: pytest.FixtureRequest, simtwin_session: SimSession) -> Iterator[NodeLauncher]:
    """``launch_node(cmd, ...)``: start a node under test on the simulation domain; stopped after the test."""
    from pytest_simtwin.helpers.nodes import NodeLauncher
    from pytest_simtwin.results.records import record_for

    def sim_time() -> float | None:  # when a node fault happened, if our simulator runs and answers
        control = simtwin_session.control_or_none()
        if control is None:
            return None
        try:
            return float(control.state()["sim_time"])
        except SimTwinError:
            return None

    with NodeLauncher(
        simtwin_session.ros_session,
        simtwin_session.env,
        lease=simtwin_session.lease,
        workdir=simtwin_session.test_dir(request.node.nodeid),
        record=record_for(request.node),
        clock=sim_time,
    ) as launcher:
        yield launcher


@pytest.fixture
def record_metric(request: pytest.FixtureRequest) -> MetricRecorder:
    """``record_metric(name, value, unit="", tolerance=None, direction="lower")``: store a metric of this test."""
    from pytest_simtwin.helpers.assertions import MetricRecorder
    from pytest_simtwin.results.records import record_for

    return MetricRecorder(record_for(request.node))


@pytest.fixture
def twin_validation(request: pytest.FixtureRequest) -> TwinValidation:
    """Digital-twin validation for this test (twin/assertions.py): load, replay, score, record metrics."""
    from pytest_simtwin.twin.assertions import twin_validation_for

    return twin_validation_for(request, request.config.stash[SETTINGS_KEY].artifacts)


# -- test lifecycle: active metric record, simulator death -> error ------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    from pytest_simtwin.results.records import bind_record, record_for  # lazy: see the module docstring

    with bind_record(record_for(item)):  # record_metric / assert_metric write to this test's record
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    marker_error = item.stash.get(MARKER_ERROR_KEY, None)
    if marker_error is not None:
        from pytest_simtwin.errors import ConfigError

        raise ConfigError(f"invalid simtwin marker: {marker_error}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    session = item.stash.get(SESSION_KEY, None)
    if call.when == "call" and session is not None:
        reason = session.death_reason()
        if reason:
            # Infrastructure, not the code under test: report it as an error with the simulator's log.
            err = session.died_error("during the test")
            original = str(report.longrepr) if report.failed and report.longrepr else ""
            report.longrepr = f"{type(err).__name__}: {err}" + (
                f"\n\n--- the test's own failure (probably a consequence) ---\n{original}" if original else ""
            )
            report.outcome = "failed"
            report.simtwin_infra = True  # type: ignore[attr-defined]  # survives xdist serialisation
            # JUnit can only say "failure" for the call phase: a property tells CI dashboards it was
            # the infrastructure (on the item, so the teardown report that JUnit reads carries it).
            prop = ("simtwin_error", f"infrastructure: {reason}")
            item.user_properties.append(prop)
            report.user_properties.append(prop)
    return report


def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if report.when == "call" and getattr(report, "simtwin_infra", False):
        return "error", "E", ("ERROR", {"red": True})
    return None
