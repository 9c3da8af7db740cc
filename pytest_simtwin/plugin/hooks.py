"""pytest entry point (``pytest11``): wires options, markers, hooks and fixtures; the work lives elsewhere.

Installing the plugin is harmless and nearly free: every pytest run (unit tests only, IDE discovery)
imports this module, registers the options and checks them (:mod:`pytest_simtwin.runtime.options`,
standard library only), and that is all until a collected test uses one of the plugin's fixtures or
the ``simtwin`` marker. Then :func:`activate` loads the run's settings and registers the reporting
plugin (:mod:`.reporting`); the first test that requests ``sim`` (or ``robot``, ``ros_node``,
``launch_node``) makes the worker lease a ROS domain, create its private ROS context and start its
simulator (see :mod:`pytest_simtwin.runtime.session`). An xdist controller collects nothing: it
activates at the first report that carries a test record (the workers send one for every test once
they are active), replaying the reports it saw before.

Options live in ``runtime.options.OPTIONS`` (add yours there); add your hooks below in their own section.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_simtwin.plugin.keys import (
    ACTIVE_KEY,
    MARKER_ERROR_KEY,
    OVERRIDES_KEY,
    PREWARMED_KEY,
    REPORT_ATTR,
    SESSION_KEY,
    SETTINGS_KEY,
)
from pytest_simtwin.runtime import options as opts

if TYPE_CHECKING:
    from pytest_simtwin.control.faults import FaultInjector
    from pytest_simtwin.helpers.assertions import MetricRecorder
    from pytest_simtwin.helpers.nodes import NodeLauncher, RosNodeHelper
    from pytest_simtwin.helpers.robot import Robot
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.settings import Settings
    from pytest_simtwin.runtime.sim import Sim
    from pytest_simtwin.twin.assertions import TwinValidation

#: The plugin's fixtures: a collected test that uses one (directly or through its own fixtures) activates it.
FIXTURES = frozenset(
    {"simtwin_session", "sim", "faults", "robot", "robots", "ros_node", "launch_node", "record_metric", "twin_validation"}
)
#: Options that ask for the reporting even when no collected test uses the plugin (a metrics file of a unit run).
_REPORTING_OPTIONS = ("metrics-json", "update-baseline")


# -- options, markers, configuration -------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    opts.add_options(parser)
    # pytest's first call into an installed plugin: if this same command used the simulator fork
    # server last time, start its ~0.5 s of imports now, before conftests and configuration (plugin/warmup.py).
    from pytest_simtwin.plugin import warmup

    warmup.start_if_used_last_time()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", opts.MARKER_HELP)
    opts.check(config)  # pytest.UsageError on a bad option, before collection
    durations = opts.get_option(config, "shard-durations")
    if opts.get_option(config, "shard") or durations:
        # --simtwin-shard K/N: keep one deterministic slice of the selected tests (plugin/sharding.py).
        from pytest_simtwin.plugin.sharding import ShardPlugin, hand_out_singly

        config.pluginmanager.register(ShardPlugin(), "simtwin-shard")
        if durations:
            hand_out_singly(config)
    if durations or opts.get_option(config, "store-durations"):
        # keep the durations file current: --simtwin-store-durations, a note when it lacks tests
        from pytest_simtwin.plugin.durations import DurationsPlugin

        config.pluginmanager.register(DurationsPlugin(config), "simtwin-durations")
    controller_of_workers = not hasattr(config, "workerinput") and bool(config.getoption("numprocesses", None))
    if opts.get_option(config, "backend") != opts.DEFAULT_BACKEND or controller_of_workers:
        # Another backend checks its own options (a process command, an attach domain) and may act at
        # session start (docker: the container reaper): load it now, as a usage error must come early.
        # An xdist controller collects nothing, so it cannot tell whether simulators will run: it
        # cleans what killed sessions left now, before its workers start.
        _start_backend(config)
    from pytest_simtwin.plugin import warmup

    if warmup.started_early(config):
        config.stash[PREWARMED_KEY] = True
    elif warmup.used_last_time(config):
        # The same command used the fork server last time (in-process runs miss the earlier start):
        # start its imports now rather than at the first collected simulation test (plugin/warmup.py).
        config.stash[PREWARMED_KEY] = True
        warmup.prewarm(settings_of(config))
    if any(opts.get_option(config, name) for name in _REPORTING_OPTIONS):
        activate(config)
    elif not hasattr(config, "workerinput"):
        config.pluginmanager.register(_PendingReports(config), _PENDING)


_PENDING = "simtwin-pending-reports"


_STARTED_KEY = pytest.StashKey[bool]()


def settings_of(config: pytest.Config) -> Settings:
    """The run's validated :class:`~pytest_simtwin.runtime.settings.Settings` (loaded on first use)."""
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None:
        from pytest_simtwin.runtime.settings import load_settings  # lazy: see the module docstring

        settings = config.stash[SETTINGS_KEY] = load_settings(config)  # pytest.UsageError on a bad option
    return settings


def _start_backend(config: pytest.Config) -> None:
    """Once per process: the backend's session start, the reapers, the worker's tie to its controller."""
    if config.stash.get(_STARTED_KEY, False):
        return
    config.stash[_STARTED_KEY] = True
    from pytest_simtwin.backends.processes import register_reaper  # lazy: see the module docstring

    backend = settings_of(config).backend_class
    register_reaper()
    controller = not hasattr(config, "workerinput")
    backend.session_start(controller)  # e.g. docker: the container reaper, a sweep of dead owners' containers
    if controller:
        from pytest_simtwin.ros.domains import reap_leftovers

        reap_leftovers()  # controller or plain run: clean what killed sessions left (dead holders only)
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


def activate(config: pytest.Config) -> None:
    """Tests of this run use the plugin: load the settings, start the backend, register the reporting.

    Idempotent. Results, metrics file, JUnit properties, HTML extras, baselines and recordings live in
    plugin/reporting.py; an xdist controller only collects (it starts no simulator).
    """
    if config.stash.get(ACTIVE_KEY, False):
        return
    config.stash[ACTIVE_KEY] = True
    _start_backend(config)
    from pytest_simtwin.plugin.reporting import ReportingPlugin  # lazy: see the module docstring

    plugin = ReportingPlugin(config)
    config.pluginmanager.register(plugin, "simtwin-reporting")
    pending = config.pluginmanager.get_plugin(_PENDING)
    if isinstance(pending, _PendingReports):
        config.pluginmanager.unregister(pending, _PENDING)
        for report in pending.reports:  # what the controller saw before it knew
            plugin.pytest_runtest_logreport(report)


def _activates(item: pytest.Item) -> bool:
    return not FIXTURES.isdisjoint(getattr(item, "fixturenames", ())) or item.get_closest_marker("simtwin") is not None


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
        prewarm(settings_of(item.config))


def pytest_collection_finish(session: pytest.Session) -> None:
    from pytest_simtwin.plugin.warmup import remember, wants_fork_server

    config = session.config
    sim_tests = any(_uses_sim(item) for item in session.items)
    remember(config, sim_tests and wants_fork_server(settings_of(config)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test module that imported the helpers (assert_metric writes to the running test's record) counts too.
    if "pytest_simtwin.results.records" in sys.modules or any(_activates(item) for item in items):
        activate(config)
    for item in items:
        if item.get_closest_marker("simtwin") is not None:
            from pytest_simtwin.runtime import settings as cfg  # lazy: see the module docstring

            try:
                overrides = cfg.marker_overrides(item, config.rootpath)  # names the test
                if "robot" in overrides or any(key in overrides for key in cfg.SPAWN_KEYS):
                    settings = settings_of(config)
                    cfg.check_spawn(settings.backend, cfg.effective_config(settings, overrides)[0], item.nodeid)
                item.stash[OVERRIDES_KEY] = overrides
            except pytest.UsageError as exc:
                if not hasattr(config, "workerinput"):
                    raise
                # An xdist worker cannot stop the run with a usage error (xdist turns it into an
                # INTERNALERROR that hides the message): the test errors at setup with the message.
                item.stash[MARKER_ERROR_KEY] = str(exc)


class _PendingReports:
    """Until the reporting is active (an xdist controller): keep the reports; the first record activates it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.reports: list[pytest.TestReport] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append(report)
        if getattr(report, REPORT_ATTR, None) is not None:  # a worker's reporting is active
            activate(self.config)  # replays these reports, this one included


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def simtwin_session(pytestconfig: pytest.Config) -> Iterator[SimSession]:
    """The worker's SimSession (domain lease, ROS context, simulator); opened on first use."""
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.workers import WorkerInfo

    activate(pytestconfig)  # normally done at collection; a test may ask for a fixture by name (getfixturevalue)
    with SimSession(settings_of(pytestconfig), WorkerInfo.from_config(pytestconfig)) as session:
        yield session


@pytest.fixture
def sim(request: pytest.FixtureRequest, simtwin_session: SimSession) -> Iterator[Sim]:
    """The running simulator of this worker, configured for this test, reset and health-checked."""
    from pytest_simtwin.runtime.sim import Sim

    item = request.node
    from pytest_simtwin.runtime.settings import effective_config

    config, reset = effective_config(settings_of(request.config), item.stash.get(OVERRIDES_KEY, {}))
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
        from pytest_simtwin.errors import SimTwinError

        with contextlib.suppress(SimTwinError):  # a dead simulator is reported by the test itself
            handle.clear_faults()
    simtwin_session.end_test()  # idle until the next test: paused, costs no CPU


@pytest.fixture
def faults(sim: Sim) -> FaultInjector:
    """``faults.inject(faults.sensor_blackout("/scan", at=2.0))``: faults on demand; cleared after the test."""
    from pytest_simtwin.control.faults import FaultInjector  # lazy: see the module docstring

    return FaultInjector(sim.fault_control("the faults fixture"), sim.record.faults if sim.record is not None else None)


@pytest.fixture
def robot(request: pytest.FixtureRequest, sim: Sim, simtwin_session: SimSession) -> Iterator[Robot]:
    """The simulated robot (pytest_simtwin.helpers.robot.Robot) on this worker's simulator: the world's only
    robot, or the one named by ``robot_name`` (marker), ``simtwin_robot_name`` (ini), ``--simtwin-robot-name``."""
    from pytest_simtwin.helpers.robot import Robot
    from pytest_simtwin.helpers.robots import robot_topics
    from pytest_simtwin.results.records import record_for

    name = request.node.stash.get(OVERRIDES_KEY, {}).get("robot_name") or opts.get_option(request.config, "robot-name")
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
    from pytest_simtwin.errors import SimTwinError
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

    return twin_validation_for(request, settings_of(request.config).artifacts)


# -- test lifecycle: active metric record, simulator death -> error ------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    if not item.config.stash.get(ACTIVE_KEY, False):
        return (yield)
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
