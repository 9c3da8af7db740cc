"""SimSession: everything one pytest worker needs to run simulation tests, for its whole session.

It owns, in order: a leased ROS domain (+ GZ_PARTITION), the ROS environment every child gets, the
worker's private :class:`RosSession`, the simulator backend and its :class:`ControlClient`. The
simulator starts on first use (:meth:`SimSession.ensure`), restarts when a test asks for another
configuration or after it died, and is checked (:meth:`check_health`) before every test so an
infrastructure problem errors the test before its body runs. ``Sim`` is the small facade the
``sim`` fixture hands to tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.files import nodeid_filename
from pytest_simtwin._internal.waiting import Background, wait_until
from pytest_simtwin.backends.base import Backend, SimConfig, backend_class
from pytest_simtwin.backends.processes import SubprocessBackend, kill_partition, register_reaper
from pytest_simtwin.control import protocol
from pytest_simtwin.control.client import ControlClient
from pytest_simtwin.errors import (
    ControlError,
    SimTwinError,
    SimulatorDiedError,
    SimulatorError,
    SimulatorStartError,
)
from pytest_simtwin.ros import domains
from pytest_simtwin.ros import environment as rosenv
from pytest_simtwin.ros.session import RosSession
from pytest_simtwin.runtime.health import HEALTH_TIMEOUT, HealthChecks
from pytest_simtwin.runtime.workers import WorkerInfo

if TYPE_CHECKING:
    from pytest_simtwin.runtime.settings import Settings

log = logging.getLogger("simtwin")

#: Seconds to wait for the /simtwin services of a process/attach simulator before deciding it has none.
CONTROL_PROBE_TIMEOUT = 3.0


PEER_LEASE = 10.0  # leaseDuration of data/fastdds_profile.xml: a silent participant is dropped after it


class ControlUnansweredError(SimulatorStartError):
    """The simulator started and publishes but its control services never answered."""

    retryable = False


def _same_simulation(a: SimConfig | None, b: SimConfig) -> bool:
    """Equal up to the start timeout, which does not change what is simulated (no restart for it)."""
    return a is not None and a.with_(start_timeout=0.0) == b.with_(start_timeout=0.0)


class SimSession(HealthChecks):
    """Lease + environment + RosSession + backend + control for one worker (a context manager)."""

    def __init__(self, settings: Settings, worker: WorkerInfo | None = None) -> None:
        self.settings = settings
        self.worker = worker or WorkerInfo.from_env()
        self.workdir = settings.artifacts / self.worker.name
        self.lease: domains.DomainLease | None = None
        self.domain_id: int = -1
        self.partition = ""
        self.env: dict[str, str] = {}
        self.ros: RosSession | None = None
        self.backend: Backend | None = None
        self.config: SimConfig | None = None
        self._control: ControlClient | None = None
        self._control_checked = False
        self._previous_env: dict[str, str | None] | None = None
        self.starts = 0  # simulators started by this session (restarts included)
        # When a simulator last went away without saying goodbye (killed, crashed): its DDS
        # participant stays known until its lease runs out (see close()).
        self._peer_lost_at: float | None = None
        self._topics: dict[str, Any] | None = None
        self._scope: str | None = None
        self._idle_paused = False  # end_test paused the simulator; begin_test resumes it

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> SimSession:
        register_reaper()
        try:
            if not self.settings.backend_class.owns_simulator:  # attach: the running simulator's domain
                assert self.settings.attach_domain is not None
                self.domain_id = self.settings.attach_domain
                self.partition = os.environ.get("GZ_PARTITION") or f"simtwin_attach_{self.domain_id}"
            else:
                ids = self.settings.domain_ids
                self.lease = domains.acquire_domain(
                    ids,
                    owner=f"pytest-simtwin {self.worker.name} pid {os.getpid()}",
                    prefer=self.worker.preferred_domain(ids),
                )
                self.domain_id, self.partition = self.lease.domain_id, self.lease.partition
            self.env = rosenv.ros_environment(self.domain_id, self.partition)
            self._previous_env = rosenv.apply_environment(self.env)
            # Created now, started on first use: the first simulator launches before our own rclpy
            # start-up (import + participant), so the two overlap.
            self.ros = RosSession(self.domain_id, self.env, name=f"simtwin_{self.worker.name}")
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Close the ROS session, stop the simulator and release the domain; safe to call twice.

        Our ROS side goes first, while the simulator still runs: Fast DDS can deadlock a participant
        that removes a remote writer matched to its readers (the receive thread holds the PDP lock
        and waits for the event thread, which waits for that lock to send the next announcement;
        eProsima/Fast-DDS#6502, #6193). A simulator exiting under our live readers made a worker hang
        at teardown; closing ours first leaves nothing of ours to unmatch (a simulator stuck that way
        is killed after its grace).
        """
        backend, config = self.backend, self.config
        if self.ros is not None:
            ros, self.ros = self.ros, None
            if self._peer_lost_at is not None and ros.active:
                # A simulator killed or crashed less than a lease ago: let our participant drop it
                # (lease expiry) before our own endpoints are destroyed, the same deadlock's other trigger.
                left = self._peer_lost_at + PEER_LEASE + 1.0 - time.monotonic()
                live = 1 if backend is not None and backend.is_alive() else 0
                if left > 0:
                    ros.await_publishers_at_most((config or SimConfig()).ready_topic, live, timeout=left)
            ros.close()
        self.stop_simulator()
        if self.lease is not None:
            lease, self.lease = self.lease, None
            # Anything still running in our partition (a node a test forgot) must not outlive the lease.
            kill_partition(self.partition)
            lease.release()
        if self._previous_env is not None:
            rosenv.restore_environment(self._previous_env)
            self._previous_env = None

    def __enter__(self) -> SimSession:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _require_ros(self) -> RosSession:
        if self.ros is None:
            raise SimulatorError("the simtwin session is not open")
        if self.ros.context is None:
            self.ros.start()
        return self.ros

    @property
    def ros_session(self) -> RosSession:
        """The worker's private RosSession on the simulation domain."""
        return self._require_ros()

    def test_dir(self, nodeid: str) -> Path:
        """A per-test artifacts directory under this worker's directory."""
        path = self.workdir / nodeid_filename(nodeid)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fill_record(self, rec: Any) -> None:
        """Write where this test ran into its results.TestRecord."""
        rec.backend = self.settings.backend
        rec.domain_id = self.domain_id
        rec.world = str(self.config.world) if self.config and self.config.world else "builtin"
        rec.worker = self.worker.name

    # -- simulator ---------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.backend is not None and self.backend.is_alive()

    def death_reason(self) -> str | None:
        return None if self.backend is None else self.backend.death_reason()

    def ensure(self, config: SimConfig) -> bool:
        """Make the running simulator match ``config`` (start or restart). True if one was started."""
        if self.backend is not None and _same_simulation(self.config, config) and self.backend.is_alive():
            return False
        try:
            self.launch(config)
            self.await_ready()
        except ControlUnansweredError as exc:
            if not exc.retryable:
                raise
            # It ran and published but never answered a control request (seen once in ~50 starts on
            # a host at load 40): a fresh process has always worked, so retry once before giving up.
            self.launch(config)
            self.await_ready()
        return True

    def launch(self, config: SimConfig) -> None:
        """Start a simulator for ``config`` without waiting for it (pools launch many, then wait).

        Call from the thread that will outlive the child: PR_SET_PDEATHSIG fires when the forking
        thread exits.
        """
        self.stop_simulator()
        if self.ros is None:
            raise SimulatorError("the simtwin session is not open")
        cls = backend_class(self.settings.backend)
        backend = cls(config, lease=self.lease, ros=self.ros, env=self.env, workdir=self.workdir)
        self.backend, self.config = backend, config
        self._control, self._control_checked, self._topics = None, False, None
        self.starts += 1
        if cls.wants_fork_server(config):
            # A fork starts in ~0.2 s once the server is warm; the first start waits for the
            # server's imports, which this process's own ROS start-up then overlaps.
            self._require_ros()
        try:
            backend.start()
        except BaseException:
            self.stop_simulator()
            raise

    def await_ready(self) -> None:
        """Wait for the launched simulator's first ready message; stop it on failure."""
        if self.backend is None:
            raise SimulatorError("no simulator was launched (SimSession.launch was not called)")
        assert self.config is not None
        backend, config = self.backend, self.config
        try:
            self._require_ros()  # started here, while the simulator process boots
            # Ask for the control services while the first message is awaited: both discoveries go
            # on at once and a lost first reply is re-sent meanwhile (~50 ms per start; up to the
            # probe timeout for a simulator without the services).
            probe: Background[dict[str, Any] | None] = Background(
                lambda: self._fetch_features(config, backend), name="simtwin-control-probe"
            )
            backend.wait_ready()
            self._apply_features(probe.result())  # one answered request: the reply path is matched
        except BaseException:
            self.stop_simulator()
            raise

    def begin_test(self, config: SimConfig, reset: str, scope: str) -> None:
        """Before a test: (re)start as needed, reset per policy, check a running one's health (SimulatorError)."""
        started = self.ensure(config)
        since = time.monotonic()  # a reset publishes every sensor at once: its messages count below
        resets = not started and (reset == "test" or (reset == "module" and scope != self._scope))
        idled, self._idle_paused = self._idle_paused, False
        if idled and not started and not resets and not (config.paused or config.lockstep):
            self._resume()  # paused by end_test; a reset sets the wanted state itself
        reset_at: float | None = None
        if resets:
            try:
                reset_at = self.reset(config)
            except SimulatorDiedError:
                raise
            except ControlError as exc:
                if not self.alive:
                    raise self.died_error("before the test started") from None
                raise self._unhealthy(f"it did not reset ({exc})") from None
        self._scope = scope
        if not started:
            # A simulator started just now has answered its control services and published its
            # first message (await_ready): checking again would only cost another message period.
            self.check_health(since=since, advanced_from=reset_at)

    def end_test(self) -> None:
        """After a test: pause the simulator (ours, with control) so an idle worker costs no CPU.

        Between tests nobody observes it; under ``-n`` larger than the CPUs, idle simulators running
        at their real-time factor took CPU from the ones that run tests. ``begin_test`` resumes it.
        """
        if not self.settings.idle_pause or not self.settings.backend_class.owns_simulator:
            return
        client = self._control  # None until probed: nothing to pause on a simulator without control
        if client is None or not self.alive:
            return
        try:
            client.pause()
        except SimTwinError as exc:  # the next begin_test's health check reports a broken simulator
            log.debug("could not pause the idle simulator: %s", exc)
            return
        self._idle_paused = True

    def _resume(self) -> None:
        client = self._control  # None until probed: nothing to pause on a simulator without control
        if client is not None:
            with contextlib.suppress(ControlError):  # the health check that follows names the problem
                client.play()

    def topics(self) -> dict[str, Any]:
        """The robot's topics as the simulator reports them (protocol defaults without control)."""
        self.control_or_none()
        if self._topics is None:
            self._topics = {
                "cmd_vel": protocol.CMD_VEL,
                "odom": protocol.ODOM,
                "scan": protocol.SCAN,
                "joint_states": protocol.JOINT_STATES,
                "clock": protocol.CLOCK,
                "ground_truth": None,
            }
        return self._topics

    def stop_simulator(self, grace: float | None = None) -> None:
        """Stop the simulator; ``grace`` shortens the wait for an orderly exit (unhealthy ones)."""
        backend, self.backend = self.backend, None
        self.config = None
        self._control, self._control_checked, self._topics = None, False, None
        if backend is not None:
            was_alive = backend.is_alive()
            if was_alive and self.ros is not None and self.ros.active and self.settings.backend_class.owns_simulator:
                # As in close(): our participant goes first (re-created for the next simulator,
                # ~0.1-0.4 s), so a Fast DDS deadlock on the departure (eProsima/Fast-DDS#6502)
                # can only strike the simulator being stopped, never this worker's session.
                self.ros.close()
            if grace is not None and isinstance(backend, SubprocessBackend):
                backend.stop(grace=grace)
            else:
                backend.stop()
            if not was_alive or backend.returncode() not in (0, None):
                self._peer_lost_at = time.monotonic()  # no orderly DDS goodbye: see close()
            # Helpers must not read the previous simulator's messages as if they were new.
            if self.ros is not None:
                self.ros.clear_buffers()

    def log_tail(self, lines: int = 30) -> list[str]:
        return self.backend.log_tail(lines) if self.backend is not None else []

    def died_error(self, during: str) -> SimulatorDiedError:
        backend = self.backend
        what = backend.describe() if backend is not None else "simulator"
        code = backend.returncode() if backend is not None else None
        return SimulatorDiedError(
            f"the {what} exited with code {code} {during}. This is an infrastructure error, not a test "
            f"failure; the next test gets a fresh simulator. Its log: {backend.log_path() if backend else None}",
            log_tail=self.log_tail(),
        )

    # -- control -----------------------------------------------------------------------------
    def _call_retrying(
        self, name: str, total: float, abort: Callable[[], str | None] | None = None, **payload: Any
    ) -> dict[str, Any]:
        """Call an idempotent /simtwin service, retrying with short attempts for up to ``total`` s.

        A request sent while discovery is still matching the reply path can be lost; one lost reply
        must not cost the ControlClient's whole timeout (seen with 8 workers on 2 loaded cores).
        """

        stop = abort or self.death_reason
        client = ControlClient(self._require_ros(), abort=stop, died=self.died_error)
        errors: list[str] = []

        def attempt() -> dict[str, Any] | None:
            try:
                # Re-sent every 0.1 s (doubling) until answered: a lost reply costs 0.1 s, not an attempt.
                return client.call(name, timeout=min(3.0, total), resend=0.1, **payload)
            except ControlError as exc:
                errors.append(str(exc))
                return None

        try:
            return wait_until(
                attempt,
                total,
                what=f"an answer from {protocol.NAMESPACE}/{name} on domain {self.domain_id}",
                describe=lambda: f"{len(errors)} attempt(s), errors: {' | '.join(dict.fromkeys(errors)) or '-'}",
                abort=stop,
                error=ControlError,
            )
        except ControlError:
            if not self.alive:
                raise self.died_error("while answering a control request") from None
            raise

    def _probe_control(self, config: SimConfig) -> None:
        """After a start: find out whether the simulator has the /simtwin services, and its topics."""
        assert self.backend is not None
        self._apply_features(self._fetch_features(config, self.backend))

    def _fetch_features(self, config: SimConfig, backend: Backend) -> dict[str, Any] | None:
        """The simulator's features reply; None for a foreign simulator (topics only).

        Ends as soon as ``backend`` is no longer this session's simulator (stopped or replaced).
        """

        def gone() -> str | None:
            return "the simulator was stopped" if self.backend is not backend else self.death_reason()

        if not backend.supports_control:
            return None  # topics only: no probe, no wait
        ours = backend.control_guaranteed
        try:
            return self._call_retrying(
                "get_simulator_features", config.start_timeout if ours else CONTROL_PROBE_TIMEOUT, abort=gone
            )
        except ControlError as exc:
            if ours:
                err = ControlUnansweredError(
                    f"the {backend.describe()} publishes but does not answer its control services: {exc}",
                    log_tail=backend.log_tail(30),
                )
                err.retryable = backend.is_alive()
                raise err from None
            return None

    def _apply_features(self, features: dict[str, Any] | None) -> None:

        if features is None:
            self._control, self._topics = None, None  # a foreign simulator: topics only
        else:
            self._control = ControlClient(
                self._require_ros(), abort=self.death_reason, died=self.died_error, features=features
            )
            self._topics = dict(features.get("topics") or {}) or None
        self._control_checked = True

    def control_or_none(self) -> ControlClient | None:
        """The control client when the simulator answers the /simtwin services (probed at start)."""
        if self.backend is None:
            return None
        if not self._control_checked and self.config is not None:
            self._probe_control(self.config)
        return self._control

    @property
    def control(self) -> ControlClient:
        client = self.control_or_none()
        if client is None:
            name = self.backend.describe() if self.backend is not None else "simulator (not started)"
            raise ControlError(
                f"the {name} has no control: it does not answer the {protocol.NAMESPACE}/* services "
                f"(step, reset, set pose, spawn, ...). Expected a simulator that implements them "
                f"(e.g. simtwin-sim, --simtwin-backend embedded); use topics only with this backend."
            )
        return client

    def reset(self, config: SimConfig) -> float | None:
        """Bring the simulator back to the world's initial state (restart when it has no control).

        Returns the simulation time right after the reset (None when not known).
        """
        client = self.control_or_none()
        if client is None:
            if not self.settings.backend_class.owns_simulator:
                return None  # cannot restart what we do not own (attach); documented
            self.stop_simulator()
            self.ensure(config)
            return None
        limit = min(HEALTH_TIMEOUT, self.settings.timeout)
        state = self._call_retrying("reset_simulation", limit, scope="all")  # idempotent: safe to retry
        if "state" not in state:  # the reply is the state after the reset (protocol); older ones: ask
            state = self._call_retrying("get_simulation_state", limit)
        want = "paused" if (config.paused or config.lockstep) else "playing"
        if state.get("state") != want:
            client.play() if want == "playing" else client.pause()
        return float(state["sim_time"]) if "sim_time" in state else None



__all__ = ["ControlUnansweredError", "SimSession", "WorkerInfo"]
